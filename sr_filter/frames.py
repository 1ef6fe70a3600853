"""Frame ranges (``START:END``) for videos and animations: one rule for both paths."""

from __future__ import annotations

from .errors import VideoFormatError


def parse_range(text: str | None) -> tuple[int, int | None]:
    """``"START:END"`` (END exclusive, either side may be empty) -> (start, end or None)."""
    if not text:
        return 0, None
    start_s, sep, end_s = text.partition(":")
    try:
        start = int(start_s) if start_s.strip() else 0
        end = int(end_s) if end_s.strip() else None
    except ValueError:
        raise VideoFormatError(f"frame range {text!r} is not START:END with whole numbers") from None
    if not sep or start < 0 or (end is not None and end <= start):
        raise VideoFormatError(f"frame range {text!r} must be START:END with 0 <= START < END")
    return start, end

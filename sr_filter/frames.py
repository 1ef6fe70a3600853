"""Frame ranges (``START:END``) for videos and animations: one rule for both paths."""

from __future__ import annotations

import numbers

from .errors import VideoFormatError


def parse_range(frames: str | tuple[int, int | None] | None) -> tuple[int, int | None]:
    """``"START:END"`` or ``(start, end)`` (END exclusive, either side may be empty or None) ->
    (start, end or None); None or ``""`` means every frame."""
    if frames is None or frames == "":
        return 0, None
    if isinstance(frames, str):
        start_s, sep, end_s = frames.partition(":")
        try:
            start = int(start_s) if start_s.strip() else 0
            end = int(end_s) if end_s.strip() else None
        except ValueError:
            raise VideoFormatError(f"frame range {frames!r} is not START:END with whole numbers") from None
    elif isinstance(frames, (tuple, list)) and len(frames) == 2 and _whole(frames[0]) and (frames[1] is None or _whole(frames[1])):
        start, end, sep = int(frames[0]), None if frames[1] is None else int(frames[1]), ":"
    else:
        raise VideoFormatError(f"frame range {frames!r} must be 'START:END' or a (start, end) pair of whole numbers")
    if not sep or start < 0 or (end is not None and end <= start):
        raise VideoFormatError(f"frame range {range_text(frames)!r} must be START:END with 0 <= START < END")
    return start, end


def _whole(n: object) -> bool:
    return isinstance(n, numbers.Integral) and not isinstance(n, bool)


def range_text(frames: str | tuple[int, int | None] | None) -> str:
    """A frame range as the user would type it, for messages."""
    if isinstance(frames, (tuple, list)) and len(frames) == 2:
        return f"{frames[0]}:{'' if frames[1] is None else frames[1]}"
    return str(frames)

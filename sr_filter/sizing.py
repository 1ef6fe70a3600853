"""Output sizes: the scale that fits a picture inside the width and height a user asks for.

Shared by the one-file core, animations and videos (``--width``/``--height``, ``size=``), so each
gives the same scale for the same request and refuses the same impossible ones.
"""

from __future__ import annotations

from .errors import ImageFormatError


def target_scale(width: int | None, height: int | None, shape: tuple[int, ...], name: str) -> float:
    """The scale that makes an image ``width`` wide or ``height`` high (both: fit inside both)."""
    h, w = shape[:2]
    scale = min(r for r in (width and width / w, height and height / h) if r)
    if not 0 < scale <= 16:
        raise ImageFormatError(f"{name} is {w}x{h}: that size means a scale of {scale:g}; the scale must be "
                               "greater than 0 and at most 16")
    return scale

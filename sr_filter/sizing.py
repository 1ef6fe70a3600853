"""Output sizes: the scale that fits a picture inside the width and height a user asks for.

Shared by the one-file core, animations and videos (``--width``/``--height``, ``size=``), so each
gives the same scale for the same request and refuses the same impossible ones.
"""

from __future__ import annotations

import math
import numbers

from .errors import ImageFormatError

#: a scale up to this much above what the network's passes give is reached by resizing their
#: result up (10% more pixels a side hardly shows) rather than by running the network once more
#: and shrinking a result four times as large
RESIZE_UP_LIMIT = 1.1


def nearest_multiple(value: float, step: int = 1) -> int:
    """``value`` rounded to the nearest multiple of ``step``, halves up. The quotient is first
    rounded to 6 decimals: 25 x 1.14 is 28.499999999999996 in floating point, and a size that is
    28.5 as written must round up as 31 x 1.5 = 46.5 does."""
    return math.floor(round(value / step, 6) + 0.5) * step


def scaled_length(n: int, scale: float) -> int:
    """``n`` pixels at ``scale``, rounded half up as GIMP and most image tools round (31 x 1.5 = 47),
    never below one pixel. Every output size in the library comes from here or, for sizes on a grid
    (videos' even sizes, a Y4M stream's chroma grid), from :func:`nearest_multiple` (the GIMP
    plug-in's standard-library copy, ``gimp.protocol.scaled``, rounds the same way)."""
    return max(1, nearest_multiple(n * scale))


def check_scale_request(scale: object) -> float | None:
    """The API's ``scale``: a number greater than 0 and at most 16, or None (the model's own); as a
    float. The rule every path takes before any model loads (a 1x model's own limit is
    :meth:`sr_filter.Upscaler.check_scale`'s, which needs the model)."""
    from .errors import SrFilterError

    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise SrFilterError(f"the scale must be a number, not {scale!r}")
    value = float(scale)
    if not math.isfinite(value) or not 0 < value <= 16:
        raise SrFilterError(f"the scale must be greater than 0 and at most 16, not {scale}")
    return value


def check_size_request(scale: object, width: object, height: object) -> tuple[int | None, int | None]:
    """The API's ``width``/``height`` (whole numbers from 1 to 1,000,000, or None), and not beside
    ``scale``; returned as Python ints. ``scale`` is held to :func:`check_scale_request` here too,
    so that every file call refuses ``scale=100`` before its model loads (it had been said only
    once a model was loaded, converted or downloaded)."""
    from .errors import SrFilterError

    check_scale_request(scale)
    for name, value in (("width", width), ("height", height)):
        # numbers.Integral: numpy's integers too (from an array's shape), as tile, batch and quality take them
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= 1_000_000):
            raise SrFilterError(f"{name} must be a whole number from 1 to 1,000,000 (or None), not {value!r}")
    if scale is not None and (width or height):
        raise SrFilterError("give either scale or width/height, not both")
    return (None if width is None else int(width)), (None if height is None else int(height))  # type: ignore[call-overload]


def network_passes(scale: float, model_scale: int) -> int:
    """How many times a ``model_scale`` network runs to reach ``scale`` (its result is then resized)."""
    if scale <= 1 or model_scale <= 1:
        return 1
    passes = max(1, math.ceil(math.log(scale, model_scale) - 1e-9))
    if passes > 1 and scale <= model_scale ** (passes - 1) * RESIZE_UP_LIMIT:
        passes -= 1
    return passes


def fit_scale(width: int | None, height: int | None, w: int, h: int) -> float:
    """The scale that makes a ``w`` x ``h`` picture ``width`` wide or ``height`` high (both: fit inside both)."""
    return min(r for r in (width and width / w, height and height / h) if r)


def target_scale(width: int | None, height: int | None, shape: tuple[int, ...], name: str) -> float:
    """The scale that makes an image ``width`` wide or ``height`` high (both: fit inside both)."""
    h, w = shape[:2]
    scale = fit_scale(width, height, w, h)
    if not 0 < scale <= 16:
        raise ImageFormatError(f"{name} is {w}x{h}: that size means a scale of {scale:g}; the scale must be "
                               "greater than 0 and at most 16")
    return scale

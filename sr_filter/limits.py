"""Refusing an image whose upscale would not fit in memory, before its pixels are decoded.

The size comes from the file header, so a decompression bomb (a tiny file that claims an
enormous size) is refused without inflating it. The estimate follows what a run holds at its
peak: the decoded input and its float copy; per output pixel the final array and its encoded
copy (tiles are merged straight into the output's own type); at scales the network does not give
by itself, one row of tiles at the network's scale on its way through the resize (and the
whole result of any earlier pass). Fitted, with margin, to the peak RSS of real runs
(`sr-filter -p cartoon`, OpenVINO, 2026-11-30; the growth from 1200x900 to 2400x1800 inputs,
per pixel: x4 RGB 11.4 bytes per output pixel, RGBA 12.9, 16-bit RGB TIFF 14.5, grey 3.5; the
row of tiles at x2, x3 and x1.5 about 9 bytes per value), plus a fixed allowance for the model
and its tiles; tests/test_io_hardening.py holds the measured runs. The earlier constants held
the float copies that the tiler and the resize no longer make, and refused a 6000x4000 photo at
x4 ("25.8 GiB") that runs with a 4.2 GB peak.
"""

from __future__ import annotations


from .device import available_ram
from .errors import ImageTooLargeError, InputTooLargeError
from .sizing import network_passes, scaled_length

#: memory the model, its tiles and the interpreter need on top of the image buffers
_OVERHEAD = 512 << 20
#: input rows in the tallest automatic row of tiles on the CPU (a 512 px tile and its context)
TILE_ROWS = 576


def estimate_bytes(width: int, height: int, channels: int, scale: float, itemsize: int = 1, model_scale: int = 4) -> int:
    """Rough peak bytes to decode a ``width`` x ``height`` image and upscale it by ``scale``.

    ``model_scale`` is the network's own factor: other scales run it (repeatedly) at its own
    scale and resize afterwards, so the native-scale planes are held as well.
    """
    channels = max(1, channels)
    alpha = channels in (2, 4)
    in_px = width * height
    out_px = scaled_length(width, scale) * scaled_length(height, scale)
    decode = in_px * (channels * itemsize + 4 * channels + 12 + (12 if alpha else 0))
    per_out = 6 * channels * itemsize  # measured: 3.5 (grey) to 14.5 (16-bit RGB) bytes
    native = 0
    if model_scale > 1 and scale != model_scale:  # at scale <= 1 too: the network's output, then a resize down
        passes = network_passes(scale, model_scale)
        # the last pass streams through the resize one row of tiles at a time: float32 rows at
        # the network's scale, with their resized copy and Pillow's
        rows = min(height * model_scale ** (passes - 1), TILE_ROWS) * model_scale
        native = width * model_scale**passes * rows * 10 * channels
        if passes > 1:  # the earlier passes' results are held whole, as float32, and copied
            native += in_px * model_scale ** (2 * (passes - 1)) * 12 * channels
    return decode + out_px * per_out + native + _OVERHEAD


def check_fits(
    name: str, width: int, height: int, channels: int, scale: float, itemsize: int = 1, *,
    model_scale: int = 4, available: int | None = None, decoded: bool = False,
) -> None:
    """Raise :class:`ImageTooLargeError` with the numbers when the upscale would not fit in RAM.

    ``decoded``: the pixels are already in memory (an array handed to ``upscale_array``), so the
    free memory no longer has room for them and they are not counted again."""
    need = estimate_bytes(width, height, channels, scale, itemsize, model_scale)
    if decoded:
        need -= width * height * max(1, channels) * itemsize
    have = available_ram() if available is None else available
    if need > have:
        if scale == 1 and model_scale == 1:  # read, not upscaled (evaluation, training)
            raise ImageTooLargeError(f"{name} is {width}x{height} ({width * height / 1e6:,.0f} megapixels); reading it would "
                                     f"need about {_gib(need)} of memory, but only {_gib(have)} is available")
        out_w, out_h = scaled_length(width, scale), scaled_length(height, scale)
        least = estimate_bytes(width, height, channels, min(scale, 1 / max(width, height)), itemsize, model_scale)
        if model_scale > 1 and least - (width * height * max(1, channels) * itemsize if decoded else 0) > have:
            # the network's own pass over the whole input is the cost: no smaller scale helps
            raise InputTooLargeError(
                f"{name} is {width}x{height} ({width * height / 1e6:,.0f} megapixels): for a {out_w}x{out_h} output, or any "
                f"other size, the network's x{model_scale} pass over it alone needs about {_gib(least)} of memory, but only "
                f"{_gib(have)} is available; shrink it first, or cut it into parts")
        raise ImageTooLargeError(
            f"{name} is {width}x{height}; upscaled x{scale:g} it would be {out_w}x{out_h} "
            f"({out_w * out_h / 1e6:,.0f} megapixels) and need about {_gib(need)} of memory, "
            f"but only {_gib(have)} is available; use a smaller scale or cut the image into parts"
        )


def _gib(n: int) -> str:
    return f"{n / (1 << 30):,.1f} GiB"

"""Colour fix: the result keeps the input's colour over areas, the network's detail within them.

Networks shift flat colours by a few levels (white comes out #FEFEFE, a flat fill or a skin tone
tinted): ``realesr-animevideov3`` lifts a flat (200, 120, 40) by 4/2/2 levels and, on painted
art, loses about 1 dB of PSNR-Y to such shifts (docs/models/README.md, "Colour fix"). The fix
averages the result back down to the input's size, takes the difference from the input, keeps
only its slow part (a Gaussian blur of :data:`SIGMA` input pixels: colour over areas, not edges
or texture) and adds that back, upsampled. Flat areas then come out as the input's; edges and
texture stay as the network drew them. Only flat input counts fully: next to an edge the
difference is the network's sharpening of a soft edge, and blurred back in it laid a dark band
beside outlines (up to 10 levels, 16 px wide at x4), so pixels weigh less the busier the input
is around them (:data:`BUSY`); fully transparent pixels, whose colour is not seen, weigh nothing.
It works on the finished array, in bands of rows, so it adds little memory.
"""

from __future__ import annotations

import numpy as np

from .convert import to_float
from .resize import resize

#: the blur of the difference, in input pixels: 1 corrected more (and scored higher) but let
#: back about a quarter more of a JPEG's 8x8 block steps; measured in docs/models/README.md
SIGMA = 2.0
#: how much a pixel's difference counts: exp(-(r / BUSY)^2), r the range (largest minus smallest
#: value, in the channel where it is largest) of the input in the 5x5 pixels around it. 32 levels:
#: the band beside soft outlines is gone and most of the gain stays (docs/models/README.md)
BUSY = 32 / 255
_REACH = 2  # the neighbourhood's half width, in input pixels
_ROWS = 256  # output rows corrected at a time


def colour_fixed(source: np.ndarray, result: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """``result`` (an upscaled ``source``, both HxW or HxWxC in one layout and dtype) with its
    colour over areas set to ``source``'s; corrected in place where it is writable."""
    colour = 1 if source.ndim == 2 or source.shape[2] in (1, 2) else 3
    src = to_float(source, quiet=True)  # the upscale said what it took as 0..1 (the cartoon preset had said it twice)
    if src.ndim == 2:
        src = src[:, :, None]
    height, width = src.shape[:2]
    diff = src[:, :, :colour] - _reduced(result, colour, height, width)
    weight = _flatness(src[:, :, :colour])
    if source.ndim == 3 and source.shape[2] in (2, 4):  # only what is seen counts
        weight *= src[:, :, -1:] > 0
    diff *= weight
    cover = _blur(weight, sigma)
    correction = np.where(cover > 1e-3, _blur(diff, sigma) / np.maximum(cover, 1e-3), 0).astype(np.float32)
    if not result.flags.writeable:
        result = result.copy()
    _add_upsampled(result, correction, colour)
    return result


def alpha_fixed(source: np.ndarray, result: np.ndarray) -> np.ndarray:
    """An upscaled alpha plane (HxW) with ``source``'s level over areas, as :func:`colour_fixed`
    gives colour; where it is exactly transparent or opaque it stays so (those are settled before,
    where the input is so all around)."""
    fixed = colour_fixed(source, np.array(result))
    exact = (result == 0) | (result == _top(result.dtype))
    return np.where(exact, result, fixed)


def _flatness(colour: np.ndarray) -> np.ndarray:
    """(h, w, 1) weights: 1 on flat input, falling towards 0 where it is busy (:data:`BUSY`)."""
    high, low = colour, colour
    for axis in (0, 1):  # the 5x5 maximum and minimum, one axis at a time
        high, low = _extreme(high, axis, np.maximum), _extreme(low, axis, np.minimum)
    spread = (high - low).max(axis=2, keepdims=True)
    return np.exp(-np.square(spread / np.float32(BUSY))).astype(np.float32)


def _extreme(x: np.ndarray, axis: int, pick) -> np.ndarray:
    """The running maximum (or minimum) over :data:`_REACH` pixels each side along ``axis``, edges repeated."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (_REACH, _REACH)
    padded = np.pad(x, pad, mode="edge")
    n = x.shape[axis]
    out = padded.take(range(0, n), axis=axis)
    for i in range(1, 2 * _REACH + 1):
        out = pick(out, padded.take(range(i, i + n), axis=axis))
    return out


def _colour_of(rows: np.ndarray, colour: int) -> np.ndarray:
    """The colour channels of some result rows as float (rows, W, colour)."""
    data = to_float(rows, quiet=True)
    return data[:, :, None] if data.ndim == 2 else data[:, :, :colour]


def _reduced(result: np.ndarray, colour: int, height: int, width: int) -> np.ndarray:
    """The result's colour at the input's size: the mean of each s x s block at a whole scale,
    else an antialiased resize."""
    big_h, big_w = result.shape[:2]
    s = big_h // height
    if big_h == s * height and big_w == s * width and s >= 1:
        out = np.empty((height, width, colour), np.float32)
        step = max(1, _ROWS // s)
        top = np.float32(_top(result.dtype) * s * s)
        wide = np.uint32 if result.dtype.kind in "ui" else np.float32  # 65535 x 16 x 16 fits
        for y in range(0, height, step):
            rows = result[y * s:(y + step) * s]
            rows = rows[:, :, None] if rows.ndim == 2 else rows[:, :, :colour]
            across = rows.reshape(-1, width, s, colour)  # sums by adding slices: numpy's sum over
            total = across[:, :, 0].astype(wide)  # strided axes took six times as long
            for k in range(1, s):
                total += across[:, :, k]
            down = total.reshape(-1, s, width, colour)
            block = down[:, 0].copy()
            for k in range(1, s):
                block += down[:, k]
            out[y:y + step] = block / top
        return out
    planes = _colour_of(result, colour).transpose(2, 0, 1)[None]
    return resize(np.ascontiguousarray(planes), height, width, clamp=False)[0].transpose(1, 2, 0)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W, C) float32 array, edges mirrored."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    for axis in (0, 1):
        n = x.shape[axis]
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(x, pad, mode="symmetric" if n <= radius else "reflect")
        out = np.zeros_like(x)
        for i, weight in enumerate(taps):
            out += weight * (padded[i:i + n] if axis == 0 else padded[:, i:i + n])
        x = out
    return x


def _linear(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear sampling (pixel centres aligned) of n_in samples at n_out points: (i0, i1, f)."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    return i0, np.minimum(i0 + 1, n_in - 1), (pos - i0).astype(np.float32)[:, None]


def _add_upsampled(result: np.ndarray, correction: np.ndarray, colour: int) -> None:
    """Add ``correction`` (h, w, colour), bilinearly upsampled, to ``result``'s colour channels."""
    big_h, big_w = result.shape[:2]
    height = correction.shape[0]
    s = big_h // height
    top = np.float32(_top(result.dtype))
    cx0, cx1, fx = _linear(big_w, correction.shape[1])
    if big_h != s * height:  # another scale: each output row from its own two input rows
        ry0, ry1, fy = _linear(big_h, height)
        for y in range(0, big_h, _ROWS):
            first, last = int(ry0[y]), int(ry1[min(y + _ROWS, big_h) - 1])
            across = _across(correction[first:last + 1] * top, cx0, cx1, fx)
            a, b, f = ry0[y:y + _ROWS] - first, ry1[y:y + _ROWS] - first, fy[y:y + _ROWS, :, None]
            _add(result[y:y + _ROWS], across[a] + (across[b] - across[a]) * f, colour, top)
        return
    # a whole scale: output row s*i + k lies a fixed fraction between input rows i-1, i or i, i+1,
    # so each of the s phases is one slice of the input rows (no per-row gathers: 1.5x as fast)
    step = max(1, _ROWS // s)
    for i in range(0, height, step):
        rows = correction[max(0, i - 1):min(height, i + step + 1)] * top
        across = _across(rows, cx0, cx1, fx)
        pad_top, n = int(i == 0), min(step, height - i)
        padded = np.concatenate([across[:1]] * pad_top + [across] + [across[-1:]] * int(i + step >= height))
        band = result[i * s:(i + n) * s]
        for k in range(s):
            offset = (k + 0.5) / s - 0.5  # where the output row lies, in input rows from its own
            here = padded[1:1 + n]
            there = padded[:n] if offset < 0 else padded[2:2 + n]
            _add(band[k::s], here + (there - here) * np.float32(abs(offset)), colour, top)


def _across(rows: np.ndarray, cx0: np.ndarray, cx1: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Input rows (n, w, colour) bilinearly upsampled across to the output's width."""
    left = rows[:, cx0]
    return left + (rows[:, cx1] - left) * fx


def _add(band: np.ndarray, correction: np.ndarray, colour: int, top: np.float32) -> None:
    """Add a correction in the band's own units to its colour channels, rounded and clipped."""
    target = band[:, :, None] if band.ndim == 2 else band[:, :, :colour]
    correction += target
    if band.dtype.kind != "f":
        np.rint(correction, out=correction)
    np.clip(correction, 0, top, out=correction)
    target[...] = correction


def _top(dtype: np.dtype) -> float:
    """The value of white in ``dtype``: 255, 65535, or 1 for float."""
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0

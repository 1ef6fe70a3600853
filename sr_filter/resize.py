"""Resampling for output scales the network does not produce itself.

Pillow's antialiased bicubic (a = -0.5, the same as torch's ``antialias=True``), streamed: rows
at the network's scale go through :class:`ResizeSink` as the tiler finishes them and leave at the
output size, so a ``-s 2`` run with a x4 model never holds the x4 result (a 12000x8000 output
would have held 10 GB of it). The horizontal pass is Pillow's own; the vertical pass follows it
with Pillow's coefficients and order of summation in double precision. :func:`resize` of a whole
array is the same code, so streamed and whole results are equal; both equal Pillow's own resize
except where Pillow chooses to run the vertical pass first (then they differ by float32 rounding).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

#: output rows computed at a time by the vertical pass (bounds its float64 temporaries)
CHUNK = 64


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    outer = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, inner, np.where(x < 2.0, outer, 0.0))


def _triangle(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


_FILTERS = {Image.Resampling.BICUBIC: (_bicubic, 2.0), Image.Resampling.BILINEAR: (_triangle, 1.0)}


def coefficients(in_size: int, out_size: int, resample: Image.Resampling = Image.Resampling.BICUBIC
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's resampling weights for one axis (``precompute_coeffs`` in its Resample.c, in the same
    double-precision steps): for each output index the first input index, the number of inputs
    used, and their weights (zero beyond that number)."""
    function, support = _FILTERS[resample]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    centre = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    first = np.maximum((centre - support + 0.5).astype(np.int64), 0)  # C's cast truncates, as astype does
    count = np.minimum((centre + support + 0.5).astype(np.int64), in_size) - first
    taps = np.arange(ksize)
    weights = function((taps[None, :] + first[:, None] - centre[:, None] + 0.5) * (1.0 / filterscale))
    weights[taps[None, :] >= count[:, None]] = 0.0
    total = np.zeros(out_size)
    for k in range(ksize):  # in order, as Pillow sums them
        total += weights[:, k]
    np.divide(weights, total[:, None], out=weights, where=total[:, None] != 0)
    return first, count, weights


class ResizeSink:
    """A :class:`~sr_filter.tiling.Sink` that resizes the rows it is given (``in_height`` x
    ``in_width``, the network's scale; rows or columns beyond are padding and dropped) to
    ``out_height`` x ``out_width`` and passes them on to ``target``, another sink, top to bottom,
    holding only the input rows that output rows still to come need. Rows arrive as full-width
    bands in order, or as blocks in any order within what is not yet passed on (the tiler's one
    block per tile, and the quarters of a tile split after out-of-memory)."""

    def __init__(self, target: Any, in_height: int, in_width: int, out_height: int, out_width: int,
                 clamp: bool = True, resample: Image.Resampling = Image.Resampling.BICUBIC) -> None:
        self.target, self.clamp, self.resample = target, clamp, resample
        self.in_height, self.in_width, self.out_width = in_height, in_width, out_width
        self.same = in_height == out_height  # Pillow then skips the vertical pass
        self.first, self.count, self.weights = coefficients(in_height, out_height, resample)
        self.rows = np.empty((1, 0, out_width), np.float32)  # input rows from self.top, resized across
        self.top = 0
        self.held = 0  # rows of self.rows in use
        self.done = 0  # output rows passed on
        # rows from the next expected one on, gathered from blocks, and how many columns each has
        self.stage: tuple[np.ndarray, np.ndarray] | None = None

    def write(self, y: int, rows: np.ndarray, x: int = 0) -> None:
        rows = rows[0, :, : max(0, self.in_height - y), : max(0, self.in_width - x)]
        if not rows.size:
            return
        end = self.top + self.held
        if self.stage is None and y == end and x == 0 and rows.shape[2] == self.in_width:
            self._band(y, rows)  # a blended band: on at once
            return
        if y < end:
            raise ValueError(f"rows must arrive in order: got row {y}, expected {end} or later")
        self._gather(y, rows, x)

    def _gather(self, y: int, rows: np.ndarray, x: int) -> None:
        """Blocks (one per tile, or the quarters of a tile split after out-of-memory, in any order)
        held until the rows from the next expected one are complete across, then passed on."""
        end = self.top + self.held
        channels, height, width = rows.shape
        need = y + height - end
        if self.stage is None:
            self.stage = (np.empty((channels, need, self.in_width), np.float32), np.zeros(need, np.int64))
        elif need > self.stage[0].shape[1]:
            band, filled = self.stage
            grown = np.empty((channels, need, self.in_width), np.float32)
            grown[:, : band.shape[1]] = band
            self.stage = (grown, np.concatenate([filled, np.zeros(need - len(filled), np.int64)]))
        band, filled = self.stage
        band[:, y - end : y - end + height, x : x + width] = rows
        filled[y - end : y - end + height] += width
        short = np.flatnonzero(filled < self.in_width)
        complete = int(short[0]) if short.size else len(filled)  # leading rows complete across
        if complete == 0:
            return
        self.stage = None if complete == len(filled) else (band[:, complete:].copy(), filled[complete:].copy())
        self._band(end, band[:, :complete])

    def _band(self, y: int, rows: np.ndarray) -> None:
        end = self.top + self.held
        if y != end:
            raise ValueError(f"rows must arrive in order: got row {y}, expected {end}")
        channels, height = rows.shape[:2]
        if self.held + height > self.rows.shape[1]:  # grown once or twice, then reused
            grown = np.empty((channels, self.held + height, self.out_width), np.float32)
            grown[:, : self.held] = self.rows[:, : self.held]
            self.rows = grown
        _across(rows, self.rows[:, self.held : self.held + height], self.resample)
        self.held += height
        end += height
        ready = self.done
        while ready < len(self.first) and self.first[ready] + self.count[ready] <= end:
            ready += 1
        for start in range(self.done, ready, CHUNK):
            self.target.write(start, self._down(start, min(start + CHUNK, ready)))
        self.done = ready
        # drop the rows no output row to come reads
        keep = int(self.first[ready:].min()) - self.top if ready < len(self.first) else self.held
        if keep > 0:
            self.rows[:, : self.held - keep] = self.rows[:, keep : self.held]
            self.top, self.held = self.top + keep, self.held - keep

    def _down(self, start: int, stop: int) -> np.ndarray:
        """Output rows [start, stop) from the held rows, summed in double precision in Pillow's order."""
        rows = self.rows[:, : self.held]
        if self.same:
            out = rows[:, start - self.top : stop - self.top]
        else:
            first = self.first[start:stop] - self.top
            acc = np.zeros((rows.shape[0], stop - start, rows.shape[2]))
            for k in range(self.weights.shape[1]):
                w = self.weights[start:stop, k]
                if not w.any():
                    continue
                index = np.minimum(first + k, rows.shape[1] - 1)  # past the count the weight is 0
                acc += rows[:, index] * w[None, :, None]
            out = acc.astype(np.float32)
        if self.clamp:
            out = np.clip(out, 0, 1)
        return out[None]


def _across(rows: np.ndarray, out: np.ndarray, resample: Image.Resampling) -> None:
    """(C, h, w) float32 rows resized to ``out``'s width by Pillow (its horizontal pass alone)."""
    channels, height, width = out.shape
    if rows.shape[2] == width:
        out[...] = rows
        return
    for k in range(channels):
        plane = Image.fromarray(np.ascontiguousarray(rows[k], dtype=np.float32))  # mode F
        out[k] = np.asarray(plane.resize((width, height), resample))


class _ArrayTarget:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def write(self, y: int, rows: np.ndarray, x: int = 0) -> None:
        self.array[:, :, y : y + rows.shape[2], x : x + rows.shape[3]] = rows[0]


def resize(image: np.ndarray, height: int, width: int, clamp: bool = True,
           resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Antialiased bicubic resize of a (N, C, H, W) float32 array, clamped to [0, 1];
    ``clamp=False`` and another ``resample`` filter (bilinear: no overshoot) for values that are
    not pixels in 0..1. The same pixels as :class:`ResizeSink`."""
    if image.shape[-2:] == (height, width):
        return image
    n, c = image.shape[:2]
    out = np.empty((n, c, height, width), dtype=np.float32)
    for i in range(n):
        sink = ResizeSink(_ArrayTarget(out[i : i + 1]), image.shape[2], image.shape[3], height, width, clamp, resample)
        sink.write(0, image[i : i + 1])
    return out

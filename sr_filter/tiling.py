"""Overlapping tiles: planning (pure) and blended execution streamed into a preallocated output.

Every tile owns a *core* rectangle of the input; the cores partition the image. The network
sees a larger *window* around the core (``pad`` pixels of context on each side, shifted inward at
the image border so every window has the same shape and tiles can be batched). Outputs are
blended with linear ramps ``band`` input pixels wide centred on each core boundary; the ramps of
neighbours sum to exactly one, so wherever the context (``pad - band/2``) covers the network's
receptive field the tiled result equals whole-image inference up to float rounding.

Tiles run one row of tiles at a time. Only that row is accumulated in float32; finished output
rows go to a *sink* at once (a float32 array, or a uint8/uint16 image converted row band by row
band), so peak memory is the output image in its final dtype plus one row of tiles.

Everything here is numpy (no torch), so an engine that does not need torch (OpenVINO from its
cached model) runs without importing it.

On out-of-memory the failing batch is retried one tile at a time, then the failing tile is split
into four smaller ones (finished tiles are kept), down to ``MIN_TILE``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from .convert import from_float
from .device import free_accelerator_cache, is_oom
from .errors import CancelledError, ImageFormatError, OutOfMemoryError, SrFilterError
from .progress import cancels

#: callback(done, total) in input pixels; returning False cancels
Progress = Callable[[int, int], "bool | None"]
#: the smallest tile edge in input pixels (smaller tiles are mostly overlap)
MIN_TILE = 32


def check_tile(tile: object) -> int | str:
    """A tile setting as the library takes it: ``"auto"``, 0 (whole image) or ``MIN_TILE`` and more."""
    if isinstance(tile, str):
        if tile.strip().lower() == "auto":
            return "auto"
        try:
            tile = int(tile.strip())
        except ValueError:
            raise SrFilterError(f"the tile size must be a number of pixels or 'auto', not {tile!r}") from None
    elif isinstance(tile, float) and tile.is_integer():
        tile = int(tile)
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)):
        raise SrFilterError(f"the tile size must be a whole number of pixels or 'auto', not {tile!r}")
    if tile < 0 or 0 < tile < MIN_TILE:
        raise SrFilterError(f"the tile size must be 0 (whole image), at least {MIN_TILE}, or 'auto'; got {tile}")
    return int(tile)


@dataclass(frozen=True)
class Span:
    """A 1-D tile: core [lo, hi) and window [start, start + size) in input pixels."""

    lo: int
    hi: int
    start: int
    size: int


@dataclass(frozen=True)
class Tile:
    y: Span
    x: Span

    @property
    def area(self) -> int:
        return (self.y.hi - self.y.lo) * (self.x.hi - self.x.lo)

    @property
    def shape(self) -> tuple[int, int]:
        """Window shape (height, width); tiles of equal shape can share a batch."""
        return self.y.size, self.x.size

    @property
    def edge(self) -> int:
        return max(self.y.hi - self.y.lo, self.x.hi - self.x.lo)


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _spans(bounds: list[int], length: int, pad: int, equal: bool = True) -> list[Span]:
    if not equal:  # tight windows: context only where there is image (the border is exact anyway)
        return [Span(a, b, max(a - pad, 0), min(b + pad, length) - max(a - pad, 0)) for a, b in zip(bounds, bounds[1:])]
    longest = max(b - a for a, b in zip(bounds, bounds[1:]))
    size = length if len(bounds) == 2 else min(length, longest + 2 * pad)
    return [Span(a, b, min(max(a - pad, 0), length - size), size) for a, b in zip(bounds, bounds[1:])]


def plan_spans(length: int, tile: int, pad: int, multiple: int = 1, equal: bool = True) -> list[Span]:
    """Split ``length`` into near-equal cores of at most ``tile``, each with ``pad`` px of context.

    With ``equal`` every window has one shared size (border windows shifted inward) so tiles can
    be batched; without it border windows stop at the image edge, which saves work (about 12%
    for a 2x2 grid) when tiles run one at a time.

    With ``multiple`` > 1 (networks that fold pixels, e.g. pixel-unshuffle), ``length`` must be a
    multiple of it and every core bound, window start and window size is one too, so each
    window folds exactly as the whole image would.
    """
    if length <= 0:
        raise ValueError("cannot tile an empty axis")
    if multiple < 1 or length % multiple:
        raise ValueError(f"length {length} is not a multiple of {multiple}")
    units = length // multiple
    count = math.ceil(units / max(1, tile // multiple))
    bounds = [round(k * units / count) * multiple for k in range(count + 1)]
    return _spans(bounds, length, round_up(pad, multiple), equal)


def plan_tiles(height: int, width: int, tile: int, pad: int, multiple: int = 1, equal: bool = True) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` image, row by row."""
    ys = plan_spans(height, tile, pad, multiple, equal)
    xs = plan_spans(width, tile, pad, multiple, equal)
    return [Tile(y, x) for y in ys for x in xs]


def ramp(span: Span, length: int, scale: int, band: int) -> tuple[int, np.ndarray]:
    """Blend weights of one axis, over the output range where they are non-zero.

    Returns the first output index and the weights. A core edge on the image border has no ramp.
    """
    half = band * scale / 2
    lo_out = span.lo * scale - (half if span.lo > 0 else 0)
    hi_out = span.hi * scale + (half if span.hi < length else 0)
    first, last = max(0, math.floor(lo_out)), min(length * scale, math.ceil(hi_out))
    centres = np.arange(first, last, dtype=np.float64) + 0.5
    weight = np.ones_like(centres)
    if band > 0 and span.lo > 0:
        weight *= np.clip((centres - (span.lo * scale - half)) / (band * scale), 0, 1)
    if band > 0 and span.hi < length:
        weight *= np.clip(((span.hi * scale + half) - centres) / (band * scale), 0, 1)
    return first, weight.astype(np.float32)


def _split_span(span: Span, length: int, pad: int, multiple: int) -> list[Span]:
    mid = (span.lo + span.hi) // 2 // multiple * multiple
    if span.hi - span.lo < 2 * MIN_TILE or mid <= span.lo:
        return [span]
    return _spans([span.lo, mid, span.hi], length, round_up(pad, multiple))


def split_tile(tile: Tile, height: int, width: int, pad: int, multiple: int = 1) -> list[Tile]:
    """Up to four tiles with half the core edges (an axis shorter than 2 * MIN_TILE stays)."""
    ys = _split_span(tile.y, height, pad, multiple)
    xs = _split_span(tile.x, width, pad, multiple)
    return [Tile(y, x) for y in ys for x in xs]


# -- sinks: where finished output rows go ---------------------------------------------------------


class Sink(Protocol):
    """Receives finished output blocks: ``write(y, rows, x)`` with rows a (1, C, h, w) float32 array whose
    top-left corner is output pixel (y, x). Blended output arrives as full-width row bands, top to
    bottom; unblended output (``band`` 0) as one block per tile, row of tiles by row of tiles."""

    def write(self, y: int, rows: np.ndarray, x: int = 0) -> None: ...


class FloatSink:
    """A float32 (1, C, H, W) array; blending happens in place, so nothing is copied."""

    def __init__(self, array: np.ndarray) -> None:
        array[...] = 0
        self.array = array

    def rows(self, y0: int, y1: int) -> np.ndarray:
        return self.array[:, :, y0:y1]

    def write(self, y: int, rows: np.ndarray, x: int = 0) -> None:
        pass  # the rows are already in place


class ArraySink:
    """An HxW or HxWxK numpy image (uint8, uint16 or float); rows are clamped, rounded and stored.

    ``channel`` is the first channel written; with ``mean`` the tile channels are averaged into
    one (grey colour, or alpha run through the model as RGB), written into ``copies`` channels
    (3: a grey picture stored as RGB). Rows or columns beyond the array (padding added for the
    network) are dropped.
    """

    CHUNK = 64  # output rows converted at a time

    def __init__(self, array: np.ndarray, channel: int = 0, mean: bool = False, copies: int = 1) -> None:
        if array.dtype not in (np.uint8, np.uint16) and array.dtype.kind != "f":
            raise ValueError(f"cannot store rows as {array.dtype}")
        self.array, self.channel, self.mean, self.copies = array, channel, mean, copies

    def write(self, y: int, rows: np.ndarray, x: int = 0) -> None:
        height, width = self.array.shape[:2]
        rows = rows[0, :, : max(0, height - y), : max(0, width - x)]
        for a in range(0, rows.shape[1], self.CHUNK):  # small chunks: few, cache-sized temporaries
            data = np.clip(rows[:, a : a + self.CHUNK], 0, 1)  # clamped before the mean, as convert.merge does
            if self.mean:
                data = data.mean(axis=0, keepdims=True, dtype=np.float32)
            block = from_float(data.transpose(1, 2, 0), self.array.dtype)
            target = self.array[y + a : y + a + block.shape[0], x : x + block.shape[1]]
            if target.ndim == 2:
                target[...] = block[:, :, 0]
            else:
                target[:, :, self.channel : self.channel + block.shape[2] * self.copies] = block  # one channel spreads


# -- execution -------------------------------------------------------------------------------------


def check_out(out: object, shape: tuple[int, ...]) -> None:
    """A given ``out``, before any work: a float32 array of the output's shape, or a sink. A uint8
    array had been filled with 0s and 1s (through ``Upscaler.run_into``), and a wrong shape failed
    inside numpy after the first windows had run."""
    if isinstance(out, np.ndarray):
        if out.dtype != np.float32 or out.shape != shape or not out.flags.writeable:
            raise ImageFormatError(f"out must be a writable float32 array of shape {shape} (the padded input's size "
                                   f"times the model's scale), not a {'' if out.flags.writeable else 'read-only '}"
                                   f"{out.dtype} array of shape {out.shape}; for uint8/uint16 output, pass an ArraySink")
    elif not callable(getattr(out, "write", None)):
        raise ImageFormatError(f"out must be a float32 numpy array or a Sink (sr_filter.tiling), not {type(out).__name__}")


def run_tiled(
    run: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    scale: int,
    *,
    tile: int,
    context: int,
    band: int = 8,
    batch: int = 1,
    multiple: int = 1,
    progress: Progress | None = None,
    out: np.ndarray | Sink | None = None,
) -> np.ndarray | Sink:
    """Upscale ``image`` (a (1, C, H, W) float32 array) with ``run`` tile by tile into ``out``.

    ``run`` maps an (N, C, h, w) float32 batch to an (N, C, h*s, w*s) float32 array.
    ``context`` is the receptive-field radius the network needs for exact results. ``out`` is a
    float32 (1, C, H*s, W*s) array (allocated when None) or a :class:`Sink`; it is returned.
    """
    _, channels, height, width = image.shape
    if out is None:
        out = np.empty((1, channels, height * scale, width * scale), dtype=np.float32)
    else:
        check_out(out, (1, channels, height * scale, width * scale))
    sink: Sink = FloatSink(out) if isinstance(out, np.ndarray) else out
    whole = tile <= 0 or (height <= tile and width <= tile)
    band = 0 if whole else max(0, min(band, tile // 2))
    pad = context + math.ceil(band / 2)
    edge = max(height, width) if whole else tile
    rows = plan_spans(height, edge, pad, multiple, equal=batch > 1)
    cols = plan_spans(width, edge, pad, multiple, equal=batch > 1)
    state = _State(limit=max(max(s.hi - s.lo for s in rows), max(s.hi - s.lo for s in cols)), batch=batch)
    total, done = height * width, 0
    carry: tuple[int, np.ndarray] | None = None  # (first row, float32 rows) of an ArraySink
    # unblended tiles go straight to a sink: no float32 row of tiles (about 60 MB for a 1280-wide
    # frame at x4) is held beside the output
    direct = band == 0 and not isinstance(sink, FloatSink)

    for r, row in enumerate(rows):
        first, weights = ramp(row, height, scale, band)
        last = first + len(weights)
        nxt = ramp(rows[r + 1], height, scale, band)[0] if r + 1 < len(rows) else height * scale
        if direct:
            acc = None
        elif isinstance(sink, FloatSink):
            acc = sink.rows(first, last)
        else:
            acc = np.zeros((1, channels, last - first, width * scale), dtype=np.float32)
            if carry is not None:
                kept = carry[1][:, :, first - carry[0] :]
                acc[:, :, : kept.shape[2]] = kept
                carry = None
        for t, result, i in _row_results(run, image, [Tile(row, c) for c in cols], state, height, width, pad, multiple):
            if acc is None:
                y0, x0 = t.y.lo * scale, t.x.lo * scale
                oy, ox = y0 - t.y.start * scale, x0 - t.x.start * scale
                sink.write(y0, result[i : i + 1, :, oy : oy + (t.y.hi - t.y.lo) * scale, ox : ox + (t.x.hi - t.x.lo) * scale], x0)
            else:
                _accumulate(acc, first, result[i : i + 1], t, height, width, scale, band)
            done += t.area
            if i == result.shape[0] - 1 and progress is not None and cancels(progress(done, total)):
                raise CancelledError("stopped by the progress callback")  # as animations and videos say it
        if acc is None:
            continue
        sink.write(first, acc[:, :, : nxt - first])
        # keep only the rows the next row of tiles blends into, not the whole accumulator
        carry = (nxt, acc[:, :, nxt - first :].copy()) if not isinstance(sink, FloatSink) else None
        del acc
    return out


@dataclass
class _State:
    limit: int  # largest core edge known to fit in memory
    batch: int


def _row_results(run, image, tiles: list[Tile], state: _State, height: int, width: int, pad: int, multiple: int):
    """Yield (tile, batch result, index in batch) for one row, splitting tiles on out-of-memory."""
    queue: deque[Tile] = deque(tiles)
    while queue:
        first = queue.popleft()
        if first.edge > state.limit:
            smaller = split_tile(first, height, width, pad, multiple)
            if len(smaller) > 1:
                queue.extendleft(reversed(smaller))
                continue
        group = [first]
        while queue and len(group) < state.batch and queue[0].shape == first.shape and queue[0].edge <= state.limit:
            group.append(queue.popleft())
        windows = [image[:, :, t.y.start : t.y.start + t.y.size, t.x.start : t.x.start + t.x.size] for t in group]
        try:
            result = run(np.concatenate(windows) if len(windows) > 1 else np.ascontiguousarray(windows[0]))
        except Exception as exc:  # only out-of-memory is handled; anything else propagates
            if not is_oom(exc):
                raise
            result = None
        del windows
        if result is None:  # outside the except block, so the failed attempt's tensors are freed
            free_accelerator_cache()
            if len(group) > 1:
                state.batch = max(1, len(group) // 2)
                queue.extendleft(reversed(group))
                continue
            smaller = split_tile(first, height, width, pad, multiple)
            if len(smaller) == 1:
                raise OutOfMemoryError(
                    f"out of memory even with {first.y.hi - first.y.lo}x{first.x.hi - first.x.lo} tiles, the smallest "
                    "they split to; close other programs, or choose a smaller model or output (or, on a GPU, the "
                    "CPU device, which has the computer's memory)"
                ) from None
            state.limit = max(t.edge for t in smaller)
            queue.extendleft(reversed(smaller))
            continue
        for i, t in enumerate(group):
            yield t, result, i


def _accumulate(acc: np.ndarray, acc_first: int, result: np.ndarray, tile: Tile, height: int, width: int, scale: int, band: int) -> None:
    y0, wy = ramp(tile.y, height, scale, band)
    x0, wx = ramp(tile.x, width, scale, band)
    oy, ox = y0 - tile.y.start * scale, x0 - tile.x.start * scale
    piece = result[:, :, oy : oy + len(wy), ox : ox + len(wx)]
    target = acc[:, :, y0 - acc_first : y0 - acc_first + len(wy), x0 : x0 + len(wx)]
    if band == 0 or (bool((wy == 1).all()) and bool((wx == 1).all())):
        target[...] = piece
    else:
        target += piece * (wy[:, None] * wx[None, :])

"""Overlapping tiles: planning (pure) and blended execution into a preallocated output.

Every tile owns a *core* rectangle of the input; the cores partition the image. The network
sees a larger *window* around the core (``pad`` pixels of context on each side, shifted inward at
the image border so every window has the same shape and tiles can be batched). Outputs are
blended with linear ramps ``band`` input pixels wide centred on each core boundary; the ramps of
neighbours sum to exactly one, so wherever the context (``pad - band/2``) covers the network's
receptive field the tiled result equals whole-image inference up to float rounding.

On out-of-memory the failing batch is retried one tile at a time, then the failing tile is split
into four smaller ones (finished tiles are kept), down to a minimum size.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

import torch

from .device import is_oom
from .errors import CancelledError, OutOfMemoryError

#: callback(done, total) in input pixels; returning False cancels
Progress = Callable[[int, int], "bool | None"]
MIN_TILE = 32


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


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def plan_spans(length: int, tile: int, pad: int, multiple: int = 1) -> list[Span]:
    """Split ``length`` into near-equal cores of at most ``tile`` with windows of one shared size."""
    if length <= 0:
        raise ValueError("cannot tile an empty axis")
    tile = max(1, tile)
    count = math.ceil(length / tile)
    bounds = [round(k * length / count) for k in range(count + 1)]
    longest = max(b - a for a, b in zip(bounds, bounds[1:]))
    size = longest + 2 * pad if count > 1 else length
    size = min(length, _round_up(size, multiple))
    return [Span(a, b, min(max(a - pad, 0), length - size), size) for a, b in zip(bounds, bounds[1:])]


def plan_tiles(height: int, width: int, tile: int, pad: int, multiple: int = 1) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` image, row by row."""
    ys = plan_spans(height, tile, pad, multiple)
    xs = plan_spans(width, tile, pad, multiple)
    return [Tile(y, x) for y in ys for x in xs]


def ramp(span: Span, length: int, scale: int, band: int) -> tuple[int, torch.Tensor]:
    """Blend weights of one axis, over the output range where they are non-zero.

    Returns the first output index and the weights. A core edge on the image border has no ramp.
    """
    half = band * scale / 2
    lo_out = span.lo * scale - (half if span.lo > 0 else 0)
    hi_out = span.hi * scale + (half if span.hi < length else 0)
    first, last = max(0, math.floor(lo_out)), min(length * scale, math.ceil(hi_out))
    centres = torch.arange(first, last, dtype=torch.float64) + 0.5
    weight = torch.ones_like(centres)
    if band > 0 and span.lo > 0:
        weight *= ((centres - (span.lo * scale - half)) / (band * scale)).clamp(0, 1)
    if band > 0 and span.hi < length:
        weight *= (((span.hi * scale + half) - centres) / (band * scale)).clamp(0, 1)
    return first, weight.float()


def _split_span(span: Span, length: int, pad: int, multiple: int) -> list[Span]:
    mid = (span.lo + span.hi) // 2
    halves = [(span.lo, mid), (mid, span.hi)]
    longest = max(b - a for a, b in halves)
    size = min(length, _round_up(longest + 2 * pad, multiple))
    return [Span(a, b, min(max(a - pad, 0), length - size), size) for a, b in halves]


def _split(tile: Tile, height: int, width: int, pad: int, multiple: int) -> list[Tile]:
    ys = _split_span(tile.y, height, pad, multiple) if tile.y.hi - tile.y.lo >= 2 * MIN_TILE else [tile.y]
    xs = _split_span(tile.x, width, pad, multiple) if tile.x.hi - tile.x.lo >= 2 * MIN_TILE else [tile.x]
    return [Tile(y, x) for y in ys for x in xs]


def run_tiled(
    run: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    scale: int,
    *,
    tile: int,
    context: int,
    band: int = 8,
    batch: int = 1,
    multiple: int = 1,
    progress: Progress | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Upscale ``image`` (1, C, H, W) with ``run`` tile by tile into ``out`` (1, C, H*s, W*s).

    ``run`` maps an (N, C, h, w) float32 CPU batch to (N, C, h*s, w*s) float32 on the CPU.
    ``context`` is the receptive-field radius the network needs for exact results.
    """
    _, channels, height, width = image.shape
    if out is None:
        out = torch.zeros((1, channels, height * scale, width * scale), dtype=torch.float32)
    else:
        out.zero_()
    whole = tile <= 0 or (height <= tile and width <= tile)
    band = 0 if whole else max(0, min(band, tile // 2))
    pad = context + math.ceil(band / 2)
    queue: deque[Tile] = deque(plan_tiles(height, width, max(height, width) if whole else tile, pad, multiple))
    total, done = height * width, 0
    limit = max(max(t.y.hi - t.y.lo, t.x.hi - t.x.lo) for t in queue)

    while queue:
        first = queue.popleft()
        if max(first.y.hi - first.y.lo, first.x.hi - first.x.lo) > limit:
            queue.extendleft(reversed(_split(first, height, width, pad, multiple)))
            continue
        group = [first]
        while queue and len(group) < batch and _shape(queue[0]) == _shape(first):
            group.append(queue.popleft())
        windows = [image[:, :, t.y.start : t.y.start + t.y.size, t.x.start : t.x.start + t.x.size] for t in group]
        try:
            result = run(torch.cat(windows) if len(windows) > 1 else windows[0])
        except Exception as exc:  # only out-of-memory is handled; anything else propagates
            if not is_oom(exc):
                raise
            _free_cache()
            if len(group) > 1:
                batch = max(1, len(group) // 2)
                queue.extendleft(reversed(group))
                continue
            smaller = _split(first, height, width, pad, multiple)
            if len(smaller) == 1:
                raise OutOfMemoryError(
                    f"out of memory even with {first.y.hi - first.y.lo}x{first.x.hi - first.x.lo} tiles; "
                    "close other programs, use --device cpu, or a smaller model"
                ) from None
            limit = max(max(t.y.hi - t.y.lo, t.x.hi - t.x.lo) for t in smaller)
            queue.extendleft(reversed(smaller))
            continue
        for i, t in enumerate(group):
            _accumulate(out, result[i : i + 1], t, height, width, scale, band)
            done += t.area
        if progress is not None and progress(done, total) is False:
            raise CancelledError("cancelled")
    return out


def _shape(tile: Tile) -> tuple[int, int]:
    return tile.y.size, tile.x.size


def _accumulate(out: torch.Tensor, result: torch.Tensor, tile: Tile, height: int, width: int, scale: int, band: int) -> None:
    y0, wy = ramp(tile.y, height, scale, band)
    x0, wx = ramp(tile.x, width, scale, band)
    oy, ox = y0 - tile.y.start * scale, x0 - tile.x.start * scale
    piece = result[:, :, oy : oy + len(wy), ox : ox + len(wx)]
    target = out[:, :, y0 : y0 + len(wy), x0 : x0 + len(wx)]
    if band == 0 or (bool((wy == 1).all()) and bool((wx == 1).all())):
        target.copy_(piece)
    else:
        target.add_(piece * (wy[:, None] * wx[None, :]))


def _free_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and hasattr(mps, "empty_cache") and torch.backends.mps.is_available():
        mps.empty_cache()

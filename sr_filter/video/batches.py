"""Several frames through the network in one pass: the decoded stream grouped into small lists.

The decoder yields frames mixed with packets of the streams that are copied (audio, subtitles);
:func:`chunks` groups that stream, order kept, into lists holding at most ``size`` frames, and
:func:`upscale_chunk` runs the frames of one list through :meth:`Upscaler.upscale_batch` together.
The default size is measured in docs/video.md ("Frames per pass").
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import SrFilterError
from .source import Frame

#: frames per network pass in the video path (docs/video.md, "Frames per pass")
FRAME_BATCH = 2


def check_batch(batch: object) -> int:
    """``batch`` (None for the default) as a whole number of frames of at least 1."""
    if batch is None:
        return FRAME_BATCH
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or not 1 <= batch <= 64:
        raise SrFilterError(f"the number of frames per pass must be a whole number from 1 to 64, not {batch!r}")
    return int(batch)


def chunks(items: Iterable[Any], size: int, is_frame: Callable[[Any], bool] | None = None,
           starts: Callable[[Any], bool] | None = None) -> Iterator[list[Any]]:
    """Consecutive items in lists that each hold at most ``size`` frames (and the packets between);
    ``is_frame`` tells frames from other items (default: :class:`~.source.Frame` objects). A frame
    for which ``starts`` is true opens a new list, so a resumable run pairs the frames of each
    segment as a cluster worker, which sees that segment alone, does: the same frames in one pass
    give the same pixels, to the last bit, on every CPU."""
    counts = is_frame or (lambda item: isinstance(item, Frame))
    chunk: list[Any] = []
    frames = 0
    try:
        for item in items:
            if starts is not None and frames and counts(item) and starts(item):
                yield chunk
                chunk, frames = [], 0
            chunk.append(item)
            if counts(item):
                frames += 1
                if frames == size:
                    yield chunk
                    chunk, frames = [], 0
    except Exception:
        if chunk:  # the input ended in an error: what was read before it still goes on
            yield chunk
        raise
    if chunk:
        yield chunk


def upscale_chunk(chunk: list[Any], upscaler: Any, scale: float | None, fit: Callable[[Any], Any]) -> list[Any]:
    """Upscale the frames of one list together (each result passed through ``fit``); packets untouched."""
    frames = [item for item in chunk if isinstance(item, Frame)]
    if frames:
        for frame, big in zip(frames, upscaler.upscale_batch([f.array for f in frames], scale)):
            frame.array = fit(big)
    return chunk


def flatten(lists: Iterable[list[Any]]) -> Iterator[Any]:
    """The items of consecutive lists, in order."""
    for chunk in lists:
        yield from chunk


def queue_depth(size: int) -> int:
    """Lists held between two stages: about as many frames as unbatched (4), and at least 2 lists."""
    return max(2, -(-4 // size))


def fit(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Trim or edge-pad an upscaled frame by the pixel that rounding to even sizes may add."""
    width, height = size
    array = array[:height, :width]
    pad_h, pad_w = height - array.shape[0], width - array.shape[1]
    if pad_h or pad_w:
        array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return array

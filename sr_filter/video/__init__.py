"""Video files through the upscaler: ``upscale_video(src, dst)`` and ``upscale_frames(frames)``.

Decoding and encoding use PyAV (FFmpeg's libraries); see docs/video.md. Importing this package
does not import PyAV; the names below load their modules on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..sniff import VIDEO_CONTAINERS as CONTAINERS  # output suffix -> FFmpeg container
#: containers read but not written (MPEG transport streams, Flash video, ...): upscaled into .mkv by default
from ..sniff import VIDEO_READ_ONLY as READ_ONLY_SUFFIXES

#: input suffixes routed to the video path
VIDEO_SUFFIXES = frozenset({*CONTAINERS, ".y4m"})

_LAZY = {"upscale_video": ".job", "CODECS": ".encode"}
if TYPE_CHECKING:  # what _LAZY gives, for type checkers (a typed caller's upscale_video had been "Any? not callable")
    from .encode import CODECS
    from .job import upscale_video


def interlace_line(what: str, order: str) -> str:
    """The notice for interlaced pictures (``what``: "the source", "the stream"; ``order``: "top
    field first", ...): both fields go through the network as one picture."""
    return (f"{what} is interlaced ({order}): both fields are upscaled together as one picture and written "
            "progressive, which enlarges the combing on motion; deinterlace it first (for example ffmpeg -vf bwdif)")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def upscale_frames(frames: Iterable[Any], upscaler: Any, scale: float | None = None, batch: int = 1) -> Iterator[Any]:
    """Upscale frames from the caller's own decoder, in order (HxWxC uint8/uint16 numpy arrays in,
    the same dtype out). ``batch`` frames at a time go through the network together
    (:meth:`~sr_filter.upscaler.Upscaler.upscale_batch`); memory stays at that many frames
    whatever the length."""
    from ..convert import check_array
    from ..upscaler import as_upscaler
    from .batches import check_batch

    batch = check_batch(batch)
    upscaler = as_upscaler(upscaler)
    group: list[Any] = []
    for index, frame in enumerate(frames):
        check_array(frame, f"frame {index}")  # its place in the stream (upscale_batch's arrays[1]: in a batch)
        group.append(frame)
        if len(group) == batch:
            yield from upscaler.upscale_batch(group, scale)
            group = []
    if group:
        yield from upscaler.upscale_batch(group, scale)


__all__ = ["CODECS", "CONTAINERS", "READ_ONLY_SUFFIXES", "VIDEO_SUFFIXES", "upscale_frames", "upscale_video"]

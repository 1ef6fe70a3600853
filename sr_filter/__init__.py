"""sr_filter: image super-resolution as a Python API, a CLI and a GIMP 3 plug-in.

>>> import sr_filter
>>> big = sr_filter.upscale(image, preset="cartoon")          # PIL image or numpy array
>>> up = sr_filter.Upscaler("photo", device="auto")            # load once, reuse
>>> outputs = [up.upscale(im, scale=2) for im in images]
>>> sr_filter.upscale_animation("anim.gif", "anim_x4.gif", "cartoon")   # every frame, timing kept

Importing this package does no I/O and touches no GPU.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import (
    BackendError,
    CancelledError,
    ChecksumError,
    DeviceError,
    DownloadError,
    ImageFormatError,
    ImageTooLargeError,
    ManifestError,
    OutOfMemoryError,
    OutputExistsError,
    SrFilterError,
    UnknownModelError,
    VideoFormatError,
    WeightsFormatError,
)

if TYPE_CHECKING:  # imported on first use (see __getattr__): `sr-filter --help` must not load torch
    from .manifest import load_manifest
    from .tiling import Progress
    from .upscaler import Upscaler
    from .video import upscale_video

from .version import __version__

#: public names whose modules import torch (or are only needed for work): loaded on first access
_LAZY = {"Upscaler": "upscaler", "Progress": "tiling", "load_manifest": "manifest", "upscale_video": "video"}


def __getattr__(name: str) -> Any:
    """Import the heavy parts of the API on first use, so importing the package stays instant."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def upscale(
    image: Any,
    preset: str | None = None,
    *,
    model: str | os.PathLike | None = None,
    scale: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    progress: Progress | None = None,
    backend: str = "auto",
) -> Any:
    """Upscale one PIL image or numpy array; returns the same kind.

    ``preset`` is ``photo`` (default), ``cartoon`` or ``face``; ``model`` (a manifest name or a
    weights file, also as a ``pathlib.Path``) overrides it; ``backend`` is ``auto``, ``torch`` or
    ``openvino``. ``scale`` defaults to the model's own; other values resample the
    model's output. To process many images, create an :class:`Upscaler` once instead.
    """
    from .upscaler import Upscaler

    upscaler = Upscaler(model if model is not None else preset, device=device, precision=precision, tile=tile,
                        offline=offline, backend=backend)
    frames = getattr(image, "n_frames", 1) if getattr(image, "is_animated", False) else 1
    if frames > 1:
        import logging

        logging.getLogger(__name__).warning("the image has %d frames; only the current one is upscaled "
                                            "(sr_filter.upscale_animation keeps every frame)", frames)
    return upscaler.upscale(image, scale=scale, progress=progress)


def upscale_animation(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    preset: str | None = None,
    *,
    model: str | os.PathLike | None = None,
    upscaler: Upscaler | None = None,
    scale: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    backend: str = "auto",
    quality: int | None = None,
    overwrite: bool = False,
    frames: str | tuple[int, int | None] | None = None,
    progress: Progress | None = None,
) -> Any:
    """Upscale every frame of an animated GIF, WebP or APNG file ``src`` into ``dst`` (``frames``:
    only frames START to END-1, as ``"START:END"`` or ``(start, end)``).

    The format comes from ``dst``'s suffix (``.gif``, ``.webp``, ``.png``, ``.apng``); durations,
    loop count and disposal are kept, and ``dst`` appears whole or not at all (an existing file
    only with ``overwrite``). Pass a ready ``upscaler`` to reuse a loaded model, else ``preset`` /
    ``model`` and the options of :func:`upscale`; ``progress`` is called with (frames done,
    frames) after each frame (returning False stops; nothing is written). Returns the
    :class:`~sr_filter.animation.Animation` written (upscaled RGBA frames and their timing).
    """
    from .animation import upscale_animation as upscale_frames_of

    if upscaler is None:
        from .upscaler import Upscaler

        upscaler = Upscaler(model if model is not None else preset, device=device, precision=precision, tile=tile,
                            offline=offline, backend=backend)
    return upscale_frames_of(src, dst, upscaler, scale=scale, quality=quality, overwrite=overwrite, frames=frames,
                            progress=progress)


__all__ = [
    "BackendError",
    "CancelledError",
    "ChecksumError",
    "DeviceError",
    "DownloadError",
    "ImageFormatError",
    "ImageTooLargeError",
    "ManifestError",
    "OutOfMemoryError",
    "OutputExistsError",
    "Progress",
    "SrFilterError",
    "UnknownModelError",
    "Upscaler",
    "VideoFormatError",
    "WeightsFormatError",
    "__version__",
    "load_manifest",
    "upscale",
    "upscale_animation",
    "upscale_video",
]

"""sr_filter: image super-resolution as a Python API, a CLI and a GIMP 3 plug-in.

>>> import sr_filter
>>> big = sr_filter.upscale(image, preset="cartoon")          # PIL image or numpy array
>>> up = sr_filter.Upscaler("photo", device="auto")            # load once, reuse
>>> outputs = [up.upscale(im, scale=2) for im in images]

Importing this package does no I/O and touches no GPU.
"""

from __future__ import annotations

from typing import Any

from .errors import (
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
from .manifest import load_manifest
from .tiling import Progress
from .upscaler import Upscaler

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``upscale_video`` loads PyAV only when first used."""
    if name == "upscale_video":
        from .video import upscale_video

        return upscale_video
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def upscale(
    image: Any,
    preset: str | None = None,
    *,
    model: str | None = None,
    scale: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    progress: Progress | None = None,
) -> Any:
    """Upscale one PIL image or numpy array; returns the same kind.

    ``preset`` is ``photo`` (default), ``cartoon`` or ``face``; ``model`` (a manifest name or a
    weights file) overrides it. ``scale`` defaults to the model's own; other values resample the
    model's output. To process many images, create an :class:`Upscaler` once instead.
    """
    upscaler = Upscaler(model or preset, device=device, precision=precision, tile=tile, offline=offline)
    return upscaler.upscale(image, scale=scale, progress=progress)


__all__ = [
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
    "upscale_video",
]

"""sr_filter: image super-resolution as a Python API, a CLI and a GIMP 3 plug-in.

>>> import sr_filter
>>> big = sr_filter.upscale(image, preset="cartoon")          # PIL image or numpy array
>>> up = sr_filter.Upscaler("photo", device="auto")            # load once, reuse
>>> outputs = [up.upscale(im, scale=2) for im in images]
>>> sr_filter.upscale_file("scan.tif", "scan_x4.tif", "photo")         # 16-bit, alpha, metadata kept
>>> sr_filter.upscale_animation("anim.gif", "anim_x4.gif", "cartoon")   # every frame, timing kept

Importing this package does no I/O and touches no GPU.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    BackendError,
    CacheError,
    CancelledError,
    CheckpointError,
    ChecksumError,
    ClusterError,
    CommunityModelError,
    ConfigError,
    DataError,
    DenoiseError,
    DeviceError,
    DownloadError,
    DownloadSettingError,
    EvaluationError,
    ExportError,
    ImageFormatError,
    ImageTooLargeError,
    InputTooLargeError,
    ManifestError,
    ModelRunError,
    NetworkUnavailableError,
    OfflineError,
    OutOfMemoryError,
    OutputCollisionError,
    OutputExistsError,
    OutputIsInputError,
    SrFilterError,
    TrainingError,
    UnknownModelError,
    VideoDamagedError,
    VideoEndsEarlyError,
    VideoFormatError,
    WeightsFormatError,
    WholeTooLargeError,
)

if TYPE_CHECKING:  # imported on first use (see __getattr__): `sr-filter --help` must not load torch
    import sr_filter

    from .animation import Animation
    from .manifest import load_manifest
    from .tiling import Progress
    from .upscaler import Upscaler
    from .video.job import upscale_video
else:  # the annotations name the lazy names as this package's (sr_filter.Upscaler), so that typing.get_type_hints
    sr_filter = sys.modules[__name__]  # (IDEs, sphinx-autodoc, validators) finds them through __getattr__

from .version import __version__

#: public names whose modules import torch (or are only needed for work): loaded on first access
_LAZY = {"Upscaler": "upscaler", "Progress": "tiling", "load_manifest": "manifest", "upscale_video": "video",
         "Animation": "animation"}  # the latter: what upscale_animation returns


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
    return sorted((set(globals()) - {"sr_filter"}) | set(_LAZY))


def _upscaler(upscaler: sr_filter.Upscaler | None, preset: str | None, model: str | os.PathLike | None,
              **options: Any) -> sr_filter.Upscaler:
    """The ready ``upscaler``, else one loaded from ``model`` or ``preset``."""
    from .upscaler import given_or_loaded

    return given_or_loaded(upscaler, model if model is not None else preset, **options)


def upscale(
    image: Any,
    preset: str | None = None,
    *,
    model: str | os.PathLike | None = None,
    upscaler: sr_filter.Upscaler | None = None,
    scale: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    progress: sr_filter.Progress | None = None,
    backend: str = "auto",
    tta: bool = False,
    denoise: float | None = None,
    colour_fix: bool | None = None,
) -> Any:
    """Upscale one PIL image or numpy array; returns the same kind.

    ``preset`` is ``photo`` (default), ``cartoon`` or ``face``; ``model`` (a manifest name or a
    weights file, also as a ``pathlib.Path``) overrides it, or pass a ready ``upscaler`` to reuse a loaded
    model (as :func:`upscale_file` takes it; its settings are its own); ``backend`` is ``auto``, ``torch`` or
    ``openvino``; ``tta`` averages the eight flips and rotations; ``denoise`` (0..1) sets the
    denoising strength of a model that has one; ``colour_fix`` keeps the input's colour over
    areas, where networks shift flat colours by a few levels. ``scale`` defaults to the model's own; other values
    resample the model's output. To process many images, create an :class:`Upscaler` once
    instead; for image files (16-bit, alpha and metadata kept), :func:`upscale_file`. A PIL
    image's colour key (``info["transparency"]``) becomes an alpha channel; a 16-bit grey one's
    gives an 8-bit "LA" image, with a warning (Pillow has no 16-bit grey + alpha mode).
    Arguments that need no model (``image``'s kind, ``scale``, ``progress``) are checked before it loads.
    """
    from PIL import Image

    from .convert import check_array
    from .sizing import check_scale_request
    from .upscaler import check_callback

    if not isinstance(image, Image.Image):
        check_array(image)  # a file name, bytes or a list had been said after seconds of loading
    check_scale_request(scale)
    check_callback("progress", progress)
    upscaler = _upscaler(upscaler, preset, model, device=device, precision=precision, tile=tile, offline=offline,
                         backend=backend, tta=tta, denoise=denoise, colour_fix=colour_fix)
    return upscaler.upscale(image, scale=scale, progress=progress)


def _refuse_video(source: Path, takes: str) -> None:
    """A video given to a picture call is pointed to upscale_video (it had been "not a readable image
    (damaged)"); ``takes`` says what the call takes instead."""
    from .video import READ_ONLY_SUFFIXES, VIDEO_SUFFIXES

    if source.suffix.lower() in VIDEO_SUFFIXES | READ_ONLY_SUFFIXES:
        raise SrFilterError(f"{source} is a video; sr_filter.upscale_video(src, dst) upscales videos ({takes})")


def upscale_animation(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    preset: str | None = None,
    *,
    model: str | os.PathLike | None = None,
    upscaler: sr_filter.Upscaler | None = None,
    scale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    backend: str = "auto",
    quality: int | None = None,
    overwrite: bool = False,
    frames: str | tuple[int, int | None] | None = None,
    progress: sr_filter.Progress | None = None,
    tta: bool = False,
    denoise: float | None = None,
    colour_fix: bool | None = None,
) -> sr_filter.Animation:
    """Upscale every frame of an animated GIF, WebP, APNG or AVIF file ``src`` into ``dst`` (``frames``:
    only frames START to END-1, as ``"START:END"`` or ``(start, end)``).

    The format comes from ``dst``'s suffix (``.gif``, ``.webp``, ``.png``, ``.apng``, ``.avif``); durations,
    loop count and disposal are kept, and ``dst`` appears whole or not at all (an existing file
    only with ``overwrite``). ``width``/``height`` pick the scale that fits the frames inside them
    instead of ``scale``. Pass a ready ``upscaler`` to reuse a loaded model, else ``preset`` /
    ``model`` and the options of :func:`upscale`; ``progress`` is called with (frames done,
    frames) after each frame (returning False stops; nothing is written). Returns the
    :class:`~sr_filter.animation.Animation` written (upscaled RGBA frames and their timing).
    ``src`` and ``dst`` may start with ``~``, the home folder. Every argument that needs no model
    (the paths, the source's header, the output's folder and format, sizes, flags, callbacks) is
    checked before the model loads.
    """
    from . import animation, atomic
    from .sizing import check_size_request
    from .upscaler import check_path

    _refuse_video(check_path("src", src), "upscale_animation takes animated GIF, WebP, PNG and AVIF")
    width, height = check_size_request(scale, width, height)
    with atomic.new_folders():  # folders made for an output that is never written are removed
        target = animation.check_job(src, dst, overwrite=overwrite, quality=quality, frames=frames, progress=progress)
        upscaler = _upscaler(upscaler, preset, model, device=device, precision=precision, tile=tile, offline=offline,
                             backend=backend, tta=tta, denoise=denoise, colour_fix=colour_fix)
        return animation.write_animation(target, upscaler, scale=scale, frames=frames, progress=progress,
                                         size=(width, height))


def upscale_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    preset: str | None = None,
    *,
    model: str | os.PathLike | None = None,
    upscaler: sr_filter.Upscaler | None = None,
    scale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    backend: str = "auto",
    tta: bool = False,
    denoise: float | None = None,
    colour_fix: bool | None = None,
    format: str | None = None,
    quality: int | None = None,
    overwrite: bool = False,
    progress: sr_filter.Progress | None = None,
) -> Path:
    """Upscale the image file ``src`` into ``dst``, as ``sr-filter SRC -o DST`` does: 16-bit
    samples, alpha, ICC profile, EXIF (sizes updated), XMP, DPI and text kept; an animated GIF,
    WebP, APNG or AVIF keeps every frame when ``dst`` holds animation.

    The format comes from ``dst``'s suffix, or ``format`` (``"png"``, ``"jpg"``, ``"webp"``,
    ``"avif"``, ``"tiff"``, ``"tga"``, ``"ppm"``, ``"pam"``, ...). ``width``/``height`` pick the
    scale that fits the image inside them instead of ``scale``. ``dst`` appears whole or not at all and an existing file is replaced only with
    ``overwrite``. Pass a ready ``upscaler`` to reuse a loaded model, else ``preset``/``model`` and
    the options of :func:`upscale`. ``src`` and ``dst`` may start with ``~``, the home folder.
    Returns ``dst`` as a :class:`~pathlib.Path` (``~`` expanded). Every argument that needs no
    model (the paths, the source's header, the output's folder and format, sizes, flags,
    callbacks) is checked before the model loads, as the command line checks them.
    """
    from . import atomic, imageio
    from .encode import quality_unused
    from .imagefile import upscale_image_file
    from .sizing import check_size_request
    from .upscaler import check_callback, check_dst_file, check_flag, check_path, check_quality

    source, target = check_path("src", src), check_path("dst", dst)
    _refuse_video(source, "upscale_file takes pictures and animated GIF, WebP, PNG and AVIF")
    overwrite = check_flag("overwrite", overwrite)
    check_callback("progress", progress)
    width, height = check_size_request(scale, width, height)
    quality = check_quality(quality)
    imageio.check_format(format)
    check_dst_file(dst, source, overwrite=overwrite)
    imageio.check_source(source)  # a missing or damaged input had been found after the model loaded
    out_format = imageio.target_format(target, format)  # None: the input's (a stream such as /dev/stdout)
    conflict = imageio.suffix_conflict(target, out_format) if format else None
    unused = quality_unused({out_format}) if quality is not None and out_format is not None else None
    for warning in (conflict, unused):  # unused: quality=50 for a PNG had changed nothing without a word
        if warning:
            import logging

            logging.getLogger(__name__).warning("%s", warning)
    with atomic.new_folders():  # folders made for an output that is never written are removed
        atomic.prepare_target(target, overwrite=overwrite)  # before the work, as the command line does
        upscaler = _upscaler(upscaler, preset, model, device=device, precision=precision, tile=tile, offline=offline,
                             backend=backend, tta=tta, denoise=denoise, colour_fix=colour_fix)
        data = upscale_image_file(upscaler, source, out_format=out_format, scale=scale, size=(width, height),
                                  quality=quality, progress=progress, name=str(source))
        atomic.write_atomic(data, target, overwrite=overwrite)
    return target


__all__ = [
    "BackendError",
    "CacheError",
    "CancelledError",
    "CheckpointError",
    "ChecksumError",
    "ClusterError",
    "CommunityModelError",
    "ConfigError",
    "DataError",
    "DenoiseError",
    "DeviceError",
    "DownloadError",
    "DownloadSettingError",
    "EvaluationError",
    "ExportError",
    "ImageFormatError",
    "ImageTooLargeError",
    "InputTooLargeError",
    "ManifestError",
    "ModelRunError",
    "NetworkUnavailableError",
    "OfflineError",
    "OutOfMemoryError",
    "OutputCollisionError",
    "OutputExistsError",
    "OutputIsInputError",
    "Progress",
    "SrFilterError",
    "TrainingError",
    "UnknownModelError",
    "Upscaler",
    "VideoDamagedError",
    "VideoEndsEarlyError",
    "VideoFormatError",
    "WeightsFormatError",
    "WholeTooLargeError",
    "__version__",
    "load_manifest",
    "upscale",
    "upscale_animation",
    "upscale_file",
    "upscale_video",
]

"""One image file upscaled: read it, refuse an output its format cannot hold, upscale, encode.

The one core of every file-at-a-time path (the CLI's files, folders and pipes; the cluster's
workers), so they all refuse the same things before the work and write the same bytes. It
returns the encoded file; publishing it (an atomic rename, an object store, standard output) is
the caller's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from .metadata import sides_scale
from .sizing import scaled_length, target_scale

if TYPE_CHECKING:
    from .tiling import Progress
    from .upscaler import Upscaler


def upscale_image_file(
    upscaler: Upscaler,
    source: str | Path | bytes | BinaryIO,
    *,
    out_format: str | None = None,
    scale: float | None = None,
    size: tuple[int | None, int | None] = (None, None),
    quality: int | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    before_work: Callable[[], None] | None = None,
    frames: str | tuple[int, int | None] | None = None,
) -> bytes:
    """Upscale the image in ``source`` (a path, its bytes or a binary stream) and encode it.

    ``out_format`` is a Pillow format name (``"PNG"``, ``"JPEG"``, ...; see
    :data:`sr_filter.imageio.FORMATS`); None writes the input's own format. ``scale`` defaults to
    the model's; ``size`` = ``(width, height)`` (either may be None) picks the scale that fits the
    image inside them instead. ``quality`` is the JPEG/WebP/AVIF quality, ``name`` names the source in
    messages. Metadata (ICC, EXIF, DPI, 16-bit samples, alpha) is carried over as
    :func:`~sr_filter.imageio.read_image` and :func:`~sr_filter.imageio.encode_image` do.
    An animated GIF/WebP/PNG (a path or bytes, not a stream) written as a format that holds animation
    keeps every frame and its timing (:func:`sr_filter.animation.upscale_to_bytes`; ``progress`` then
    counts frames; ``frames``, ``"START:END"``, keeps frames START to END-1 of it); written as another
    format, its first frame is upscaled, with a notice.
    An output larger than the format holds is refused after reading the header and pixels but
    before the upscale; ``before_work`` is called just before the upscale (the CLI announces
    the model there, so a bad input stays a one-line error).
    """
    from . import animation, imageio

    scale = None if scale is None else upscaler.check_scale(scale)  # NaN or inf had reached the memory estimate
    animated = animation.animated_format(source) if isinstance(source, (str, Path, bytes)) else None
    if animated is not None:
        fmt = out_format or same_format(animated)
        if fmt in animation.HOLDS_ANIMATION:  # every frame, with its timing (else the first, with a notice)
            label = name or (str(source) if isinstance(source, (str, Path)) else "the image")
            return animation.upscale_to_bytes(source, upscaler, fmt, scale=scale, size=size, quality=quality, frames=frames,
                                              before_work=before_work, progress=progress, name=label)[1]
    factor = float(scale or upscaler.scale)
    array, meta = imageio.read_image(source, scale=factor, model_scale=upscaler.scale, name=name, size=size)
    if any(size):
        label = name or (str(source) if isinstance(source, (str, Path)) else "standard input")
        scale = target_scale(size[0], size[1], array.shape, label)
        factor = scale
    out_format = out_format or same_format(meta.format)
    imageio.check_encodable(out_format, scaled_length(array.shape[1], factor), scaled_length(array.shape[0], factor))
    if before_work is not None:
        before_work()
    result = upscaler.upscale_array(array, scale, progress=progress)
    return imageio.encode_image(result, out_format, meta, quality=quality, scale=sides_scale(array.shape, result.shape))


def same_format(name: str | None) -> str:
    """The output format that keeps the input's (a camera's MPO is a JPEG; unknown ones PNG)."""
    from . import imageio

    name = {"MPO": "JPEG"}.get(name or "", name or "")
    return name if name in set(imageio.FORMATS.values()) else "PNG"

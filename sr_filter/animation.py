"""Animated GIF, WebP and APNG: every frame upscaled, with durations, loop count and disposal kept.

Pillow hands out each frame already composited onto the canvas, so every frame is a complete
picture; writing complete pictures with the source's disposal methods shows the same animation.
GIF output is re-quantised frame by frame (each frame its own 255-colour palette, dithered, one
index kept for transparency), because a single shared palette cannot hold what upscaling adds.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageSequence

from .atomic import is_stream, new_folders, prepare_target
from .device import available_ram
from .encode import GIF_TRANSPARENT, avif_quality, gif_frame, quality_unused, say_soft_alpha_cut, webp_quality
from .errors import CancelledError, ImageFormatError, ImageTooLargeError, VideoFormatError, first_line
from .frames import parse_range, range_text
from .metadata import Scale, sides_scale
from .progress import cancels

log = logging.getLogger(__name__)

#: output suffix -> Pillow format
FORMATS = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG", ".apng": "PNG", ".avif": "AVIF"}
#: the Pillow formats that hold an animation; other outputs get the first frame (with a notice)
HOLDS_ANIMATION = ("GIF", "WEBP", "PNG", "AVIF")


@dataclass
class Animation:
    """Complete RGBA frames (uint8; uint16 from a 16-bit APNG) and their timing."""

    frames: list[np.ndarray]
    durations: list[int]  # milliseconds, one per frame
    #: as the format read counts it: 0 = forever; GIF: repeats after the first play, None = no loop
    #: block (play once); APNG and WebP: plays. Converted when written as another format.
    loop: int | None = 0
    disposal: list[int] = field(default_factory=list)  # GIF/APNG disposal method per frame
    blend: list[int] = field(default_factory=list)  # APNG blend operation per frame
    #: the Pillow format (GIF, WEBP, PNG or AVIF) whose numbering ``disposal`` (and ``loop``) are in, as
    #: read; None: the numbering of the format written
    format: str | None = None
    #: what the file carries besides its frames (ICC profile, EXIF, XMP, DPI, text), as read
    meta: Any = None
    #: read from a 16-bit APNG whose 16-bit frames could not be decoded: they hold 8 bits (said when written)
    deep: bool = False

    def __repr__(self) -> str:  # the dataclass's would print every frame's pixels
        size = "x".join(str(n) for n in self.frames[0].shape[1::-1]) if self.frames else "no"
        count = f"{len(self.frames)} frame{'' if len(self.frames) == 1 else 's'}"  # a still read as one: "1 frames"
        return (f"Animation({count} of {size} pixels, {sum(self.durations)} ms, loop={self.loop}, "
                f"format={self.format})")


#: what Pillow raises on a damaged or truncated animation (its GIF reader: IndexError, struct.error)
_DAMAGED = (OSError, ValueError, IndexError, EOFError, SyntaxError, struct.error)


def _unreadable(exc: BaseException, name: str) -> VideoFormatError:
    """What stopped an animation from being read, in one line (a missing file or a folder had
    been called "truncated or damaged")."""
    if isinstance(exc, FileNotFoundError):
        return VideoFormatError(f"{name} does not exist")
    if isinstance(exc, IsADirectoryError):
        return VideoFormatError(f"{name} is a folder, not an animation")
    if isinstance(exc, PermissionError):
        return VideoFormatError(f"cannot read {name}: permission denied")
    if isinstance(exc, Image.UnidentifiedImageError):
        return VideoFormatError(f"{name} is not a readable image (unknown or damaged format)")
    return VideoFormatError(f"{name} is truncated or damaged ({first_line(exc) or type(exc).__name__})")


def _raw(source: str | Path | bytes) -> Any:
    """A path as it is, or the file's bytes as a stream."""
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source


def _opened(source: str | Path | bytes) -> Any:
    """Pillow's lazy open of a path or bytes; a PNG it refuses for a damaged metadata chunk is
    opened without that chunk (:mod:`.salvage`; quiet here: the read that follows says it)."""
    from .imageio import pil_open

    try:
        return pil_open(_raw(source))
    except _DAMAGED:
        data = _salvaged(source, quiet=True)
        if data is None:
            raise
        return pil_open(io.BytesIO(data))  # (the same error again where nothing was left out)


def _salvaged(source: str | Path | bytes, name: str | None = None, *, quiet: bool = False) -> bytes | None:
    """A PNG's bytes (a path's read) without its damaged metadata chunks (:func:`.salvage.repaired`,
    which warns naming ``name`` unless ``quiet``); None for anything but a PNG."""
    from .png import PNG_SIGNATURE
    from .salvage import repaired

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        with open(source, "rb") as stream:  # a GIF or WebP is not read whole here
            if stream.read(8) != PNG_SIGNATURE:
                return None
        data = Path(source).read_bytes()
    if data[:8] != PNG_SIGNATURE:
        return None
    return repaired(data, name or _label(source), quiet=quiet)


def _check_png_data(source: str | Path | bytes, name: str) -> None:
    """VideoFormatError naming the damage where a PNG's picture data is cut short or a frame's
    chunk fails its CRC (:func:`.png.check_complete`); nothing for other formats."""
    from .png import check_complete

    if isinstance(source, (bytes, bytearray, memoryview)):
        try:
            check_complete(bytes(source), name)
        except ImageFormatError as exc:
            raise VideoFormatError(str(exc)) from None


def is_animated(source: str | Path | bytes) -> bool:
    """True for a GIF, WebP, PNG or AVIF file (a path, or its bytes) with more than one frame (reads the headers only)."""
    return animated_format(source) is not None


def animated_format(source: str | Path | bytes) -> str | None:
    """The Pillow format (GIF, WEBP, PNG or AVIF) of an animated file (a path, or its bytes); None for a
    still image or anything unreadable (the image path reports what is wrong with it)."""
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() not in FORMATS:
        return None
    try:
        with _opened(source) as image:
            if image.format not in HOLDS_ANIMATION:
                return None
            try:
                animated = bool(getattr(image, "is_animated", False))
            except _DAMAGED:  # a frame after the first is damaged: the animation path says so
                return image.format
            return image.format if animated else None
    except _DAMAGED + (Image.DecompressionBombError,):
        return None


def read_animation(path: str | Path | bytes, name: str | None = None, *,
                   frames: tuple[int, int | None] = (0, None)) -> Animation:
    """All frames of an animated image (a path, or the file's bytes, named ``name`` in messages), as
    RGBA uint8 arrays (uint16 for a 16-bit APNG, which libpng decodes: Pillow reads it at 8 bits);
    ``frames`` = (start, end or None) keeps frames start to end-1 only."""
    from .metadata import orient, png_text, read_meta, upright_dpi
    from .png import text_chunks

    start, end = frames
    try:
        source = _salvaged(path, name) or path  # every chunk checked: Pillow reads those after the first frame too
        _check_png_data(source, name or _label(path))
        with _opened(source) as image:
            meta, orientation = read_meta(image)
            meta.lossless = image.format == "WEBP" and _lossless_webp(path)
            upright_dpi(meta, orientation)
            loop = image.info.get("loop")
            if loop is None and image.format != "GIF":
                loop = 0
            pictures, durations, disposal, blend = [], [], [], []
            hidden = _hidden_frames(image)
            # a GIF frame that reaches past the logical screen grows Pillow's canvas as it is read: the
            # frames are cut to the canvas as it stands after the first frame, as browsers show them
            # (the screen, grown to the first frame where it reaches further: a screen written as 1x1
            # had cut 32x24 frames to one pixel). A later frame had made a WebP output fail ("Invalid
            # frame dimensions") and a GIF or PNG one pad the first frames with black.
            width, height = image.size
            for index, frame in enumerate(ImageSequence.Iterator(image), start=-hidden):
                if index < 0:
                    continue
                if end is not None and index >= end:
                    break
                if index < start:  # composited on the way, but not kept
                    continue
                pictures.append(orient(_rgba(frame)[:height, :width], orientation))  # upright, as the EXIF written says
                shown = frame.info.get("duration")  # 0 is a time of its own (no wait), not "unknown"
                durations.append(100 if shown is None else int(shown))
                disposal.append(_disposal(image, frame))
                blend.append(int(frame.info.get("blend", 0) or 0))
            if image.format == "PNG":  # its text chunks as stored, written back so (all read by now, after the frames)
                meta.text = png_text(image)
                meta.png_text_chunks = text_chunks(bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes())
    except Image.DecompressionBombError as exc:
        raise VideoFormatError(f"{name or _label(path)} is not a readable animation ({first_line(exc)})") from None
    except _DAMAGED + (RuntimeError,) as exc:  # RuntimeError: Pillow's AVIF decoder, for a frame it cannot decode
        raise _unreadable(exc, name or _label(path)) from None
    if image.format == "AVIF":
        from .imageio import say_avif_depth
        from .sniff import _PREFIX

        raw = _raw(path)
        with raw if isinstance(raw, io.BytesIO) else open(raw, "rb") as stream:
            say_avif_depth(stream.read(_PREFIX), name or _label(path))
    if image.format == "GIF" and not _gif_ends_whole(path):
        log.warning("%s ends without the GIF trailer: it may be cut short, its last frames missing",
                    name or _label(path))
    deep = image.format == "PNG" and _deep_png(path)
    if deep and pictures:
        kept = _deep_frames(source, hidden + start, len(pictures), (height, width))
        if kept is not None:
            pictures, deep = [orient(frame, orientation) for frame in kept], False
    return Animation(pictures, durations, loop, disposal, blend, format=image.format, meta=meta, deep=deep)


def _deep_frames(source: str | Path | bytes, first: int, count: int, size: tuple[int, int]) -> list[np.ndarray] | None:
    """``count`` complete frames of a 16-bit APNG from frame ``first`` (hidden default image
    included in the count) as RGBA uint16, composited by libpng; None where it cannot decode them
    (the 8-bit frames Pillow read are kept then, and said)."""
    import imagecodecs

    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    try:
        stack = imagecodecs.apng_decode(data)
    except Exception:  # noqa: BLE001 - the codec raises its own error kinds for damaged data
        return None
    height, width = size
    if stack.ndim == 2 or (stack.ndim == 3 and stack.shape[:2] == (height, width) and stack.shape[1:] != (height, width)):
        stack = stack[None]  # one frame: (H, W) or (H, W, C)
    if stack.ndim == 3:  # grey frames: (N, H, W)
        stack = stack[..., None]
    if stack.dtype != np.uint16 or stack.shape[1:3] != (height, width) or len(stack) < first + count:
        return None
    out = []
    for frame in stack[first:first + count, :height, :width]:
        channels = frame.shape[-1]
        colour = np.repeat(frame[..., :1], 3, axis=-1) if channels <= 2 else frame[..., :3]
        alpha = frame[..., -1:] if channels in (2, 4) else np.full(frame.shape[:2] + (1,), 65535, np.uint16)
        out.append(np.ascontiguousarray(np.concatenate([colour, alpha], axis=-1)))
    return out


def _deep_png(source: str | Path | bytes) -> bool:
    """Whether a PNG (a path or its bytes) has 16 bits per sample (:func:`.png.is_deep_png` on its header)."""
    from .png import is_deep_png

    raw = _raw(source)
    with raw if isinstance(raw, io.BytesIO) else open(raw, "rb") as stream:
        return is_deep_png(stream.read(26))


def _gif_ends_whole(source: str | Path | bytes) -> bool:
    """Whether a GIF (a path or its bytes) ends in its trailer (:func:`sniff.gif_ends_whole`)."""
    from .sniff import gif_ends_whole

    if isinstance(source, (bytes, bytearray, memoryview)):
        return gif_ends_whole(bytes(source[-4096:]))
    with open(source, "rb") as stream:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - 4096))
        return gif_ends_whole(stream.read())


def _hidden_frames(image: Image.Image) -> int:
    """1 for an APNG whose default image (its IDAT) is the picture for viewers without animation
    only, not one of the frames (it had been played as an extra first frame); else 0."""
    return 1 if image.format == "PNG" and image.info.get("default_image") else 0


def _rgba(frame: Image.Image) -> np.ndarray:
    """One frame as RGBA uint8; 16-bit and float grey by value (Pillow's conversion clips them
    to white), a 16-bit colour key as alpha."""
    if frame.mode.startswith(("I", "F")):
        from .convert import from_float, pil_to_array, to_float

        values = from_float(to_float(pil_to_array(frame)[0]), np.dtype(np.uint8))
        grey = values[..., 0] if values.ndim == 3 else values
        alpha = values[..., 1] if values.ndim == 3 else np.full_like(grey, 255)
        return np.dstack([grey, grey, grey, alpha])
    return np.asarray(frame.convert("RGBA"))


def _label(source: str | Path | bytes) -> str:
    return str(source) if isinstance(source, (str, Path)) else "the animation"


def _disposal(image: Image.Image, frame: Image.Image) -> int:
    if image.format == "GIF":
        return int(getattr(image, "disposal_method", 0) or 0)
    return int(frame.info.get("disposal", 0) or 0)


@dataclass(frozen=True)
class Target:
    """An animation job whose arguments are checked (see :func:`check_job`): what to read, what to
    write and how."""

    src: Path
    dst: Path
    fmt: str  # one of HOLDS_ANIMATION
    quality: int | None
    overwrite: bool


def check_job(src: str | Path, dst: str | Path, *, overwrite: bool = False, quality: int | None = None,
              out_format: str | None = None, frames: str | tuple[int, int | None] | None = None,
              before_work: Callable[[], None] | None = None,
              progress: Callable[[int, int], bool | None] | None = None) -> Target:
    """Every check of :func:`upscale_animation`'s arguments that needs no model: the paths (a
    leading ``~`` expanded), flags, callbacks, quality and frame range; ``src`` exists and opens as
    an image (its header); ``dst`` names a format that holds animation and can be written (its
    missing folders are made, in the caller's :func:`~sr_filter.atomic.new_folders` block).
    ``sr_filter.upscale_animation`` runs it before it loads the model, which had come first, for
    seconds, even for a source that did not exist."""
    from .upscaler import check_callback, check_dst_file, check_flag, check_path, check_quality

    given = dst
    src, dst = check_path("src", src), check_path("dst", dst)
    overwrite = check_flag("overwrite", overwrite)
    check_dst_file(given, src, overwrite=overwrite)  # it had been "an animation can be written as .gif, .webp, .png, .apng, not (none)"
    check_callback("progress", progress)
    check_callback("before_work", before_work)
    quality = check_quality(quality)
    parse_range(frames)
    _check_source(src)
    fmt = out_format if out_format in HOLDS_ANIMATION else FORMATS.get(dst.suffix.lower())
    if fmt is None and is_stream(dst):  # /dev/fd/3, a FIFO: the input's own format, as -o - writes it
        fmt = animated_format(src)
    if fmt is None:
        raise VideoFormatError(f"{dst}: an animation can be written as {', '.join(FORMATS)}, not {dst.suffix or '(none)'}")
    unused = quality_unused({fmt}) if quality is not None else None
    if unused:  # quality=50 for a GIF or APNG had changed nothing without a word, as for a still PNG
        log.warning("%s", unused)
    prepare_target(dst, overwrite=overwrite)  # folders made and an existing output refused before the work, as for images
    return Target(src, dst, fmt, quality, overwrite)


def _check_source(src: Path) -> None:
    """``src`` exists and Pillow opens its header, said in :func:`upscale_to_bytes`'s words; a pipe
    or device is left to the read (a look would take bytes from it)."""
    if src.exists() and not src.is_file() and not src.is_dir():
        return
    try:
        with _opened(src):
            pass
    except Image.DecompressionBombError:
        return  # the read says so, with the memory the frames need
    except _DAMAGED as exc:
        raise _unreadable(exc, str(src)) from None


@new_folders()  # folders made for an output that is never written are removed
def upscale_animation(src: str | Path, dst: str | Path, upscaler: Any, *, scale: float | None = None,
                      overwrite: bool = False, quality: int | None = None,
                      size: tuple[int | None, int | None] = (None, None), out_format: str | None = None,
                      frames: str | tuple[int, int | None] | None = None,
                      before_work: Callable[[], None] | None = None,
                      progress: Callable[[int, int], bool | None] | None = None) -> Animation:
    """Upscale every frame of ``src`` and write the animation to ``dst`` (format from its suffix;
    the input's own for a stream with no such suffix: /dev/stdout, /dev/fd/3, a FIFO).

    ``upscaler`` is an :class:`~sr_filter.Upscaler` or a model name (loaded once the arguments are
    checked); ``out_format`` (``"GIF"``, ``"WEBP"`` or ``"PNG"``) overrides the suffix; ``size`` =
    ``(width, height)`` picks the scale that fits the frames inside them instead of ``scale``;
    ``frames`` (``"START:END"`` or ``(start, end or None)``) keeps frames START to END-1, with their
    durations. A
    format that cannot hold the result, or frames that would not fit in memory, are refused before
    the work; ``before_work`` is called just before the first frame is upscaled, ``progress`` with
    (frames done, frames) after each one (returning False stops the work; nothing is written).
    """
    from .upscaler import as_upscaler

    target = check_job(src, dst, overwrite=overwrite, quality=quality, out_format=out_format, frames=frames,
                       before_work=before_work, progress=progress)
    return write_animation(target, as_upscaler(upscaler), scale=scale, size=size, frames=frames,
                           before_work=before_work, progress=progress)


def write_animation(target: Target, upscaler: Any, *, scale: float | None = None,
                    size: tuple[int | None, int | None] = (None, None),
                    frames: str | tuple[int, int | None] | None = None,
                    before_work: Callable[[], None] | None = None,
                    progress: Callable[[int, int], bool | None] | None = None) -> Animation:
    """Upscale every frame of a :func:`check_job` target with ``upscaler`` and write it whole
    (through a temporary file and a rename); returns the animation written."""
    from .imageio import write_atomic

    animation, data = upscale_to_bytes(target.src, upscaler, target.fmt, scale=scale, size=size, quality=target.quality,
                                       frames=frames, before_work=before_work, progress=progress, name=str(target.src))
    write_atomic(data, target.dst, overwrite=target.overwrite)
    return animation


def upscale_to_bytes(src: str | Path | bytes, upscaler: Any, fmt: str, *, scale: float | None = None,
                     size: tuple[int | None, int | None] = (None, None), quality: int | None = None,
                     frames: str | tuple[int, int | None] | None = None,
                     before_work: Callable[[], None] | None = None,
                     progress: Callable[[int, int], bool | None] | None = None,
                     name: str = "the animation") -> tuple[Animation, bytes]:
    """Upscale every frame of ``src`` (a path or the file's bytes) and encode the animation as
    ``fmt`` (one of :data:`HOLDS_ANIMATION`): the core of :func:`upscale_animation`, and of the one-file core
    (:mod:`sr_filter.imagefile`) when an animated file is written as a format that holds animation.
    The format's size limit, the frame range and the memory the frames need are checked before the work."""
    from .convert import PER_FILE
    from .sizing import scaled_length, target_scale
    from .imageio import check_encodable

    try:
        with _opened(src) as probe:
            width, height, count = probe.width, probe.height, getattr(probe, "n_frames", 1) - _hidden_frames(probe)
            sample = 2 if probe.format == "PNG" and _deep_png(src) else 1  # bytes per sample of its frames
    except Image.DecompressionBombError as exc:
        raise VideoFormatError(f"{name} is not a readable animation ({first_line(exc)})") from None
    except _DAMAGED as exc:
        raise _unreadable(exc, name) from None
    start, end = parse_range(frames)
    if start >= count:
        raise VideoFormatError(f"frame range {range_text(frames)!r} starts after the last frame: {name} has {count} frames")
    if end is not None and end > count:  # as a video's range says it (it had been cut without a word)
        log.warning("the frame range ends at frame %d, but %s has %d frames: upscaled to its end", end, name, count,
                    extra=PER_FILE)
    end = count if end is None else min(end, count)
    count = end - start
    if any(size):
        scale = target_scale(size[0], size[1], (height, width), name)
    factor = upscaler.check_scale(scale)
    out_w, out_h = scaled_length(width, factor), scaled_length(height, factor)
    check_encodable(fmt, out_w, out_h)
    need = count * out_w * out_h * 4 * 2 * sample
    if need > available_ram():
        raise ImageTooLargeError(f"{name}: {count} frames upscaled x{factor:g} need about {need / (1 << 30):.1f} GiB of memory; choose a smaller scale")
    animation = read_animation(src, name, frames=(start, end))
    if before_work is not None:
        before_work()
    upscaled = []
    for frame in animation.frames:
        upscaled.append(upscaler.upscale_array(frame, scale))
        if progress is not None and cancels(progress(len(upscaled), count)):
            raise CancelledError("stopped by the progress callback; nothing was written")
    scale_used = sides_scale(animation.frames[0].shape, upscaled[0].shape) if upscaled else 1.0
    animation.frames = upscaled
    return animation, encode_animation(animation, fmt, quality=quality, scale=scale_used)


def encode_animation(animation: Animation, fmt: str, *, quality: int | None = None, scale: Scale = 1.0) -> bytes:
    """An animation as GIF, WEBP, (A)PNG or AVIF bytes, with the metadata it carries (``scale``: how
    much larger its frames now are than when read, for EXIF sizes and DPI)."""
    if not animation.frames:
        raise VideoFormatError("an animation needs at least one frame")
    from .convert import PER_FILE

    if animation.deep:  # a still keeps 16 bits in PNG and TIFF; an animation's frames had lost them without a word
        log.warning("the 16-bit APNG's frames could not be read with 16 bits, only with 8: they are written with 8",
                    extra=PER_FILE)
    if animation.frames[0].dtype == np.uint16:
        if fmt == "PNG":
            return _apng16(animation, scale)
        from .convert import _to_uint8

        log.warning("%s holds 8 bits per channel: the 16-bit animation is written with 8 (APNG keeps 16)",
                    "WebP" if fmt == "WEBP" else fmt, extra=PER_FILE)
        animation = replace(animation, frames=[_to_uint8(frame) for frame in animation.frames])
    buffer = io.BytesIO()
    options: dict[str, Any] = {"save_all": True, "duration": animation.durations}
    options.update(_carried(animation.meta, fmt, animation.frames[0].shape, scale))
    loop = _loop_for(animation, fmt)
    if fmt == "AVIF":  # Pillow writes no repetition count into an AVIF sequence
        if loop != 0 and len(animation.frames) > 1:
            log.warning("AVIF, as written here, holds no play count: the animation plays as the viewer decides "
                        "(browsers: forever), not %s (GIF, WebP and PNG keep it)",
                        "once" if loop == 1 else f"{loop} times", extra=PER_FILE)
    elif loop is not None:
        options["loop"] = loop
    disposal = _disposal_for(animation, fmt)
    if isinstance(disposal, list) and len(disposal) == 1:  # Pillow takes a list only for several frames
        disposal = disposal[0]
    opaque = all(bool((frame[..., 3] == 255).all()) for frame in animation.frames)  # kept so: an opaque APNG came out RGBA
    if fmt == "GIF":
        if animation.format != "GIF":  # a GIF's frames were on or off already
            say_soft_alpha_cut([frame[..., 3] for frame in animation.frames], animation.meta)
        images = [gif_frame(frame) for frame in _gif_colours(animation)]
        if isinstance(disposal, list) and all(_same_picture(images[0], image) for image in images[1:]):
            # Pillow merges a frame into the one before when they show the same, and writes a GIF whose
            # frames all merged as a still, taking the option then for one frame (a list: a TypeError)
            disposal = disposal[0]
        options.update(disposal=disposal, optimize=False)
        if not opaque:  # an opaque GIF declared a transparent colour it never used
            options["transparency"] = GIF_TRANSPARENT
    else:
        images = [Image.fromarray(np.ascontiguousarray(frame[..., :3]), "RGB") if opaque else Image.fromarray(frame, "RGBA")
                  for frame in animation.frames]
        if fmt == "PNG":  # complete frames replace the canvas (APNG_BLEND_OP_SOURCE), never blend over it, and
            # each is kept (APNG_DISPOSE_OP_NONE): Pillow stores only what differs from the frame before, which
            # with the source's "background" or "previous" had left stale pixels (a black stripe in a GIF's frame 3)
            options.update(disposal=0, blend=0)
        elif fmt == "AVIF":
            options.update(avif_quality(quality))
        else:
            options.update(webp_quality(quality, animation.meta))
    images[0].save(buffer, fmt, append_images=images[1:], **options)
    data = buffer.getvalue()
    if fmt == "WEBP" and data[12:16] == b"VP8X" and any((frame[..., 3] < 255).any() for frame in animation.frames):
        # libwebp leaves the canvas's alpha flag off when every stored sub-frame is opaque, though
        # the canvas around them is transparent; readers that trust the flag (Pillow) then show black
        data = data[:20] + bytes([data[20] | 0x10]) + data[21:]
    meta = animation.meta
    if meta is not None and meta.aspect and not meta.dpi and fmt == "PNG":  # a pixel aspect ratio with no density,
        # as a still keeps it: Pillow writes a pHYs of its dpi option alone (the ratio had been dropped without a word)
        from .png import aspect_chunk

        data = data[:33] + aspect_chunk(meta.aspect) + data[33:]  # after the IHDR chunk
    elif meta is not None and fmt in ("WEBP", "AVIF"):  # what they cannot hold, said as for a still (PNG text had gone unsaid)
        from .encode import _not_held, _say_lost

        _say_lost(_not_held(meta, fmt), fmt, meta)
    return data


def _same_picture(first: Image.Image, second: Image.Image) -> bool:
    """Whether two palette pictures (:func:`.encode.gif_frame`'s) show the same pixels, their
    colour and transparency (read through numpy: Pillow's convert("RGBA") of one spoilt its palette
    for the GIF writer, "invalid palette size")."""
    def shown(image: Image.Image) -> np.ndarray:
        indices = np.asarray(image)
        colours = np.array(image.getpalette() or [], np.uint8).reshape(-1, 3)
        rgb = colours[np.minimum(indices, len(colours) - 1)] if len(colours) else np.zeros((*indices.shape, 3), np.uint8)
        clear = indices == image.info.get("transparency", -1)
        return np.where(clear[..., None], 0, rgb)

    return bool(np.array_equal(shown(first), shown(second)))


def _apng16(animation: Animation, scale: Scale) -> bytes:
    """A 16-bit animation as an APNG written by libpng (:func:`sr_filter.png.encode_apng`), with the
    metadata an 8-bit one keeps (:func:`_carried`)."""
    from .png import encode_apng

    frames = animation.frames
    if all(bool((frame[..., 3] == 65535).all()) for frame in frames):  # opaque: RGB, as an 8-bit one is written
        frames = [np.ascontiguousarray(frame[..., :3]) for frame in frames]
    meta, options = animation.meta, _carried(animation.meta, "PNG", animation.frames[0].shape, scale)
    keywords: dict[str, Any] = {}
    if meta is not None:
        info = options.get("pnginfo")
        keywords = {"icc_profile": options.get("icc_profile"), "dpi": options.get("dpi"),
                    "aspect": None if options.get("dpi") else meta.aspect, "exif": options.get("exif"),
                    "raw_text": tuple((kind, body) for kind, body, *_ in info.chunks) if info is not None else ()}
    plays = _loop_for(animation, "PNG")
    return encode_apng(frames, animation.durations, 0 if plays is None else plays, **keywords)


def _lossless_webp(path: str | Path | bytes) -> bool:
    from .sniff import webp_lossless

    raw = _raw(path)
    with raw if isinstance(raw, io.BytesIO) else open(raw, "rb") as stream:
        return webp_lossless(stream)


def _gif_colours(animation: Animation) -> list[np.ndarray]:
    """The frames for a GIF, which holds no ICC profile: moved to sRGB, which viewers show it
    as (Display P3 or Adobe RGB frames had been written unconverted, their colours shifted), and
    said in one line with the rest GIF cannot hold, as for a still picture."""
    from .encode import _not_held, _say_lost, _to_srgb

    meta = animation.meta
    if meta is None:
        return animation.frames
    lost = _not_held(meta, "GIF")
    frames = animation.frames
    if meta.icc_profile:
        converted = [_to_srgb(frame, meta.icc_profile) for frame in frames]
        frames = [frame for frame, _ in converted]
        done = bool(converted) and converted[0][1]
        lost.insert(0, "the ICC profile (the colours are converted to sRGB, which it is shown as)" if done else "the ICC profile")
    _say_lost(lost, "GIF", meta)
    return frames


def _carried(meta: Any, fmt: str, shape: tuple[int, ...], scale: Scale) -> dict[str, Any]:
    """Pillow's options for the metadata an animation keeps, as a still image in ``fmt`` keeps it
    (docs/io.md, "Metadata"): the ICC profile, EXIF (sizes updated) and, by format, XMP (WebP),
    DPI, gamma and chromaticity and text chunks (PNG) or the comment (GIF). They had all been left out."""
    if meta is None:
        return {}
    import dataclasses

    from .encode import _fitting_profile, _png_text, comment_for
    from .metadata import exif_for_output, scaled_dpi, sized_xmp
    from .png import plain_text

    if meta.xmp:  # its pixel sizes and resolutions the output's, as a still's are (they had stayed the input's)
        meta = dataclasses.replace(meta, xmp=sized_xmp(meta.xmp, shape[1], shape[0], scale))

    if fmt == "GIF":  # its own comment, or a PNG's Comment text (dropped without a word, as a still's is not)
        comment = comment_for(meta, fmt)
        return {"comment": comment} if comment else {}
    options: dict[str, Any] = {}
    icc = _fitting_profile(meta.icc_profile, grey=False)  # the frames are RGBA
    if icc:
        options["icc_profile"] = icc
    exif = exif_for_output(meta.exif, shape[1], shape[0], scale)
    if exif:
        options["exif"] = exif
    if fmt in ("WEBP", "AVIF") and meta.xmp:
        options["xmp"] = meta.xmp
    if fmt == "PNG":
        from PIL import PngImagePlugin

        dpi = scaled_dpi(meta.dpi, scale, fmt)
        if dpi:
            options["dpi"] = dpi
        raw, text = _png_text(meta)
        # gAMA, cHRM and sRGB (sRGB not beside a profile), as a still keeps them: a linear-gamma
        # APNG had come out without them, shown with sRGB's tones
        colour = [(kind, body) for kind, body in meta.png_colour if not (icc and kind == b"sRGB")]
        if text or raw or colour:
            chunks = PngImagePlugin.PngInfo()
            for kind, body in colour:
                chunks.add(kind, body)
            for kind, body in raw:  # the source's, as stored
                chunks.add(kind, body)
            for key, value in text.items():  # tEXt or iTXt, as png.encode_png writes a still's
                if plain_text(key, value):
                    chunks.add_text(key, value)
                else:
                    chunks.add_itxt(key, value)
            options["pnginfo"] = chunks
    return options


def _loop_for(animation: Animation, fmt: str) -> int | None:
    """``animation.loop`` in ``fmt``'s counting (None: a GIF without a loop block, which plays once).

    A GIF's loop block counts the repeats after the first play (0: forever; no block: play once);
    APNG's num_plays and WebP's loop count count the plays (0: forever), as libwebp's gif2webp
    converts them."""
    loop, source = animation.loop, animation.format or fmt
    plays = 1 if loop is None else loop + 1 if source == "GIF" and loop > 0 else loop
    if fmt == "GIF":
        return None if plays == 1 else 0 if plays == 0 else min(plays - 1, 65535)
    return min(plays, 65535) if fmt == "WEBP" else plays


#: disposal per format as (keep, restore to background, restore to previous): GIF counts 1, 2, 3
#: (0, unspecified, is kept); APNG counts 0, 1, 2; WebP's encoder chooses its own
_KEEP, _BACKGROUND, _PREVIOUS = 1, 2, 3
_FROM = {"GIF": {0: _KEEP, 1: _KEEP, 2: _BACKGROUND, 3: _PREVIOUS}, "PNG": {0: _KEEP, 1: _BACKGROUND, 2: _PREVIOUS}}
_TO = {"GIF": {_KEEP: 1, _BACKGROUND: 2, _PREVIOUS: 3}, "PNG": {_KEEP: 0, _BACKGROUND: 1, _PREVIOUS: 2}}


def _disposal_for(animation: Animation, fmt: str) -> list[int] | int:
    """The disposal of each frame in ``fmt``'s numbering. Frames are complete pictures, so in a GIF
    a frame followed by one with transparent pixels is restored to the (transparent) background:
    keeping it, or restoring what came before it, would show through the next frame's holes."""
    if fmt not in _TO:
        return 0
    count = len(animation.frames)
    read = _FROM.get(animation.format or fmt, {})
    kinds = [read.get(d, _KEEP) for d in animation.disposal[:count]] + [_KEEP] * (count - len(animation.disposal))
    if fmt == "GIF":
        holes = [bool((frame[..., 3] < 128).any()) for frame in animation.frames]
        kinds = [_BACKGROUND if holes[(i + 1) % count] else kind for i, kind in enumerate(kinds)]
    return [_TO[fmt][kind] for kind in kinds]

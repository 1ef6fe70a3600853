"""Reading and writing image files faithfully, and PIL <-> numpy conversion.

Pixels travel as numpy arrays (see :mod:`sr_filter.convert` for the layouts); what else the
file held travels beside them in :class:`~sr_filter.metadata.ImageMeta` and is written back
(see docs/io.md for what is kept and what is converted). Reading checks the header size against
available memory before any pixel is decoded. Writes go to a temporary file in the destination
folder and are renamed into place, so an error or interrupt never leaves a partial file under
the final name.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from . import limits, png16, tiffio
from .atomic import write_atomic  # noqa: F401 - moved to atomic.py; kept importable here
from .errors import ImageFormatError, ImageTooLargeError, OutputExistsError, first_line
from .metadata import ImageMeta, cmyk_to_rgb, exif_for_output, orient, read_meta, scaled_dpi

__all__ = [
    "FORMATS", "ImageMeta", "array_to_pil", "encode_image", "format_for", "pil_to_array", "read_image", "write_atomic",
]

log = logging.getLogger(__name__)

FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
}
#: formats whose files can hold an alpha channel (the others get it flattened onto white)
_ALPHA = {"PNG", "WEBP", "TIFF", "GIF"}
_ICC = {"PNG", "JPEG", "WEBP", "TIFF"}
_EXIF = {"PNG", "JPEG", "WEBP", "TIFF"}
_DPI = {"PNG", "JPEG", "TIFF", "BMP"}


# -- reading ---------------------------------------------------------------------------------
def read_image(
    source: str | Path | bytes | BinaryIO, *, scale: float | None = None, model_scale: int = 4, name: str | None = None
) -> tuple[np.ndarray, ImageMeta]:
    """Decode a file (path, bytes or binary stream) into upright pixels and metadata.

    The header is read first: an empty (0-pixel) image, or one whose decoding and upscaling by
    ``scale`` (default 1) would not fit in available memory, is refused before any pixel is
    decoded (``model_scale``, the network's own factor, refines that estimate). EXIF
    orientation is applied to the pixels. 16-bit and float data stay 16-bit / float (TIFF
    through tifffile, 16-bit colour PNG through :mod:`sr_filter.png16`).
    """
    name = name or (str(source) if isinstance(source, (str, Path)) else "standard input")
    data = _read_bytes(source, name)
    header = _png_header(data) or _jpeg_header(data)
    if header is not None:  # sized before Pillow's own, fixed decompression-bomb limit can pre-empt us
        _check_size(name, header, scale, model_scale)
    image = _open(data, name)
    _check_size(name, header or _header_shape(image, data, name), scale, model_scale)
    array, described = _decode(image, data, name)
    if described is not None:  # metadata after decoding: Pillow finds PNG text and eXIf after IDAT
        meta, orientation = read_meta(described)
    else:  # a TIFF only tifffile can open (float colour, many samples): its tags
        icc, dpi, orientation = tiffio.tiff_meta(data)
        meta = ImageMeta(format="TIFF", icc_profile=icc, dpi=dpi)
    if array.dtype != np.uint8 and not meta.mode.startswith(("I", "F")):
        meta.mode = str(array.dtype)  # Pillow's mode name would claim 8 bits
    if meta.frames > 1:
        log.warning("%s has %d frames or pages; only the first is upscaled", name, meta.frames)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageFormatError(f"{name} has no pixels ({array.shape[1]}x{array.shape[0]})")
    return orient(array, orientation), meta


def _check_size(name: str, shape: tuple[int, int, int, int], scale: float | None, model_scale: int) -> None:
    width, height, channels, itemsize = shape
    if width <= 0 or height <= 0:
        raise ImageFormatError(f"{name} has no pixels ({width}x{height})")
    limits.check_fits(name, width, height, channels, scale or 1.0, itemsize, model_scale=model_scale)


def _read_bytes(source: str | Path | bytes | BinaryIO, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageFormatError(f"{path} does not exist")
        if path.is_dir():
            raise ImageFormatError(f"{path} is a folder, not an image")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageFormatError(f"cannot read {path}: {exc.strerror}") from None
    else:
        data = source.read()
    if not data:
        raise ImageFormatError(f"{name} is empty (0 bytes)")
    return data


def _open(data: bytes, name: str) -> Image.Image | None:
    """Pillow's lazy open (header only); None for a TIFF only tifffile understands."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = f"{int(pixels.group(1)) / 1e6:,.0f} megapixels" if pixels else "an enormous size"
        raise ImageTooLargeError(
            f"{name} claims {claimed}, more than the {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:,.0f}-megapixel "
            "safety limit (a decompression bomb or a damaged header); refusing to decode it"
        ) from None
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        if tiffio.is_tiff(data) and tiffio.tiff_shape(data) is not None:
            return None
        if isinstance(exc, Image.UnidentifiedImageError):
            raise ImageFormatError(f"{name} is not a readable image (unknown or damaged format)") from None
        text = first_line(exc)
        if "truncat" in text.lower() or isinstance(exc, (EOFError, struct.error)):
            raise ImageFormatError(f"{name} is truncated or damaged ({text})") from None
        raise ImageFormatError(f"{name} is not a readable image ({text})") from None


def _png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, channels, bytes per sample) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 26:
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}.get(colour, 4), 2 if depth == 16 else 1


def _jpeg_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, channels, 1) from a JPEG's start-of-frame segment."""
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if pos + 10 > len(data):
                return None
            height, width, components = struct.unpack(">HHB", data[pos + 5 : pos + 10])
            return width, height, min(max(components, 1), 4), 1
        pos += 2 + length
    return None


def _header_shape(image: Image.Image | None, data: bytes, name: str) -> tuple[int, int, int, int]:
    """(width, height, channels, bytes per sample) from the header, without decoding pixels."""
    if image is None or tiffio.is_tiff(data):
        shape = tiffio.tiff_shape(data)
        if shape is None and image is None:
            raise ImageFormatError(f"{name} is not a readable TIFF")
        if shape is not None:
            width, height, samples, itemsize = shape
            return width, height, min(max(samples, 1), 4), itemsize
    width, height = image.size
    bands = len(image.getbands()) if image.mode not in ("P", "PA") else 4
    itemsize = 2 if image.mode.startswith("I;16") or png16.is_png16_colour(image) else (4 if image.mode in ("I", "F") else 1)
    return width, height, min(bands, 4), itemsize


def _decode(image: Image.Image | None, data: bytes, name: str) -> tuple[np.ndarray, Image.Image | None]:
    """Pixels, and the Pillow image to read metadata from (None for a TIFF Pillow cannot open)."""
    try:
        if tiffio.is_tiff(data):
            array = tiffio.read_tiff(data, name)
            if array is not None:
                return array, image
            if image is None:
                raise ImageFormatError(f"{name} is a TIFF layout this program cannot decode")
        if png16.is_png16_colour(image):
            return png16.decode_png16(data)
        image.seek(0)
        image.load()
    except ImageFormatError:
        raise
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError) as exc:
        text = first_line(exc)
        if "truncat" in text.lower() or "broken" in text or isinstance(exc, EOFError):
            raise ImageFormatError(f"{name} is truncated or damaged ({text})") from None
        raise ImageFormatError(f"{name} cannot be decoded ({text})") from None
    except MemoryError:
        raise ImageTooLargeError(f"{name} does not fit in memory when decoded") from None
    return _pixels(image), image


def _pixels(image: Image.Image) -> np.ndarray:
    """Pillow pixels as an array; CMYK through the ICC profile the image carries."""
    meta = ImageMeta(icc_profile=image.info.get("icc_profile") or None)
    array, _ = pil_to_array(image, meta)
    if image.mode == "CMYK":
        image.info["icc_profile"] = meta.icc_profile  # now sRGB (or none), as the pixels are
        if meta.icc_profile is None:
            image.info.pop("icc_profile", None)
    return array


def pil_to_array(image: Image.Image, meta: ImageMeta | None = None) -> tuple[np.ndarray, str]:
    """A PIL image as a numpy array in one of the layouts the upscaler takes, plus its mode.

    Palette images become RGB, or RGBA when they have transparency; a colour-key transparency
    on L or RGB becomes a real alpha channel; CMYK becomes RGB (through its ICC profile when
    ``meta`` carries one); 16-bit grey stays uint16 and float grey float32.
    """
    mode = image.mode
    keyed = "transparency" in image.info
    if mode in ("P", "PA"):
        image = image.convert("RGBA" if keyed or mode == "PA" else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("L", "RGB") and keyed:
        image = image.convert("LA" if mode == "L" else "RGBA")
    elif mode == "CMYK":
        image = cmyk_to_rgb(image, meta) if meta is not None else image.convert("RGB")
    elif mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16), mode
    elif mode == "I":
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16), mode
    elif mode == "F":
        return np.asarray(image, dtype=np.float32), mode
    elif mode == "La":
        image = image.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode or "a" in mode else "RGB")
    return np.asarray(image).copy(), mode


def array_to_pil(array: np.ndarray, mode: str | None = None) -> Image.Image:
    """A numpy array as a PIL image (16-bit grey stays 16-bit; 16-bit and float colour become 8-bit)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype == np.uint16:
        if array.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint16))
        array = _to_uint8(array)
    if array.dtype.kind == "f":
        if array.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
        array = _to_uint8(array)
    return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.rint(np.nan_to_num(array.astype(np.float32)) * 255), 0, 255).astype(np.uint8)


def _to_uint16(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint16:
        return array
    if array.dtype == np.uint8:
        return array.astype(np.uint16) * 257
    return np.clip(np.rint(np.nan_to_num(array.astype(np.float32)) * 65535), 0, 65535).astype(np.uint16)


# -- writing ---------------------------------------------------------------------------------
def format_for(path: str | Path, explicit: str | None = None) -> str:
    """The output format: explicit ``--format`` first, else from the file extension."""
    if explicit:
        key = explicit.lower().lstrip(".")
        fmt = FORMATS.get("." + key)
        if fmt is None:
            raise ImageFormatError(f"unknown format {explicit!r}; use one of {', '.join(sorted({k[1:] for k in FORMATS}))}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ImageFormatError(
            f"cannot tell the output format from {Path(path).name!r}; use an extension such as .png or give --format"
        )
    return FORMATS[suffix]


def encode_image(array: np.ndarray, fmt: str, meta: ImageMeta | None = None, *, quality: int | None = None, scale: float = 1.0) -> bytes:
    """Encode pixels (and carried metadata, updated for the new size) in ``fmt``.

    16-bit and float data stay 16-bit in PNG (float becomes 16-bit) and 16-bit / float in
    TIFF; other formats hold 8 bits. Alpha is flattened onto white for JPEG and BMP.
    """
    meta = meta or ImageMeta()
    height, width = array.shape[:2]
    exif = exif_for_output(meta.exif, width, height, scale) if fmt in _EXIF else None
    dpi = scaled_dpi(meta.dpi, scale) if fmt in _DPI else None
    icc = meta.icc_profile if fmt in _ICC else None
    channels = 1 if array.ndim == 2 else array.shape[2]
    if fmt == "TIFF" and array.dtype != np.uint8:
        return tiffio.encode_tiff(array, icc_profile=icc, dpi=dpi)
    if fmt == "PNG" and array.dtype != np.uint8:
        deep = _to_uint16(array)
        if channels > 1:
            return png16.encode_png16(deep, icc_profile=icc, dpi=dpi, exif=exif, text=_png_text(meta))
        array = deep
    elif array.dtype != np.uint8:
        log.info("%s holds 8 bits per channel; reducing the %s output to 8 bits", fmt, array.dtype)
        array = _to_uint8(array)
    if channels in (2, 4) and fmt not in _ALPHA:
        log.warning("%s has no transparency; flattening the alpha channel onto white", fmt)
        array = _flatten_on_white(array)
    image = array_to_pil(array)
    if fmt == "GIF" and image.mode == "LA":
        image = image.convert("RGBA")  # Pillow's GIF writer keeps transparency only from RGBA
    options: dict[str, Any] = {}
    if icc:
        options["icc_profile"] = icc
    if exif:
        options["exif"] = exif
    if dpi:
        options["dpi"] = dpi
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality if quality is not None else (95 if fmt == "JPEG" else 90)
        if fmt == "WEBP" and options["quality"] == 100:
            options["lossless"] = True  # --quality 100: lossless WebP
        if meta.xmp:
            options["xmp"] = meta.xmp
    if fmt == "JPEG" and options["quality"] >= 90:
        options["subsampling"] = 0  # 4:4:4: no colour bleeding at high quality
    if fmt in ("JPEG", "GIF") and meta.comment:
        options["comment"] = meta.comment
    if fmt == "PNG":
        text = _png_text(meta)
        if text:
            from PIL import PngImagePlugin

            info = PngImagePlugin.PngInfo()
            for key, value in text.items():
                if value.isascii():
                    info.add_text(key, value)
                else:
                    info.add_itxt(key, value)
            options["pnginfo"] = info
        options["compress_level"] = 6
    if fmt == "TIFF" and not _has_sub_ifd(exif):
        # Pillow's compressing (libtiff) writer cannot store EXIF sub-IFDs; then stay uncompressed
        options["compression"] = "tiff_adobe_deflate"
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageFormatError(f"cannot write {fmt}: {first_line(exc)}") from None
    return buffer.getvalue()


def _has_sub_ifd(exif: bytes | None) -> bool:
    if not exif:
        return False
    data = Image.Exif()
    data.load(exif)
    return any(tag in data for tag in (0x8769, 0x8825))


def _png_text(meta: ImageMeta) -> dict[str, str]:
    text = dict(meta.text)
    if meta.xmp and "XML:com.adobe.xmp" not in text:
        text["XML:com.adobe.xmp"] = meta.xmp.decode("utf-8", "replace")
    return text


def _flatten_on_white(array: np.ndarray) -> np.ndarray:
    top = 255.0 if array.dtype == np.uint8 else 65535.0
    colour = array[:, :, :-1].astype(np.float32)
    alpha = array[:, :, -1:].astype(np.float32) / top
    out = colour * alpha + top * (1.0 - alpha)
    out = np.clip(np.rint(out), 0, top).astype(array.dtype)
    return out[:, :, 0] if out.shape[2] == 1 else out

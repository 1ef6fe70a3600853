"""Reading and writing image files faithfully, and PIL <-> numpy conversion.

Pixels travel as numpy arrays (see :mod:`sr_filter.convert` for the layouts); what else the
file held (ICC profile, EXIF, DPI, PNG text) travels beside them in :class:`ImageMeta` and is
written back. Writes go to a temporary file in the destination folder and are renamed into
place, so an error or interrupt never leaves a partial file under the final name.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageFormatError, OutputExistsError

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
#: formats that can hold 16 bits per channel
_DEEP = {"PNG", "TIFF"}


@dataclass
class ImageMeta:
    """Everything besides the pixels that should survive the round trip."""

    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: dict[str, str] = field(default_factory=dict)
    mode: str = "RGB"


def pil_to_array(image: Image.Image) -> tuple[np.ndarray, str]:
    """A PIL image as a numpy array in one of the layouts the upscaler takes, plus its mode."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "CMYK":
        image = image.convert("RGB")
    elif mode in ("1",):
        image = image.convert("L")
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.array(image, dtype=np.uint16), mode
    elif mode == "I":
        return np.clip(np.array(image), 0, 65535).astype(np.uint16), mode
    elif mode == "F":
        return np.array(image, dtype=np.float32), mode
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode else "RGB")
    return np.array(image), mode


def array_to_pil(array: np.ndarray, mode: str | None = None) -> Image.Image:
    """A numpy array as a PIL image (16-bit grey stays 16-bit; 16-bit colour is reduced to 8)."""
    if array.dtype == np.uint16:
        if array.ndim == 2:
            return Image.fromarray(array.astype(np.uint16), "I;16")
        array = (array.astype(np.uint32) * 255 + 32767) // 65535
    if array.dtype.kind == "f":
        if array.ndim == 2:
            return Image.fromarray(array.astype(np.float32), "F")
        array = np.clip(np.rint(array * 255), 0, 255)
    array = array.astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(array)


def read_image(source: str | Path | bytes | BinaryIO) -> tuple[np.ndarray, ImageMeta]:
    """Decode a file (path, bytes or binary stream) into pixels and metadata.

    EXIF orientation is applied so the pixels are upright; 16-bit TIFF goes through tifffile.
    """
    name = str(source) if isinstance(source, (str, Path)) else "standard input"
    data = _read_bytes(source, name)
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        deep = _read_tiff_deep(data)
        if deep is not None:
            return deep
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageFormatError(f"{name}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageFormatError(f"{name} is not a readable image ({str(exc).splitlines()[0] if str(exc) else 'unknown error'})") from None
    meta = ImageMeta(
        format=image.format,
        icc_profile=image.info.get("icc_profile"),
        dpi=_dpi(image),
        text={k: v for k, v in getattr(image, "text", {}).items() if isinstance(v, str)},
        mode=image.mode,
    )
    exif = image.getexif()
    image = ImageOps.exif_transpose(image)
    if exif:
        exif[0x0112] = 1  # orientation has been applied to the pixels
        meta.exif = exif.tobytes()
    array, _ = pil_to_array(image)
    return array, meta


def _read_bytes(source: str | Path | bytes | BinaryIO, name: str) -> bytes:
    if isinstance(source, bytes):
        data = source
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
        raise ImageFormatError(f"{name} is empty")
    return data


def _read_tiff_deep(data: bytes) -> tuple[np.ndarray, ImageMeta] | None:
    """16-bit and float TIFFs through tifffile (Pillow reduces them); None for 8-bit ones."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            array = page.asarray()
            icc = page.tags.get("InterColorProfile")
            resolution = page.resolution if hasattr(page, "resolution") else None
    except Exception as exc:  # tifffile raises many kinds; all mean "cannot decode"
        raise ImageFormatError(f"not a readable TIFF ({str(exc).splitlines()[0] if str(exc) else 'unknown error'})") from None
    if array.dtype == np.uint8:
        return None
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[2] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype != np.uint16:
        raise ImageFormatError(f"TIFF with {array.dtype} samples is not supported; use 8 or 16 bit or float")
    meta = ImageMeta(format="TIFF", icc_profile=bytes(icc.value) if icc is not None else None, mode=f"{array.dtype}")
    if resolution and all(resolution):
        meta.dpi = (float(resolution[0]), float(resolution[1]))
    return array, meta


def _dpi(image: Image.Image) -> tuple[float, float] | None:
    dpi = image.info.get("dpi")
    if dpi and len(dpi) == 2 and all(dpi):
        return float(dpi[0]), float(dpi[1])
    return None


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
    """Encode pixels (and carried metadata) in ``fmt``."""
    meta = meta or ImageMeta()
    if fmt == "TIFF" and array.dtype != np.uint8:
        return _encode_tiff_deep(array, meta, scale)
    if fmt == "PNG" and array.dtype == np.uint16 and array.ndim == 3:
        return _encode_png16(array, meta, scale)
    image = array_to_pil(array)
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    if fmt in ("JPEG", "BMP") and image.mode in ("I;16", "F"):
        image = array_to_pil(np.clip(np.rint(array.astype(np.float64) / (65535 if array.dtype == np.uint16 else 1) * 255), 0, 255).astype(np.uint8))
    options: dict[str, Any] = {}
    if meta.icc_profile and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = meta.icc_profile
    if meta.exif and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["exif"] = meta.exif
    if meta.dpi and fmt in ("PNG", "JPEG", "TIFF", "BMP"):
        options["dpi"] = (meta.dpi[0] * scale, meta.dpi[1] * scale)
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality if quality is not None else (95 if fmt == "JPEG" else 90)
    if fmt == "PNG" and meta.text:
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        for key, value in meta.text.items():
            info.add_itxt(key, value)
        options["pnginfo"] = info
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **options)
    except (OSError, ValueError) as exc:
        raise ImageFormatError(f"cannot write {fmt}: {exc}") from None
    return buffer.getvalue()


def _encode_tiff_deep(array: np.ndarray, meta: ImageMeta, scale: float) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    kwargs: dict[str, Any] = {"photometric": "minisblack" if array.ndim == 2 or array.shape[2] <= 2 else "rgb"}
    if array.ndim == 3 and array.shape[2] in (2, 4):
        kwargs["extrasamples"] = ["unassalpha"]
    if meta.dpi:
        kwargs["resolution"] = (meta.dpi[0] * scale, meta.dpi[1] * scale)
        kwargs["resolutionunit"] = "INCH"
    extratags = [(34675, 7, len(meta.icc_profile), meta.icc_profile, True)] if meta.icc_profile else []
    tifffile.imwrite(buffer, array, compression="zlib", extratags=extratags, **kwargs)
    return buffer.getvalue()


def _encode_png16(array: np.ndarray, meta: ImageMeta, scale: float) -> bytes:
    """16-bit RGB(A) PNG, which Pillow cannot write, via a minimal PNG encoder."""
    import struct
    import zlib

    height, width, channels = array.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = array.astype(">u2").reshape(height, width * channels).tobytes()
    stride = width * channels * 2
    rows = b"".join(b"\x00" + raw[i * stride : (i + 1) * stride] for i in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    if meta.icc_profile:
        parts.append(chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(meta.icc_profile)))
    if meta.dpi:
        ppm = [round(d * scale / 0.0254) for d in meta.dpi]
        parts.append(chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if meta.exif:
        exif = meta.exif[6:] if meta.exif.startswith(b"Exif\x00\x00") else meta.exif
        parts.append(chunk(b"eXIf", exif))
    for key, value in meta.text.items():
        parts.append(chunk(b"iTXt", key.encode("latin-1", "replace")[:79] + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    parts.append(chunk(b"IDAT", zlib.compress(rows, 6)))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def write_atomic(data: bytes, path: str | Path, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; use --overwrite to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ImageFormatError(f"output folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ImageFormatError(f"cannot write to {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise ImageFormatError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

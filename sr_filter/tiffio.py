"""TIFF pixels through tifffile, which keeps 16-bit and float samples that Pillow would reduce.

Reading sizes the first page (through a check the caller passes), decodes it and reads its tags
in one pass. Handles the layouts TIFF writers actually produce: chunky or planar samples, grey with 1
sample, RGB with 3, extra samples (the first alpha-marked one, or the first extra sample of an
RGB or grey image, becomes alpha; others are dropped), associated (premultiplied) alpha
(un-premultiplied, since the output stores unassociated alpha), min-is-white grey (inverted),
and float samples. Other photometric interpretations (palette, CMYK, YCbCr, ...) return None so
the caller falls back to Pillow, which also gives the metadata of every TIFF it can open.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image

from .convert import PER_FILE, _to_uint8
from .errors import ImageFormatError, SrFilterError, first_line
from .liblogs import held_records
from .metadata import (IPTC_TAG, PHOTOSHOP, PHOTOSHOP_TAG, ImageMeta, aspect_of, cmyk_to_rgb, iptc_block,
                       iptc_from_records, iptc_records, plain_cmyk)

log = logging.getLogger(__name__)

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_MINISWHITE, _MINISBLACK, _RGB, _SEPARATED = 0, 1, 2, 5
_ASSOCALPHA, _UNASSALPHA = 1, 2


def is_tiff(data: bytes) -> bool:
    """Whether the bytes start with a (Big)TIFF header."""
    return data[:4] in TIFF_MAGIC


@dataclass
class TiffTags:
    """What the first page's header says: its shape and the tags the output carries."""

    shape: tuple[int, int, int, int]  # width, height, samples (1..4), bytes per sample
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    dpi_unit: str = "inch"  # or "cm" (ResolutionUnit 3)
    aspect: tuple[int, int] | None = None  # X/YResolution with no unit (ResolutionUnit 1): pixel aspect only
    orientation: int = 1
    exif: bytes | None = None  # descriptive tags only
    xmp: bytes | None = None
    #: the Photoshop resources (tag 34377), where IPTC captions and credits live: as a JPEG's APP13 block
    iptc: bytes | None = None


def read_tiff(data: bytes, name: str, check: Callable[[tuple[int, int, int, int]], None]) -> tuple[np.ndarray | None, TiffTags | None]:
    """First page as HxW / HxWxC (C = 1..4) uint8, uint16 or float32, and its tags, in one pass.

    ``check`` gets the header's shape before any pixel is decoded (it raises to refuse). The
    array is None for layouts Pillow decodes instead (palette, CMYK, YCbCr, ...); the tags are
    None when tifffile cannot parse the file at all. tifffile's complaints about damaged
    structures become one warning instead of its own log lines.
    """
    import tifffile

    bits, photometric, tags = 8, -1, None
    with _tifffile_warnings(name):
        try:
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                page = tif.pages[0]
                tags = _tags(page)
                check(tags.shape)
                photometric, bits = int(page.photometric), int(page.bitspersample)
                unsigned = page.dtype is not None and np.dtype(page.dtype).kind == "u"  # (float CMYK: Pillow's refusal)
                # CMYK in 16 bits, or in 8 with alpha (Photoshop's CMYK + alpha), which Pillow cannot read
                cmyk = photometric == _SEPARATED and unsigned and (bits == 16 or page.extrasamples) and _cmyk(page)
                if not cmyk and photometric not in (_MINISWHITE, _MINISBLACK, _RGB):
                    return None, tags
                array = page.asarray()
                axes = page.axes
                extras = tuple(int(e) for e in page.extrasamples)
        except SrFilterError:
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for undecodable files
            text = first_line(exc)
            if "imagecodecs" in text and tags is not None:  # a codec missing from this imagecodecs build
                deep = bits > 8 and photometric == _RGB
                (log.warning if deep else log.info)(
                    "%s: %s; decoding it with Pillow%s", name, text, " at 8 bits per channel" if deep else ""
                )
                return None, tags
            raise ImageFormatError(f"{name} is not a readable TIFF ({text})") from None
    if "Y" not in axes or "X" not in axes or array.ndim != len(axes) or array.size == 0:  # a damaged header tifffile read anyway
        raise ImageFormatError(f"{name} is not a readable TIFF (damaged layout: axes {axes!r}, shape {array.shape})")
    profiled = ImageMeta(icc_profile=tags.icc_profile)
    array = _layout(array, axes, extras, photometric, name, bits, profiled)
    tags.icc_profile = profiled.icc_profile  # sRGB (or none) once CMYK went through its profile
    return array, tags


def _tags(page: Any) -> TiffTags:
    """Shape, ICC profile, DPI and orientation of a tifffile page (damaged tags are ignored)."""
    samples = min(max(int(page.samplesperpixel), 1), 4)
    tags = TiffTags((int(page.imagewidth), int(page.imagelength), samples, int(page.dtype.itemsize if page.dtype else 1)))
    try:
        icc, orientation = page.tags.get("InterColorProfile"), page.tags.get("Orientation")
        tags.icc_profile = bytes(icc.value) if icc is not None else None
        tags.orientation = int(orientation.value) if orientation is not None and int(orientation.value) in range(1, 9) else 1
        tags.dpi, tags.dpi_unit, tags.aspect = _density(page.tags)
        tags.exif, tags.xmp = tiff_exif(page)
        resources = page.tags.get(PHOTOSHOP_TAG)
        tags.iptc = iptc_block(bytes(resources.value)) if resources is not None and resources.value else None
        if tags.iptc is None:
            tags.iptc = iptc_from_records(_tag_bytes(page.tags.get(IPTC_TAG), page.parent.byteorder))
    except Exception:  # noqa: BLE001 - metadata is optional; the pixels decide readability
        log.warning("ignoring unreadable TIFF tags")
    return tags


def _tag_bytes(tag: Any, byteorder: str) -> bytes:
    """A tag's raw bytes: IPTC records are declared as bytes or as LONGs (tifffile gives both as bytes)."""
    if tag is None or tag.value is None:
        return b""
    if isinstance(tag.value, (bytes, bytearray)):
        return bytes(tag.value)
    values = np.atleast_1d(np.asarray(tag.value))
    return values.astype(f"{byteorder}u4").tobytes() if values.dtype.kind in "ui" else b""


def _density(tags: Any) -> tuple[tuple[float, float] | None, str, tuple[int, int] | None]:
    """(DPI, the unit the file states it in, a pixel aspect ratio stated without a unit)."""
    xres, yres, unit = tags.get("XResolution"), tags.get("YResolution"), tags.get("ResolutionUnit")
    if xres is None or yres is None:
        return None, "inch", None
    code = int(unit.value) if unit is not None else 2
    x, y = (v.value[0] / v.value[1] if isinstance(v.value, tuple) else float(v.value) for v in (xres, yres))
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None, "inch", None
    if code == 1:  # no absolute unit: the ratio is the pixels' shape
        return None, "inch", aspect_of(x, y)
    per = {2: 1.0, 3: 2.54}.get(code)
    if per is None:
        return None, "inch", None
    return (round(x * per, 3), round(y * per, 3)), "cm" if code == 3 else "inch", None


@contextlib.contextmanager
def _tifffile_warnings(name: str) -> Iterator[None]:
    """Collect tifffile's log records while reading and report them as one warning of ours."""
    with held_records("tifffile") as records:
        try:
            yield
        except ImageFormatError as exc:  # nothing could be read: one line, with tifffile's reason where it had one
            if records and str(exc).startswith(f"{name} is not a readable TIFF ("):
                raise ImageFormatError(f"{name} is not a readable TIFF (damaged structure: "
                                       f"{first_line(records[0].getMessage())})") from None
            raise
    if records:  # read after all: what was damaged, said once
        log.warning("%s: damaged TIFF structure (%s); reading what can be read", name, first_line(records[0].getMessage()))


def _layout(array: np.ndarray, axes: str, extras: tuple[int, ...], photometric: int, name: str, bits: int = 8,
            meta: ImageMeta | None = None) -> np.ndarray:
    """tifffile's samples as HxW / HxWxC with alpha unassociated, min-is-white inverted, CMYK as
    RGB (through ``meta``'s ICC profile, which becomes sRGB's) and samples of other widths (2, 4,
    12 bits...) spread over their 8- or 16-bit range."""
    array = _to_yxs(array, axes)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype not in (np.uint8, np.uint16):
        raise ImageFormatError(f"{name}: TIFF with {array.dtype} samples is not supported; save it with unsigned 8- or 16-bit or float samples")
    elif 1 < bits < array.dtype.itemsize * 8:  # tifffile gives 4-bit samples as 0..15 in bytes: a black picture
        top, most = np.iinfo(array.dtype).max, 2**bits - 1
        wide = np.minimum(array, most).astype(np.uint32)  # 4 bytes a sample, not float64's 8 and more
        array = ((wide * top + most // 2) // most).astype(array.dtype)
    colour = {_RGB: 3, _SEPARATED: 4}.get(photometric, 1)
    if array.shape[2] < colour:
        raise ImageFormatError(f"{name}: RGB TIFF with only {array.shape[2]} samples per pixel")
    alpha_index = _alpha_index(extras, array.shape[2] - colour)
    dropped = array.shape[2] - colour - (alpha_index is not None)
    if dropped:  # a 5-sample RGB+alpha+mask had lost its fifth without a word
        log.warning("%s: %d extra sample(s) per pixel beside the colour%s are left out (the output holds colour and one "
                    "alpha channel)", name, dropped, " and alpha" if alpha_index is not None else "", extra=PER_FILE)
    kept = array[:, :, :colour]
    alpha = None if alpha_index is None else array[:, :, colour + alpha_index : colour + alpha_index + 1]
    if alpha is not None and alpha_index < len(extras) and extras[alpha_index] == _ASSOCALPHA:
        # the stored samples, before they become grey or RGB (white-is-zero grey, CMYK inks): black at
        # half alpha had come out white
        kept = _unpremultiply(kept, alpha)
    if photometric == _MINISWHITE:
        kept = _invert(kept)
    if photometric == _SEPARATED:
        kept = _cmyk_as_rgb(kept, meta or ImageMeta(), name)
    if alpha is None:
        return kept if kept.shape[2] == 3 else kept[:, :, 0]
    if alpha.dtype != kept.dtype:  # 16-bit CMYK through its profile comes back 8-bit
        alpha = _to_uint8(alpha)
    return np.concatenate([kept, alpha], axis=2)


def _cmyk_as_rgb(cmyk: np.ndarray, meta: ImageMeta, name: str = "image") -> np.ndarray:
    """CMYK samples as RGB: through the profile in ``meta`` (at 8 bits: Pillow's converter; 16-bit
    samples come back 8-bit, said so) or, without a usable one, by the plain formula at their own depth."""
    if not meta.icc_profile:
        return plain_cmyk(cmyk)
    rgb = np.asarray(cmyk_to_rgb(Image.fromarray(np.ascontiguousarray(_to_uint8(cmyk)), "CMYK"), meta))
    if meta.icc_profile is None:  # the profile could not be used (said): the formula, at the samples' own depth
        return plain_cmyk(cmyk)
    if cmyk.dtype != np.uint8:
        log.warning("%s: 16-bit CMYK is converted to RGB through its ICC profile with 8 bits per channel", name,
                    extra=PER_FILE)
    return rgb


def _cmyk(page: Any) -> bool:
    """Whether a separated (ink) page holds the four CMYK inks (InkSet 1, the default)."""
    inkset = page.tags.get("InkSet")
    return int(page.samplesperpixel) >= 4 and (inkset is None or int(inkset.value) == 1)


def _to_yxs(array: np.ndarray, axes: str) -> np.ndarray:
    """Reorder tifffile's axes (e.g. 'SYX' for planar, 'YXS' for chunky) to Y, X, samples."""
    array = np.asarray(array)
    keep = [i for i, a in enumerate(axes) if a in "YXS"]
    extra = [i for i, a in enumerate(axes) if a not in "YXS"]
    if extra:  # depth, time, ... : take the first plane of each
        array = array[tuple(0 if i in extra else slice(None) for i in range(array.ndim))]
        axes = "".join(axes[i] for i in keep)
    if "S" not in axes:
        array, axes = array[..., None], axes + "S"
    return np.ascontiguousarray(np.moveaxis(array, [axes.index("Y"), axes.index("X"), axes.index("S")], [0, 1, 2]))


def _alpha_index(extras: tuple[int, ...], count: int) -> int | None:
    if count <= 0:
        return None
    for i, kind in enumerate(extras[:count]):
        if kind in (_ASSOCALPHA, _UNASSALPHA):
            return i
    return 0  # an unspecified extra sample beside colour is, in practice, alpha


def _invert(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "f":
        return 1.0 - array
    return np.iinfo(array.dtype).max - array


def _unpremultiply(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    top = 1.0 if colour.dtype.kind == "f" else float(np.iinfo(colour.dtype).max)
    a = alpha.astype(np.float64) / top
    out = np.where(a > 0, colour.astype(np.float64) / np.maximum(a, 1e-12), 0.0)
    if colour.dtype.kind == "f":
        return out.astype(colour.dtype)
    return np.clip(np.rint(out), 0, top).astype(colour.dtype)


#: IFD0 tags of an EXIF block written into a tifffile TIFF: Make, Model, Software, DateTime,
#: Artist, Copyright (ImageDescription goes through ``description``); all ASCII
_ASCII_TAGS = (0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)
_XMP_TAG = 700


def encode_tiff(
    array: np.ndarray, *, icc_profile: bytes | None = None, dpi: tuple[float, float] | None = None, bigtiff: bool = False,
    exif: bytes | None = None, xmp: bytes | None = None, iptc: bytes | None = None, dpi_unit: str = "inch",
    aspect: tuple[int, int] | None = None,
) -> bytes:
    """Encode a uint8, uint16 or float32 array as a zlib-compressed (Big)TIFF (alpha as unassociated
    extra sample), with the descriptive tags of ``exif``'s first directory (maker, date, artist,
    copyright, description; not its EXIF and GPS sub-directories), ``xmp`` and ``iptc`` (a JPEG's
    APP13 block, whose resources go into the Photoshop tag); ``dpi`` is written per ``dpi_unit``
    (inch or cm), ``aspect`` (where ``dpi`` is None) as a resolution with no unit. tifffile's own
    shape record and software name are left out: they had replaced the user's description."""
    import tifffile

    buffer = io.BytesIO()
    channels = 1 if array.ndim == 2 else array.shape[2]
    kwargs: dict[str, Any] = {"photometric": "minisblack" if channels <= 2 else "rgb"}
    if channels in (2, 4):
        kwargs["extrasamples"] = ["unassalpha"]
    unit, resolution = tiff_resolution(dpi, dpi_unit, aspect)
    if resolution:
        kwargs["resolution"], kwargs["resolutionunit"] = resolution, {1: "NONE", 2: "INCH", 3: "CENTIMETER"}[unit]
    extratags = [(34675, 7, len(icc_profile), icc_profile, True)] if icc_profile else []
    if xmp:
        extratags.append((_XMP_TAG, 1, len(xmp), xmp, True))
    if iptc and iptc.startswith(PHOTOSHOP) and len(iptc) > len(PHOTOSHOP):
        extratags.append((PHOTOSHOP_TAG, 1, len(iptc) - len(PHOTOSHOP), iptc[len(PHOTOSHOP):], True))
        records = iptc_records(iptc)
        if records:  # and as bare records too, where other tools read them
            extratags.append((IPTC_TAG, 7, len(records), records, True))
    fields = _ifd0(exif)
    extratags += [(tag, 2, 0, fields[tag], True) for tag in _ASCII_TAGS if tag in fields]
    data = array[:, :, 0] if channels == 1 and array.ndim == 3 else array
    tifffile.imwrite(buffer, data, compression="zlib", extratags=extratags, bigtiff=bigtiff, metadata=None,
                     software=False, description=fields.get(0x010E), **kwargs)
    return buffer.getvalue()


def tiff_resolution(dpi: tuple[float, float] | None, dpi_unit: str,
                    aspect: tuple[int, int] | None) -> tuple[int, tuple[float, float] | None]:
    """(ResolutionUnit, (XResolution, YResolution)) for a density in ``dpi_unit`` or an aspect ratio
    alone; (2, None) for neither."""
    if dpi:
        return (3, (round(dpi[0] / 2.54, 4), round(dpi[1] / 2.54, 4))) if dpi_unit == "cm" else (2, (float(dpi[0]), float(dpi[1])))
    if aspect:
        return 1, (float(aspect[0]), float(aspect[1]))
    return 2, None


def _ifd0(exif: bytes | None) -> dict[int, str]:
    """The ASCII tags of an EXIF block's first directory, as 7-bit text (TIFF's ASCII type)."""
    if not exif:
        return {}
    from PIL import Image

    data = Image.Exif()
    try:
        data.load(exif)
    except Exception:  # noqa: BLE001 - a damaged block: nothing to carry
        return {}
    fields = {}
    for tag in (0x010E, *_ASCII_TAGS):
        value = data.get(tag)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str) and value.strip("\0 "):
            fields[tag] = value.rstrip("\0").encode("ascii", "replace").decode("ascii")
    return fields


def tiff_exif(page: Any) -> tuple[bytes | None, bytes | None]:
    """The descriptive tags (as an EXIF block) and the XMP of a tifffile page, for a TIFF that only
    tifffile opens."""
    from PIL import Image

    from .metadata import _about_layout

    exif = Image.Exif()
    xmp = None
    try:
        for tag in (0x010E, *_ASCII_TAGS):
            found = page.tags.get(tag)
            if found is not None and isinstance(found.value, (str, bytes)) and not _about_layout(tag, found.value):
                exif[tag] = found.value if isinstance(found.value, str) else found.value.decode("latin-1")
        found = page.tags.get(_XMP_TAG)
        xmp = bytes(found.value) if found is not None else None
    except Exception:  # noqa: BLE001 - metadata is optional
        return None, None
    return (exif.tobytes() if len(exif) else None), xmp

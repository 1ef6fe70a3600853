"""What an image file holds besides its pixels, and how it changes when the pixels are upscaled.

- EXIF orientation is applied to the pixels on read (so the model sees the image upright) and
  the tag is set to 1 on write; the EXIF pixel dimensions are set to the output size and the
  EXIF resolution scaled like the DPI.
- DPI is multiplied by the upscale factor, so the picture keeps its printed size.
- CMYK is converted to RGB through its embedded ICC profile (the output then carries an sRGB
  profile), because the models work on RGB and CMYK separation cannot be undone faithfully.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import re
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Union

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003
_X_RES, _Y_RES = 0x011A, 0x011B
#: IFD0 tags worth carrying from a TIFF's header (the rest describe the TIFF's own pixel layout)
_DESCRIPTIVE = {0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298}
_DESCRIPTION, _SOFTWARE = 0x010E, 0x0131


@dataclass
class ImageMeta:
    """Everything besides the pixels that should survive the round trip."""

    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None  # orientation already reset to 1
    dpi: tuple[float, float] | None = None
    #: the unit the file states its density in ("inch" or "cm"): written back in it where the format has it
    dpi_unit: str = "inch"
    #: a pixel aspect ratio stated without a density, as the file's two densities (x, y: a PNG pHYs or
    #: JFIF header or TIFF resolution with no unit; a pixel is y wide to x high; non-square pixels, as
    #: from DV and anamorphic video stills)
    aspect: tuple[int, int] | None = None
    text: dict[str, str] = field(default_factory=dict)  # PNG tEXt/iTXt/zTXt chunks
    xmp: bytes | None = None
    comment: bytes | None = None  # JPEG / GIF comment
    iptc: bytes | None = None  # a JPEG's Photoshop (APP13) block: IPTC captions, credits, keywords
    mode: str = "RGB"  # the input's Pillow mode (or "uint16" / "float32" for deep TIFFs)
    frames: int = 1
    #: a PNG's colour chunks besides an ICC profile (gAMA, cHRM, sRGB), as (type, body) pairs
    png_colour: tuple[tuple[bytes, bytes], ...] = ()
    #: a PNG file's text chunks (tEXt, zTXt, iTXt) as stored, in order, but the XMP packet's: written
    #: back as they were (``text`` had merged repeated keywords, lost iTXt's language tag and
    #: stored compressed zTXt uncompressed); empty for a picture not read from PNG bytes
    png_text_chunks: tuple[tuple[bytes, bytes], ...] = ()
    #: a WebP of lossless (VP8L) pictures only: written back lossless unless a quality is given
    lossless: bool = False


#: EXIF orientations that swap width and height (transpose, rotate 90 either way, transverse)
TRANSPOSING = frozenset({5, 6, 7, 8})


def upright_dpi(meta: ImageMeta, orientation: int) -> None:
    """Swap ``meta``'s horizontal and vertical density (and XMP's) when the orientation turns the
    picture by 90 degrees (its sides swap; EXIF's X/YResolution are swapped where the EXIF is read)."""
    if orientation in TRANSPOSING and meta.dpi:
        meta.dpi = meta.dpi[::-1]
    if orientation in TRANSPOSING and meta.aspect:
        meta.aspect = meta.aspect[::-1]
    if orientation in TRANSPOSING and meta.xmp:  # XMP's too (it had kept the stored axes: X and Y disagreed with EXIF)
        meta.xmp = re.sub(rb"tiff:([XY])Resolution", lambda m: b"tiff:" + (b"Y" if m.group(1) == b"X" else b"X") + b"Resolution",
                          meta.xmp)


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an HxW[xC] array so it displays upright."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(int(orientation or 1))
    return np.ascontiguousarray(op(array)) if op else array


#: how a JPEG's APP13 segment that holds IPTC data begins
PHOTOSHOP = b"Photoshop 3.0\x00"
#: the TIFF tag of Photoshop's image resources (the APP13 segment's, IPTC inside), as Photoshop writes it
PHOTOSHOP_TAG = 34377
#: the TIFF tag of bare IPTC-NAA records (no Photoshop resource around them), as many other tools write them
IPTC_TAG = 33723
_IPTC_RESOURCE = 0x0404


def iptc_from_records(records: bytes) -> bytes | None:
    """A TIFF's bare IPTC records (tag 33723) as the APP13 block the other formats carry (a
    Photoshop IPTC resource): a TIFF that held its captions only there had lost them in every output."""
    if not records:
        return None
    size = len(records)
    return PHOTOSHOP + b"8BIM" + _IPTC_RESOURCE.to_bytes(2, "big") + b"\0\0" + size.to_bytes(4, "big") + records + b"\0" * (size & 1)


def iptc_records(block: bytes | None) -> bytes | None:
    """The bare IPTC records of an APP13 block (its IPTC resource's data), for a TIFF's tag 33723."""
    if not block or not block.startswith(PHOTOSHOP):
        return None
    for ident, _, data in _resources(block[len(PHOTOSHOP):]):
        if ident == _IPTC_RESOURCE and data:
            return data
    return None


def _resources(resources: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(id, the whole record, its data) of each Photoshop image resource ("8BIM" records), up to
    the first damaged or cut one."""
    pos = 0
    while pos + 12 <= len(resources) and resources[pos:pos + 4] == b"8BIM":
        start, ident, name_length = pos, int.from_bytes(resources[pos + 4:pos + 6], "big"), resources[pos + 6]
        pos += 6 + (1 + name_length + 1) // 2 * 2  # the Pascal-string name, padded to an even length
        if pos + 4 > len(resources):
            return
        size = int.from_bytes(resources[pos:pos + 4], "big")
        data = resources[pos + 4:pos + 4 + size]
        pos += 4 + size + (size & 1)
        if pos > len(resources) + 1:  # cut short (a missing pad byte is no loss)
            return
        yield ident, resources[start:min(pos, len(resources))], data


def iptc_block(resources: bytes) -> bytes | None:
    """A TIFF's Photoshop resources (tag 34377) as a JPEG APP13 block holding only their IPTC record
    (resource 0x0404); None without one. The rest (thumbnails, Photoshop's own settings) is no
    caption or credit: taken whole, a TIFF with only a resolution record was said to lose "IPTC
    data", and large resources did not fit a JPEG segment and were left out without a word."""
    kept = [whole for ident, whole, _ in _resources(resources) if ident == _IPTC_RESOURCE]
    return PHOTOSHOP + b"".join(kept) if kept else None


def _photoshop_block(image: Image.Image) -> bytes | None:
    """A JPEG's APP13 "Photoshop 3.0" segment (where IPTC captions and credits live), whole; a
    TIFF's Photoshop tag (34377) as such a segment."""
    if image.format == "TIFF":
        resources = getattr(image, "tag_v2", {}).get(PHOTOSHOP_TAG)
        return iptc_block(bytes(resources)) if isinstance(resources, (bytes, bytearray)) else None
    for marker, data in getattr(image, "applist", None) or []:
        if marker == "APP13" and data.startswith(PHOTOSHOP):
            return bytes(data)
    return None


def read_meta(image: Image.Image) -> tuple[ImageMeta, int]:
    """Metadata of an opened image, and its EXIF orientation (PNGs: read after decoding)."""
    info = image.info
    meta = ImageMeta(
        text=png_text(image) if image.format == "PNG" else {},
        format=image.format,
        icc_profile=info.get("icc_profile") or None,
        xmp=upright_xmp(_bytes(info.get("xmp"))),
        comment=_bytes(info.get("comment")),
        iptc=_photoshop_block(image),
        mode=image.mode,
        frames=1 if image.format == "MPO" else _frames(image),  # MPO: camera previews
        png_colour=_png_colour(info) if image.format == "PNG" else (),
    )
    meta.dpi, meta.dpi_unit, meta.aspect = stated_density(image)
    try:
        meta.exif, orientation = _exif(image)
    except Exception:  # noqa: BLE001 - damaged EXIF (text or 6/0 orientation, negative rationals, ...)
        log.warning("ignoring damaged EXIF data (orientation and camera data are left out)")
        meta.exif, orientation = None, 1
    return meta, orientation


def _png_colour(info: dict) -> tuple[tuple[bytes, bytes], ...]:
    """A PNG's gAMA, cHRM and sRGB chunks, from what Pillow read of them (they had been dropped:
    a picture with a linear gAMA showed with other tones)."""
    chunks = []
    try:
        if "srgb" in info:
            chunks.append((b"sRGB", bytes([int(info["srgb"]) & 3])))
        if info.get("gamma"):
            chunks.append((b"gAMA", struct.pack(">I", round(float(info["gamma"]) * 100000))))
        if info.get("chromaticity") and len(info["chromaticity"]) == 8:
            chunks.append((b"cHRM", struct.pack(">8I", *(round(float(v) * 100000) for v in info["chromaticity"]))))
    except (TypeError, ValueError, struct.error):  # a damaged chunk: left out
        return ()
    return tuple(chunks)


def _exif(image: Image.Image) -> tuple[bytes | None, int]:
    """The EXIF block to carry (orientation reset to 1, the resolutions swapped where the pixels turn
    by 90 degrees) and the orientation; raises when damaged."""
    exif = image.getexif()
    if not exif:
        return None, 1
    orientation = exif.get(ORIENTATION, 1)
    orientation = int(orientation) if orientation is not None else 1
    orientation = orientation or 1  # 0: "unknown", which some cameras write
    if not 1 <= orientation <= 8:
        raise ValueError(f"EXIF orientation {orientation}")
    if image.format == "TIFF":
        exif = _descriptive(exif)
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    if orientation in TRANSPOSING and _X_RES in exif and _Y_RES in exif:
        exif[_X_RES], exif[_Y_RES] = exif[_Y_RES], exif[_X_RES]
    return (exif.tobytes() if len(exif) or exif.get_ifd(_EXIF_IFD) else None), orientation


def _frames(image: Image.Image) -> int:
    """How many frames or pages the file holds (Pillow walks them; a damaged later one stops the count)."""
    try:
        return int(getattr(image, "n_frames", 1) or 1)
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for a damaged later frame
        log.warning("the frames or pages after the first are damaged; only the first is upscaled")
        return 1


def png_text(image: Image.Image) -> dict[str, str]:
    """The text chunks of a PNG whose pixels have been loaded (Pillow reads them after IDAT)."""
    try:
        return {k: v for k, v in getattr(image, "text", {}).items() if isinstance(v, str)}
    except (OSError, SyntaxError, ValueError):
        return {}


#: how much larger the output is than the input: one factor, or (horizontal, vertical) where the two
#: differ (a --width/--height whose other side rounds to whole pixels, as a 7-pixel-wide picture
#: made 10 wide and 5 high to 7: x1.43 across, x1.4 down)
Scale = Union[float, tuple[float, float]]


def axis_scales(scale: Scale) -> tuple[float, float]:
    """(horizontal, vertical) factors of a :data:`Scale`."""
    if isinstance(scale, tuple):
        return float(scale[0]), float(scale[1])
    return float(scale), float(scale)


def sides_scale(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[float, float]:
    """The (horizontal, vertical) :data:`Scale` from an HxW[xC] shape to another, so that a density
    keeps each side's printed length (one factor for both had been off by the rounding of the side
    the scale was not chosen for, up to 5% on small pictures)."""
    return after[1] / max(1, before[1]), after[0] / max(1, before[0])


def exif_for_output(exif: bytes | None, width: int, height: int, scale: Scale, *, upright: bool = True) -> bytes | None:
    """The EXIF block for the output: pixel dimensions set, resolution scaled, orientation 1
    (``upright``: the orientation was applied to the pixels) or kept."""
    if not exif:
        return None
    data = Image.Exif()
    try:
        data.load(exif)
        sub = data.get_ifd(_EXIF_IFD) if _EXIF_IFD in data else None  # asked for, Pillow writes an empty one
        if sub:
            sub[_PIXEL_X], sub[_PIXEL_Y] = int(width), int(height)
        for tag, factor in zip((_X_RES, _Y_RES), axis_scales(scale)):
            if tag in data and float(data[tag] or 0) > 0:
                from PIL.TiffImagePlugin import IFDRational

                data[tag] = IFDRational(round(float(data[tag]) * factor * 1000), 1000)
        if ORIENTATION in data and upright:
            data[ORIENTATION] = 1
        return data.tobytes()
    except Exception:  # noqa: BLE001 - keep the original block rather than lose it
        log.warning("could not update EXIF; copying it unchanged")
        return exif


#: the largest DPI each format's resolution field can store (PNG and BMP hold pixels per metre)
MAX_DPI = {"PNG": 0xFFFFFFFF * 0.0254, "BMP": 0x7FFFFFFF * 0.0254, "JPEG": 65535.0, "TIFF": 0xFFFFFFFF / 1000}


def scaled_dpi(dpi: tuple[float, float] | None, scale: Scale, fmt: str | None = None) -> tuple[float, float] | None:
    """DPI multiplied by the upscale factor of its side, so the printed size stays the same.

    A DPI that ``fmt`` cannot store (a damaged or absurd resolution) is left out with a warning.
    """
    if not dpi:
        return None
    across, down = axis_scales(scale)
    out = (round(dpi[0] * across, 3), round(dpi[1] * down, 3))
    if fmt in MAX_DPI and not all(0 < d <= MAX_DPI[fmt] for d in out):
        log.warning("a resolution of %g x %g DPI cannot be stored in %s; leaving the DPI out", out[0], out[1], fmt)
        return None
    return out


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """An sRGB ICC profile (from LittleCMS through Pillow; made once, its header holds a date)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def cmyk_to_rgb(image: Image.Image, meta: ImageMeta) -> Image.Image:
    """CMYK -> RGB, through the embedded ICC profile when there is one (then tagged sRGB)."""
    if meta.icc_profile:
        from PIL import ImageCms

        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(meta.icc_profile))
            target = ImageCms.createProfile("sRGB")
            rgb = ImageCms.profileToProfile(image, source, target, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
            meta.icc_profile = srgb_profile()
            return rgb
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            log.warning("the CMYK image's ICC profile cannot be used (%s); converting without it", exc)
    meta.icc_profile = None
    return Image.fromarray(plain_cmyk(np.asarray(image)), "RGB")


def plain_cmyk(cmyk: np.ndarray) -> np.ndarray:
    """HxWx4 CMYK samples (uint8 or uint16) as RGB of the same depth without a profile: (1 - ink)
    (1 - black), as Pillow 12 and later convert. One formula for every depth and Pillow version:
    16-bit TIFFs had been subtracting, as older Pillow did, 20 levels darker than 8-bit ones."""
    top = int(np.iinfo(cmyk.dtype).max)
    white = top - cmyk[..., :3].astype(np.uint32)  # (top * top + top // 2 fits 32 bits for 16-bit samples)
    return ((white * (top - cmyk[..., 3:].astype(np.uint32)) + top // 2) // top).astype(cmyk.dtype)


def _descriptive(exif: Image.Exif) -> Image.Exif:
    kept = Image.Exif()
    for tag, value in exif.items():
        if (tag in _DESCRIPTIVE or tag == ORIENTATION) and not _about_layout(tag, value):
            kept[tag] = value
    for ifd in (_EXIF_IFD, _GPS_IFD):
        sub = exif.get_ifd(ifd)
        if sub:
            kept[ifd] = dict(sub)
    return kept


def _about_layout(tag: int, value) -> bool:
    """A description or software tag that describes the file's own layout, which the output
    does not have: ImageJ's stack header, tifffile's shape record, tifffile as the writer."""
    text = value.decode("latin-1", "replace") if isinstance(value, bytes) else str(value)
    if tag == _DESCRIPTION:
        return text.startswith("ImageJ=") or re.match(r'\s*\{\s*"shape"\s*:', text) is not None
    return tag == _SOFTWARE and text.startswith("tifffile")


def merged_exif(exif: bytes | None, more: bytes | None) -> bytes | None:
    """``exif`` with the first-directory tags of ``more`` that it lacks."""
    if not more:
        return exif
    if not exif:
        return more
    ours, theirs = Image.Exif(), Image.Exif()
    try:
        ours.load(exif)
        theirs.load(more)
    except Exception:  # noqa: BLE001 - a damaged block: keep what we had
        return exif
    missing = {tag: value for tag, value in theirs.items() if tag not in ours}
    if not missing:
        return exif
    for ifd in (_EXIF_IFD, _GPS_IFD):  # loaded, so that tobytes writes them back
        ours.get_ifd(ifd)
    ours.update(missing)
    return ours.tobytes()


def sized_xmp(xmp: bytes | None, width: int, height: int, scale: Scale = 1.0) -> bytes | None:
    """XMP whose pixel sizes (``exif:PixelXDimension``/``PixelYDimension``, ``tiff:ImageWidth``/
    ``ImageLength``) and resolutions (``tiff:XResolution``/``YResolution``, times ``scale``), where
    it has them, are the output's, as the EXIF ones are: the two had disagreed, the XMP still
    giving the input's size and density."""
    if not xmp:
        return xmp
    for names, value in ((("exif:PixelXDimension", "tiff:ImageWidth"), width), (("exif:PixelYDimension", "tiff:ImageLength"), height)):
        for name in names:
            xmp = _xmp_number(xmp, name, value)
    for name, factor in zip(("tiff:XResolution", "tiff:YResolution"), axis_scales(scale)):
        if factor != 1.0:
            xmp = _xmp_rational(xmp, name, factor)
    return xmp


def _xmp_rational(xmp: bytes, name: str, scale: float) -> bytes:
    """``xmp`` with the rational (``300/1``) or number (``300``) of property ``name`` times ``scale``,
    written as ``N/1000`` reduced, as EXIF's resolutions are written."""
    key = re.escape(name.encode())

    def scaled(match: re.Match) -> bytes:
        top, _, bottom = match.group(2).partition(b"/")
        try:
            value = float(top) / (float(bottom) if bottom else 1.0)
        except (ValueError, ZeroDivisionError):
            return match.group(0)
        if not (math.isfinite(value) and value > 0):
            return match.group(0)
        ratio = Fraction(round(value * scale * 1000), 1000)
        return match.group(1) + f"{ratio.numerator}/{ratio.denominator}".encode() + match.group(3)

    number = rb"\s*([0-9.]+(?:/[0-9.]+)?)\s*"
    xmp = re.sub(rb"(" + key + rb"""\s*=\s*["'])""" + number + rb"""(["'])""", scaled, xmp)
    return re.sub(rb"(<" + key + rb">)" + number + rb"(</" + key + rb">)", scaled, xmp)


def _xmp_number(xmp: bytes, name: str, value: int) -> bytes:
    """``xmp`` with the number of property ``name`` set to ``value``, written as an attribute
    (``name="3"``) or an element (``<name>3</name>``)."""
    key, number = re.escape(name.encode()), str(value).encode()
    xmp = re.sub(rb"(" + key + rb"""\s*=\s*["'])\s*[0-9]+\s*(["'])""", rb"\g<1>" + number + rb"\g<2>", xmp)
    return re.sub(rb"(<" + key + rb">)\s*[0-9]+\s*(</" + key + rb">)", rb"\g<1>" + number + rb"\g<2>", xmp)


def upright_xmp(xmp: bytes | None) -> bytes | None:
    """XMP with ``tiff:Orientation`` set to 1, as the pixels are once the orientation is applied
    (viewers that read XMP would otherwise turn the picture a second time)."""
    if not xmp:
        return xmp
    return _xmp_number(xmp, "tiff:Orientation", 1)


def stated_dpi(image: Image.Image) -> tuple[float, float] | None:
    """The pixel density the file states, in dpi; None where it states none (:func:`stated_density`)."""
    return stated_density(image)[0]


def stated_density(image: Image.Image) -> tuple[tuple[float, float] | None, str, tuple[int, int] | None]:
    """(the pixel density the file states, in dpi; the unit it states it in, "inch" or "cm"; a
    pixel aspect ratio it states without a density: PNG pHYs, JFIF or EXIF with no unit), each
    None where it states none, read once for the three. Pillow gives a JPEG (or an MPO, a camera's
    JPEG with previews) whose JFIF header has no unit and whose EXIF has no resolution 72 dpi of
    its own, and a TIFF without one 1 dpi: written back scaled, that became a density the source
    never had (288 dpi at x4)."""
    info = image.info
    if image.format in ("JPEG", "MPO") and info.get("jfif_unit") not in (1, 2):
        density = _exif_density(image)  # Pillow reads EXIF's X alone (100x50 per cm had become 254x254 dpi),
        if density is None:  # and takes a density with no unit as dpi
            return None, "inch", checked_aspect(info.get("jfif_density")) if info.get("jfif_unit") == 0 else None
        unit, x, y = density
        if unit == 1:
            return None, "inch", aspect_of(x, y)
        per = 2.54 if unit == 3 else 1.0
        return (x * per, y * per), "cm" if unit == 3 else "inch", None
    if image.format == "TIFF" and 282 not in getattr(image, "tag_v2", {}):
        return None, "inch", None
    dpi = info.get("dpi")
    cm = image.format in ("JPEG", "MPO") and info.get("jfif_unit") == 2
    if dpi is None and cm:  # (Pillow 11.0 gives none for centimetres)
        dpi = tuple(d * 2.54 for d in info.get("jfif_density") or ())
    try:
        if dpi and len(dpi) == 2 and all(math.isfinite(float(d)) and float(d) > 0 for d in dpi):
            return (float(dpi[0]), float(dpi[1])), "cm" if cm else "inch", None
    except (TypeError, ValueError):
        pass
    return None, "inch", checked_aspect(info.get("aspect")) if image.format == "PNG" else None


def _exif_density(image: Image.Image) -> tuple[int, float, float] | None:
    """(ResolutionUnit, XResolution, YResolution) of a picture's EXIF (unit 2 when it states
    none, as EXIF says); None where it states no usable resolution."""
    try:
        exif = image.getexif()
        if 282 not in exif:
            return None
        x, y = float(exif[282]), float(exif.get(283, exif[282]))
        unit = int(exif.get(296, 2))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0) or unit not in (1, 2, 3):
        return None
    return unit, x, y


def aspect_of(x: float, y: float) -> tuple[int, int] | None:
    """Two densities with no unit (EXIF's or a TIFF's resolution) as a pixel aspect ratio of whole numbers."""
    ratio = Fraction(x / y).limit_denominator(1000)
    return checked_aspect((ratio.numerator, ratio.denominator))


def checked_aspect(pair: object) -> tuple[int, int] | None:
    """``pair`` as a pixel aspect ratio of two positive whole numbers, None when square or unusable."""
    try:
        x, y = (int(v) for v in pair)  # type: ignore[union-attr]
    except (TypeError, ValueError, OverflowError):
        return None
    return (x, y) if x > 0 and y > 0 and x != y else None


def fit_aspect(aspect: tuple[int, int], top: int) -> tuple[int, int]:
    """``aspect`` in numbers no larger than ``top`` (a JFIF header's 16-bit fields), nearly the same ratio."""
    x, y = aspect
    if max(x, y) <= top:
        return x, y
    shrink = max(x, y) / top
    return max(1, round(x / shrink)), max(1, round(y / shrink))


def _bytes(value) -> bytes | None:
    if not value:
        return None
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)

"""Encoding pixels and their carried metadata in each output format, and each format's limits.

16-bit and float data stay 16-bit in PNG (through :mod:`sr_filter.png`) and 16-bit / float in
TIFF (through :mod:`sr_filter.tiffio`); the other formats go through Pillow at 8 bits. What each
format can carry (alpha, ICC profile, EXIF, DPI) decides what is written; see docs/io.md.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import struct
from typing import Any

import numpy as np
from PIL import Image

from . import png, pnm, tiffio
from .convert import PER_FILE, _to_uint8, _to_uint16, array_to_pil, beyond_extent
from .errors import ImageFormatError, ImageTooLargeError, OutOfMemoryError, first_line
from .icc import to_srgb16
from .imageops import gray_value
from .metadata import (IPTC_TAG, PHOTOSHOP, PHOTOSHOP_TAG, ImageMeta, Scale, exif_for_output, fit_aspect, iptc_records,
                       scaled_dpi, sized_xmp)

log = logging.getLogger(__name__)

#: formats whose files can hold an alpha channel (the others get it flattened onto white)
_ALPHA = {"PNG", "WEBP", "TIFF", "GIF", "AVIF", "TGA", "PAM"}
#: Netpbm's PGM/PPM (Pillow's name "PPM"), PGM alone (a .pgm name: grey) and PAM: 8 or 16 bits,
#: written by :mod:`sr_filter.pnm`
_NETPBM = {"PPM", "PGM", "PAM"}
_ICC = {"PNG", "JPEG", "WEBP", "TIFF", "AVIF"}
_EXIF = {"PNG", "JPEG", "WEBP", "TIFF", "AVIF"}
_DPI = {"PNG", "JPEG", "TIFF", "BMP"}
_XMP = {"JPEG", "WEBP", "PNG", "TIFF", "AVIF"}
#: the largest width and height each format can store (libjpeg's 65500, WebP's 14-bit fields,
#: GIF's and TGA's 16-bit fields, BMP's and PNG's signed 32-bit fields, TIFF's 32-bit fields; AVIF: the
#: largest side libavif's readers take by default, as Pillow, browsers and GIMP read it)
#: pixel bytes beyond which a TIFF must be a BigTIFF (Pillow writes only classic, 32-bit offset TIFF)
CLASSIC_TIFF_BYTES = 2**32 - 2**25
#: PNG: libpng's writer refuses sides over its default user limit ("Invalid IHDR data"), below the format's 2**31 - 1
MAX_SIDE = {"JPEG": 65500, "WEBP": 16383, "GIF": 65535, "BMP": 2**31 - 1, "PNG": 1_000_000, "TIFF": 2**32 - 1,
            "AVIF": 32768, "TGA": 65535}
#: libavif's readers refuse pictures of more pixels than this by default (AVIF_DEFAULT_IMAGE_SIZE_LIMIT)
AVIF_PIXELS = 16384 * 16384


def check_encodable(fmt: str, width: int, height: int) -> None:
    """Raise :class:`ImageTooLargeError` when ``fmt`` cannot hold a ``width`` x ``height`` image.

    Checked before the work starts, so a too-wide JPEG is refused in a second, not after the upscale.
    """
    side = MAX_SIDE.get(fmt)
    if side is not None and (width > side or height > side):
        raise ImageTooLargeError(
            f"a {width}x{height} image is too large for {fmt}, which holds at most {side} pixels per side; "
            f"choose a smaller scale{_larger(fmt)}"
        )
    if fmt == "BMP" and 54 + (width * 3 + 3) // 4 * 4 * height > 2**32 - 1:  # 32-bit file size field
        raise ImageTooLargeError(
            f"a {width}x{height} image is too large for BMP, whose files hold at most 4 GiB; "
            "choose a smaller scale or another output format (PNG or TIFF)"
        )
    if fmt == "AVIF" and width * height > AVIF_PIXELS:  # written, then unreadable by Pillow, browsers, GIMP
        raise ImageTooLargeError(
            f"a {width}x{height} image is too large for AVIF, which its readers take up to {AVIF_PIXELS / 1e6:.0f} "
            "megapixels; choose a smaller scale or another output format (PNG or TIFF)"
        )


def _larger(fmt: str) -> str:
    """The formats that hold larger pictures than ``fmt``, as advice (PNG had been offered for a PNG too large)."""
    larger = " or ".join(f for f in ("PNG", "TIFF") if MAX_SIDE[f] > MAX_SIDE.get(fmt, math.inf))
    return f" or another output format ({larger})" if larger else ""


def webp_quality(quality: int | None, meta: ImageMeta | None) -> dict[str, Any]:
    """Pillow's WebP options: ``quality`` (90 when not given), lossless for 100 and, when no
    quality is given, for a lossless WebP input (it had come out lossy at 90, without a word)."""
    if quality is None and meta is not None and meta.lossless:
        return {"lossless": True}  # Pillow's default effort: 100 took 30% longer for 0.1% smaller
    quality = 90 if quality is None else quality
    return {"quality": quality, "lossless": True} if quality == 100 else {"quality": quality}


def avif_quality(quality: int | None) -> dict[str, Any]:
    """Pillow's AVIF options: ``quality`` (90 when not given), with full-resolution chroma (4:4:4)
    from 90 up, as JPEG gets it; Pillow's own 75 and 4:2:0 blur the detail an upscale makes."""
    quality = 90 if quality is None else quality
    return {"quality": quality, "subsampling": "4:4:4"} if quality >= 90 else {"quality": quality}


def encode_image(array: np.ndarray, fmt: str, meta: ImageMeta | None = None, *, quality: int | None = None, scale: Scale = 1.0) -> bytes:
    """Encode pixels (and carried metadata, updated for the new size: ``scale``, how much larger
    they are than when read) in ``fmt``.

    16-bit and float data stay 16-bit in PNG (float becomes 16-bit) and 16-bit / float in
    TIFF; other formats hold 8 bits. Alpha is flattened onto white for JPEG and BMP.
    OutOfMemoryError when the encoder runs out of memory: after the upscaling, where smaller
    tiles (the advice for a bare MemoryError) change nothing.
    """
    try:
        return _encode_image(array, fmt, meta, quality=quality, scale=scale)
    except MemoryError:
        height, width = array.shape[:2]
        raise OutOfMemoryError(f"writing the {width}x{height} picture as {_SHOWN.get(fmt, fmt)} ran out of memory; "
                               "close other programs, or choose a smaller output") from None


def _encode_image(array: np.ndarray, fmt: str, meta: ImageMeta | None, *, quality: int | None, scale: Scale) -> bytes:
    meta = meta or ImageMeta()
    height, width = array.shape[:2]
    if meta.xmp:
        meta = dataclasses.replace(meta, xmp=sized_xmp(meta.xmp, width, height, scale))
    check_encodable(fmt, width, height)
    exif = exif_for_output(meta.exif, width, height, scale) if fmt in _EXIF else None
    dpi = scaled_dpi(meta.dpi, scale, fmt) if fmt in _DPI else None
    channels = 1 if array.ndim == 2 else array.shape[2]
    grey_to_rgb = fmt == "WEBP" and channels in (1, 2) and _space(meta.icc_profile) == b"GRAY"  # WebP has no grey
    icc = _fitting_profile(meta.icc_profile, grey=channels in (1, 2)) if fmt in _ICC and not grey_to_rgb else None
    lost = _not_held(meta, fmt)
    to_srgb = bool(meta.icc_profile) and fmt not in _ICC  # GIF, BMP: said once the pixels are converted
    if not to_srgb:
        _say_lost(lost, fmt, meta)
    extent = beyond_extent(array) if fmt != "TIFF" else None
    if extent:
        low, high = extent
        beyond = " and ".join(([f"up to {high:.4g}"] if high > 1 else []) + ([f"down to {low:.4g}"] if low < 0 else []))
        log.warning("%s holds 0..1 (black to white): the picture's values %s (HDR or out of gamut) are clipped to it "
                    "(a float TIFF keeps them)", _SHOWN.get(fmt, fmt), beyond, extra=PER_FILE)
    if fmt == "TIFF" and (array.dtype != np.uint8 or array.nbytes > CLASSIC_TIFF_BYTES):
        if array.dtype == np.uint8:
            log.info("the TIFF output is over 4 GiB: writing a BigTIFF (EXIF is not carried)")
        return tiffio.encode_tiff(array, icc_profile=icc, dpi=dpi, bigtiff=array.nbytes > CLASSIC_TIFF_BYTES,
                                  exif=exif, xmp=meta.xmp, iptc=meta.iptc, dpi_unit=meta.dpi_unit, aspect=meta.aspect)
    if fmt == "PNG":  # libpng for 8 and 16 bits, straight from the array
        deep = array if array.dtype == np.uint8 else _to_uint16(array)
        raw, text = _png_text(meta)
        return png.encode_png(deep, icc_profile=icc, dpi=dpi, aspect=meta.aspect, exif=exif, text=text,
                              colour=meta.png_colour, raw_text=raw)
    deep = None  # a Netpbm file's 16 bits moved to sRGB here, where LittleCMS converts 8 bits only
    if fmt in _NETPBM and array.dtype != np.uint8:
        deep = _to_srgb_deep(array, meta.icc_profile) if to_srgb else (_to_uint16(array), False)
        if deep is None:  # a profile of look-up tables: converted to sRGB through LittleCMS at 8 bits
            log.warning("the %s picture is written with 8 bits per channel, its colours converted to sRGB "
                        "(a Netpbm file holds no ICC profile; PNG and TIFF keep 16 bits and the profile)",
                        "16-bit" if array.dtype == np.uint16 else "floating-point", extra=PER_FILE)
            array = _to_uint8(array)
        else:
            array = deep[0]
    if array.dtype != np.uint8 and fmt not in _NETPBM:
        log.warning("%s holds 8 bits per channel: the %s picture is written with 8 (%s)", _SHOWN.get(fmt, fmt),
                    "16-bit" if array.dtype == np.uint16 else "floating-point",
                    "PNG and TIFF keep it" if array.dtype == np.uint16 else "TIFF keeps it; PNG keeps 16 bits", extra=PER_FILE)
        array = _to_uint8(array)
    if channels in (2, 4) and fmt not in _ALPHA:
        keeper = " (a .pam keeps it)" if fmt in ("PPM", "PGM") else ""
        log.warning("%s has no transparency; flattening the alpha channel onto white%s", _SHOWN.get(fmt, fmt), keeper,
                    extra=PER_FILE)
        array = flatten_on_white(array)
    if to_srgb:
        array, converted = _to_srgb(array, meta.icc_profile) if deep is None else (array, deep[1])
        what = "colours" if channels >= 3 else "grey tones"
        icc_lost = f"the ICC profile (the {what} are converted to sRGB, which it is shown as)" if converted else "the ICC profile"
        _say_lost([icc_lost, *lost], fmt, meta)
    elif grey_to_rgb:
        array, converted = _to_srgb(array, meta.icc_profile)
        if converted:
            log.info("WebP has no grey pictures: the grey tones are converted to sRGB, which an RGB WebP is shown as")
    if fmt == "PGM" and array.ndim == 3:  # a .pgm holds grey, as every Netpbm PGM reader takes it
        log.warning("PGM holds grey only: the colour picture is written in grey tones (a .ppm keeps the colours)",
                    extra=PER_FILE)
        array = np.round(gray_value(array[..., :3])).astype(array.dtype)  # ITU-R 601 luma, as Netpbm's ppmtopgm
    if fmt in _NETPBM:
        return pnm.encode_pnm(array, pam=fmt == "PAM")
    options: dict[str, Any] = {}
    if fmt == "GIF" and channels in (2, 4):  # on/off transparency: cut at alpha 128, as in animations
        say_soft_alpha_cut([array[..., -1]], meta)
        image = gif_frame(np.dstack([array[..., :1]] * 3 + [array[..., 1:]]) if channels == 2 else array)
        options["transparency"] = GIF_TRANSPARENT
    else:
        image = array_to_pil(array)
    if icc:
        options["icc_profile"] = icc
    if fmt == "JPEG":
        exif = _fits_jpeg("EXIF", exif, 0)
    if exif:
        options["exif"] = exif
    unit, resolution = tiffio.tiff_resolution(dpi, meta.dpi_unit, meta.aspect) if fmt == "TIFF" else (2, None)
    if resolution and unit != 2:  # centimetres, or an aspect ratio alone, as the source stated it
        options.update(resolution_unit=unit, x_resolution=resolution[0], y_resolution=resolution[1])
    elif dpi:
        options["dpi"] = dpi
    elif fmt == "BMP":  # Pillow writes 96 dpi unless told; 0 is the format's "not stated", as the input was
        options["dpi"] = (0, 0)
    if fmt == "JPEG":
        options["quality"] = quality if quality is not None else 95
    if fmt == "WEBP":
        options.update(webp_quality(quality, meta))
    if fmt == "AVIF":
        options.update(avif_quality(quality))
        if image.mode == "L":  # monochrome (4:0:0): the 4:4:4 asked for colour had made it RGB, with a grey profile
            options["subsampling"] = "4:0:0"
    if fmt == "TGA":
        options["compression"] = "tga_rle"  # every TGA reader takes run-length coding; raw is 3-4x larger
    if fmt in WITH_QUALITY:
        xmp = _fits_jpeg("XMP", meta.xmp, len(_XMP_NAMESPACE)) if fmt == "JPEG" else meta.xmp
        if xmp:
            options["xmp"] = xmp
    if fmt == "JPEG" and options["quality"] >= 90:
        options["subsampling"] = 0  # 4:4:4: no colour bleeding at high quality
    comment = comment_for(meta, fmt)
    if comment:
        options["comment"] = comment
    if fmt == "JPEG" and meta.iptc and len(meta.iptc) <= _JPEG_SEGMENT:  # written as read, after the header segments
        options["extra"] = b"\xff\xed" + (len(meta.iptc) + 2).to_bytes(2, "big") + meta.iptc
    resources = meta.iptc[len(PHOTOSHOP):] if meta.iptc and meta.iptc.startswith(PHOTOSHOP) else None
    if fmt == "TIFF" and (meta.xmp or resources):  # Pillow's TIFF writer takes these only as tags of the first directory
        tags = Image.Exif()
        if exif:
            tags.load(exif)
        if meta.xmp:
            tags[700] = meta.xmp
        if resources:
            tags[PHOTOSHOP_TAG] = resources  # IPTC, as Photoshop writes it into a TIFF
            records = iptc_records(meta.iptc)
            if records:  # and as bare records too, where other tools read them
                tags[IPTC_TAG] = records
        options["exif"] = tags
    if fmt == "TIFF" and not _has_sub_ifd(exif):
        # Pillow's compressing (libtiff) writer cannot store EXIF sub-IFDs; then stay uncompressed
        options["compression"] = "tiff_adobe_deflate"
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageFormatError(f"cannot write {fmt}: {first_line(exc)}") from None
    if fmt == "JPEG" and dpi and meta.dpi_unit == "cm":
        return _jfif_density(buffer.getvalue(), 2, tuple(max(1, min(65535, round(d / 2.54))) for d in dpi))
    if fmt == "JPEG" and not dpi and meta.aspect:
        return _jfif_density(buffer.getvalue(), 0, fit_aspect(meta.aspect, 65535))
    return buffer.getvalue()


def _jfif_density(data: bytes, unit: int, density: tuple[int, ...]) -> bytes:
    """A JPEG with its JFIF header's density unit (0 none: an aspect ratio, 1 inch, 2 cm) and
    values set: Pillow's writer states DPI only."""
    if data[2:4] != b"\xff\xe0" or data[6:11] != b"JFIF\x00":
        return data
    return data[:13] + bytes([unit]) + struct.pack(">HH", *density) + data[18:]


def _space(icc: bytes | None) -> bytes | None:
    """An ICC profile's colour space field (b"RGB ", b"GRAY", ...), None without one."""
    return icc[16:20] if icc and len(icc) >= 20 else None


def _fitting_profile(icc: bytes | None, *, grey: bool) -> bytes | None:
    """The ICC profile when its colour space is the written picture's; colour-managed viewers
    reject a grey profile on RGB pixels, an RGB one on grey pixels, and a CMYK (or Lab...) one on
    either (an RGB JPEG carrying a CMYK profile had been written so, without a word), and cannot
    read a damaged one (no profile header), which had been copied too."""
    if not icc:
        return icc
    if len(icc) < 128 or icc[36:40] != b"acsp":  # every ICC profile has its signature there
        log.warning("the ICC profile is damaged (no profile header); writing the picture without it", extra=PER_FILE)
        return None
    space = _space(icc)
    if space != (b"GRAY" if grey else b"RGB "):
        named = _SPACE_NAMES.get(space, space.decode("latin-1").strip() or "unknown")
        log.warning("the %s ICC profile does not fit the %s output; writing it without a profile",
                    named, "grey" if grey else "colour", extra=PER_FILE)
        return None
    return icc


#: ICC colour space fields, as the warnings name them
_SPACE_NAMES = {b"GRAY": "grey", b"RGB ": "RGB", b"CMYK": "CMYK", b"Lab ": "Lab"}


#: the palette index that GIF output keeps for transparent pixels
GIF_TRANSPARENT = 255

#: the output formats with a quality setting (lossy)
WITH_QUALITY = ("JPEG", "WEBP", "AVIF")


def quality_unused(formats: set[str], name: str = "quality") -> str | None:
    """The warning for a quality setting (``name``, as the caller spells it: "--quality" or
    "quality") given where no output format takes one (PNG, TIFF, BMP, GIF, TGA, APNG): it had
    changed nothing without a word. None where one of ``formats`` takes it."""
    if not formats or not formats.isdisjoint(WITH_QUALITY):
        return None
    return (f"{name} is for JPEG, WebP and AVIF output; {'/'.join(sorted(formats))} has no quality setting, "
            "so it changes nothing")


def say_soft_alpha_cut(alphas: list[np.ndarray], meta: ImageMeta | None) -> None:
    """Say in one line that a GIF output cuts the picture's soft alpha (8-bit planes ``alphas``,
    one per frame) at 128, where some of it is partly transparent (a feather, a drop shadow, a
    glow, anti-aliased edges): they had come out opaque or gone, without a word, where every other
    loss of the format is said. Not said for a GIF input, whose transparency was on or off already."""
    if meta is not None and meta.format == "GIF":
        return
    soft = sum(int(np.count_nonzero((alpha > 0) & (alpha < 255))) for alpha in alphas)
    if soft:
        share = soft / sum(alpha.size for alpha in alphas)
        log.warning("GIF transparency is on or off: the partly transparent pixels (%s of the picture) are made opaque "
                    "from alpha 128 and clear below (PNG, WebP and AVIF keep soft alpha)",
                    f"{share:.0%}" if share >= 0.01 else "under 1%", extra=PER_FILE)


def gif_frame(rgba: np.ndarray) -> Image.Image:
    """8-bit RGBA pixels as a GIF picture: its own 255 colours (median cut, dithered), and index
    :data:`GIF_TRANSPARENT` wherever alpha is below 128 (GIF transparency is on or off). Still GIFs
    and every frame of an animated GIF go through here, so both cut transparency the same way."""
    rgb = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB")
    image = rgb.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    palette = image.getpalette()[: 255 * 3]
    indices = np.array(image)
    clear = rgba[..., 3] < 128
    indices[clear] = GIF_TRANSPARENT
    out = Image.fromarray(indices, "P")
    out.putpalette(palette + [0, 0, 0] * (256 - len(palette) // 3))
    if clear.any():  # an opaque picture declares no transparent colour
        out.info["transparency"] = GIF_TRANSPARENT
    return out


def _has_sub_ifd(exif: bytes | None) -> bool:
    if not exif:
        return False
    data = Image.Exif()
    data.load(exif)
    return any(tag in data for tag in (0x8769, 0x8825))


#: the bytes one JPEG marker segment holds after its length; the XMP one starts with its namespace
_JPEG_SEGMENT = 65533
_XMP_NAMESPACE = b"http://ns.adobe.com/xap/1.0/\x00"


def _fits_jpeg(kind: str, block: bytes | None, overhead: int) -> bytes | None:
    """``block`` when it fits in one JPEG marker segment, else None with a warning: a 70 kB XMP
    packet (Photoshop's document history) had failed the whole conversion after the work."""
    if block and len(block) + overhead > _JPEG_SEGMENT:
        log.warning("the %s metadata (%d kB) is larger than a JPEG can hold (64 kB): not carried; "
                    "PNG, WebP or TIFF keep it", kind, len(block) // 1000)
        return None
    return block


#: format names as people write them
_SHOWN = {"WEBP": "WebP", "PPM": "PGM/PPM"}


def _say_lost(lost: list[str], fmt: str, meta: ImageMeta) -> None:
    if lost:
        keeper = "JPEG and TIFF keep" if meta.iptc and fmt not in ("JPEG", "TIFF") else "PNG keeps"
        log.warning("%s cannot hold %s; left out (%s %s)", _SHOWN.get(fmt, fmt), _listed(lost), keeper,
                    "it" if len(lost) == 1 else "them", extra=PER_FILE)


def aspect_not_held(meta: ImageMeta, fmt: str) -> str | None:
    """The pixel aspect ratio, said as lost, where ``fmt`` cannot hold it (its pixels would show
    stretched back to square); None where there is none or it is kept."""
    if not meta.aspect or fmt in ("PNG", "JPEG", "TIFF"):
        return None
    common = math.gcd(*meta.aspect)  # held as densities (x, y): a pixel is y wide to x high
    return f"the pixel aspect ratio ({meta.aspect[1] // common}:{meta.aspect[0] // common}, width to height)"


#: PNG's keyword for a comment, as a JPEG or GIF comment is written into a PNG
_COMMENT_KEY = "Comment"


def comment_for(meta: ImageMeta, fmt: str) -> bytes | None:
    """The comment a ``fmt`` file gets (JPEG, GIF; None for the others): the picture's own, or a
    PNG's Comment text (a JPEG's comment had not come back from the PNG it was written into). A
    JPEG's comment is one marker segment: a longer one is left out, and said lost, rather than
    failing the output."""
    if fmt not in ("JPEG", "GIF"):
        return None
    text = meta.text.get(_COMMENT_KEY)
    comment = meta.comment or (text.encode("utf-8") if isinstance(text, str) and text else None)
    return None if fmt == "JPEG" and comment and len(comment) > _JPEG_SEGMENT else comment


def _not_held(meta: ImageMeta, fmt: str) -> list[str]:
    """What of ``meta`` a ``fmt`` file (BMP, GIF, one of the 8-bit writers) cannot store."""
    aspect = aspect_not_held(meta, fmt)
    lost = [aspect] if aspect else []
    if meta.exif and fmt not in _EXIF:
        lost.append("the EXIF data")
    if meta.xmp and fmt not in _XMP:
        lost.append("the XMP data")
    # a PNG's XMP packet is one of its text chunks, written as XMP where the format holds XMP
    written = comment_for(meta, fmt)
    text = sorted(k for k in meta.text if not (k == png.XMP_KEY and meta.xmp and fmt in _XMP)
                  and not (k == _COMMENT_KEY and written and not meta.comment))
    if text and fmt != "PNG":
        lost.append(f"the PNG text ({', '.join(text[:3])}{', ...' if len(text) > 3 else ''})")
    if meta.comment and fmt != "PNG" and not written:
        lost.append("the comment")
    if meta.iptc and fmt not in ("JPEG", "TIFF"):
        lost.append("the IPTC data")
    gamma, primaries = (_own_gamma(meta), _own_primaries(meta)) if fmt != "PNG" else (False, False)
    if gamma and primaries:  # the chromaticities had been dropped without a word
        lost.append("the PNG's gamma and chromaticities (gAMA, cHRM), so its tones and colours show as sRGB's")
    elif gamma:
        lost.append("the PNG's gamma (gAMA), so its tones show as sRGB's")
    elif primaries:
        lost.append("the PNG's chromaticities (cHRM), so its colours show as sRGB's")
    return lost


def _own_gamma(meta: ImageMeta) -> bool:
    """Whether a PNG states a gamma of its own (not sRGB's 1/2.2, no profile or sRGB chunk
    beside it), which other formats cannot carry."""
    chunks = dict(meta.png_colour)
    if meta.icc_profile or b"sRGB" in chunks or b"gAMA" not in chunks:
        return False
    return abs(struct.unpack(">I", chunks[b"gAMA"])[0] - 45455) > 500


#: sRGB's white point and primaries as a cHRM chunk states them (x, y times 100000)
_SRGB_CHRM = (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)


def _own_primaries(meta: ImageMeta) -> bool:
    """Whether a PNG states chromaticities of its own (not sRGB's, no profile or sRGB chunk beside them)."""
    chunks = dict(meta.png_colour)
    if meta.icc_profile or b"sRGB" in chunks or b"cHRM" not in chunks or len(chunks[b"cHRM"]) != 32:
        return False
    return any(abs(a - b) > 500 for a, b in zip(struct.unpack(">8I", chunks[b"cHRM"]), _SRGB_CHRM))


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _to_srgb(array: np.ndarray, icc: bytes) -> tuple[np.ndarray, bool]:
    """8-bit RGB(A) pixels moved from ``icc``'s colour space to sRGB, and grey (with alpha) ones
    from a grey profile's tone curve to sRGB's, for a picture written without its profile (GIF,
    BMP; grey in WebP): viewers show such files as sRGB, so Adobe RGB or Display P3 pixels left as
    they were came out dull or shifted, and grey with a linear or dot-gain curve too dark or too
    light. Returns the pixels and whether they were converted."""
    from PIL import ImageCms

    channels = 1 if array.ndim == 2 else array.shape[2]
    grey = channels in (1, 2)
    if _space(icc) != (b"GRAY" if grey else b"RGB "):
        return array, False
    if grey:  # LittleCMS samples a grey-to-RGB transform of 8 bits on a coarse grid: a linear curve's shadows
        exact = _to_srgb_deep(array, icc)  # came out up to 7 levels too dark (1 as 6, where sRGB's is 13)
        if exact is not None:
            return _to_uint8(exact[0]), exact[1]
    pixels = array if array.ndim == 2 else array[:, :, 0] if grey else array[:, :, :3]
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        rgb = ImageCms.profileToProfile(Image.fromarray(np.ascontiguousarray(pixels)), source, target,
                                        renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        what = "grey tones" if grey else "colours"
        log.warning("the ICC profile cannot be used (%s); the %s are written unconverted", first_line(exc), what, extra=PER_FILE)
        return array, False
    out = np.asarray(rgb)
    if grey:  # a grey profile's neutral tones come out with R = G = B
        out = out[:, :, 1]
        return (out if channels == 1 and array.ndim == 2 else np.dstack([out, array[:, :, 1:]])), True
    return (np.dstack([out, array[:, :, 3:]]) if channels == 4 else out), True


def _to_srgb_deep(array: np.ndarray, icc_profile: bytes) -> tuple[np.ndarray, bool] | None:
    """16-bit or float pixels as 16-bit ones moved to sRGB (:func:`sr_filter.icc.to_srgb16`), as
    :func:`_to_srgb` moves 8-bit ones through LittleCMS: a 16-bit picture with a profile had come
    out of a Netpbm file (which holds no profile) with 8 bits. Returns the pixels and whether they
    were converted (not where the profile's colour space is not the pixels'); None for a profile
    that only LittleCMS converts (at 8 bits)."""
    channels = 1 if array.ndim == 2 else array.shape[2]
    grey = channels in (1, 2)
    out = _to_uint16(array)
    if _space(icc_profile) != (b"GRAY" if grey else b"RGB "):
        return out, False
    colour = out if out.ndim == 2 else out[..., 0] if grey else out[..., :3]
    converted = to_srgb16(colour, icc_profile)
    if converted is None:
        return None
    if out.ndim == 2:
        return converted, True
    out = out.copy()
    out[..., 0 if grey else slice(0, 3)] = converted
    return out, True


def _png_text(meta: ImageMeta) -> tuple[tuple[tuple[bytes, bytes], ...], dict[str, str]]:
    """The PNG text to write: the source file's chunks as stored (:attr:`ImageMeta.png_text_chunks`)
    while ``meta.text`` still says what they say (an API caller may have changed it: then the text
    as it is now), and the rest as (key, value): the XMP packet as carried (its orientation set
    upright), not as read, which made apps rotate the picture twice, and a comment."""
    others = {k: v for k, v in meta.text.items() if k != png.XMP_KEY}
    raw = meta.png_text_chunks if meta.png_text_chunks and png.chunks_text(meta.png_text_chunks) == others else ()
    if raw:  # those leave out the XMP packet only
        text = {png.XMP_KEY: meta.text[png.XMP_KEY]} if png.XMP_KEY in meta.text else {}
    else:
        text = dict(meta.text)
    if meta.comment and _COMMENT_KEY not in meta.text:  # a JPEG or GIF comment, as PNG's own keyword for one
        text[_COMMENT_KEY] = meta.comment.decode("utf-8", "replace")
    if meta.xmp:
        text[png.XMP_KEY] = meta.xmp.decode("utf-8", "replace")
    return raw, text


def flatten_on_white(array: np.ndarray) -> np.ndarray:
    """Grey+alpha or RGBA (uint8 or uint16) composited onto white, without the alpha channel: for
    outputs that hold no transparency (JPEG, BMP, a video codec without alpha)."""
    top = 255.0 if array.dtype == np.uint8 else 65535.0
    colour = array[:, :, :-1].astype(np.float32)
    alpha = array[:, :, -1:].astype(np.float32) / top
    out = colour * alpha + top * (1.0 - alpha)
    out = np.clip(np.rint(out), 0, top).astype(array.dtype)
    return out[:, :, 0] if out.shape[2] == 1 else out

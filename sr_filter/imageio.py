"""Reading and writing image files faithfully (encoders and format limits: :mod:`sr_filter.encode`).

Pixels travel as numpy arrays (see :mod:`sr_filter.convert` for the layouts); what else the
file held travels beside them in :class:`~sr_filter.metadata.ImageMeta` and is written back
(see docs/io.md for what is kept and what is converted). Reading checks the header size against
available memory before any pixel is decoded. Writes go to a temporary file in the destination
folder and are renamed into place, so an error or interrupt never leaves a partial file under
the final name.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import struct
import threading
import warnings
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, NamedTuple

import numpy as np
from PIL import Image, PngImagePlugin

from . import limits, png, pnm, salvage, sniff, tiffio
from .atomic import is_stream, write_atomic  # noqa: F401 - write_atomic moved to atomic.py; kept importable here
from .convert import PER_FILE, pil_to_array
from .device import available_ram
from .encode import check_encodable, encode_image
from .errors import ImageFormatError, InputTooLargeError, SrFilterError, first_line
from .metadata import IPTC_TAG, ImageMeta, merged_exif, orient, read_meta, upright_dpi, upright_xmp
from .sizing import fit_scale, scaled_length

__all__ = [
    "FORMATS", "IMAGE_SUFFIXES", "ImageMeta", "check_encodable", "encode_image", "format_for", "read_image", "write_atomic",
]

log = logging.getLogger(__name__)

#: the largest compressed PNG text chunk (iTXt, zTXt) inflated: Pillow's 1 MiB refused whole
#: pictures whose XMP carries a long edit history (1.7 MB, which stored uncompressed passed);
#: set once here, as Pillow reads it at each open
TEXT_CHUNK_LIMIT = 16 << 20
PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, TEXT_CHUNK_LIMIT)
PngImagePlugin.MAX_TEXT_MEMORY = max(PngImagePlugin.MAX_TEXT_MEMORY, 4 * TEXT_CHUNK_LIMIT)

FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
    ".avif": "AVIF",
    ".tga": "TGA",
    ".ppm": "PPM",
    ".pgm": "PGM",  # grey only: a colour picture is made grey (it had been a P6 named .pgm)
    ".pnm": "PPM",
    ".pam": "PAM",
}
#: other names of those formats, read and written (not --format values): an APNG, JPEG's older suffixes
ALIASES = {".apng": "PNG", ".jfif": "JPEG", ".jpe": "JPEG"}
#: read only: a camera's multi-picture JPEG (its first picture is upscaled, written as a plain JPEG),
#: a Netpbm bitmap (its upscale has grey tones: written as a PGM), a phone's HEIC (through the
#: optional pillow-heif; written as PNG, which keeps its 10 bits, alpha, profile and metadata, where
#: a HEIC would need the GPL x265 encoder and a reader with HEVC; see docs/io.md)
READ_ONLY = {".mpo": "JPEG", ".pbm": "PPM", ".heic": "HEIF", ".heif": "HEIF", ".hif": "HEIF"}
#: the suffix a format is written with where a read-only one names it
SUFFIX_OF = {"JPEG": ".jpg", "PPM": ".pgm", "HEIF": ".png"}
_HEIC_NAME = "a HEIC/HEIF picture (read through pillow-heif, not written: PNG keeps its depth, alpha and metadata)"
#: the read-only suffixes, as the refusal to write one names them
_READ_ONLY_NAMES = {".mpo": "an MPO (a camera's multi-picture JPEG)",
                    ".pbm": "a PBM (a Netpbm bitmap of black and white only, where an upscale has grey tones)",
                    ".heic": _HEIC_NAME, ".heif": _HEIC_NAME, ".hif": _HEIC_NAME}
#: said where the installed Pillow cannot read or write AVIF (a build without libavif; Pillow's
#: own wheels have it from 11.3, the oldest this program takes)
NO_AVIF = "this installation's Pillow has no AVIF support; upgrade it (pip install -U pillow)"
#: said where a HEIC/HEIF picture is given and the optional pillow-heif is not installed
NO_HEIF = 'reading one needs the optional pillow-heif: pip install "sr-filter[heic]"'
#: the suffixes of HEIC/HEIF pictures (a folder batch without pillow-heif says it passed them over)
HEIF_SUFFIXES = frozenset(suffix for suffix, fmt in READ_ONLY.items() if fmt == "HEIF")
#: the file suffixes this program reads, lower case with the dot (a folder batch takes these)
IMAGE_SUFFIXES = (*FORMATS, *ALIASES, *READ_ONLY)


# -- reading ---------------------------------------------------------------------------------
def read_image(
    source: str | Path | bytes | BinaryIO, *, scale: float | None = None, model_scale: int = 4, name: str | None = None,
    out_format: str | None = None, size: tuple[int | None, int | None] | None = None, use: str = "upscaled",
) -> tuple[np.ndarray, ImageMeta]:
    """Decode a file (path, bytes or binary stream) into upright pixels and metadata.

    The header is read first: an empty (0-pixel) image, or one whose decoding and upscaling by
    ``scale`` (default 1) would not fit in available memory, is refused before any pixel is
    decoded (``model_scale``, the network's own factor, refines that estimate), as is one whose
    output ``out_format`` (when given) cannot hold at that scale (``size`` = (width, height):
    the scale that fits the header's picture inside them instead); a stream is
    refused after its first bytes when it is no image (``use`` names what the picture is for in
    the notice about the frames of an animation left out). EXIF orientation is applied to the
    pixels. 16-bit and float data stay 16-bit / float (TIFF through tifffile, 16-bit PNG
    through :mod:`sr_filter.png`, as are grey PNGs of 1, 2 or 4 bits with a colour key, whose
    key Pillow loses). Each file is parsed once per reader.
    """
    name = name or (str(source) if isinstance(source, (str, Path)) else "standard input")

    def check(shape: sniff.Shape) -> None:
        factor = scale
        if size and any(size) and min(shape[:2]) > 0:  # the header's sides may be the picture's turned (EXIF 5-8):
            # the larger of the two readings, within the 16 the scale check allows after decoding
            factor = min(16.0, max(fit_scale(size[0], size[1], shape[0], shape[1]), fit_scale(size[0], size[1], shape[1], shape[0])))
        _check_size(name, shape, factor, model_scale, out_format)

    data = _read_bytes(source, name, check)
    with _warnings_as_one_line(name):
        array, meta, orientation = _read_data(data, name, check)
    if array.dtype != np.uint8 and not meta.mode.startswith(("I", "F")):
        meta.mode = str(array.dtype)  # Pillow's mode name would claim 8 bits
    if meta.frames > 1:
        log.warning("%s", _frames_notice(name, meta, use))
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageFormatError(f"{name} has no pixels ({array.shape[1]}x{array.shape[0]})")
    upright_dpi(meta, orientation)
    return orient(array, orientation), meta


def _frames_notice(name: str, meta: ImageMeta, use: str = "upscaled") -> str:
    """The one line that says an image's later frames or pages are left out (``use``: what is
    done with the first, "upscaled" or "measured"), and, when upscaling, where they are kept."""
    if meta.format == "TIFF":
        return f"{name} has {meta.frames} pages; only the first page is {use}"
    if meta.format == "HEIF":  # a burst, or an edit kept beside the original: the one a viewer shows
        return f"{name} holds {meta.frames} pictures; only its primary picture is {use}"
    if use != "upscaled":
        return f"{name} has {meta.frames} frames; only the first is {use}"
    return (f"{name} has {meta.frames} frames; only the first is upscaled here (an animation read from a file "
            "keeps every frame when written as GIF, WebP, PNG or AVIF, the formats that hold animation)")


def _read_data(data: bytes, name: str, check: Callable[[sniff.Shape], None]) -> tuple[np.ndarray, ImageMeta, int]:
    """Pixels, metadata and EXIF orientation of an encoded image."""
    if tiffio.is_tiff(data):
        return _read_tiff(data, name, check)
    if pnm.is_pnm(data):  # Pillow reads a 16-bit PPM at 8 bits, and no PAM
        header = pnm.pnm_header(data)
        if header is not None:
            check(header)
        array, mode, more = pnm.decode_pnm(data, name)
        if more:
            log.warning("%s holds more Netpbm pictures after the first; only the first is upscaled", name)
        return array, ImageMeta(format="PAM" if data[1:2] == b"7" else "PPM", mode=mode), 1
    data = salvage.repaired(data, name)  # a damaged metadata chunk had refused the whole picture
    header = sniff.header_shape(data)
    if header is not None:  # sized before Pillow's own, fixed decompression-bomb limit can pre-empt us
        check(header)
    image = _open(data, name, sized=header is not None)
    if header is None or image.size != header[:2]:  # a GIF's frame may reach past its logical screen
        check(_pillow_shape(image))
    png.check_complete(data, name)
    if png.is_deep_png(data):
        array = png.decode_png16(data, name)
    elif png.is_keyed_low_grey(data):  # Pillow loses the colour key of 1-, 2- and 4-bit grey
        array = png.decode_png(data, name)
    elif image.format == "HEIF" and (image.info.get("bit_depth") or 8) > 8:  # pillow-heif's Pillow image has 8 bits
        array = _decode_deep_heif(data, image.info["bit_depth"], name)
    else:
        array = _decode(image, name, data)
    if image.format in ("JPEG", "MPO"):
        _check_jpeg_complete(data, array, name)
    if image.format == "AVIF":
        say_avif_depth(data, name)
    if image.format == "HEIF":  # libheif turns the pixels by irot/imir, and pillow-heif sets EXIF's orientation to 1
        say_coded_colours(data, name, "pillow-heif")
    if image.format == "GIF" and not sniff.gif_ends_whole(data[-4096:]):  # an animation cut after its first frame too
        log.warning("%s ends without the GIF trailer: it may be cut short", name, extra=PER_FILE)
    meta, orientation = read_meta(image)  # after decoding: Pillow finds PNG text and eXIf after IDAT
    if image.format == "PNG":
        meta.png_text_chunks = png.text_chunks(data)
        if png.another_follows(data):  # the rest had gone without a word
            log.warning("%s holds more PNG images after the first (a PNG stream); only the first is upscaled "
                        "(--format png-stream upscales them all)", name)
    meta.lossless = image.format == "WEBP" and sniff.webp_lossless(io.BytesIO(data))
    return array, meta, orientation


@contextlib.contextmanager
def _warnings_as_one_line(name: str) -> Iterator[None]:
    """Python warnings raised while reading (Pillow's "Corrupt EXIF data", ...) become one log line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    caught = [w for w in caught if issubclass(w.category, (UserWarning, RuntimeWarning))
              and not issubclass(w.category, Image.DecompressionBombWarning)
              and f"tag {IPTC_TAG} had too many entries" not in str(w.message)]  # Pillow's idea of it; tiffio reads it whole
    if caught:
        log.warning("%s: %s", name, first_line(caught[0].message))


def _read_tiff(data: bytes, name: str, check: Callable[[sniff.Shape], None]) -> tuple[np.ndarray, ImageMeta, int]:
    """A TIFF: tifffile sizes and decodes it in one pass; Pillow decodes the layouts tifffile leaves."""
    # Pillow's open is lazy; tifffile sizes the picture against memory (check) before either decodes
    image = _open(data, name, tiff=True, sized=True)
    array, tags = tiffio.read_tiff(data, name, check)
    if tags is None:
        raise ImageFormatError(f"{name} is not a readable TIFF")
    decoded = array is not None
    if array is None:
        if image is None:
            raise ImageFormatError(f"{name} is a TIFF layout this program cannot decode")
        array = _decode(image, name)
    if image is None:  # only tifffile can open it (float colour, many samples): its tags
        return array, ImageMeta(format="TIFF", icc_profile=tags.icc_profile, dpi=tags.dpi, dpi_unit=tags.dpi_unit,
                                aspect=tags.aspect, exif=tags.exif, xmp=upright_xmp(tags.xmp), iptc=tags.iptc), tags.orientation
    meta, orientation = read_meta(image)
    if decoded:  # the profile as the pixels now are (a CMYK one becomes sRGB's once converted)
        meta.icc_profile = tags.icc_profile
    meta.dpi = tags.dpi  # Pillow says 1x1 DPI for a TIFF without resolution tags
    meta.dpi_unit, meta.aspect = tags.dpi_unit, tags.aspect
    meta.exif = merged_exif(meta.exif, tags.exif)  # a file tifffile wrote has two descriptions; Pillow 11 read its shape record
    meta.xmp = meta.xmp or upright_xmp(tags.xmp)
    meta.iptc = meta.iptc or tags.iptc
    return array, meta, orientation


def _check_size(name: str, shape: sniff.Shape, scale: float | None, model_scale: int, out_format: str | None) -> None:
    width, height, channels, itemsize = shape
    if width <= 0 or height <= 0:
        raise ImageFormatError(f"{name} has no pixels ({width}x{height})")
    if out_format is not None:
        check_encodable(out_format, scaled_length(width, scale or 1.0), scaled_length(height, scale or 1.0))
    limits.check_fits(name, width, height, channels, scale or 1.0, itemsize, model_scale=model_scale)


def _read_bytes(source: str | Path | bytes | BinaryIO, name: str, check: Callable[[sniff.Shape], None]) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        _refuse_missing(path)
        try:
            if path.is_file():
                data = path.read_bytes()
            else:  # a pipe (<(command) in a shell): read as standard input is, with its bounds
                with open(path, "rb") as stream:
                    data = sniff.read_stream(stream, name, check, available_ram())
        except OSError as exc:
            raise ImageFormatError(f"cannot read {path}: {exc.strerror}") from None
    else:
        data = sniff.read_stream(source, name, check, available_ram())
    if not data:
        raise ImageFormatError(f"{name} is empty (0 bytes)")
    return data


def _refuse_missing(path: Path) -> None:
    """An input path that names nothing, or a folder, in the words of every reader of pictures."""
    if not path.exists():
        raise ImageFormatError(f"{path} does not exist")
    if path.is_dir():
        raise ImageFormatError(f"{path} is a folder, not an image")


def check_source(path: str | Path) -> None:
    """Before the model is fetched: the input file exists, is no folder, can be opened, and its
    header is a picture this program reads (:func:`check_readable`), in the words the read uses
    (``sr_filter.upscale_file`` had loaded or downloaded the model before saying the input did not
    exist). A pipe or device is left to the read: a look would take bytes from it."""
    path = Path(path)
    _refuse_missing(path)
    if not path.is_file():
        return
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ImageFormatError(f"cannot read {path}: {exc.strerror}") from None
    check_readable(path)


def check_readable(path: str | Path) -> None:
    """Before the model is fetched: a file that is no picture this program reads is refused in the
    words :func:`read_image` would use (a damaged input had been found after a download and a
    conversion). Only the header is parsed; what it cannot tell is left to the read."""
    name = str(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return  # the read says why, as before
    if not head:
        raise ImageFormatError(f"{name} is empty (0 bytes)")
    if tiffio.is_tiff(head):  # tifffile reads some that Pillow cannot
        return
    _require_heif(head, name)
    try:
        with pil_open(path):
            pass
    except Image.UnidentifiedImageError:
        if sniff.image_format(head):  # a known kind Pillow refuses (a PNG 0 px wide): the read says what is wrong
            return
        video = sniff.video_named_as_image(head, name)
        if video:  # it had been "not a readable image (unknown or damaged format)"; not read whole
            raise ImageFormatError(video)
        _open(Path(path).read_bytes(), name)  # its own words: a 12-bit JPEG, or not a readable image
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, Image.DecompressionBombError):
        return  # damaged or enormous: the read says which, with the numbers


def say_avif_depth(data: bytes, name: str) -> None:
    """Say where an AVIF (``data``: its first bytes at least) is coded with more than 8 bits per
    sample: Pillow's libavif decodes it to 8, and the output has 8 (a 10-bit phone picture had
    lost its depth without a word); and where its colours are HDR or wider than sRGB's by its
    nclx box, which Pillow neither converts nor reports."""
    depth = sniff.avif_depth(data)
    if depth > 8:
        log.warning("%s is a %d-bit AVIF, read with 8 bits per channel (Pillow's AVIF decoder gives no more); to keep "
                    "the depth, convert it to a 16-bit PNG first (avifdec --depth 16)", name, depth, extra=PER_FILE)
    say_coded_colours(data, name, "Pillow's AVIF decoder")


def say_coded_colours(data: bytes, name: str, decoder: str) -> None:
    """Say where an AVIF's or a HEIF's colours are HDR or wider than sRGB's by its nclx box,
    which ``decoder`` neither converts nor reports."""
    primaries, transfer = sniff.avif_nclx(data) or (1, 13)
    wide = _AVIF_PRIMARIES.get(primaries, f"primaries {primaries}") if primaries not in (1, 2, 5, 6) else None
    hdr = _AVIF_HDR.get(transfer)
    if wide or hdr:  # the output is marked sRGB (BT.709 primaries, sRGB transfer): a BT.2020 PQ photo came out dull
        said = " with ".join(filter(None, [f"HDR ({hdr})" if hdr else None, f"{wide} colours" if wide else None]))
        log.warning("%s is coded as %s, which %s does not convert and no ICC profile describes: "
                    "the output is written as sRGB, and its colours will look different", name, said, decoder, extra=PER_FILE)


#: an AVIF's colour primaries and HDR transfers (its nclx box's code points) as people name them
_AVIF_PRIMARIES = {4: "BT.470M", 7: "SMPTE 240M", 8: "generic film", 9: "BT.2020", 10: "XYZ", 11: "DCI-P3",
                   12: "Display P3", 22: "EBU 3213"}
_AVIF_HDR = {16: "PQ", 18: "HLG"}


def _decode_deep_heif(data: bytes, depth: int, name: str) -> np.ndarray:
    """The primary picture of a 10- or 12-bit HEIF at 16 bits per channel (pillow-heif's Pillow
    plugin brings it to 8), turned by its irot/imir boxes as the plugin turns it."""
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False, hdr_to_16bit=False)
        raw = np.asarray(heif[heif.primary_index])
    except (OSError, ValueError, SyntaxError, RuntimeError, EOFError) as exc:
        raise ImageFormatError(f"{name} cannot be decoded ({first_line(exc)})") from None
    except MemoryError:
        raise InputTooLargeError(f"{name} does not fit in memory when decoded") from None
    top = (1 << depth) - 1  # 1023 -> 65535: white stays white (a shift by 6 gives 65472)
    return ((raw.astype(np.uint32) * 65535 + top // 2) // top).astype(np.uint16)


def heif_support() -> bool:
    """Whether HEIC/HEIF pictures can be read: pillow-heif (an optional extra) is installed; its
    Pillow plugin is registered on the first call, not at import (no cost for other formats)."""
    global _HEIF
    if _HEIF is None:
        try:
            import pillow_heif
        except ImportError:
            _HEIF = False
        else:
            pillow_heif.register_heif_opener()
            _HEIF = True
    return _HEIF


_HEIF: bool | None = None


def _require_heif(data: bytes, name: str) -> None:
    """For a HEIC/HEIF picture (``data``: its first bytes), pillow-heif registered, else the one line that says
    how to install it."""
    if sniff.image_format(data) == "HEIF" and not heif_support():
        raise ImageFormatError(f"{name} is a HEIC/HEIF picture, and {NO_HEIF}")


def pil_open(source: str | Path | BinaryIO) -> Image.Image:
    """Pillow's lazy open (header only), without its DecompressionBombWarning: the memory check
    (:mod:`.limits`) says what is too large to upscale in words of its own, and Pillow's warning
    had been printed raw, with a source line, before it (``-q`` too)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source)


#: held while Pillow's decompression-bomb limit is lifted for one open (see :func:`_open`)
_LIFTED = threading.Lock()


def _open(data: bytes, name: str, *, tiff: bool = False, sized: bool = False) -> Image.Image | None:
    """Pillow's lazy open (header only); for a TIFF, None when only tifffile understands it.

    ``sized``: the memory check has passed the size in the header already. Pillow's own limit
    (179 megapixels) is then lifted for this open: it had refused genuine pictures that fit, after
    the memory check had advised a smaller scale for them (which could not help)."""
    _require_heif(data, name)
    try:
        return pil_open(io.BytesIO(_pillow_tga(_pillow_bmp(data))))
    except Image.DecompressionBombError as exc:
        if sized:
            with _LIFTED:
                limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    return _open(data, name, tiff=tiff)
                finally:
                    Image.MAX_IMAGE_PIXELS = limit
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = f"{int(pixels.group(1)) / 1e6:,.0f} megapixels" if pixels else "an enormous size"
        raise InputTooLargeError(
            f"{name} claims {claimed}, more than the {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:,.0f}-megapixel "
            "safety limit (a decompression bomb or a damaged header); refusing to decode it"
        ) from None
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        if tiff:
            return None
        kind = sniff.jpeg_unreadable_kind(data)
        if kind:  # Pillow's decoder reads 8-bit baseline and progressive JPEG only
            raise ImageFormatError(f"{name} is {kind}, which this program cannot read; "
                                   "convert it to a 16-bit PNG or TIFF") from None
        if isinstance(exc, Image.UnidentifiedImageError) and sniff.image_format(data) == "AVIF" and not _has_avif():
            raise ImageFormatError(f"{name} is an AVIF picture: {NO_AVIF}") from None
        if isinstance(exc, Image.UnidentifiedImageError) and sniff.image_format(data) == "HEIF":
            raise ImageFormatError(f"{name} is a HEIC/HEIF picture that pillow-heif cannot open (damaged or cut short)") from None
        if isinstance(exc, Image.UnidentifiedImageError):
            said = sniff.video_named_as_image(data, name) or f"{name} is not a readable image (unknown or damaged format)"
            raise ImageFormatError(said) from None
        text = first_line(exc)
        if "truncat" in text.lower() or isinstance(exc, (EOFError, struct.error)):
            raise ImageFormatError(f"{name} is truncated or damaged ({text})") from None
        if "MAX_TEXT" in text:  # Pillow's words name its own setting
            raise _text_bomb(name) from None
        raise ImageFormatError(f"{name} is not a readable image ({text})") from None


def _text_bomb(name: str) -> InputTooLargeError:
    return InputTooLargeError(f"{name} holds compressed text (metadata) that inflates past "
                              f"{TEXT_CHUNK_LIMIT >> 20} MiB: a decompression bomb or a damaged file")


def _pillow_shape(image: Image.Image) -> sniff.Shape:
    """(width, height, channels, bytes per sample) from Pillow's header parse, without decoding pixels."""
    width, height = image.size
    bands = len(image.getbands()) if image.mode not in ("P", "PA") else 4
    itemsize = 2 if image.mode.startswith("I;16") else (4 if image.mode in ("I", "F") else 1)
    return width, height, min(bands, 4), itemsize


def _decode(image: Image.Image, name: str, data: bytes = b"") -> np.ndarray:
    """Pixels of a Pillow image (the first frame), with Pillow's errors made one clear line
    (``data``: the file, for what Pillow reads wrong from it)."""
    try:
        image.seek(image.tell() if image.format == "HEIF" else 0)  # a HEIF opens at its primary picture
        image.load()
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError,
            RuntimeError) as exc:  # RuntimeError: Pillow's AVIF decoder, for AV1 data it cannot decode
        text = first_line(exc)
        if "MAX_TEXT" in text:  # a compressed text chunk after the pixels
            raise _text_bomb(name) from None
        if "truncat" in text.lower() or "broken" in text or isinstance(exc, EOFError):
            raise ImageFormatError(f"{name} is truncated or damaged ({text})") from None
        raise ImageFormatError(f"{name} cannot be decoded ({text})") from None
    except MemoryError:
        raise InputTooLargeError(f"{name} does not fit in memory when decoded") from None
    try:
        array = _pixels(image)
    except (OSError, ValueError, IndexError) as exc:  # a PNG with more alpha entries than colours: Pillow's traceback
        raise ImageFormatError(f"{name} cannot be decoded ({first_line(exc)})") from None
    if image.format == "TGA":
        array = _tga16_alpha(data, array)
    if image.format == "BMP":
        array = _bmp_bit_fields(data, array, name)
    if image.format in ("BMP", "TGA") and array.ndim == 3 and array.shape[2] == 4 and not array[..., 3].any():
        # many writers fill a 32-bit BMP's or TGA's fourth byte with 0 and leave it unused (the TGA's
        # header then says it has no alpha bits); browsers and Windows show such a BMP opaque, and so
        # it is read here (it had come out white or wholly transparent: the picture lost)
        log.warning("%s: its alpha channel is 0 everywhere, as %s writers that leave it unused write it; "
                    "the picture is read as opaque", name, image.format, extra=PER_FILE)
        array = np.ascontiguousarray(array[..., :3])
    return array


def _tga16_alpha(data: bytes, array: np.ndarray) -> np.ndarray:
    """A 16-bit true-colour TGA's pixels, or those of a colour-mapped one whose map has 16-bit
    entries, with its alpha as the format has it: the top bit of each pixel (map entry) is alpha
    (1 opaque) only where the header declares an attribute bit and no TGA 2.0
    extension area says the attributes are no alpha (type 0 to 2); else the picture is opaque, as
    GIMP and ImageMagick read it. Pillow reads that bit inverted, 1 as transparent: a picture with
    a cut-out came out with its shape shown and its background hidden."""
    if len(data) < 18 or array.ndim != 3 or array.shape[2] != 4:
        return array
    depth = data[16] if data[2] & 7 == 2 else data[7] if data[2] & 7 == 1 and data[1] == 1 else 0
    if depth == 15:  # no attribute bit: read by Pillow as 16-bit (see _pillow_tga), its top bit unused
        return np.ascontiguousarray(array[..., :3])
    if depth != 16:
        return array
    footer = data[-26:]
    extension = int.from_bytes(footer[:4], "little") if footer.endswith(b"TRUEVISION-XFILE.\x00") else 0
    attributes = data[extension + 494] if extension and len(data) > extension + 494 else 3
    if data[17] & 0x0F == 0 or attributes < 3:
        return np.ascontiguousarray(array[..., :3])
    return np.dstack([array[..., :3], 255 - array[..., 3]])


def _pillow_tga(data: bytes) -> bytes:
    """A TGA of 15-bit colour, or of a colour map of 15-bit entries, which Pillow refuses ("not a
    TGA file": the picture had been "not a readable image (unknown or damaged format)"), as one of
    16 bits, which it reads: the same two bytes a pixel, whose top bit :func:`_tga16_alpha` leaves out."""
    if sniff.image_format(data) is not None or not sniff._tga_like(data):
        return data
    if data[2] & 7 == 2 and data[16] == 15:
        return data[:16] + bytes([16, data[17] & 0xF0]) + data[18:]
    if data[2] & 7 == 1 and data[7] == 15:
        return data[:7] + bytes([16]) + data[8:]
    return data


#: the bit fields Pillow decodes, by bits per pixel: 16-bit (red, green, blue) R5 G6 B5 and X1 R5 G5 B5,
#: 32-bit (red, green, blue, alpha) 8-bit fields in some orders; it refuses the others ("Unsupported
#: BMP bitfields layout"): A4 R4 G4 B4, X4 R4 G4 B4, X8 B8 G8 R8, A2 R10 G10 B10, as DirectX tools write them
_PILLOW_BMP = {16: ((0xF800, 0x7E0, 0x1F), (0x7C00, 0x3E0, 0x1F)),
               32: ((0xFF0000, 0xFF00, 0xFF, 0), (0xFF000000, 0xFF0000, 0xFF00, 0), (0xFF000000, 0xFF00, 0xFF, 0),
                    (0xFF000000, 0xFF0000, 0xFF00, 0xFF), (0xFF, 0xFF00, 0xFF0000, 0xFF000000),
                    (0xFF0000, 0xFF00, 0xFF, 0xFF000000), (0xFF000000, 0xFF00, 0xFF, 0xFF0000), (0, 0, 0, 0))}


class _BmpFields(NamedTuple):
    """A 16- or 32-bit BMP with bit fields: its size (height negative: top-down), pixel data
    offset, (red, green, blue, alpha) masks, an alpha mask that overlaps the colour being none,
    and whether Pillow decodes its layout."""

    bits: int
    width: int
    height: int
    offset: int
    masks: tuple[int, int, int, int]
    pillow: bool


def _bmp_fields(data: bytes) -> _BmpFields | None:
    """The bit fields of a 16- or 32-bit BMP that has them (compression 3, or 6: with alpha); None for any other file."""
    if len(data) < 66 or data[:2] != b"BM":
        return None
    size, width, height, _, bits, compression = struct.unpack_from("<IiiHHI", data, 14)
    if bits not in (16, 32) or compression not in (3, 6) or size < 40:
        return None
    colour = struct.unpack_from("<3I", data, 54)
    fourth = struct.unpack_from("<I", data, 66)[0] if len(data) >= 70 else 0  # the alpha mask's place
    raw = fourth if size >= 56 else 0  # as Pillow reads it
    mask = fourth if size >= 56 or compression == 6 else 0
    mask = 0 if mask & (colour[0] | colour[1] | colour[2]) else mask
    held = (*colour, raw) if bits == 32 else colour
    return _BmpFields(bits, width, height, struct.unpack_from("<I", data, 10)[0], (*colour, mask),
                      compression == 3 and held in _PILLOW_BMP[bits])


def _pillow_bmp(data: bytes) -> bytes:
    """A BMP whose bit fields Pillow refuses, with fields it takes (X1 R5 G5 B5, B8 G8 R8 X8), for
    its header (size, density) only: :func:`_bmp_bit_fields` decodes the pixels from the file's own."""
    fields = _bmp_fields(data)
    if fields is None or fields.pillow:
        return data
    size = struct.unpack_from("<I", data, 14)[0]
    masks = struct.pack("<3I", *_PILLOW_BMP[fields.bits][0][:3]) + (bytes(4) if size >= 56 else data[66:70])
    return data[:30] + struct.pack("<I", 3) + data[34:54] + masks + data[70:]


def _bmp_bit_fields(data: bytes, array: np.ndarray, name: str) -> np.ndarray:
    """A BMP's pixels as its bit fields declare them: those of layouts Pillow refuses (A4 R4 G4 B4,
    X8 B8 G8 R8, A2 R10 G10 B10: the file had been refused, "Unsupported BMP bitfields layout"; fields
    of more than 8 bits give 16-bit pixels), and the alpha of a 16-bit one (A1 R5 G5 B5, as GIMP writes
    a 16-bit BMP with transparency), which Pillow drops: the cut-out had come out opaque without a word."""
    fields = _bmp_fields(data)
    if fields is None or (fields.pillow and (fields.bits == 32 or not fields.masks[3])):
        return array
    rows, stride = abs(fields.height), (fields.width * fields.bits // 8 + 3) // 4 * 4
    if fields.width <= 0 or fields.offset + stride * rows > len(data) or array.shape[:2] != (rows, fields.width):
        if fields.pillow:
            return array
        raise ImageFormatError(f"{name} is truncated or damaged (its pixel data ends before the picture does)")
    kind = "<u2" if fields.bits == 16 else "<u4"
    words = np.frombuffer(data, kind, stride * 8 // fields.bits * rows, fields.offset).reshape(rows, -1)[:, :fields.width]
    if fields.height > 0:  # bottom-up, as most are
        words = words[::-1]
    deep = max(bin(mask).count("1") for mask in fields.masks) > 8
    top_value = 65535 if deep else 255

    def field(mask: int) -> np.ndarray:  # a field's values scaled to 0..255, or 0..65535 (none: 0)
        if not mask:
            return np.zeros(words.shape, np.uint16 if deep else np.uint8)
        shift = (mask & -mask).bit_length() - 1
        top = mask >> shift
        values = ((words & mask) >> shift).astype(np.uint64)
        return ((values * top_value + top // 2) // top).astype(np.uint16 if deep else np.uint8)

    colour = array if fields.pillow else np.dstack([field(mask) for mask in fields.masks[:3]])
    return np.dstack([colour, field(fields.masks[3])]) if fields.masks[3] else colour


def _check_jpeg_complete(data: bytes, array: np.ndarray, name: str) -> None:
    """A JPEG whose picture data ends early but which still ends in an end marker (a file cut
    short and "repaired", a recovery tool's output) decodes without an error: libjpeg fills the
    rest with one flat colour, mid-grey, and the program upscaled that. Its last rows are then
    perfectly flat; only for those is the file decoded again, by FFmpeg told to stop at damage,
    whose verdict decides (a picture with a flat bottom edge of its own passes). The check looks at
    the last 8 pixels of the last row: data cut inside the last row of blocks leaves only its right
    part flat (a file cut at 99% had passed, 452 grey pixels and all)."""
    corner = array[-1, -8:]
    if array.shape[0] < 16 or not bool((corner == corner[:1]).all()):  # the picture's last pixels one colour
        return
    frame = sniff.jpeg_frame_marker(data)
    if frame not in (0xC0, 0xC1, 0xC2):  # FFmpeg calls arithmetic coding damaged: it gives no verdict there
        return
    try:
        import av
    except ImportError:  # PyAV missing: the picture goes on as decoded
        return
    try:
        with av.open(io.BytesIO(data), format="jpeg_pipe") as container:
            stream = container.streams.video[0]
            stream.codec_context.options = {"err_detect": "explode"}
            for _ in container.decode(stream):
                pass
    except av.error.InvalidDataError:
        raise ImageFormatError(f"{name} is truncated or damaged (its picture data ends before the picture does; "
                               "the rest would decode as a flat grey area)") from None
    except av.error.FFmpegError:  # a kind of JPEG FFmpeg does not take (arithmetic coding): no verdict
        return


def _pixels(image: Image.Image) -> np.ndarray:
    """Pillow pixels as an array; CMYK through the ICC profile the image carries."""
    meta = ImageMeta(icc_profile=image.info.get("icc_profile") or None)
    array, _ = pil_to_array(image, meta)
    if image.mode == "CMYK":
        image.info["icc_profile"] = meta.icc_profile  # now sRGB (or none), as the pixels are
        if meta.icc_profile is None:
            image.info.pop("icc_profile", None)
    return array


# -- writing ---------------------------------------------------------------------------------
def suffix_conflict(path: str | Path, fmt: str) -> str | None:
    """A warning when ``path``'s extension names another image format than ``fmt`` (JPEG bytes in
    a file called .png confuse every program that trusts the name); None when they agree."""
    suffix = Path(path).suffix.lower()
    named = suffix_format(suffix) or (f"a video ({suffix})" if suffix in sniff.VIDEO_NAMES else None)
    if named is None or named == fmt:  # (.jfif and .mpo, and video names, had been taken for no format at all)
        return None
    return f"{Path(path).name} is written as {fmt}, as the format given says, though its extension says {named}"


def suffix_format(suffix: str) -> str | None:
    """The picture format a file suffix names (.jfif, .mpo: JPEG), or None."""
    return {**FORMATS, **ALIASES, **READ_ONLY}.get(suffix.lower())


def target_format(target: str | Path, explicit: str | None = None) -> str | None:
    """The format an output is written in: ``explicit``'s, else its name's; None (the input's
    own) for a stream with no picture's name (/dev/stdout, /dev/fd/3, /dev/null, a FIFO), whose
    name had been taken for a format ("cannot tell the output format from 'stdout'")."""
    if explicit is None and is_stream(target) and Path(target).suffix.lower() not in FORMATS:
        return None
    return format_for(target, explicit)


def check_format(value: object, name: str = "format") -> str | None:
    """A format argument (``name`` as the caller calls it): a str naming a known format, or None;
    returned as the Pillow format name. ``format=5`` had been Python's AttributeError from inside."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip(". "):
        raise SrFilterError(f"{name} must be a format name such as 'png' (or None), not {value!r}")
    return format_for("", value)


def format_for(path: str | Path, explicit: str | None = None, *, folder: bool = False) -> str:
    """The output format: ``explicit`` first, else from the file extension. ``folder``: a name
    with a slash would be a folder (the command line's -o), and the error for a name without an
    extension says so (upscale_file writes one file: it had been told to give "o3/")."""
    if explicit is not None and not isinstance(explicit, str):
        check_format(explicit)  # says what it takes
    if explicit:
        key = explicit.strip().lower().lstrip(".")  # " png" as a device's " cpu" is taken
        fmt = FORMATS.get("." + key)
        if fmt is None:
            why = (" for output: HEIC/HEIF pictures are read, not written (PNG keeps their depth, alpha and metadata; AVIF "
                   "and JPEG are smaller)") if "." + key in HEIF_SUFFIXES else ""
            raise ImageFormatError(f"unknown format {explicit!r}{why}; use one of {', '.join(sorted({k[1:] for k in FORMATS}))}")
        return _writable(fmt)
    suffix = Path(path).suffix.lower()
    if suffix in ALIASES:
        return ALIASES[suffix]
    if suffix in sniff.VIDEO_CONTAINERS:  # an image input named for a video output
        raise ImageFormatError(f"{Path(path).name} names a video, but the input is read as an image (by its name); "
                               "a video input needs a video suffix (.mp4, .mkv, ...), an image output an image one")
    if suffix == ".y4m":
        raise ImageFormatError(f"{Path(path).name} names a YUV4MPEG2 frame stream, but the input is an image; "
                               "a frame stream comes from a .y4m input or standard input with --format y4m")
    if suffix in READ_ONLY:  # (it had been "cannot tell the output format")
        raise ImageFormatError(f"{Path(path).name} names {_READ_ONLY_NAMES[suffix]}, which is read but not "
                               f"written; name the output {SUFFIX_OF[READ_ONLY[suffix]]}")
    name = Path(path).name
    if not suffix and name.lower() in FORMATS:  # ".png" alone: a hidden file's name, no suffix (the advice had been ".png")
        raise ImageFormatError(f"{name} is only a suffix; name the file to write, e.g. {Path(path).with_name('out' + name)}")
    if suffix not in FORMATS:
        slash = f" (or {Path(path).name}/ for a folder)" if folder and not suffix and Path(path).name else ""
        raise ImageFormatError(
            f"cannot tell the output format from {Path(path).name!r}; use an extension such as .png{slash} or name the format"
        )
    return _writable(FORMATS[suffix])


def _writable(fmt: str) -> str:
    """``fmt``, refused where this Pillow cannot write it (before the work, not after)."""
    if fmt == "AVIF" and not _has_avif():
        raise ImageFormatError(f"cannot write AVIF: {NO_AVIF}")
    return fmt


def _has_avif() -> bool:
    from PIL import features

    return bool(features.check("avif"))

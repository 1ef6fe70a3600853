"""PNG through imagecodecs (libpng): 8 and 16 bits written straight from the array; 16 bits, and
grey of 1, 2 or 4 bits with a colour key, read.

Pillow reads 16-bit colour PNGs at 8 bits, drops a 16-bit colour key and cannot write 16-bit
colour at all; it scales a 2- or 4-bit grey PNG's samples to 0..255 but keeps its colour key
unscaled, so the key matches no pixel. libpng does all of it: every filter type, Adam7, and a
grey or RGB colour key (tRNS) expanded into a real alpha channel. The metadata chunks libpng is not given are inserted
after IHDR by :func:`encode_png`. Nothing here depends on Pillow's internals.

Compression settings are chosen per image (:func:`compression`): upscaled photographs and
painted art compress as well or better, 4-9x faster, as Paeth-filtered rows with run-length
deflate than with libpng's default (level 6, adaptive filters, full LZ77 search), which took 40%
of a whole `sr-filter` run on a 1280x720 frame; flat colour fills, screentones and screenshots
need the full search (run-length deflate makes them up to 70% larger). A sample of row strips
decides. Table in docs/performance.md ("Writing PNG").
"""

from __future__ import annotations

import contextlib
import logging
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import imagecodecs
import numpy as np

from .convert import PER_FILE
from .errors import ImageFormatError, first_line
from .liblogs import held_records

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: libpng's defaults: adaptive row filters, zlib level 6 (full LZ77 search)
THOROUGH = {"level": 6}
#: every row Paeth-filtered, run-length deflate (as fast as OpenCV's default, about as small as THOROUGH on photos)
FAST = {"level": 1, "strategy": 3, "filter": 128}
#: below this many pixels THOROUGH is quick anyway (about 0.1 s)
_SAMPLE_FROM = 1 << 20
#: FAST is taken when its sample is at most this much larger than THOROUGH's
_FAST_SLACK = 1.03
_IHDR_END = 8 + 8 + 13 + 4  # signature, length + type, body, CRC


def is_deep_png(data: bytes) -> bool:
    """Whether the bytes are a PNG with 16 bits per sample (grey, grey + alpha, RGB or RGBA)."""
    return data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 26 and data[24] == 16


def is_keyed_low_grey(data: bytes) -> bool:
    """Whether the bytes are a grey PNG of 1, 2 or 4 bits with a colour key (tRNS) before its
    image data: line art as PNG optimisers (oxipng, optipng) write it. Pillow loses that key (a
    1-bit picture is read as plain L, a 2- or 4-bit one keys on the unscaled value), libpng keeps it."""
    if not (data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 26):
        return False
    if data[25] != 0 or data[24] not in (1, 2, 4):
        return False
    for kind, _, _ in _chunks(data):
        if kind in (b"IDAT", b"IEND"):
            return False
        if kind == b"tRNS":
            return True
    return False


#: colour type -> samples per pixel
_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7 passes: (first column, first row, column step, row step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, where its body starts, its length) of each chunk of a PNG file whose header is there,
    up to and with IEND; the body may run past the data's end (a file cut short)."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, pos + 8, length
        if kind == b"IEND":
            return
        pos += 12 + length


#: the chunks whose CRC is checked: the pictures' data and an APNG frame's place and timing, which
#: Pillow reads unchecked (a damaged frame had been "APNG contains frame sequence errors", or a
#: wrong picture without a word); damaged metadata chunks are left out instead (salvage.py)
_CHECKED = (b"IDAT", b"fdAT", b"fcTL")


def check_complete(data: bytes, name: str = "image") -> None:
    """ImageFormatError if a PNG's image data (its IDAT chunks) inflates to fewer bytes than its
    rows need, or the CRC of an IDAT chunk (or an APNG frame's fdAT or fcTL) is wrong. Such a file can still end properly (IEND), and
    Pillow then fills the missing rows with black without a word; libpng calls it "Not enough
    image data". Pillow does not check IDAT's CRC at all: a damaged picture had been upscaled at
    8 bits and refused at 16 (libpng's "IDAT: CRC error"), which is the answer for both now."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33:
        return
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    bits = _SAMPLES.get(colour, 0) * depth
    if not (width and height and bits):
        return
    boxes = [(width, height)] if not interlace else [
        (-(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in _ADAM7]
    need = sum(h * (1 + -(-w * bits // 8)) for w, h in boxes if w > 0 and h > 0)
    inflate, have = zlib.decompressobj(), 0
    for kind, body, length in _chunks(data):
        if kind == b"IEND":
            break
        if kind in _CHECKED and body + length + 4 <= len(data):
            if zlib.crc32(memoryview(data)[body - 4:body + length]) != struct.unpack(">I", data[body + length:body + length + 4])[0]:
                raise ImageFormatError(f"{name} is truncated or damaged ({kind.decode()}: CRC error)")
        if kind == b"IDAT" and have < need:
            chunk = memoryview(data)[body:body + length]
            try:
                for start in range(0, len(chunk), 1 << 16):  # 64 KiB in at a time: no copies of a long rest
                    block = chunk[start:start + (1 << 16)]
                    while block and have < need:  # and at most 1 MiB out: memory stays small
                        have += len(inflate.decompress(block, 1 << 20))
                        block = inflate.unconsumed_tail
                    if have >= need:
                        break
            except zlib.error as exc:
                raise ImageFormatError(f"{name} is truncated or damaged (image data: {exc})") from None
    if have < need:
        raise ImageFormatError(f"{name} is truncated or damaged: its image data ends early "
                               f"({have:,} of {need:,} bytes, the rest of the picture would be blank)")


class _InterlaceChatter(logging.Filter):
    """imagecodecs decodes Adam7 PNGs exactly but logs libpng's "Interlace handling should be turned
    on when using png_read_image" for each, which the command printed as a warning about the user's file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Interlace handling should be turned on" not in record.getMessage()


logging.getLogger("imagecodecs").addFilter(_InterlaceChatter())


@contextlib.contextmanager
def _named_warnings(name: str) -> Iterator[None]:
    """libpng's warnings while decoding ``name`` ("PNG warning: eXIf: invalid"), said as one line of
    that file's: they had come without the file's name, once in a whole batch."""
    records: list[logging.LogRecord] = []
    try:
        with held_records("imagecodecs", _InterlaceChatter()) as records:
            yield
    finally:
        if records:
            log.warning("%s: %s", name, "; ".join(dict.fromkeys(first_line(r.getMessage()) for r in records)),
                        extra=PER_FILE)


def decode_png(data: bytes, name: str = "image") -> np.ndarray:
    """Decode a PNG (first frame) with libpng into HxW or HxWxC uint8 or uint16 as libpng gives it:
    samples below 8 bits scaled to 0..255, a colour key (tRNS) made an alpha channel (grey ->
    grey + alpha, RGB -> RGBA)."""
    try:
        with _named_warnings(name):
            array = imagecodecs.apng_decode(data, index=0)
    except Exception as exc:  # noqa: BLE001 - the codec raises its own error kinds for damaged data
        raise ImageFormatError(f"{name} is truncated or damaged ({first_line(exc)})") from None
    return np.ascontiguousarray(array)


def decode_png16(data: bytes, name: str = "image") -> np.ndarray:
    """Decode a 16-bit PNG (first frame) into HxW or HxWxC uint16 (C = 2, 3 or 4).

    A colour key (tRNS) becomes an alpha channel: grey -> grey + alpha, RGB -> RGBA.
    """
    array = decode_png(data, name)
    if array.dtype != np.uint16:
        array = array.astype(np.uint16) * 257
    return np.ascontiguousarray(array)


def encode_png(
    array: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    aspect: tuple[int, int] | None = None,
    exif: bytes | None = None,
    text: dict[str, str] | None = None,
    colour: tuple[tuple[bytes, bytes], ...] = (),
    raw_text: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """Encode an HxW or HxWxC uint8 or uint16 array (C = 1..4) as a PNG of that depth with the given
    metadata; ``aspect``: a pixel aspect ratio with no density (pHYs with no unit), where ``dpi`` is None;
    ``colour``: gAMA, cHRM and sRGB chunks as (type, body) (sRGB left out beside a profile);
    ``raw_text``: text chunks as (type, body), written as they are, before those of ``text``."""
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG holds 8 or 16 bits per sample, not {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    array = np.ascontiguousarray(array)
    encoded = imagecodecs.png_encode(array, **compression(array))
    return _after_header(encoded, _meta_chunks(icc_profile=icc_profile, dpi=dpi, aspect=aspect, exif=exif, text=text,
                                               colour=colour, raw_text=raw_text))


def encode_apng(frames: list[np.ndarray], durations: list[int], plays: int, **meta: Any) -> bytes:
    """An APNG of complete frames (HxWxC uint8 or uint16, all of one shape), each replacing the
    canvas (APNG_BLEND_OP_SOURCE, APNG_DISPOSE_OP_NONE) for its duration in milliseconds, played
    ``plays`` times (0: forever), with the metadata :func:`encode_png` takes as keywords. libpng
    writes it: Pillow cannot write 16 bits, so a 16-bit animation had come out with 8."""
    stack = np.ascontiguousarray(np.stack(frames))
    encoded = bytearray(imagecodecs.apng_encode(stack, delay=int(durations[0]) if durations else 100))
    done = 0
    for kind, start, length in list(_chunks(bytes(encoded))):
        body = encoded[start:start + length]
        if kind == b"acTL":
            body[4:8] = struct.pack(">I", max(0, min(int(plays), 0x7FFFFFFF)))
        elif kind == b"fcTL":
            body[20:24] = struct.pack(">HH", *_delay(durations[done]))
            body[24:26] = b"\x00\x00"  # dispose: none; blend: source
            done += 1
        else:
            continue
        encoded[start:start + length] = body
        encoded[start + length:start + length + 4] = struct.pack(">I", zlib.crc32(kind + bytes(body)) & 0xFFFFFFFF)
    if done != len(frames) and not (done == 0 and len(frames) == 1):  # (one frame is written as a still PNG)
        raise ValueError(f"libpng wrote {done} frame headers for {len(frames)} frames")
    return _after_header(bytes(encoded), _meta_chunks(**meta))


def _after_header(encoded: bytes, chunks: list[bytes]) -> bytes:
    """A PNG libpng wrote, with ``chunks`` inserted right after its header (IHDR)."""
    if not chunks:
        return encoded
    return b"".join([memoryview(encoded)[:_IHDR_END], *chunks, memoryview(encoded)[_IHDR_END:]])


def _delay(milliseconds: int) -> tuple[int, int]:
    """APNG's delay fraction (numerator, denominator) for a duration in milliseconds."""
    ms = max(0, int(milliseconds))
    if ms <= 0xFFFF:
        return ms, 1000
    return min(round(ms / 10), 0xFFFF), 100  # past 65 s: hundredths (at most about 11 minutes)


def _meta_chunks(
    *,
    icc_profile: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    aspect: tuple[int, int] | None = None,
    exif: bytes | None = None,
    text: dict[str, str] | None = None,
    colour: tuple[tuple[bytes, bytes], ...] = (),
    raw_text: tuple[tuple[bytes, bytes], ...] = (),
) -> list[bytes]:
    """The metadata chunks :func:`encode_png` and :func:`encode_apng` write after the header."""
    chunks = [_chunk(kind, body) for kind, body in colour if not (icc_profile and kind == b"sRGB")]
    if icc_profile:
        chunks.append(_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc_profile)))
    if dpi:
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", *dpi_to_ppm(dpi), 1)))
    elif aspect:
        chunks.append(aspect_chunk(aspect))
    if exif:
        chunks.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    chunks += [_chunk(kind, body) for kind, body in raw_text]
    for key, value in (text or {}).items():
        keyword = key.encode("latin-1", "replace")[:79]
        if plain_text(key, value):
            chunks.append(_chunk(b"tEXt", keyword + b"\x00" + value.encode("ascii")))
        else:
            chunks.append(_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    return chunks


def aspect_chunk(aspect: tuple[int, int]) -> bytes:
    """A pHYs chunk with no unit: a pixel aspect ratio as its two densities (x, y)."""
    return _chunk(b"pHYs", struct.pack(">IIB", *(min(v, 0xFFFFFFFF) for v in aspect), 0))


#: the PNG text keyword of an XMP packet
XMP_KEY = "XML:com.adobe.xmp"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def another_follows(data: bytes) -> bool:
    """Whether another PNG file follows the first one's end in ``data`` (a concatenated PNG stream)."""
    end = next((body + length + 4 for kind, body, length in _chunks(data) if kind == b"IEND"), None)
    return end is not None and data[end:end + 8] == PNG_SIGNATURE


def chunks_text(chunks: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """What text chunks say, as Pillow reads them into ``Image.text`` (a repeated keyword: the last)."""
    text = {}
    for kind, body in chunks:
        key, _, rest = body.partition(b"\x00")
        try:
            if kind == b"tEXt":
                value = rest.decode("latin-1")
            elif kind == b"zTXt":
                value = zlib.decompress(rest[1:]).decode("latin-1")
            else:  # iTXt: compression flag and method, language, translated keyword, then the text
                compressed, rest = rest[0], rest[2:]
                rest = rest.split(b"\x00", 2)[2]
                value = (zlib.decompress(rest) if compressed else rest).decode("utf-8")
        except (IndexError, ValueError, zlib.error):
            continue
        text[key.decode("latin-1")] = value
    return text


def text_chunks(data: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """The text chunks of a PNG file, (type, body) in file order, but the XMP packet's (written
    anew from the XMP carried, its orientation set upright) and any whose CRC is wrong."""
    found = []
    for kind, start, length in _chunks(data):
        if start + length + 4 > len(data):  # cut short: this and what follows are not there whole
            break
        if kind in _TEXT_CHUNKS:
            body = data[start:start + length]
            crc = struct.unpack(">I", data[start + length:start + length + 4])[0]
            keyword = body.split(b"\x00", 1)[0]
            if crc == zlib.crc32(kind + body) & 0xFFFFFFFF and keyword != XMP_KEY.encode():
                found.append((kind, bytes(body)))
    return tuple(found)


def plain_text(key: str, value: str) -> bool:
    """Whether a text chunk is written as tEXt, which every reader reads: ASCII, and not the XMP
    packet, which its specification puts in iTXt (as the rest, UTF-8)."""
    return key != XMP_KEY and value.isascii() and "\x00" not in value


def compression(array: np.ndarray) -> dict:
    """The libpng settings for ``array``: :data:`FAST` when 8 strips of 8 rows, spread over the
    image, come out at most 3% larger with it than with :data:`THOROUGH`, else THOROUGH (8 rows
    gave the same choices as 16 on the images measured, at half the cost)."""
    height = array.shape[0]
    if height * array.shape[1] < _SAMPLE_FROM or height < 64:
        return THOROUGH
    starts = np.linspace(0, height - 8, 8).astype(int)
    sample = np.ascontiguousarray(np.concatenate([array[y : y + 8] for y in starts]))
    fast = len(imagecodecs.png_encode(sample, **FAST))
    thorough = len(imagecodecs.png_encode(sample, **THOROUGH))
    return FAST if fast <= thorough * _FAST_SLACK else THOROUGH


def dpi_to_ppm(dpi: tuple[float, float]) -> tuple[int, int]:
    """DPI as the pixels per metre a PNG pHYs chunk holds (1 .. 2**32 - 1)."""
    return tuple(min(max(1, round(d / 0.0254)), 0xFFFFFFFF) for d in dpi)  # type: ignore[return-value]


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

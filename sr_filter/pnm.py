"""Netpbm pictures (PBM, PGM, PPM and PAM), read and written here at their full depth.

Pipelines speak Netpbm (``ffmpeg -f image2pipe -c:v ppm``, ImageMagick's ``ppm:-``, ``pnmtopng``);
Pillow reads a 16-bit PPM at 8 bits, writes no 16-bit colour and no PAM, so the formats are
coded here: every variant (plain ASCII P1-P3, raw P4-P6, PAM P7 with alpha), any maximum value
(scaled to 8 or 16 bits), written as P5/P6 (P7 with alpha) at 8 or 16 bits.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import ImageFormatError

#: the first two bytes of each kind, and what follows them
_MAGIC = re.compile(rb"P([1-7])[\s#]")
#: header fields: a number, or a comment running to the end of its line
_TOKEN = re.compile(rb"\s*(?:#[^\n\r]*[\n\r]\s*)*(\d+)")
#: the longest header read (Netpbm sets none; comments can make one long): a stream's first read
HEADER_LIMIT = 64 << 10
#: a PAM header's last line
_ENDHDR = re.compile(rb"[\n\r][ \t]*ENDHDR")
_TUPLTYPES = {b"BLACKANDWHITE": 1, b"GRAYSCALE": 1, b"BLACKANDWHITE_ALPHA": 2, b"GRAYSCALE_ALPHA": 2,
              b"RGB": 3, b"RGB_ALPHA": 4}


def is_pnm(data: bytes) -> bool:
    """Whether the bytes start a Netpbm picture."""
    return _MAGIC.match(bytes(data[:3])) is not None


def _header(data: bytes) -> tuple[int, int, int, int, int, int] | None:
    """(kind 1-7, width, height, channels, maximum value, offset of the pixel data), or None
    where the header is not complete in ``data``. A PAM's TUPLTYPE is checked against its depth.
    A header is read to :data:`HEADER_LIMIT` bytes (comments make it long): one longer is refused."""
    whole = len(data) > HEADER_LIMIT
    data = bytes(data[:HEADER_LIMIT])
    header = _parse_header(data)
    if header is None and whole:  # it had been cut at 4 KiB and called truncated, comments and all
        raise ImageFormatError(f"its Netpbm header runs past {HEADER_LIMIT >> 10} KiB (comments?), "
                               "more than this program reads")
    return header


def _parse_header(data: bytes) -> tuple[int, int, int, int, int, int] | None:
    magic = _MAGIC.match(data)
    if magic is None:
        return None
    kind = int(magic.group(1))
    if kind == 7:
        last = _ENDHDR.search(data)  # a line of its own: a comment naming it had ended the header there
        if last is None:
            return None
        end = last.end() - len(b"ENDHDR")
        fields: dict[bytes, bytes] = {}
        for line in data[3:end].splitlines():
            words = line.split(b"#", 1)[0].split(None, 1)
            if len(words) == 2:
                fields[words[0]] = fields.get(words[0], b"") + words[1].strip() if words[0] == b"TUPLTYPE" else words[1].strip()
        try:
            width, height, depth, top = (int(fields[k]) for k in (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL"))
        except (KeyError, ValueError):
            raise ImageFormatError("a PAM header needs WIDTH, HEIGHT, DEPTH and MAXVAL") from None
        tupltype = fields.get(b"TUPLTYPE")  # none: told by the depth; another (CMYK) had been read as RGB_ALPHA
        wanted = depth if tupltype is None else _TUPLTYPES.get(tupltype)
        if not 1 <= depth <= 4 or wanted != depth:
            raise ImageFormatError(f"a PAM of depth {depth} ({fields.get(b'TUPLTYPE', b'no TUPLTYPE').decode(errors='replace')}) "
                                   "is not a picture this program reads (grey or RGB, with or without alpha)")
        start = end + len(b"ENDHDR")
        start += 1 if data[start:start + 1] in (b"\n", b"\r") else 0
        return kind, width, height, depth, top, start
    position, numbers = 2, []
    for _ in range(2 if kind in (1, 4) else 3):
        token = _TOKEN.match(data, position)
        if token is None:
            return None
        numbers.append(int(token.group(1)))
        position = token.end()
    if data[position:position + 1] == b"#":  # a comment right after the last number: as Netpbm's own
        # reader takes it, its line end is the one whitespace byte that ends the header (the comment
        # had been read as pixels)
        ends = [i for i in (data.find(b"\n", position), data.find(b"\r", position)) if i >= 0]
        if not ends:
            return None
        position = min(ends)
    if position >= len(data):
        return None
    width, height = numbers[:2]
    top = 1 if kind in (1, 4) else numbers[2]
    channels = 3 if kind in (3, 6) else 1
    return kind, width, height, channels, top, position + 1  # one whitespace byte ends the header


def pnm_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, channels, bytes per sample) from a Netpbm header, for the memory check."""
    try:
        header = _header(data)
    except ImageFormatError:
        return None
    if header is None:
        return None
    _, width, height, channels, top, _ = header
    return width, height, channels, 2 if top > 255 else 1


def raw_length(data: bytes) -> int | None:
    """The bytes of a raw (P4-P7) Netpbm file's first picture, header included, from its header in
    ``data``; None for anything else (a plain picture's length is not known before it is read)."""
    try:
        header = _header(data)
    except ImageFormatError:
        return None
    if header is None or header[0] < 4:
        return None
    return _raw_end(header)


def _raw_end(header: tuple[int, int, int, int, int, int]) -> int:
    """Where a raw (P4-P7) picture's pixels end, from its :func:`_header`: bitmap rows are packed
    to whole bytes, other samples take 1 or 2 bytes."""
    kind, width, height, channels, top, start = header
    if kind == 4:
        return start + (width + 7) // 8 * height
    return start + width * height * channels * (2 if top > 255 else 1)


def decode_pnm(data: bytes, name: str) -> tuple[np.ndarray, str, bool]:
    """The first picture of a Netpbm file: (pixels, Pillow-style mode name, whether more pictures
    follow it). Samples are scaled to the full 8- or 16-bit range (a maximum value of 1023 to
    65535, 15 to 255); bitmaps (1 = black) come as 8-bit grey."""
    try:
        header = _header(data)
    except ImageFormatError as exc:  # the header's own words, with the file named
        raise ImageFormatError(f"{name}: {exc}") from None
    if header is None:
        raise ImageFormatError(f"{name} is truncated or damaged (its Netpbm header is incomplete)")
    kind, width, height, channels, top, start = header
    if width <= 0 or height <= 0:
        raise ImageFormatError(f"{name} has no pixels ({width}x{height})")
    if not 1 <= top <= 65535:
        raise ImageFormatError(f"{name} is damaged: a Netpbm maximum value must be 1 to 65535, not {top}")
    count = width * height * channels
    if kind in (1, 2, 3):  # plain (ASCII) samples
        text = re.sub(rb"#[^\n\r]*", b"", bytes(data[start - 1:]))
        if kind == 1:
            text = re.sub(rb"\s", b"", text)[:count]
            bad = re.search(rb"[^01]", text)
        else:
            words = text.split()[:count]
            bad = next((re.match(rb"\S{1,20}", word) for word in words if not word.isdigit() or len(word) > 12), None)
        if bad is not None:  # a letter had been 'internal error (ValueError ...)', a -1 read as 255
            raise ImageFormatError(f"{name} is damaged: {bad.group().decode(errors='replace')!r} is not "
                                   f"{'a bit (0 or 1)' if kind == 1 else 'a sample value'} of a plain Netpbm picture")
        samples = np.frombuffer(text, np.uint8) - ord("0") if kind == 1 else np.array(words, dtype=np.int64)
        if samples.size < count:
            raise ImageFormatError(f"{name} is truncated or damaged (its pixels end before the picture does)")
        end = len(data)  # a plain file is not followed by another here
    elif kind == 4:  # packed bits, each row to a whole byte
        row = (width + 7) // 8
        end = _raw_end(header)
        if len(data) < end:
            raise ImageFormatError(f"{name} is truncated or damaged (its pixels end before the picture does)")
        bits = np.unpackbits(np.frombuffer(data, np.uint8, row * height, start).reshape(height, row), axis=1)
        samples = bits[:, :width]
    else:
        size = 2 if top > 255 else 1
        end = _raw_end(header)
        if len(data) < end:
            raise ImageFormatError(f"{name} is truncated or damaged (its pixels end before the picture does)")
        samples = np.frombuffer(data, ">u2" if size == 2 else np.uint8, count, start)
    if kind in (1, 4) or (kind == 7 and top == 1):  # bitmaps: 1 is black (PBM); a PAM's BLACKANDWHITE: 1 is white
        white = samples == 0 if kind in (1, 4) else samples == 1
        pixels = np.where(white, 255, 0).astype(np.uint8).reshape(height, width, channels)
        if kind == 7 and channels == 2:  # its alpha plane is 0/1 as well
            pixels[..., 1] = np.where(samples.reshape(height, width, 2)[..., 1] > 0, 255, 0)
        mode = "1"
    else:
        deep = top > 255
        full = 65535 if deep else 255
        values = samples.astype(np.int64 if samples.dtype == np.int64 else np.uint32)
        if values.size and values.max() > top:
            raise ImageFormatError(f"{name} is damaged: a sample is above its maximum value {top}")
        if top != full:
            values = (values * full + top // 2) // top
        pixels = values.astype(np.uint16 if deep else np.uint8).reshape(height, width, channels)
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        mode = f"{mode};16" if deep and channels == 1 else mode
    array = pixels[..., 0] if channels == 1 else pixels
    more = is_pnm(bytes(data[end:end + 3]).lstrip())
    return np.ascontiguousarray(array), mode, more


def encode_pnm(array: np.ndarray, *, pam: bool = False) -> bytes:
    """8- or 16-bit pixels as a raw PGM (grey) or PPM (colour), or as a PAM (``pam``, which also
    holds alpha); 16-bit samples big-endian, as the formats store them."""
    channels = 1 if array.ndim == 2 else array.shape[2]
    height, width = array.shape[:2]
    top = 65535 if array.dtype == np.uint16 else 255
    if pam:
        tupltype = {1: "GRAYSCALE", 2: "GRAYSCALE_ALPHA", 3: "RGB", 4: "RGB_ALPHA"}[channels]
        header = f"P7\nWIDTH {width}\nHEIGHT {height}\nDEPTH {channels}\nMAXVAL {top}\nTUPLTYPE {tupltype}\nENDHDR\n"
    elif channels in (1, 3):
        header = f"P{5 if channels == 1 else 6}\n{width} {height}\n{top}\n"
    else:
        raise ValueError("PGM and PPM hold no alpha: flatten it first, or write a PAM")
    return header.encode("ascii") + np.ascontiguousarray(array, ">u2" if top == 65535 else np.uint8).tobytes()

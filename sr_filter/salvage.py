"""Damaged metadata that would stop a PNG or JPEG from being read, left out of its bytes.

Pillow refuses a whole PNG for one ancillary chunk whose CRC is wrong or that is too short to
parse (a pHYs of 2 bytes, a gAMA of 0), and a whole JPEG for an APP0 (JFIF), APP2 (ICC) or APP14
(Adobe) segment too short for its parser, though the pixels are intact; libpng and libjpeg read
such files with a warning. :func:`repaired` drops exactly those chunks and segments, with one
warning naming them, so every reader after it (Pillow, libpng through :mod:`sr_filter.png`, the
metadata readers) sees the same bytes. Critical PNG chunks (IHDR, PLTE, IDAT) and APNG's frame
chunks are never dropped: damage there is damage to the picture, reported where it is read.
"""

from __future__ import annotations

import logging
import struct
import zlib

from .png import PNG_SIGNATURE

log = logging.getLogger(__name__)

#: APNG's frame control and frame data chunks: ancillary by their names, but the animation's structure
_FRAME_CHUNKS = frozenset({b"acTL", b"fcTL", b"fdAT"})
#: the bytes Pillow's parser reads from these chunks (a shorter one had refused the whole file)
_PNG_NEEDS = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9}
#: a tRNS colour key's length per PNG colour type (grey: one 16-bit sample, RGB: three)
_KEY_LENGTH = {0: 2, 2: 6}

#: a byte range of the file to leave out, and what it was ("tEXt: CRC error")
Damage = tuple[int, int, str]


def repaired(data: bytes, name: str, *, quiet: bool = False) -> bytes:
    """``data`` without the damaged PNG chunks or JPEG segments that would stop the picture from
    being read (one warning naming what was left out, unless ``quiet``); ``data`` itself when a
    PNG or JPEG has none, and for any other format."""
    if data[:8] == PNG_SIGNATURE:
        damage = png_damage(data)
    elif data[:3] == b"\xff\xd8\xff":
        damage = jpeg_damage(data)
    else:
        return data
    if not damage:
        return data
    if not quiet:
        log.warning("%s: damaged metadata left out (%s); the picture is read without it",
                    name, "; ".join(dict.fromkeys(what for _, _, what in damage)))
    kept, pos = [], 0
    view = memoryview(data)
    for start, end, _ in damage:
        kept.append(view[pos:start])
        pos = end
    kept.append(view[pos:])
    return b"".join(kept)


def png_damage(data: bytes) -> list[Damage]:
    """The ancillary chunks of a PNG whose CRC is wrong or that Pillow cannot parse (too short, an
    unknown compression method), in file order; chunks cut off by the file's end are left to the reader."""
    colour = data[25] if len(data) > 25 and data[12:16] == b"IHDR" else None
    found: list[Damage] = []
    pos = 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if kind == b"IEND" or end > len(data):
            break
        if kind[0] & 0x20 and kind not in _FRAME_CHUNKS and kind.isalpha():
            body = data[pos + 8:pos + 8 + length]
            crc = struct.unpack(">I", data[end - 4:end])[0]
            what = "CRC error" if zlib.crc32(body, zlib.crc32(kind)) != crc else _png_flaw(kind, body, colour)
            if what:
                found.append((pos, end, f"{kind.decode('ascii')}: {what}"))
        pos = end
    return found


def _png_flaw(kind: bytes, body: bytes, colour: int | None) -> str | None:
    """Why Pillow cannot parse an ancillary chunk whose CRC is right; None when it can."""
    need = _PNG_NEEDS.get(kind) or (_KEY_LENGTH.get(colour) if kind == b"tRNS" and colour is not None else None)
    if need and len(body) < need:
        return f"{len(body)} bytes, {need} needed"
    if kind == b"iCCP":
        null = body.find(b"\x00", 0, 80)
        if null < 0 or null + 1 >= len(body):
            return "no profile name and compression method"
        if body[null + 1]:
            return f"unknown compression method {body[null + 1]}"
    if kind == b"zTXt":
        _, null, rest = body.partition(b"\x00")
        if null and rest and rest[0]:
            return f"unknown compression method {rest[0]}"
    return None


def jpeg_damage(data: bytes) -> list[Damage]:
    """The APPn segments before a JPEG's first scan that Pillow's parser fails on (JFIF and Adobe
    shorter than their version field, an ICC piece without its numbering, a Photoshop resource cut
    after its code), in file order; a damaged segment structure is left to the reader."""
    found: list[Damage] = []
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        end = pos + 2 + length
        if length < 2 or end > len(data):
            break
        what = _jpeg_flaw(marker, data[pos + 4:end])
        if what:
            found.append((pos, end, what))
        pos = end
    return found


def _jpeg_flaw(marker: int, body: bytes) -> str | None:
    """Why Pillow's parser fails on an APPn segment; None when it does not."""
    if marker == 0xE0 and body.startswith(b"JFIF") and len(body) < 7:
        return f"JFIF APP0: {len(body)} bytes, 7 needed"
    if marker == 0xEE and body.startswith(b"Adobe") and len(body) < 7:
        return f"Adobe APP14: {len(body)} bytes, 7 needed"
    if marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00") and len(body) < 14:
        return f"ICC profile APP2: {len(body)} bytes, 14 needed"
    if marker == 0xED and body.startswith(b"Photoshop 3.0\x00") and _photoshop_cut(body):
        return "Photoshop APP13: a resource cut short"
    return None


def _photoshop_cut(body: bytes) -> bool:
    """Whether a Photoshop APP13 block ends right after a resource's code, where Pillow reads the
    name's length without a guard (a block cut elsewhere it reads up to the cut)."""
    offset = 14
    while body[offset:offset + 4] == b"8BIM":
        offset += 6  # signature, resource code
        if offset > len(body):  # the code itself cut: Pillow stops there quietly
            return False
        if offset == len(body):
            return True
        offset += 1 + body[offset]
        offset += offset & 1
        if offset + 4 > len(body):
            return False
        offset += 4 + struct.unpack(">I", body[offset:offset + 4])[0]
        offset += offset & 1
    return False

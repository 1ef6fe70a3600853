"""Small image files the I/O tests generate: CMYK and grey ICC profiles, filtered/interlaced 16-bit PNGs, HEIC."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageCms


def cmyk_profile() -> bytes:
    """A minimal ICC v2 CMYK printer profile (A2B0 lut8 to Lab) whose cyan ink prints *red*.

    Deliberately unlike a real press, so a test can tell conversion through this profile from
    Pillow's naive CMYK -> RGB formula.
    """
    corners = []
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    rgb = (1 - k) * np.array([1.0, (1 - c) * (1 - m), (1 - c) * (1 - y)])
                    corners.append(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8))
    srgb = Image.fromarray(np.array(corners, dtype=np.uint8)[None])
    lab = ImageCms.applyTransform(srgb, ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"))
    clut = np.asarray(lab, dtype=np.uint8)[0].copy()
    clut[:, 1:] = (clut[:, 1:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)  # Pillow's a*, b* are signed
    clut = clut.tobytes()
    ramp = bytes(range(256))
    identity = b"".join(struct.pack(">i", v) for v in (65536, 0, 0, 0, 65536, 0, 0, 0, 65536))
    a2b0 = b"mft1" + b"\0" * 4 + bytes([4, 3, 2, 0]) + identity + ramp * 4 + clut + ramp * 3
    return _profile(b"prtr", b"CMYK", b"Lab ", b"sr-filter test CMYK", [(b"A2B0", a2b0)])


def grey_profile(gamma: float) -> bytes:
    """A minimal ICC v2 grey display profile whose tone curve is a plain power ``gamma`` (1.0:
    linear grey, which sRGB shows far too dark)."""
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256))
    return _profile(b"mntr", b"GRAY", b"XYZ ", f"sr-filter test grey, gamma {gamma:g}".encode(), [(b"kTRC", curve)])


def _profile(kind: bytes, space: bytes, connection: bytes, name: bytes, own: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2 profile: a header, a description, the D50 white point, a copyright and ``own`` tags."""
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(name) + 1) + name + b"\0" + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    wtpt = b"XYZ " + b"\0" * 4 + struct.pack(">iii", 63190, 65536, 54061)
    cprt = b"text" + b"\0" * 4 + b"public domain\0"
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", cprt), *own]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, kind, space, connection)
    header += struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
    header += struct.pack(">iii", 63190, 65536, 54061) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def png16_filtered(array: np.ndarray, *, interlaced: bool) -> bytes:
    """A 16-bit PNG as libpng would write it: every filter type in turn, optionally Adam7."""
    height, width, channels = array.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = channels * 2
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    row_index = 0
    for x0, y0, dx, dy in passes if interlaced else [(0, 0, 1, 1)]:
        sub = array[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        data = np.ascontiguousarray(sub, dtype=">u2").view(np.uint8).reshape(sub.shape[0], -1).astype(np.int32)
        previous = np.zeros(data.shape[1], dtype=np.int32)
        for row in data:
            kind = row_index % 5
            row_index += 1
            left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
            upleft = np.concatenate([np.zeros(bpp, np.int32), previous[:-bpp]])
            if kind == 0:
                predictor = np.zeros_like(row)
            elif kind == 1:
                predictor = left
            elif kind == 2:
                predictor = previous
            elif kind == 3:
                predictor = (left + previous) // 2
            else:
                p = left + previous - upleft
                pa, pb, pc = np.abs(p - left), np.abs(p - previous), np.abs(p - upleft)
                predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, upleft))
            raw += bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes()
            previous = row

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 1 if interlaced else 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def raw_exif(*entries: tuple[int, int, int, bytes], sub: tuple[tuple[int, int, int, bytes], ...] = ()) -> bytes:
    """An EXIF block written byte by byte, so damaged values and any Pillow version can be used.

    ``entries`` are IFD0's (tag, TIFF type, count, value bytes), unchecked; ``sub`` entries go
    into an EXIF sub-IFD that IFD0 points to (tag 0x8769).
    """
    ifd0 = list(entries) + ([(0x8769, 4, 1, b"")] if sub else [])
    start0 = 8
    start_sub = start0 + 2 + 12 * len(ifd0) + 4
    start_data = start_sub + (2 + 12 * len(sub) + 4 if sub else 0)
    extra = b""

    def pack(items, next_ifd: int = 0) -> bytes:
        nonlocal extra
        out = struct.pack("<H", len(items))
        for tag, kind, count, value in items:
            if tag == 0x8769 and kind == 4 and not value:
                value = struct.pack("<I", start_sub)
            if len(value) <= 4:
                out += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
            else:
                out += struct.pack("<HHII", tag, kind, count, start_data + len(extra))
                extra += value
        return out + struct.pack("<I", next_ifd)

    body = pack(ifd0) + (pack(list(sub)) if sub else b"")
    return b"Exif\0\0II*\0" + struct.pack("<I", start0) + body + extra


def bmp32(rgba: np.ndarray) -> bytes:
    """A 32-bit BMP (BITMAPV4HEADER, BI_BITFIELDS with an alpha mask) of an HxWx4 uint8 array,
    as image editors write one with transparency; Pillow writes none with alpha."""
    height, width = rgba.shape[:2]
    pixels = np.ascontiguousarray(rgba[::-1][..., [2, 1, 0, 3]]).tobytes()  # bottom-up BGRA
    info = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)
    info += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000) + b"sRGB" + bytes(48)
    return struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(pixels), 0, 0, 14 + len(info)) + info + pixels


def heic(*arrays: np.ndarray, **options) -> bytes:
    """A real HEIC file of ``arrays`` (uint8 RGB or RGBA; uint16 RGB, coded with 10 bits) written by
    pillow-heif (libheif with x265), near-lossless; ``options``: icc_profile, exif, xmp, primary_index,
    ... Its Pillow plugin is not registered here: the reader must do that itself. Skips the test
    where pillow-heif (the heic extra, in the test extra) is missing."""
    import pytest

    pillow_heif = pytest.importorskip("pillow_heif", reason='HEIC needs pillow-heif: pip install "sr-filter[heic]"')
    modes = {(np.dtype(np.uint8), 3): "RGB", (np.dtype(np.uint8), 4): "RGBA", (np.dtype(np.uint16), 3): "RGB;16"}
    heif = None
    for array in arrays:
        size, mode = (array.shape[1], array.shape[0]), modes[array.dtype, array.shape[2]]
        if heif is None:
            heif = pillow_heif.from_bytes(mode, size, array.tobytes())
        else:
            heif.add_frombytes(mode, size, array.tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=-1, chroma=444, **options)
    return buffer.getvalue()

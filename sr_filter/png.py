"""16-bit PNG through imagecodecs (libpng), which keeps the 16 bits that Pillow reduces to 8.

Pillow reads 16-bit colour PNGs at 8 bits, drops a 16-bit colour key and cannot write 16-bit
colour at all. libpng does all of it: every filter type, Adam7, and a grey or RGB colour key
(tRNS) expanded into a real alpha channel. Writing lets libpng choose its adaptive filters
(smaller files than unfiltered rows); the metadata chunks libpng is not given are inserted
after IHDR by :func:`encode_png`. Nothing here depends on Pillow's internals.
"""

from __future__ import annotations

import struct
import zlib

import imagecodecs
import numpy as np

from .errors import ImageFormatError, first_line

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR_END = 8 + 8 + 13 + 4  # signature, length + type, body, CRC


def is_deep_png(data: bytes) -> bool:
    """Whether the bytes are a PNG with 16 bits per sample (grey, grey + alpha, RGB or RGBA)."""
    return data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 26 and data[24] == 16


def decode_png16(data: bytes, name: str = "image") -> np.ndarray:
    """Decode a 16-bit PNG (first frame) into HxW or HxWxC uint16 (C = 2, 3 or 4).

    A colour key (tRNS) becomes an alpha channel: grey -> grey + alpha, RGB -> RGBA.
    """
    try:
        array = imagecodecs.apng_decode(data, index=0)
    except Exception as exc:  # noqa: BLE001 - the codec raises its own error kinds for damaged data
        raise ImageFormatError(f"{name} is truncated or damaged ({first_line(exc)})") from None
    if array.dtype != np.uint16:
        array = array.astype(np.uint16) * 257
    return np.ascontiguousarray(array)


def encode_png(
    array: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    exif: bytes | None = None,
    text: dict[str, str] | None = None,
) -> bytes:
    """Encode an HxW or HxWxC uint8 or uint16 array (C = 1..4) as a PNG of that depth with the given metadata."""
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG holds 8 or 16 bits per sample, not {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    encoded = imagecodecs.png_encode(np.ascontiguousarray(array), level=6)
    chunks = []
    if icc_profile:
        chunks.append(_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc_profile)))
    if dpi:
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", *dpi_to_ppm(dpi), 1)))
    if exif:
        chunks.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    for key, value in (text or {}).items():
        keyword = key.encode("latin-1", "replace")[:79]
        chunks.append(_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    if not chunks:
        return encoded
    return b"".join([memoryview(encoded)[:_IHDR_END], *chunks, memoryview(encoded)[_IHDR_END:]])


def dpi_to_ppm(dpi: tuple[float, float]) -> tuple[int, int]:
    """DPI as the pixels per metre a PNG pHYs chunk holds (1 .. 2**32 - 1)."""
    return tuple(min(max(1, round(d / 0.0254)), 0xFFFFFFFF) for d in dpi)  # type: ignore[return-value]


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

"""16-bit colour PNG, which Pillow reduces to 8 bits on read and cannot write.

Reading reuses Pillow's own PNG decoder (zlib, unfiltering, interlacing) and only changes how
it unpacks the unfiltered bytes: once taking each sample's high bytes and once its low bytes
(or, for grey + alpha, all four bytes of a pixel at once), then joins them. The unfiltering
step size depends only on the bytes per pixel, which both unpackings share, so the result is
exact. Writing is a small encoder of our own (one IDAT, filter type 0).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

#: Pillow's raw mode for 16-bit PNG colour types -> (high-byte raw mode, low-byte raw mode)
_SPLIT = {"RGB;16B": ("RGB;16B", "RGB;16L"), "RGBA;16B": ("RGBA;16B", "RGBA;16L")}


def is_png16_colour(image: Image.Image) -> bool:
    """Whether a freshly opened PNG is 16-bit RGB, RGBA or grey + alpha (Pillow would reduce it)."""
    return image.format == "PNG" and len(image.tile) == 1 and image.tile[0].args in ("RGB;16B", "RGBA;16B", "LA;16B")


def decode_png16(data: bytes) -> tuple[np.ndarray, Image.Image]:
    """Decode a 16-bit RGB / RGBA / LA PNG into an HxWxC uint16 array (C = 3, 4 or 2).

    Also returns one of the loaded Pillow images, whose ``text`` holds the PNG's text chunks.
    """
    probe = Image.open(io.BytesIO(data))
    rawmode = probe.tile[0].args
    if rawmode == "LA;16B":
        # four bytes per pixel (L hi, L lo, A hi, A lo): decode them unchanged as 8-bit RGBA
        loaded = _decode_as(data, "RGBA")
        raw = np.asarray(loaded).astype(np.uint16)
        return np.stack([raw[..., 0] << 8 | raw[..., 1], raw[..., 2] << 8 | raw[..., 3]], axis=-1), loaded
    high_mode, low_mode = _SPLIT[rawmode]
    loaded = _decode_as(data, high_mode)
    high = np.asarray(loaded).astype(np.uint16)
    low = np.asarray(_decode_as(data, low_mode)).astype(np.uint16)
    return high << 8 | low, loaded


def _decode_as(data: bytes, rawmode: str) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.tile = [image.tile[0]._replace(args=rawmode)]
    image.load()
    return image


def encode_png16(
    array: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    exif: bytes | None = None,
    text: dict[str, str] | None = None,
) -> bytes:
    """Encode an HxWxC uint16 array (C = 1..4) as a 16-bit PNG with the given metadata."""
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, channels = array.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.empty((height, 1 + width * channels * 2), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = np.ascontiguousarray(array, dtype=">u2").view(np.uint8).reshape(height, -1)
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc_profile)))
    if dpi:
        ppm = [max(1, round(d / 0.0254)) for d in dpi]
        parts.append(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if exif:
        parts.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    for key, value in (text or {}).items():
        keyword = key.encode("latin-1", "replace")[:79]
        parts.append(_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    parts.append(_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

"""ICC matrix/TRC profiles read with numpy, for what LittleCMS through Pillow cannot do: move
16-bit pixels to sRGB (Pillow's ImageCms converts 8-bit modes only), and a grey tone curve
exactly (LittleCMS samples an 8-bit grey transform on a coarse grid)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .metadata import srgb_profile


def to_srgb16(colour: np.ndarray, icc: bytes) -> np.ndarray | None:
    """16-bit pixels (grey (H, W) or RGB (H, W, 3)) moved to 16-bit sRGB from a matrix/TRC ``icc``
    profile of their colour space (Adobe RGB, Display P3, ProPhoto, Rec. 2020; a grey one's tone
    curve), relative colorimetric through the profile connection space as LittleCMS does for such
    profiles. None for a profile of look-up tables or a damaged one, which the caller converts
    through LittleCMS at 8 bits."""
    grey = colour.ndim == 2
    tags = _tags(icc)
    if b"A2B0" in tags:  # look-up tables beside the matrix: LittleCMS converts through them (perceptual intent)
        return None
    curves = [_curve(tags.get(sig)) for sig in ((b"kTRC",) if grey else (b"rTRC", b"gTRC", b"bTRC"))]
    if any(curve is None for curve in curves):
        return None
    matrix = None
    if not grey:  # through the profile connection space (XYZ, D50) to sRGB's own colorants
        source, target = _colorants(tags), _colorants(_tags(srgb_profile()))
        if source is None or target is None:
            return None
        matrix = (np.linalg.inv(target) @ source).T.astype(np.float32)
    levels = np.arange(65536) / 65535.0
    tables = [np.asarray(curve(levels), np.float32) for curve in curves]  # each 16-bit level's linear value
    out = np.empty_like(colour, np.uint16)
    for top in range(0, colour.shape[0], 256):  # in bands of rows: the float temporaries stay small
        band = colour[top:top + 256]
        if grey:
            linear = tables[0][band]
        else:
            linear = np.stack([table[band[..., i]] for i, table in enumerate(tables)], axis=-1) @ matrix
        linear = np.clip(np.nan_to_num(linear), 0.0, 1.0)  # (a damaged curve's NaN as black)
        coded = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
        out[top:top + 256] = np.rint(coded * 65535)
    return out


def _tags(icc: bytes) -> dict[bytes, bytes]:
    """An ICC profile's tags by signature (those whose data lies inside the profile)."""
    tags: dict[bytes, bytes] = {}
    if len(icc) < 132:
        return tags
    count = struct.unpack_from(">I", icc, 128)[0]
    for i in range(min(count, (len(icc) - 132) // 12)):
        sig, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
        if offset + size <= len(icc):
            tags[sig] = icc[offset:offset + size]
    return tags


def _colorants(tags: dict[bytes, bytes]) -> np.ndarray | None:
    """The matrix from linear RGB to the profile connection space (the rXYZ, gXYZ, bXYZ columns)."""
    columns = []
    for sig in (b"rXYZ", b"gXYZ", b"bXYZ"):
        tag = tags.get(sig, b"")
        if tag[:4] != b"XYZ " or len(tag) < 20:
            return None
        columns.append(np.array(struct.unpack_from(">3i", tag, 8)) / 65536.0)
    return np.stack(columns, axis=1)


#: the parameters (g, a, b, c, d, e, f) each ICC parametric curve type has
_PARA_COUNTS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


def _curve(tag: bytes | None) -> Any:
    """An ICC tone curve (curv or para) as a function of 0..1 arrays; None where it is neither."""
    if not tag or len(tag) < 12:
        return None
    if tag[:4] == b"curv":
        count = struct.unpack_from(">I", tag, 8)[0]
        if count == 0:
            return lambda x: x
        if count == 1 and len(tag) >= 14:
            gamma = struct.unpack_from(">H", tag, 12)[0] / 256.0
            return lambda x: x ** gamma
        if len(tag) < 12 + 2 * count:
            return None
        table = np.frombuffer(tag, ">u2", count, 12) / 65535.0
        grid = np.linspace(0.0, 1.0, count)
        return lambda x: np.interp(x, grid, table)
    if tag[:4] == b"para":
        kind = struct.unpack_from(">H", tag, 8)[0]
        count = _PARA_COUNTS.get(kind)
        if count is None or len(tag) < 12 + 4 * count:
            return None
        g, a, b, c, d, e, f = [v / 65536.0 for v in struct.unpack_from(f">{count}i", tag, 12)] + [0.0] * (7 - count)
        if kind == 0:
            a, b, c, d, e, f = 1.0, 0.0, 0.0, 0.0, 0.0, 0.0
        elif kind in (1, 2):  # (a x + b)^g (+ c) from x = -b/a, else 0 (c)
            d, e, f, c = (-b / a if a else 0.0), (c if kind == 2 else 0.0), (c if kind == 2 else 0.0), 0.0
        elif kind == 3:
            e, f = 0.0, 0.0
        return lambda x: np.where(x >= d, np.maximum(a * x + b, 0.0) ** g + e, c * x + f)
    return None

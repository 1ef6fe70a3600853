"""Resampling for output scales the network does not produce itself."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize(image: np.ndarray, height: int, width: int, clamp: bool = True,
           resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Antialiased bicubic resize (Pillow's, a = -0.5: the same as torch's ``antialias=True``) of a
    (N, C, H, W) float32 array, clamped to [0, 1]; ``clamp=False`` and another ``resample`` filter
    (bilinear: no overshoot) for values that are not pixels in 0..1."""
    if image.shape[-2:] == (height, width):
        return image
    n, c = image.shape[:2]
    out = np.empty((n, c, height, width), dtype=np.float32)
    for i in range(n):
        for k in range(c):
            plane = Image.fromarray(np.ascontiguousarray(image[i, k], dtype=np.float32))  # mode F
            out[i, k] = np.asarray(plane.resize((width, height), resample))
    return np.clip(out, 0, 1, out=out) if clamp else out

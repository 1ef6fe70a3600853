"""Resampling for output scales the network does not produce itself."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Antialiased bicubic resize of a (N, C, H, W) float tensor, clamped to [0, 1]."""
    if image.shape[-2:] == (height, width):
        return image
    out = F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0, 1)

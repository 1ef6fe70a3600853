"""Test-time augmentation: each window is upscaled in the 8 flips/rotations of the square's
symmetry group, mapped back and averaged (as ncnn's ``-x`` and nunif's ``--tta``).

It wraps one window's forward pass, so tiling, alpha, 16-bit output and every backend work as
without it, at 8x the cost. A 90-degree rotation swaps a window's height and width; both are
multiples of the model's size multiple, so the rotated window is one too.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .backends import Backend

#: (quarter turns, horizontal flip) for the 8 elements of the dihedral group D4
TRANSFORMS: tuple[tuple[int, bool], ...] = tuple((k, flip) for flip in (False, True) for k in range(4))


def forward_transform(x: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Flip (width axis) first, then rotate ``k`` quarter turns (a view)."""
    if flip:
        x = np.flip(x, -1)
    return np.rot90(x, k, axes=(-2, -1)) if k else x


def inverse_transform(y: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Undo :func:`forward_transform`: rotate back, then flip (a view)."""
    if k:
        y = np.rot90(y, -k, axes=(-2, -1))
    return np.flip(y, -1) if flip else y


def tta_run(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray:
    """The mean of ``run`` over the 8 transforms of ``batch``, each mapped back (float32)."""
    total: np.ndarray | None = None
    for k, flip in TRANSFORMS:
        y = inverse_transform(run(np.ascontiguousarray(forward_transform(batch, k, flip))), k, flip)
        if total is None:
            total = y.astype(np.float32, copy=True)
        else:
            total += y
    assert total is not None
    total /= len(TRANSFORMS)
    return total


class TTABackend:
    """A :class:`Backend` that runs ``inner`` on the 8 transforms of every window and averages."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = f"{inner.name}+tta"
        self.precision = inner.precision

    def run(self, batch: np.ndarray) -> np.ndarray:
        total = tta_run(self.inner.run, batch)
        return np.clip(total, 0, 1, out=total)

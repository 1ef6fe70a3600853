"""Test-time augmentation: each window is upscaled in the 8 flips/rotations of the square's
symmetry group, mapped back and averaged (as ncnn's ``-x`` and nunif's ``--tta``).

It wraps one window's forward pass, so tiling, alpha, 16-bit output and every backend work as
without it, at 8x the cost. A 90-degree rotation swaps a window's height and width; both are
multiples of the model's size multiple, so the rotated window is one too.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch

#: (quarter turns, horizontal flip) for the 8 elements of the dihedral group D4
TRANSFORMS: tuple[tuple[int, bool], ...] = tuple((k, flip) for flip in (False, True) for k in range(4))


class Backend(Protocol):
    """One window in, one window out (see sr_filter.backends once it lands)."""

    name: str
    precision: str

    def run(self, batch: torch.Tensor) -> torch.Tensor: ...


def forward_transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Flip (width axis) first, then rotate ``k`` quarter turns."""
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


def inverse_transform(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Undo :func:`forward_transform`: rotate back, then flip."""
    if k:
        y = torch.rot90(y, -k, dims=(-2, -1))
    return y.flip(-1) if flip else y


def tta_run(run: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor) -> torch.Tensor:
    """The mean of ``run`` over the 8 transforms of ``batch``, each mapped back (float32)."""
    total: torch.Tensor | None = None
    with torch.inference_mode():  # backends may hand back inference tensors; sum them in that mode
        for k, flip in TRANSFORMS:
            y = inverse_transform(run(forward_transform(batch, k, flip).contiguous()), k, flip).float()
            total = y.clone() if total is None else total.add_(y)
        assert total is not None
        return total.div_(len(TRANSFORMS))


class TTABackend:
    """A :class:`Backend` that runs ``inner`` on the 8 transforms of every window and averages."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = f"{inner.name}+tta"
        self.precision = inner.precision

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return tta_run(self.inner.run, batch).clamp_(0, 1)

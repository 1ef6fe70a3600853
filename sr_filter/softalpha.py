"""Soft transparency stays soft: the network's upscaled alpha on sharp edges, a resized one on soft.

Alpha runs through the network as a grey picture, and a network trained to restore blurred edges
takes a feather or a drop shadow for one: the anime models turned a 6-pixel feather into a 2-pixel
edge (its 50 % contour moved by 2 output pixels). A network has nothing to add to a smooth ramp,
which a resize upscales exactly, so the result takes, per input pixel, the network's alpha where
the input's alpha steps by at least :data:`SHARP` between neighbours (anti-aliased and hard
edges: at most about two pixels wide), the resized alpha where it steps by at most :data:`SOFT`
(ramps about five pixels wide and wider, flat areas), and a mix between.
"""

from __future__ import annotations

import numpy as np

from .convert import from_float, to_float
from .resize import ResizeSink, resize

#: alpha steps (0..1 between neighbouring input pixels) at and below which alpha is soft, and at
#: and above which it is an edge for the network
SOFT, SHARP = 0.2, 0.45
#: output rows blended at a time (bounds the float temporaries)
BAND = 256


def network_weight(alpha: np.ndarray) -> np.ndarray:
    """(h, w) float32 weights in [0, 1] of the network's alpha, per input pixel, for a (1, 1, h, w)
    alpha plane in [0, 1]: 1 on and beside sharp edges, 0 on soft ramps and flat areas."""
    plane = alpha[0, 0]
    step = np.zeros_like(plane)
    for axis in (0, 1):  # the largest step to a neighbour, on both pixels of each pair
        diff = np.abs(np.diff(plane, axis=axis))
        ahead = [slice(None)] * 2
        behind = [slice(None)] * 2
        ahead[axis], behind[axis] = slice(None, -1), slice(1, None)
        np.maximum(step[tuple(ahead)], diff, out=step[tuple(ahead)])
        np.maximum(step[tuple(behind)], diff, out=step[tuple(behind)])
    padded = np.pad(step, 1, mode="edge")  # 3x3 maximum: the whole width of an edge takes the network's
    near = step.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(near, padded[dy : dy + plane.shape[0], dx : dx + plane.shape[1]], out=near)
    return np.clip((near - SOFT) / (SHARP - SOFT), 0, 1).astype(np.float32)


def blend(network: np.ndarray, alpha: np.ndarray, weight: np.ndarray) -> None:
    """Mix the network's upscaled alpha (an (H, W) uint8, uint16 or float plane, changed in place)
    with ``alpha`` (the (1, 1, h, w) input plane) resized to its size, by ``weight``
    (:func:`network_weight`, each output pixel taking its input pixel's); nothing to do where the
    weight is 1 everywhere."""
    if bool((weight == 1).all()):
        return
    height, width = network.shape
    resized = np.empty((height, width), network.dtype)
    fill(resized, alpha)
    rows, cols = _input_pixel(weight, height, width)
    for y in range(0, height, BAND):
        share = weight[rows[y : y + BAND]][:, cols]
        mixed = share * to_float(network[y : y + BAND], quiet=True) + (1 - share) * to_float(resized[y : y + BAND], quiet=True)
        network[y : y + BAND] = from_float(mixed, network.dtype)


def fill(plane: np.ndarray, alpha: np.ndarray) -> None:
    """Write ``alpha`` ((1, 1, h, w) in [0, 1]) resized (antialiased bicubic, clamped) into the
    (H, W) ``plane`` in its dtype, a band of rows at a time."""
    height, width = plane.shape
    if alpha.shape[-2:] == (height, width):
        plane[...] = from_float(alpha[0, 0], plane.dtype)
        return
    ResizeSink(_Plane(plane), alpha.shape[2], alpha.shape[3], height, width).write(0, alpha)


def blend_float(network: np.ndarray, alpha: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """:func:`blend` for a float (1, 1, H, W) result (an RGBA model's), returned."""
    if bool((weight == 1).all()):
        return network
    height, width = network.shape[-2:]
    rows, cols = _input_pixel(weight, height, width)
    share = weight[rows][:, cols]
    return share * network + (1 - share) * resize(alpha, height, width)


def _input_pixel(weight: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The input row of each of ``height`` output rows, and the input column of each of ``width``
    output columns (as convert.settled_alpha maps them)."""
    rows = np.minimum(np.arange(height) * weight.shape[0] // height, weight.shape[0] - 1)
    cols = np.minimum(np.arange(width) * weight.shape[1] // width, weight.shape[1] - 1)
    return rows, cols


class _Plane:
    """A resize target that stores rows in an (H, W) plane's dtype."""

    def __init__(self, plane: np.ndarray) -> None:
        self.plane = plane

    def write(self, y: int, rows: np.ndarray, x: int = 0) -> None:
        block = rows[0, 0]
        self.plane[y : y + block.shape[0], x : x + block.shape[1]] = from_float(block, self.plane.dtype)

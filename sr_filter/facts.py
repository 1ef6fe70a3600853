"""What the tiler and the backends need to know about one configured network.

Kept apart from :mod:`sr_filter.archs` (which builds networks and needs torch) so that a model
converted earlier can be described and tiled without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def probe_edge(minimum: int, multiple: int) -> int:
    """The edge of the small picture a network is tried on (work counted, a precision tried): at
    least 16 px and its minimum, on its size grid."""
    return -(-max(16, minimum) // max(1, multiple)) * max(1, multiple)


def trace_edge(network: Any, multiple: int, minimum: int = 0, at_least: int = 64) -> int:
    """The edge of the example picture a network is traced at (OpenVINO conversion, ONNX export):
    at least ``at_least`` px and its minimum, on its size grid, and not a size the network keeps a
    precomputed attention mask for (SwinIR, Swin2SR, HAT: their ``input_resolution``, the training
    patch). A trace at that size bakes the mask in, and the graph fails at every other size: the
    64 px SwinIR releases had never run with OpenVINO, nor exported to ONNX at 128 px."""
    multiple = max(1, int(multiple))
    edge = -(-max(at_least, minimum) // multiple) * multiple
    fixed = {size for module in network.modules() for size in _sizes(getattr(module, "input_resolution", None))}
    while edge in fixed:
        edge += multiple
    return edge


def _sizes(value: Any) -> set[int]:
    """The sizes an ``input_resolution`` attribute names: an int (SCUNet), a pair (SwinIR), a torch.Size."""
    if value is None or isinstance(value, (str, bytes)):
        return set()
    values = value if hasattr(value, "__iter__") else (value,)
    sizes = set()
    for item in values:
        try:
            sizes.add(int(item))
        except (TypeError, ValueError):
            pass
    return sizes


@dataclass(frozen=True)
class Facts:
    """What callers need to know about one configured network."""

    scale: int
    in_channels: int
    out_channels: int
    #: low-resolution pixels of context each output pixel depends on; tiles overlap by this
    context: int
    #: blend ramp width in LR px between tiles (0: plain crop, exact when ``context`` is the field)
    blend: int
    #: input height and width must be multiples of this (pixel-unshuffle folding)
    multiple: int
    #: whether fp16/bf16 inference is numerically safe
    supports_half: bool
    #: fp32 bytes of activations per input pixel at the peak of a forward pass (sizes tiles)
    bytes_per_pixel: int
    #: the smallest input edge the network takes (windows below it are padded, as the network's
    #: own code would: a converted graph does not keep that code); 0 for none
    minimum: int = 0
    #: the network pools over the whole picture (channel attention, grid attention): only
    #: whole-image inference is exact, tiles differ slightly whatever their context
    whole_image: bool = False
    #: multiply-adds per input pixel of one forward pass, counted on the built network (0: not
    #: counted); sizes CPU tiles by the time a window takes, not only by memory
    macs_per_pixel: int = 0
    #: multiply-adds per value its layers write (input channels x kernel area, averaged): below a
    #: few hundred a network waits on memory more than on arithmetic, and larger CPU tiles,
    #: whose activations leave the caches, make it slower, not faster
    macs_per_value: int = 0
    #: how the picture is padded to ``multiple`` and ``minimum``: "reflect" (mirrored, as most
    #: upstream code pads) or "zeros" (where the network's own code pads with zeros: OmniSR; the
    #: picture had differed from upstream's by up to 115/255 at a size off its window grid)
    pad: str = "reflect"

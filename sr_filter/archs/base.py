"""The descriptor every architecture module declares beside its network (``ARCH = Arch(...)``).

An :class:`Arch` says how to build the network from settings, how to recognise its state dict and
read the settings back from tensor shapes, and the facts the tiler and the backends need
(receptive field, blend band, size multiple, half support, memory per pixel). :meth:`Arch.facts`
resolves those facts for one set of settings into a frozen :class:`Facts`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn

from ..errors import WeightsFormatError, first_line
from ..facts import Facts, probe_edge

StateDict = Mapping[str, torch.Tensor]


def _one(params: Mapping) -> int:
    return 1


def count_work(network: nn.Module, facts: Facts) -> tuple[int, int]:
    """Multiply-adds of one forward pass of ``network`` per input pixel, and per value its layers
    write, counted on a small input (convolutions and linear layers, which are nearly all of the
    work of every supported family; attention's own products are not counted); (0, 0) when the
    network does not run on it."""
    total, written = [0], [0]
    counting = threading.get_ident()  # the hooks sit on the shared network: another thread's passes are not counted

    def conv(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if threading.get_ident() != counting:
            return
        kernel = module.weight.shape[2:].numel()
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            total[0] += args[0].numel() * (module.out_channels // module.groups) * kernel
        else:
            total[0] += out.numel() * (module.in_channels // module.groups) * kernel
        written[0] += out.numel()

    def linear(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if threading.get_ident() != counting:
            return
        total[0] += out.numel() * module.in_features
        written[0] += out.numel()

    edge = probe_edge(facts.minimum, facts.multiple)
    handles = []
    for module in network.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            handles.append(module.register_forward_hook(conv))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear))
    try:
        first = next(network.parameters(), None)
        x = torch.zeros(1, facts.in_channels, edge, edge, device=first.device if first is not None else "cpu",
                        dtype=first.dtype if first is not None and first.is_floating_point() else torch.float32)
        with torch.no_grad():
            network(x)
    except Exception:  # noqa: BLE001 - any network (a community file's too): not counted, tiles stay at their default
        return 0, 0
    finally:
        for handle in handles:
            handle.remove()
    return int(total[0] // (edge * edge)), int(total[0] // max(1, written[0]))


@dataclass(frozen=True)
class Arch:
    """How to build, recognise and tile one network family (declared in the network's module)."""

    name: str
    network: Callable[..., nn.Module]
    #: exact test on the state dict's keys: true for this family's files and no other family's
    detect: Callable[[StateDict], bool]
    #: constructor arguments read back from tensor shapes
    infer_params: Callable[[StateDict], dict]
    scale_param: str
    context: Callable[[Mapping], int]
    blend: int = 8
    multiple: Callable[[Mapping], int] = _one
    supports_half: bool = True
    #: measured with benchmarks/bench_memory.py (fp32, CPU)
    bytes_per_pixel: Callable[[Mapping], int] = lambda p: 8_000
    #: the smallest input edge (spandrel's size requirement); 0 for none
    minimum: Callable[[Mapping], int] = lambda p: 0
    #: pools over the whole picture: tiles cannot equal whole-image inference (see Facts)
    whole_image: bool = False
    #: :attr:`sr_filter.facts.Facts.pad`
    pad: str = "reflect"

    def scale(self, params: Mapping) -> int:
        return int(params[self.scale_param])

    def build(self, params: Mapping) -> nn.Module:
        try:
            return self.network(**params)
        except (TypeError, ValueError, RuntimeError, KeyError, AssertionError) as exc:  # what constructors raise
            raise WeightsFormatError(f"bad settings for architecture {self.name!r}: {first_line(exc) or type(exc).__name__}") from None

    def facts(self, params: Mapping) -> Facts:
        """The resolved facts of this family built with ``params``."""
        in_ch = int(params.get("num_in_ch", 3))
        return Facts(
            scale=self.scale(params),
            in_channels=in_ch,
            out_channels=int(params.get("num_out_ch", in_ch)),
            context=int(self.context(params)),
            blend=int(self.blend),
            multiple=int(self.multiple(params)),
            supports_half=self.supports_half,
            bytes_per_pixel=int(self.bytes_per_pixel(params)),
            minimum=int(self.minimum(params)),
            whole_image=self.whole_image,
            pad=self.pad,
        )

"""Network architectures and the registry that builds them from manifest settings or state dicts.

Each architecture module holds one network class plus two pure functions:
``detect(state_dict) -> bool`` and ``infer_params(state_dict) -> dict`` (constructor arguments
read back from tensor shapes). ``ARCHS`` maps the manifest's ``arch`` id to an :class:`Arch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn

from ..errors import WeightsFormatError
from . import edsr, rrdbnet, srresnet, srvgg, unet

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Arch:
    """How to build, recognise and tile one network family."""

    name: str
    network: Callable[..., nn.Module]
    detect: Callable[[StateDict], bool]
    infer_params: Callable[[StateDict], dict]
    scale_param: str
    #: low-resolution pixels of context each output pixel depends on (or, for very deep
    #: networks, the context beyond which the influence is below 1/255); tiling overlaps by this
    context: Callable[[dict], int]
    #: whether fp16 inference is numerically safe for this family
    supports_half: bool = True
    #: input sizes (and tile bounds) must be multiples of this, e.g. pixel-unshuffle folding
    multiple: Callable[[dict], int] = lambda p: 1
    #: blend ramp width in LR px between tiles: 0 (plain crop) when ``context`` covers the whole
    #: receptive field, so tiles are exact; > 0 hides the small residue of a truncated field
    blend: int = 8
    #: fp32 bytes of activations per input pixel at the peak of a forward pass (measured on
    #: CPU with benchmarks/bench_memory.py); sizes tiles automatically
    bytes_per_pixel: Callable[[dict], int] = lambda p: 8_000

    def scale(self, params: Mapping) -> int:
        return int(params[self.scale_param])

    def build(self, params: Mapping) -> nn.Module:
        try:
            return self.network(**params)
        except TypeError as exc:
            raise WeightsFormatError(f"bad settings for architecture {self.name!r}: {exc}") from None


ARCHS: dict[str, Arch] = {}


def register(arch: Arch) -> Arch:
    """Add an architecture; a second one with the same name is a programming error."""
    if arch.name in ARCHS:
        raise ValueError(f"architecture {arch.name!r} registered twice")
    ARCHS[arch.name] = arch
    return arch


register(
    Arch(
        name="srvgg",
        network=srvgg.SRVGGNetCompact,
        detect=srvgg.detect,
        infer_params=srvgg.infer_params,
        scale_param="upscale",
        # exactly the receptive field: num_conv + 2 convs of 3x3, then pixel shuffle
        context=lambda p: int(p.get("num_conv", 16)) + 2,
        blend=0,
        bytes_per_pixel=lambda p: 2_000,  # measured 625-1223 (64 features, fp32, CPU)
    )
)
register(
    Arch(
        name="rrdbnet",
        network=rrdbnet.RRDBNet,
        detect=rrdbnet.detect,
        infer_params=rrdbnet.infer_params,
        scale_param="scale",
        # the theoretical field is hundreds of pixels. No trained RRDB weights are available here;
        # randomly initialised x4plus-sized networks fall below 1/255 at 8-12 LR px of context,
        # which understates trained GAN generators (users see seams at Real-ESRGAN's pad of 10),
        # so 40 plus an 8 px blend stays until it can be measured on real weights
        context=lambda p: 40,
        multiple=lambda p: {4: 1, 2: 2, 1: 4}[int(p.get("scale", 4))],
        bytes_per_pixel=lambda p: 12_000,  # measured 10105-10904 (x4plus settings, fp32, CPU)
    )
)

# networks of the training pipeline (issue 7)
register(Arch("edsr", edsr.EDSR, edsr.detect, edsr.infer_params, "upscale", context=lambda p: 2 * int(p.get("num_block", 16)) + 4))
register(Arch("srresnet", srresnet.SRResNet, srresnet.detect, srresnet.infer_params, "upscale",
              context=lambda p: 2 * int(p.get("num_block", 16)) + 12))
register(Arch("unet", unet.UNetUpscaler, unet.detect, unet.infer_params, "upscale", context=lambda p: 48))


def get_arch(name: str) -> Arch:
    """The architecture registered under ``name``."""
    try:
        return ARCHS[name]
    except KeyError:
        known = ", ".join(sorted(ARCHS))
        raise WeightsFormatError(f"unknown architecture {name!r} (known: {known})") from None


def detect_arch(state_dict: StateDict) -> tuple[Arch, dict]:
    """Recognise a state dict's architecture and read its settings from the tensor shapes."""
    for arch in ARCHS.values():
        if arch.detect(state_dict):
            try:
                return arch, arch.infer_params(state_dict)
            except (KeyError, IndexError, ValueError) as exc:
                raise WeightsFormatError(f"looks like {arch.name} but its tensors do not fit: {exc}") from None
    raise WeightsFormatError(
        "not a known super-resolution architecture (supported: " + ", ".join(sorted(ARCHS)) + ")"
    )


__all__ = ["ARCHS", "Arch", "StateDict", "detect_arch", "get_arch", "register"]

"""SRVGGNetCompact, Real-ESRGAN's compact VGG-style network.

Parameter names match Real-ESRGAN's ``realesrgan/archs/srvgg_arch.py`` so that the
official ``realesr-*`` and ``RealESRGANv2-*`` files load unchanged.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

from .base import Arch


def _activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ValueError(f"unknown activation {act_type!r}")


class SRVGGNetCompact(nn.Module):
    """Plain conv stack at low resolution, pixel shuffle, plus a nearest-upsampled skip."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.upscale = upscale
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def infer_params(state_dict: dict[str, torch.Tensor]) -> dict:
    """Read the constructor arguments back from a state dict's shapes."""
    convs = sorted(
        int(k.split(".")[1]) for k, v in state_dict.items() if k.startswith("body.") and k.endswith(".weight") and v.ndim == 4
    )
    first, last = state_dict[f"body.{convs[0]}.weight"], state_dict[f"body.{convs[-1]}.weight"]
    num_in_ch, num_feat = first.shape[1], first.shape[0]
    act_key = f"body.{convs[0] + 1}.weight"
    act_type = "prelu" if act_key in state_dict else "leakyrelu"
    # the output channels of the last conv are num_out_ch * upscale**2: out == in channels where that
    # fits, else the first count that does (a 3-in, 1-out x2 file had been read as 3-out x1, then
    # failed in torch's words instead of the refusal of other channel layouts)
    num_out_ch, upscale = num_in_ch, 0
    for out in dict.fromkeys((num_in_ch, 3, 1, 4)):
        root = int(round((last.shape[0] / out) ** 0.5))
        if root >= 1 and out * root * root == last.shape[0]:
            num_out_ch, upscale = out, root
            break
    if not upscale:
        upscale = int(round((last.shape[0] / num_out_ch) ** 0.5))
    return {
        "num_in_ch": int(num_in_ch),
        "num_out_ch": int(num_out_ch),
        "num_feat": int(num_feat),
        "num_conv": len(convs) - 2,
        "upscale": upscale,
        "act_type": act_type,
    }


_KEY = re.compile(r"body\.\d+\.(weight|bias)")


def detect(state_dict: dict[str, torch.Tensor]) -> bool:
    """Only ``body.N.weight`` / ``body.N.bias`` keys, starting with a 4-D convolution."""
    first = state_dict.get("body.0.weight")
    return first is not None and first.ndim == 4 and all(_KEY.fullmatch(k) for k in state_dict)


def _context(params: dict) -> int:
    # exactly the receptive field: num_conv + 2 convs of 3x3, then pixel shuffle
    return int(params.get("num_conv", 16)) + 2


ARCH = Arch(
    name="srvgg",
    network=SRVGGNetCompact,
    detect=detect,
    infer_params=infer_params,
    scale_param="upscale",
    context=_context,
    blend=0,
    bytes_per_pixel=lambda p: 2_000,  # measured 625-1223 (64 features, fp32, CPU)
)

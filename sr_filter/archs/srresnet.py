"""SRResNet (Ledig et al., 2017, the SRGAN generator): 9x9 head, residual blocks of
conv-BN-PReLU-conv-BN, a long skip, pixel-shuffle x2 stages and a 9x9 output conv.

``norm=False`` drops batch norm (as later work such as EDSR and BasicSR's MSRResNet recommends for SR);
whether a file has it is read back from its keys.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Arch


class ResBlock(nn.Module):
    def __init__(self, num_feat: int, norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(num_feat) if norm else nn.Identity()
        self.act = nn.PReLU()
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(num_feat) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    """SRResNet; the paper's model is ``SRResNet(num_feat=64, num_block=16, upscale=4)``."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4, norm: bool = True) -> None:
        super().__init__()
        if upscale not in (1, 2, 3, 4, 8):
            raise ValueError(f"SRResNet supports scales 1, 2, 3, 4 and 8, not {upscale}")
        self.upscale, self.num_in_ch, self.num_out_ch = upscale, num_in_ch, num_out_ch
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 9, 1, 4)
        self.act_first = nn.PReLU()
        self.body = nn.Sequential(*[ResBlock(num_feat, norm) for _ in range(num_block)])
        self.conv_mid = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn_mid = nn.BatchNorm2d(num_feat) if norm else nn.Identity()
        stages = [3] if upscale == 3 else [2] * {1: 0, 2: 1, 4: 2, 8: 3}[upscale]
        up: list[nn.Module] = []
        for f in stages:
            up += [nn.Conv2d(num_feat, num_feat * f * f, 3, 1, 1), nn.PixelShuffle(f), nn.PReLU()]
        self.upsample = nn.Sequential(*up)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 9, 1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.act_first(self.conv_first(x))
        feat = feat + self.bn_mid(self.conv_mid(self.body(feat)))
        return self.conv_last(self.upsample(feat))


def detect(state_dict: dict[str, torch.Tensor]) -> bool:
    return ("conv_first.weight" in state_dict and "body.0.conv1.weight" in state_dict
            and "conv_mid.weight" in state_dict)


def infer_params(state_dict: dict[str, torch.Tensor]) -> dict:
    first = state_dict["conv_first.weight"]
    num_feat = int(first.shape[0])
    ups = sorted(int(k.split(".")[1]) for k in state_dict if k.startswith("upsample.") and k.endswith(".weight")
                 and state_dict[k].ndim == 4)
    if not ups:
        upscale = 1
    elif state_dict[f"upsample.{ups[0]}.weight"].shape[0] == 9 * num_feat:
        upscale = 3
    else:
        upscale = 2 ** len(ups)
    return {
        "num_in_ch": int(first.shape[1]),
        "num_out_ch": int(state_dict["conv_last.weight"].shape[0]),
        "num_feat": num_feat,
        "num_block": len({k.split(".")[1] for k in state_dict if k.startswith("body.")}),
        "upscale": upscale,
        "norm": "body.0.bn1.weight" in state_dict,
    }


ARCH = Arch(
    name="srresnet",
    network=SRResNet,
    detect=detect,
    infer_params=infer_params,
    scale_param="upscale",
    context=lambda p: 2 * int(p.get("num_block", 16)) + 12,
    # six feature maps at the input's size and two at the output's, with a quarter's margin:
    # measured 8945-9899 (64 features, x4, fp32, CPU; benchmarks/bench_memory.py), above the default 8000
    bytes_per_pixel=lambda p: int(1.25 * 4 * int(p.get("num_feat", 64)) * (6 + 2 * int(p.get("upscale", 4)) ** 2)),
)

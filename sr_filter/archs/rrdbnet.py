"""RRDBNet, the ESRGAN / Real-ESRGAN generator (residual-in-residual dense blocks).

Parameter names match BasicSR's ``basicsr/archs/rrdbnet_arch.py`` (the form Real-ESRGAN's
``RealESRGAN_x4plus.pth``, ``RealESRGAN_x2plus.pth`` and ``*_anime_6B.pth`` use), so those
files load unchanged. x2 and x1 models fold the input with pixel-unshuffle first, as upstream.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import Arch


class ResidualDenseBlock(nn.Module):
    """Five densely connected convs; the output is scaled by 0.2 and added to the input."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Three residual dense blocks inside a scaled residual connection."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator: conv, RRDB trunk with a long skip, two nearest x2 upsampling convs."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet supports scale 1, 2 or 4, not {scale}")
        self.scale = scale
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        fold = {4: 1, 2: 2, 1: 4}[scale]
        self.fold = fold
        self.conv_first = nn.Conv2d(num_in_ch * fold * fold, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, self.fold) if self.fold > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def infer_params(state_dict: dict[str, torch.Tensor]) -> dict:
    """Read the constructor arguments back from a state dict's shapes."""
    first = state_dict["conv_first.weight"]
    num_feat = int(first.shape[0])
    num_out_ch = int(state_dict["conv_last.weight"].shape[0])
    in_folded = int(first.shape[1])
    # folded input channels are num_in_ch * fold**2 (fold 1, 2 or 4): as many in as out where that
    # divides exactly, else the first layout that does (3 in and 1 out had read as a grey x2)
    for num_in_ch in dict.fromkeys((num_out_ch, 3, 1, 4, in_folded)):  # the last always divides (fold 1)
        fold = next((f for f in (1, 2, 4) if num_in_ch * f * f == in_folded), None)
        if fold is not None:
            break
    scale = {1: 4, 2: 2, 4: 1}[fold]
    num_block = len({k.split(".")[1] for k in state_dict if k.startswith("body.")})
    num_grow_ch = int(state_dict["body.0.rdb1.conv1.weight"].shape[0])
    return {
        "num_in_ch": num_in_ch,
        "num_out_ch": num_out_ch,
        "scale": scale,
        "num_feat": num_feat,
        "num_block": num_block,
        "num_grow_ch": num_grow_ch,
    }


def detect(state_dict: dict[str, torch.Tensor]) -> bool:
    """Real-ESRGAN's RRDBNet keys (x1, x2, x4); an x8 ESRGAN in the same layout has a third
    upsampling convolution and is spandrel's (claimed here, it had been refused as "not fitting")."""
    return ("conv_first.weight" in state_dict and "body.0.rdb1.conv1.weight" in state_dict
            and "conv_up3.weight" not in state_dict)


def _context(params: dict) -> int:
    # the theoretical field is hundreds of pixels. No trained RRDB weights are available here;
    # randomly initialised x4plus-sized networks fall below 1/255 at 8-12 LR px of context,
    # which understates trained GAN generators (users see seams at Real-ESRGAN's pad of 10),
    # so 40 plus an 8 px blend stays until it can be measured on real weights
    return 40


def _multiple(params: dict) -> int:
    return {4: 1, 2: 2, 1: 4}[int(params.get("scale", 4))]


ARCH = Arch(
    name="rrdbnet",
    network=RRDBNet,
    detect=detect,
    infer_params=infer_params,
    scale_param="scale",
    context=_context,
    multiple=_multiple,
    bytes_per_pixel=lambda p: 12_000,  # measured 10105-10904 (x4plus settings, fp32, CPU)
)

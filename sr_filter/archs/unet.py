"""U-Net upscaler: the input is first upscaled bilinearly to the output size, then a U-Net with a
ResNet encoder (residual basic blocks, stride-2 downsampling) predicts the missing detail, which is
added to the bilinear image. Working at HR resolution makes it the most expensive generator here,
but its large receptive field suits strongly degraded inputs (the U-Net-based SR studies).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import Arch


class BasicBlock(nn.Module):
    """ResNet basic block without batch norm; a 1x1 projection when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        # the projection's stride is taken by slicing, as a 1x1 stride-2 convolution did: oneDNN
        # 3.12's backward pass of one (torch 2.13, CPU) corrupts memory on channels-last inputs of
        # 8 channels or fewer, which crashed training at num_feat <= 8; the weights are the same
        self.stride = stride
        self.proj = nn.Conv2d(in_ch, out_ch, 1) if (stride != 1 or in_ch != out_ch) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = self.proj(x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x) if self.proj is not None else x
        return F.relu(idt + self.conv2(F.relu(self.conv1(x))))


class DecoderBlock(nn.Module):
    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch + skip_ch, out_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = F.relu(self.conv1(torch.cat([x, skip], 1)))
        return F.relu(self.conv2(x))


class UNetUpscaler(nn.Module):
    """``blocks[i]`` residual blocks at 1/2**i of the output resolution, ``num_feat * 2**i`` channels."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 32,
                 blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2), upscale: int = 4) -> None:
        super().__init__()
        self.upscale, self.num_in_ch, self.num_out_ch = upscale, num_in_ch, num_out_ch
        self.levels = len(blocks)
        self.stem = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        chans = [num_feat * 2**i for i in range(len(blocks))]
        self.enc = nn.ModuleList()
        in_ch = num_feat
        for i, (n, ch) in enumerate(zip(blocks, chans)):
            stage = [BasicBlock(in_ch, ch, 1 if i == 0 else 2)] + [BasicBlock(ch, ch) for _ in range(n - 1)]
            self.enc.append(nn.Sequential(*stage))
            in_ch = ch
        self.dec = nn.ModuleList(DecoderBlock(chans[i + 1], chans[i], chans[i]) for i in reversed(range(len(chans) - 1)))
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        nn.init.zeros_(self.conv_last.weight)  # start as plain bilinear upscaling
        nn.init.zeros_(self.conv_last.bias)
        # the scale cannot be read from conv shapes; keep it in the state dict
        self.register_buffer("upscale_factor", torch.tensor(int(upscale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False) if self.upscale > 1 else x
        feats = []
        h = F.relu(self.stem(base))
        for stage in self.enc:
            h = stage(h)
            feats.append(h)
        for i, dec in enumerate(self.dec):
            h = dec(h, feats[-2 - i])
        return base + self.conv_last(h)


def detect(state_dict: dict[str, torch.Tensor]) -> bool:
    return "stem.weight" in state_dict and "enc.0.0.conv1.weight" in state_dict and "upscale_factor" in state_dict


def infer_params(state_dict: dict[str, torch.Tensor]) -> dict:
    stem = state_dict["stem.weight"]
    levels = len({k.split(".")[1] for k in state_dict if k.startswith("enc.")})
    blocks = [len({k.split(".")[2] for k in state_dict if k.startswith(f"enc.{i}.")}) for i in range(levels)]
    return {
        "num_in_ch": int(stem.shape[1]),
        "num_out_ch": int(state_dict["conv_last.weight"].shape[0]),
        "num_feat": int(stem.shape[0]),
        "blocks": blocks,
        "upscale": int(state_dict["upscale_factor"]),
    }


ARCH = Arch(
    name="unet",
    network=UNetUpscaler,
    detect=detect,
    infer_params=infer_params,
    scale_param="upscale",
    context=lambda p: 48,
    # it works at the output's size: about twelve maps of num_feat channels there, and a sixth more
    # as margin: measured 20441-21926 (32 features, x4, fp32, CPU; benchmarks/bench_memory.py),
    # where the default 8000 had let windows 2.6 times too large run whole
    bytes_per_pixel=lambda p: int(4 * 14 * int(p.get("num_feat", 32)) * int(p.get("upscale", 4)) ** 2),
)

"""EDSR (Lim et al., 2017): residual blocks without batch norm, residual scaling, and a choice of
upsamplers for the ablation that compared them.

Parameter names follow the official EDSR-PyTorch code (``sub_mean``, ``head.0``,
``body.N.body.{0,2}``, ``tail.0.*``, ``tail.1``, ``add_mean``), so its published ``edsr_*.pt``
files load unchanged (they work on 0..255 pixels: ``img_range=255``, read back from ``sub_mean``).

Upsamplers (``upsampler``):
- ``pixelshuffle``: EDSR's own, conv to 4F (9F for x3) channels + pixel shuffle per x2 (x3) stage;
- ``deconv``: one transposed convolution per stage;
- ``nearest`` / ``bilinear``: interpolation + conv per stage;
- ``subpixel``: ESPCN's single conv to ``out_ch * scale**2`` + pixel shuffle, the cheapest; used by
  the small CPU models.

``skip="bicubic"`` / ``"nearest"`` adds the interpolated input to the output (global residual
learning, as in VDSR); the network then only learns the missing detail, which trains faster.
Settings that tensor shapes cannot tell (interpolation mode, skip) are stored as empty marker
buffers so that a state dict alone rebuilds the same network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from .base import Arch

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean, as in EDSR
UPSAMPLERS = ("pixelshuffle", "deconv", "nearest", "bilinear", "subpixel")
SKIPS = ("none", "nearest", "bicubic")


class MeanShift(nn.Conv2d):
    """Adds ``sign * img_range * mean`` per channel (a fixed 1x1 conv, as in EDSR)."""

    def __init__(self, img_range: float, sign: int, channels: int = 3) -> None:
        super().__init__(channels, channels, kernel_size=1)
        mean = torch.tensor(RGB_MEAN[:channels] if channels <= 3 else (0.5,) * channels)
        self.weight.data = torch.eye(channels).view(channels, channels, 1, 1)
        self.bias.data = sign * img_range * mean
        for p in self.parameters():
            p.requires_grad = False


class ResBlock(nn.Module):
    """conv-ReLU-conv, scaled by ``res_scale`` and added to the input (no batch norm)."""

    def __init__(self, num_feat: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


def _stages(scale: int) -> list[int]:
    if scale & (scale - 1) == 0:
        return [2] * int(math.log2(scale))
    if scale == 3:
        return [3]
    raise ValueError(f"EDSR upsamplers support scales 1, 2, 3, 4, 8..., not {scale}")


def _upsampler(kind: str, scale: int, num_feat: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for f in _stages(scale) if scale > 1 else []:
        if kind == "pixelshuffle":
            layers += [nn.Conv2d(num_feat, f * f * num_feat, 3, 1, 1), nn.PixelShuffle(f)]
        elif kind == "deconv":
            # kernel 2f with stride f overlaps neighbouring outputs evenly (4/2/1 for x2, 5/3/1 for x3)
            k, p = (4, 1) if f == 2 else (5, 1)
            layers += [nn.ConvTranspose2d(num_feat, num_feat, k, f, p), nn.ReLU(inplace=True)]
        elif kind in ("nearest", "bilinear"):
            layers += [nn.Upsample(scale_factor=f, mode=kind), nn.Conv2d(num_feat, num_feat, 3, 1, 1),
                       nn.ReLU(inplace=True)]
        else:
            raise ValueError(f"unknown upsampler {kind!r} (one of {', '.join(UPSAMPLERS)})")
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    """EDSR; ``EDSR(num_feat=64, num_block=16)`` is EDSR-baseline, ``(256, 32, res_scale=0.1)`` EDSR."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        upscale: int = 4,
        res_scale: float = 1.0,
        img_range: float = 1.0,
        upsampler: str = "pixelshuffle",
        skip: str = "none",
    ) -> None:
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"unknown upsampler {upsampler!r} (one of {', '.join(UPSAMPLERS)})")
        if skip not in SKIPS:
            raise ValueError(f"unknown skip {skip!r} (one of {', '.join(SKIPS)})")
        self.upscale, self.img_range, self.upsampler, self.skip = upscale, img_range, upsampler, skip
        self.num_in_ch, self.num_out_ch = num_in_ch, num_out_ch
        self.sub_mean = MeanShift(img_range, -1, num_in_ch)
        self.add_mean = MeanShift(img_range, +1, num_out_ch)
        self.head = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1))
        self.body = nn.Sequential(*[ResBlock(num_feat, res_scale) for _ in range(num_block)],
                                  nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        if upsampler == "subpixel":
            self.tail = nn.Sequential(nn.Sequential(), nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1),
                                      nn.PixelShuffle(upscale))
        else:
            self.tail = nn.Sequential(_upsampler(upsampler, upscale, num_feat), nn.Conv2d(num_feat, num_out_ch, 3, 1, 1))
        if skip != "none":
            # start as the plain interpolation: the residual branch begins at zero
            last = self.tail[1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        # markers for what shapes cannot tell (empty tensors, present in the state dict)
        if upsampler == "bilinear":
            self.register_buffer("mark_bilinear", torch.zeros(0))
        if upsampler in ("nearest", "bilinear") and upscale == 3:
            self.register_buffer("mark_x3", torch.zeros(0))
        if res_scale != 1.0 and not (num_feat == 256 and num_block == 32 and res_scale == 0.1):
            self.register_buffer("res_scale", torch.tensor(float(res_scale)))
        if skip != "none":
            self.register_buffer(f"mark_skip_{skip}", torch.zeros(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.sub_mean(x * self.img_range)
        h = self.head(h)
        h = self.body(h) + h
        if self.skip == "none":
            return self.add_mean(self.tail(h)) / self.img_range
        # with a skip the tail predicts a zero-mean residual: no mean to add back
        if self.skip == "bicubic":
            base = F.interpolate(x, scale_factor=self.upscale, mode="bicubic", align_corners=False)
        else:
            base = F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        return self.tail(h) / self.img_range + base

def detect(state_dict: dict[str, torch.Tensor]) -> bool:
    return "head.0.weight" in state_dict and "body.0.body.0.weight" in state_dict and "tail.1.weight" in state_dict


def infer_params(state_dict: dict[str, torch.Tensor]) -> dict:
    """Read EDSR's constructor arguments back from a state dict (official or ours)."""
    head = state_dict["head.0.weight"]
    num_feat, num_in_ch = int(head.shape[0]), int(head.shape[1])
    num_block = len({k.split(".")[1] for k in state_dict if k.startswith("body.") and ".body." in k})
    img_range = float(round(-float(state_dict["sub_mean.bias"][0]) / RGB_MEAN[0], 3)) if "sub_mean.bias" in state_dict else 1.0
    skip = "bicubic" if "mark_skip_bicubic" in state_dict else "nearest" if "mark_skip_nearest" in state_dict else "none"
    tail_keys = sorted(k for k in state_dict if k.startswith("tail.0.") and k.endswith(".weight"))
    last = state_dict["tail.1.weight"]
    if last.ndim == 4 and last.shape[1] == num_feat and last.shape[0] not in (num_in_ch,) and not tail_keys:
        # subpixel: tail.1 maps features to out_ch * scale**2 channels
        num_out_ch = num_in_ch
        upscale = int(round(math.sqrt(last.shape[0] / num_out_ch)))
        upsampler = "subpixel"
    else:
        num_out_ch = int(last.shape[0])
        if not tail_keys:
            upscale, upsampler = 1, "pixelshuffle"
        else:
            w = state_dict[tail_keys[0]]
            n = len(tail_keys)
            if w.shape[-1] in (4, 5):  # transposed conv
                upsampler = "deconv"
                upscale = (2 ** n) if w.shape[-1] == 4 else 3
            elif w.shape[0] == num_feat:
                upsampler = "bilinear" if "mark_bilinear" in state_dict else "nearest"
                upscale = 3 if n == 1 and "mark_x3" in state_dict else 2 ** n
            else:
                upsampler = "pixelshuffle"
                ratio = int(w.shape[0] // num_feat)
                upscale = 3 if ratio == 9 else 2 ** n
    if "res_scale" in state_dict:
        res_scale = float(state_dict["res_scale"])
    else:  # the official full EDSR (256 features, 32 blocks) was trained with 0.1
        res_scale = 0.1 if (num_feat, num_block) == (256, 32) else 1.0
    return {
        "res_scale": res_scale,
        "num_in_ch": num_in_ch,
        "num_out_ch": num_out_ch,
        "num_feat": num_feat,
        "num_block": num_block,
        "upscale": upscale,
        "img_range": img_range,
        "upsampler": upsampler,
        "skip": skip,
    }


def _bytes_per_pixel(p: Mapping) -> int:
    """Peak activation bytes per input pixel, with a quarter's margin: about six feature maps at the
    input's size, then the tail's: the sub-pixel tail writes only the output's channels at the
    output's size, the others hold features there. Measured (benchmarks/bench_memory.py, fp32,
    CPU): 1597-1978 for the built-in photo model (48 features, sub-pixel, x4), 34559-35282 for
    the published EDSR's size (256 features, pixel shuffle, x4); the default of 8000 had refused
    ``tile 0`` on pictures four times the size the built-in model runs whole."""
    feat, scale = int(p.get("num_feat", 64)), int(p.get("upscale", 4))
    tail = 9 * scale**2 if p.get("upsampler", "pixelshuffle") == "subpixel" else 2 * feat * scale**2
    return int(1.25 * 4 * (6 * feat + tail))


ARCH = Arch(
    name="edsr",
    network=EDSR,
    detect=detect,
    infer_params=infer_params,
    scale_param="upscale",
    context=lambda p: 2 * int(p.get("num_block", 16)) + 4,
    bytes_per_pixel=_bytes_per_pixel,
)


"""ImageNet feature networks for perceptual and texture losses: VGG-19 and ResNet-50 rebuilt in plain
torch (torchvision cannot be imported here) with torchvision's parameter names, so torchvision's
published weight files load unchanged.

The weights are fetched on first use through the filter's own checked download code
(:func:`sr_filter.weights.fetch_url`: cache folder, sha256 pin, atomic write, file lock).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..backbones import PUBLISHED
from ..errors import DownloadError, WeightsFormatError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- VGG-19

_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def vgg19_layer_names() -> dict[str, int]:
    """``conv3_4`` / ``relu3_4`` / ``pool3`` -> index in torchvision's ``vgg19().features``."""
    names, block, conv, idx = {}, 1, 1, 0
    for v in _VGG19_CFG:
        if v == "M":
            names[f"pool{block}"] = idx
            block, conv, idx = block + 1, 1, idx + 1
        else:
            names[f"conv{block}_{conv}"] = idx
            names[f"relu{block}_{conv}"] = idx + 1
            conv, idx = conv + 1, idx + 2
    return names


class VGG19Features(nn.Module):
    """``features`` of torchvision's VGG-19, truncated after the deepest requested layer."""

    def __init__(self, last_index: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in _VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = int(v)
        self.features = nn.Sequential(*layers[: last_index + 1])


# ----------------------------------------------------------------------------- ResNet-50


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.downsample = (nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
                           if stride != 1 or in_ch != out_ch else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet50Features(nn.Module):
    """torchvision's ResNet-50 without the classifier; named outputs ``conv1``, ``layer1``..``layer4``."""

    STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")

    def __init__(self, last_stage: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_ch = 64
        self.n_stages = last_stage
        for i, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))[:last_stage], 1):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(in_ch, width, stride if b == 0 else 1))
                in_ch = width * 4
            setattr(self, f"layer{i}", nn.Sequential(*layer))

    def forward_named(self, x: torch.Tensor, wanted: set[str]) -> dict[str, torch.Tensor]:
        out = {}
        x = F.relu(self.bn1(self.conv1(x)))
        out["conv1"] = x
        x = F.max_pool2d(x, 3, 2, 1)
        for i in range(1, self.n_stages + 1):
            x = getattr(self, f"layer{i}")(x)
            out[f"layer{i}"] = x
        return {k: v for k, v in out.items() if k in wanted}


# ----------------------------------------------------------------------------- weights


def resolve_weights(net: str, path: str = "", sha256: str = "") -> Path:
    """A local file with the published ImageNet weights of ``net``.

    ``path``: use this file (checked against torchvision's hash prefix) instead of downloading.
    ``sha256``: the full pin to download with, for entries this version has no full pin for.
    """
    import hashlib

    pub = PUBLISHED[net]
    if path:
        p = Path(os.path.expanduser(path))
        if not p.is_file():
            raise DownloadError(f"[loss] feature_weights: {p} does not exist")
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        if not digest.startswith(pub.sha256_prefix) and not (sha256 and digest == sha256.lower()):
            raise DownloadError(f"{p} is not torchvision's {net} file (sha256 {digest[:8]}..., expected "
                                f"{pub.sha256_prefix}...); download {pub.url}")
        return p
    pin = (sha256 or pub.sha256 or "").lower()
    if not pin:
        raise DownloadError(
            f"this version has no full sha256 pin for {pub.url}; download it once, check that its sha256 "
            f"starts with {pub.sha256_prefix}, and set [loss] feature_sha256 = \"<hash>\" (or feature_weights = "
            "\"/path/to/file\") in the config")
    if not pin.startswith(pub.sha256_prefix):
        raise DownloadError(f"the sha256 {pin[:8]}... given for {net} does not match torchvision's published "
                            f"prefix {pub.sha256_prefix}")
    from ..errors import NetworkUnavailableError, OfflineError
    from ..weights import fetch_url

    name = pub.file
    copy = f'name a copy in the config: [loss] feature_weights = "/path/to/{name}"'
    try:
        return fetch_url(pub.url, pin, name, pub.size, instead=copy)
    except OfflineError as exc:  # as a plain DownloadError: the command line would add its upscaling
        # advice ("a built-in model runs without the network"), which no loss network has
        raise DownloadError(str(exc)) from None
    except NetworkUnavailableError as exc:
        raise DownloadError(f"{str(exc).rstrip('.')}; or {copy}") from None


def load_published(module: nn.Module, file: Path) -> None:
    """Load the tensors of a torchvision file that ``module`` has (the classifier is dropped)."""
    try:
        sd = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise WeightsFormatError(f"cannot read {file}: {exc}") from None
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise WeightsFormatError(f"{file} lacks {len(missing)} tensors of the feature network (e.g. {missing[0]})")
    module.load_state_dict({k: sd[k] for k in own})


# ----------------------------------------------------------------------------- the extractor


class FeatureExtractor(nn.Module):
    """Frozen ImageNet network returning the named layers' activations of a [0, 1] RGB batch.

    ``pretrained=False`` keeps random weights (for tests and for experiments with random features).
    """

    def __init__(self, net: str = "vgg19", layers: tuple[str, ...] = ("relu5_4",), pretrained: bool = True,
                 weights_path: str = "", sha256: str = "") -> None:
        super().__init__()
        if net not in PUBLISHED:
            raise ValueError(f"unknown feature network {net!r} (one of {', '.join(PUBLISHED)})")
        self.net_name, self.layers = net, tuple(layers)
        if net == "vgg19":
            names = vgg19_layer_names()
            unknown = [n for n in layers if n not in names]
            if unknown:
                raise ValueError(f"unknown VGG-19 layer(s) {unknown}; use names like relu2_2, conv5_4, pool3")
            self.index = {n: names[n] for n in layers}
            self.net: nn.Module = VGG19Features(max(self.index.values()))
        else:
            unknown = [n for n in layers if n not in ResNet50Features.STAGES]
            if unknown:
                raise ValueError(f"unknown ResNet-50 layer(s) {unknown}; use {', '.join(ResNet50Features.STAGES)}")
            self.net = ResNet50Features(max(ResNet50Features.STAGES.index(n) for n in layers))
        if pretrained:
            load_published(self.net, resolve_weights(net, weights_path, sha256))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "FeatureExtractor":
        super().train(mode)
        self.net.eval()  # batch-norm statistics stay frozen
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std
        if self.net_name == "vgg19":
            out, wanted = {}, {v: k for k, v in self.index.items()}
            for i, layer in enumerate(self.net.features):
                x = layer(x)
                if i in wanted:
                    out[wanted[i]] = x
            return out
        return self.net.forward_named(x, set(self.layers))


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """(N, C, C) Gram matrices of (N, C, H, W) features, normalised by C*H*W."""
    n, c, h, w = f.shape
    v = f.reshape(n, c, h * w)
    return v @ v.transpose(1, 2) / (c * h * w)


def gram_loss(fs: torch.Tensor, fh: torch.Tensor, patch: int = 16) -> torch.Tensor:
    """Texture loss of EnhanceNet: MSE of Gram matrices computed on ``patch`` x ``patch`` feature tiles.

    Local Gram matrices match texture statistics region by region instead of over the whole image.
    """
    n, c, h, w = fs.shape
    p = max(1, min(patch, h, w))
    hh, ww = h - h % p, w - w % p

    def tiles(f: torch.Tensor) -> torch.Tensor:
        f = f[:, :, :hh, :ww].reshape(n, c, hh // p, p, ww // p, p)
        return f.permute(0, 2, 4, 1, 3, 5).reshape(-1, c, p, p)

    return F.mse_loss(gram_matrix(tiles(fs)), gram_matrix(tiles(fh)))

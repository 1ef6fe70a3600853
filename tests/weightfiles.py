"""Weights files made for tests from real ones: the same network, written so that it misbehaves
in a way real files do (overflow in fp16), with the same pixels in fp32."""

from __future__ import annotations

from pathlib import Path

import torch

#: the factor the hidden activations are scaled by: a power of two (every fp32 product and sum
#: is scaled exactly, so fp32 pixels stay bit for bit the same), large enough to pass fp16's
#: largest number (65504) for activations of about one
OVERFLOW_FACTOR = 2.0 ** 17


def fp16_overflowing(src: Path, dst: Path, factor: float = OVERFLOW_FACTOR) -> Path:
    """An SRVGGNetCompact weights file (``body.N`` convolutions and PReLUs) whose hidden
    activations are ``factor`` times the original's: the first convolution's weight and bias and
    every inner bias scaled up (PReLU is positively homogeneous, so it carries the factor), the
    last convolution's weight scaled down. fp32 gives the same output; fp16 gives Inf, as
    networks with large activations do on GPUs (black or speckled tiles in other tools)."""
    checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    params = checkpoint["params"] if "params" in checkpoint else checkpoint
    convs = sorted({int(k.split(".")[1]) for k, v in params.items() if k.endswith(".weight") and v.dim() == 4})
    first, last = convs[0], convs[-1]
    for index in convs:
        weight, bias = f"body.{index}.weight", f"body.{index}.bias"
        if index == first:
            params[weight] = params[weight] * factor
            params[bias] = params[bias] * factor
        elif index == last:
            params[weight] = params[weight] / factor
        else:
            params[bias] = params[bias] * factor
    torch.save(checkpoint, dst)
    return dst

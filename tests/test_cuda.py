"""What only a CUDA GPU can show: fp16 and fp32 pixels there against the CPU's, the NaN/Inf
fallback and the out-of-memory split on a real device. Every test here is skipped on a machine
without CUDA (CI's and the development machines have none); the one test that runs everywhere
checks the TF32 switch with a stand-in device, since a CUDA device cannot exist here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sr_filter import Upscaler
from sr_filter.backends.pytorch import _full_fp32

from .conftest import ROOT

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

MODELS = ("sr-cartoon-x4", "sr-photo-x4", "realesr-animevideov3")


def test_fp32_turns_tf32_off_on_cuda_only_and_sets_it_back():
    """cuDNN runs fp32 convolutions in TF32 by default on Ampere and newer: fp32 was not fp32.
    A stand-in object plays the CUDA device (none exists here); only torch's flags are read."""

    class StandIn:
        type = "cuda"

    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = (conv.fp32_precision, matmul.fp32_precision)
    with _full_fp32(StandIn(), torch.float32):
        assert (conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    assert (conv.fp32_precision, matmul.fp32_precision) == before
    for device, dtype in ((StandIn(), torch.float16), (torch.device("cpu"), torch.float32)):
        with _full_fp32(device, dtype):
            assert (conv.fp32_precision, matmul.fp32_precision) == before
    with pytest.raises(KeyError), _full_fp32(StandIn(), torch.float32):
        raise KeyError("set back on errors too")
    assert (conv.fp32_precision, matmul.fp32_precision) == before


def _set14(set14, count: int = 4) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB"))[:160, :160].copy() for p in sorted(set14.glob("*.png"))[:count]]


@cuda
@pytest.mark.parametrize("model", MODELS)
def test_fp16_on_cuda_is_close_to_fp32_without_fallbacks(model, set14):
    """Black or speckled fp16 output is the top complaint about other tools; these bounds are
    the first measurement's, to be confirmed on the first GPU run."""
    half = Upscaler(model, device="cuda", precision="fp16", tile=0)
    full = Upscaler(model, device="cuda", precision="fp32", tile=0)
    for picture in _set14(set14):
        diff = np.abs(half.upscale(picture).astype(int) - full.upscale(picture).astype(int))
        assert diff.max() <= 8 and diff.mean() <= 0.35, (model, diff.max(), diff.mean())
    assert half.fallbacks == 0


@cuda
@pytest.mark.parametrize("model", MODELS)
def test_fp32_on_cuda_gives_the_cpu_pixels(model, set14):
    """With TF32 off, fp32 on the GPU is fp32: within a level of the CPU (sums ordered otherwise)."""
    gpu = Upscaler(model, device="cuda", precision="fp32", tile=0)
    cpu = Upscaler(model, device="cpu", precision="fp32", tile=0, backend="torch")
    for picture in _set14(set14, 2):
        diff = np.abs(gpu.upscale(picture).astype(int) - cpu.upscale(picture).astype(int))
        assert diff.max() <= 1, (model, diff.max())


@cuda
def test_an_fp16_overflow_on_cuda_is_re_run_in_fp32(set14, tmp_path):
    from .weightfiles import fp16_overflowing

    weights = fp16_overflowing(ROOT / "sr_filter" / "builtin" / "sr-cartoon-x4.pth", tmp_path / "big.pth")
    picture = _set14(set14, 1)[0]
    half = Upscaler(str(weights), device="cuda", precision="fp16", tile=64)
    expected = Upscaler("sr-cartoon-x4", device="cuda", precision="fp32", tile=64).upscale(picture)
    out = half.upscale(picture)
    assert half.fallbacks >= 1
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


@cuda
def test_out_of_memory_on_cuda_splits_the_window(set14):
    """A window too large for the memory allowed is split, not a crash; the result is the small
    tiles' within a few levels."""
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, 1.5e9 / total))
    try:
        picture = np.asarray(Image.open(sorted(set14.glob("*.png"))[0]).convert("RGB"))
        picture = np.tile(picture, (4, 4, 1))[:1536, :1536]
        big = Upscaler("realesr-animevideov3", device="cuda", precision="fp16", tile=1536).upscale(picture)
        small = Upscaler("realesr-animevideov3", device="cuda", precision="fp16", tile=256).upscale(picture)
        assert np.abs(big.astype(int) - small.astype(int)).max() <= 3
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()

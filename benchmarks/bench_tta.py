"""Test-time augmentation (8 flips/rotations averaged): PSNR-Y gain and time cost.

Quality: Set5 and Set14 at x4 (the published protocol of ``sr-filter eval``), the model with and
without TTA. Time: one Set5 image (baby, 128x128 LR), whole-image inference, min of 5 repeats
each, the two interleaved, in this one run.

    python benchmarks/bench_tta.py [--model sr-photo-x4] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _machine import cpu_facts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sr_filter.convert import from_float  # noqa: E402
from sr_filter.datasets import read_rgb  # noqa: E402
from sr_filter.evaluation import evaluate_folder  # noqa: E402
from sr_filter.imageops import make_lr  # noqa: E402
from sr_filter.upscaler import Upscaler  # noqa: E402

BENCH = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared")) / "data" / "benchmarks"


def _to_array(lr: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 image as the (1, 3, H, W) float32 array in [0, 1] that Upscaler.run takes."""
    return np.ascontiguousarray(lr.transpose(2, 0, 1)[None], dtype=np.float32) / 255


def _to_uint8(y: np.ndarray) -> np.ndarray:
    """Upscaler.run's (1, 3, H, W) float32 result as an HxWx3 uint8 image (the one rounding rule)."""
    return from_float(y[0].transpose(1, 2, 0), np.uint8)


def upscaler(model: str, tta: bool) -> Upscaler:
    return Upscaler(model, device="cpu", precision="fp32", tile=0, backend="torch", tta=tta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sr-photo-x4")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {}
    for tta in (False, True):
        up = upscaler(args.model, tta)
        run = lambda lr, up=up: _to_uint8(up.run(_to_array(lr)))  # noqa: E731
        rows[tta] = [evaluate_folder(run, BENCH / s, up.scale) for s in ("Set5", "Set14")]
    lr = _to_array(make_lr(read_rgb(BENCH / "Set5" / "baby.png"), 4))
    ups = {tta: upscaler(args.model, tta) for tta in (False, True)}
    times = dict.fromkeys(ups, float("inf"))
    for _ in range(5):  # plain and TTA interleaved, so load on a shared machine hits both
        for tta, up in ups.items():
            t = time.perf_counter()
            up.run(lr)
            times[tta] = min(times[tta], time.perf_counter() - t)
    print(f"CPU: {cpu_facts()}")
    print(f"{args.model} x4, PSNR-Y (dB) / SSIM-Y, {torch.get_num_threads()} threads")
    print(f"{'set':<6} {'plain':>16} {'tta':>16} {'gain dB':>8}")
    for plain, aug in zip(rows[False], rows[True]):
        print(f"{plain.dataset:<6} {plain.psnr:>8.3f}/{plain.ssim:.4f} {aug.psnr:>8.3f}/{aug.ssim:.4f} {aug.psnr - plain.psnr:>+8.3f}")
    print(f"time, baby.png {tuple(lr.shape[-2:])} LR, min of 5: plain {times[False]:.3f} s, "
          f"tta {times[True]:.3f} s, ratio {times[True] / times[False]:.2f}x")


if __name__ == "__main__":
    main()

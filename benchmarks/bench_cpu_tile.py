"""The CPU tile size: speed per pixel against tile edge, for ``tile=auto`` on the CPU.

Run by hand:  python benchmarks/bench_cpu_tile.py [--repeats 3] [--tiles 128 192 256 384 512]

For each model and tile edge T it times one window of (T + 2 * context)^2 pixels through the torch
backend (min of ``--repeats``), and prints seconds per window, seconds per megapixel of window
pixels (does the convolution get faster per pixel on larger windows?), and seconds per megapixel
of image, i.e. per core pixel of an interior tile, with its overhead over whole-image inference
(the overlap recomputed by neighbouring windows). Border tiles overlap less, so real images pay
less than the interior column. docs/performance.md ("CPU tile size") holds a run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared"))
MODELS = ["sr-cartoon-x4", "sr-photo-x4", str(SHARED / "weights" / "upstream" / "realesr-animevideov3.pth")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiles", type=int, nargs="+", default=[128, 192, 256, 384, 512])
    parser.add_argument("--models", nargs="+", default=MODELS)
    args = parser.parse_args()
    from sr_filter.backends.pytorch import TorchBackend
    from sr_filter.models import load_model

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    print(f"{'model':24s} {'tile':>5s} {'window':>7s} {'s/window':>9s} {'s/MP win':>9s} {'s/MP img':>9s} {'overlap':>8s}")
    for name in args.models:
        model = load_model(name, offline=True)
        backend = TorchBackend(model, torch.device("cpu"), torch.float32)
        context = model.facts.context
        rng = np.random.default_rng(0)
        backend.run(rng.random((1, 3, 64, 64), dtype=np.float32))  # warm-up
        for tile in args.tiles:
            edge = tile + 2 * context
            x = rng.random((1, 3, edge, edge), dtype=np.float32)
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                backend.run(x)
                best = min(best, time.perf_counter() - start)
            label = Path(name).stem[:24]
            overlap = (edge / tile) ** 2 - 1
            print(f"{label:24s} {tile:5d} {edge:7d} {best:9.2f} {best / edge**2 * 1e6:9.1f} "
                  f"{best / tile**2 * 1e6:9.1f} {overlap:8.0%}", flush=True)


if __name__ == "__main__":
    main()

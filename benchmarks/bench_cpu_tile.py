"""The CPU tile size: speed per pixel against tile edge, for ``tile=auto`` on the CPU.

Run by hand:  python benchmarks/bench_cpu_tile.py [--repeats 5] [--tiles 128 192 256 384 512]
              python benchmarks/bench_cpu_tile.py images [--backend openvino] [--tiles auto 256 384 512 0]

For each model and tile edge T it times one window of (T + 2 * context)^2 pixels through the torch
backend (min of ``--repeats``, the tile edges interleaved), and prints seconds per window, seconds per megapixel of window
pixels (does the convolution get faster per pixel on larger windows?), and seconds per megapixel
of image, i.e. per core pixel of an interior tile, with its overhead over whole-image inference
(the overlap recomputed by neighbouring windows). Border tiles overlap less, so real images pay
less than the interior column. docs/performance.md ("CPU tile size") holds a run.

``images`` times whole images instead, through ``Upscaler`` with each tile setting (border
windows, blending and writing included; the settings interleaved, best of ``--repeats``), and
the time from the start to the first progress report, which is what a user waits before the
bar moves.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from _machine import cpu_facts, description

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared"))
MODELS = ["sr-cartoon-x4", "sr-photo-x4", str(SHARED / "weights" / "upstream" / "realesr-animevideov3.pth")]


def main() -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiles", nargs="+", default=["128", "192", "256", "384", "512"],
                        help="tile edges; images mode also takes auto (the edge it picks is printed)")
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--backend", default="openvino", help="images mode: auto, torch or openvino")
    parser.add_argument("mode", nargs="?", default="windows", choices=["windows", "images"])
    args = parser.parse_args()
    if args.mode == "images":
        return images(args)
    from sr_filter.backends.pytorch import TorchBackend
    from sr_filter.models import load_model

    print(f"CPU: {cpu_facts()}; torch {torch.__version__}, {torch.get_num_threads()} threads; min of {args.repeats}")
    print(f"{'model':24s} {'tile':>5s} {'window':>7s} {'s/window':>9s} {'s/MP win':>9s} {'s/MP img':>9s} {'overlap':>8s}")
    for name in args.models:
        model = load_model(name, offline=True)
        backend = TorchBackend(model, torch.device("cpu"), torch.float32)
        context = model.facts.context
        rng = np.random.default_rng(0)
        backend.run(rng.random((1, 3, 64, 64), dtype=np.float32))  # warm-up
        windows = {tile: rng.random((1, 3, tile + 2 * context, tile + 2 * context), dtype=np.float32) for tile in map(int, args.tiles)}
        times: dict[int, float] = dict.fromkeys(windows, float("inf"))
        for _ in range(args.repeats):  # the tile edges interleaved, so load on a shared machine hits all of them
            for tile, x in windows.items():
                start = time.perf_counter()
                backend.run(x)
                times[tile] = min(times[tile], time.perf_counter() - start)
        for tile, best in times.items():
            edge = tile + 2 * context
            label = Path(name).stem[:24]
            overlap = (edge / tile) ** 2 - 1
            print(f"{label:24s} {tile:5d} {edge:7d} {best:9.2f} {best / edge**2 * 1e6:9.1f} "
                  f"{best / tile**2 * 1e6:9.1f} {overlap:8.0%}", flush=True)


def images(args: argparse.Namespace) -> None:
    """Whole images per tile setting: wall and CPU seconds, and seconds to the first progress report."""
    from bench_tiling import standard_inputs

    from sr_filter import Upscaler

    print(f"CPU: {cpu_facts()}; backend {args.backend}, fp32, best of {args.repeats}, tile settings interleaved")
    print(f"{'model':24s} {'input':15s} {'tile':>10s} {'windows':>8s} {'wall s':>7s} {'CPU s':>7s} {'first report s':>15s}")
    inputs = standard_inputs()
    for name in args.models:
        ups = {tile: Upscaler(name, device="cpu", tile=tile if tile == "auto" else int(tile), backend=args.backend, offline=True)
               for tile in args.tiles}
        for label, image in inputs.items():
            ups[args.tiles[0]].upscale(image[:64, :64])  # warm-up
            best = {tile: [float("inf")] * 3 for tile in args.tiles}
            for _ in range(args.repeats):
                for tile, up in ups.items():
                    reports: list[float] = []
                    start, cpu = time.perf_counter(), time.process_time()
                    up.upscale(image, progress=lambda d, t: reports.append(time.perf_counter()))
                    run = [time.perf_counter() - start, time.process_time() - cpu, reports[0] - start]
                    best[tile] = [min(a, b) for a, b in zip(best[tile], run)] + [len(reports)]
            for tile, (wall, cpu_s, first, count) in best.items():
                shown = f"auto={ups[tile]._tile_for(*image.shape[:2])}" if tile == "auto" else tile
                print(f"{Path(name).stem[:24]:24s} {label:15s} {shown:>10s} {count:8d} {wall:7.2f} {cpu_s:7.2f} {first:15.2f}", flush=True)


if __name__ == "__main__":
    main()

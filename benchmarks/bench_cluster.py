"""The cluster path: throughput with 1 and 2 workers, per-file overhead against one machine, and
the per-frame time that the sizing note in docs/cluster.md starts from.

Run by hand (needs ``pip install -e '.[cluster]'``):

    python benchmarks/bench_cluster.py                       # 24 files of 64x64, 5 repeats
    python benchmarks/bench_cluster.py --files 48 --size 128 --frame-repeats 3

One machine: the plain CLI's own per-file step (``cli.upscale.process``: read, upscale, encode,
atomic write) in a loop with the model loaded once and warmed up, at 1 torch thread (what one
cluster worker runs; the overhead is measured against it) and at torch's default (all cores). Cluster: a local Ray
cluster of ``--cpus`` cores; each job is a fresh ``sr_filter.cluster.upscale_folder`` call, the
two worker counts interleaved per repeat so the load of a shared machine hits both. A job's wall
time includes starting the workers (each loads the model); the steady rate is measured between
the first and the last file that finished, which is what a long job sees. Best of ``--repeats``.
The frame line is one 854x480 frame (480p) through ``--frame-model`` on the CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import cpu_facts, description

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared"))


def make_inputs(folder: Path, count: int, size: int) -> None:
    """Crops of Set14's baboon (real texture), or noise when the shared data is absent. For a
    size near or above the picture's (500x480) the picture is mirrored at its edges up to the
    size plus a margin, so that any size works and the crops still differ."""
    from PIL import Image

    source = SHARED / "data" / "benchmarks" / "Set14" / "baboon.png"
    base = np.asarray(Image.open(source).convert("RGB")) if source.exists() else np.random.default_rng(0).integers(0, 256, (480, 500, 3), dtype=np.uint8)
    need = size + 64  # room for the crops to move
    while base.shape[0] < need or base.shape[1] < need:  # mirrored copies, as often as a large size needs
        base = np.pad(base, ((0, max(0, min(need - base.shape[0], base.shape[0] - 1))),
                             (0, max(0, min(need - base.shape[1], base.shape[1] - 1))), (0, 0)), mode="reflect")
    for i in range(count):
        y, x = (i * 37) % (base.shape[0] - size + 1), (i * 53) % (base.shape[1] - size + 1)
        Image.fromarray(base[y : y + size, x : x + size]).save(folder / f"crop{i:03d}.png")


def plain(src: Path, dst: Path, model: str, tile: int, threads: int) -> float:
    """Seconds per file of the single-machine CLI's step, model loaded once and warmed up."""
    import torch

    from sr_filter.cli.upscale import Job, process
    from sr_filter.upscaler import Upscaler

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    upscaler = Upscaler(model, device="cpu", tile=tile)
    files = sorted(src.glob("*.png"))
    dst.mkdir()
    process(upscaler, Job(files[0], dst / "warm-up.png"), scale=None, fmt=None, quality=None, overwrite=False, progress=None)
    started = time.perf_counter()
    for file in files:
        process(upscaler, Job(file, dst / file.name), scale=None, fmt=None, quality=None, overwrite=False, progress=None)
    torch.set_num_threads(saved)
    return (time.perf_counter() - started) / len(files)


def cluster(src: Path, dst: Path, model: str, tile: int, workers: int) -> tuple[float, float]:
    """(job wall seconds, steady files per second) of one cluster job."""
    from sr_filter.cluster import upscale_folder

    stamps: list[float] = []
    started = time.perf_counter()
    summary = upscale_folder(str(src), str(dst), model=model, tile=tile, device="cpu", workers=workers,
                             on_event=lambda e: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - started
    assert summary.done == len(stamps) and not summary.failed, summary
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else float("nan")
    return wall, steady


def frame_seconds(model: str, repeats: int) -> tuple[float, float]:
    """Best (wall, CPU) seconds for one 480p frame on one core (what one CPU worker does). On a
    shared machine the CPU time is the fairer figure: it leaves out waiting for the core."""
    import torch

    from sr_filter.upscaler import Upscaler

    torch.set_num_threads(1)
    upscaler = Upscaler(model, device="cpu", tile="auto")
    frame = np.random.default_rng(1).integers(0, 256, (480, 854, 3), dtype=np.uint8)
    wall = cpu = float("inf")
    for _ in range(repeats):
        started, used = time.perf_counter(), time.process_time()
        upscaler.upscale_array(frame)
        wall, cpu = min(wall, time.perf_counter() - started), min(cpu, time.process_time() - used)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--model", default="sr-cartoon-x4")
    parser.add_argument("--tile", type=int, default=32)
    parser.add_argument("--frame-model", default="realesr-animevideov3")
    parser.add_argument("--frame-repeats", type=int, default=1, help="0 = skip the 480p frame")
    args = parser.parse_args()

    import ray
    import torch

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        src = work / "in"
        src.mkdir()
        make_inputs(src, args.files, args.size)
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        cores = torch.get_num_threads()
        plain_s, plain_all, walls, rates = [], [], {1: [], 2: []}, {1: [], 2: []}
        for repeat in range(args.repeats):
            plain_s.append(plain(src, work / f"plain{repeat}", args.model, args.tile, 1))
            plain_all.append(plain(src, work / f"plain-all{repeat}", args.model, args.tile, cores))
            for workers in (1, 2):
                wall, rate = cluster(src, work / f"cluster{workers}-{repeat}", args.model, args.tile, workers)
                walls[workers].append(wall)
                rates[workers].append(rate)
        ray.shutdown()
        per_file = min(plain_s)
        print(f"# CPU: {cpu_facts()}; {platform.node()}, load {os.getloadavg()[0]:.1f}, "
              f"torch {torch.__version__}, ray {ray.__version__}; workers run 1 torch thread each")
        print(f"# {args.files} files of {args.size}x{args.size}, {args.model}, tile {args.tile}, best of {args.repeats}")
        print(f"{'path':<28}{'job wall s':>12}{'files/s':>10}{'s/file':>10}{'vs plain':>10}")
        print(f"{'plain CLI step, 1 thread':<28}{per_file * args.files:>12.2f}{1 / per_file:>10.2f}{per_file:>10.4f}{1.0:>10.2f}")
        every = min(plain_all)
        print(f"{f'plain CLI step, {cores} threads':<28}{every * args.files:>12.2f}{1 / every:>10.2f}{every:>10.4f}{per_file / every:>10.2f}")
        for workers in (1, 2):
            rate = max(rates[workers])
            steady = f"{rate:>10.2f}{1 / rate:>10.4f}{rate * per_file:>10.2f}" if rate == rate else f"{'-':>10}" * 3
            print(f"{f'cluster, {workers} worker(s)':<28}{min(walls[workers]):>12.2f}{steady}")
        if args.files > 1:
            overhead = 1 / max(rates[1]) - per_file
            print(f"per-file overhead of the cluster path (1 worker, steady): {overhead * 1000:+.1f} ms; "
                  f"2 workers / 1 worker: {max(rates[2]) / max(rates[1]):.2f}x")
        else:
            print("(the steady rate is taken between the first and the last file: it needs --files 2 or more)")
        if args.frame_repeats:
            wall, cpu = frame_seconds(args.frame_model, args.frame_repeats)
            print(f"480p frame (854x480 -> x4), {args.frame_model}, CPU, 1 thread: {wall:.2f} s wall, {cpu:.2f} s CPU per frame (best of {args.frame_repeats})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""One video on the cluster: segments/s and frames/s with 1 and 2 workers against one machine.

Run by hand (needs ``pip install -e '.[cluster]'``):

    python benchmarks/bench_cluster_video.py                      # 96 frames of 64x48, 8 segments, 5 repeats
    python benchmarks/bench_cluster_video.py --frames 240 --size 160x120 --segment 24

One machine: ``sr_filter.video.upscale_video`` with the model loaded once and warmed up, one torch
thread (what one cluster worker runs), plain and ``resume=True`` cut into segments of ``--segment``
frames like the cluster's (``upscale_video`` takes no segment length, so the script sets
``sr_filter.video.resume.SEGMENT_FRAMES``, 48 otherwise, as the tests do). Cluster: a local Ray cluster of ``--cpus`` cores; each job is a fresh
``sr_filter.cluster.upscale_video`` call (workers start and load the model each time, the two
worker counts interleaved per repeat). "steady" is the segment rate between the first and the
last segment that finished, which is what a long video sees. Best of ``--repeats``.
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

from _machine import cpu_facts, description

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def single(clip: Path, folder: Path, model: str, tile: int, resume: bool, segment: int) -> float:
    """Wall seconds of one single-machine run, model loaded and warmed up beforehand; with
    ``resume`` its segments are ``segment`` frames long (up to the next keyframe), as the cluster's."""
    import torch

    from sr_filter.upscaler import Upscaler
    from sr_filter.video import resume as resumable
    from sr_filter.video import upscale_video

    resumable.SEGMENT_FRAMES = segment

    torch.set_num_threads(1)
    upscaler = Upscaler(model, device="cpu", tile=tile)
    target = folder / f"single-{resume}-{time.monotonic_ns()}.mp4"
    upscale_video(clip, folder / "warm-up.mp4", upscaler=upscaler, frames="0:2", overwrite=True)
    started = time.perf_counter()
    upscale_video(clip, target, upscaler=upscaler, resume=resume)
    return time.perf_counter() - started


def cluster(clip: Path, folder: Path, model: str, tile: int, workers: int, segment: int) -> tuple[float, float, int]:
    """(job wall seconds, steady seconds per segment, segments) of one cluster job."""
    from sr_filter.cluster import upscale_video

    finished: list[float] = []
    target = folder / f"cluster-{workers}-{time.monotonic_ns()}.mp4"
    started = time.perf_counter()
    upscale_video(clip, target, model=model, tile=tile, device="cpu", workers=workers, segment_frames=segment,
                  on_event=lambda event: finished.append(time.perf_counter()))
    wall = time.perf_counter() - started
    steady = (finished[-1] - finished[0]) / (len(finished) - 1) if len(finished) > 1 else wall
    return wall, steady, len(finished)


def main() -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--segment", type=int, default=12, help="frames per segment (keyframes every this many)")
    parser.add_argument("--model", default="sr-cartoon-x4")
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import ray

    sys.path.insert(0, str(ROOT / "tests"))
    from videos import make_clip

    width, height = map(int, args.size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-video-"))
    try:
        clip = make_clip(folder / "clip.mp4", frames=args.frames, size=(width, height), gop=args.segment)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        rows: dict[str, list] = {"one machine, 1 thread": [], "one machine, resumable segments": [], "cluster, 1 worker": [], "cluster, 2 workers": []}
        for _ in range(args.repeats):
            rows["one machine, 1 thread"].append((single(clip, folder, args.model, args.tile, False, args.segment), None, None))
            rows["one machine, resumable segments"].append((single(clip, folder, args.model, args.tile, True, args.segment), None, None))
            for workers in (1, 2):
                rows[f"cluster, {workers} worker{'s' if workers > 1 else ''}"].append(cluster(clip, folder, args.model, args.tile, workers, args.segment))
        ray.shutdown()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = min(wall for wall, _, _ in rows["one machine, 1 thread"])
    print(f"CPU: {cpu_facts()}")
    print(f"{args.frames} frames of {args.size}, segments of {args.segment} (cluster and resume=True alike), {args.model}, tile {args.tile}, "
          f"best of {args.repeats}, {platform.node()} load {os.getloadavg()[0]:.1f}")
    print("| path | job wall s | frames/s (job) | steady s/segment | segments/s (steady) | job wall vs one machine |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in rows.items():
        wall = min(r[0] for r in runs)
        steady = min((r[1] for r in runs if r[1] is not None), default=None)
        cells = [f"{wall:.2f}", f"{args.frames / wall:.1f}", f"{steady:.3f}" if steady else "-", f"{1 / steady:.2f}" if steady else "-", f"{wall / base:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

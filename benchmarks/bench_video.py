"""Video throughput: frames per second of ``upscale_video`` and its overhead over the same frames
upscaled as images (``Upscaler.upscale_array`` on frames already decoded, nothing encoded) and as
batches (``Upscaler.upscale_batch``, the same frames per pass as the video path).

Run by hand:

    python benchmarks/bench_video.py                         # 320x240 -> 1280x960, sr-cartoon-x4, CPU
    python benchmarks/bench_video.py --size 640x360 --model realesr-animevideov3 --device cuda --frames 48
    python benchmarks/bench_video.py --batches 1,2,4,8        # frames per network pass (upscale_batch)

The clip is made here (a moving pattern, H.264, with an AAC track). Each mode runs ``--repeats``
times, the modes interleaved so load on a shared machine hits both; the table shows the best
run of each. Overhead = video time / image time - 1 (target <= 10%); the CPU-time column (all
threads of this process) is less sensitive to other processes than wall time, and shows what
decoding, colour conversion and encoding cost on top of the network when no core is left idle.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_facts, description

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--model", default="sr-cartoon-x4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", default="0")
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--batch", type=int, default=None, help="frames per network pass in upscale_video")
    parser.add_argument("--batches", default=None, help="compare frames per pass instead, e.g. 1,2,4,8")
    args = parser.parse_args()

    import av

    from sr_filter.upscaler import Upscaler
    from sr_filter.video import upscale_video
    from videos import make_clip  # tests/videos.py: the same clip maker the tests use

    width, height = (int(v) for v in args.size.split("x"))
    upscaler = Upscaler(args.model, device=args.device, tile=args.tile, backend=args.backend)
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(folder) / "clip.mp4", frames=args.frames, size=(width, height), rate=24)
        with av.open(str(clip)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        upscaler.upscale_array(frames[0])  # warm-up (allocator, oneDNN kernels)
        if args.batches:
            return compare_batches(upscaler, frames, [int(n) for n in args.batches.split(",")], args)
        from sr_filter.video.batches import check_batch

        batch = check_batch(args.batch)
        modes = {"frames as images": lambda r: [upscaler.upscale_array(f) for f in frames],
                 f"frames as batches of {batch}": lambda r: [upscaler.upscale_batch(frames[i : i + batch])
                                                            for i in range(0, len(frames), batch)],
                 "upscale_video (decode+enc)": lambda r: upscale_video(clip, Path(folder) / f"out{r}.mp4", upscaler=upscaler,
                                                                       codec=args.codec, batch=batch)}
        wall: dict[str, list[float]] = {name: [] for name in modes}
        cpu: dict[str, list[float]] = {name: [] for name in modes}
        for repeat in range(args.repeats):
            for name, body in modes.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                body(repeat)
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
    print(f"CPU: {cpu_facts()}")
    print(f"{args.model} with {upscaler.backend.name} on {upscaler.device}, {width}x{height} -> "
          f"{width * upscaler.scale}x{height * upscaler.scale}, tile {args.tile}, {len(frames)} frames, {args.codec}, "
          f"best of {args.repeats}")
    print(f"{'path':<28}{'seconds':>10}{'frames/s':>10}{'CPU s':>10}")
    for name in modes:
        print(f"{name:<28}{min(wall[name]):>10.2f}{len(frames) / min(wall[name]):>10.2f}{min(cpu[name]):>10.2f}")
    video = "upscale_video (decode+enc)"
    for name in list(modes)[:2]:
        print(f"overhead of the video path over {name}: {min(wall[video]) / min(wall[name]) - 1:+.1%} wall, "
              f"{min(cpu[video]) / min(cpu[name]) - 1:+.1%} CPU time")


def compare_batches(upscaler, frames: list, sizes: list[int], args) -> None:
    """Seconds per frame of ``upscale_batch`` with N frames per pass; sizes interleaved per repeat."""
    for n in sizes:  # warm-up of each batch shape (oneDNN / OpenVINO pick kernels per shape)
        upscaler.upscale_batch(frames[:n])
    times: dict[int, list[float]] = {n: [] for n in sizes}
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(args.repeats):
        for n in sizes:
            started, cpu_started = time.perf_counter(), time.process_time()
            for i in range(0, len(frames), n):
                upscaler.upscale_batch(frames[i : i + n])
            times[n].append(time.perf_counter() - started)
            cpu[n].append(time.process_time() - cpu_started)
    height, width = frames[0].shape[:2]
    print(f"CPU: {cpu_facts()}")
    print(f"{args.model} with {upscaler.backend.name} on {upscaler.device}, {width}x{height}, tile {args.tile}, "
          f"{len(frames)} frames, best of {args.repeats}")
    base, base_cpu = min(times[sizes[0]]), min(cpu[sizes[0]])
    print(f"{'frames/pass':>12}{'s/frame':>10}{'frames/s':>10}{'vs ' + str(sizes[0]):>8}{'CPU s/frame':>13}{'vs ' + str(sizes[0]):>8}")
    for n in sizes:
        per, per_cpu = min(times[n]) / len(frames), min(cpu[n]) / len(frames)
        print(f"{n:>12}{per:>10.3f}{1 / per:>10.2f}{min(times[n]) / base:>8.2f}{per_cpu:>13.3f}{min(cpu[n]) / base_cpu:>8.2f}")

if __name__ == "__main__":
    main()

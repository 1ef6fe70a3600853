"""Whole commands as users run them: `sr-filter IMAGE -o OUT` against Real-ESRGAN's own script.

The Real-ESRGAN command does what upstream's ``inference_realesrgan.py`` does for one image
(``cv2.imread``, ``RealESRGANer.enhance``, ``cv2.imwrite``) with the same weights file, in fp32
(``--fp32``: its default half precision does not run on a CPU), at its default tile 0 (whole
image) and at tile 256. Each command is its own process, so start-up, imports, model loading,
reading and writing all count; the commands are interleaved, one warm-up each, best of N; CPU
seconds come from the kernel's accounting of each finished process (``wait4``), peak RSS from the
process itself (VmHWM: ``wait4``'s ru_maxrss carries this benchmark's own peak across exec).

    PYTHONPATH=<folder with realesrgan, basicsr and cv2>:. python benchmarks/bench_commands.py --repeats 5
        [--also "--tile 256"]   # another sr-filter setting in the same run

(see benchmarks/README.md for installing the reference without its dependencies). Prints the CPU
model and a table; run on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import cpu_facts, description, peak_rss_command  # noqa: E402
from bench_tiling import INPUTS, INPUTS_HELP, SHARED, input_labels, standard_inputs  # noqa: E402

WEIGHTS = SHARED / "weights" / "upstream" / "realesr-animevideov3.pth"


def realesrgan(image: str, out: str, tile: int) -> None:
    """Upstream's inference script for one image, fp32 on the CPU (run in a child process)."""
    import cv2
    import torch
    from reference_realesrgan import load

    RealESRGANer, SRVGGNetCompact = load()
    net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu")
    upsampler = RealESRGANer(scale=4, model_path=str(WEIGHTS), model=net, tile=tile, tile_pad=10, pre_pad=0,
                             half=False, device=torch.device("cpu"))
    img = cv2.imread(image, cv2.IMREAD_UNCHANGED)
    output, _ = upsampler.enhance(img, outscale=4)
    cv2.imwrite(out, output)


def timed(command: list[str], folder: str) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one run of ``command``; a failed run stops the benchmark.

    CPU seconds come from the kernel's accounting of the finished process (``wait4``); peak RSS
    from the process itself (VmHWM, written by benchmarks/_machine.py, which runs the command in
    its own process as ``python -m`` / ``python SCRIPT`` would): ``wait4``'s ru_maxrss is carried
    across exec, so it could not be lower than this benchmark's own peak."""
    import time

    report, log = Path(folder) / "peak-rss", Path(folder) / "stderr"
    report.unlink(missing_ok=True)
    with open(log, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(peak_rss_command(str(report), command), stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0 or not report.exists():
        raise SystemExit(f"{' '.join(command)} failed: {log.read_text(errors='replace').strip().splitlines()[-1:] or status}")
    return wall, usage.ru_utime + usage.ru_stime, float(report.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=description(__doc__))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--inputs", nargs="+", default=list(INPUTS), metavar="INPUT", help=INPUTS_HELP)
    ap.add_argument("--also", action="append", default=[], metavar="OPTIONS",
                    help='another sr-filter command with these options, e.g. --also "--tile 256" (repeatable)')
    ap.add_argument("child", nargs="*", help=argparse.SUPPRESS)  # internal: realesrgan IMAGE OUT TILE
    args = ap.parse_args()
    if args.child:
        return realesrgan(args.child[1], args.child[2], int(args.child[3]))
    args.inputs = input_labels(ap, args.inputs)
    from reference_realesrgan import missing

    if why := missing():  # said up front (it had ended in a ModuleNotFoundError for cv2 after the first command)
        sys.exit(f"{ap.prog}: Real-ESRGAN's script, the reference these commands are compared with, cannot run: {why}")
    from PIL import Image

    print(f"CPU: {cpu_facts()}; realesr-animevideov3 x4, fp32 unless noted; best of {args.repeats}, interleaved\n")
    me = [sys.executable, "-m", "sr_filter", "-q", "--overwrite", "--model", "realesr-animevideov3"]
    header = f"{'input':15s} {'command':34s} {'wall s':>7s} {'CPU s':>7s} {'peak RSS MB':>12s} {'vs RE tile 0':>13s} {'vs RE tile 256':>15s}"
    print(header + "\n" + "-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for label, array in standard_inputs().items():
            if label not in args.inputs:
                continue
            image = str(Path(tmp) / "in.png")
            Image.fromarray(array).save(image)
            commands = {
                "sr-filter (OpenVINO fp32)": me + [image, "-o", str(Path(tmp) / "a.png")],
                "sr-filter --precision bf16": me + ["--precision", "bf16", image, "-o", str(Path(tmp) / "b.png")],
                **{f"sr-filter {extra}": me + extra.split() + [image, "-o", str(Path(tmp) / f"e{i}.png")]
                   for i, extra in enumerate(args.also)},
                "Real-ESRGAN script, tile 0": [sys.executable, __file__, "realesrgan", image, str(Path(tmp) / "c.png"), "0"],
                "Real-ESRGAN script, tile 256": [sys.executable, __file__, "realesrgan", image, str(Path(tmp) / "d.png"), "256"],
            }
            best: dict[str, tuple[float, float, float]] = {}
            for name, command in commands.items():
                timed(command, tmp)  # warm-up: file cache, the converted model cache
            for _ in range(args.repeats):
                for name, command in commands.items():
                    run = timed(command, tmp)
                    old = best.get(name)
                    best[name] = run if old is None else (min(old[0], run[0]), min(old[1], run[1]), max(old[2], run[2]))
            base0, base256 = best["Real-ESRGAN script, tile 0"][0], best["Real-ESRGAN script, tile 256"][0]
            for name, (wall, cpu, rss) in best.items():
                print(f"{label:15s} {name:34s} {wall:7.2f} {cpu:7.2f} {rss:12.0f} {base0 / wall:12.2f}x {base256 / wall:14.2f}x",
                      flush=True)


if __name__ == "__main__":
    main()

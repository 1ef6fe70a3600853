"""Tiled inference: sr-filter vs Real-ESRGAN's own RealESRGANer, same weights, same tile size.

Run by hand (see benchmarks/README.md for the install line):

    python benchmarks/bench_tiling.py                 # all shipped compact models, both inputs
    python benchmarks/bench_tiling.py --repeats 5 --tile 256 --models realesr-animevideov3

For each model x input x engine it prints output megapixels per second (best of ``--repeats``
uint8-in/uint8-out runs, the two engines interleaved so load on a shared machine hits both;
the CPU-time column is less sensitive to other processes than wall time),
peak RSS (and peak CUDA memory on a GPU) of a fresh process doing one run, and the max
difference of the tiled output from the same engine's whole-image output, in 1/255 steps.
Each run is a separate process so peak RSS is per run. Ratios are sr-filter / RealESRGANer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import cpu_facts, description, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared"))
WEIGHTS = SHARED / "weights" / "upstream"
MODELS = {"realesr-animevideov3": 4, "RealESRGANv2-animevideo-xsx4": 4, "RealESRGANv2-animevideo-xsx2": 2}


INPUTS = ("photo 500x480", "frame 1280x720")  # the labels of standard_inputs()


def input_labels(parser: argparse.ArgumentParser, given: list[str]) -> list[str]:
    """``--inputs`` as labels of :func:`standard_inputs` (each given as its label or its first
    word, ``photo``); an unknown one ends the script with one line that lists them."""
    labels = []
    for text in given:
        label = next((label for label in INPUTS if text in (label, label.split()[0])), None)
        if label is None:
            parser.exit(2, f"{parser.prog}: unknown input {text!r}; the inputs are "
                        + ", ".join(f"'{label}'" for label in INPUTS) + " (or their first word: photo, frame)\n")
        labels.append(label)
    return labels


#: --inputs' help line
INPUTS_HELP = "standard inputs: " + ", ".join(f"'{label}'" for label in INPUTS) + " (or photo, frame)"


def standard_inputs() -> dict[str, np.ndarray]:
    """The 500x480 Set14 photo (baboon) and a 1280x720 frame built from an anime sample, as RGB uint8."""
    from PIL import Image

    photo = Image.open(SHARED / "data" / "benchmarks" / "Set14" / "baboon.png").convert("RGB")
    assert photo.size == (500, 480)
    frame = Image.open(SHARED / "data" / "train" / "anime_samples" / "apisr_img_eva.jpeg").convert("RGB")
    frame = frame.resize((1280, 960), Image.BICUBIC).crop((0, 120, 1280, 840))
    return dict(zip(INPUTS, (np.asarray(photo), np.asarray(frame))))


def make_inputs(folder: Path) -> dict[str, Path]:
    """The standard inputs saved as .npy files for the child processes."""
    paths = {}
    for key, array in standard_inputs().items():
        paths[key] = folder / f"{key.split()[0]}.npy"
        np.save(paths[key], array)
    return paths


# -- one run in a fresh process ------------------------------------------------------------------


def child(engine: str, model: str, image_path: str, tile: int, tile_pad: int, device: str, save: str) -> None:
    import torch

    image = np.load(image_path)
    weights = str(WEIGHTS / f"{model}.pth")
    if engine == "sr-filter":
        sys.path.insert(0, str(ROOT))
        from sr_filter import Upscaler

        up = Upscaler(weights, device=device, tile=tile)
        up.upscale(image[:64, :64])  # warm-up: oneDNN / cuDNN kernel selection

        def go():
            return up.upscale(image)

    else:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from reference_realesrgan import load

        RealESRGANer, SRVGGNetCompact = load()
        net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=MODELS[model], act_type="prelu")
        half = device.startswith("cuda")  # upstream's default on GPU is fp16; fp16 fails on CPU
        re = RealESRGANer(MODELS[model], weights, model=net, tile=tile, tile_pad=tile_pad, pre_pad=0, half=half, device=torch.device(device))
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        _quiet(lambda: re.enhance(bgr[:64, :64]))

        def go():
            return np.ascontiguousarray(_quiet(lambda: re.enhance(bgr))[0][:, :, ::-1])

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start, cpu_start = time.perf_counter(), time.process_time()
    out = go()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    np.save(save, out)
    report = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rss_mb": peak_rss_mb(),
        "cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None,
    }
    print("RESULT " + json.dumps(report))


def _quiet(fn):
    """RealESRGANer prints a line per tile; keep the table readable."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return fn()


def run_child(engine, model, image, tile, tile_pad, device, save) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, model, str(image), str(tile), str(tile_pad), device, str(save)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{engine} {model} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


# -- the table -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=description(__doc__))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--inputs", nargs="+", default=list(INPUTS), metavar="INPUT", help=INPUTS_HELP)
    ap.add_argument("--tile", type=int, default=256, help="tile edge (input px) for both engines")
    ap.add_argument("--tile-pad", type=int, default=10, help="RealESRGANer's tile_pad (its default is 10)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if _has_cuda() else "cpu")
    ap.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        engine, model, image, tile, tile_pad, device, save = args.child
        child(engine, model, image, int(tile), int(tile_pad), device, save)
        return
    args.inputs = input_labels(ap, args.inputs)
    from reference_realesrgan import missing

    if why := missing():  # said before any engine runs (it had failed after sr-filter's runs)
        sys.exit(f"{ap.prog}: RealESRGANer, the reference this benchmark compares with, cannot load: {why}")

    import torch

    print(f"CPU: {cpu_facts()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; device {args.device}"
          + ("" if args.device.startswith("cuda") else " (no CUDA GPU here: CPU numbers only)"))
    print(f"tile {args.tile} for both; RealESRGANer tile_pad {args.tile_pad}, pre_pad 0, "
          f"{'fp16' if args.device.startswith('cuda') else 'fp32'}; best of {args.repeats} runs; uint8 RGB in and out\n")
    engines = ("sr-filter", "RealESRGANer")
    header = f"{'model':30s} {'input':15s} {'engine':13s} {'out MP/s':>9s} {'CPU s':>7s} {'peak RSS MB':>12s} {'CUDA MB':>8s} {'max diff':>9s}"
    print(header)
    print("-" * len(header))
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = {k: v for k, v in make_inputs(tmp).items() if k in args.inputs}
        for model in args.models:
            for label, image in inputs.items():
                shape = np.load(image).shape
                out_mp = shape[0] * shape[1] * MODELS[model] ** 2 / 1e6
                stats = {e: {"seconds": [], "cpu_seconds": [], "rss_mb": [], "cuda_mb": []} for e in engines}
                for rep in range(args.repeats):
                    for engine in engines if rep % 2 == 0 else reversed(engines):
                        r = run_child(engine, model, image, args.tile, args.tile_pad, args.device, tmp / f"{engine}-tiled.npy")
                        for key in stats[engine]:
                            stats[engine][key].append(r[key])
                row = {}
                for engine in engines:
                    run_child(engine, model, image, 0, args.tile_pad, args.device, tmp / f"{engine}-whole.npy")
                    tiled = np.load(tmp / f"{engine}-tiled.npy").astype(int)
                    whole = np.load(tmp / f"{engine}-whole.npy").astype(int)
                    s = stats[engine]
                    row[engine] = (out_mp / min(s["seconds"]), min(s["rss_mb"]), np.abs(tiled - whole).max(), min(s["cpu_seconds"]))
                    cuda = f"{min(s['cuda_mb']):8.0f}" if s["cuda_mb"][0] is not None else f"{'-':>8s}"
                    print(f"{model:30s} {label:15s} {engine:13s} {row[engine][0]:9.3f} {row[engine][3]:7.1f} {row[engine][1]:12.0f} {cuda} {row[engine][2]:9d}", flush=True)
                cross = np.abs(np.load(tmp / "sr-filter-whole.npy").astype(int) - np.load(tmp / "RealESRGANer-whole.npy").astype(int)).max()
                speed = row["sr-filter"][0] / row["RealESRGANer"][0]
                rss = row["sr-filter"][1] / row["RealESRGANer"][1]
                cpu = row["RealESRGANer"][3] / row["sr-filter"][3]
                ratios.append((model, label, speed, cpu, rss, cross))
                print(f"{'':30s} {'':15s} {'ratio':13s} {speed:8.2f}x {cpu:6.2f}x {rss:11.2f}x {'':8s}  (whole-image outputs of the two differ by {cross})", flush=True)
    print("\nratios sr-filter / RealESRGANer: speed by wall clock and by CPU time (higher is better), peak RSS (lower is better)")
    for model, label, speed, cpu, rss, cross in ratios:
        print(f"  {model:30s} {label:15s} speed {speed:5.2f}x   CPU-time speed {cpu:5.2f}x   peak RSS {rss:5.2f}x")


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()

"""CPU inference backends: torch vs OpenVINO, fp32 vs bf16 (and RealESRGANer when installed), one run.

Run by hand (see benchmarks/README.md):

    python benchmarks/bench_backends.py                   # speed table: both inputs, all engines
    python benchmarks/bench_backends.py --repeats 5 --inputs "photo 500x480"
    python benchmarks/bench_backends.py shapes            # border windows: one dynamic model vs one per shape
    python benchmarks/bench_backends.py error             # bf16 vs fp32 on Set14 (max/mean levels, PSNR-Y)
    python benchmarks/bench_backends.py ceiling           # fp32 arithmetic: what this CPU allows at best

``speed``: each engine runs in its own process (peak RSS is per engine), started once per input:
model load and OpenVINO conversion/compilation happen before a 64x64 warm-up and are not timed.
Then each repeat runs every engine once, one after another (the order reversed every other
repeat), so load on a shared machine hits all of them alike; the table keeps each engine's best
of ``--repeats`` uint8-in/uint8-out runs of the same tiled upscale. It prints output MP/s, CPU
seconds, peak RSS and the max/mean difference from torch fp32 in 1/255 levels (torch fp32 always
runs, as the reference), then ratios to torch fp32 and to RealESRGANer. The CPU model and its bf16
capability are printed first. ``--tile auto`` is sr-filter's own choice for each input on this
CPU, given to every engine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
from _machine import cpu_facts, description, peak_rss_mb  # noqa: E402
from bench_tiling import INPUTS, INPUTS_HELP, MODELS, SHARED, WEIGHTS, _quiet, input_labels, make_inputs  # noqa: E402
from reference_realesrgan import missing as reference_missing  # noqa: E402

ENGINES = ["torch-fp32", "torch-bf16", "openvino-fp32", "openvino-bf16", "RealESRGANer-fp32"]


def make_engine(engine: str, weights: str, tile: int | str):
    """An ``upscale(uint8 image) -> uint8 image`` function for one engine."""
    backend, precision = engine.split("-")
    if backend == "RealESRGANer":
        import torch
        from reference_realesrgan import load

        RealESRGANer, SRVGGNetCompact = load()
        scale = MODELS[Path(weights).stem]
        net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=scale, act_type="prelu")
        re = RealESRGANer(scale, weights, model=net, tile=int(tile), tile_pad=10, pre_pad=0, half=False, device=torch.device("cpu"))
        return lambda img: np.ascontiguousarray(_quiet(lambda: re.enhance(np.ascontiguousarray(img[:, :, ::-1])))[0][:, :, ::-1])
    from sr_filter import Upscaler

    up = Upscaler(weights, device="cpu", tile=tile, precision=precision, backend=backend)
    return up.upscale


def child(engine: str, weights: str, image_path: str, tile: str) -> None:
    """One engine in its own process, kept alive between repeats: the parent sends ``run`` (one
    timed upscale, answered with a RESULT line), ``save PATH`` (the last output) or closes stdin."""
    image = np.load(image_path)
    upscale = make_engine(engine, weights, int(tile) if tile.isdigit() else tile)
    upscale(image[:64, :64])  # warm-up: kernel selection, first shapes
    print("READY", flush=True)
    out = None
    for command in sys.stdin:
        if command.strip() == "run":
            out = None  # peak RSS is one run's, as for a user's single image: the last result is not held
            start, cpu = time.perf_counter(), time.process_time()
            out = upscale(image)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
            print("RESULT " + json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "rss_mb": peak_rss_mb()}), flush=True)
        elif command.startswith("save "):
            np.save(command[5:].strip(), out)
            print("SAVED", flush=True)


class _Engine:
    """The parent's handle on one engine's child process; a failed child says why in one line."""

    def __init__(self, engine: str, weights: str, image: Path, tile: int | str, folder: Path) -> None:
        self.engine, self._log = engine, folder / f"{engine}.log"
        with open(self._log, "w") as log:
            self._proc = subprocess.Popen([sys.executable, __file__, "child", engine, weights, str(image), str(tile)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self.runs: list[dict] = []
        self.ok = self._answer("READY") is not None

    def _answer(self, word: str) -> str | None:
        for line in self._proc.stdout:
            if line.startswith(word):
                return line[len(word):].strip()
        self.close()
        tail = (self._log.read_text().strip().splitlines() or ["no output"])[-1]
        print(f"  ({self.engine} did not run: {tail})", flush=True)
        return None

    def _send(self, command: str) -> None:
        try:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:  # it has ended: _answer reads the end of its output and says why
            pass

    def run(self) -> bool:
        self._send("run")
        answer = self._answer("RESULT")
        if answer is not None:
            self.runs.append(json.loads(answer))
        return answer is not None

    def save(self, path: Path) -> bool:
        self._send(f"save {path}")
        return self._answer("SAVED") is not None

    def close(self) -> None:
        if not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        self._proc.wait()


def speed(args: argparse.Namespace) -> None:
    import torch

    weights = str(WEIGHTS / f"{args.model}.pth")
    engines = ["torch-fp32"] + [e for e in dict.fromkeys(args.engines) if e != "torch-fp32"]  # the reference first, always
    print(f"CPU: {cpu_facts()}; torch {torch.__version__}, {torch.get_num_threads()} threads; {_ov_version()}")
    if "RealESRGANer-fp32" in engines and (why := reference_missing()):
        engines.remove("RealESRGANer-fp32")
        print(f"RealESRGANer rows left out: {why}")
    print(f"model {args.model}, tile {args.tile}, best of {args.repeats} runs per engine, the engines interleaved in "
          "each repeat (each in its own process), uint8 RGB in and out; differences from torch fp32 in 1/255 levels\n")
    header = (f"{'input':15s} {'engine':18s} {'out MP/s':>9s} {'CPU s':>7s} {'peak RSS MB':>12s} "
              f"{'max diff':>9s} {'mean diff':>10s}")
    print(header + "\n" + "-" * len(header))
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, image in make_inputs(folder).items():
            if label not in args.inputs:
                continue
            h, w = np.load(image).shape[:2]
            out_mp = h * w * MODELS[args.model] ** 2 / 1e6
            tile = resolve_tile(args.tile, weights, h, w)
            if args.tile == "auto":
                print(f"{label:15s} tile auto: {tile or 'whole image'} for this input, every engine")
            children = [_Engine(engine, weights, image, tile, folder) for engine in engines]  # loaded one by one
            children = [c for c in children if c.ok]
            for repeat in range(args.repeats):  # each engine once per repeat, the order reversed every other one
                for c in children if repeat % 2 == 0 else children[::-1]:
                    if c.ok and not c.run():
                        c.ok = False
            rows, outputs = {}, {}
            for c in children:
                if c.ok and c.save(folder / f"{c.engine}.npy"):
                    outputs[c.engine] = np.load(folder / f"{c.engine}.npy").astype(np.int16)
                    rows[c.engine] = {key: min(r[key] for r in c.runs) for key in ("seconds", "cpu_seconds")}
                    rows[c.engine] |= {"rss_mb": max(r["rss_mb"] for r in c.runs), "mps": out_mp / rows[c.engine]["seconds"]}
                c.close()
            ref = outputs.get("torch-fp32")
            for engine, r in rows.items():
                diff = np.abs(outputs[engine] - ref) if ref is not None else None
                cells = f"{diff.max():9d} {diff.mean():10.3f}" if diff is not None else f"{'-':>9s} {'-':>10s}"
                print(f"{label:15s} {engine:18s} {r['mps']:9.3f} {r['cpu_seconds']:7.1f} {r['rss_mb']:12.0f} {cells}", flush=True)
            summary.append((label, rows))
    print("\nratios (speed by wall clock, by CPU time; peak RSS): to torch fp32 | to RealESRGANer")
    for label, rows in summary:
        for engine, r in rows.items():
            parts = [f"{r['mps'] / rows[base]['mps']:5.2f}x speed, {rows[base]['cpu_seconds'] / r['cpu_seconds']:5.2f}x CPU, "
                     f"{r['rss_mb'] / rows[base]['rss_mb']:4.2f}x RSS" if base in rows else "-"
                     for base in ("torch-fp32", "RealESRGANer-fp32")]
            print(f"  {label:15s} {engine:18s} {parts[0]:40s} | {parts[1]}")


def resolve_tile(tile: int | str, weights: str, height: int, width: int) -> int:
    """The tile edge for an input: ``auto`` is sr-filter's own choice for it on this CPU (fp32), 0 the whole image."""
    if tile != "auto":
        return int(tile)
    from sr_filter import Upscaler

    return Upscaler(weights, device="cpu", tile="auto", precision="fp32")._tile_for(height, width)


def shapes(args: argparse.Namespace) -> None:
    """Border windows: one compiled model with dynamic H/W vs a compiled model per window shape."""
    import openvino as ov

    from sr_filter import Upscaler
    from sr_filter.backends.openvino import OpenVinoBackend, _compile

    weights = str(WEIGHTS / f"{args.model}.pth")
    image = _input(args.inputs[-1])
    tile = resolve_tile(args.tile, weights, *image.shape[:2])
    up = Upscaler(weights, device="cpu", tile=tile)
    shown = f"auto ({tile or 'whole image'} here)" if args.tile == "auto" else tile
    print(f"CPU: {cpu_facts()}; {args.model}, {args.inputs[-1]}, tile {shown}; best of {args.repeats}")
    for precision in ("fp32", "bf16"):
        dynamic = OpenVinoBackend.from_model(up.model, precision=precision)
        compiled: dict[tuple, object] = {}

        def per_shape(batch: np.ndarray) -> np.ndarray:
            key = tuple(batch.shape)
            if key not in compiled:
                static = dynamic._ov_model.clone()
                static.reshape(ov.PartialShape(list(key)))
                compiled[key] = _compile(dynamic._core, static, precision, dynamic._threads).create_infer_request()
            return np.clip(compiled[key].infer({0: np.ascontiguousarray(batch, dtype=np.float32)})[0], 0, 1)

        runners = {"one dynamic model": dynamic.run, "model per shape": per_shape}
        times = {label: [] for label in runners}
        for _ in range(args.repeats):  # interleaved, so load on a shared machine hits both
            for label, runner in runners.items():
                up.backend = _Runner(runner, precision)
                start, cpu = time.perf_counter(), time.process_time()
                up.upscale(image)
                times[label].append((time.perf_counter() - start, time.process_time() - cpu))
        for label, runs in times.items():
            extra = f", {len(compiled)} window shapes compiled" if label == "model per shape" else ""
            print(f"  {precision} {label:18s} first run {runs[0][0]:6.2f} s ({runs[0][1]:5.2f} CPU s), "
                  f"best {min(r[0] for r in runs):6.2f} s ({min(r[1] for r in runs):5.2f} CPU s){extra}")


class _Runner:
    """A backend made of one window function (what the Upscaler calls per batch of windows)."""

    name = "openvino"

    def __init__(self, run, precision: str) -> None:
        self.run, self.precision = run, precision


def error(args: argparse.Namespace) -> None:
    """bf16 against fp32 on Set14 (bicubic x4 LR): output difference and PSNR-Y against the HR image."""
    from sr_filter.datasets import list_images, read_image
    from sr_filter.imageops import make_pair, rgb_to_y
    from sr_filter.metrics import measure

    folder = SHARED / "data" / "benchmarks" / "Set14"
    print(f"CPU: {cpu_facts()}; Set14, bicubic x4 LR, whole image; levels of 255 on uint8 outputs")
    print(f"{'model':22s} {'engine':14s} {'max diff':>8s} {'mean diff':>9s} {'PSNR-Y vs fp32':>14s} {'PSNR-Y vs HR':>12s} {'fp32 PSNR-Y':>11s}")
    for model in args.models:
        engines = {e: make_engine(e, model, 0) for e in ("torch-fp32", "openvino-fp32", "torch-bf16", "openvino-bf16")}
        stats = {e: [] for e in engines}
        for path in list_images(folder):
            image, gray = read_image(path)  # as `sr-filter eval` reads and measures it (a grey picture on its grey values)
            hr, lr = make_pair(image, 4)
            ref = engines["torch-fp32"](lr)
            for e, upscale in engines.items():
                out = ref if e == "torch-fp32" else upscale(lr)
                d = np.abs(out.astype(np.int16) - ref.astype(np.int16))
                mse = float(np.mean((rgb_to_y(out) - rgb_to_y(ref)) ** 2))
                stats[e].append((d.max(), d.mean(), mse, measure(out, hr, 4, gray=gray)[0], measure(ref, hr, 4, gray=gray)[0]))
        for e, rows in stats.items():
            a = np.array(rows, dtype=float)
            pooled = 10 * np.log10(255**2 / a[:, 2].mean()) if a[:, 2].any() else float("inf")  # over all pixels of Set14
            print(f"{model:22s} {e:14s} {a[:, 0].max():8.0f} {a[:, 1].mean():9.3f} {pooled:14.2f} {a[:, 3].mean():12.3f} {a[:, 4].mean():11.3f}")


def ceiling(args: argparse.Namespace) -> None:
    """How close fp32 inference is to what this CPU can do, and the best ratio to RealESRGANer it allows.

    Counts the network's multiply-adds over the windows the tiler runs (and over the whole image),
    measures this machine's fp32 matrix-multiply rate with OpenVINO (the best case for the same
    FMA units), times OpenVINO fp32 on the input at the given tile and whole, and, where the
    reference is installed, RealESRGANer. Interleaved, best of ``--repeats``.
    """
    import openvino as ov
    import openvino.opset13 as ops

    from sr_filter import Upscaler
    from sr_filter.device import cpu_threads
    from sr_filter.tiling import plan_tiles

    weights = str(WEIGHTS / f"{args.model}.pth")
    image = _input(args.inputs[-1])
    h, w = image.shape[:2]
    tile = resolve_tile(args.tile, weights, h, w)
    if tile == 0:  # auto chose the whole image: tiled rows would repeat the whole-image ones
        print(f"tile auto: sr-filter runs {args.inputs[-1]} whole on this CPU; only whole-image rows")
    elif args.tile == "auto":
        print(f"tile auto: sr-filter picks {tile} px tiles for {args.inputs[-1]} on this CPU")
    why_no_reference = reference_missing()
    up = Upscaler(weights, device="cpu", tile=tile, precision="fp32", backend="openvino")
    whole = Upscaler(weights, device="cpu", tile=0, precision="fp32", backend="openvino")
    model = up.model
    macs_px = sum(int(np.prod(t.shape)) for t in model.network.state_dict().values() if t.ndim == 4)
    window_px = sum(t.y.size * t.x.size for t in plan_tiles(h, w, tile, model.facts.context, equal=False)) if tile else 0
    flops = {"whole image": 2 * macs_px * h * w, **({f"tile {tile}": 2 * macs_px * window_px} if tile else {})}

    threads = cpu_threads()
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
    rng = np.random.default_rng(0)
    probes = {}  # label: (compiled op, inputs, FLOPs): plain fp32 arithmetic on the same FMA units
    for n in (1024, 2048, 4096):
        a, b = ops.parameter([n, n], ov.Type.f32), ops.parameter([n, n], ov.Type.f32)
        probes[f"matmul {n}"] = (ov.Core().compile_model(ov.Model([ops.matmul(a, b, False, False)], [a, b]), "CPU", config),
                                 [rng.standard_normal((n, n), dtype=np.float32) for _ in range(2)], 2 * n**3)
    x = ops.parameter([1, 64, 292, 292], ov.Type.f32)
    kernel = ops.constant(rng.standard_normal((64, 64, 3, 3), dtype=np.float32) / 24)
    conv = ops.convolution(x, kernel, [1, 1], [1, 1], [1, 1], [1, 1])
    probes["conv 3x3 64->64, 292 px"] = (ov.Core().compile_model(ov.Model([conv], [x]), "CPU", config),
                                         [rng.random((1, 64, 292, 292), dtype=np.float32)], 2 * 64 * 64 * 9 * 292 * 292)
    runners = {k: (lambda c=c, i=i: c(i)) for k, (c, i, _) in probes.items()}
    runners |= {**({f"tile {tile}": lambda: up.upscale(image)} if tile else {}), "whole image": lambda: whole.upscale(image)}
    if why_no_reference:
        print(f"RealESRGANer rows left out: {why_no_reference}")
    else:
        runners["RealESRGANer tile 0"] = lambda f=make_engine("RealESRGANer-fp32", weights, 0): f(image)
        flops["RealESRGANer tile 0"] = flops["whole image"]
    if tile and not why_no_reference:
        # RealESRGANer's own tiles: a grid of this edge from the top left, 10 px of context clipped at the border
        re_px = sum((min(y + tile + 10, h) - max(y - 10, 0)) * (min(x + tile + 10, w) - max(x - 10, 0))
                    for y in range(0, h, tile) for x in range(0, w, tile))
        flops[f"RealESRGANer tile {tile}"] = 2 * macs_px * re_px
        runners[f"RealESRGANer tile {tile}"] = lambda f=make_engine("RealESRGANer-fp32", weights, tile): f(image)
    for run in runners.values():
        run()
    best = {k: float("inf") for k in runners}
    for _ in range(args.repeats):
        for label, run in runners.items():
            start = time.perf_counter()
            run()
            best[label] = min(best[label], time.perf_counter() - start)
    rates = {k: probes[k][2] / best.pop(k) / 1e9 for k in probes}
    peak = max(rates.values())
    print(f"CPU: {cpu_facts()}; {threads} threads; {_ov_version()}; {args.model} ({macs_px / 1e3:.0f} k multiply-adds "
          f"per input px), {args.inputs[-1]}; best of {args.repeats}, interleaved")
    print("fp32 arithmetic probes (OpenVINO): " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
          + f" GFLOP/s; the best, {peak:.0f} GFLOP/s, is taken as this machine's fp32 ceiling\n")
    print(f"{'run':24s} {'TFLOP':>6s} {'seconds':>8s} {'GFLOP/s':>8s} {'of ceiling':>10s}")
    for label, seconds in best.items():
        print(f"{label:24s} {flops[label] / 1e12:6.2f} {seconds:8.2f} {flops[label] / seconds / 1e9:8.0f} "
              f"{flops[label] / seconds / 1e9 / peak:9.0%}")
    floor = flops["whole image"] / (peak * 1e9)
    print(f"\nfastest possible fp32 run here: the whole image's arithmetic at the ceiling, {floor:.2f} s")
    for label in [k for k in best if k.startswith("RealESRGANer")]:
        ours = f"{best[label] / best[f'tile {tile}']:.2f}x at tile {tile}, " if tile else ""
        print(f"  {label}: {best[label]:.2f} s, so at most {best[label] / floor:.2f}x it in exact fp32 "
              f"(ours now: {ours}{best[label] / best['whole image']:.2f}x whole)")


def _input(label: str) -> np.ndarray:
    """One standard input as an array (its .npy file in a folder that is removed again)."""
    with tempfile.TemporaryDirectory() as tmp:
        return np.load(make_inputs(Path(tmp))[label])


def _ov_version() -> str:
    try:
        import openvino

        return f"OpenVINO {openvino.get_version().split('-')[0]}"
    except ImportError:
        return "OpenVINO not installed"


def _tile(text: str) -> int | str:
    """``--tile`` as the library takes it (auto, 0 or an edge of at least its smallest tile)."""
    from sr_filter.errors import SrFilterError
    from sr_filter.tiling import check_tile

    try:
        return check_tile(text)
    except SrFilterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser(description=description(__doc__))
    ap.add_argument("mode", nargs="?", default="speed", choices=["speed", "shapes", "error", "ceiling"])
    ap.add_argument("--model", default="realesr-animevideov3", choices=list(MODELS))
    ap.add_argument("--models", nargs="+", default=["realesr-animevideov3", "sr-photo-x4", "sr-cartoon-x4"], help="error mode")
    ap.add_argument("--inputs", nargs="+", default=list(INPUTS), metavar="INPUT",
                    help=INPUTS_HELP + "; shapes and ceiling use the last one")
    ap.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    ap.add_argument("--tile", default="256", type=_tile, help="tile edge (input px) for every engine, 0 for the "
                    "whole image, or auto (sr-filter's own choice for each input on this CPU)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    args.inputs = input_labels(ap, args.inputs)
    {"speed": speed, "shapes": shapes, "error": error, "ceiling": ceiling}[args.mode](args)


if __name__ == "__main__":
    main()

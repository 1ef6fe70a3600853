"""Speed of models through the filter on the same input, in one run, as ratios to the first model.

    python benchmarks/bench_models.py -m realesr-animevideov3 -m sr-cartoon-x4 --input frame --repeats 5

Inputs: ``photo`` (Set14 baboon, 500x480), ``frame`` (a 1280x720 anime frame), or an image path.
Each model runs ``--repeats`` times, the models interleaved so that load on a shared machine hits
all of them alike; the table shows the best run (output megapixels per second) and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _machine import cpu_facts


def load_input(name: str) -> np.ndarray:
    """``photo`` or ``frame`` (the inputs of bench_tiling.py), or an image file."""
    from bench_tiling import standard_inputs  # (this script's folder is on sys.path)

    if name in ("photo", "frame"):
        return next(v for k, v in standard_inputs().items() if k.startswith(name))
    from PIL import Image

    return np.asarray(Image.open(name).convert("RGB"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", dest="models", action="append", required=True)
    ap.add_argument("--input", default="frame")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tile", default="auto")
    args = ap.parse_args()

    import torch

    from sr_filter import Upscaler

    image = load_input(args.input)
    tile = args.tile if args.tile == "auto" else int(args.tile)
    ups = [Upscaler(m, device=args.device, tile=tile) for m in args.models]
    for up in ups:
        up.upscale(image[:64, :64])  # warm-up
    best = [float("inf")] * len(ups)
    for _ in range(args.repeats):
        for i, up in enumerate(ups):
            if up.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = up.upscale(image)
            if up.device.type == "cuda":
                torch.cuda.synchronize()
            best[i] = min(best[i], time.perf_counter() - t0)
    h, w = image.shape[:2]
    print(f"CPU: {cpu_facts()}")
    print(f"input {args.input} {w}x{h}, {args.repeats} repeats, torch {torch.__version__}, {torch.get_num_threads()} threads")
    devices = [up.describe().split(" on ", 1)[1] for up in ups]  # e.g. "cpu in fp32 with openvino"
    width = max(len("device"), *map(len, devices))
    name_width = max(len("model"), *map(len, args.models))
    print(f"{'model':{name_width}s} {'device':{width}s} {'out MP/s':>9s} {'best s':>8s} {'speed vs first':>15s}")
    for up, name, device, s in zip(ups, args.models, devices, best):
        mp = h * w * up.scale * up.scale / 1e6
        print(f"{name:{name_width}s} {device:{width}s} {mp / s:9.3f} {s:8.2f} {best[0] / s:14.2f}x")


if __name__ == "__main__":
    main()

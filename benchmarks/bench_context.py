"""How much context (LR px) each community architecture needs for tiled == whole image.

Crop-and-compare on small randomly initialised networks (tests/community_nets.py): a 24x480
strip of a Set14 image is upscaled whole and tiled (tile 32, the Upscaler's blend, windows on
the architecture's grid) with growing context; the first context whose largest difference is
below 1/255 is reported. Random networks have outputs of arbitrary spread, so differences are
rescaled to an output standard deviation of 0.25 (a typical image) before comparing.

    python benchmarks/bench_context.py [NAME ...]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sr_filter.community import _BLEND  # noqa: E402
from sr_filter.models import load_file  # noqa: E402
from sr_filter.tiling import run_tiled  # noqa: E402
from tests.community_nets import names, save_random  # noqa: E402

from _machine import cpu_facts  # noqa: E402

CONTEXTS = (4, 8, 16, 32, 48, 64, 96)
IMAGE = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared")) / "data" / "benchmarks" / "Set14" / "baboon.png"


def measure(name: str, folder: Path) -> tuple[int | None, dict[int, float]]:
    model = load_file(save_random(name, folder))
    m = int(model.arch.multiple(model.params))
    h, w = -(-24 // m) * m, 480 // m * m  # on the architecture's grid
    x = np.ascontiguousarray(np.asarray(Image.open(IMAGE).convert("RGB"))[:h, :w].transpose(2, 0, 1)[None], dtype=np.float32) / 255
    network = model.network

    def net(batch: np.ndarray) -> np.ndarray:  # the tiler runs windows as float32 arrays
        with torch.inference_mode():
            return network(torch.from_numpy(batch)).numpy()

    whole = net(x)
    spread = float(whole.std()) / 0.25
    errors = {}
    for c in CONTEXTS:
        tiled = run_tiled(net, x, model.scale, tile=32, context=c, band=_BLEND, multiple=m)
        errors[c] = float(np.abs(tiled - whole).max()) / spread
    needed = next((c for c in CONTEXTS if errors[c] < 1 / 255), None)
    return needed, errors


def main() -> None:
    wanted = sys.argv[1:] or names()
    if any(arg.startswith("-") for arg in wanted):  # --help had been taken for an architecture's name
        print(__doc__.strip())
        print("\narchitectures:", " ".join(names()))
        sys.exit(0 if set(wanted) & {"-h", "--help"} else 2)
    unknown = sorted(set(wanted) - set(names()))
    if unknown:
        sys.exit(f"bench_context: unknown architecture(s) {', '.join(unknown)}; known: {' '.join(names())}")
    print(f"CPU: {cpu_facts()} (seconds per architecture below)")
    print(f"{'arch':<10} {'needed':>6}  " + " ".join(f"c={c:<6}" for c in CONTEXTS) + "  (max |tiled-whole| x255, rescaled)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            t = time.perf_counter()
            needed, errors = measure(name, Path(tmp))
            cells = " ".join(f"{errors[c] * 255:<8.3f}" for c in CONTEXTS)
            print(f"{name:<10} {str(needed):>6}  {cells}  ({time.perf_counter() - t:.0f}s)", flush=True)


if __name__ == "__main__":
    main()

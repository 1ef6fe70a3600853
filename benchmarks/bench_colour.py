"""Decoded video frame -> RGB: cost and brightness of sr-filter's conversion against FFmpeg's
direct one and two other candidates, per frame size.

Run by hand:

    python benchmarks/bench_colour.py                        # 1920x1080, Set14's first 4 images
    python benchmarks/bench_colour.py --size 3840x2160 --images 2 --threads 4

Each Set14 image is resized to the frame size, converted to 8-bit 4:2:0 (BT.709, limited range,
as most H.264 video is) and back to 8-bit RGB by each method; the table shows the best of
``--repeats`` runs per frame (the methods interleaved) and the mean signed error per channel
against the RGB the frame was made from, averaged over the images.

- ``sr-filter``: ``Colour.to_rgb``, the path decoding uses (chroma upsampled into 16-bit 4:4:4
  first, then to RGB).
- ``direct``: swscale's one-step conversion (it rounds down: about 1 level darker per channel).
- ``via rgb48``: one step to 16-bit RGB, rounded to 8 bits here.
- ``via 420p16``: widened to 16 bits without upsampling, then to RGB.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from _machine import cpu_facts, description

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared"))


def main() -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="swscale threads for the candidates (default: FFmpeg's)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    import av
    from PIL import Image

    from sr_filter.video.colour import Colour

    limited = dict(src_colorspace="ITU709", src_color_range="MPEG", dst_color_range="JPEG", interpolation="BICUBIC", threads=args.threads)
    colour = Colour(range=1, matrix=1, primaries=1, trc=1)

    def via_rgb48(frame):
        wide = frame.reformat(format="rgb48le", **limited).to_ndarray().astype(np.uint32)
        return np.minimum((wide + 128) >> 8, 255).astype(np.uint8)

    def via_420p16(frame):
        wide = frame.reformat(format="yuv420p16le", src_colorspace="ITU709", dst_colorspace="ITU709",
                              src_color_range="MPEG", dst_color_range="MPEG", threads=args.threads)
        return wide.reformat(format="rgb24", **limited).to_ndarray()

    methods = {
        "sr-filter": lambda frame: colour.to_rgb(frame, deep=False),
        "direct": lambda frame: frame.reformat(format="rgb24", **limited).to_ndarray(),
        "via rgb48": via_rgb48,
        "via 420p16": via_420p16,
    }
    times = {name: [] for name in methods}
    errors = {name: [] for name in methods}
    images = sorted((SHARED / "data" / "benchmarks" / "Set14").glob("*.png"))[: args.images]
    if not images:
        sys.exit(f"bench_colour: no Set14 images under {SHARED}/data/benchmarks (set SR_FILTER_SHARED)")
    for path in images:
        rgb = np.asarray(Image.open(path).convert("RGB").resize((width, height), Image.BICUBIC))
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace="ITU709", src_color_range="JPEG", dst_color_range="MPEG", interpolation="BICUBIC")
        best = dict.fromkeys(methods, float("inf"))
        for _ in range(args.repeats):
            for name, method in methods.items():
                start = time.perf_counter()
                out = method(frame)
                best[name] = min(best[name], time.perf_counter() - start)
        for name, method in methods.items():
            times[name].append(best[name])
            errors[name].append((method(frame).astype(np.float64) - rgb).mean(axis=(0, 1)))

    print(f"# {cpu_facts()}; {width}x{height} 8-bit 4:2:0 BT.709 limited range; {len(images)} Set14 image(s), best of {args.repeats}")
    print(f"{'method':<12} {'ms/frame':>9} {'ratio':>6}   mean error R, G, B (levels)")
    base = float(np.mean(times["direct"]))
    for name in methods:
        ms = float(np.mean(times[name]))
        r, g, b = np.mean(errors[name], axis=0)
        print(f"{name:<12} {ms * 1000:9.1f} {ms / base:6.1f}   {r:+.2f}, {g:+.2f}, {b:+.2f}")


if __name__ == "__main__":
    main()

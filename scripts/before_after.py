"""Before/after pictures for the docs: the same crop of each input upscaled by nearest neighbour
(the input as it is), bicubic, and each model, side by side with labels.

    python scripts/before_after.py ../shared/data/train/anime_samples/apisr_41.png:300,180,96,72 \
        -m sr-cartoon-x4 -m realesr-animevideov3 --out /tmp/anime_before_after.png

An input is ``PATH`` or ``PATH:x,y,w,h`` (a crop of the input, in input pixels). Inputs with
``--hr`` are ground-truth images: they are first downscaled by the model's scale (MATLAB bicubic,
then JPEG at ``--jpeg`` if given) and the ground truth is shown in a last column.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _parse(spec: str) -> tuple[Path, tuple[int, int, int, int] | None]:
    path, sep, box = spec.rpartition(":")
    parts = box.split(",")
    if sep and len(parts) == 4 and all(p.strip().isdigit() for p in parts):
        x, y, w, h = (int(p) for p in parts)
        return Path(path), (x, y, w, h)
    return Path(spec), None


def _label(tile: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", (tile.width, tile.height + 18), "white")
    out.paste(tile, (0, 18))
    ImageDraw.Draw(out).text((3, 3), text, fill="black")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="PATH or PATH:x,y,w,h")
    ap.add_argument("-m", "--model", dest="models", action="append", required=True)
    ap.add_argument("--hr", action="store_true", help="inputs are ground truth: degrade them first and show them")
    ap.add_argument("--hr-scale", type=float, default=1.0, help="downscale the ground truth first")
    ap.add_argument("--jpeg", type=int, default=0, help="JPEG quality of the degraded input (with --hr)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from sr_filter import Upscaler
    from sr_filter.datasets import read_rgb
    from sr_filter.imageops import imresize, make_pair

    ups = [Upscaler(m, device="cpu") for m in args.models]
    scale = ups[0].scale
    rows = []
    for spec in args.inputs:
        path, box = _parse(spec)
        img = read_rgb(path)
        hr = None
        if args.hr:
            hr, img = make_pair(img, scale, args.hr_scale, args.jpeg or None)
        if box:
            x, y, w, h = box
            # upscale a margin around the crop so every model sees the same context, then cut
            m = 16
            x0, y0 = max(0, x - m), max(0, y - m)
            x1, y1 = min(img.shape[1], x + w + m), min(img.shape[0], y + h + m)
            region = img[y0:y1, x0:x1]
            cut = lambda a, s: a[(y - y0) * s:(y - y0 + h) * s, (x - x0) * s:(x - x0 + w) * s]  # noqa: E731
        else:
            region, cut, (x, y, h, w) = img, (lambda a, s: a), (0, 0, *img.shape[:2])
        tiles = [_label(Image.fromarray(cut(region, 1)).resize((w * scale, h * scale), Image.NEAREST), "input"),
                 _label(Image.fromarray(cut(np.asarray(imresize(region, float(scale))), scale)), "bicubic")]
        for name, up in zip(args.models, ups):
            tiles.append(_label(Image.fromarray(cut(up.upscale_array(region), scale)), name))
        if hr is not None:
            tiles.append(_label(Image.fromarray(hr[y * scale:(y + h) * scale, x * scale:(x + w) * scale]), "ground truth"))
        row = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), tiles[0].height), "white")
        left = 0
        for t in tiles:
            row.paste(t, (left, 0))
            left += t.width + 4
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 4 * (len(rows) - 1)), "white")
    top = 0
    for r in rows:
        sheet.paste(r, (0, top))
        top += r.height + 4
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    from sr_filter.errors import SrFilterError

    try:
        main()
    except SrFilterError as exc:
        raise SystemExit(f"before_after: {exc}") from None

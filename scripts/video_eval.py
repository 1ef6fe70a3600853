"""Video evaluation: low-bitrate cartoon clip -> x4 through the real video path, PSNR-Y/GMSD per frame.

The clip is made from CC-BY images in ../shared/data/train/cartoon (Pepper&Carrot by David Revoy,
CC BY 4.0; the Sintel stills there are 1024x436, too small for 1280x960 truth): a camera pan across each image, 1280x960
ground-truth frames, MATLAB-bicubic downscaled to 320x240 and encoded as H.264 at 512 kb/s, as
the episodes this project restores were. Each model upscales that file with ``upscale_video``
(lossless FFV1 output, so only the model is measured); bicubic is the baseline. Run by hand:

    python scripts/video_eval.py                      # 3 pans x 8 frames, CPU
    python scripts/video_eval.py --frames 24 --device cuda --strip docs/video_eval_strip.png --csv per_frame.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared"))
IMAGES = ["peppercarrot_user_manual_flying_castle.jpg", "peppercarrot_witches_of_chaosah_family.jpg", "peppercarrot_fixing_the_project_sketch.jpg"]
MODELS = ["realesr-animevideov3", "sr-cartoon-x4"]
HR = (1280, 960)


def ground_truth(frames_per_pan: int) -> list[np.ndarray]:
    """Camera pans: a 1280x960 window sliding 16 px a frame across each image (scaled to fill it)."""
    from PIL import Image

    out = []
    for name in IMAGES:
        with Image.open(SHARED / "data" / "train" / "cartoon" / name) as image:
            image = image.convert("RGB")
            # the picture's height fills the frame (and it is wide enough for the pan)
            factor = max(HR[1] / image.height, (HR[0] + 16 * frames_per_pan) / image.width)
            image = image.resize((max(HR[0], round(image.width * factor)), max(HR[1], round(image.height * factor))), Image.LANCZOS)
            array = np.asarray(image)
        top = (array.shape[0] - HR[1]) // 2
        for i in range(frames_per_pan):
            left = i * 16
            out.append(np.ascontiguousarray(array[top : top + HR[1], left : left + HR[0]]))
    return out


def encode_low(frames: list[np.ndarray], path: Path, bitrate: int) -> None:
    """320x240 H.264 at ``bitrate`` bits/s, 24 frames/s, as a broadcast-era episode."""
    import av

    from sr_filter.imageops import make_lr

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = HR[0] // 4, HR[1] // 4, "yuv420p"
        stream.bit_rate = bitrate
        stream.codec_context.time_base = Fraction(1, 24)
        for i, frame in enumerate(frames):
            video = av.VideoFrame.from_ndarray(make_lr(frame, 4), format="rgb24").reformat(format="yuv420p")
            video.pts = i
            for packet in stream.encode(video):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per pan (3 pans)")
    parser.add_argument("--bitrate", type=int, default=512_000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tile", default="auto")
    parser.add_argument("--csv", type=Path, default=None, help="write per-frame numbers here")
    parser.add_argument("--strip", type=Path, default=None, help="write a before/after strip (PNG) here")
    args = parser.parse_args()

    from sr_filter.evaluation import bicubic_upscaler, measure
    from sr_filter.upscaler import Upscaler
    from sr_filter.video import upscale_video

    truth = ground_truth(args.frames)
    results: dict[str, list[tuple[float, float]]] = {}
    shown: dict[str, np.ndarray] = {"ground truth": truth[len(truth) // 2]}
    with tempfile.TemporaryDirectory() as folder:
        low = Path(folder) / "low.mp4"
        encode_low(truth, low, args.bitrate)
        lr_frames = decode(low)
        assert len(lr_frames) == len(truth), "the encoder lost frames"
        bicubic = bicubic_upscaler(4)
        outputs = {"bicubic": [bicubic(f) for f in lr_frames]}
        for model in MODELS:
            upscaler = Upscaler(model, device=args.device, tile=args.tile)
            target = Path(folder) / f"{model}.mkv"
            upscale_video(low, target, upscaler=upscaler, codec="ffv1")
            outputs[model] = decode(target)
            assert len(outputs[model]) == len(truth), f"{model}: {len(outputs[model])} frames out of {len(truth)}"
        for name, frames in outputs.items():
            results[name] = [measure(sr, hr, 4)[0::2] for sr, hr in zip(frames, truth)]
            shown[name] = frames[len(truth) // 2]
    print(f"{len(truth)} frames, 1280x960 ground truth, 320x240 H.264 at {args.bitrate // 1000} kb/s, x4")
    print("| method | PSNR-Y mean (dB) | PSNR-Y worst frame | GMSD mean (lower is better) |")
    print("| --- | --- | --- | --- |")
    for name, rows in results.items():
        values = np.array(rows)
        print(f"| {name} | {values[:, 0].mean():.2f} | {values[:, 0].min():.2f} | {values[:, 1].mean():.4f} |")
    print("\nPer pan (PSNR-Y / GMSD):\n")
    print("| pan (frames) | " + " | ".join(results) + " |")
    print("| --- |" + " --- |" * len(results))
    for number, image in enumerate(IMAGES):
        first = number * args.frames
        cells = [np.array(rows[first : first + args.frames]).mean(axis=0) for rows in results.values()]
        pan = image.removeprefix("peppercarrot_").removesuffix(".jpg")
        print(f"| {pan} ({first}-{first + args.frames - 1}) | " + " | ".join(f"{c[0]:.2f} / {c[1]:.4f}" for c in cells) + " |")
    if args.csv:
        with open(args.csv, "w") as handle:
            handle.write("frame," + ",".join(f"{n} psnr_y,{n} gmsd" for n in results) + "\n")
            for i in range(len(truth)):
                handle.write(f"{i}," + ",".join(f"{results[n][i][0]:.3f},{results[n][i][1]:.5f}" for n in results) + "\n")
    if args.strip:
        save_strip(shown, args.strip)


def save_strip(shown: dict[str, np.ndarray], path: Path) -> None:
    """The same 256x192 crop of one frame from each method, side by side, labelled."""
    from PIL import Image, ImageDraw

    y, x = 384, 512
    crops = [Image.fromarray(frame[y : y + 192, x : x + 256]) for frame in shown.values()]
    strip = Image.new("RGB", (256 * len(crops), 212), "white")
    draw = ImageDraw.Draw(strip)
    for i, (name, crop) in enumerate(zip(shown, crops)):
        strip.paste(crop, (256 * i, 20))
        draw.text((256 * i + 4, 4), name, fill="black")
    strip.save(path, optimize=True)


if __name__ == "__main__":
    main()

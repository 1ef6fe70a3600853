"""Benchmark evaluation as in the published super-resolution tables.

The published numbers (SRCNN, VDSR, EDSR, ...) come from MATLAB code: the HR image is cropped to a
multiple of the scale ("modcrop"), the LR input is made with MATLAB's ``imresize(hr, 1/s, 'bicubic')``
(antialiased bicubic on uint8, output rounded to uint8), and PSNR/SSIM are measured on the Y channel
of ITU-R BT.601 YCbCr with ``s`` pixels shaved at each border. Matching those conventions exactly is
what makes our numbers comparable, so this module reimplements them in numpy. GMSD, a perceptual
measure that needs no learned network, is reported beside them.
"""

from __future__ import annotations

import fnmatch
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .errors import ImageFormatError, SrFilterError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class EvaluationError(SrFilterError):
    """An evaluation cannot run (no images, bad scale, model output of the wrong size)."""


# --------------------------------------------------------------------------- MATLAB imresize


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB's imresize."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def _contributions(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_len, P) and 0-based source indices (out_len, P) of MATLAB's bicubic resize."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        # widen the kernel by 1/scale: a low-pass filter before subsampling
        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)

        kernel_width /= scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)  # MATLAB drops all-zero columns
    weights, indices = weights[:, keep], indices[:, keep]
    # symmetric (mirror) padding at the borders, as MATLAB does
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    return weights, idx


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    weights, idx = _contributions(img.shape[axis], out_len, scale, antialias)
    moved = np.moveaxis(img, axis, 0)  # (L, ...)
    gathered = moved[idx]  # (out_len, P, ...)
    w = weights.reshape(weights.shape + (1,) * (moved.ndim - 1))
    return np.moveaxis((gathered * w).sum(axis=1), 0, axis)


def imresize(img: np.ndarray, scale: float | None = None, *, size: tuple[int, int] | None = None,
             antialias: bool = True) -> np.ndarray:
    """MATLAB-compatible bicubic ``imresize`` of an HxW or HxWxC array.

    uint8 input gives uint8 output rounded as MATLAB does (each pass rounds, as MATLAB's mex
    resizes uint8 data one dimension at a time); float input stays float64 and unclipped.
    Give either ``scale`` (e.g. 1/4) or ``size=(height, width)``.
    """
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    h, w = img.shape[:2]
    if size is None:
        assert scale is not None
        size = (int(math.ceil(h * scale)), int(math.ceil(w * scale)))
        scales = (float(scale), float(scale))
    else:
        scales = (size[0] / h, size[1] / w)
    is_uint8 = img.dtype == np.uint8
    out = img.astype(np.float64)
    # MATLAB resizes the dimension with the smaller scale factor first (rows on a tie)
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        out = _resize_axis(out, axis, size[axis], scales[axis], antialias)
        if is_uint8:
            out = np.clip(np.round(out), 0, 255)
    return out.astype(np.uint8) if is_uint8 else out


# --------------------------------------------------------------------------- metrics


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that both sides are multiples of ``scale`` (top-left kept)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in [16, 235] as float64, from RGB uint8 (or HxW gray, taken as Y's source).

    Same coefficients as MATLAB's ``rgb2ycbcr``; the result is not rounded (the common Python
    evaluation practice; rounding changes PSNR by ~0.01 dB).
    """
    x = img.astype(np.float64)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def shave(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border > 0 else img


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two same-shape arrays on a 0..peak scale."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' 2-D correlation with the 1-D window ``g``."""
    k = len(g)
    rows = sum(g[i] * img[i : img.shape[0] - k + 1 + i, :] for i in range(k))
    return sum(g[i] * rows[:, i : rows.shape[1] - k + 1 + i] for i in range(k))


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Wang et al.'s SSIM (11x11 Gaussian, sigma 1.5, K1=0.01, K2=0.03) on one channel, 'valid' area."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    g = _gaussian_window()
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a**2
    var_b = _filter_valid(b * b, g) - mu_b**2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def _box2_down(img: np.ndarray) -> np.ndarray:
    """MATLAB's ``conv2(x, ones(2)/4, 'same')`` followed by ``x(1:2:end, 1:2:end)``."""
    x = np.pad(img, ((0, 1), (0, 1)))
    avg = (x[:-1, :-1] + x[1:, :-1] + x[:-1, 1:] + x[1:, 1:]) / 4.0
    return avg[::2, ::2]


def _prewitt_magnitude(img: np.ndarray) -> np.ndarray:
    x = np.pad(img, 1)
    h, w = img.shape
    # columns differences summed over three rows, and the transpose; /3 as in the reference code
    dx = sum(x[r : r + h, 0:w] - x[r : r + h, 2 : w + 2] for r in range(3)) / 3.0
    dy = sum(x[0:h, c : c + w] - x[2 : h + 2, c : c + w] for c in range(3)) / 3.0
    return np.sqrt(dx * dx + dy * dy)


def gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Gradient Magnitude Similarity Deviation (Xue et al., 2014) of two 2-D images in 0..255.

    A full-reference perceptual measure (lower is better, 0 = same structure) that follows human
    quality scores closely on the LIVE/CSIQ/TID databases and needs no learned network, so it runs
    offline. Same steps as the authors' MATLAB code: 2x2 mean + downsampling, Prewitt gradients,
    similarity map with T = 170, standard deviation of the map.
    """
    ga = _prewitt_magnitude(_box2_down(np.asarray(a, np.float64)))
    gb = _prewitt_magnitude(_box2_down(np.asarray(b, np.float64)))
    t = 170.0
    sim = (2 * ga * gb + t) / (ga * ga + gb * gb + t)
    return float(np.std(sim, ddof=1))


def gray_value(img: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma (0.299 R + 0.587 G + 0.114 B) in [0, 255]: the gray value itself
    when R = G = B."""
    x = img.astype(np.float64)
    if x.ndim == 2:
        return x
    return (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 219.0


def measure(sr: np.ndarray, hr: np.ndarray, scale: int, gray: bool = False) -> tuple[float, float, float]:
    """(PSNR, SSIM, GMSD) on Y with ``scale`` pixels shaved, as in the published tables.

    ``gray``: the reference is a grayscale image. The published MATLAB scripts only convert
    3-channel images to YCbCr and measure gray ones on their raw 0..255 values, not on
    16 + 219/255 * gray; doing the same is what brings Set14 (``bridge``) to the published numbers.
    """
    if sr.shape[:2] != hr.shape[:2]:
        raise EvaluationError(f"output is {sr.shape[1]}x{sr.shape[0]} but the reference is {hr.shape[1]}x{hr.shape[0]}")
    to_y = gray_value if gray else rgb_to_y
    ys, yh = shave(to_y(sr), scale), shave(to_y(hr), scale)
    return psnr(ys, yh), ssim(ys, yh), gmsd(ys, yh)


# --------------------------------------------------------------------------- data and models


def read_image(path: Path) -> tuple[np.ndarray, bool]:
    """An image file as HxWx3 uint8 RGB, and whether it was a grayscale image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            gray = im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L")
            return np.asarray(im.convert("RGB")), gray
    except (OSError, ValueError) as exc:
        raise ImageFormatError(f"cannot read {path}: {exc}") from None


def read_rgb(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB (gray and palette images are converted)."""
    return read_image(path)[0]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise EvaluationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def select_images(folder: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[Path]:
    """The images of ``folder`` whose names match one of ``include`` (all when empty) and none of
    ``exclude`` (fnmatch patterns such as ``src_*``): held-out splits without copying files."""
    files = [p for p in list_images(folder)
             if (not include or any(fnmatch.fnmatch(p.name, pat) for pat in include))
             and not any(fnmatch.fnmatch(p.name, pat) for pat in exclude)]
    if not files:
        raise EvaluationError(f"no image in {folder} matches include {list(include)} / exclude {list(exclude)}")
    return files


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The published degradation: MATLAB antialiased bicubic downscaling of a modcropped uint8 HR."""
    return imresize(hr, 1.0 / scale)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """``img`` saved as a JPEG of ``quality`` (PIL, 4:2:0 chroma as most JPEGs) and read back, uint8."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.array(im.convert("RGB"))  # a writable copy (np.asarray of PIL data is read-only)


def make_pair(hr: np.ndarray, scale: int, hr_scale: float = 1.0, jpeg: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ground truth, LR input) as evaluated: the image downscaled by ``hr_scale`` (if not 1) and
    modcropped, then its MATLAB bicubic LR, JPEG-compressed at ``jpeg`` when given."""
    if hr_scale != 1:
        hr = imresize(hr, hr_scale)
    hr = modcrop(hr, scale)
    lr = make_lr(hr, scale)
    if jpeg:
        lr = jpeg_roundtrip(lr, jpeg)
    return hr, lr


#: an upscaler for evaluation: HxWx3 uint8 LR in, (H*s)x(W*s)x3 uint8 out
UpscaleFn = Callable[[np.ndarray], np.ndarray]


def bicubic_upscaler(scale: int) -> UpscaleFn:
    """The baseline of the tables: MATLAB bicubic upscaling of the LR image."""

    def run(lr: np.ndarray) -> np.ndarray:
        return imresize(lr, float(scale))

    return run


def _to_tensor(lr: np.ndarray) -> "torch.Tensor":  # noqa: F821
    import torch

    return torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].float().div_(255.0)


def _to_uint8(y: "torch.Tensor") -> np.ndarray:  # noqa: F821
    import torch

    return y[0].clamp(0, 1).permute(1, 2, 0).mul(255.0).round().to(torch.uint8).numpy()


def network_upscaler(net: "torch.nn.Module") -> UpscaleFn:  # noqa: F821
    """Run an in-memory network on whole LR images (validation during training)."""
    import torch

    def run(lr: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return _to_uint8(net(_to_tensor(lr)))

    return run


def model_upscaler(model: str, *, device: str = "auto", precision: str = "auto", tile: int | str = "auto",
                   offline: bool | None = None) -> tuple[UpscaleFn, int, str]:
    """A preset, manifest name or weights file run through the filter's own :class:`Upscaler`
    (same loading, device choice and tiling as users get). Returns (upscale, scale, description)."""
    from .upscaler import Upscaler

    up = Upscaler(model, device=device, precision=precision, tile=tile, offline=offline)

    def run(lr: np.ndarray) -> np.ndarray:
        return _to_uint8(up.run(_to_tensor(lr)))

    return run, up.scale, up.describe()


# --------------------------------------------------------------------------- results


@dataclass
class ImageResult:
    name: str
    psnr: float
    ssim: float
    seconds: float
    gmsd: float = float("nan")


@dataclass
class SetResult:
    dataset: str
    scale: int
    images: list[ImageResult] = field(default_factory=list)

    @property
    def psnr(self) -> float:
        return float(np.mean([r.psnr for r in self.images]))

    @property
    def ssim(self) -> float:
        return float(np.mean([r.ssim for r in self.images]))

    @property
    def gmsd(self) -> float:
        return float(np.mean([r.gmsd for r in self.images]))

    @property
    def seconds(self) -> float:
        return float(sum(r.seconds for r in self.images))


@dataclass
class EvalReport:
    model: str
    scale: int
    sets: list[SetResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "scale": self.scale,
            "metric": "PSNR/SSIM/GMSD on Y (BT.601), modcrop, MATLAB bicubic LR, border shaved by scale",
            "sets": [
                {
                    "dataset": s.dataset,
                    "psnr": round(s.psnr, 4),
                    "ssim": round(s.ssim, 5),
                    "gmsd": round(s.gmsd, 5),
                    "seconds": round(s.seconds, 3),
                    "images": [
                        {**asdict(r), "psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5), "gmsd": round(r.gmsd, 5),
                         "seconds": round(r.seconds, 3)}
                        for r in s.images
                    ],
                }
                for s in self.sets
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self, per_image: bool = False) -> str:
        """A plain-text table: one row per set (and per image when asked)."""
        lines = [f"model: {self.model}   scale: x{self.scale}",
                 f"{'set / image':<24}{'PSNR-Y':>9}{'SSIM-Y':>9}{'GMSD-Y':>9}{'sec':>8}"]
        for s in self.sets:
            if per_image:
                for r in s.images:
                    label = f"  {s.dataset}/{r.name}"
                    lines.append(f"{label:<24}{r.psnr:>9.2f}{r.ssim:>9.4f}{r.gmsd:>9.4f}{r.seconds:>8.2f}")
            lines.append(f"{s.dataset + f' ({len(s.images)})':<24}{s.psnr:>9.2f}{s.ssim:>9.4f}{s.gmsd:>9.4f}{s.seconds:>8.2f}")
        return "\n".join(lines)


def evaluate_folder(upscale: UpscaleFn, folder: Path, scale: int, name: str | None = None,
                    limit: int | None = None, include: Sequence[str] = (), hr_scale: float = 1.0,
                    jpeg: int | None = None) -> SetResult:
    """PSNR/SSIM/GMSD of ``upscale`` on the images of ``folder`` (HR ground truth).

    ``include``: only files matching these patterns; ``hr_scale``: downscale each ground truth
    first (MATLAB bicubic), to evaluate large photos at a smaller size; ``jpeg``: the LR input is
    also JPEG-compressed at this quality (models meant for compressed web images and video).
    """
    if scale < 1:
        raise EvaluationError(f"scale must be a positive integer, not {scale}")
    if not 0 < hr_scale <= 1:
        raise EvaluationError(f"hr_scale must be in (0, 1], not {hr_scale}")
    result = SetResult(dataset=name or Path(folder).name, scale=scale)
    for path in select_images(folder, include)[:limit]:
        hr, gray = read_image(path)
        hr, lr = make_pair(hr, scale, hr_scale, jpeg)
        t0 = time.perf_counter()
        sr = upscale(lr)
        dt = time.perf_counter() - t0
        p, s, g = measure(sr, hr, scale, gray=gray)
        result.images.append(ImageResult(path.stem, p, s, dt, g))
    return result


def evaluate(upscale: UpscaleFn, folders: Iterable[Path], scale: int, model_name: str = "model") -> EvalReport:
    """Evaluate one upscaler on several folders of HR images."""
    report = EvalReport(model=model_name, scale=scale)
    for folder in folders:
        report.sets.append(evaluate_folder(upscale, Path(folder), scale))
    return report


__all__: Sequence[str] = [
    "EvalReport", "EvaluationError", "ImageResult", "SetResult", "bicubic_upscaler", "evaluate",
    "evaluate_folder", "gmsd", "imresize", "jpeg_roundtrip", "list_images", "make_lr", "make_pair", "measure",
    "modcrop", "model_upscaler", "network_upscaler",
    "psnr", "read_image", "read_rgb", "rgb_to_y", "select_images", "ssim",
]

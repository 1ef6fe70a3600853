"""Full-reference quality measures as in the published super-resolution tables: PSNR and SSIM on
the Y channel with the border shaved, and GMSD, a perceptual measure that needs no learned network."""

from __future__ import annotations

import math

import numpy as np

from .errors import EvaluationError
from .imageops import gaussian_window, gray_value, rgb_to_y


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """``img`` without ``border`` pixels on each side (the published tables ignore the border)."""
    return img[border:-border, border:-border] if border > 0 else img


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two same-shape arrays on a 0..peak scale."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' 2-D correlation with the 1-D window ``g``."""
    k = len(g)
    rows = sum(g[i] * img[i : img.shape[0] - k + 1 + i, :] for i in range(k))
    return sum(g[i] * rows[:, i : rows.shape[1] - k + 1 + i] for i in range(k))


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Wang et al.'s SSIM (11x11 Gaussian, sigma 1.5, K1=0.01, K2=0.03) on one channel, 'valid' area."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    g = gaussian_window(11, 1.5)
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


def measure(sr: np.ndarray, hr: np.ndarray, scale: int, gray: bool = False) -> tuple[float, float, float]:
    """(PSNR, SSIM, GMSD) on Y with ``scale`` pixels shaved, as in the published tables.

    ``gray``: the reference is a grayscale image. The published MATLAB scripts only convert
    3-channel images to YCbCr and measure gray ones on their raw 0..255 values, not on
    16 + 219/255 * gray; doing the same is what brings Set14 (``bridge``) to the published numbers.
    """
    ys, yh = _y_pair(sr, hr, scale, gray)
    return psnr(ys, yh), ssim(ys, yh), gmsd(ys, yh)


def _y_pair(sr: np.ndarray, hr: np.ndarray, scale: int, gray: bool) -> tuple[np.ndarray, np.ndarray]:
    """The Y channels of output and reference with ``scale`` pixels shaved (see :func:`measure`)."""
    if sr.shape[:2] != hr.shape[:2]:
        raise EvaluationError(f"output is {sr.shape[1]}x{sr.shape[0]} but the reference is {hr.shape[1]}x{hr.shape[0]}")
    to_y = gray_value if gray else rgb_to_y
    return shave(to_y(sr), scale), shave(to_y(hr), scale)


#: share of the reference's pixels, those with the strongest gradient, on which sharpness is measured
EDGE_FRACTION = 0.10


def _sobel_magnitude(img: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude on the 'valid' area (two pixels smaller on each axis)."""
    x = np.asarray(img, np.float64)
    if min(x.shape) < 3:
        raise EvaluationError(f"an image of {img.shape[1]}x{img.shape[0]} pixels is too small to measure gradients")
    sx = x[:, 2:] - x[:, :-2]  # central difference along x, then [1, 2, 1] smoothing along y
    sy = x[2:, :] - x[:-2, :]
    gx = sx[:-2] + 2 * sx[1:-1] + sx[2:]
    gy = sy[:, :-2] + 2 * sy[:, 1:-1] + sy[:, 2:]
    return np.hypot(gx, gy)


def sharpness(out: np.ndarray, ref: np.ndarray, fraction: float = EDGE_FRACTION) -> float:
    """How sharp ``out`` is next to the reference ``ref`` (two same-shape 2-D images): the ratio of
    their mean Sobel gradient magnitudes on the reference's edges, the ``fraction`` of its pixels with
    the strongest gradient.

    1.0 = edges as steep as in the reference, < 1 softer (bicubic x4: 0.40-0.54 on Set5), > 1
    over-sharpened (halos, unsharp masking). Full-reference scores such as PSNR reward blur on edges
    whose position is uncertain; this ratio shows that blur. It does not depend on the intensity
    scale (both images times c: same ratio). NaN when the reference has no gradient at all.
    """
    if out.shape != ref.shape:
        raise EvaluationError(f"output is {out.shape[1]}x{out.shape[0]} but the reference is {ref.shape[1]}x{ref.shape[0]}")
    if not 0 < fraction <= 1:
        raise EvaluationError(f"the edge fraction must be in (0, 1], not {fraction}")
    go, gr = _sobel_magnitude(out), _sobel_magnitude(ref)
    threshold = np.quantile(gr, 1.0 - fraction)
    mask = (gr >= threshold) & (gr > 0)
    total = float(gr[mask].sum())
    return float(go[mask].sum()) / total if total > 0 else float("nan")


def measure_sharpness(sr: np.ndarray, hr: np.ndarray, scale: int, gray: bool = False) -> float:
    """:func:`sharpness` on Y with ``scale`` pixels shaved, the same conventions as :func:`measure`."""
    return sharpness(*_y_pair(sr, hr, scale, gray))

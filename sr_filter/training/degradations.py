"""Synthetic degradations that turn an HR patch into an LR input: blur, downscaling, noise, JPEG, and
artefacts like those of low-bitrate video codecs (cartoon video: blocking, ringing, chroma bleeding,
banding). Every stage draws its randomness from the caller's generator (reproducible batches).
"""

from __future__ import annotations

import numpy as np

from ..imageops import gaussian_window, imresize, jpeg_roundtrip
from .config import DegradationConfig


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a float HxWxC image with reflected borders."""
    k = gaussian_window(2 * max(1, int(np.ceil(3 * sigma))) + 1, sigma)  # 3 sigma each side
    r = len(k) // 2
    out = img
    for axis in (0, 1):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="reflect")
        n = out.shape[axis]
        out = sum(k[i] * np.take(padded, np.arange(i, i + n), axis=axis) for i in range(len(k)))
    return out


def resize(img: np.ndarray, scale: int, kind: str) -> np.ndarray:
    """Downscale a float [0, 255] HxWx3 image by an integer factor."""
    h, w = img.shape[0] // scale, img.shape[1] // scale
    if kind == "matlab_bicubic":
        return imresize(img, 1.0 / scale)
    if kind == "area":
        return img[: h * scale, : w * scale].reshape(h, scale, w, scale, -1).mean(axis=(1, 3))
    if kind == "bilinear":
        # bilinear without antialiasing: sample between the two central source pixels of each block
        ys = (np.arange(h) + 0.5) * scale - 0.5
        xs = (np.arange(w) + 0.5) * scale - 0.5
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        y1, x1 = np.minimum(y0 + 1, img.shape[0] - 1), np.minimum(x0 + 1, img.shape[1] - 1)
        top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
        bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
        return top * (1 - fy) + bottom * fy
    raise ValueError(f"unknown resize kind {kind!r}")


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through PIL's JPEG encoder (4:2:0 chroma subsampling, as most JPEGs)."""
    return jpeg_roundtrip(img, quality).astype(np.float64)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def _rgb_to_ycbcr(x: np.ndarray) -> np.ndarray:
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    out = x @ m.T
    out[..., 1:] += 128.0
    return out


def _ycbcr_to_rgb(x: np.ndarray) -> np.ndarray:
    y, cb, cr = x[..., 0], x[..., 1] - 128.0, x[..., 2] - 128.0
    return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)


def _block_quantise(plane: np.ndarray, block: int, step: float, rng: np.random.Generator) -> np.ndarray:
    """Transform-code one plane: block DCT, uniform quantisation with a dead zone, inverse."""
    h, w = plane.shape
    ph, pw = -h % block, -w % block
    p = np.pad(plane, ((0, ph), (0, pw)), mode="edge")
    d = _dct_matrix(block)
    tiles = p.reshape(p.shape[0] // block, block, p.shape[1] // block, block).transpose(0, 2, 1, 3)
    coef = d @ tiles @ d.T
    # coarser steps for high frequencies, like codec quantisation matrices
    f = np.add.outer(np.arange(block), np.arange(block)) / (2 * block - 2)
    q = step * (1.0 + 2.0 * f)
    q[0, 0] = step * rng.uniform(0.5, 1.0)  # DC: coarse enough to band smooth gradients
    quant = np.sign(coef) * np.floor(np.abs(coef) / q + 0.3)  # dead zone kills weak detail
    rec = d.T @ (quant * q) @ d
    out = rec.transpose(0, 2, 1, 3).reshape(p.shape)
    return out[:h, :w]


def video_artifacts(img: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Low-bitrate video codec look: 4:2:0 chroma, block transform coding of luma and chroma
    (4x4 or 8x8 blocks as in H.264), optional weak deblocking. ``quality`` 1..100, lower is worse."""
    ycc = _rgb_to_ycbcr(img)
    h, w = img.shape[:2]
    block = int(rng.choice([4, 8]))
    step = 2.0 + (100 - quality) * 0.6  # quality 10 -> step 56, quality 40 -> 38
    y = _block_quantise(ycc[..., 0], block, step * (block / 8), rng)
    chroma = []
    for c in (1, 2):
        small = ycc[: h - h % 2, : w - w % 2, c].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        small = _block_quantise(small, block, step * 1.5 * (block / 8), rng)
        up = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
        full = np.pad(up, ((0, h - up.shape[0]), (0, w - up.shape[1])), mode="edge")
        chroma.append(full)
    out = np.stack([y, chroma[0], chroma[1]], axis=-1)
    if rng.random() < 0.5:  # in-loop deblocking filter, partly hides block edges
        out = 0.6 * out + 0.4 * blur(out, 0.6)
    return _ycbcr_to_rgb(out)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def degrade(hr: np.ndarray, scale: int, cfg: DegradationConfig, rng: np.random.Generator) -> np.ndarray:
    """HxWx3 uint8 HR -> (H/s)x(W/s)x3 uint8 LR through the configured random stages."""
    x = hr.astype(np.float64)
    blurred = cfg.blur_prob > 0 and rng.random() < cfg.blur_prob
    if blurred:
        x = blur(x, _uniform(rng, cfg.blur_sigma))
    kind = cfg.resize if cfg.resize != "random" else str(rng.choice(["matlab_bicubic", "bilinear", "area"]))
    if scale > 1 and kind == "matlab_bicubic" and not blurred:
        # exactly the benchmark's LR (uint8 in, rounded per pass as MATLAB does)
        x = imresize(hr, 1.0 / scale).astype(np.float64)
    elif scale > 1:
        x = resize(x, scale, kind)
    if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
        sigma = _uniform(rng, cfg.noise_sigma)
        gray = rng.random() < 0.4
        noise = rng.normal(0, sigma, x.shape[:2] + ((1,) if gray else (3,)))
        x = x + noise
    if cfg.jpeg_prob > 0 and rng.random() < cfg.jpeg_prob:
        x = jpeg(x, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    if cfg.video_prob > 0 and rng.random() < cfg.video_prob:
        x = video_artifacts(np.clip(x, 0, 255), int(rng.integers(cfg.video_quality[0], cfg.video_quality[1] + 1)), rng)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)

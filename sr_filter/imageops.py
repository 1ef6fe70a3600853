"""Image operations of the published super-resolution conventions, shared by evaluation and training.

The published numbers (SRCNN, VDSR, EDSR, ...) come from MATLAB code: the HR image is cropped to a
multiple of the scale ("modcrop"), the LR input is made with MATLAB's ``imresize(hr, 1/s, 'bicubic')``
(antialiased bicubic on uint8, output rounded to uint8), and measures are taken on the Y channel of
ITU-R BT.601 YCbCr. Matching those conventions exactly is what makes our numbers comparable, so this
module reimplements them in numpy; it depends on nothing else in the package but Pillow (JPEG).
"""

from __future__ import annotations

import io
import math

import numpy as np


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
    # one tap at a time from rows made contiguous once, summed in the order a sum over the taps
    # adds them (the same bits): the (out_len, P, ...) gather of every tap at once had been 4-5x
    # slower on a 1024 px picture (P is 18 at a quarter's size)
    moved = np.ascontiguousarray(np.moveaxis(img, axis, 0))  # (L, ...)
    shape = (out_len,) + (1,) * (moved.ndim - 1)
    out = moved[idx[:, 0]] * weights[:, 0].reshape(shape)
    for tap in range(1, weights.shape[1]):
        out += moved[idx[:, tap]] * weights[:, tap].reshape(shape)
    return np.moveaxis(out, 0, axis)


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


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """``size`` taps of a normalised 1-D Gaussian centred on the middle tap (SSIM's window, blurs)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


# --------------------------------------------------------------------------- crops and the Y channel


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that both sides are multiples of ``scale`` (top-left kept)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _bt601(x: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr``'s Y weights applied to float RGB (0..255): luma in [0, 219] above black."""
    return 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in [16, 235] as float64, from RGB uint8 (or HxW gray, taken as Y's source).

    Same coefficients as MATLAB's ``rgb2ycbcr``; the result is not rounded (the common Python
    evaluation practice; rounding changes PSNR by ~0.01 dB).
    """
    x = img.astype(np.float64)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    return 16.0 + _bt601(x) / 255.0


def gray_value(img: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma (0.299 R + 0.587 G + 0.114 B) in [0, 255]: the gray value itself
    when R = G = B."""
    x = img.astype(np.float64)
    if x.ndim == 2:
        return x
    return _bt601(x) / 219.0


# --------------------------------------------------------------------------- LR/GT pairs


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


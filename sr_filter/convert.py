"""Pixel conversions: images <-> float planes (alpha and grey handled so the model always sees
RGB), PIL images <-> numpy arrays, and the one float -> integer rounding rule.

Images are HxW (grey), HxWx1, HxWx2 (grey + alpha), HxWx3 (RGB) or HxWx4 (RGBA) arrays of dtype
uint8, uint16 or float (0..1 from black to white; colour beyond it is split off by
:func:`beyond_unit`). Planes are (1, 3, H, W) float32 arrays in [0, 1], the
layout the networks take. All numpy: no torch here.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import ImageFormatError
from .metadata import ImageMeta, cmyk_to_rgb

log = logging.getLogger(__name__)

_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
#: ``extra`` of a log record about one file's content: in a batch the command line names the file
PER_FILE = {"per_file": True}


@dataclass
class Planes:
    """An image taken apart: colour as a (1, 3, H, W) float32 array, alpha as (1, 1, H, W) or None."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    grey: bool  # grey pictures: grey layouts, and RGB(A) ones whose every pixel has R == G == B
    dtype: np.dtype
    channels: int  # channel count of the original array (0 for HxW)

    @property
    def colour_copies(self) -> int:
        """How many colour channels of the result take a grey picture's one plane: 3 for a grey
        picture stored as RGB(A), which stays so, else 1."""
        return 3 if self.grey and self.channels >= 3 else 1


def check_array(array: np.ndarray, label: str | None = None) -> None:
    """Raise a clear error for arrays that are not images; ``label`` names the array in it, where
    it is one of many ("arrays[2]: ...", "frame 5: ...")."""
    try:
        _check_array(array)
    except ImageFormatError as exc:
        if label is None:
            raise
        raise ImageFormatError(f"{label}: {exc}") from None


def _check_array(array: np.ndarray) -> None:
    if isinstance(array, (str, os.PathLike, bytes, bytearray)):
        what = "bytes" if isinstance(array, (bytes, bytearray)) else "a file name"
        raise ImageFormatError(f"expected image pixels, got {what} ({type(array).__name__}); "
                               "for an image file use sr_filter.upscale_file(src, dst) (16-bit, alpha and metadata kept)")
    if not isinstance(array, np.ndarray):
        pil = isinstance(array, Image.Image)
        tensor = hasattr(array, "detach") and hasattr(array, "numpy")
        raise ImageFormatError(f"expected a numpy image array, got {'a PIL image' if pil else type(array).__name__}"
                               + ("; Upscaler.upscale takes PIL images, or convert with numpy.asarray" if pil else "")
                               + ("; Upscaler.run takes (1, C, H, W) tensors in 0..1, or pass tensor.numpy() of an "
                                  "HxWxC image" if tensor else ""))
    if isinstance(array, np.ma.MaskedArray) and np.ma.is_masked(array):  # its mask had been dropped without a word
        raise ImageFormatError(f"the array is a numpy masked array with {int(np.ma.count_masked(array))} masked value(s), "
                               "and the upscaled picture has no mask; fill them (array.filled(0)), or give the mask as an "
                               "alpha channel (an HxWx2 or HxWx4 array, 0 where masked)")
    if isinstance(array, np.matrix):  # indexing keeps it 2-D: it failed later on an internal shape
        raise ImageFormatError("expected a numpy image array, got a numpy.matrix; pass numpy.asarray(matrix)")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise ImageFormatError(f"expected an HxW or HxWxC (C = 1..4) image array, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageFormatError(f"the image is empty (width {array.shape[1]}, height {array.shape[0]})")
    if array.dtype.newbyteorder("=") not in _MAX and array.dtype.kind != "f":
        raise ImageFormatError(f"unsupported pixel type {array.dtype}; use uint8, uint16 or float32 (0..1 from black to white)")


def to_float(array: np.ndarray, *, quiet: bool = False) -> np.ndarray:
    """Scale pixel values to float32 in [0, 1]; float input is taken as 0..1 and clipped to it,
    with a warning when that changes values (0..255 floats, NaN), which would otherwise come back
    as a white or black picture without a word (``quiet``: said already for these pixels). Big-endian
    samples are the same numbers."""
    native = array.dtype.newbyteorder("=")
    if native in _MAX:
        return array.astype(np.float32) / _MAX[native]
    data = array.astype(np.float32)
    with np.errstate(invalid="ignore"):
        inside = bool(np.all(data >= -_FLOAT_SLACK)) and bool(np.all(data <= 1 + _FLOAT_SLACK))  # NaN fails both
    if not inside and not quiet:
        colour = _colour(data)
        with np.errstate(invalid="ignore"):
            alpha_only = (data.ndim == 3 and data.shape[2] in (2, 4) and colour is not None
                          and bool(np.all(colour >= -_FLOAT_SLACK)) and bool(np.all(colour <= 1 + _FLOAT_SLACK)))
        if alpha_only:  # colour beyond 0..1 is kept (beyond_unit); the alpha channel is clipped, and said as such
            log.warning("the alpha channel is taken as 0..1, and it holds %s", _outside(data[..., -1]), extra=PER_FILE)
        else:
            log.warning("float pixels are taken as 0..1, and these hold %s", _outside(data), extra=PER_FILE)
    return np.clip(np.nan_to_num(data, nan=0.0), 0.0, 1.0)


def _colour(array: np.ndarray) -> np.ndarray | None:
    """The colour channels of a float image array (a view), None for anything else."""
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f" or array.ndim not in (2, 3) or not array.size:
        return None
    return array if array.ndim == 2 else array[..., : 1 if array.shape[2] in (1, 2) else 3]


def beyond_extent(array: np.ndarray) -> tuple[float, float] | None:
    """(lowest, highest) finite colour value of a float image whose colour goes beyond 0..1, else None."""
    colour = _colour(array)
    if colour is None:
        return None
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all NaN
        low, high = float(np.nanmin(colour)), float(np.nanmax(colour))  # no copy of the picture
        if not (math.isfinite(low) and math.isfinite(high)):  # infinities: the finite extent, the slow way
            values = colour[np.isfinite(colour)]
            if not values.size:
                return None
            low, high = float(values.min()), float(values.max())
    if math.isnan(low) or (low >= -_FLOAT_SLACK and high <= 1 + _FLOAT_SLACK):
        return None
    return low, high


def beyond_unit(array: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Split float pixels whose colour goes beyond 0..1 (HDR highlights above white, out-of-gamut
    colours below black) into (the image with its colour clipped to 0..1, what the clipping took off
    as a (1, C, H, W) float32 array); None for any other image.

    The networks are trained on 0..1, so they get the clipped image and the rest is resized
    (bilinear) and added back (:func:`add_beyond`): nothing above white or below black is lost.
    NaN and infinities are not part of it: :func:`to_float` says what becomes of them."""
    extent = beyond_extent(array)
    if extent is None:
        return None
    colour = _colour(array)
    with np.errstate(invalid="ignore"):
        clipped = np.clip(colour, 0, 1)  # NaN stays NaN and infinities 0 or 1, for to_float to say
        # the rest is carried in float32: beyond its range (a float64 1e300) is as infinite (it had become inf,
        # and inf times the resize's zero weights NaN all around it, in a picture that held none)
        finite = np.abs(colour) <= np.finfo(np.float32).max
        if array.ndim == 3 and array.shape[2] in (2, 4):  # what fully transparent pixels hide stays hidden
            finite &= (array[..., -1:] > 0)
        rest = np.where(finite, colour - clipped, 0).astype(np.float32)
        # 0..255 data by mistake (an 8-bit picture as float, not divided by 255): whole numbers, or most values
        # far above white (a median above 8) and none far beyond 8-bit white (fractional 0..255 values, as
        # float processing or a bicubic resize leaves them, undershoots below 0 included, had been taken
        # for HDR without a word; a bright HDR scene, most of it above 1 but around 2 or 3, is not 0..255 data)
        # judged on the pixels that show: none (all transparent) is no 0..255 data, and colour hidden
        # under alpha 0 (an empty slice's mean had been a RuntimeWarning) does not make the visible 0s and 1s look like it
        inside_values = colour[finite]
        whole = False
        if inside_values.size:
            low, high = float(inside_values.min()), float(inside_values.max())
            whole = low >= 0 and high > 2 and bool(np.all(inside_values == np.round(inside_values)))
            whole = whole or (low > -64 and high <= 320 and float(np.mean(inside_values > 8)) > 0.5)
        infinite = int(np.isinf(colour).sum())  # clipped here, so to_float no longer sees them to count
        huge = int((np.abs(colour) > np.finfo(np.float32).max).sum()) - infinite
    top = _integer_range(extent[1])
    log.log(logging.WARNING if whole or infinite or huge else logging.INFO,
            "float pixels hold values from %.4g to %.4g, beyond 0..1: the network upscales the part within 0..1 and "
            "the rest is resized (bilinear) and added back%s%s%s", *extent, f"; for {top} data divide by {top[3:]} first" if whole else "",
            f"; {infinite} infinite value(s) are taken as 0 or 1" if infinite else "",
            f"; {huge} value(s) beyond float32's range (3.4e38) are taken as 0 or 1" if huge else "", extra=PER_FILE)
    inside = clipped if array.ndim == 2 else np.concatenate([clipped, array[..., colour.shape[2]:]], axis=2)
    return inside, (rest[..., None] if rest.ndim == 2 else rest).transpose(2, 0, 1)[None]


def add_beyond(result: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Add what :func:`beyond_unit` took off, resized to ``result`` (float, same layout), in place."""
    from .resize import resize

    # bilinear: no ringing, so no brighter highlight or darker shadow than the image holds; one
    # plane at a time, so the extra memory is one output plane
    for c in range(rest.shape[1]):
        up = resize(rest[:, c : c + 1], result.shape[0], result.shape[1], clamp=False, resample=Image.Resampling.BILINEAR)[0, 0]
        if result.ndim == 2:
            result += up
        else:
            result[..., c] += up
    return result


def _outside(data: np.ndarray) -> str:
    """What a float image holds outside 0..1, for the warning: the finite range, NaN and infinities."""
    finite = data[np.isfinite(data)]
    parts = []
    if finite.size and (finite.min() < -_FLOAT_SLACK or finite.max() > 1 + _FLOAT_SLACK):
        top = _integer_range(float(finite.max()))
        advice = f"; divide {top} data by {top[3:]} first" if finite.max() > 1 + _FLOAT_SLACK else ""
        parts.append(f"values from {finite.min():.4g} to {finite.max():.4g} (clipped to 0..1{advice})")
    nan, infinite = int(np.isnan(data).sum()), int(np.isinf(data).sum())
    if nan:
        parts.append(f"{nan} NaN value(s) (taken as 0)")
    if infinite:
        parts.append(f"{infinite} infinite value(s) (taken as 0 or 1)")
    return ", ".join(parts)


def _integer_range(high: float) -> str:
    """The integer pixel range float values up to ``high`` were likely taken from, for the advice to
    divide by its top: 16-bit samples (up to 65535) had been told to divide by 255."""
    return "0..65535" if high > 320 else "0..255"


#: float input this far outside [0, 1] is only rounding (a value from another program's 0..1 math)
_FLOAT_SLACK = 1 / 512


def from_float(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round float [0, 1] values back to ``dtype``: the one float -> integer rule (half to even).

    NaN becomes 0 and infinities the ends of the range, so no undefined cast can happen.
    """
    dtype = np.dtype(dtype)
    array = np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=0.0)  # the one float copy; the rest in place
    if dtype in _MAX:
        top = _MAX[dtype]
        array *= np.float32(top) if array.dtype == np.float32 else top
        np.rint(array, out=array)
        np.clip(array, 0, top, out=array)
        return array.astype(dtype)
    np.clip(array, 0.0, 1.0, out=array)
    return array.astype(dtype)


def split(array: np.ndarray) -> Planes:
    """Take an image array apart into RGB and alpha planes."""
    check_array(array)
    if not array.dtype.isnative:  # big-endian data (from a file or another program): the same values
        array = array.astype(array.dtype.newbyteorder("="))
    channels = 0 if array.ndim == 2 else array.shape[2]
    data = to_float(array)
    if data.ndim == 2:
        data = data[:, :, None]
    colour_channels = 1 if channels in (0, 1, 2) else 3
    colour = np.ascontiguousarray(data[:, :, :colour_channels].transpose(2, 0, 1))[None]
    alpha = None
    if channels in (2, 4):
        alpha = np.ascontiguousarray(data[:, :, -1])[None, None]
    if colour_channels == 1:
        colour = np.ascontiguousarray(np.broadcast_to(colour, (1, 3) + colour.shape[2:]))
    return Planes(colour, alpha, colour_channels == 1 or _neutral(array), array.dtype, channels)


def _neutral(array: np.ndarray) -> bool:
    """Whether an RGB(A) array's colour is grey in every pixel (a scanned page, a black-and-white
    manga page or a grey JPEG saved as RGB, a GIF with a grey palette). Such a picture comes out
    grey, as the same picture stored grey does: networks give colour fringes on the edges of grey
    input (up to 40 levels off grey with the anime models)."""
    nan = array.dtype.kind == "f"  # a NaN pixel grey in all three (read as 0 in each) keeps the picture grey
    for y in range(0, array.shape[0], 256):  # a band at a time: small temporaries, an early no for colour
        band = array[y : y + 256]
        if not (np.array_equal(band[..., 0], band[..., 1], equal_nan=nan)
                and np.array_equal(band[..., 1], band[..., 2], equal_nan=nan)):
            return False
    return True


def merge(planes: Planes, rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Put upscaled planes back together in the original layout and dtype (one float32 copy of
    the result at a time, besides the planes)."""
    colour = rgb[0]
    if planes.grey:  # clamped before the mean, as the streaming sink does
        colour = np.clip(colour, 0, 1).mean(axis=0, keepdims=True, dtype=np.float32)
        colour = np.repeat(colour, planes.colour_copies, axis=0)
    height, width = colour.shape[-2:]
    data = np.empty((height, width, colour.shape[0] + (alpha is not None)), dtype=np.float32)
    data[..., : colour.shape[0]] = colour.transpose(1, 2, 0)
    if alpha is not None:
        data[..., -1] = alpha[0, 0]
    np.clip(data, 0, 1, out=data)
    if planes.channels == 0:
        data = data[:, :, 0]
    return from_float(data, planes.dtype)


def bleed_transparent(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Replace the (invisible) colour of fully transparent pixels by that of nearby visible ones.

    Without this, the black or arbitrary colour hidden under transparency leaks into edge pixels
    during upscaling and shows as dark fringes. A push-pull pyramid of alpha-weighted colour fills
    each transparent pixel with a smooth average of the nearest visible colours.
    """
    hidden = alpha <= 0
    if not bool(hidden.any()) or bool(hidden.all()):
        return rgb
    weight = (alpha > 0).astype(np.float32)
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    colour, w = rgb * weight, weight
    while True:
        levels.append((colour, w))
        if max(colour.shape[-2:]) <= 1:  # down to one pixel: a wide picture has visible colour there
            break
        colour, w = _halve(colour), _halve(w)
    filled = levels[-1][0] / np.maximum(levels[-1][1], 1e-12)
    for colour, w in reversed(levels[:-1]):
        up = _bilinear(filled, *colour.shape[-2:])
        filled = np.where(w > 0, colour / np.maximum(w, 1e-12), up).astype(np.float32)
    return np.where(hidden, filled, rgb).astype(np.float32)


def settled_alpha(alpha: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Where an upscaled alpha plane must be exactly transparent and exactly opaque: the output
    pixels whose input pixel and its 8 neighbours are all fully transparent (resp. opaque).

    A network sees beyond its input as zeros and adds its biases, so alpha that is 0 or 1 all
    around comes out 1-2 levels off near the image border; "trim transparent" tools and GIF's
    on/off transparency then see content there. ``alpha`` is (1, 1, h, w) in [0, 1]; the masks
    are (height, width) booleans for the output, each output pixel mapped to its input pixel."""
    plane = alpha[0, 0]
    rows = np.minimum(np.arange(height) * plane.shape[0] // height, plane.shape[0] - 1)
    cols = np.minimum(np.arange(width) * plane.shape[1] // width, plane.shape[1] - 1)
    masks = []
    for level in (0.0, 1.0):
        padded = np.pad(plane == level, 1, mode="edge")
        around = np.ones(plane.shape, dtype=bool)
        for dy in range(3):
            for dx in range(3):
                around &= padded[dy : dy + plane.shape[0], dx : dx + plane.shape[1]]
        masks.append(around[rows][:, cols])
    return masks[0], masks[1]


def _halve(x: np.ndarray) -> np.ndarray:
    """2x2 mean pooling of (..., H, W); an odd last row or column is averaged over what exists."""
    height, width = x.shape[-2:]
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, height % 2), (0, width % 2)])
    count = np.pad(np.ones((height, width), np.float32), [(0, height % 2), (0, width % 2)])
    sums = padded[..., 0::2, 0::2] + padded[..., 1::2, 0::2] + padded[..., 0::2, 1::2] + padded[..., 1::2, 1::2]
    n = count[0::2, 0::2] + count[1::2, 0::2] + count[0::2, 1::2] + count[1::2, 1::2]
    return (sums / n).astype(np.float32)


def _bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of (..., h, w) to (height, width), pixel centres aligned (half-pixel rule)."""

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0)
        lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
        return lo, np.minimum(lo + 1, n_in - 1), (pos - lo).astype(np.float32)

    y0, y1, fy = axis(x.shape[-2], height)
    x0, x1, fx = axis(x.shape[-1], width)
    rows = x[..., y0, :] * (1 - fy)[:, None] + x[..., y1, :] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


# -- PIL images <-> arrays ---------------------------------------------------------------------
def pil_to_array(image: Image.Image, meta: ImageMeta | None = None) -> tuple[np.ndarray, str]:
    """A PIL image as a numpy array in one of the layouts the upscaler takes, plus its mode.

    Palette images become RGB, or RGBA when they have transparency (a key, or RGBA palette entries); a colour-key transparency
    on 1, L, I;16, I or RGB becomes a real alpha channel (16-bit grey + key: HxWx2 uint16, which
    :func:`array_to_pil` can only give back as 8-bit LA; the key of a 2- or 4-bit grey PNG scaled
    as Pillow scales its pixels, see :func:`_grey_key`); CMYK becomes RGB (through its ICC profile
    when ``meta`` carries one); 16-bit grey stays uint16 and float grey float32.
    """
    mode = image.mode
    keyed = "transparency" in image.info
    if mode in ("P", "PA"):
        alphas = image.info.get("transparency")
        if isinstance(alphas, bytes) and len(alphas) > 256:  # entries past 256 belong to no colour a pixel can use
            image = image.copy()  # (Pillow refused the picture: "palette index out of range")
            image.info["transparency"] = alphas[:256]
        # a palette of RGBA entries (a TGA's 32-bit colour map, putpalette(..., "RGBA")) holds alpha of its own;
        # it had been dropped (RGB)
        alpha_palette = mode == "P" and image.palette is not None and image.palette.mode == "RGBA"
        image = image.convert("RGBA" if keyed or mode == "PA" or alpha_palette else "RGB")
        if alpha_palette and not keyed and np.asarray(image)[..., 3].min() == 255:
            image = image.convert("RGB")  # every pixel opaque: no alpha to keep
    elif mode in ("1", "L") and keyed and _int_key(image.info["transparency"]):
        factor = _file_grey_factor(image)  # before the pixels are loaded, which ends Pillow's knowledge of the file
        grey = np.asarray(image.convert("L") if mode == "1" else image)
        return _keyed(grey, _grey_key(image, grey, factor)), mode
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("L", "RGB") and keyed:
        image = image.convert("LA" if mode == "L" else "RGBA")
    elif mode == "CMYK":
        image = cmyk_to_rgb(image, meta) if meta is not None else image.convert("RGB")
    elif mode.startswith("I;16"):
        values = np.asarray(image).astype(np.uint16)
        if keyed and _int_key(image.info["transparency"]):  # a 16-bit grey PNG's tRNS, as Pillow reads it
            return _keyed(values, image.info["transparency"]), mode
        return values, mode
    elif mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            log.warning("32-bit integer pixels go from %d to %d: clipped to 0..65535 (16 bits)", values.min(), values.max())
        elif values.size and 0 < values.max() <= 255:  # 8-bit values in a 32-bit image (convert("I") of an L one)
            log.warning("mode I pixels are read as 16-bit (0..65535), and these go up to %d only: the picture comes out "
                        "nearly black if they are 8-bit values: for those, give a mode L image (image.convert(\"L\"))", values.max(),
                        extra=PER_FILE)
        values = np.clip(values, 0, 65535).astype(np.uint16)
        if keyed and _int_key(image.info["transparency"]):  # a 16-bit key carried into mode I (convert("I") keeps it)
            return _keyed(values, image.info["transparency"]), mode
        return values, mode
    elif mode == "F":
        return np.asarray(image, dtype=np.float32), mode
    elif mode == "La":
        image = image.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):  # RGBa, RGBX, YCbCr, HSV, LAB (not alpha: the A of L*a*b*)
        image = image.convert("RGBA" if mode == "RGBa" else "RGB")
        if meta is not None and mode in ("LAB", "HSV", "YCbCr"):
            meta.icc_profile = None  # a Lab or other profile of the input does not describe the RGB pixels
    return np.asarray(image).copy(), mode


def _int_key(key: object) -> bool:
    """Whether a grey image's ``info["transparency"]`` is a colour key (one sample value)."""
    return isinstance(key, (int, np.integer)) and not isinstance(key, bool)


def _keyed(grey: np.ndarray, key: int) -> np.ndarray:
    """Grey pixels and a colour key as grey + alpha (HxWx2, same dtype): the key's pixels transparent."""
    top = np.iinfo(grey.dtype).max
    return np.dstack([grey, np.where(grey == key, 0, top).astype(grey.dtype)])


#: Pillow's raw modes of grey PNGs below 8 bits -> the factor it scales their samples by (to 0..255)
_LOW_GREY = {"L;2": 85, "L;4": 17}


def _file_grey_factor(image: Image.Image) -> int | None:
    """What Pillow scaled a grey PNG's samples by (85 for 2 bits, 17 for 4, else 1), from its raw
    mode while the image is not loaded yet; None once that is gone (loaded, copied)."""
    raw = [getattr(tile, "args", None) for tile in (getattr(image, "tile", None) or ())]
    stream = getattr(image, "png", None)  # an APNG keeps its stream after loading
    raw.append(getattr(stream, "im_rawmode", None) if stream is not None else None)
    known = [r for r in (r[0] if isinstance(r, tuple) and r else r for r in raw) if isinstance(r, str)]
    return _LOW_GREY.get(known[0], 1) if known else None


def _grey_key(image: Image.Image, grey: np.ndarray, factor: int | None) -> int:
    """The colour key of a mode 1 or L image as a value of its pixels ``grey`` (``factor``: what
    the file's samples were scaled by, see :func:`_file_grey_factor`).

    Pillow reads a 1-bit PNG's key as 0 or 255 (the "1" pixels' values); it scales a 2- or 4-bit
    grey PNG's samples to 0..255 (x85, x17) but keeps its key as the file says (3, not 255), so
    the key matched no pixel and the transparency was lost. Where the file's depth is no longer
    known, a key below 16 that matches no pixel, while every pixel lies on the 4-bit (2-bit) grid
    and some pixel is the key scaled, is taken as such a file's key (the only other reading, an
    8-bit picture whose key matches none of its pixels, has nothing transparent: said at INFO)."""
    key = int(image.info["transparency"])
    if image.mode == "1":
        return 255 if key else 0
    if factor is not None:
        return key * factor
    if not 0 < key < 16 or getattr(image, "format", None) not in ("PNG", None) or bool((grey == key).any()):
        return key
    for scale in (17, 85):  # 4-bit first: a 2-bit file has no pixel at 17, 34 or 51
        if key * scale <= 255 and not bool((grey % scale).any()) and bool((grey == key * scale).any()):
            bits = 4 if scale == 17 else 2
            log.info("the colour key %d matches no pixel, and every pixel is a %d-bit grey value: taken as the key "
                     "of a %d-bit grey PNG, which Pillow keeps unscaled (%d)", key, bits, bits, key * scale, extra=PER_FILE)
            return key * scale
    return key


def array_to_pil(array: np.ndarray, mode: str | None = None) -> Image.Image:
    """A numpy array as a PIL image (16-bit grey stays 16-bit; 16-bit and float colour become 8-bit)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype == np.uint16:
        if array.ndim == 2:  # mode "I" (32-bit) comes back as "I", with the 16-bit values it went in as
            return Image.fromarray(np.ascontiguousarray(array, dtype=np.int32 if mode == "I" else np.uint16))
        array = _to_uint8(array)
    if array.dtype.kind == "f":
        if array.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
        array = _to_uint8(array)
    return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Any supported pixel array as uint8 (16 bits rounded to nearest, float by :func:`from_float`)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return from_float(array.astype(np.float32, copy=False), np.uint8)


def _to_uint16(array: np.ndarray) -> np.ndarray:
    """Any supported pixel array as uint16 (8 bits exactly x257, float by :func:`from_float`)."""
    if array.dtype == np.uint16:
        return array
    if array.dtype == np.uint8:
        return array.astype(np.uint16) * 257
    return from_float(array.astype(np.float32, copy=False), np.uint16)

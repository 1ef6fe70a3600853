"""Benchmark evaluation as in the published super-resolution tables: model runners, per-image and
per-set results, reports.

The conventions (modcrop, MATLAB bicubic LR, Y channel, shaved border) live in
:mod:`sr_filter.imageops` and the measures (PSNR, SSIM, GMSD) in :mod:`sr_filter.metrics`; this module
runs an upscaler over folders of ground-truth images (:mod:`sr_filter.datasets`) and reports.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .datasets import exclude_pattern, read_image, select_images
from .errors import EvaluationError, SrFilterError, first_line
from .imageops import imresize, make_pair
from .metrics import measure, measure_sharpness

log = logging.getLogger(__name__)


#: an upscaler for evaluation: HxWx3 uint8 LR in, (H*s)x(W*s)x3 uint8 out
UpscaleFn = Callable[[np.ndarray], np.ndarray]


def bicubic_upscaler(scale: int) -> UpscaleFn:
    """The baseline of the tables: MATLAB bicubic upscaling of the LR image."""

    def run(lr: np.ndarray) -> np.ndarray:
        return imresize(lr, float(scale))

    return run


def network_upscaler(net: "torch.nn.Module") -> UpscaleFn:  # noqa: F821
    """Run an in-memory network on whole LR images (validation during training), with the filter's
    own conversions (:func:`sr_filter.convert.split` and :func:`~sr_filter.convert.merge`): a grey
    picture comes out grey, as ``sr-filter eval`` of the exported model gives it (the network's raw
    colour output had been measured, 0.01 dB off eval's on Set14's bridge)."""
    import torch

    from .convert import merge, split

    def run(lr: np.ndarray) -> np.ndarray:
        planes = split(lr)
        with torch.inference_mode():
            out = net(torch.from_numpy(planes.rgb)).float().numpy()
        return merge(planes, out, None)

    return run


def model_upscaler(model: str, *, device: str = "auto", precision: str = "auto", tile: int | str = "auto",
                   offline: bool | None = None, colour_fix: bool | None = None) -> tuple[UpscaleFn, int, str]:
    """A preset, manifest name or weights file run through the filter's own :class:`Upscaler`
    (same loading, device choice and tiling as users get). Returns (upscale, scale, description)."""
    from .upscaler import Upscaler

    up = Upscaler(model, device=device, precision=precision, tile=tile, offline=offline, colour_fix=colour_fix)
    return up.upscale_array, up.scale, up.describe()


# --------------------------------------------------------------------------- results


def dumps(payload: object, indent: int | None = 2) -> str:
    """Strict JSON of results: an infinite PSNR (identical images) or an undefined sharpness (a
    flat ground truth) becomes null, which every JSON reader accepts (NaN and Infinity are not JSON).
    ``indent=None``: one line (training's log.jsonl)."""

    def finite(value: object) -> object:
        if isinstance(value, float) and not np.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(payload), indent=indent, allow_nan=False)


@dataclass
class ImageResult:
    name: str
    psnr: float
    ssim: float
    seconds: float
    gmsd: float = float("nan")
    #: output / ground-truth gradient magnitude on the ground truth's edges (1.0 = as sharp)
    sharpness: float = float("nan")


def _finite_mean(values: list[float]) -> float:
    """The mean of the finite values; infinite when every value is (every image exact)."""
    finite = [v for v in values if math.isfinite(v)]
    if finite:
        return float(np.mean(finite))
    return float("inf") if values and all(v == float("inf") for v in values) else float("nan")


@dataclass
class SetResult:
    dataset: str
    scale: int
    images: list[ImageResult] = field(default_factory=list)

    # the means leave out images where a measure has no finite value (said when measured): a
    # flat picture has no edges to be sharp on (NaN), an exact one an infinite PSNR; either
    # had turned the whole set's mean into NaN or infinity
    @property
    def psnr(self) -> float:
        return _finite_mean([r.psnr for r in self.images])

    @property
    def ssim(self) -> float:
        return _finite_mean([r.ssim for r in self.images])

    @property
    def gmsd(self) -> float:
        return _finite_mean([r.gmsd for r in self.images])

    @property
    def sharpness(self) -> float:
        return _finite_mean([r.sharpness for r in self.images])

    @property
    def seconds(self) -> float:
        return float(sum(r.seconds for r in self.images))


@dataclass
class EvalReport:
    model: str
    scale: int
    sets: list[SetResult] = field(default_factory=list)
    #: how the inputs were made and chosen (jpeg, hr_scale, include, exclude, limit): results
    #: measured on JPEG-compressed or downscaled inputs must not pass for clean ones
    conditions: dict = field(default_factory=dict)

    def describe_conditions(self) -> str:
        """The conditions that differ from the published tables' clean set-up, in words ("" for none)."""
        c = self.conditions
        parts = [f"LR saved as JPEG q{c['jpeg']}" if c.get("jpeg") else "",
                 f"ground truth downscaled x{c['hr_scale']:g}" if c.get("hr_scale", 1.0) != 1.0 else "",
                 f"only {', '.join(c['include'])}" if c.get("include") else "",
                 f"without {', '.join(c['exclude'])}" if c.get("exclude") else "",
                 f"at most {c['limit']} per folder" if c.get("limit") else ""]
        return "; ".join(p for p in parts if p)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "scale": self.scale,
            "conditions": {"jpeg": None, "hr_scale": 1.0, "include": [], "exclude": [], "limit": None, **self.conditions},
            "metric": "PSNR/SSIM/GMSD on Y (BT.601), modcrop, MATLAB bicubic LR, border shaved by scale; "
                      "sharpness = output/ground-truth Sobel magnitude on the ground truth's top 10% gradients",
            "sets": [
                {
                    "dataset": s.dataset,
                    "psnr": round(s.psnr, 4),
                    "ssim": round(s.ssim, 5),
                    "gmsd": round(s.gmsd, 5),
                    "sharpness": round(s.sharpness, 4),
                    "seconds": round(s.seconds, 3),
                    "images": [
                        {**asdict(r), "psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5), "gmsd": round(r.gmsd, 5),
                         "sharpness": round(r.sharpness, 4), "seconds": round(r.seconds, 3)}
                        for r in s.images
                    ],
                }
                for s in self.sets
            ],
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())

    def table(self, per_image: bool = False) -> str:
        """A plain-text table: one row per set (and per image when asked)."""
        names = [f"  {s.dataset}/{r.name}" for s in self.sets for r in s.images] if per_image else []
        width = max([24] + [len(n) + 2 for n in names] + [len(f"{s.dataset} ({len(s.images)})") + 2 for s in self.sets])
        inputs = self.describe_conditions()
        lines = [f"model: {self.model}   scale: x{self.scale}" + (f"   inputs: {inputs}" if inputs else ""),
                 f"{'set / image':<{width}}{'PSNR-Y':>9}{'SSIM-Y':>9}{'GMSD-Y':>9}{'sharp':>7}{'sec':>8}"]
        for s in self.sets:
            if per_image:
                for r in s.images:
                    label = f"  {s.dataset}/{r.name}"
                    lines.append(f"{label:<{width}}{r.psnr:>9.2f}{r.ssim:>9.4f}{r.gmsd:>9.4f}{r.sharpness:>7.3f}{r.seconds:>8.2f}")
            lines.append(f"{s.dataset + f' ({len(s.images)})':<{width}}{s.psnr:>9.2f}{s.ssim:>9.4f}{s.gmsd:>9.4f}{s.sharpness:>7.3f}{s.seconds:>8.2f}")
        return "\n".join(lines)


def set_names(folders: Iterable[str | Path]) -> list[str]:
    """A name for each folder of images, as reports and training logs show it: its own, or, where two
    share one (x2/Set5, x4/Set5), as much of its path as tells it from the others (one had replaced
    the other in a training log)."""
    paths = [Path(d) for d in folders]

    def tail(path: Path, depth: int) -> str:
        return "/".join(path.parts[-depth:])

    names = []
    for i, path in enumerate(paths):
        others = [p for j, p in enumerate(paths) if j != i]
        depth = next((d for d in range(1, len(path.parts) + 1) if all(tail(path, d) != tail(o, d) for o in others)), None)
        names.append(str(path) if depth is None else tail(path, depth))
    return names


def evaluate_folder(upscale: UpscaleFn, folder: Path, scale: int, name: str | None = None,
                    limit: int | None = None, include: Sequence[str] = (), hr_scale: float = 1.0,
                    jpeg: int | None = None, exclude: Sequence[str] = ()) -> SetResult:
    """PSNR/SSIM/GMSD and sharpness of ``upscale`` on the images of ``folder`` (HR ground truth).

    ``include``: only files matching these patterns, ``exclude``: none matching these; ``hr_scale``: downscale each ground truth
    first (MATLAB bicubic), to evaluate large photos at a smaller size; ``jpeg``: the LR input is
    also JPEG-compressed at this quality (models meant for compressed web images and video).
    """
    if scale < 1:
        raise EvaluationError(f"scale must be a positive integer, not {scale}")
    if not 0 < hr_scale <= 1:
        raise EvaluationError(f"hr_scale must be in (0, 1], not {hr_scale}")
    result = SetResult(dataset=name or Path(folder).resolve().name, scale=scale)
    paths = measured_images(folder, scale, limit, include, exclude, hr_scale)
    stems = [p.stem for p in paths]
    notes: list[tuple[str, bool, bool]] = []  # (file, output exact, ground truth without edges)
    for path in paths:
        hr, gray = _read(path)
        check_measurable(path.name, hr.shape[:2], scale, hr_scale)
        hr, lr = make_pair(hr, scale, hr_scale, jpeg)
        t0 = time.perf_counter()
        sr = upscale(lr)
        dt = time.perf_counter() - t0
        p, s, g = measure(sr, hr, scale, gray=gray)
        sharp = measure_sharpness(sr, hr, scale, gray=gray)
        notes.append((path.name, math.isinf(p), math.isnan(sharp)))
        # named without the extension, as the published tables do, unless two files share a stem
        result.images.append(ImageResult(path.stem if stems.count(path.stem) == 1 else path.name, p, s, dt, g, sharp))
    every_exact = bool(notes) and all(exact for _, exact, _ in notes)
    if every_exact:  # each "left out of the mean" had been followed by a mean of inf
        log.warning("%s: every output equals its ground truth: the set's PSNR is infinite", result.dataset)
    for file, exact, edgeless in notes:
        left_out = (["PSNR (the output equals the ground truth)"] if exact and not every_exact else []) + \
            (["sharpness (the ground truth has no edges)"] if edgeless else [])
        if left_out:
            log.warning("%s: left out of the set's mean %s", file, " and ".join(left_out))
    return result


def measured_images(folder: Path, scale: int, limit: int | None = None, include: Sequence[str] = (),
                    exclude: Sequence[str] = (), hr_scale: float = 1.0) -> list[Path]:
    """The images of ``folder`` that :func:`evaluate_folder` measures with these settings, each checked
    (from its header) to be large enough at ``scale``: an EvaluationError naming those that are not.
    ``sr-filter eval`` calls it for every folder and scale before measuring any, so that a picture too
    small at the last scale does not end the command after the others' work."""
    paths = select_images(folder, include, exclude)[:limit]
    _check_sizes(paths, scale, hr_scale)
    return paths


def _read(path: Path) -> tuple[np.ndarray, bool]:
    """:func:`~sr_filter.datasets.read_image`; a damaged file is said with the way to leave it out."""
    try:
        return read_image(path)
    except SrFilterError as exc:
        raise EvaluationError(f"{first_line(exc)}; leave it out with --exclude {shlex.quote(exclude_pattern(path.name))}") from None


#: SSIM's window: the ground truth must keep this many pixels a side once the border is shaved
_SSIM_WINDOW = 11


def check_measurable(name: str, shape: tuple[int, int], scale: int, hr_scale: float = 1.0,
                     advice: str | None = None) -> None:
    """EvaluationError for a ground truth too small to measure at ``scale`` (after ``hr_scale``
    and the crop to a multiple of the scale): SSIM's 11 px window must fit inside the shaved border."""
    measured = _measured_size(shape, scale, hr_scale)
    need = _SSIM_WINDOW + 2 * scale
    if min(measured) < need:
        raise EvaluationError(
            f"{name} is {_size_text(shape, measured, scale, hr_scale)}; measuring needs at least {need} on each side "
            f"(SSIM's {_SSIM_WINDOW} px window inside the {scale} px border that is left out); "
            + (advice or f"leave it out with --exclude {shlex.quote(exclude_pattern(name))}" + (" or use a larger --hr-scale" if hr_scale < 1 else "")))


def _measured_size(shape: tuple[int, int], scale: int, hr_scale: float) -> tuple[int, int]:
    """(height, width) of a ground truth as measured: after ``hr_scale`` (as imresize) and the crop
    to a multiple of the scale (modcrop)."""
    return tuple((math.ceil(n * hr_scale) if hr_scale != 1 else n) // scale * scale for n in shape)  # type: ignore[return-value]


def _size_text(shape: tuple[int, int], measured: tuple[int, int], scale: int, hr_scale: float) -> str:
    """"WxH pixels", and what is measured of them where that differs (a 3x3 picture had been
    "0x0 pixels as measured at x4")."""
    (height, width), (mh, mw) = shape, measured
    if (mh, mw) == (height, width):
        return f"{width}x{height} pixels"
    how = f"downscaled by {hr_scale:g} and cropped to a multiple of {scale}" if hr_scale != 1 else f"cropped to a multiple of {scale}"
    return f"{width}x{height} pixels, {mw}x{mh} once {how}"


def _check_sizes(paths: Sequence[Path], scale: int, hr_scale: float) -> None:
    """Every ground truth that is too small, in one error (they had come one per run)."""
    from PIL import Image

    need = _SSIM_WINDOW + 2 * scale
    small, sized = [], 0
    for path in paths:
        try:
            with Image.open(path) as image:
                shape = (image.height, image.width)
        except Image.DecompressionBombError:
            continue  # a very large picture: read_image, which takes it, is not run twice for its size
        except (OSError, ValueError, SyntaxError):
            # read now, to say what is wrong with it before any work (it had been said in its turn,
            # after the other folders' and models' work); a format Pillow does not open may still read
            hr, _gray = _read(path)
            shape = hr.shape[:2]
        sized += 1
        measured = _measured_size(shape, scale, hr_scale)
        if min(measured) < need:
            small.append((path.name, shape, measured))
    if len(small) > 1 and len(small) == sized:  # leaving them out would leave nothing (it had said to, naming each)
        name, shape, measured = max(small, key=lambda s: min(s[2]))
        raise EvaluationError(
            f"every image is too small to measure at x{scale}, which needs at least {need} px on each side (the largest, "
            f"{name}, is {_size_text(shape, measured, scale, hr_scale)}); "
            + ("use a larger --hr-scale" if hr_scale < 1 else "use a smaller scale or larger pictures"))
    if len(small) == 1:
        check_measurable(*small[0][:2], scale, hr_scale)
    if small:
        listed = ", ".join(f"{name} ({_size_text(shape, measured, scale, hr_scale)})"
                           for name, shape, measured in small[:3]) + (", ..." if len(small) > 3 else "")
        excludes = " ".join(f"--exclude {shlex.quote(exclude_pattern(name))}" for name, *_ in small)
        raise EvaluationError(
            f"{len(small)} image(s) are too small to measure at x{scale}, which needs at least {need} px on each side "
            f"(SSIM's {_SSIM_WINDOW} px window inside the {scale} px border that is left out): {listed}; leave them out with "
            f"{excludes}" + (" or use a larger --hr-scale" if hr_scale < 1 else ""))


def evaluate(upscale: UpscaleFn, folders: Iterable[Path], scale: int, model_name: str = "model") -> EvalReport:
    """Evaluate one upscaler on several folders of HR images."""
    report = EvalReport(model=model_name, scale=scale)
    paths = [Path(folder) for folder in folders]
    for folder, name in zip(paths, set_names(p.resolve() for p in paths)):  # x2/Set5 and x4/Set5 both said "Set5"
        report.sets.append(evaluate_folder(upscale, folder, scale, name=name))
    return report


__all__: Sequence[str] = [
    "EvalReport", "ImageResult", "SetResult", "UpscaleFn", "bicubic_upscaler", "check_measurable", "dumps",
    "evaluate", "evaluate_folder", "measured_images", "model_upscaler", "network_upscaler", "set_names",
]

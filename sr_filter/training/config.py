"""One TOML file per experiment, parsed into frozen dataclasses.

Unknown keys are errors (a typo must not silently fall back to a default), and relative paths are
resolved against the config file's folder so that a config runs from any working directory.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "edsr"
    #: constructor arguments of the architecture (``upscale`` is filled in from ``data.scale``)
    settings: dict = field(default_factory=dict)
    #: weights to start from (fine-tuning): a model file or a manifest name such as "sr-photo-x4";
    #: it must be the same architecture with the same settings. Empty: random initial weights.
    init: str = ""


@dataclass(frozen=True)
class DegradationConfig:
    """How LR inputs are made from HR patches; the stages run in the order listed here."""

    #: probability and range of a Gaussian blur sigma (in HR pixels) before downscaling
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.2, 2.0)
    #: downscaling kernel: "matlab_bicubic" (the benchmark degradation), "bilinear", "area", "random"
    resize: str = "matlab_bicubic"
    #: Gaussian noise on the LR, std in 0..255 units
    noise_prob: float = 0.0
    noise_sigma: tuple[float, float] = (1.0, 10.0)
    #: JPEG compression of the LR
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 95)
    #: video-codec-like artefacts (block DCT quantisation + chroma subsampling + banding)
    video_prob: float = 0.0
    video_quality: tuple[int, int] = (10, 40)


@dataclass(frozen=True)
class DataConfig:
    train_dirs: tuple[str, ...] = ()
    scale: int = 4
    #: LR patch side; HR patches are ``scale`` times larger
    patch: int = 40
    batch: int = 16
    #: extra copies of every HR image downscaled by these factors (data augmentation as in VDSR)
    rescale: tuple[float, ...] = (1.0,)
    flips: bool = True
    rot90: bool = True
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    #: file-name patterns (fnmatch, e.g. "src_*") left out of training: held-out evaluation images
    exclude: tuple[str, ...] = ()
    #: share of the patches drawn from the procedural line-art synthesiser (training/lineart.py)
    #: instead of the training images, degraded the same way; 0: none
    lineart: float = 0.0


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    iterations: int = 10000
    #: "cosine" (to ``min_lr``), "step" (x ``gamma`` at each of ``milestones``) or "constant"
    schedule: str = "cosine"
    min_lr: float = 1e-6
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    warmup: int = 0
    grad_clip: float = 0.0


@dataclass(frozen=True)
class LossConfig:
    """Loss weights; 0 turns a term off."""

    l1: float = 1.0
    mse: float = 0.0
    perceptual: float = 0.0
    #: "vgg19" or "resnet50" features for the perceptual and texture losses
    perceptual_net: str = "vgg19"
    perceptual_layers: tuple[str, ...] = ("relu5_4",)
    #: ImageNet weights for the feature network: torchvision's file, downloaded and sha256-checked;
    #: ``feature_weights`` = a local copy instead, ``feature_sha256`` = the full pin to download with,
    #: ``feature_pretrained = false`` = random features (tests only)
    feature_weights: str = ""
    feature_sha256: str = ""
    feature_pretrained: bool = True
    texture: float = 0.0
    texture_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1")
    texture_patch: int = 16
    adversarial: float = 0.0
    critic_lr: float = 1e-4
    critic_feat: int = 64
    critic_depth: int = 4
    critic_steps: int = 1
    gp_weight: float = 10.0


@dataclass(frozen=True)
class ValConfig:
    dirs: tuple[str, ...] = ()
    every: int = 500
    #: evaluate at most this many images per folder (0: all)
    limit: int = 0
    #: only the files matching these patterns (fnmatch; empty: all), e.g. the held-out "src_*"
    include: tuple[str, ...] = ()
    #: downscale the ground truth by this factor first (large photos evaluated at a smaller size)
    hr_scale: float = 1.0
    #: JPEG-compress the LR inputs at this quality (0: off), for models trained on compressed inputs
    jpeg: int = 0


@dataclass(frozen=True)
class TrainConfig:
    #: the run folder's name in out_dir (from a file: its name without .toml unless given)
    name: str = "experiment"
    out_dir: str = "runs"
    seed: int = 0
    #: torch CPU threads (0: torch's default)
    threads: int = 0
    #: "auto" (CUDA if available), "cpu" or "cuda"
    device: str = "auto"
    #: bf16/fp16 autocast on CUDA ("auto": bf16 where supported), "off" everywhere else
    amp: str = "auto"
    #: exponential moving average of the weights (0: off), e.g. 0.999
    ema: float = 0.0
    log_every: int = 50
    #: redraw curves.png at every checkpoint (needs matplotlib)
    plot: bool = True
    checkpoint_every: int = 500
    #: how many iter_*.pt copies to keep, the newest (0: every one; a long run fills a disk with them)
    keep_checkpoints: int = 0
    #: also checkpoint when this many seconds passed since the last one (0: off)
    checkpoint_seconds: float = 300.0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    val: ValConfig = field(default_factory=ValConfig)
    #: where the config came from (paths are relative to it)
    source: str = ""

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: fields the program fills in, not settings of a config file
_INTERNAL = {"source"}


def _build(cls: type, data: dict, where: str) -> Any:
    """A dataclass from a dict, recursively, rejecting unknown keys and converting lists to tuples."""
    if not isinstance(data, dict):
        raise ConfigError(f"[{where}] must be a table, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    known = set(fields) - _INTERNAL
    unknown = set(data) - known
    if unknown:
        place = f"[{where}]" if where else "the top level"
        raise ConfigError(f"unknown setting(s) in {place}: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    kwargs = {}
    for key, value in data.items():
        default = getattr(cls(), key) if key in fields else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value, f"{where}.{key}" if where else key)
        else:
            kwargs[key] = _typed(value, default, str(fields[key].type), f"[{where}] {key}" if where else key)
    return cls(**kwargs)


_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _typed(value: Any, default: Any, annotation: str, name: str) -> Any:
    """``value`` as the type of the setting's default (a list becomes a tuple of the annotated item
    type), or a ConfigError that says what is expected: ``iterations = "10"`` is not a number, and a
    string where a list belongs would otherwise be taken letter by letter."""
    if isinstance(default, tuple):
        item = re.match(r"tuple\[(\w+)", annotation)
        kind = {"int": int, "float": float, "str": str}.get(item.group(1) if item else "", str)
        pair = ", ..." not in annotation and annotation.count(",") == 1
        if not isinstance(value, list) or (pair and len(value) != 2):
            raise ConfigError(f"{name} must be a list {'of two ' if pair else 'of '}{_plural(kind)}, e.g. "
                              f"{list(default) if default else ['...']}, not {value!r}")
        return tuple(_typed(v, kind(), "", f"{name}'s item") for v in value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a table, e.g. {{ num_feat = 64 }}, not {value!r}")
        return value
    kind = type(default)
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        choices = _CHOICES.get(name.split()[-1]) if kind is str else None
        if choices:  # `amp = true` had been told only "must be a string"
            raise ConfigError(f"{name} must be {choices} (a string in quotes), not {value!r}")
        raise ConfigError(f"{name} must be {_TYPE_NAMES.get(kind, kind.__name__)}, not {value!r}")
    return value


#: the values of the settings that take one of a few words, as the checks after reading name them
_CHOICES = {"amp": "auto, bf16, fp16 or off", "device": "auto, cpu or cuda", "schedule": "cosine, step or constant",
            "resize": "matlab_bicubic, bilinear, area or random"}


def _plural(kind: type) -> str:
    return {int: "whole numbers", float: "numbers", str: "strings"}[kind]


def config_from_dict(data: dict, base: Path | None = None) -> TrainConfig:
    """Build a config from a dict (as read from TOML); relative paths resolve against ``base``."""
    cfg = _build(TrainConfig, data, "")
    if base is not None:
        def absol(p: str) -> str:  # "~/data" is the home folder's, as on the command line
            p = os.path.expanduser(p)
            return str((base / p).resolve()) if not Path(p).is_absolute() else p

        init = cfg.model.init
        if init:
            from ..models import is_path_spec

            if is_path_spec(init):
                init = absol(init)
        cfg = dataclasses.replace(
            cfg,
            out_dir=absol(cfg.out_dir),
            model=dataclasses.replace(cfg.model, init=init),
            data=dataclasses.replace(cfg.data, train_dirs=tuple(absol(p) for p in cfg.data.train_dirs)),
            val=dataclasses.replace(cfg.val, dirs=tuple(absol(p) for p in cfg.val.dirs)),
            # (it had been read from the working folder, unlike every other path of the file)
            loss=dataclasses.replace(cfg.loss, feature_weights=absol(cfg.loss.feature_weights) if cfg.loss.feature_weights else ""),
        )
    _validate(cfg)
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a TOML experiment file."""
    path = Path(path)
    try:
        # utf-8-sig: a byte-order mark (PowerShell's "utf8") had been "Invalid statement (at line 1, column 1)"
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; name a TOML config file (configs/*.toml)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a TOML text file; name a config such as configs/photo_x4_small.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    named = "name" in data
    if not named:  # two configs without a name had shared runs/experiment: the second continued the first
        data = {**data, "name": path.stem}
    cfg = config_from_dict(data, base=path.resolve().parent)
    earlier = Path(cfg.out_dir) / TrainConfig.name
    if not named and not cfg.run_dir.exists() and (earlier / "latest.pt").is_file():
        logging.getLogger(__name__).warning(
            "%s has no name, so its run folder is now %s (named after the file); %s holds a run from before, "
            "of a config without a name: to continue that one, add name = \"%s\" to the config",
            path, cfg.run_dir, earlier, TrainConfig.name)
    return dataclasses.replace(cfg, source=str(path.resolve()))


def _validate(cfg: TrainConfig) -> None:
    if not cfg.data.train_dirs:
        raise ConfigError("[data] train_dirs is empty: list at least one folder of HR training images")
    if cfg.data.scale < 1 or cfg.data.patch < 4 or cfg.data.batch < 1:
        raise ConfigError("[data] needs scale >= 1, patch >= 4 and batch >= 1")
    if cfg.optim.schedule not in ("cosine", "step", "constant"):
        raise ConfigError(f"[optim] schedule must be cosine, step or constant, not {cfg.optim.schedule!r}")
    if cfg.optim.iterations < 1:
        raise ConfigError("[optim] iterations must be at least 1")
    if not 0 <= cfg.ema < 1:
        raise ConfigError("ema must be in [0, 1), e.g. 0.999")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, not {cfg.device!r}")
    if cfg.amp not in ("auto", "bf16", "fp16", "off"):
        raise ConfigError(f"amp must be auto, bf16, fp16 or off, not {cfg.amp!r}")
    if not 0 <= cfg.val.jpeg <= 100:
        raise ConfigError("[val] jpeg is a JPEG quality from 1 to 100 (0: off)")
    seen: set[Path] = set()
    for folder in cfg.val.dirs:  # one folder twice had been measured twice and logged once, every name a full path
        key = Path(os.path.expanduser(folder)).resolve()
        if key in seen:
            raise ConfigError(f"[val] dirs lists {key} twice; list each folder once")
        seen.add(key)
    if not 0 < cfg.val.hr_scale <= 1:
        raise ConfigError("[val] hr_scale must be in (0, 1], e.g. 0.5 to evaluate 1024 px photos at 512 px")
    if not 0 <= cfg.data.lineart <= 1:
        raise ConfigError("[data] lineart is the share of synthetic line-art patches, from 0 to 1")
    if cfg.data.degradation.resize not in ("matlab_bicubic", "bilinear", "area", "random"):
        raise ConfigError("[data.degradation] resize must be matlab_bicubic, bilinear, area or random")
    _validate_ranges(cfg)


#: the largest seed (the per-iteration generators are seeded from it) and thread count taken
MAX_SEED, MAX_THREADS = 2**31 - 1, 4096


def _check_finite(section: Any, where: str = "") -> None:
    """NaN or infinity in any number of the config (a range's end too): the range checks read
    NaN as in range, and the run failed at its first batch with a traceback."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            _check_finite(value, f"{where}.{f.name}" if where else f.name)
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"{f'[{where}] ' if where else ''}{f.name} must be a finite number, not {value}")


def _at_least(section: Any, where: str, *rules: tuple) -> None:
    """Refuse the first of ``rules`` ((key, least[, note])) whose setting in ``section`` is below its least."""
    for key, least, *note in rules:
        value = getattr(section, key)
        if value < least:
            raise ConfigError(f"{where}{key} must be {'at least 1' if least == 1 else '0 or more'}"
                              f"{note[0] if note else ''}, not {value:g}")


def _validate_ranges(cfg: TrainConfig) -> None:
    """Values that would run but mean nothing (a probability of 2) or fail deep inside (every = 0)."""
    _check_finite(cfg)
    for key, most in (("seed", MAX_SEED), ("threads", MAX_THREADS)):
        if getattr(cfg, key) > most:
            raise ConfigError(f"{key} must be at most {most}, not {getattr(cfg, key)}")
    name = cfg.name.strip()
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ConfigError(f"name {cfg.name!r} must be a folder name inside out_dir, without / or \\")
    # each setting named with its value (a negative lr had been told "[optim] needs lr > 0, gamma > 0, and ...")
    _at_least(cfg, "", ("log_every", 1), ("checkpoint_every", 1), ("seed", 0), ("threads", 0), ("checkpoint_seconds", 0),
              ("keep_checkpoints", 0))
    _at_least(cfg.val, "[val] ", ("every", 1), ("limit", 0, " (0: every image)"))
    o = cfg.optim
    for key in ("lr", "gamma"):
        if not getattr(o, key) > 0:
            raise ConfigError(f"[optim] {key} must be above 0, not {getattr(o, key):g}")
    _at_least(o, "[optim] ", ("min_lr", 0), ("weight_decay", 0), ("warmup", 0), ("grad_clip", 0))
    if o.schedule == "cosine" and o.min_lr > o.lr:
        raise ConfigError(f"[optim] min_lr {o.min_lr:g} is above lr {o.lr:g}: the cosine schedule would climb to it")
    if not all(0 <= b < 1 for b in o.betas) or any(m < 1 for m in o.milestones):
        raise ConfigError("[optim] betas must be in [0, 1) (e.g. [0.9, 0.99]) and milestones at least 1")
    d = cfg.data
    if not d.rescale or not all(0 < f <= 1 for f in d.rescale):
        raise ConfigError("[data] rescale lists downscaling factors in (0, 1], e.g. [1.0, 0.7, 0.5]")
    g = d.degradation
    for key in ("blur_prob", "noise_prob", "jpeg_prob", "video_prob"):
        if not 0 <= getattr(g, key) <= 1:
            raise ConfigError(f"[data.degradation] {key} is a probability from 0 to 1, not {getattr(g, key)}")
    for key, low, high in (("blur_sigma", 0, None), ("noise_sigma", 0, None), ("jpeg_quality", 1, 100),
                           ("video_quality", 1, 100)):
        a, b = getattr(g, key)
        if a > b or a < low or (high is not None and b > high):
            raise ConfigError(f"[data.degradation] {key} is a range [low, high] with {low} <= low <= high"
                              + (f" <= {high}" if high else "") + f", not [{a}, {b}]")
    loss = cfg.loss
    weights = {k: getattr(loss, k) for k in ("l1", "mse", "perceptual", "texture", "adversarial")}
    if any(w < 0 for w in weights.values()) or not any(weights[k] > 0 for k in ("l1", "mse", "perceptual", "texture")):
        raise ConfigError("[loss] weights must be 0 or more, and at least one of l1, mse, perceptual and texture above 0 "
                          "(adversarial trains beside a content loss, as in ESRGAN; alone it failed at the first iteration)")
    if loss.perceptual_net not in ("vgg19", "resnet50"):
        raise ConfigError(f"[loss] perceptual_net must be vgg19 or resnet50, not {loss.perceptual_net!r}")
    if not loss.critic_lr > 0 or min(loss.critic_feat, loss.critic_depth, loss.critic_steps, loss.texture_patch) < 1:
        raise ConfigError("[loss] critic_lr must be above 0, and critic_feat, critic_depth, critic_steps and "
                          "texture_patch at least 1")
    hr_patch = cfg.data.patch * cfg.data.scale
    if loss.adversarial > 0 and hr_patch < 2 ** loss.critic_depth:  # each critic level halves the patch
        raise ConfigError(f"[loss] critic_depth {loss.critic_depth} needs HR patches of at least "
                          f"{2 ** loss.critic_depth} px, and [data] patch {cfg.data.patch} at x{cfg.data.scale} gives "
                          f"{hr_patch}; use a larger patch or a smaller critic_depth")

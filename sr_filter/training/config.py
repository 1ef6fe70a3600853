"""One TOML file per experiment, parsed into frozen dataclasses.

Unknown keys are errors (a typo must not silently fall back to a default), and relative paths are
resolved against the config file's folder so that a config runs from any working directory.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SrFilterError


class ConfigError(SrFilterError):
    """A training config file is missing, malformed or has unknown or invalid settings."""


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


def _build(cls: type, data: dict, where: str) -> Any:
    """A dataclass from a dict, recursively, rejecting unknown keys and converting lists to tuples."""
    if not isinstance(data, dict):
        raise ConfigError(f"[{where}] must be a table, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{where}]: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(fields))}")
    kwargs = {}
    for key, value in data.items():
        default = getattr(cls(), key) if key in fields else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value, f"{where}.{key}" if where else key)
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def config_from_dict(data: dict, base: Path | None = None) -> TrainConfig:
    """Build a config from a dict (as read from TOML); relative paths resolve against ``base``."""
    cfg = _build(TrainConfig, data, "")
    if base is not None:
        def absol(p: str) -> str:
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
        )
    _validate(cfg)
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a TOML experiment file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    cfg = config_from_dict(data, base=path.resolve().parent)
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
    if not 0 < cfg.val.hr_scale <= 1:
        raise ConfigError("[val] hr_scale must be in (0, 1], e.g. 0.5 to evaluate 1024 px photos at 512 px")
    if not 0 <= cfg.data.lineart <= 1:
        raise ConfigError("[data] lineart is the share of synthetic line-art patches, from 0 to 1")
    if cfg.data.degradation.resize not in ("matlab_bicubic", "bilinear", "area", "random"):
        raise ConfigError("[data.degradation] resize must be matlab_bicubic, bilinear, area or random")

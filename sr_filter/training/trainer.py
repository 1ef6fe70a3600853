"""The training loop: one config in, checkpoints, a log and an exported model out.

- resumable bit-for-bit: a checkpoint holds the model, optimiser, EMA and critic states and the
  iteration; batches and random numbers are derived from ``(seed, iteration, rank)`` and the
  learning rate is a pure function of the iteration, so nothing else needs saving;
- CPU or CUDA, autocast mixed precision on CUDA;
- ``torchrun --nproc_per_node N -m sr_filter train CONFIG`` runs DistributedDataParallel with no
  code change (each rank draws its own batches; rank 0 logs, validates and checkpoints).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import inspect
import json
import math
import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..archs import get_arch
from ..cachelock import CacheLock, LockTimeout
from ..device import device_for_rank
from ..errors import CheckpointError, SrFilterError, TrainingError, first_line, mismatch_detail
from ..stdio import discard
from .config import ConfigError, TrainConfig
from .data import PatchSampler
from .losses import GeneratorLoss
from .schedule import ema_decay, learning_rate, update_ema

CHECKPOINT_FORMAT = 1


class TrainingStopped(SrFilterError):
    """Training stopped on a signal after saving a checkpoint (the command exits 128 + signum
    without an error line: nothing was lost)."""

    def __init__(self, signum: int, iteration: int) -> None:
        super().__init__(f"stopped at iteration {iteration} by {_stop_name(signum)}; checkpoint saved")
        self.signum, self.iteration = signum, iteration
        self.exit_code = 128 + signum


def build_model(cfg: TrainConfig) -> tuple[nn.Module, dict]:
    """The generator of ``cfg`` and the settings it was built with (as the manifest stores them),
    checked with one forward pass on an RGB patch: settings that build a network which cannot
    train here (no features, one input channel, another scale) are a config error now, not a
    traceback at the first iteration."""
    arch = get_arch(cfg.model.arch)
    settings = dict(cfg.model.settings)
    _check_settings(arch, settings, cfg.data.scale)
    settings[arch.scale_param] = cfg.data.scale
    try:
        with warnings.catch_warnings():  # torch's warning about zero-sized layers (num_feat = 0): the probe below says it in one line
            warnings.simplefilter("ignore", UserWarning)
            network = arch.build(settings)
    except SrFilterError as exc:
        raise ConfigError(f"[model] settings: {exc}") from None
    patch = cfg.data.patch
    try:
        with torch.no_grad():
            out = network.eval()(torch.zeros(1, 3, patch, patch))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ConfigError(f"[model] settings {cfg.model.settings} do not make a working {arch.name} network that takes RGB "
                          f"patches of {patch} px: {first_line(exc)[:200]}") from None
    if tuple(out.shape[1:]) != (3, patch * cfg.data.scale, patch * cfg.data.scale):
        raise ConfigError(f"[model] settings {cfg.model.settings} make a network whose output is {tuple(out.shape[1:])} "
                          f"for a 3x{patch}x{patch} patch, not x{cfg.data.scale} RGB")
    return network.train(), settings


def _check_settings(arch, settings: dict, scale: int) -> None:
    """Each ``[model] settings`` key is one of the network's, with the type of its default."""
    parameters = inspect.signature(arch.network).parameters
    for key, value in settings.items():
        if key not in parameters:
            raise ConfigError(f"[model] settings: {arch.name} has no setting {key!r}; its settings are "
                              f"{', '.join(k for k in parameters if k != arch.scale_param)}")
        default = parameters[key].default
        if default is inspect.Parameter.empty or default is None:
            continue
        if isinstance(default, (list, tuple)):
            ok, kind = isinstance(value, (list, tuple)), f"a list, e.g. {list(default)}"
        elif isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
        elif isinstance(default, float):
            ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        else:
            ok, kind = isinstance(value, type(default)), type(default).__name__
        if not ok:
            raise ConfigError(f"[model] settings {key} must be {kind}, not {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and value < 0:  # num_conv = -1 trained
            raise ConfigError(f"[model] settings {key} must be 0 or more, not {value!r}")
    if arch.scale_param in settings and settings[arch.scale_param] != scale:
        raise ConfigError(f"[model] settings {arch.scale_param} = {settings[arch.scale_param]} contradicts [data] scale "
                          f"= {scale}; leave it out (the scale comes from [data])")


@contextlib.contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM or SIGHUP while training asks to stop after the current iteration (with a
    checkpoint) instead of losing the work since the last one; a second one stops at once. Yields
    the list the first signal's number is put into."""
    asked: list[int] = []
    previous: dict[int, object] = {}

    def handler(signum: int, frame: object) -> None:
        if asked:  # a second time: at once, as before
            from ..interrupts import Terminated

            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)
        asked.append(signum)
        # straight to the file descriptor: print() here, landing inside the loop's own print, raised
        # "reentrant call inside BufferedWriter" and the run ended without its checkpoint
        line = f"stopping after this iteration, with a checkpoint ({signal.Signals(signum).name} again stops at once)\n"
        with contextlib.suppress(OSError, ValueError, AttributeError):  # (the buffer may not be flushed from here)
            os.write(sys.stdout.fileno(), line.encode())

    try:
        for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread: signals stay as they are
        pass
    try:
        yield asked
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


#: the stop asked for by a closed output pipe (SIGPIPE's number, which Windows does not define)
_PIPE = getattr(signal, "SIGPIPE", 13)


def _time_left(iterations: int, s_per_it: float, limit_left: float | None) -> str:
    """The log line's end: how long the iterations still to run take at this window's pace, and
    whether ``--max-minutes`` stops the run first; nothing after the last iteration."""
    if iterations <= 0:
        return ""
    left = iterations * s_per_it
    if limit_left is not None and limit_left < left:
        return f"  eta {_clock(left)} (time limit in {_clock(max(limit_left, 0.0))})"
    return f"  eta {_clock(left)}"


def _clock(seconds: float) -> str:
    """``seconds`` as H:MM:SS (days as hours: 51:00:00)."""
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _stop_name(signum: int) -> str:
    """What asked a run to stop, in words ("the output pipe closed", "SIGTERM")."""
    return "the output pipe closed" if signum == _PIPE else signal.Signals(signum).name


def _atomic_save(obj: object, path: Path) -> None:
    """A checkpoint is complete or absent: an interruption never leaves a half-written one.
    Serialised in memory first, so a full disk is the operating system's own one-line reason
    (torch's file writer had turned it into an internal error, "unexpected pos ...")."""
    import io

    from ..atomic import replacing

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with replacing(path, error=CheckpointError) as tmp, open(tmp, "wb") as file:
        file.write(buffer.getbuffer())


def _write_text(path: Path, text: str) -> None:
    """A run's text file (config.json, log.jsonl) replaced whole, or left as it was with one line
    naming it."""
    from ..atomic import replacing

    with replacing(path, error=CheckpointError) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _by_iteration(folder: Path) -> list[Path]:
    """A run folder's iter_*.pt checkpoints, the latest iteration last (by the number in the name: file
    times change with a copy or a restore, and the oldest checkpoint had been named as the newest)."""
    return sorted(folder.glob("iter_*.pt"), key=_iteration_of)


def _iteration_of(path: Path) -> int:
    """The iteration an iter_NNNNNNN.pt copy names; -1 for another name."""
    digits = path.stem.removeprefix("iter_")
    return int(digits) if digits.isdigit() else -1


def _prune(folder: Path, iteration: int, keep: int) -> list[str]:
    """Remove the iter_*.pt copies of this run beyond the newest ``keep`` (0: keep every one); says
    which could not go. Copies numbered after ``iteration`` are another path of the run (latest.pt
    replaced by an older copy) and are not this trajectory's to remove."""
    if keep <= 0:
        return []
    said = []
    ours = [p for p in _by_iteration(folder) if 0 <= _iteration_of(p) <= iteration]
    for old in ours[:-keep]:
        try:
            old.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # a copy that cannot go costs disk space, not the run
            said.append(f"could not remove {old} (keep_checkpoints = {keep}): {exc.strerror or exc}")
    return said


def _json_line(entry: dict) -> str:
    """One line of log.jsonl, strict JSON: an infinite validation PSNR (every output exact) or a
    loss that is no number says null (the bare words Infinity and NaN had stopped jq and JavaScript)."""
    from ..evaluation import dumps

    return dumps(entry, indent=None) + "\n"


def _toml(value: Any) -> str:
    """A setting's value as a TOML config writes it (true, "subpixel", 64)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else str(value)


class Trainer:
    """Builds everything a config describes and runs it; ``run()`` resumes from ``latest.pt``."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] | None = None, progress: bool = True) -> None:
        """``log`` takes each line (default: standard output); ``progress=False`` leaves out the
        lines of iterations and validations (``train -q``), which log.jsonl still holds."""
        self.cfg = cfg
        # flushed: progress must reach a redirected log file (nohup ... > file) as it happens
        self.print = log or self._say
        self.progress = progress
        self._asked: list[int] | None = None  # the stop requests of the run in progress
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = device_for_rank(self.cfg.device, self.local_rank)
        self._owns_process_group = False
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)
            self._owns_process_group = True
        torch.manual_seed(cfg.seed)  # the initial weights
        self.model, self.settings = build_model(cfg)
        self._init_error: SrFilterError | None = None
        if cfg.model.init:
            try:
                self._load_init(cfg.model.init)
            except SrFilterError as exc:  # a resumed run takes its weights from latest.pt: an init file gone or
                if not (cfg.run_dir / "latest.pt").is_file():  # changed since (a grown model made for the run,
                    raise  # another run's model.pth, a download while offline) had stopped it from going on
                self._init_error = exc
        self.model.to(self.device)
        self.ema: nn.Module | None = copy.deepcopy(self.model).eval() if cfg.ema > 0 else None
        if self.ema is not None:
            for p in self.ema.parameters():
                p.requires_grad_(False)
        self.net: nn.Module = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=cfg.optim.lr, betas=cfg.optim.betas,
                                          weight_decay=cfg.optim.weight_decay)
        try:
            self.loss = GeneratorLoss(cfg.loss).to(self.device)
        except (ValueError, KeyError) as exc:  # an unknown feature layer, say
            raise ConfigError(f"[loss] {first_line(exc)}") from None
        self.critic: nn.Module | None = None
        self.critic_opt: torch.optim.Optimizer | None = None
        if cfg.loss.adversarial > 0:
            from .adversarial import Critic

            # not wrapped in DDP (the gradient penalty's double backward and the generator pass with
            # frozen critic weights do not suit its reducer); its gradients are averaged by hand
            self.critic = Critic(num_feat=cfg.loss.critic_feat, depth=cfg.loss.critic_depth).to(self.device)
            if self.world > 1:
                for p in self.critic.parameters():
                    torch.distributed.broadcast(p.data, 0)
            self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.loss.critic_lr, betas=(0.0, 0.9))
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.sampler = PatchSampler(cfg.data, seed=cfg.seed, rank=self.rank)
        if cfg.optim.warmup >= cfg.optim.iterations and self.is_main:
            self.print(f"note: [optim] warmup {cfg.optim.warmup} is not below iterations {cfg.optim.iterations}: "
                       f"the learning rate never reaches lr {cfg.optim.lr:g}")
        self.iteration = 0
        self.run_dir = cfg.run_dir
        self.history: list[dict] = []
        self._trained_config: dict | Path = self.run_dir / "config.json"  # the resumed checkpoint's (load_checkpoint)
        self._check_validation()

    def _check_validation(self) -> None:
        """Every validation folder and image can be measured: said now, not after the first
        ``val.every`` iterations of training (which a failed validation would lose). Each image
        is decoded whole, as validation will: a truncated PNG had passed a look at its header."""
        from ..datasets import list_images, read_image, select_images, unmatched
        from ..evaluation import check_measurable

        everything: list[Path] = []
        for folder in self.cfg.val.dirs:
            try:
                everything += list_images(Path(folder))
                paths = select_images(Path(folder), self.cfg.val.include)[: self.cfg.val.limit or None]
            except OSError as exc:
                raise ConfigError(f"[val] cannot read {folder}: {exc.strerror or first_line(exc)}") from None
            except SrFilterError as exc:
                raise ConfigError(f"[val] {exc}") from None
            for path in paths:
                try:
                    image, _grey = read_image(path)
                except SrFilterError as exc:  # as eval says it, with the way on that train has
                    raise ConfigError(f"[val] {first_line(exc)}; leave it out with [val] include") from None
                except OSError as exc:
                    raise ConfigError(f"[val] {path} cannot be read ({exc.strerror or first_line(exc)}); "
                                      "leave it out with [val] include") from None
                try:
                    check_measurable(path.name, image.shape[:2], self.cfg.data.scale, self.cfg.val.hr_scale,
                                     advice="leave it out with [val] include, or use a larger [val] hr_scale")
                except SrFilterError as exc:
                    raise ConfigError(f"[val] {exc}") from None
        unused = unmatched(self.cfg.val.include, everything) if self.cfg.val.dirs else []  # no validation: nothing to match
        if unused:  # a typo: the image meant to be measured is not, unsaid (eval refuses the same --include)
            raise ConfigError(f"[val] include {unused[0]!r} matches no validation image; check the pattern "
                              "(it matches file names or names without the extension, e.g. 'baby*' or 'baby')")

    # ------------------------------------------------------------------ setup helpers

    def _amp_dtype(self) -> torch.dtype | None:
        amp = self.cfg.amp
        if self.device.type != "cuda" or amp == "off":
            return None
        if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16
        return torch.bfloat16

    def _load_init(self, spec: str) -> None:
        """Start from published or earlier weights (fine-tuning) instead of random ones."""
        from ..errors import WeightsFormatError, mismatch_detail
        from ..models import is_path_spec, load_model

        try:
            loaded = load_model(spec)
        except WeightsFormatError as exc:  # a missing or damaged file, said as the setting that names it
            missing = is_path_spec(spec) and not Path(spec).expanduser().exists()
            raise ConfigError(f"[model] init: {first_line(exc)}" + (
                "; correct the path (a relative one is relative to the config file) or make that file first"
                if missing else "")) from None
        if loaded.arch.name != self.cfg.model.arch:
            raise SrFilterError(f"[model] init {spec!r} is a {loaded.arch.name} model, but this config trains "
                                f"{self.cfg.model.arch}")
        # checked before the weights: settings without weights of their own (ReLU against LeakyReLU)
        # load into either network, and a ReLU model had been fine-tuned as a LeakyReLU one unsaid
        theirs = {k: v for k, v in loaded.params.items() if k in self.settings and self.settings[k] != v}
        scale_key = loaded.arch.scale_param
        if scale_key in theirs:  # the scale comes from [data] scale, which [model] settings may not contradict
            raise SrFilterError(f"[model] init {spec!r} is a x{theirs[scale_key]} model, where [data] scale = "
                                f"{self.settings[scale_key]}; set [data] scale = {theirs[scale_key]} to fine-tune it")
        if theirs:  # the settings that differ, rather than torch's list of missing keys alone
            built = ", ".join(f"{k} = {_toml(v)}" for k, v in theirs.items())
            ours = ", ".join(f"{k} = {_toml(self.settings[k])}" for k in theirs)
            raise SrFilterError(f"[model] init {spec!r} was built with {built}, where [model] settings give {ours}; "
                                "give its settings to fine-tune it")
        try:
            self.model.load_state_dict(loaded.network.state_dict(), strict=True)
        except RuntimeError as exc:
            raise SrFilterError(f"[model] init {spec!r} does not fit [model] settings {self.settings}: "
                                f"{mismatch_detail(exc)}") from None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> dict:
        critic = self.critic
        return {
            "format": CHECKPOINT_FORMAT,
            "iteration": self.iteration,
            "config": self.cfg.to_dict(),
            "arch": self.cfg.model.arch,
            "settings": self.settings,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "critic": critic.state_dict() if critic is not None else None,
            "critic_optimizer": self.critic_opt.state_dict() if self.critic_opt is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
        }

    def save_checkpoint(self, keep: bool = False) -> Path:
        """Write ``latest.pt`` (and ``iter_NNNNNNN.pt`` when ``keep``) atomically."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self.state()
        latest = self.run_dir / "latest.pt"
        _atomic_save(state, latest)
        if keep:
            _atomic_save(state, self.run_dir / f"iter_{self.iteration:07d}.pt")
            for line in _prune(self.run_dir, self.iteration, self.cfg.keep_checkpoints):
                self.print(f"note: {line}")
        self.export(self.run_dir / "model.pth")
        self._plot()
        return latest

    def _plot(self) -> bool:
        if not self.cfg.plot:
            return True
        try:
            from .plot import plot_history
        except ImportError:
            return False
        plot_history(self.history, self.run_dir / "curves.png", title=self.cfg.name)
        return True

    def _refuse_a_headless_run(self, latest: Path) -> None:
        """A run folder that holds a run's files but no ``latest.pt`` (deleted to save space, say):
        starting over there had silently replaced its model.pth, log and checkpoints."""
        held = sorted({p.name for pattern in ("iter_*.pt", "model.pth") for p in self.run_dir.glob(pattern) if p.is_file()})
        if not held:
            return
        newest = _by_iteration(self.run_dir)
        fallback = f"copy {newest[-1].name} to latest.pt to go on from there, or " if newest else ""
        shown = ", ".join(held) if len(held) <= 3 else f"{len(held)} files, among them {', '.join(held[-2:])}"
        raise CheckpointError(f"{self.run_dir} holds an earlier run ({shown}) but no {latest.name} to go on from; "
                              f"{fallback}start over with --fresh (which removes them)")

    def load_checkpoint(self, path: Path) -> None:
        import warnings

        from ..weights import plain_pickle

        try:
            with warnings.catch_warnings():  # torch's advice about pickle protocols and trusted sources: not an option here
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds
            newest = _by_iteration(path.parent)
            fallback = f"copy {newest[-1].name} over it to go on from there, or " if newest else ""
            if re.search(r"Unsupported global|GLOBAL \S+ whose module", str(exc)):  # had been "damaged or cut short?"
                raise CheckpointError(f"{path} holds pickled Python objects, which are never run here, so it is no "
                                      f"checkpoint of this program; {fallback}start over with --fresh") from None
            if plain_pickle(path):  # pickle.dump's, not torch.save's (torch calls every such file "weights only load failed")
                raise CheckpointError(f"{path} is a plain Python pickle, not a checkpoint of this program; "
                                      f"{fallback}start over with --fresh") from None
            detail = first_line(exc).split(". ")[0].rstrip(".")[:160]  # torch's first sentence, not its appeals
            raise CheckpointError(f"cannot read checkpoint {path} ({detail}: damaged or cut short?); "
                                  f"{fallback}start over with --fresh") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            newest = _by_iteration(path.parent)
            fallback = f"copy {newest[-1].name} over it to go on from there, or " if newest else ""
            if isinstance(state, dict) and ("params" in state or "sr_filter" in state):  # model.pth copied over it
                raise CheckpointError(f"{path} holds a model's weights alone, not a training checkpoint (no iteration or "
                                      f"optimiser state); {fallback}start over with --fresh; to start from these weights, "
                                      "name a copy of it in [model] init")
            if isinstance(state, dict) and "format" in state and "iteration" in state:  # another version's
                raise CheckpointError(f"{path} is a training checkpoint of format {state['format']!r}, which this version "
                                      f"of sr-filter (format {CHECKPOINT_FORMAT}) does not read; {fallback}start over with --fresh")
            # (it had said "not a checkpoint of this experiment's edsr model; use another run name", or for a
            # list, "unexpected AttributeError")
            raise CheckpointError(f"{path} is not a training checkpoint of this program; {fallback}start over with --fresh")
        # what the checkpoint was trained with: its own record (config.json is rewritten by every command,
        # one that trained nothing or was killed before its first checkpoint too, and can be cut short)
        saved = state.get("config") if isinstance(state.get("config"), dict) else path.parent / "config.json"
        if state.get("arch") != self.cfg.model.arch:  # a changed [model] arch: the ways on of changed settings
            changed = (_changed_settings(saved, self.cfg.to_dict())
                       or [f"model.arch: {state.get('arch')!r} -> {self.cfg.model.arch!r}"])
            raise CheckpointError(f"{path} holds a model of [model] arch {state.get('arch')!r}, where this config has "
                                  f"{self.cfg.model.arch!r} ({'; '.join(changed)} since the checkpoint was written); "
                                  "undo the change, or start over with --fresh or under another run name")
        try:
            self.model.load_state_dict(state["model"])
            if self.ema is not None and state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
            elif self.ema is not None:  # EMA turned on for a run that had none: start from its weights
                self.ema.load_state_dict(self.model.state_dict())
                self.print("the checkpoint has no EMA weights; the EMA starts from the resumed weights")
            self.optimizer.load_state_dict(state["optimizer"])
            critic = self.critic
            if critic is not None and state["critic"] is not None:
                critic.load_state_dict(state["critic"])
                assert self.critic_opt is not None
                self.critic_opt.load_state_dict(state["critic_optimizer"])
            if self.scaler is not None and state["scaler"] is not None:
                self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, KeyError, ValueError) as exc:
            changed = _changed_settings(saved, self.cfg.to_dict())
            why = ("; ".join(changed) + " since the checkpoint was written" if changed
                   else f"changed settings? {mismatch_detail(exc) if isinstance(exc, RuntimeError) else first_line(exc)}")
            raise CheckpointError(f"{path} does not fit this config's model ({why}); undo the change, or start over "
                                  "with --fresh or under another run name") from None
        torch.set_rng_state(state["torch_rng"].cpu())
        self.iteration = int(state["iteration"])
        self._trained_config = saved
        self.history = [h for h in state.get("history", []) if h.get("iter", 0) <= self.iteration]

    def export(self, path: Path) -> Path:
        """The model as the filter loads it: weights (EMA if on) plus arch and settings."""
        net = self.ema if self.ema is not None else self.model
        sd = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        _atomic_save({"params": sd, "sr_filter": {"arch": self.cfg.model.arch, "settings": self.settings}}, path)
        return path

    # ------------------------------------------------------------------ one step

    def _update_ema(self) -> None:
        if self.ema is not None:
            update_ema(self.ema, self.model, ema_decay(self.cfg.ema, self.iteration))

    def _average_grads(self, module: nn.Module) -> None:
        for p in module.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.world

    def step(self) -> dict[str, float]:
        """One optimisation step (critic first when adversarial); returns the loss terms."""
        it = self.iteration + 1
        lr_now = learning_rate(self.cfg, it)
        for g in self.optimizer.param_groups:
            g["lr"] = lr_now
        lr_t, hr_t = self.sampler.batch(it)
        lr_t, hr_t = lr_t.to(self.device, non_blocking=True), hr_t.to(self.device, non_blocking=True)
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 1_000_003 + it * 97 + self.rank)
        self.model.train()
        amp = torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)
        logs: dict[str, float] = {}
        if self.critic is not None:
            from .adversarial import critic_step

            with torch.no_grad(), amp:
                fake = self.net(lr_t)
            for _ in range(self.cfg.loss.critic_steps):
                logs.update(critic_step(self.critic, self.critic_opt, hr_t, fake.float(), self.cfg.loss.gp_weight, gen,
                                        sync=self._average_grads if self.world > 1 else None))
        with amp:
            sr = self.net(lr_t)
            total, terms = self.loss(sr.float(), hr_t)
            if self.critic is not None:
                for p in self.critic.parameters():
                    p.requires_grad_(False)
                adv = -self.critic(sr.float()).mean() * self.cfg.loss.adversarial
                for p in self.critic.parameters():
                    p.requires_grad_(True)
                total = total + adv
                terms["adversarial"] = float(adv.detach())
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            total.backward()
        if self.cfg.optim.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self._update_ema()
        self.iteration = it
        logs.update(terms)
        logs["total"] = float(total.detach())
        logs["lr"] = lr_now
        return logs

    # ------------------------------------------------------------------ validation

    def validate(self) -> dict[str, float]:
        """PSNR-Y on each validation folder, measured as the published tables do."""
        from ..evaluation import evaluate_folder, network_upscaler, set_names

        net = self.ema if self.ema is not None else self.model
        cpu_copy = copy.deepcopy(net).to("cpu").eval()
        out = {}
        for folder, name in zip(self.cfg.val.dirs, set_names(self.cfg.val.dirs)):
            res = evaluate_folder(network_upscaler(cpu_copy), Path(folder), self.cfg.data.scale,
                                  limit=self.cfg.val.limit or None, include=self.cfg.val.include,
                                  hr_scale=self.cfg.val.hr_scale, jpeg=self.cfg.val.jpeg or None, name=name)
            out[res.dataset] = round(res.psnr, 4)
        return out

    # ------------------------------------------------------------------ the loop

    def _out_of_time(self, mine: bool) -> bool:
        """Whether any rank's time is up: every rank stops at the same iteration, or the others
        would wait in the next step's gradient exchange for ever."""
        if self.world == 1:
            return mine
        flag = torch.tensor([1.0 if mine else 0.0], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item() > 0)

    def _log_line(self, entry: dict) -> None:
        self.history.append(entry)
        path = self.run_dir / "log.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(_json_line(entry))
        except OSError as exc:  # the bare "File too large" had named no file
            raise CheckpointError(f"cannot write {path}: {exc.strerror or first_line(exc)}") from None

    def run(self, resume: bool = True, max_seconds: float | None = None) -> Path:
        """Train to ``optim.iterations`` (or for ``max_seconds``); returns the exported model path."""
        lock = None
        made = not self.run_dir.exists()
        try:  # as the cluster says it (these had been the system's bare words: "/proc/runs: No such file ...")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.is_main:  # one training per run folder: two would write the same checkpoints and log
                lock = CacheLock(self.run_dir / "training", timeout=0)
                lock.acquire()
        except LockTimeout:
            # (it had said "give this config another name": a renamed file of a config with name = ... ran into the same folder)
            raise ConfigError(f"{self.run_dir} is being trained by another process; wait for it, or give this run "
                              "another name: name = \"...\" in the config (without one, the file's name)") from None
        except OSError as exc:
            raise ConfigError(f"cannot write to the run folder {self.run_dir} ({exc.strerror or first_line(exc)}); "
                              "set out_dir in the config to a folder you can write") from None
        try:
            return self._run(resume, max_seconds)
        except TrainingError:
            if made and self.is_main and not (self.run_dir / "latest.pt").exists():
                # nothing was kept: a new folder of a config and an empty log had stayed behind
                for name in ("config.json", "log.jsonl"):
                    (self.run_dir / name).unlink(missing_ok=True)
                if lock is not None:
                    lock.release()
                    lock = None
                with contextlib.suppress(OSError):
                    self.run_dir.rmdir()  # only when empty
            raise
        finally:
            if lock is not None:
                lock.release()

    def _say(self, message: str) -> None:
        """A line on standard output; if its reader has gone (``train ... | head``), a stop with a
        checkpoint, as on SIGHUP: the run had ended with status 1, no word and no checkpoint."""
        try:
            print(message, flush=True)
        except OSError as exc:
            if not isinstance(exc, BrokenPipeError) and exc.errno != errno.EINVAL:  # EINVAL: Windows' closed pipe
                raise
            with contextlib.suppress(OSError, ValueError):  # later lines and the interpreter's last flush go nowhere
                discard(sys.stdout.fileno())
            # one process: stop with a checkpoint. Of several (torchrun), only this one prints, and a
            # stop of its own would leave the others at their next exchange: they train on, unheard
            if self._asked is not None and not self._asked and self.world == 1:
                self._asked.append(_PIPE)

    def _notes_on_resume(self, changed: list[str]) -> None:
        """What a changed iteration count does to a run that had gone that far already."""
        o, it = self.cfg.optim, self.iteration
        if it > o.iterations:
            self.print(f"note: the run is at iteration {it}, past [optim] iterations = {o.iterations}: nothing is "
                       "trained; raise iterations to continue it")
            return
        before = next((c.split(": ", 1)[1].split(" -> ")[0] for c in changed if c.startswith("optim.iterations: ")), None)
        logged = [h["lr"] for h in self.history if "lr" in h]
        if before is not None and before.isdigit() and it >= int(before) and it < o.iterations and o.schedule != "constant" and logged:
            self.print(f"note: the run had finished its {before} iterations; with {o.iterations} its {o.schedule} "
                       f"schedule goes on from there: the learning rate goes from {logged[-1]:.3g} to "
                       f"{learning_rate(self.cfg, it + 1):.3g}")

    def _run(self, resume: bool, max_seconds: float | None) -> Path:
        cfg = self.cfg
        latest = self.run_dir / "latest.pt"
        # a stop asked for from here on waits for a safe point: --fresh had been cut off halfway
        # through removing the old run's files, leaving some of them
        with _stop_requests() as asked:
            self._asked = asked
            if self._init_error is not None and not (resume and latest.exists()):  # --fresh needs it after all
                raise self._init_error  # (before the old run's files go)
            if not resume and self.is_main:  # start over: the old run's files would mix with the new ones
                for pattern in ("iter_*.pt", "latest.pt", "model.pth", "log.jsonl", "curves.png"):
                    for old in self.run_dir.glob(pattern):
                        old.unlink()
            if resume and not latest.exists():
                self._refuse_a_headless_run(latest)
            if resume and latest.exists():
                self.load_checkpoint(latest)
                self.print(f"resumed {latest} at iteration {self.iteration}")
                changed = _changed_settings(self._trained_config, cfg.to_dict())
                if changed and self.is_main:
                    self.print("settings changed since the run began (the resumed run uses the new ones): " + "; ".join(changed))
                if self.is_main:
                    self._notes_on_resume(changed)
            if self.is_main:
                # whole or as before: a full disk had left config.json cut short, and said "File too large" alone
                _write_text(self.run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2))
                # the log file is rewritten from the checkpoint's history, so steps after it disappear
                _write_text(self.run_dir / "log.jsonl", "".join(_json_line(h) for h in self.history))
            start = time.monotonic()
            stopped = self._loop(max_seconds, start, asked)
        self._asked = None
        if stopped and asked:
            if self.is_main:
                line = (f"stopped at iteration {self.iteration} of {cfg.optim.iterations} ({_stop_name(asked[0])}); "
                        "checkpoint saved: "
                        f"run the same command again to continue; model so far: {self.run_dir / 'model.pth'}")
                if asked[0] == _PIPE:
                    print(f"sr-filter: {line}", file=sys.stderr, flush=True)
                else:
                    self.print(line)
            raise TrainingStopped(asked[0], self.iteration)
        return self._finish()

    def _loop(self, max_seconds: float | None, start: float, asked: list[int]) -> bool:
        """Train until the last iteration (False) or until the time limit or a stop request (True,
        after a checkpoint)."""
        cfg = self.cfg
        last_ckpt, window_t, window_n, sums = start, time.monotonic(), 0, {}
        first, overhead = self.iteration, 0.0  # seconds of validation and checkpoints since the loop began
        while self.iteration < cfg.optim.iterations:
            logs = self.step()
            if self.scaler is None and not math.isfinite(logs["total"]):  # (fp16's scaler skips such steps itself)
                raise TrainingError(f"the loss became {logs['total']} at iteration {self.iteration} (a learning rate "
                                    "too high for this model?); nothing after the last checkpoint was saved")
            window_n += 1
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            it = self.iteration
            last_lr = logs.get("lr")

            def log_window() -> None:
                """One log line of the iterations since the last: averages, the learning rate now (an
                average of it had differed between a run and its resumed twin), and how many
                iterations a shorter window holds (after a resume, before a stop)."""
                nonlocal window_t, window_n, sums
                dt = (time.monotonic() - window_t) / window_n
                entry = {"iter": it, "time": round(time.time(), 1), "s_per_it": round(dt, 4),
                         **{k: v / window_n for k, v in sums.items()}}
                if last_lr is not None:
                    entry["lr"] = last_lr
                if window_n != cfg.log_every:
                    entry["averaged_over"] = window_n
                self._log_line(entry)
                if self.progress:
                    self.print(f"iter {it}  " + "  ".join(f"{k} {v:.4g}" for k, v in entry.items()
                                                          if k not in ("iter", "time", "averaged_over"))
                               + (f"  (mean of {window_n} iteration{'s' if window_n != 1 else ''})"
                                  if "averaged_over" in entry else "")
                               # the pace now, plus validation and checkpoints spread over the iterations so far
                               # (the estimate had left them out: short by their share of the run)
                               + _time_left(cfg.optim.iterations - it, dt + overhead / max(it - first, 1),
                                            None if max_seconds is None else max_seconds - (time.monotonic() - start)))
                window_t, window_n, sums = time.monotonic(), 0, {}

            if self.is_main and (it % cfg.log_every == 0 or it == cfg.optim.iterations):
                log_window()
            if self.is_main and cfg.val.dirs and (it % cfg.val.every == 0 or it == cfg.optim.iterations):
                t_val = time.monotonic()
                val = self.validate()
                window_t += time.monotonic() - t_val  # s_per_it counts training only
                overhead += time.monotonic() - t_val
                self._log_line({"iter": it, "val": val, "val_seconds": round(time.monotonic() - t_val, 2)})
                if self.progress:
                    self.print(f"iter {it}  validation PSNR-Y " + "  ".join(f"{k} {v:.2f}" for k, v in val.items()))
            due = it % cfg.checkpoint_every == 0 or it == cfg.optim.iterations
            timed = cfg.checkpoint_seconds > 0 and time.monotonic() - last_ckpt >= cfg.checkpoint_seconds
            if self.is_main and (due or timed):
                t_ckpt = time.monotonic()
                self.save_checkpoint(keep=due)
                last_ckpt = time.monotonic()
                window_t += last_ckpt - t_ckpt  # s_per_it counts training only, not checkpoints and plots
                overhead += last_ckpt - t_ckpt
            if it >= cfg.optim.iterations:  # finished (and saved): a stop asked for during the last step changes nothing
                return False
            time_up = max_seconds is not None and time.monotonic() - start >= max_seconds
            if self._out_of_time(time_up or bool(asked)):
                if self.is_main and window_n:  # the iterations since the last line had gone unlogged
                    log_window()
                if self.is_main and not due:
                    self.save_checkpoint()
                return True
        return False

    def _finish(self) -> Path:
        cfg = self.cfg
        if self.is_main:
            if self.iteration < cfg.optim.iterations:
                self.print(f"stopped at iteration {self.iteration} of {cfg.optim.iterations} (time limit); "
                           f"run the same command again to continue; model so far: {self.run_dir / 'model.pth'}")
            else:
                self.print(f"done at iteration {self.iteration}; model: {self.run_dir / 'model.pth'}")
            if not self._plot():
                self.print("matplotlib is not installed (pip install '.[train]' in the sr-filter folder): no curves.png")
        if self.world > 1:
            torch.distributed.barrier()
            if self._owns_process_group:
                torch.distributed.destroy_process_group()
        return self.run_dir / "model.pth"


#: settings that may change between the parts of a run without changing what it trains
#: (optim.iterations does change the schedule's shape: it is reported)
_BOOKKEEPING = {"source", "out_dir", "threads", "log_every", "plot", "checkpoint_every", "checkpoint_seconds",
                "keep_checkpoints"}


def _changed_settings(saved: dict | Path, new: dict) -> list[str]:
    """``key: old -> new`` for each training setting that differs from the config a checkpoint was
    trained with (its own record, or a run folder's config.json for a checkpoint without one)."""
    try:
        old = saved if isinstance(saved, dict) else json.loads(saved.read_text(encoding="utf-8"))
        old = json.loads(json.dumps(old))  # tuples as lists, as new's below
    except (OSError, ValueError, TypeError):
        return []
    if not isinstance(old, dict):
        return []

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            key = f"{prefix}{k}"
            out.update(flat(v, key + ".") if isinstance(v, dict) and k != "settings" else {key: v})
        return out

    a, b = flat(old), flat(json.loads(json.dumps(new)))  # tuples as lists, as saved
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if k not in _BOOKKEEPING and not k.startswith("val.") and a.get(k) != b.get(k)]


def train(cfg: TrainConfig, resume: bool = True, max_seconds: float | None = None, progress: bool = True) -> Path:
    """Train (or continue) the experiment of ``cfg``; ``progress=False``: no line per iteration window."""
    return Trainer(cfg, progress=progress).run(resume=resume, max_seconds=max_seconds)


__all__ = ["CheckpointError", "Trainer", "TrainingError", "TrainingStopped", "build_model", "train"]

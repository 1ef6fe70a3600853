"""Options shared by several subcommands, spelled once.

Nothing here imports torch: ``--help`` and option errors must stay instant. Checks that need the
library (tile, precision, device) import it only when a value other than the default is given.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any, Callable, Sequence

import click

#: shown in --help; test_cli checks it against device.PRECISIONS, which the callback enforces
PRECISION_METAVAR = "auto|fp16|bf16|fp32"


class LazyChoice(click.Choice):
    """A click.Choice whose choices are read on first use (from the manifest, not a copy of it)."""

    def __init__(self, load: Callable[[], Sequence[str]], case_sensitive: bool = False) -> None:
        self._load = load
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._choices is None:
            self._choices = tuple(self._load())
        return self._choices


def _preset_names() -> list[str]:
    from ..manifest import load_manifest

    return list(load_manifest().presets)


def _tile(ctx: click.Context, param: click.Parameter, value: str) -> int | str:
    if value is None or str(value).strip().lower() == "auto":
        return "auto"
    from ..errors import SrFilterError
    from ..upscaler import check_tile

    try:
        return check_tile(value)
    except SrFilterError as exc:
        raise click.BadParameter(str(exc)) from None


def _scale(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not (0 < value <= 16):
        raise click.BadParameter("the scale must be greater than 0 and at most 16")
    return value


def _precision(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    value = (value or "auto").strip().lower()
    if value not in PRECISION_METAVAR.split("|"):
        raise click.BadParameter(f"{value!r} is not one of {PRECISION_METAVAR.replace('|', ', ')}")
    return value


def _size(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and not (1 <= value <= 1_000_000):
        raise click.BadParameter("must be a number of pixels from 1 to 1000000")
    return value


preset_opt = click.option(
    "-p", "--preset", type=LazyChoice(_preset_names), default=None,
    help="What the image shows; picks the model (from the manifest, see `sr-filter models`).  [default: photo]",
)
def complete_model(ctx: click.Context, param: click.Parameter, incomplete: str, *, also: tuple[str, ...] = ()) -> list:
    """Model names from the manifest, presets (and ``also``), and files (a model may be a weights
    file): shell completion had offered nothing for a model."""
    from click.shell_completion import CompletionItem

    from ..manifest import load_manifest

    try:
        manifest = load_manifest()
        names = sorted({m.name for m in manifest.models}) + sorted(manifest.presets) + list(also)
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        names = list(also)
    named = [CompletionItem(n) for n in names if n.startswith(incomplete)]
    return named + [CompletionItem(incomplete, type="file")]


#: device names as the library takes them (read with device.device_name); others are a bad option
#: value (exit 2), for every command with --device, checked without torch
_DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _device(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    from ..device import device_name

    device = device_name(value)  # cpu:0, torch's name for the CPU, as the library takes it
    if not _DEVICE_NAME.fullmatch(device):  # `eval --device gpu` had been exit 1, after the folders were read
        raise click.BadParameter(f"{device!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    return device


def _complete_device(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [d for d in ("auto", "cpu", "cuda", "mps") if d.startswith(incomplete)]


model_opt = click.option("-m", "-n", "--model", metavar="NAME|PATH", default=None, shell_complete=complete_model,
                         help="A model from `sr-filter models`, or a weights file (.pth, .pt, .ckpt, .safetensors) (overrides --preset).")
scale_opt = click.option("-s", "--scale", type=float, default=None, callback=_scale,
                         help="Output scale, e.g. 2, 3, 1.5, 0.5.  [default: the model's own]")
width_opt = click.option("--width", type=int, default=None, callback=_size,
                         help="Output width in pixels; the scale follows from it (aspect ratio kept).")
height_opt = click.option("--height", type=int, default=None, callback=_size,
                          help="Output height in pixels. With --width too, the image fits inside both.")
device_opt = click.option("-d", "--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps",
                          callback=_device, shell_complete=_complete_device, help="Where to run the model.")
gpu_opt = click.option("-g", "--gpu", "gpu", type=click.IntRange(0), default=None, metavar="N",
                       help="GPU index: the same as --device cuda:N.")
precision_opt = click.option("--precision", default="auto", show_default=True, callback=_precision, metavar=PRECISION_METAVAR,
                             help="Arithmetic precision (auto: fp16 on capable GPUs, fp32 on CPU).")
backend_opt = click.option("--backend", type=click.Choice(["auto", "torch", "openvino"], case_sensitive=False), default="auto",
                           show_default=True, help="Inference engine (auto: OpenVINO on the CPU when installed, else torch).")
tta_opt = click.option("--tta", is_flag=True, help="Average the 8 flips/rotations of every tile (about 8x slower; a little sharper and cleaner).")
colour_fix_opt = click.option("--colour-fix/--no-colour-fix", "--color-fix/--no-color-fix", "colour_fix", default=None,
                              help="Keep the input's colour over areas (networks shift flat colours by a few levels); "
                                   "detail stays the network's. Default: the preset's choice (on for cartoon), off for a model.")
class _Strength(click.ParamType):
    """A number from 0 to 1, refused in the words of the command's other checks (click's own said
    "'abc' is not a valid float range", and nan passed its range test)."""

    name = "strength"

    def convert(self, value, param, ctx) -> float:  # noqa: ANN001 - click's signature
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number; give one from 0 to 1", param, ctx)
        if number != number:
            self.fail("nan is not a number; give one from 0 to 1", param, ctx)
        if not 0 <= number <= 1:
            self.fail(f"{value} is not from 0 to 1", param, ctx)
        return number


denoise_opt = click.option("--denoise", type=_Strength(), default=None, metavar="S",
                           help="Denoising strength 0-1 for models with a denoise twin (realesr-general-x4v3).")
fp32_opt = click.option("--fp32", is_flag=True, help="The same as --precision fp32.")
tile_opt = click.option("-t", "--tile", default="auto", show_default=True, callback=_tile, metavar="N|auto",
                        help="Tile edge in input pixels; 0 = whole image.")
offline_opt = click.option("--offline", is_flag=True, default=None, help="Never download; use cached or built-in weights only.")


def configure_logging(verbose: int, quiet: bool) -> None:
    """Messages go to stderr only; stdout is kept for image data and listings."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("sr-filter: %(message)s"))
    handler.addFilter(_name_the_file)
    handler.addFilter(_in_flags)
    handler.addFilter(_once)
    _once.seen.clear()
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("PIL").setLevel(max(level, logging.INFO))  # -vv is ours: Pillow's chunk-by-chunk debug lines are not


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message comes, not the stream of the moment logging
    was set up: an embedding program or a test harness may swap it and close the old one."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        """Above the progress bars while any is shown (a -v line had been glued to the bar's line)."""
        tqdm_module = sys.modules.get("tqdm")  # a bar exists only if tqdm was imported
        bars = getattr(getattr(tqdm_module, "tqdm", None), "_instances", None)
        if not bars:
            super().emit(record)
            return
        try:
            tqdm_module.tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - as logging's own handlers do
            self.handleError(record)


#: the input a batch is working on, for warnings about that file's content (``extra=PER_FILE``)
current_file: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_file", default=None)


def _name_the_file(record) -> bool:
    """Put the batch's current file in front of a warning about its content (a flattened alpha
    channel, metadata a format cannot hold): one unnamed line had stood for every file."""
    name = current_file.get()
    if name and getattr(record, "per_file", False):
        from .messages import shown_path

        text = record.getMessage()
        if name not in text:
            record.msg, record.args = f"{shown_path(name)}: {text}", ()
    return True


def _in_flags(record) -> bool:
    """A library warning in this command's flags for the API's words ("quality is for JPEG ..."
    as "--quality is for JPEG ..."), as errors are worded (:func:`messages.flagged`)."""
    from . import DefaultGroup
    from .messages import flagged

    text = record.getMessage()
    worded = flagged(text, DefaultGroup.flags)
    if worded != text:
        record.msg, record.args = worded, ()
    return True


class _Once:
    """Shows each distinct message once per run: a warning about the scale is said once, not per file."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, str]] = set()

    def filter(self, record) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


_once = _Once()


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if not value:
        return
    state = ctx.find_root().ensure_object(dict)
    if param.name == "quiet":
        state["quiet"] = True
    else:
        state["verbose"] = state.get("verbose", 0) + value
    configure_logging(state.get("verbose", 0), state.get("quiet", False))


def quiet() -> bool:
    """Whether -q was given (before or after the subcommand): then only errors go to stderr."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and (ctx.find_root().obj or {}).get("quiet"))


def say(text: str) -> None:
    """A message line on stderr (what was written, a notice), unless -q asks for errors only."""
    if not quiet():
        click.echo(text, err=True)


def verbosity(command):
    """-v/-q accepted after the subcommand too (`sr-filter upscale a.png -q`)."""
    command = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_set_verbosity,
                           help="Only errors on stderr; no progress bar.")(command)
    return click.option("-v", "--verbose", count=True, expose_value=False, callback=_set_verbosity,
                        help="More messages on stderr.")(command)

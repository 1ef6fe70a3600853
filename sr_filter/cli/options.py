"""Options shared by several subcommands, spelled once."""

from __future__ import annotations

import click

from ..device import PRECISIONS


def _tile(ctx: click.Context, param: click.Parameter, value: str) -> int | str:
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


preset_opt = click.option(
    "-p", "--preset", type=click.Choice(["photo", "cartoon", "face"], case_sensitive=False), default=None,
    help="What the image shows; picks the model.  [default: photo]",
)
model_opt = click.option("-m", "--model", metavar="NAME|PATH", default=None, help="A model from `sr-filter models` or a .pth file (overrides --preset).")
scale_opt = click.option("-s", "--scale", type=float, default=None, callback=_scale, help="Output scale, e.g. 2, 3, 1.5.  [default: the model's own]")
device_opt = click.option("-d", "--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps", help="Where to run the model.")
precision_opt = click.option("--precision", type=click.Choice(PRECISIONS, case_sensitive=False), default="auto", show_default=True, help="Arithmetic precision (auto: fp16 on capable GPUs, fp32 on CPU).")
tile_opt = click.option("-t", "--tile", default="auto", show_default=True, callback=_tile, metavar="N|auto", help="Tile edge in input pixels; 0 = whole image.")
offline_opt = click.option("--offline", is_flag=True, default=None, help="Never download; use cached or built-in weights only.")


def configure_logging(verbose: int, quiet: bool) -> None:
    """Messages go to stderr only; stdout is kept for image data and listings."""
    import logging
    import sys

    level = logging.ERROR if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="sr-filter: %(message)s", stream=sys.stderr, force=True)


def _set_verbosity(ctx: click.Context, param: click.Parameter, value) -> None:
    if not value:
        return
    state = ctx.find_root().ensure_object(dict)
    if param.name == "quiet":
        state["quiet"] = True
    else:
        state["verbose"] = state.get("verbose", 0) + value
    configure_logging(state.get("verbose", 0), state.get("quiet", False))


def verbosity(command):
    """-v/-q accepted after the subcommand too (`sr-filter upscale a.png -q`)."""
    command = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_set_verbosity, help="Only errors on stderr; no progress bar.")(command)
    return click.option("-v", "--verbose", count=True, expose_value=False, callback=_set_verbosity, help="More messages on stderr.")(command)

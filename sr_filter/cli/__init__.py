"""The ``sr-filter`` command: a click group whose default subcommand is ``upscale``.

``sr-filter photo.jpg -o big.png`` and ``sr-filter upscale photo.jpg -o big.png`` are the same.
Library errors (:class:`~sr_filter.errors.SrFilterError`) become one line on stderr and a
non-zero exit code; tracebacks are shown only with ``-vv``.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import SrFilterError
from .options import configure_logging

#: subcommand name -> "module:attribute", imported only when used (keeps --help fast)
COMMANDS = {
    "upscale": "sr_filter.cli.upscale:upscale",
    "models": "sr_filter.cli.models:models",
    "eval": "sr_filter.cli.eval:eval_cmd",
    "train": "sr_filter.cli.train:train_cmd",
    "gimp-install": "sr_filter.cli.gimp:gimp_install",
    "export": "sr_filter.cli.export:export_cmd",
}
DEFAULT_COMMAND = "upscale"


class DefaultGroup(click.Group):
    """A group that runs ``upscale`` when the first argument is not a subcommand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # insert "upscale" before the first argument that is neither a group option nor a command
        for i, arg in enumerate(args):
            if arg in _GROUP_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
                continue
            if arg not in COMMANDS and arg not in ("-h", "--help", "--version"):
                args = [*args[:i], DEFAULT_COMMAND, *args[i:]]
            break
        return super().parse_args(ctx, args)


_GROUP_FLAGS = {"-q", "--quiet", "--verbose"}


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=False)
@click.version_option(__version__, "--version", prog_name="sr-filter", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More messages on stderr (-vv: debug, with tracebacks).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no progress bar.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Upscale images with super-resolution networks.

    \b
    Examples:
      sr-filter photo.jpg -o photo_x4.png
      sr-filter --preset cartoon frame.png --scale 2 -o frame_x2.png
      cat in.png | sr-filter - --format png > out.png
      sr-filter models
    """
    ctx.obj = {"verbose": verbose, "quiet": quiet}
    configure_logging(verbose, quiet)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the group and turns library errors into one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = any(a in ("-vv", "-vvv") for a in args) or args.count("-v") + args.count("--verbose") >= 2
    try:
        code = cli.main(args=args, prog_name="sr-filter", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sr-filter: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except SrFilterError as exc:
        if debug:
            raise
        click.echo(f"sr-filter: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("sr-filter: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)

"""``sr-filter gimp-install``: install the GIMP 3 plug-in (also ``python -m sr_filter.gimp_install``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from sr_filter import gimp_install as installer
from sr_filter.errors import SrFilterError


@click.command("gimp-install")
@click.option("--gimp-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="GIMP 3 profile folder (default: newest existing one, e.g. ~/.config/GIMP/3.0).")
@click.option("--python", "python", default=None,
              help="Interpreter with sr-filter and torch that runs the worker (default: this one).")
def gimp_install(gimp_dir: Optional[Path], python: Optional[str]) -> None:
    """Install the Filters > Enhance > Super-resolution plug-in into GIMP 3."""
    gimp_dir = gimp_dir or installer.default_gimp_dir(installer.gimp_config_root())
    try:
        path = installer.install(gimp_dir, python or sys.executable)
    except SrFilterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("installed %s (worker: %s)" % (path, python or sys.executable))
    click.echo("restart GIMP, then use Filters > Enhance > Super-resolution...")

"""``sr-filter gimp-install``: install the GIMP 3 plug-in (same as ``python -m sr_filter.gimp.install``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from sr_filter.errors import SrFilterError
from sr_filter.gimp import install as installer


@click.command("gimp-install")
@click.option("--gimp-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=installer.GIMP_DIR_HELP)
@click.option("--python", "python", default=None, help=installer.PYTHON_HELP)
def gimp_install(gimp_dir: Optional[Path], python: Optional[str]) -> None:
    """Install the Filters > Enhance > Super-resolution plug-in into GIMP 3."""
    try:
        lines = installer.run(gimp_dir, python)
    except SrFilterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("\n".join(lines))

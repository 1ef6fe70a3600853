"""``sr-filter models``: presets and models with scale, architecture, size, licence and cache state."""

from __future__ import annotations

import json

import click

from ..manifest import load_manifest


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--inspect", "inspect_path", default=None, metavar="PATH|NAME",
              help="Say what a weights file, or a model name already on this machine, is (architecture, scale, "
                   "channels, size needs, precisions).")
def models(as_json: bool, inspect_path: str | None) -> None:
    """List presets and models, and whether their weights are already on this machine."""
    if inspect_path is not None:
        from ..community import inspect_file
        from ..errors import SrFilterError, shorten
        from ..models import resolve

        if not inspect_path.strip():
            raise click.BadParameter("give a weights file or a model name", param_hint="--inspect")
        try:
            facts = inspect_file(resolve(inspect_path, offline=True).path)  # a file, or a name on this machine
        except SrFilterError as exc:  # said as it is: the usual hint points at this very command
            raise click.ClickException(shorten(" ".join(str(exc).split()), 600)) from None
        if as_json:
            click.echo(json.dumps(facts, indent=2))
        else:
            for key, value in facts.items():
                click.echo(f"{key + ':':<16} {', '.join(value) if isinstance(value, list) else value}")
        return
    from ..weights import cache_dir, is_cached  # imports torch: not at --help time

    manifest = load_manifest()
    rows = []
    for entry in manifest.models:
        state = "built-in" if entry.packaged else ("cached" if is_cached(entry) else "download")
        rows.append(
            {
                "name": entry.name,
                "version": entry.version,
                "scale": entry.scale,
                "arch": entry.arch,
                "size_mb": round(entry.size / 1e6, 1),
                "license": entry.license,
                "weights": state,
                "presets": list(entry.presets),
                "description": entry.description,
            }
        )
    presets = {name: {"models": list(p.models), "description": p.description} for name, p in manifest.presets.items()}
    if as_json:
        click.echo(json.dumps({"presets": presets, "models": rows, "cache": str(cache_dir())}, indent=2))
        return
    click.echo("Presets:")
    for name, p in presets.items():
        default = " [the default preset]" if name == manifest.default_preset else ""
        click.echo(f"  {name:<8}{default} -> {', '.join(p['models'])}: {p['description']}")
    click.echo("")
    header = f"  {'model':<28} {'ver':>3} {'scale':>5} {'arch':<8} {'size':>8} {'licence':<13} {'weights':<9} presets"
    click.echo("Models:")
    click.echo(header)
    for r in rows:
        click.echo(
            f"  {r['name']:<28} {r['version']:>3} {'x' + str(r['scale']):>5} {r['arch']:<8} "
            f"{str(r['size_mb']) + ' MB':>8} {r['license']:<13} {r['weights']:<9} {','.join(r['presets'])}"
        )
    click.echo(f"\nWeights cache: {cache_dir()}  (set SR_FILTER_CACHE_DIR to move it)")

"""``sr-filter models``: presets and models with scale, architecture, size, licence and cache state."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys

import click

from ..manifest import load_manifest
from .options import say, verbosity


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--inspect", "inspect_paths", multiple=True, metavar="PATH|NAME",
              help="Say what a weights file, or a model name already on this machine, is (architecture, scale, "
                   "channels, size needs, precisions).")
@click.option("--download", "download", multiple=True, metavar="NAME|PRESET",
              help="Download these models' weights into the cache now (repeatable), e.g. before going offline "
                   "or into a container image; a preset fetches its preferred model, and a model with a "
                   "--denoise twin fetches the twin too.")
@click.option("--clear-cache", is_flag=True,
              help="Remove the downloaded weights and the converted (OpenVINO) models from the cache; they come "
                   "back on next use.")
@verbosity
def models(as_json: bool, inspect_paths: tuple[str, ...], download: tuple[str, ...], clear_cache: bool) -> None:
    """List presets and models, whether their weights are on this machine, and the cache's size."""
    if len(inspect_paths) > 1:  # the last had been inspected, the others left out without a word
        raise click.UsageError("give one --inspect at a time")
    inspect_path = inspect_paths[0] if inspect_paths else None
    if sum(bool(x) for x in (inspect_path is not None, download, clear_cache)) > 1:
        raise click.UsageError("give one of --inspect, --download and --clear-cache")
    if sys.stdout is None and not (download or clear_cache):  # what was asked for is all on standard output
        raise click.UsageError("standard output is closed; the list would be lost")
    if inspect_path is not None:
        _inspect(inspect_path, as_json)
        return
    if download:
        _download(download, as_json)
        return
    if clear_cache:
        _clear_cache(as_json)
        return
    from ..weights import cache_dir, cache_problem, cache_state, cache_write_problem, cached_path  # imports torch: not at --help time

    manifest = load_manifest()
    rows = []
    for entry in manifest.models:
        rows.append(
            {
                "name": entry.name,
                "version": entry.version,
                "scale": entry.scale,
                "arch": entry.arch,
                "size_mb": round(entry.size / 1e6, 1),
                "license": entry.license,
                "weights": cache_state(entry),
                "presets": list(entry.presets),
                "description": entry.description,
                "file": entry.file,
                "path": str(cached_path(entry)),
                "urls": list(entry.urls),
                "sha256": entry.sha256,
            }
        )
    presets = {name: {"models": list(p.models), "description": p.description, "colour_fix": p.colour_fix}
               for name, p in manifest.presets.items()}
    usage = _cache_usage(manifest)
    problem = cache_problem(cache_dir())
    unwritable = None if problem else cache_write_problem(cache_dir())
    if as_json:  # a script can tell a cache it cannot use (null: usable)
        click.echo(json.dumps({"presets": presets, "models": rows, "cache": str(cache_dir()), "cache_usage": usage,
                               "cache_problem": problem or (f"read-only: {unwritable}" if unwritable else None)}, indent=2))
        return
    click.echo("Presets:")
    for name, p in presets.items():
        default = " [the default preset]" if name == manifest.default_preset else ""
        fix = " (with the colour fix)" if p["colour_fix"] else ""
        click.echo(f"  {name:<8}{default} -> {', '.join(p['models'])}{fix}: {p['description']}")
    click.echo("")
    header = f"  {'model':<28} {'ver':>3} {'scale':>5} {'arch':<8} {'size':>8} {'licence':<13} {'weights':<9} presets"
    click.echo("Models:")
    click.echo(header)
    for r in rows:
        click.echo(
            f"  {r['name']:<28} {r['version']:>3} {'x' + str(r['scale']):>5} {r['arch']:<8} "
            f"{str(r['size_mb']) + ' MB':>8} {r['license']:<13} {r['weights']:<9} {','.join(r['presets'])}"
        )
    if problem:
        state = f"(unusable: {problem})"
    elif unwritable:  # had been listed as usable, and every download then failed
        state = (f"(read-only: {unwritable}; models not downloaded yet cannot be fetched into it; "
                 "set SR_FILTER_CACHE_DIR to a writable folder)")
    else:
        state = "(set SR_FILTER_CACHE_DIR to move it)"
    click.echo(f"\nWeights cache: {cache_dir()}  {state}")
    click.echo(f"  {usage['weights_files']} downloaded weights file(s), {usage['weights_bytes'] / 1e6:.1f} MB; "
               f"{usage['converted_models']} converted model(s) (OpenVINO), {usage['converted_bytes'] / 1e6:.1f} MB"
               + (f"; {usage['unfinished_downloads']} unfinished download(s), {usage['unfinished_bytes'] / 1e6:.1f} MB"
                  if usage["unfinished_downloads"] else "")
               + ("; `sr-filter models --clear-cache` empties it"
                  if usage["weights_files"] or usage["converted_models"] or usage["unfinished_downloads"] else ""))


def _cache_usage(manifest) -> dict:
    """What the cache holds: the manifest's downloaded files, the converted models, and the part
    files of unfinished downloads."""
    from ..backends.ov_cache import default_folder
    from ..weights import cache_dir

    weights = [f.stat().st_size for f in _downloaded_files(manifest)]
    converted = _converted_files(default_folder())
    try:  # part files of downloads under way or killed (swept by a later run or --clear-cache)
        parts = [f.stat().st_size for f in cache_dir().glob(".*.part") if f.is_file()]
    except OSError:
        parts = []
    return {"weights_files": len(weights), "weights_bytes": sum(weights),
            "converted_models": sum(1 for f in converted if f.suffix == ".json"),
            "converted_bytes": sum(f.stat().st_size for f in converted),
            "unfinished_downloads": len(parts), "unfinished_bytes": sum(parts)}


def _downloaded_files(manifest) -> list:
    """The weights files in the cache: the manifest's (the built-in ones are not there) and the
    backbones that training's perceptual losses fetch (575 MB for VGG-19, which had stayed
    uncounted and uncleared)."""
    from ..backbones import PUBLISHED
    from ..weights import cache_dir, cached_path

    paths = [cached_path(e) for e in manifest.models if not e.packaged]
    paths += [cache_dir() / pub.file for pub in PUBLISHED.values()]
    return [path for path in paths if path.is_file()]


def _converted_files(folder) -> list:
    """The converted models' files (KEY.xml, KEY.bin, KEY.json; KEY.failed for a model that does
    not convert) in the conversion cache."""
    try:  # a folder or pipe under such a name too: it blocks an entry
        return [f for f in folder.iterdir() if f.suffix in (".xml", ".bin", ".json", ".failed")]
    except OSError:
        return []


def _inspect(spec: str, as_json: bool) -> None:
    """``--inspect``: what a file, or a model on this machine, is; never downloads."""
    from ..community import inspect_file
    from ..errors import SrFilterError, UnknownModelError, shorten
    from ..models import candidates, is_known_name, is_path_spec, refuse_folder, resolve
    from ..weights import cache_state, cached_path

    if not spec.strip():
        raise click.BadParameter("give a weights file or a model name", param_hint="--inspect")
    manifest = load_manifest()
    try:
        if is_path_spec(spec) and not is_known_name(spec, manifest):
            path = resolve(spec, offline=True).path
        else:
            refuse_folder(spec.strip(), manifest)  # it had been "unknown model or preset", with every name
            entries = candidates(spec.strip(), manifest)
            states = [cache_state(e) for e in entries]
            here = [e for e, state in zip(entries, states) if state in ("built-in", "cached")]
            if not here:
                what = "'s cached file is corrupt (wrong size or sha256)" if states[0] == "corrupt" else " is not downloaded yet"
                raise click.ClickException(f"{entries[0].name}{what}, and --inspect never downloads; "
                                           f"`sr-filter models --download {spec.strip()}` fetches it")
            if here[0] is not entries[0]:  # a preset whose preferred model is not here: the one it runs now
                say(f"sr-filter: {spec.strip()} runs {here[0].name} on this machine now ({entries[0].name} is "
                    f"not downloaded)")
            path = cached_path(here[0])
        facts = inspect_file(path)
    except UnknownModelError as exc:
        raise click.ClickException(shorten(" ".join(str(exc).split()), 600)) from None
    except SrFilterError as exc:  # said as it is, with what the file holds: the usual hint points at this very command
        raise click.ClickException(shorten(" ".join(str(exc).split()) + _contents(spec), 600)) from None
    if as_json:
        click.echo(json.dumps(facts, indent=2))
    else:
        for key, value in facts.items():
            click.echo(f"{key + ':':<16} {', '.join(value) if isinstance(value, list) else value}")


def _contents(spec: str) -> str:
    """What a weights file that no architecture matched holds, for the user to recognise it ("" if unreadable)."""
    from pathlib import Path

    from ..errors import SrFilterError

    try:
        from ..community import read_state

        state = read_state(Path(os.path.expanduser(spec)))
    except (SrFilterError, OSError, ValueError):
        return ""
    keys = list(state)
    params = sum(int(getattr(v, "numel", lambda: 0)()) for v in state.values())
    shown = ", ".join(f"{k} {tuple(state[k].shape)}" for k in keys[:4] if hasattr(state[k], "shape"))
    return f"; it holds {len(keys)} tensors ({params:,} numbers): {shown}" + (", ..." if len(keys) > 4 else "")


def _download(specs: tuple[str, ...], as_json: bool) -> None:
    """``--download``: each model's verified file in the cache (a preset: its preferred model;
    with a ``--denoise`` twin, that too)."""
    from ..errors import SrFilterError, UnknownModelError
    from ..models import candidates
    from ..weights import fetch
    from .messages import one_line

    manifest = load_manifest()
    wanted = []  # every name is checked before the first download
    for spec in specs:
        if not spec.strip():
            raise click.BadParameter("a model name is empty", param_hint="--download")
        try:
            entry = candidates(spec.strip(), manifest)[0]
        except UnknownModelError as exc:
            from ..manifest import PATH_ADVICE

            raise click.BadParameter(f"{str(exc).replace(PATH_ADVICE, '')} (--download takes the names and presets "
                                     "`sr-filter models` lists, not files)", param_hint="--download") from None
        for item in [entry] + ([manifest.get(entry.denoise_pair)] if entry.denoise_pair else []):
            if item not in wanted:
                wanted.append(item)
    done, failed = [], 0
    for item in wanted:  # one failure does not stop the others (a container build lists several)
        row = {"name": item.name, "size_mb": round(item.size / 1e6, 1)}
        try:
            path = fetch(item)
        except SrFilterError as exc:
            failed += 1
            row.update(weights="failed", error=" ".join(str(exc).split()))
            if not as_json:
                click.echo(f"sr-filter: error: {item.name}: {one_line(exc, flags=_own_flags())}", err=True)
        else:
            row.update(path=str(path), weights="built-in" if item.packaged else "cached")
            if not as_json:
                click.echo(f"{item.name}: {path} ({item.size / 1e6:.1f} MB, {'built-in' if item.packaged else 'verified'})")
        done.append(row)
    if as_json:
        click.echo(json.dumps(done, indent=2))
    if failed:
        raise SystemExit(1)


def _clear_cache(as_json: bool) -> None:
    """``--clear-cache``: the manifest's downloaded files and every converted model; other files
    in a cache folder the user chose are theirs and stay."""
    from ..atomic import sweep_orphans
    from ..backends.ov_cache import default_folder
    from ..download import sweep_parts
    from ..errors import CacheError
    from ..netmemory import FILE_NAME as REMEMBERED
    from ..weights import cache_dir, cache_problem

    problem = cache_problem(cache_dir())
    if problem:  # "removed 0 files" from a file had read as done
        raise CacheError(problem)
    removed, size, failed = 0, 0, []
    for folder in (cache_dir(), default_folder()):  # what killed runs left: parts, locks, temporary folders
        swept, length = sweep_parts(folder, any_age=True)  # counted: "removed 0 file(s)" had deleted a part and a lock
        removed, size = removed + swept, size + length
        removed += sweep_orphans(folder, again=True)
    with contextlib.suppress(OSError):  # conversions killed under releases that named their folders .tmp-*
        for old in default_folder().glob(".tmp-*"):
            shutil.rmtree(old, ignore_errors=True)
    remembered = [cache_dir() / REMEMBERED] if (cache_dir() / REMEMBERED).is_file() else []  # "no network" too: a fresh start
    targets = _downloaded_files(load_manifest()) + _converted_files(default_folder()) + remembered
    for path in targets:
        try:
            if path.is_dir() and not path.is_symlink():  # a folder where an entry's file goes
                length = 0
                shutil.rmtree(path)
            else:
                length = path.lstat().st_size
                path.unlink()
        except OSError as exc:
            failed.append(f"{path} ({exc.strerror})")
            continue
        removed, size = removed + 1, size + length
    if as_json:
        click.echo(json.dumps({"cache": str(cache_dir()), "removed_files": removed, "removed_bytes": size, "failed": failed}))
    else:
        click.echo(f"removed {removed} file(s), {size / 1e6:.1f} MB, from {cache_dir()}")
    if failed:
        raise click.ClickException(f"could not remove {len(failed)} file(s): {failed[0]}" + (", ..." if len(failed) > 1 else ""))


def _own_flags() -> frozenset[str] | None:
    """The options of the running command, so that a hint names only flags ``models`` has (a
    failed download had pointed to --model)."""
    from . import DefaultGroup

    return DefaultGroup.flags


"""``sr-filter upscale``: files, folders and pipes in; upscaled files out, never a partial one."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from .. import imageio
from ..errors import ImageFormatError, OutputExistsError, SrFilterError
from ..upscaler import Upscaler
from .options import device_opt, model_opt, offline_opt, precision_opt, preset_opt, scale_opt, tile_opt
from .progress import ProgressLine

log = logging.getLogger("sr_filter")


@dataclass
class Job:
    source: Path | None  # None = standard input
    target: Path | None  # None = standard output


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(allow_dash=True, path_type=str))
@click.option("-o", "--output", type=click.Path(allow_dash=True, path_type=str), default=None,
              help="Output file, or folder when several inputs or a folder are given ('-' = stdout).  [default: NAME_xSCALE.EXT beside the input]")
@preset_opt
@model_opt
@scale_opt
@device_opt
@precision_opt
@tile_opt
@offline_opt
@click.option("-f", "--format", "fmt", default=None, metavar="png|jpg|webp|bmp|tiff", help="Output format (needed for stdout; default: from the output name).")
@click.option("--quality", type=click.IntRange(1, 100), default=None, help="JPEG/WebP quality.  [default: 95 / 90]")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (also allows writing over the input).")
@click.option("--skip-existing", is_flag=True, help="Leave outputs that already exist untouched and move on.")
@click.pass_context
def upscale(ctx: click.Context, inputs, output, preset, model, scale, device, precision, tile, offline, fmt, quality, overwrite, skip_existing) -> None:
    """Upscale INPUTS (image files, folders, or - for standard input).

    \b
    Examples:
      sr-filter photo.jpg                         # writes photo_x4.jpg
      sr-filter --preset cartoon a.png -o b.png --scale 2
      sr-filter shots/ -o shots_x4/ --skip-existing
      sr-filter - --format png < in.jpg > out.png
    """
    quiet = (ctx.obj or {}).get("quiet", False)
    if fmt is not None:
        imageio.format_for("", fmt)  # validate early
    check_inputs(list(inputs))
    upscaler = Upscaler(model or preset, device=device, precision=precision, tile=tile, offline=offline)
    jobs = plan_jobs(list(inputs), output, f"{scale:g}" if scale else str(upscaler.scale), fmt)
    if skip_existing:
        kept = [j for j in jobs if j.target is None or not j.target.exists()]
        if len(kept) < len(jobs) and not quiet:
            click.echo(f"sr-filter: skipping {len(jobs) - len(kept)} existing output(s)", err=True)
        jobs = kept
    elif not overwrite:
        for job in jobs:
            if job.target is not None and job.target.exists():
                raise OutputExistsError(f"{job.target} exists; use --overwrite to replace it or --skip-existing")
    if not jobs:
        return
    if not quiet:
        click.echo(f"sr-filter: using {upscaler.describe()}, licence {upscaler.model.license}", err=True)
    progress = ProgressLine(enabled=None if not quiet else False)
    failed: list[tuple[Job, str]] = []
    for number, job in enumerate(jobs, 1):
        name = str(job.source) if job.source else "stdin"
        progress.set_label(f"{number}/{len(jobs)} {Path(name).name}" if len(jobs) > 1 else Path(name).name)
        try:
            process(upscaler, job, scale=scale, fmt=fmt, quality=quality, overwrite=overwrite or skip_existing, progress=progress)
        except SrFilterError as exc:
            progress.finish()
            if len(jobs) == 1:
                raise
            failed.append((job, str(exc)))
            click.echo(f"sr-filter: error: {exc}", err=True)
        finally:
            progress.finish()
    if len(jobs) > 1 and not quiet:
        click.echo(f"sr-filter: {len(jobs) - len(failed)} upscaled, {len(failed)} failed", err=True)
    if failed:
        ctx.exit(1)


def check_inputs(inputs: list[str]) -> None:
    """Fail before any model loads if an input is missing."""
    if "-" in inputs and len(inputs) > 1:
        raise click.UsageError("'-' (standard input) cannot be combined with other inputs")
    for item in inputs:
        if item != "-" and not Path(item).exists():
            raise ImageFormatError(f"{item} does not exist")


def plan_jobs(inputs: list[str], output: str | None, label: str, fmt: str | None) -> list[Job]:
    """Pair every input with its output path."""
    many = len(inputs) > 1 or any(Path(p).is_dir() for p in inputs if p != "-")
    if not many:
        source = inputs[0]
        if source != "-" and not Path(source).is_file():
            raise ImageFormatError(f"{source} is not a regular file")
        if output is None:
            target = None if source == "-" else default_output(Path(source), label, fmt)
        else:
            target = None if output == "-" else Path(output)
        if target is not None:
            imageio.format_for(target, fmt)
        return [Job(None if source == "-" else Path(source), target)]
    if output is None or output == "-":
        raise click.UsageError("several inputs or a folder need -o OUTPUT_FOLDER")
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise click.UsageError(f"{out_dir} exists and is not a folder")
    jobs = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in imageio.FORMATS):
                jobs.append(Job(file, out_dir / _renamed(file.relative_to(path), fmt)))
        elif path.is_file():
            jobs.append(Job(path, out_dir / _renamed(Path(path.name), fmt)))
        else:
            raise ImageFormatError(f"{item} does not exist")
    return jobs


def default_output(source: Path, label: str, fmt: str | None) -> Path:
    """``photo.jpg`` -> ``photo_x4.jpg`` (the scale as given: ``photo_x1.5.jpg``)."""
    suffix = "." + fmt.lower().lstrip(".") if fmt else (source.suffix or ".png")
    return source.with_name(f"{source.stem}_x{label}{suffix}")


def _renamed(relative: Path, fmt: str | None) -> Path:
    return relative.with_suffix("." + fmt.lower().lstrip(".")) if fmt else relative


def process(upscaler: Upscaler, job: Job, *, scale, fmt, quality, overwrite, progress) -> None:
    """Read, upscale, encode and atomically write one image."""
    if job.source is None:
        array, meta = imageio.read_image(sys.stdin.buffer.read())
    else:
        array, meta = imageio.read_image(job.source)
    result = upscaler.upscale_array(array, scale, progress=progress)
    factor = result.shape[1] / array.shape[1]
    if job.target is None:
        out_format = imageio.format_for("", fmt) if fmt else (meta.format or "PNG")
    else:
        out_format = imageio.format_for(job.target, fmt)
    data = imageio.encode_image(result, out_format, meta, quality=quality, scale=factor)
    if job.target is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        if job.target.parent and not job.target.parent.exists():
            job.target.parent.mkdir(parents=True, exist_ok=True)
        imageio.write_atomic(data, job.target, overwrite=overwrite)

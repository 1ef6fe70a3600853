"""``sr-filter upscale``: files, folders and pipes in; upscaled files out, never a partial one."""

from __future__ import annotations

import glob
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click

from .. import imageio
from ..errors import ImageFormatError, OutputExistsError, SrFilterError
from ..upscaler import Upscaler
from .options import device_opt, model_opt, offline_opt, precision_opt, preset_opt, scale_opt, tile_opt, verbosity
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
@click.option("--cluster", metavar="auto|ADDRESS", default=None, help="Spread a folder job over a Ray cluster (auto: $RAY_ADDRESS, else a local one); needs sr-filter[cluster].")
@verbosity
@click.pass_context
def upscale(ctx: click.Context, inputs, output, preset, model, scale, device, precision, tile, offline, fmt, quality, overwrite, skip_existing, cluster) -> None:
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
    if cluster is not None:  # the driver loads no model: sr_filter.cluster lists, schedules and reports
        from ..cluster.command import run_on_cluster

        ctx.exit(run_on_cluster(ctx, list(inputs), output, cluster=cluster, overwrite=overwrite, quiet=quiet, model=model or preset, scale=scale,
                                device=device, precision=precision, tile=tile, offline=offline, fmt=fmt, quality=quality))
    inputs = expand_inputs(list(inputs))
    if inputs == ["-"] and sys.stdin.isatty():
        raise click.UsageError("'-' reads an image from standard input, which is a terminal; pipe or redirect a file into it")
    to_stdout = output == "-" or (output is None and inputs == ["-"])
    if to_stdout and sys.stdout.isatty():
        raise click.UsageError("refusing to write image data to a terminal; redirect standard output or use -o FILE")
    upscaler = Upscaler(model or preset, device=device, precision=precision, tile=tile, offline=offline)
    jobs = plan_jobs(inputs, output, f"{scale:g}" if scale else str(upscaler.scale), fmt)
    check_targets(jobs, overwrite=overwrite)
    skipped = 0
    if skip_existing:
        kept = [j for j in jobs if j.target is None or not j.target.exists()]
        skipped = len(jobs) - len(kept)
        if skipped and not quiet:
            click.echo(f"sr-filter: skipping {skipped} existing output(s)", err=True)
        jobs = kept
    elif not overwrite:
        for job in jobs:
            if job.target is not None and job.target.exists():
                raise OutputExistsError(f"{job.target} exists; use --overwrite to replace it or --skip-existing")
    if not jobs:
        return
    check_writable(jobs)
    announced = []

    def announce() -> None:  # once, after the first image has been read: a bad input stays one line
        if not announced and not quiet:
            click.echo(f"sr-filter: using {upscaler.describe()}, licence {upscaler.model.license}", err=True)
        announced.append(True)

    progress = ProgressLine(enabled=None if not quiet else False)
    failed: list[tuple[Job, str]] = []
    batch = len(jobs) > 1
    done = 0
    try:
        for number, job in enumerate(jobs, 1):
            name = str(job.source) if job.source else "stdin"
            progress.set_label(f"{number}/{len(jobs)} {Path(name).name}" if batch else Path(name).name)
            started = time.monotonic()
            try:
                report = overall(progress, number - 1, len(jobs)) if batch else progress
                process(upscaler, job, scale=scale, fmt=fmt, quality=quality, overwrite=overwrite, progress=report, announce=announce)
            except (SrFilterError, MemoryError, OSError) as exc:
                progress.finish()
                message = _describe_failure(job, exc)
                if not batch:
                    raise (type(exc) if isinstance(exc, SrFilterError) else SrFilterError)(message) from None
                failed.append((job, message))
                click.echo(f"sr-filter: error: {message}", err=True)
                continue
            finally:
                progress.finish()
            done += 1
            if batch and not quiet:
                click.echo(f"sr-filter: [{number}/{len(jobs)}] {name} -> {job.target} ({time.monotonic() - started:.1f} s)", err=True)
    except KeyboardInterrupt:
        if batch and not quiet:
            click.echo(f"sr-filter: interrupted after {done} of {len(jobs)} file(s); the one in progress was not written", err=True)
        raise
    if batch and not quiet:
        summary = f"sr-filter: {done} upscaled"
        summary += f", {skipped} skipped" if skipped else ""
        click.echo(f"{summary}, {len(failed)} failed", err=True)
        for job, message in failed:
            click.echo(f"sr-filter: failed: {job.source}", err=True)
    if failed:
        ctx.exit(1)


def overall(progress: ProgressLine, finished: int, count: int):
    """A per-image progress callback that moves one bar over the whole batch."""

    def report(done: int, total: int) -> None:
        progress(finished * 1000 + (done * 1000 // total if total else 1000), count * 1000)

    return report


def _describe_failure(job: Job, exc: BaseException) -> str:
    """One line naming the file, whatever the error."""
    if isinstance(exc, MemoryError):
        text = "ran out of memory; use a smaller --scale or --tile"
    elif isinstance(exc, OSError) and not isinstance(exc, SrFilterError):
        text = exc.strerror or str(exc)
    else:
        text = str(exc)
    name = str(job.source) if job.source else "standard input"
    return text if name in text else f"{name}: {text}"


def expand_inputs(inputs: list[str]) -> list[str]:
    """Check the inputs exist (before any model loads); expand glob patterns the shell left alone."""
    if "-" in inputs and len(inputs) > 1:
        raise click.UsageError("'-' (standard input) cannot be combined with other inputs")
    expanded: list[str] = []
    for item in inputs:
        if item == "-" or Path(item).exists():
            expanded.append(item)
        elif any(c in item for c in "*?["):
            matches = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not matches:
                raise ImageFormatError(f"no files match {item}")
            expanded.extend(matches)
        else:
            raise ImageFormatError(f"{item} does not exist")
    return expanded


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
            if target.is_dir():
                target = target / (default_output(Path(source), label, fmt).name if source != "-" else f"stdin.{(fmt or 'png').lower()}")
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
            nested = out_dir.resolve() != path.resolve() and _inside(out_dir, path)
            found = len(jobs)
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in imageio.FORMATS):
                if nested and _inside(file, out_dir):
                    continue  # earlier outputs in an output folder nested inside the input folder
                jobs.append(Job(file, out_dir / _renamed(file.relative_to(path), fmt)))
            if len(jobs) == found:
                raise ImageFormatError(f"no image files ({', '.join(sorted({k[1:] for k in imageio.FORMATS}))}) in {path}")
        elif path.is_file():
            jobs.append(Job(path, out_dir / _renamed(Path(path.name), fmt)))
        else:
            raise ImageFormatError(f"{item} does not exist")
    return jobs


def check_targets(jobs: list[Job], *, overwrite: bool) -> None:
    """Refuse two inputs writing one output, and writing over an input without --overwrite."""
    seen: dict[Path, Path | None] = {}
    for job in jobs:
        if job.target is None:
            continue
        key = job.target.resolve()
        if key in seen:
            raise click.UsageError(f"{seen[key]} and {job.source} would both be written to {job.target}")
        seen[key] = job.source
        if job.source is not None and not overwrite and _same_file(job.source, job.target):
            raise OutputExistsError(f"{job.target} is the input file; use --overwrite to replace it or choose another -o")


def check_writable(jobs: list[Job]) -> None:
    """Fail before any work when an output folder cannot be created or written to."""
    for folder in sorted({j.target.parent for j in jobs if j.target is not None}, key=str):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageFormatError(f"cannot create output folder {folder}: {exc.strerror}") from None
        try:
            fd, probe = tempfile.mkstemp(prefix=".sr-filter-", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise ImageFormatError(f"cannot write to output folder {folder}: {exc.strerror}") from None
        os.close(fd)
        os.unlink(probe)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def default_output(source: Path, label: str, fmt: str | None) -> Path:
    """``photo.jpg`` -> ``photo_x4.jpg`` (the scale as given: ``photo_x1.5.jpg``)."""
    suffix = "." + fmt.lower().lstrip(".") if fmt else (source.suffix or ".png")
    return source.with_name(f"{source.stem}_x{label}{suffix}")


def _renamed(relative: Path, fmt: str | None) -> Path:
    return relative.with_suffix("." + fmt.lower().lstrip(".")) if fmt else relative


def process(upscaler: Upscaler, job: Job, *, scale, fmt, quality, overwrite, progress, announce=None) -> None:
    """Read, upscale, encode and atomically write one image."""
    factor = float(scale or upscaler.scale)
    if job.source is None:
        array, meta = imageio.read_image(sys.stdin.buffer.read(), scale=factor, model_scale=upscaler.scale)
    else:
        array, meta = imageio.read_image(job.source, scale=factor, model_scale=upscaler.scale)
    if announce is not None:
        announce()
    result = upscaler.upscale_array(array, scale, progress=progress)
    factor = result.shape[1] / array.shape[1]
    if job.target is None:
        out_format = imageio.format_for("", fmt) if fmt else _same_format(meta.format)
    else:
        out_format = imageio.format_for(job.target, fmt)
    data = imageio.encode_image(result, out_format, meta, quality=quality, scale=factor)
    if job.target is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        imageio.write_atomic(data, job.target, overwrite=overwrite)


def _same_format(name: str | None) -> str:
    """The input's format for standard output (a camera's MPO is a JPEG; unknown ones PNG)."""
    name = {"MPO": "JPEG"}.get(name or "", name or "")
    return name if name in set(imageio.FORMATS.values()) else "PNG"

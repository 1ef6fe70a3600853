"""``sr-filter upscale``: files, folders and pipes in; upscaled files out, never a partial one.

Everything that can be refused is refused before the model runs: option values, the device, the
outputs (existing, special files, names too long, unwritable folders). torch is imported only when
the command runs, not for ``--help``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..atomic import descriptor, file_system, free_space, is_stream, write_all
from ..errors import ImageFormatError, OutputExistsError, OutputIsInputError, SrFilterError
from ..interrupts import Terminated
from ..progress import Bars, stderr_is_terminal
from ..stdio import discard, refuse_closed
from ..video import VIDEO_SUFFIXES
from ..video.command import video_only, video_options, wants_video
from .jobs import (
    Job, check_targets, check_writable, expand_inputs, is_pattern, is_pipe, is_video, left_out_line, many_inputs, names_folder, plan_jobs,
    refuse_empty_names, unique, video_target,
)
from .messages import flagged, one_line, shown_path, unforeseen
from .options import (
    backend_opt, colour_fix_opt, current_file, denoise_opt, device_opt, fp32_opt, gpu_opt, height_opt, model_opt, offline_opt, precision_opt, preset_opt,
    say, scale_opt, tile_opt,
    tta_opt, verbosity, width_opt,
)
from .startup import load_libraries

if TYPE_CHECKING:
    from ..upscaler import Upscaler

#: output formats for --help and the option check, spelled here because imageio imports torch (through
#: limits and device); test_cli_start checks it against imageio.FORMATS
FORMAT_NAMES = "png|jpg|webp|avif|bmp|tiff|gif|tga|ppm|pam"


CUT_SHORT = "standard output was closed by the program reading it; the output was cut short"


def _flagged(text: str) -> str:
    """A video's notice with this command's flags for the API's words (``codec="av1"``: ``--codec av1``)."""
    from . import DefaultGroup

    return flagged(text, DefaultGroup.flags)


def _closed_stdout_is_one_line(command):
    """The program reading standard output stopped (``| head``): one line and exit 1, where click
    exited 1 without a word."""
    @functools.wraps(command)
    def guarded(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes at exit
                discard(sys.stdout.fileno())
            raise ImageFormatError(CUT_SHORT) from None
    return guarded


@click.command()
# readable=False: an unreadable file is the reader's "cannot read X: Permission denied", one failure of a
# batch (click had refused the whole command in its own words, exit 2)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(allow_dash=True, path_type=str, readable=False))
@click.option("-o", "--output", type=click.Path(allow_dash=True, path_type=str), default=None,
              help="Output file, or folder (a name ending in '/', an existing folder, or any name when several inputs "
                   "or a folder are given; created if needed); '-' = stdout.  [default: NAME_x4.EXT beside the input]")
@preset_opt
@model_opt
@scale_opt
@width_opt
@height_opt
@device_opt
@gpu_opt
@precision_opt
@fp32_opt
@backend_opt
@tta_opt
@denoise_opt
@colour_fix_opt
@tile_opt
@offline_opt
@click.option("-f", "--format", "--ext", "fmt", default=None, metavar=FORMAT_NAMES,
              callback=lambda ctx, param, value: None if value is None else value.strip(),  # as --precision's value
              shell_complete=lambda ctx, param, incomplete: [name for name in (*FORMAT_NAMES.split("|"), "y4m", "png-stream")
                                                             if name.startswith(incomplete.lower())],
              help="Output format and extension (y4m, png-stream: frame streams).  [default: from the output name; for stdout, the input's format]")
@click.option("--suffix", default=None, metavar="TEXT", callback=lambda ctx, param, value: _check_suffix(value),
              help="Output name suffix instead of _x4 (NAMETEXT.EXT); '' for none. Also added to the files of a batch, "
                   "which otherwise keep their names in the output folder.")
@click.option("--quality", type=click.IntRange(1, 100), default=None, help="JPEG/WebP/AVIF quality, 1-100; 100 = lossless WebP.  [default: 95 / 90 / 90; a lossless WebP input stays lossless]")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (and an image input written in place; a video is never its own output).")
@click.option("--skip-existing", is_flag=True, help="Leave outputs that already exist untouched and move on.")
@video_options
@click.option("--cluster", metavar="auto|ADDRESS", default=None, help="Spread a folder job, or one video's segments, over a Ray cluster (auto: $RAY_ADDRESS, else a local one); needs the cluster extra (pip install '.[cluster]' in the sr-filter folder).")
@verbosity
@click.pass_context
@_closed_stdout_is_one_line
def upscale(ctx: click.Context, inputs, output, preset, model, scale, width, height, device, gpu, precision, fp32, backend, tta, denoise, colour_fix, tile,
            offline, fmt, suffix, quality, overwrite, skip_existing, codec, crf, frames, resume, skip_damaged, cluster) -> None:
    """Upscale INPUTS: PNG, JPEG, WebP, AVIF, BMP, TIFF, GIF, TGA or Netpbm (PPM/PGM/PAM) files,
    HEIC/HEIF (with the heic extra; written as PNG), folders, or - for standard input; videos (mp4, mkv, webm, mov, avi) and animated
    GIF/WebP/PNG/AVIF keep every frame.

    \b
    Examples:
      sr-filter photo.jpg                         # writes photo_x4.jpg
      sr-filter --preset cartoon a.png -o b.png --scale 2
      sr-filter photo.jpg --width 3840            # 3840 pixels wide, aspect ratio kept
      sr-filter shots/ -o shots_x4/ --skip-existing
      sr-filter - < in.jpg > out.jpg              # stdin to stdout, in the input's format
    """
    quiet = (ctx.obj or {}).get("quiet", False)
    refuse_empty_names(list(inputs), output)
    named = output  # as typed, for the messages
    if output is not None and descriptor(output) == 1:  # /dev/stdout, /dev/fd/1: standard output, as -o - is
        output = "-"
    if suffix is not None and output not in (None, "-") and not many_inputs(list(inputs)) and not names_folder(output):
        # it was silently ignored
        raise click.UsageError(f"-o {shown_path(output)} names the output file, so --suffix changes nothing; leave out one of them")
    if suffix is not None and not many_inputs(list(inputs)) and (output == "-" or (output is None and list(inputs) == ["-"])):
        # standard output has no name for --suffix to change: it had been ignored without a word
        said = f"-o {shown_path(named)} writes" if output == "-" else "standard input is written to"
        raise click.UsageError(f"{said} standard output, so --suffix changes nothing; leave out --suffix or name an output file")
    device, precision = _device_and_precision(device, gpu, precision, fp32)
    if scale is not None and (width or height):
        raise click.UsageError("give either --scale or --width/--height, not both")
    if overwrite and skip_existing:
        raise click.UsageError("give either --overwrite or --skip-existing, not both")
    if frames is not None:  # a malformed range is a usage error, said before any model loads
        from ..frames import parse_range

        try:
            parse_range(frames)
        except SrFilterError as exc:
            raise click.BadParameter(str(exc), param_hint="'--frames'") from None
        if resume:
            raise click.UsageError("--resume works on whole videos; leave out --frames")
    if fmt is not None and fmt.lower().lstrip(".") not in _format_keys() | {"y4m", "png-stream"}:
        # before videos are told apart: a video's "--format webm" had been called an image format
        named = fmt.lower().lstrip(".")
        container = f"; a video's container comes from its output name (-o NAME.{named})" if f".{named}" in VIDEO_SUFFIXES else ""
        raise click.BadParameter(f"{fmt!r} is not one of {FORMAT_NAMES.replace('|', ', ')}, y4m, png-stream{container}",
                                 param_hint="'--format'")
    if cluster is not None and skip_damaged:  # the workers decode their own segments
        raise click.UsageError("--cluster upscales undamaged videos; leave out --skip-damaged")
    if cluster is not None and frames is not None:  # a folder's animations had been written whole without a word
        raise click.UsageError("--cluster upscales whole videos and animations; leave out --frames")
    if cluster is not None:
        model = _cluster_model(model)
    # a pattern ("clips/*.mp4") is a batch, whatever it finds: as one video, it had been upscaled
    # only the first file it found, the others passed over without a word
    video = not any(is_pattern(p) for p in inputs) and wants_video(list(inputs), fmt, output)
    if cluster is not None and video:  # one video's segments spread over a cluster
        from ..cluster.command import run_video_on_cluster

        if quality is not None:  # as on one machine: it had been accepted and changed nothing
            from ..video.command import QUALITY_REFUSED

            raise click.UsageError(QUALITY_REFUSED)

        ctx.exit(run_video_on_cluster(ctx, list(inputs), output, cluster=cluster, overwrite=overwrite, quiet=quiet, fmt=fmt,
                                      skip_existing=skip_existing or resume, reword=_flagged,
                                      model=model or preset, scale=scale, width=width, height=height, device=device, precision=precision, backend=backend,
                                      tile=tile, offline=offline, codec=codec, crf=crf, tta=tta, denoise=denoise, colour_fix=colour_fix))
    if video:  # videos, animations, frame streams: sr_filter.video
        from ..upscaler import may_skip_torch
        from ..video.command import run as run_video

        load_libraries(openvino=backend != "torch", torch=not may_skip_torch(device, backend, denoise))

        return run_video(inputs=expand_inputs(list(inputs)), output=output, model=model or preset, scale=scale,
                         device=device, precision=precision, backend=backend, tile=tile, offline=offline, fmt=fmt, quality=quality,
                         overwrite=overwrite, skip_existing=skip_existing or (resume and not overwrite), quiet=quiet, codec=codec, crf=crf,
                         frames=frames, resume=resume, tta=tta, denoise=denoise, colour_fix=colour_fix, size=(width, height),
                         name_suffix=suffix if suffix is not None else _size_suffix(width, height), skip_damaged=skip_damaged,
                         reword=_flagged)
    if cluster is not None:  # the driver loads no model: sr_filter.cluster lists, schedules and reports
        from ..cluster.command import run_on_cluster

        if suffix is not None:
            raise click.UsageError("--cluster keeps file names in the output folder; leave out --suffix")
        given = video_only(codec, crf, False)
        if given:  # as on one machine for pictures: the workers had been given neither, and said nothing
            raise click.UsageError(f"{given} to videos; a --cluster job of folders, files or patterns upscales their "
                                   "pictures only (a video is given alone: sr-filter VIDEO -o OUT.mkv --cluster ...)")
        if output and Path(output).suffix and not names_folder(output):
            from ..imageio import IMAGE_SUFFIXES  # only here: it loads torch, which the driver needs not

            if Path(output).suffix.lower() in IMAGE_SUFFIXES:
                raise click.UsageError(f"--cluster writes into an output folder, and {output} names a file; give -o FOLDER/")

        ctx.exit(run_on_cluster(ctx, list(inputs), output, cluster=cluster, overwrite=overwrite, quiet=quiet,
                                model=model or preset, scale=scale, device=device, precision=precision, backend=backend,
                                tile=tile, offline=offline, fmt=fmt, quality=quality, tta=tta, denoise=denoise, colour_fix=colour_fix,
                                size=(width, height)))
    inputs = expand_inputs(list(inputs))
    if many_inputs(inputs) and (output == "-" or (output is None and any(Path(p).is_dir() for p in inputs))):
        raise click.UsageError("standard output (-o -) takes one image; several inputs, a folder or a pattern need -o OUTPUT_FOLDER" if output == "-"
                               else "a folder input needs -o OUTPUT_FOLDER")
    to_stdout = output == "-" or (output is None and inputs == ["-"])
    refuse_closed(reads_stdin=inputs == ["-"], writes_stdout=to_stdout)
    if inputs == ["-"] and _isatty(sys.stdin):
        raise click.UsageError("'-' reads an image from standard input, which is a terminal; pipe or redirect a file into it")
    if to_stdout and _isatty(sys.stdout):
        raise click.UsageError("refusing to write image data to a terminal; redirect standard output or use -o FILE")
    if many_inputs(inputs) and (codec or crf is not None):  # the videos' codec and quality, before the model loads
        from ..video.job import check_codec

        for source in (Path(p) for p in inputs if p != "-" and is_video(Path(p)) and Path(p).is_file()):
            try:
                check_codec(source, video_target(source, source), codec, crf, unreadable_ok=True)
            except SrFilterError as exc:  # which of the inputs: the line had named only the codec
                if str(exc).startswith("unknown video codec"):  # about no input in particular
                    raise
                raise type(exc)(f"{shown_path(source)}: {exc}") from None
    from ..models import expected_scale
    from ..upscaler import Upscaler, may_skip_torch

    # Ctrl-C held back while compiled code loads; torch only where the run may need it
    load_libraries(openvino=backend != "torch", torch=not may_skip_torch(device, backend, denoise))
    _check_device(device, precision)
    batch_suffix = suffix or ""  # files written into an output folder keep their names unless --suffix is given
    if resume and not overwrite:  # run again after Ctrl-C: finished outputs stay, the video in progress
        skip_existing = True  # resumes (one finished video had been an error, so a retry loop never ended)
    plan = functools.partial(_plan, inputs, output, fmt=fmt, batch_suffix=batch_suffix, quiet=quiet, quality=quality,
                             overwrite=overwrite, skip_existing=skip_existing,
                             video_opts=(codec, crf, resume, frames, skip_damaged))
    if suffix is None:
        suffix = _size_suffix(width, height) or (f"_x{scale:g}" if scale else None)
    # the outputs are checked before the model is fetched where their names do not wait for its
    # scale: an existing output had been refused only after a download and a conversion, and
    # --skip-existing with nothing left to do had needed the weights (or the network)
    expected = None if suffix is not None else expected_scale(model or preset)
    planned = plan(suffix if suffix is not None else f"_x{expected}") if suffix is not None or expected else None
    if planned is not None and not planned[0]:
        return
    if not many_inputs(inputs) and inputs[0] != "-" and Path(inputs[0]).is_file():  # one picture: readable, before the model
        from ..imageio import check_readable

        try:
            check_readable(inputs[0])
        except ImageFormatError as exc:  # the name as every other message shows it (a newline escaped)
            raise ImageFormatError(str(exc).replace(inputs[0], shown_path(inputs[0]))) from None
    upscaler = Upscaler(model or preset, device=device, precision=precision, tile=tile, offline=offline, backend=backend,
                        tta=tta, denoise=denoise, colour_fix=colour_fix)
    upscaler.check_scale(scale)  # before any file: a scale the model cannot give (a 1x model asked for x4)
    if planned is None or (suffix is None and upscaler.scale != expected):
        planned = plan(suffix if suffix is not None else f"_x{upscaler.scale}")
        if not planned[0]:
            return
    jobs, skipped, batch = planned
    announced = []

    def announce() -> None:  # once, after the first image has been read: a bad input stays one line
        if not announced and not quiet:
            bars.echo(f"sr-filter: using {upscaler.describe()}, licence {upscaler.model.license}")
        announced.append(True)

    batch = batch or len(jobs) + skipped > 1
    bars = Bars(len(jobs), enabled=not quiet and stderr_is_terminal())
    failed: list[tuple[Job, str]] = []
    full: dict[int, bool] = {}  # the file systems found full in this batch -> the user's quota is used up there
    done = 0
    try:
        for number, job in enumerate(jobs, 1):
            name = str(job.source) if job.source else "stdin"
            error = job.error
            disk = file_system(job.target) if full and error is None and job.target is not None else None
            if disk in full:
                # upscaling it only to fail the same way would take minutes a file and say nothing new;
                # one whose output fits whatever its compression (a small picture after a large one) is tried
                free = None if full[disk] else free_space(job.target)
                if free is None or not _surely_fits(job, free, scale or upscaler.scale, (width, height)):
                    error = f"{name}: not tried: the disk of {shown_path(job.target)} is full"
            if error:  # a missing input, a folder that cannot be read: a failure of the batch, in its turn
                message = error.replace(str(job.source), shown_path(job.source))  # as the failed: line shows it
                failed.append((job, message))
                bars.echo(f"sr-filter: error: {one_line(ImageFormatError(message))}")
                continue
            bars.start(Path(name).name)
            started = time.monotonic()
            naming = current_file.set(name) if batch else None
            try:
                if is_video(job.source):  # a video among several inputs: the video path, with this model
                    from ..video.command import run as run_video

                    announce()
                    run_video(inputs=[str(job.source)], output=str(job.target), model=None, scale=scale, device=device,
                              precision=precision, backend=backend, tile=tile, offline=offline, fmt=None, quality=quality,
                              overwrite=overwrite, skip_existing=False, quiet=quiet, codec=codec, crf=crf, frames=frames,
                              resume=resume, size=(width, height), upscaler=upscaler, in_batch=True, skip_damaged=skip_damaged,
                              reword=_flagged)
                else:
                    process(upscaler, job, scale=scale, size=(width, height), fmt=fmt, quality=quality, overwrite=overwrite,
                            progress=bars, announce=announce, frames=frames)
            except (SrFilterError, MemoryError, OSError) as exc:
                bars.finish()
                if skip_existing and isinstance(exc, OutputExistsError) and not isinstance(exc, OutputIsInputError):
                    # another run (a parallel batch into the same folder) wrote it meanwhile: what --skip-existing asks
                    skipped += 1
                    if not quiet:
                        bars.echo(f"sr-filter: skipped {shown_path(job.target)}: another process wrote it meanwhile")
                    continue
                message = _describe_failure(job, exc)
                if job.source is not None:  # the name as the [i/N] and "failed:" lines show it (a newline escaped)
                    message = message.replace(str(job.source), shown_path(job.source))
                if not batch:
                    raise (type(exc) if isinstance(exc, SrFilterError) else SrFilterError)(message) from None
                disk = getattr(exc, "full_disk", None)
                if disk is not None and job.target is not None and disk == file_system(job.target):
                    # (the disk of this output's folder: a full disk met elsewhere stops nothing here)
                    full[disk] = bool(getattr(exc, "quota", False))
                    message += ("; later outputs on that disk are not tried" +
                                ("" if full[disk] else " unless they surely fit") +
                                " (free space there, then run the command again with --skip-existing)")
                failed.append((job, message))
                bars.echo(f"sr-filter: error: {one_line(exc, text=message)}")
                continue
            except (ImportError, RuntimeError):  # the machine's resources or installation: said for the command
                raise
            except Exception as exc:  # a bug no check foresaw: this file fails, the batch goes on (-vv: raised)
                bars.finish()
                if not batch or logging.getLogger("sr_filter").isEnabledFor(logging.DEBUG):
                    raise
                message = f"{shown_path(job.source) if job.source else 'standard input'}: {unforeseen(exc)}"
                failed.append((job, message))
                bars.echo(f"sr-filter: error: {message}")
                continue
            finally:
                if naming is not None:
                    current_file.reset(naming)
            bars.finish()
            done += 1
            if batch and not quiet:
                bars.echo(f"sr-filter: [{number}/{len(jobs)}] {shown_path(name)} -> {shown_path(job.target)} "
                          f"({time.monotonic() - started:.1f} s)")
    except (KeyboardInterrupt, Terminated) as stop:
        bars.close()
        if batch:  # said in the one line the command ends with (Ctrl-C had printed two, SIGTERM no count)
            kept = getattr(stop, "batch_progress", None) or ""  # a resumable video's finished segments (had gone unsaid)
            stop.batch_progress = f"after {done} of {len(jobs)} file(s); the one in progress was not written{kept}"
        raise
    finally:  # also on SIGTERM/SIGHUP; the temporary files are removed by their own finally blocks
        bars.close()
    if batch and (failed or not quiet):
        for job, _ in failed:
            click.echo(f"sr-filter: failed: {shown_path(job.source)}", err=True)
        click.echo(f"sr-filter: {done} upscaled, {skipped} skipped, {len(failed)} failed", err=True)  # docs/io.md: always all three
    if failed:
        ctx.exit(1)


def _plan(inputs: list[str], output: str | None, suffix: str, *, fmt: str | None, batch_suffix: str, quiet: bool,
          quality: int | None, overwrite: bool, skip_existing: bool, video_opts: tuple) -> tuple[list[Job], int, bool]:
    """The jobs left to do (outputs checked: none refused, none written over without --overwrite),
    how many --skip-existing left out, and whether this is a batch; with no job left, the batch's
    summary line is said here. ``video_opts``: (codec, crf, resume, frames, skip_damaged) as given."""
    jobs = unique(plan_jobs(inputs, output, suffix, fmt, batch_suffix=batch_suffix))
    left_out = left_out_line(inputs)
    if left_out:
        say(f"sr-filter: {left_out}")
    from ..imageio import HEIF_SUFFIXES  # plan_jobs has imported it

    if fmt is None and any(job.source is not None and job.source.suffix.lower() in HEIF_SUFFIXES and job.target is not None
                           and (output is None or job.target != Path(output)) for job in jobs):  # the name not the user's
        say("sr-filter: HEIC/HEIF pictures are written as PNG, which keeps their depth (16 bits for a 10-bit photo), "
            "alpha and metadata (HEIC is read, not written); --format jpg or avif gives smaller files")
    if not any(is_video(job.source) for job in jobs):
        codec, crf, resume, frames, skip_damaged = video_opts
        if frames is not None and any(_keeps_animation(job, fmt) for job in jobs):
            frames = None  # the animations take the range, as one given alone does
        given = video_only(codec, crf, resume, frames, skip_damaged)
        if given and len(jobs) == 1 and jobs[0].source is not None and jobs[0].target is not None and _animated(jobs[0].source):
            # an animation written as a still format: "given alone" is true, and had been said as if it were not
            raise click.UsageError(f"{given} to videos and to animations written as one (gif, webp, png, avif); "
                                   f"{shown_path(jobs[0].target)} holds one picture")
        if given and frames and any(job.source is None for job in jobs):  # (had said it was "no animation")
            raise click.UsageError(f"{given} to video and animation files; standard input is read as one picture")
        if given and frames and any(job.source is not None and job.source.is_file() and _animated(job.source) for job in jobs):
            raise click.UsageError(f"{given} to videos and to animations written as one (gif, webp, png, avif); "
                                   "these outputs hold one picture each")
        if given:
            what = "videos and animations" if given == "--frames applies" else "videos (--frames also to animations)" if frames else "videos"
            raise click.UsageError(f"{given} to {what}; none of these inputs is a video{' or an animation' if frames else ''}")
    # several inputs or a folder: a batch, even when all but one were done before (a folder of one
    # image had printed neither its [1/1] line nor the summary)
    batch = len(jobs) > 1 or any(p != "-" and Path(p).is_dir() for p in inputs)
    skipped = 0
    if skip_existing:  # before the checks: an output written in place of its input is done, not refused
        # a link to nothing is a taken name too, as for videos (it had been refused, stopping the batch)
        kept = [j for j in jobs if j.target is None or not os.path.lexists(j.target) or j.target.is_dir() or is_stream(j.target)]
        skipped = len(jobs) - len(kept)
        if skipped and not batch:  # one picture: named, as a video is
            say(f"sr-filter: skipping existing output {shown_path(jobs[0].target)}")
        elif skipped:
            say(f"sr-filter: skipping {skipped} existing output(s)")
        jobs = kept
    check_targets(jobs, overwrite=overwrite)
    if not jobs:
        if batch:  # a batch's summary line, as after any batch
            say(f"sr-filter: 0 upscaled, {skipped} skipped, 0 failed")
        return jobs, skipped, batch
    check_writable(jobs, overwrite=overwrite)
    if quality is not None and not quiet:  # only where there is work: not before a refusal (nor after "skipping" all)
        _say_quality_unused(jobs, fmt)
    return jobs, skipped, batch


def _animated(source: Path) -> bool:
    from .. import animation

    return animation.is_animated(source)


def _keeps_animation(job: Job, fmt: str | None) -> bool:
    """Whether a job writes an animated input as an animation (every frame, or a --frames range)."""
    from .. import animation, imageio

    if job.source is None or job.target is None or not job.source.is_file() or not _animated(job.source):
        return False
    try:
        return imageio.format_for(job.target, fmt) in animation.HOLDS_ANIMATION
    except SrFilterError:
        return False


def _cluster_model(model: str | None) -> str | None:
    """A weights file named relative to this folder, as an absolute path: the workers run elsewhere.
    Only what names a file (a weights suffix or a folder part); names of presets and models stay."""
    looks_like_file = model and (model.lower().endswith((".pth", ".pt", ".ckpt", ".safetensors")) or "/" in model)
    if looks_like_file and Path(os.path.expanduser(model)).is_file():
        return str(Path(os.path.expanduser(model)).resolve())
    return model


def _device_and_precision(device: str, gpu: int | None, precision: str, fp32: bool) -> tuple[str, str]:
    """Fold the aliases (-g N, --fp32) into --device/--precision (the device's name is checked by
    its option)."""
    if gpu is not None:
        if device not in ("auto", f"cuda:{gpu}"):
            raise click.UsageError(f"-g {gpu} means --device cuda:{gpu}; it cannot be combined with --device {device}")
        device = f"cuda:{gpu}"
    if fp32:
        if precision not in ("auto", "fp32"):
            raise click.UsageError(f"--fp32 cannot be combined with --precision {precision}")
        precision = "fp32"
    return device, precision


def _check_device(device: str, precision: str) -> None:
    """The device and precision exist here: checked before the model loads (or downloads); called
    after :func:`~sr_filter.cli.startup.load_libraries`, which loads numpy before torch. The CPU
    for sure is checked without torch."""
    from ..device import cpu_only, cpu_precision, pick_device, pick_dtype

    if cpu_only(device):
        cpu_precision(precision)
        return
    chosen = pick_device(device)
    if precision != "auto":
        pick_dtype(chosen, precision)


def _check_suffix(value: str | None) -> str | None:
    """A suffix is part of a file name: no folder separator or NUL in it."""
    if value is not None and any(c in value for c in ("/", "\0", os.sep)):
        raise click.BadParameter(f"{value!r} is not part of a file name (no '/' in a suffix); use -o for another folder",
                                 param_hint="'--suffix'")
    return value


def _format_keys() -> set[str]:
    return set(FORMAT_NAMES.split("|")) | {"jpeg", "tif", "pgm", "pnm"}


def _isatty(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False


def _surely_fits(job: Job, free: int, scale: float, size: tuple[int | None, int | None]) -> bool:
    """Whether a picture's output fits in ``free`` bytes however badly it compresses: its raw RGBA
    samples, a filter byte a row, the compressor's overhead and the input's own bytes (for the
    metadata carried over) are fewer. False for a video, an animation or a file whose header does
    not say its size."""
    from ..animation import is_animated
    from ..sizing import fit_scale, scaled_length
    from ..sniff import header_shape

    if job.source is None or is_video(job.source):
        return False
    try:
        with open(job.source, "rb") as f:
            head = f.read(1 << 16)
        length = os.path.getsize(job.source)
    except OSError:
        return False
    shape = header_shape(head)
    if shape is None or is_animated(job.source):  # an animation's frames are not counted here
        return False
    width, height, _, itemsize = shape
    factor = fit_scale(size[0], size[1], width, height) if any(size) else scale
    out_w, out_h = scaled_length(width, factor), scaled_length(height, factor)
    raw = out_w * out_h * 4 * itemsize + out_h
    return raw + raw // 500 + length + 4096 < free


def _describe_failure(job: Job, exc: BaseException) -> str:
    """One line naming the file, whatever the error."""
    if isinstance(exc, MemoryError):
        # outside the tiles, which split by themselves: the output's own arrays
        text = "ran out of memory; close other programs or use a smaller --scale"
    elif isinstance(exc, BrokenPipeError) and job.target is None:
        text = CUT_SHORT
    elif isinstance(exc, OSError) and not isinstance(exc, SrFilterError):
        text = exc.strerror or str(exc)
    else:
        text = str(exc)
    name = str(job.source) if job.source else "standard input"
    return text if _names(text, name) else f"{name}: {text}"


def _names(text: str, name: str) -> bool:
    """Whether ``text`` names the file ``name`` itself, not only inside another path: "cannot write
    out/m.png" names the output, and the line had then left out its input m.png."""
    return re.search(rf"(?<![\w/.-]){re.escape(name)}(?![\w/])", text) is not None


def process(upscaler: Upscaler, job: Job, *, scale, size=(None, None), fmt, quality, overwrite, progress,
            announce=None, frames: str | None = None) -> None:
    """Read, upscale, encode (:func:`sr_filter.imagefile.upscale_image_file`) and atomically write one image;
    an animated GIF/WebP/PNG/AVIF written as GIF, WebP, PNG or AVIF keeps every frame (``frames``: its range)."""
    if job.source is not None and is_pipe(job.source):
        # a named pipe is read once, as standard input is (with its bounds): one named *.png, *.gif
        # or *.webp had been opened a second time after the animation check had drained it, and hung
        with open(job.source, "rb") as stream:
            _process_from(upscaler, job, stream, str(job.source), scale=scale, size=size, fmt=fmt, quality=quality,
                          overwrite=overwrite, progress=progress, announce=announce, frames=frames)
        return
    _process_from(upscaler, job, sys.stdin.buffer if job.source is None else job.source, None, scale=scale, size=size,
                  fmt=fmt, quality=quality, overwrite=overwrite, progress=progress, announce=announce, frames=frames)


def _process_from(upscaler: Upscaler, job: Job, source: Any, name: str | None, *, scale, size, fmt, quality, overwrite,
                  progress, announce, frames=None) -> None:
    from .. import imageio
    from ..imagefile import upscale_image_file

    if job.target is None:
        out_format = imageio.format_for("", fmt) if fmt else None  # None: the input's format
    else:
        out_format = imageio.target_format(job.target, fmt)
    data = upscale_image_file(upscaler, source, out_format=out_format, scale=scale, size=size, quality=quality,
                              progress=progress, before_work=announce, name=name, frames=frames)
    if job.target is None:
        write_all(sys.stdout.buffer, data)
        sys.stdout.buffer.flush()
    else:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        imageio.write_atomic(data, job.target, overwrite=overwrite)


def _say_quality_unused(jobs: list[Job], fmt: str | None) -> None:
    """--quality with only lossless image outputs (PNG, TIFF, BMP, GIF, TGA) changes nothing: say so
    rather than let a user wonder why the files are as large as before."""
    from .. import imageio
    from ..encode import quality_unused

    if not jobs or any(is_video(job.source) for job in jobs):  # none left (all skipped): no format to name
        return
    formats = set()
    for job in jobs:
        try:  # None: the input's format decides (standard output, /dev/null), which may be a lossy one
            formats.add(imageio.format_for(job.target or "", fmt) if job.target or fmt else None)
        except SrFilterError:
            formats.add(None)
    unused = None if None in formats else quality_unused(formats, "--quality")
    if unused:
        click.echo(f"sr-filter: warning: {unused}", err=True)


def _size_suffix(width: int | None, height: int | None) -> str | None:
    """The output-name suffix a target size gives (None without one). Both: the picture fits
    inside the box, so the name says "fit" (a 68x51 picture had been named _101x51)."""
    if width and height:
        return f"_fit{width}x{height}"
    return f"_w{width}" if width else f"_h{height}" if height else None

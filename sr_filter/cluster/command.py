"""The CLI side of ``sr-filter IN -o OUT --cluster auto|ADDRESS``: progress and summary lines.

``cli/upscale.py`` hands the whole job here before it loads any model: the driver of a cluster
job needs no model, only the list of files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import click

from ..errors import shown_path
from ..progress import Bars, stderr_is_terminal
from . import Event, Interrupted, upscale_folder


class _Report:
    """Progress lines and bars on the driver: one line per finished task (a file or a video
    segment) with the rate and ETA, a line per retry, errors as they happen."""

    def __init__(self, quiet: bool, unit: str) -> None:
        self.quiet, self.unit = quiet, unit
        self.bars: Bars | None = None  # made once the plan says how many tasks there are
        self.finished, self.total = 0, None
        self.first: float | None = None  # when the work began, once a task has finished
        self.lost: set[int] = set()  # workers whose loss was said
        self.said: set[str] = set()  # the workers' notices said so far: each distinct line once, as on one machine

    def say(self, message: str) -> None:
        (self.bars.echo if self.bars is not None else lambda m: click.echo(m, err=True))(message)

    def notice(self, line: str) -> None:
        """A library notice (what the output cannot keep), unless -q asks for errors only, as on one machine."""
        if not self.quiet:
            self.say(f"sr-filter: {line}")

    def on_ready(self, model: str, notices: list[str]) -> None:
        """As on one machine: the workers' warnings (a built-in model used instead), then "using ..."."""
        if not self.quiet:
            for line in notices:
                self.say(f"sr-filter: {line}")
            self.say(f"sr-filter: using {model}")

    def on_event(self, event: Event) -> None:
        if event.kind == "retry":  # one line per lost worker (it had been one per file the worker held)
            if not self.quiet and event.worker not in self.lost:
                self.say(f"sr-filter: a worker was lost; {_name(event.task)} and any other file it held go to another")
            self.lost.add(event.worker)
            return
        for line in event.notices if not self.quiet else ():  # before the file's line, as on one machine
            text = f"sr-filter: {_shown_in(line, event.task)}"
            if text not in self.said:
                self.said.add(text)
                self.say(text)
        self.finished += 1
        done, total, now = self.finished, self.total or 0, time.monotonic()
        # the work began when the first task to finish started: the rate leaves out starting the
        # cluster and its workers (the first line's rate and ETA had counted them), and one task's
        # time says nothing of how many run at once, so the first line gives none
        self.first = self.first if self.first is not None else now - max(event.seconds or 0.0, 0.0)
        span = now - self.first
        rate = done / span if done > 1 and span > 0 else 0.0
        speed = f"; {rate:.2f} {self.unit}/s" if rate else ""
        eta = f", ETA {_duration((total - done) / rate)}" if rate and total > done else ""
        if event.kind == "failed":
            self.say(f"sr-filter: error: {_shown_in(event.message, event.task)}")
        elif event.kind == "skipped" and not self.quiet:  # it had read as upscaled ("[3/40] in/a.png -> out/a.png")
            self.say(f"sr-filter: [{done}/{total}] {_name(event.task)}: skipping existing output {_here(event.task.target)}")
        elif not self.quiet:
            self.say(f"sr-filter: [{done}/{total}] {_name(event.task)} -> {_here(event.task.target)} ({event.seconds:.1f} s{speed}{eta})")
        if self.bars is not None:
            self.bars.finish()

    def on_plan(self, todo: int, skipped: int) -> None:
        self.total = todo
        self.bars = Bars(max(todo, 2), enabled=not self.quiet and stderr_is_terminal())  # always the batch bar
        if skipped and not self.quiet:
            # said as what it is: kept as they are, whatever settings made them (a rerun with other settings
            # had read as if it had redone them)
            self.say(f"sr-filter: skipping {skipped} existing output(s), kept as an earlier run made them (remove them "
                     "or choose another -o to redo them)" if self.unit == "files" else f"sr-filter: keeping {skipped} finished segment(s)")

    def summary_line(self, summary, noun: str) -> str:
        rate = summary.done / summary.seconds if summary.seconds else 0.0
        line = f"sr-filter: {summary.done} {noun + ' ' if noun else ''}upscaled, {summary.skipped} skipped, {len(summary.failed)} failed"
        if summary.workers:
            line += f" in {_duration(summary.seconds)} ({rate:.2f} {self.unit}/s) on {summary.workers} worker(s)"
        if summary.retried:
            line += f"; {summary.retried} retried after {summary.workers_lost} worker(s) were lost"
        return line


def _name(task) -> str:
    first = getattr(task, "first", None)
    return _here(task.source) if first is None else f"{_here(task.source)} frames {first}-{task.end}"


def _here(path: str) -> str:
    """A task's path as the plain command shows it: relative to the current folder when inside it
    (the workers get absolute paths; the lines had shown them), escaped as file names are; URIs as given."""
    from .storage import as_given

    return as_given(path)


def _shown_in(message: str, task) -> str:
    """A worker's message with the task's paths as the progress lines show them (:func:`_here`):
    the workers get absolute paths, and the error lines had shown them where one machine shows
    the names as given."""
    for path in (task.target, task.source):
        if "://" not in path and os.path.isabs(path):
            message = message.replace(path, _here(path))
    return message


def run_on_cluster(ctx: click.Context, inputs: list[str], output: str | None, *, cluster: str, overwrite: bool, quiet: bool, **settings) -> int:
    """Run the job and print what happened; the exit status (0, 1 if any file failed, 130)."""
    if output is None or output == "-" or "-" in inputs:
        raise click.UsageError("--cluster needs input folders, files or patterns and -o OUTPUT_FOLDER (not standard input or output)")
    if overwrite:
        raise click.UsageError("--cluster never replaces existing outputs (a finished file is what makes a retry safe); remove them or choose another -o")
    if "://" not in output and os.path.exists(output) and not os.path.isdir(output):  # as on one machine (exit 2)
        raise click.UsageError(f"{shown_path(output)} exists and is not a folder")
    report = _Report(quiet, "files")
    try:
        summary = upscale_folder(inputs, output, address=cluster, on_event=report.on_event, on_plan=report.on_plan,
                                 on_ready=report.on_ready, **settings)
    except Interrupted as stop:
        _close(report.bars)
        s = stop.summary
        click.echo(f"sr-filter: interrupted after {s.done} of {report.total} file(s); no output was left half-written, run again to resume", err=True)
        return 130
    _close(report.bars)
    if summary.failed or not quiet:  # as on one machine: -q still names what failed, and the summary
        for source, _ in summary.failed:
            click.echo(f"sr-filter: failed: {_here(source)}", err=True)
        click.echo(report.summary_line(summary, ""), err=True)
    return 1 if summary.failed else 0


def run_video_on_cluster(ctx: click.Context, inputs: list[str], output: str | None, *, cluster: str, overwrite: bool, quiet: bool,
                         fmt: str | None, skip_existing: bool = False, reword: Callable[[str], str] = str,
                         **settings) -> int:
    """One video, its keyframe-aligned segments spread over the cluster's workers; the exit
    status (0, 1 if a segment failed, 130). ``reword`` turns a notice's API words into the
    command's flags (``codec="av1"``: ``--codec av1``)."""
    from ..video import VIDEO_SUFFIXES
    from .video import upscale_video

    if len(inputs) != 1 or inputs[0] == "-" or Path(inputs[0]).suffix.lower() not in VIDEO_SUFFIXES:
        raise click.UsageError("--cluster takes image folders, files or patterns, or one video file (" + ", ".join(sorted(s[1:] for s in VIDEO_SUFFIXES)) + ")")
    if output is None or output == "-" or fmt is not None or output.endswith(("/", os.sep)) or Path(output).is_dir():
        raise click.UsageError("--cluster with a video needs -o OUTPUT_VIDEO (a file name; its suffix picks the container)")
    published = os.path.lexists(output)  # a link to nothing too: it had been upscaled through the link
    if skip_existing and not overwrite and published:  # a retry after the output was published
        if not quiet:
            click.echo(f"sr-filter: skipping existing output {shown_path(output)}", err=True)
        return 0
    if overwrite or published:  # said here: the library's error would get the --overwrite hint
        raise click.UsageError(f"--cluster never replaces an existing output{f' ({output} exists)' if not overwrite else ''}; remove it or choose another -o")
    report = _Report(quiet, "segments")
    try:
        summary = upscale_video(inputs[0], output, address=cluster, on_event=report.on_event, on_plan=report.on_plan,
                                on_ready=report.on_ready, notice=lambda text: report.notice(reword(text)), **settings)
    except Interrupted as stop:
        _close(report.bars)
        click.echo(f"sr-filter: interrupted after {stop.summary.done} of {report.total} segment(s); finished segments are kept, run again to resume", err=True)
        return 130
    _close(report.bars)
    if summary.failed:
        click.echo(f"sr-filter: {len(summary.failed)} segment(s) failed; {output} was not written, finished segments are kept for a rerun", err=True)
        return 1
    if not quiet:
        click.echo(report.summary_line(summary, "segment(s)") + f"; {summary.frames} frames joined into {_here(summary.path)}", err=True)
    return 0


def _close(bars: Bars | None) -> None:
    if bars is not None:
        bars.close()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"

"""The CLI side of ``sr-filter IN -o OUT --cluster auto|ADDRESS``: progress and summary lines.

``cli/upscale.py`` hands the whole job here before it loads any model: the driver of a cluster
job needs no model, only the list of files.
"""

from __future__ import annotations

import time

import click

from ..cli.progress import Bars, stderr_is_terminal
from . import Event, Interrupted, upscale_folder


def run_on_cluster(ctx: click.Context, inputs: list[str], output: str | None, *, cluster: str, overwrite: bool, quiet: bool, **settings) -> int:
    """Run the job and print what happened; the exit status (0, 1 if any file failed, 130)."""
    if output is None or output == "-" or "-" in inputs:
        raise click.UsageError("--cluster needs input folders, files or patterns and -o OUTPUT_FOLDER (not standard input or output)")
    if overwrite:
        raise click.UsageError("--cluster never replaces existing outputs (a finished file is what makes a retry safe); remove them or choose another -o")
    bars = {"bars": None}  # made once the plan says how many files there are
    tally = {"finished": 0, "total": None}
    started = time.monotonic()

    def say(message: str) -> None:
        (bars["bars"].echo if bars["bars"] is not None else lambda m: click.echo(m, err=True))(message)

    def on_event(event: Event) -> None:
        if event.kind == "retry":
            if not quiet:
                say(f"sr-filter: a worker was lost; {event.task.source} goes to another")
            return
        tally["finished"] += 1
        done, total, now = tally["finished"], tally["total"] or 0, time.monotonic()
        tally.setdefault("first", now)  # the rate leaves out starting the cluster and its workers
        span = now - tally["first"]
        rate = (done - 1) / span if done > 1 and span > 0 else done / max(now - started, 1e-9)
        eta = f", ETA {_duration((total - done) / rate)}" if rate and total > done else ""
        if event.kind == "failed":
            say(f"sr-filter: error: {event.message}")
        elif not quiet:
            say(f"sr-filter: [{done}/{total}] {event.task.source} -> {event.task.target} ({event.seconds:.1f} s; {rate:.2f} files/s{eta})")
        if bars["bars"] is not None:
            bars["bars"].finish()

    def on_plan(todo: int, skipped: int) -> None:
        tally["total"] = todo
        bars["bars"] = Bars(max(todo, 2), enabled=not quiet and stderr_is_terminal())  # always the batch bar
        if skipped and not quiet:
            say(f"sr-filter: skipping {skipped} existing output(s)")

    try:
        summary = upscale_folder(inputs, output, address=cluster, on_event=on_event, on_plan=on_plan, **settings)
    except Interrupted as stop:
        _close(bars["bars"])
        s = stop.summary
        click.echo(f"sr-filter: interrupted after {s.done} of {tally['total']} file(s); no output was left half-written, run again to resume", err=True)
        return 130
    _close(bars["bars"])
    if not quiet:
        rate = summary.done / summary.seconds if summary.seconds else 0.0
        line = f"sr-filter: {summary.done} upscaled, {summary.skipped} skipped, {len(summary.failed)} failed"
        if summary.workers:
            line += f" in {_duration(summary.seconds)} ({rate:.2f} files/s) on {summary.workers} worker(s)"
        if summary.retried:
            line += f"; {summary.retried} retried after {summary.workers_lost} worker(s) were lost"
        click.echo(line, err=True)
        for source, _ in summary.failed:
            click.echo(f"sr-filter: failed: {source}", err=True)
    return 1 if summary.failed else 0


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

"""``sr-filter train CONFIG``: train or resume one experiment (needs the ``train`` extra for plots)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from .options import quiet, verbosity


def _a_number(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """NaN passes click's range check (no comparison holds for it) and had meant no limit at all."""
    if value is not None and value != value:
        raise click.BadParameter(f"{value} is not a number of minutes; give one greater than 0")
    return value


@click.command("train")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fresh", is_flag=True, help="Start over even if the run folder has a checkpoint.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None, callback=_a_number,
              help="Stop after this long, with a checkpoint to resume from.")
@verbosity
def train_cmd(config: Path, fresh: bool, max_minutes: float | None) -> None:
    """Train the experiment described by CONFIG (TOML), resuming from its latest checkpoint.

    \b
    Multi-GPU: torchrun --nproc_per_node 4 -m sr_filter train CONFIG
    """
    from ..training import load_config, train
    from ..training.trainer import TrainingStopped

    try:
        # says where the model is; -q leaves out the iteration lines (log.jsonl holds them)
        train(load_config(config), resume=not fresh, max_seconds=max_minutes * 60 if max_minutes else None, progress=not quiet())
        code = 0
    except TrainingStopped as exc:  # the trainer said where it stopped and that the checkpoint is saved
        code = exc.exit_code
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _leave_rank(code)
    if code:
        sys.exit(code)


def _leave_rank(code: int) -> None:
    """One process of a multi-process run (torchrun), its work done and saved, exits without the
    interpreter's teardown: with the machine busy, gloo's threads destroyed there aborted a rank
    that had finished ('terminate called without an active exception', SIGABRT after its last
    Python line), and torchrun then reported the whole run as failed."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)

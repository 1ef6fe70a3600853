"""``sr-filter train CONFIG``: train or resume one experiment (needs the ``train`` extra for plots)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import verbosity


@click.command("train")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fresh", is_flag=True, help="Start over even if the run folder has a checkpoint.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
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
        train(load_config(config), resume=not fresh, max_seconds=max_minutes * 60 if max_minutes else None)  # says where the model is
    except TrainingStopped as exc:  # the trainer said where it stopped and that the checkpoint is saved
        sys.exit(exc.exit_code)

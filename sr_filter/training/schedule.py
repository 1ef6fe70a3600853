"""What changes with the iteration alone: the learning rate and the EMA decay. Pure functions of
the config and the iteration, so a resumed run needs nothing but the iteration to continue them."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig


def learning_rate(cfg: TrainConfig, iteration: int) -> float:
    """The learning rate used for step ``iteration`` (1-based)."""
    o = cfg.optim
    if o.warmup and iteration <= o.warmup:
        return o.lr * iteration / o.warmup
    if o.schedule == "cosine":
        t = min(1.0, (iteration - o.warmup) / max(1, o.iterations - o.warmup))
        return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + math.cos(math.pi * t))
    if o.schedule == "step":
        return o.lr * o.gamma ** sum(iteration > m for m in o.milestones)
    return o.lr


def ema_decay(ema: float, iteration: int) -> float:
    """The EMA decay after ``iteration`` steps: ``ema``, warmed up as in TensorFlow's EMA so that
    early averages do not drag the random initial weights along."""
    return min(ema, (1 + iteration) / (10 + iteration))


def update_ema(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``average`` <- ``decay`` * ``average`` + (1 - ``decay``) * ``model`` (buffers copied)."""
    with torch.no_grad():
        for e, p in zip(average.parameters(), model.parameters()):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        for e, b in zip(average.buffers(), model.buffers()):
            e.copy_(b)

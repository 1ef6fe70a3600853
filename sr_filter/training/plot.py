"""PNG plot of a training log: loss terms (log scale) and validation PSNR against the iteration.

Needs matplotlib (the ``train`` extra); the trainer skips the plot when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

#: log keys that are not loss terms (``averaged_over``: how many iterations a shorter window
#: holds, after a resume or before a stop; it had been drawn as a loss of 2 to 8)
SKIP = {"iter", "time", "s_per_it", "lr", "val", "val_seconds", "total", "averaged_over"}


def loss_terms(history: list[dict]) -> list[str]:
    """The loss terms logged in ``history``, as the plot draws them."""
    return sorted({k for h in history if "val" not in h for k in h if k not in SKIP})


def plot_history(history: list[dict], path: Path, title: str = "") -> Path:
    """Write the curves of ``history`` (entries of ``log.jsonl``) to ``path``."""
    losses = [h for h in history if "val" not in h]
    vals = [h for h in history if "val" in h]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    drawn = False  # a loss that is 0 throughout has no point on the log scale (legend() had warned on stderr)
    for k in loss_terms(history):
        pts = [(h["iter"], h[k]) for h in losses if k in h and h[k] > 0]
        if pts:
            axes[0].plot(*zip(*pts), label=k)
            drawn = True
    axes[0].set_yscale("log")
    axes[0].set_xlabel("iteration")
    axes[0].set_title("training losses")
    if drawn:
        axes[0].legend()
    sets = sorted({s for h in vals for s in h["val"]})
    for s in sets:
        pts = [(h["iter"], h["val"][s]) for h in vals if s in h["val"]]
        axes[1].plot(*zip(*pts), marker="o", label=s)
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("PSNR-Y (dB)")
    axes[1].set_title("validation")
    if sets:
        axes[1].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return Path(path)

"""From a training run to a weights-manifest entry (how a trained model becomes a named model)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..archs import get_arch
from ..errors import WeightsFormatError, first_line


def manifest_entry(model_path: str | Path, name: str, version: str = "1", *, license: str,
                   description: str = "", source: str = "", packaged: str | None = None) -> dict:
    """The ``weights_manifest.json`` entry for a ``model.pth`` written by the trainer.

    ``license``: the model's own, which follows from its training data (no default: it had been
    BSD-3-Clause for every model, one trained on non-commercial pictures too). ``packaged``: the
    path inside the package when the file ships with sr_filter (``builtin/...``).
    """
    import io

    path = Path(model_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsFormatError(f"cannot read {path} ({exc.strerror or exc})") from None
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's reasons for a damaged or foreign file vary: one line
        raise WeightsFormatError(f"{path} is not a readable model file ({first_line(exc)})") from None
    if isinstance(blob, dict) and "iteration" in blob and "model" in blob:
        raise WeightsFormatError(f"{path} is a training checkpoint; register the run's model.pth, which the "
                                 "trainer writes with the checkpoint (its EMA weights where the run has them)")
    info = blob.get("sr_filter") if isinstance(blob, dict) else None
    if not info or "params" not in blob:
        raise WeightsFormatError(f"{path} was not written by the sr_filter trainer (no 'sr_filter' settings)")
    arch = get_arch(info["arch"])
    settings = dict(info["settings"])
    entry = {
        "name": name,
        "version": version,
        "arch": arch.name,
        "settings": settings,
        "scale": arch.scale(settings),
        "file": path.name if packaged is None else Path(packaged).name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "license": license,
        "state_key": "params",
        "num_params": int(sum(v.numel() for k, v in blob["params"].items() if k.endswith(("weight", "bias")))),
        "description": description,
        "source": source,
    }
    if packaged:
        entry["packaged"] = packaged
    return entry

"""From a training run to a weights-manifest entry (how a trained model becomes a named model)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..archs import get_arch
from ..errors import WeightsFormatError


def manifest_entry(model_path: str | Path, name: str, version: str = "1", license: str = "BSD-3-Clause",
                   description: str = "", source: str = "", packaged: str | None = None) -> dict:
    """The ``weights_manifest.json`` entry for a ``model.pth`` written by the trainer.

    ``packaged``: the path inside the package when the file ships with sr_filter (``builtin/...``).
    """
    path = Path(model_path)
    data = path.read_bytes()
    blob = torch.load(path, map_location="cpu", weights_only=True)
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

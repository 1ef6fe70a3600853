"""Inference backends: what runs one window of pixels through a loaded model.

The tiler hands a backend one batch of windows at a time and does not know which backend it is;
tiling, progress, cancellation, the out-of-memory split and the NaN rule stay the same for all.
``make_backend`` picks one: ``torch`` (any device) or ``openvino`` (CPU); ``auto`` takes OpenVINO on
the CPU when it is installed and the model converts, else torch.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..device import cpu_threads
from ..errors import BackendError, first_line

if TYPE_CHECKING:
    import torch

    from ..models import LoadedModel

log = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "openvino")
_PRECISION_NAMES = {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16"}


def precision_name(dtype: torch.dtype) -> str:
    """``fp32``, ``fp16`` or ``bf16`` for a torch dtype (other dtypes by their own name)."""
    return _PRECISION_NAMES.get(str(dtype), str(dtype))


class Backend(Protocol):
    """Runs windows through a model: one batch in, one batch out."""

    name: str  #: "torch" or "openvino"
    precision: str  #: "fp32" | "fp16" | "bf16": what actually runs

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, C_in, h, w) float32 array in [0, 1], h and w multiples of the model's size
        multiple -> a new (N, C_out, h*scale, w*scale) float32 array clamped to [0, 1]."""
        ...


def make_backend(name: str, model: LoadedModel, device: torch.device, dtype: torch.dtype) -> Backend:
    """The backend ``name`` (``auto``, ``torch`` or ``openvino``) for ``model`` on ``device``."""
    if not isinstance(name, str) or name.strip().lower() not in BACKENDS:
        raise BackendError(f"unknown inference backend {name!r}; use one of {', '.join(BACKENDS)}")
    name = name.strip().lower()
    if name == "openvino":
        return _openvino(model, device, dtype)
    if name == "auto":
        if device.type != "cpu":
            log.debug("backend: torch (OpenVINO runs on the CPU only, this runs on %s)", device)
        else:
            try:
                return _openvino(model, device, dtype)
            except Exception as exc:  # noqa: BLE001 - the optional backend must never stop "auto"
                if getattr(exc, "first_time", False):  # a model that does not convert: said, remembered
                    later = ("later runs skip the conversion" if getattr(exc, "remembered", True) else
                             "the next run tries the conversion once more")  # (one failure may be the moment)
                    log.warning("%s; running it with torch (%s)", first_line(exc), later)
                else:
                    log.info("backend: torch, because %s", first_line(exc))
    from .pytorch import TorchBackend  # not "torch.py": that submodule name would shadow the torch module here

    return TorchBackend(model, device, dtype)


def _openvino(model: LoadedModel, device: torch.device, dtype: torch.dtype) -> Backend:
    if device.type != "cpu":
        raise BackendError(f"the OpenVINO backend runs on the CPU, not on {device}; choose the CPU or the torch backend")
    precision = precision_name(dtype)
    if precision not in ("fp32", "bf16"):
        raise BackendError(f"the OpenVINO backend runs fp32 or bf16, not {precision}")
    try:
        from .openvino import OpenVinoBackend
    except ImportError as exc:
        raise BackendError(f"OpenVINO is not available ({exc}); install it with 'pip install openvino'") from None
    return OpenVinoBackend.from_model(model, precision=precision, threads=cpu_threads())


__all__ = ["BACKENDS", "Backend", "make_backend", "precision_name"]

"""The PyTorch backend: the network copied onto a device in a dtype, in channels_last layout.

Reduced precision (fp16, bf16) that gives NaN or Inf on a window re-runs that window in fp32 (a
second copy of the network, made on first need). Out-of-memory errors propagate: the tiler's split
rule handles them.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from ..device import is_oom
from ..errors import ModelRunError, first_line
from ..facts import probe_edge
from . import precision_name

if TYPE_CHECKING:
    from ..models import LoadedModel

log = logging.getLogger(__name__)


def _one_thread_in_child() -> None:
    """After fork: torch's CPU thread pool (OpenMP) does not survive it, so a forked child that
    had run the network in its parent hung for ever (multiprocessing's default on Linux, gunicorn
    --preload); one thread there runs (the same pixels, within a level where sums split otherwise)."""
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_thread_in_child)


@contextlib.contextmanager
def _full_fp32(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """fp32 that is fp32 on CUDA: cuDNN runs fp32 convolutions in TF32 (10-bit mantissa) by default
    on Ampere and newer GPUs, several levels off the CPU's pixels, while ``--precision fp32``
    promises exact. Turned off (convolutions and matmuls) for our calls only, and set back after."""
    if device.type != "cuda" or dtype != torch.float32:
        yield
        return
    flags = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    before = [flag.fp32_precision for flag in flags]
    for flag in flags:
        flag.fp32_precision = "ieee"
    try:
        yield
    finally:
        for flag, value in zip(flags, before):
            flag.fp32_precision = value


class TorchBackend:
    """Runs windows with eager PyTorch on ``device`` in ``dtype``."""

    name = "torch"

    def __init__(self, model: LoadedModel, device: torch.device, dtype: torch.dtype) -> None:
        self.model, self.device, self.dtype = model, device, dtype
        self.precision = precision_name(dtype)
        self.net = self._place(dtype)
        self._net_fp32: torch.nn.Module | None = self.net if dtype == torch.float32 else None
        self.fallbacks = 0  # windows re-run in fp32 because reduced precision gave NaN/Inf
        if dtype != torch.float32:
            self._try_reduced()

    @torch.inference_mode()
    def _try_reduced(self) -> None:
        """Run a small picture in the reduced precision before any work, so that a network that
        cannot (SwinIR's fp32 attention mask at any size but its own) is fp32 from the start and
        the "using ... in fp32" line says what runs; it had said bf16, then warned at the first tile."""
        facts = self.model.facts
        edge = probe_edge(facts.minimum, facts.multiple)
        probe = torch.zeros(1, facts.in_channels, edge, 2 * edge, device=self.device, dtype=self.dtype)  # not square: not its own size
        try:
            self.net(probe.contiguous(memory_format=torch.channels_last))
        except RuntimeError as exc:
            if not is_oom(exc) and self._runs_in_fp32(probe):  # else not the precision's doing (a size check): the run says it
                self._to_fp32(exc)
        except Exception:  # noqa: BLE001 - a third-party network's own checks: the real run says them
            pass

    def _runs_in_fp32(self, probe: torch.Tensor) -> bool:
        """Whether the probe that failed in reduced precision runs in fp32."""
        made = self._net_fp32 is None
        self._net_fp32 = self._net_fp32 or self._place(torch.float32)
        try:
            self._net_fp32(probe.float().contiguous(memory_format=torch.channels_last))
        except Exception:  # noqa: BLE001 - any failure: the same in both precisions
            if made:  # not kept for the whole run (made again if a window ever needs it)
                self._net_fp32 = None
            return False
        return True

    def _to_fp32(self, exc: BaseException) -> None:
        """A network that mixes dtypes inside cannot run in reduced precision at all: fp32 from here on, said once."""
        log.warning("%s does not run in %s with torch (%s); running it in fp32", self.model.label, self.precision, first_line(exc))
        self.net = self._net_fp32 = self._net_fp32 or self._place(torch.float32)
        self.dtype, self.precision = torch.float32, "fp32"

    def _place(self, dtype: torch.dtype) -> torch.nn.Module:
        # channels_last: 1.5-1.9x faster convolutions on CPU (oneDNN) as on CUDA (tensor cores);
        # measured in docs/performance.md. A copy keeps the shared CPU fp32 network untouched.
        net = copy.deepcopy(self.model.network)
        return net.to(self.device, dtype).to(memory_format=torch.channels_last).eval()

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, h, w) float32 in [0, 1] -> a new (N, C, h*s, w*s) float32 array clamped to [0, 1]."""
        batch = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        inp = batch.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
        try:
            with _full_fp32(self.device, self.dtype):
                out = self.net(inp)
        except RuntimeError as exc:
            if is_oom(exc):
                raise  # the tiler splits the window
            if self.dtype == torch.float32:
                raise _failed(self.model.name, batch.shape, exc) from None
            self._to_fp32(exc)  # the probe at start did not show it (a size-dependent branch)
            del inp
            return self.run(batch.numpy())
        except Exception as exc:  # noqa: BLE001 - a third-party network's own checks (einops, asserts)
            raise _failed(self.model.name, batch.shape, exc) from None
        if self.dtype != torch.float32 and not bool(torch.isfinite(out).all()):
            self.fallbacks += 1
            log.info("reduced precision gave NaN/Inf on a tile; re-running it in fp32")
            if self._net_fp32 is None:
                self._net_fp32 = self._place(torch.float32)
            del out
            with _full_fp32(self.device, torch.float32):
                out = self._net_fp32(batch.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last))
        return out.float().clamp_(0, 1).cpu().contiguous().numpy()


def _failed(name: str, shape: tuple, exc: BaseException) -> ModelRunError:
    """One line for a network that fails on a window (a model file whose settings cannot run, or
    a size it needs that is not known), instead of the network's traceback."""
    return ModelRunError(f"{name} fails on a {shape[-1]}x{shape[-2]} window ({first_line(exc)[:200]}); the file may need "
                         "other input sizes (try --tile 0 or another --tile) or be unusable")

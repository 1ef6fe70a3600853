"""OpenVINO CPU backend: the loaded torch network converted once, compiled for the CPU, run per window.

The network is converted from the loaded torch module with a dynamic height and width and
compiled once per backend; every window (full tiles and the smaller border windows alike) runs
through that one compiled model and one reused infer request (benchmarks/bench_backends.py
``--shapes`` measures this against a compiled model per window shape; docs/performance.md).
The converted model is cached on disk (:mod:`.ov_cache`), so conversion is paid once per machine,
and a later run finds it from the weights alone (:meth:`OpenVinoBackend.from_cache`) and runs it
without importing torch: torch is needed only to convert.

``INFERENCE_PRECISION_HINT`` is always set: on CPUs with AMX, OpenVINO's default is bf16, which is
not what ``fp32`` promises. A freshly converted model is checked against the torch network on a
small probe before it is used or cached, so a conversion that runs but computes something else
raises :class:`~sr_filter.errors.BackendError` instead of giving a wrong picture.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..device import cpu_threads
from ..errors import BackendError, ModelRunError, first_line
from ..facts import trace_edge
from ..interrupts import interrupts_held
from . import ov_cache

log = logging.getLogger(__name__)

#: our precision names -> OpenVINO's INFERENCE_PRECISION_HINT values
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
#: the converted model must match torch this closely on the probe (fp32 on both sides)
PROBE_TOLERANCE = 0.5 / 255
_PROBE = (40, 56)  # probe input size (H != W so a swapped layout cannot pass)
_EXAMPLE = 64  # example input edge for tracing, where the network's size grid and mask sizes allow (facts.trace_edge)
_core_instance: Any = None


#: architectures OpenVINO's converter must not be given: it crashes the process (a segmentation
#: fault in moc_emit_ir for DAT with openvino 2025), so "auto" runs them with torch
NOT_CONVERTED = {"DAT": "OpenVINO's converter crashes on DAT networks; the torch backend runs them"}

#: every backend alive in this process, so that a fork can wait for the windows they are running
_LIVE: "weakref.WeakSet[OpenVinoBackend]" = weakref.WeakSet()
#: the window locks the thread that is forking holds (per thread: two threads may fork at once)
_HELD_FOR_FORK = threading.local()


def _hold_for_fork() -> None:
    """Before a fork: wait until no window runs. A child forked while another thread was inside
    OpenVINO's CPU plugin inherits that plugin's locks held by a thread it does not have, and
    hangs on its first window (a process pool forked beside a running Upscaler did). The locks
    are taken in one order, so two threads forking at once wait for each other, not deadlock."""
    held = []
    for backend in sorted(_LIVE, key=id):
        backend._lock.acquire()
        held.append(backend._lock)
    _HELD_FOR_FORK.locks = held


def _release_after_fork() -> None:
    """After a fork, in the parent and the child alike: let windows run again."""
    held = getattr(_HELD_FOR_FORK, "locks", [])
    _HELD_FOR_FORK.locks = []
    for lock in reversed(held):
        lock.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_hold_for_fork, after_in_parent=_release_after_fork, after_in_child=_release_after_fork)


def without_telemetry() -> None:
    """Make OpenVINO's importers of its telemetry package fall back to OpenVINO's own stub; called
    before anything imports openvino (the command line loads it early: every run had forked a
    process that looked up the analytics service, and printed a traceback when Ctrl-C reached it)."""
    if "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None


def import_openvino() -> Any:
    """The ``openvino`` module, or a BackendError saying how to install it. OpenVINO's usage
    telemetry (a network call to an analytics service on the first conversion) is left out for
    this process, unless something imported it before: sr-filter works offline and says so."""
    without_telemetry()
    try:
        import openvino
    except (ImportError, OSError, RuntimeError) as exc:  # a broken install whose libraries do not load or start
        raise BackendError(
            f"the OpenVINO backend needs the openvino package ({first_line(exc)}); install it with "
            "`pip install openvino` or choose the torch backend"
        ) from None
    return openvino


def native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively here (AMX or AVX512-BF16)."""
    try:
        return "BF16" in _core(import_openvino()).get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except (BackendError, RuntimeError):
        return False


class OpenVinoBackend:
    """Runs windows through an OpenVINO model compiled for the CPU (see the module docstring)."""

    name = "openvino"

    def __init__(self, core: Any, ov_model: Any, compiled: Any, threads: int) -> None:
        self._core, self._ov_model, self._threads = core, ov_model, threads
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        #: what actually runs: a CPU without bf16 support runs f32 whatever was asked
        self.precision = "bf16" if str(hint) == str(_ov_type("bf16")) else "fp32"
        self.fallbacks = 0  # windows re-run in fp32 because bf16 gave NaN/Inf
        self._request_fp32: Any = self._request if self.precision == "fp32" else None
        #: one window at a time: a request (and the output buffer read in place) serves one call,
        #: so threads sharing an Upscaler take turns instead of reading each other's pictures
        self._lock = threading.Lock()
        _LIVE.add(self)

    @classmethod
    def from_model(
        cls, model: Any, *, precision: str = "fp32", threads: int | None = None, cache_dir: str | Path | None = None
    ) -> "OpenVinoBackend":
        """Convert (or load from the cache) and compile a LoadedModel; BackendError when impossible.

        ``threads`` defaults to :func:`~sr_filter.device.cpu_threads`; ``cache_dir`` to
        :func:`ov_cache.default_folder`.
        """
        if precision not in PRECISIONS:
            raise BackendError(f"the OpenVINO backend runs fp32 or bf16 on the CPU, not {precision}; choose one of those")
        ov = import_openvino()
        core = _core(ov)
        threads = int(threads or cpu_threads())
        # a Ctrl-C while converting is acted on once the conversion (and the cache write) is done,
        # so it can never be taken for a failed conversion by "auto", which falls back to torch
        with interrupts_held():
            ov_model = _converted(model, ov, core, Path(cache_dir) if cache_dir else ov_cache.default_folder())
            compiled = _compile(core, ov_model, precision, threads)
        return cls(core, ov_model, compiled, threads)

    @classmethod
    def from_cache(
        cls, ref: Any, *, precision: str = "fp32", threads: int | None = None, cache_dir: str | Path | None = None
    ) -> tuple["OpenVinoBackend", dict] | None:
        """The backend for weights converted by an earlier run, found and compiled without torch,
        with what the cache record says about the model (:func:`ov_cache.about`); None when there
        is no good entry (never converted, stale, damaged, unreadable), so the caller converts.

        ``ref`` is a resolved model (:class:`~sr_filter.models.ModelRef`: name, path, entry)."""
        if precision not in PRECISIONS:
            return None
        ov = import_openvino()
        folder = Path(cache_dir) if cache_dir else ov_cache.default_folder()
        try:
            query = {"format": ov_cache.FORMAT, "weights_sha256": ov_cache.weights_sha256(ref.entry, ref.path),
                     "openvino": ov.get_version()}
        except OSError:
            return None
        if ref.entry is not None:
            query["settings_sha256"] = ov_cache.settings_sha256(ref.entry.arch, dict(ref.entry.settings))
        found = ov_cache.find(folder, query)
        if found is None:
            return None
        key, record = found
        blobs = ov_cache.load(folder, key, {k: record.get(k) for k in ov_cache.META_KEYS})
        if blobs is None:
            return None
        core = _core(ov)
        threads = int(threads or cpu_threads())
        with interrupts_held():
            try:
                ov_model = core.read_model(*blobs)
            except RuntimeError as exc:
                log.info("cached OpenVINO model %s does not load (%s); converting again", key, first_line(exc))
                return None
            compiled = _compile(core, ov_model, precision, threads)
        log.debug("running %s from the converted model %s (no torch)", ref.name, folder / key)
        return cls(core, ov_model, compiled, threads), record["model"]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, h, w) float32 in [0, 1] -> (N, C_out, h*s, w*s) float32 clamped to [0, 1], a new array.

        The request's output buffer is read in place and clamped into the one new array (a copy of
        the output and then a clamped copy, 16 MB each for a 256-pixel window at x4, fragmented the
        heap by about 100 MB at peak)."""
        array = np.ascontiguousarray(batch, dtype=np.float32)
        result: np.ndarray | None = None
        with self._lock:
            # one picture per inference: a traced graph can hold the example's batch of 1 as a constant
            # (SwinIR's window_reverse, DRUNet), so batches of frames came out a few levels off or
            # failed; on the CPU a batch had bought no speed (docs/video.md, frames per pass)
            for i in range(array.shape[0]):
                out = self._one(array[i : i + 1])
                if result is None:
                    result = np.empty((array.shape[0], *out.shape[1:]), np.float32)
                np.clip(out, 0, 1, out=result[i : i + 1])
        return result if result is not None else np.empty((0, *array.shape[1:]), np.float32)

    def _one(self, array: np.ndarray) -> np.ndarray:
        """One picture's output, in the request's own buffer (valid until the next inference)."""
        out = _infer(self._request, array)
        if self.precision != "fp32" and not bool(np.isfinite(out).all()):
            self.fallbacks += 1
            log.info("bf16 gave NaN/Inf on a window; re-running it in fp32")
            if self._request_fp32 is None:
                self._request_fp32 = _compile(self._core, self._ov_model, "fp32", self._threads).create_infer_request()
            out = _infer(self._request_fp32, array)
        return out


def _infer(request: Any, array: Any) -> np.ndarray:
    """One inference into the request's own output buffer (valid until the request runs again).
    Running out of memory is reported in the words the tiler's split rule recognises
    (``device.is_oom``); any other failure is a one-line ModelRunError."""
    try:
        return request.infer({0: array}, share_outputs=True)[0]
    except MemoryError:
        raise RuntimeError(f"OpenVINO ran out of memory on a {array.shape[-2]}x{array.shape[-1]} window") from None
    except RuntimeError as exc:
        text = str(exc).lower()
        # "[CPU] Reorder node with name '...' can't alloc" is OpenVINO's own word for it on a window
        if any(word in text for word in ("bad_alloc", "allocate", "can't alloc", "out of memory")):
            raise RuntimeError(f"OpenVINO ran out of memory on a {array.shape[-2]}x{array.shape[-1]} window") from None
        # at run time, not a choice of options: memory short of what OpenVINO wanted, most often
        raise ModelRunError(f"OpenVINO failed on a {tuple(array.shape)} window: {_detail(exc)} (when memory is short: "
                            "close other programs or use smaller tiles; the torch backend runs without OpenVINO)") from None


def _core(ov: Any) -> Any:
    global _core_instance
    if _core_instance is None:
        _core_instance = ov.Core()
    return _core_instance


def _ov_type(precision: str) -> Any:
    import openvino

    return {"f32": openvino.Type.f32, "bf16": openvino.Type.bf16}[precision]


def _compile(core: Any, ov_model: Any, precision: str, threads: int) -> Any:
    config = {
        "INFERENCE_PRECISION_HINT": PRECISIONS[precision],
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
    }
    try:
        return core.compile_model(ov_model, "CPU", config)
    except RuntimeError as exc:
        raise BackendError(f"OpenVINO cannot compile the model for the CPU: {_detail(exc)}") from None


def _converted(model: Any, ov: Any, core: Any, folder: Path) -> Any:
    """The OpenVINO model for a LoadedModel: from the disk cache when a good entry exists, else converted."""
    try:
        meta = ov_cache.describe(model, ov.get_version())
    except OSError as exc:  # the weights file is gone or unreadable: no key, so no cache
        log.info("not caching the converted model: cannot hash %s (%s)", model.path, exc.strerror or first_line(exc))
        ov_model = convert(model, ov)
        _check(model, ov_model, core)
        return ov_model
    key = ov_cache.entry_key(model.name, meta)
    cached = ov_cache.load(folder, key, meta, ov_cache.about(model))
    if cached is not None:
        try:
            return core.read_model(*cached)
        except RuntimeError as exc:
            log.info("cached OpenVINO model %s does not load (%s); converting again", key, first_line(exc))
    failed = ov_cache.failure(folder, key)
    if failed:  # converting again would fail again, seconds each run
        again = "" if model.arch.name in NOT_CONVERTED else f"; removing {folder / key}.failed tries again"
        raise BackendError(f"{failed} (found by an earlier run{again})")
    try:
        ov_model = convert(model, ov)
        _check(model, ov_model, core)
    except BackendError as exc:
        ov_cache.remember_failure(folder, key, str(exc), certain=getattr(exc, "certain", False))
        exc.first_time = True  # "auto" says it, then falls back to torch
        exc.remembered = ov_cache.failure(folder, key) is not None  # or the next run tries once more
        raise
    if ov_cache.save(folder, key, meta, ov_model, ov, ov_cache.about(model)):
        log.debug("cached the converted model as %s", folder / key)
    return ov_model


def in_channels(model: Any) -> int:
    """The number of input channels of a LoadedModel's network."""
    return int(model.params.get("num_in_ch", 3))


def convert(model: Any, ov: Any) -> Any:
    """Convert a LoadedModel's torch network (NCHW, dynamic height and width); BackendError on failure."""
    import torch

    reason = NOT_CONVERTED.get(model.arch.name)
    if reason:
        raise _certain(BackendError(f"{model.label} is not converted to OpenVINO: {reason}"))
    c_in = in_channels(model)
    edge = trace_edge(model.network, model.arch.multiple(model.params), model.facts.minimum, _EXAMPLE)
    example = torch.rand(1, c_in, edge, edge)
    log.info("converting %s to OpenVINO (once, where the cache folder can keep the result)", model.name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-side shape arithmetic
            # tracing here, without the trace check, is 2-4x cheaper than handing OpenVINO the module
            with torch.no_grad():
                traced = torch.jit.trace(model.network, example, check_trace=False)
            return ov.convert_model(traced, example_input=example, input=[ov.PartialShape([-1, c_in, -1, -1])])
    except Exception as exc:  # noqa: BLE001 - any failure of the third-party converter means "cannot convert"
        error = BackendError(f"{model.label} cannot be converted to OpenVINO: {_detail(exc)}")
        # operations the converter lacks say what the model is; anything else may be the moment
        raise (_certain(error) if _unsupported(exc) else error) from None


def _check(model: Any, ov_model: Any, core: Any) -> None:
    """Compare the converted model with the torch network on a seeded probe, both fp32."""
    import torch

    m = int(model.arch.multiple(model.params))
    h, w = (-(-edge // m) * m for edge in _PROBE)
    probe = torch.rand(1, in_channels(model), h, w, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = model.network(probe).float().clamp(0, 1)
    try:
        got = torch.from_numpy(core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(probe.numpy())[0])
    except RuntimeError as exc:
        raise BackendError(f"{model.name} converted to OpenVINO but does not run: {_detail(exc)}") from None
    if got.shape != want.shape:
        raise _certain(BackendError(f"{model.name} converted to OpenVINO gives shape {tuple(got.shape)}, not {tuple(want.shape)}"))
    diff = float((got.clamp(0, 1) - want).abs().max())
    if not diff <= PROBE_TOLERANCE:  # also catches NaN
        raise _certain(BackendError(f"{model.name} converted to OpenVINO differs from the torch network by {diff * 255:.2f}/255"))


def _certain(error: BackendError) -> BackendError:
    """Mark a conversion failure that says what the model is (remembered after one run, where a
    failure that may be the moment, memory short, is tried again once)."""
    error.certain = True
    return error


def _names_unsupported(line: str) -> bool:
    """Whether a line of a conversion error names operations the converter lacks."""
    return "No conversion rule found" in line or "not supported" in line.lower()


def _unsupported(exc: BaseException) -> bool:
    return any(_names_unsupported(line) for line in str(exc).splitlines())


def _detail(exc: BaseException) -> str:
    """The useful line of an OpenVINO error: the unsupported operations deep inside a conversion
    error, else the first line after OpenVINO's "Exception from src/...cpp:117:" (which says
    nothing by itself)."""
    lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip(" -")]
    for line in lines:
        if _names_unsupported(line):
            return line
    said = [line for line in lines if not re.match(r"Exception from \S+:\d+:?$", line)]
    return said[0] if said else first_line(exc)

"""Choosing where and in which precision a model runs.

``auto`` means CUDA, then Apple's MPS, then the CPU. Half precision is used only where it is
fast and safe: CUDA GPUs of compute capability 7.0+ (Volta, Turing RTX, Ampere and later) other
than the GTX 16xx series (known to produce black fp16 output), and MPS. CPUs run fp32 unless
asked otherwise (bf16 on request).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DeviceError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp16", "bf16", "fp32")
ENV_DEVICE = "SR_FILTER_DEVICE"


def cpu_only(request: str | None = "auto") -> bool:
    """Whether ``request`` is bound to mean the CPU here, decided without importing torch.

    True for ``cpu`` and for ``auto`` when the installed torch can reach no accelerator: a build
    without CUDA or ROCm (read from its ``version.py``) on a machine that is not an Apple arm64
    Mac (MPS). False means "ask torch" (:func:`pick_device`), never a wrong answer.
    """
    request = device_name(request) if isinstance(request, str) else None
    if request == "auto":  # SR_FILTER_DEVICE=cpu:0 had loaded torch, where cpu did not
        request = device_name(os.environ.get(ENV_DEVICE))
    if request == "cpu":
        return True
    if request != "auto" or (sys.platform == "darwin" and platform.machine() == "arm64"):
        return False
    return not _torch_has_gpu_build()


def _torch_has_gpu_build() -> bool:
    """Whether the installed torch was built with CUDA or ROCm (true when it cannot be told)."""
    if "torch" in sys.modules:  # already paid for: ask it
        import torch

        return torch.version.cuda is not None or getattr(torch.version, "hip", None) is not None
    return _gpu_build_on_disk()


@functools.lru_cache(maxsize=1)
def _gpu_build_on_disk() -> bool:
    """:func:`_torch_has_gpu_build` from the installed torch's ``version.py`` (read once a process)."""
    try:
        spec = importlib.util.find_spec("torch")
        folders = list(spec.submodule_search_locations or []) if spec else []
        text = (Path(folders[0]) / "version.py").read_text(encoding="utf-8") if folders else ""
    except (OSError, ValueError, ImportError):
        return True
    found = {k: v for k, v in re.findall(r"^(cuda|hip)\s*(?::[^=]*)?=\s*(.+?)\s*$", text, re.M)}
    return not (found.get("cuda") == "None" and found.get("hip", "None") == "None")


def cpu_precision(precision: str | None = "auto") -> str:
    """The precision name a CPU runs for ``precision``: ``auto`` is fp32 (the same pixels on every
    CPU), bf16 on request; fp16 is refused."""
    precision = check_precision(precision)
    if precision == "fp16":
        raise DeviceError("fp16 is not supported on the CPU; choose bf16 or fp32")
    return "fp32" if precision == "auto" else precision


def check_precision(precision: str | None) -> str:
    """A precision name checked, stripped and lower-cased as device names are (None is ``auto``):
    " fp32" had been an unknown precision where " cpu" was the CPU."""
    # None as its docstring (and device=None) say: it had been "unknown precision 'None'"
    precision = (precision or "auto").strip().lower() if isinstance(precision, str) else "auto" if precision is None else str(precision)
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return precision


#: Linux's CPU topology (which logical CPUs share a physical core)
_SYS_CPU = Path("/sys/devices/system/cpu")


def cpu_threads() -> int:
    """Threads for CPU inference: torch's setting once torch is loaded (so ``torch.set_num_threads``
    is obeyed), else ``OMP_NUM_THREADS``, else torch's own default, which is one thread per
    physical core this process may run on (hyperthreads add nothing to these convolutions)."""
    if "torch" in sys.modules:
        import torch

        return int(torch.get_num_threads())
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
        if value > 0:
            return value
    except ValueError:
        pass
    return physical_cores()


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (Linux's topology; psutil elsewhere)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = []
    if allowed:
        cores = set()
        for cpu in allowed:
            try:
                cores.add((_SYS_CPU / f"cpu{cpu}" / "topology" / "thread_siblings_list").read_text().strip())
            except OSError:
                cores.add(f"cpu{cpu}")  # no topology: count it as a core of its own
        return max(1, len(cores))
    try:
        import psutil

        return max(1, int(psutil.cpu_count(logical=False) or psutil.cpu_count() or 1))
    except Exception:  # noqa: BLE001 - no psutil or an OS it cannot read
        return max(1, os.cpu_count() or 1)


def set_cpu_threads(count: int) -> None:
    """Make CPU inference use ``count`` threads, in torch (now or when it loads) and in OpenVINO."""
    os.environ["OMP_NUM_THREADS"] = str(max(1, int(count)))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, int(count)))


def pick_device(request: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``auto``/``cuda``/``cuda:N``/``mps``/``cpu`` to an available device.

    ``auto`` takes the ``SR_FILTER_DEVICE`` environment variable when it is set; a bad value
    there gives an error that names the variable, since that is what the user has to change.
    """
    import torch

    if isinstance(request, torch.device):
        request = str(request)
    if request is not None and not isinstance(request, str):
        raise DeviceError(f"the device must be a name such as auto, cpu, cuda, cuda:N or mps, not {request!r}")
    request = device_name(request)
    if request == "auto":
        env = device_name(os.environ.get(ENV_DEVICE))
        if env != "auto":
            try:
                return _resolve(env)
            except DeviceError as exc:
                raise DeviceError(f"{ENV_DEVICE}={env}: {exc} (or unset {ENV_DEVICE})") from None
    return _resolve(request)


def device_for_rank(request: str, local_rank: int = 0) -> torch.device:
    """The device one training process uses: ``pick_device``'s choice, with CUDA pinned to the
    process's local rank (one GPU per process under torchrun) and made the current device."""
    import torch

    device = pick_device(request)
    if device.type != "cuda":
        return device
    if local_rank >= torch.cuda.device_count():
        raise DeviceError(f"process {local_rank} needs GPU {local_rank}, but this machine has {torch.cuda.device_count()}")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def device_name(request: str | None) -> str:
    """A device name as :func:`pick_device` reads it: stripped, lower-cased, ``cpu:N`` as ``cpu``
    and ``mps:0`` as ``mps`` (None or "" is ``auto``); the command line checks ``--device`` with it."""
    return _plain((request or "auto").strip().lower())


def _plain(request: str) -> str:
    """``cpu:N`` as ``cpu`` and ``mps:0`` as ``mps``: the names torch gives those devices (a tensor on
    the Apple GPU is on ``mps:0``; ``torch.device("cpu", 0)``), which had been "unknown device"."""
    return re.sub(r"^(cpu):\d+$|^(mps):0$", lambda m: m.group(1) or m.group(2), request)


def _resolve(request: str) -> torch.device:
    import torch

    if request == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if request == "cpu":
        return torch.device("cpu")
    if request.startswith("cuda"):
        if not re.fullmatch(r"cuda(:\d+)?", request):  # before asking torch: "cuda:x" had read as "no CUDA GPU"
            raise DeviceError(f"{request!r} is not a device name; use auto, cpu, cuda, cuda:N or mps")
        if not torch.cuda.is_available():
            raise DeviceError(f"{request} was asked for but this PyTorch sees no CUDA GPU; choose the CPU or auto")
        try:
            device = torch.device(request)
        except RuntimeError:
            raise DeviceError(f"{request!r} is not a device name; use auto, cpu, cuda, cuda:N or mps") from None
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"{request} does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return torch.device("cuda", index)
    if request == "mps":
        if not _mps_available():
            raise DeviceError("mps was asked for but this PyTorch has no usable Apple MPS device; choose the CPU or auto")
        return torch.device("mps")
    raise DeviceError(f"unknown device {request!r}; use auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def half_is_good(device: torch.device) -> bool:
    """Whether fp16 is fast and numerically dependable on this device."""
    if device.type == "mps":
        return True
    if device.type != "cuda":
        return False
    import torch

    major, _ = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    return major >= 7 and "GTX 16" not in name


def pick_dtype(device: torch.device, precision: str = "auto", *, supports_half: bool = True) -> torch.dtype:
    """The dtype a model runs in on ``device`` for the requested precision."""
    import torch

    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if device.type == "cpu":
        return dtypes[cpu_precision(precision)]
    precision = check_precision(precision)
    if precision == "auto":
        return torch.float16 if supports_half and half_is_good(device) else torch.float32
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError("this GPU does not support bf16; choose fp16 or fp32")
    return dtypes[precision]


def free_memory(device: torch.device | str) -> int:
    """Bytes the next allocation can reasonably use on ``device`` (``"cpu"`` needs no torch)."""
    if device == "cpu" or getattr(device, "type", None) == "cpu":
        return available_ram()
    import torch

    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        recommended = getattr(torch.mps, "recommended_max_memory", None)
        used = getattr(torch.mps, "current_allocated_memory", lambda: 0)()
        if recommended:
            return max(0, int(recommended()) - int(used))
    return available_ram()


#: Linux's memory report (absent on macOS and Windows, where psutil asks the OS)
_MEMINFO = "/proc/meminfo"


def available_ram() -> int:
    """Available system memory in bytes: Linux's MemAvailable, else the OS's figure through psutil."""
    try:
        with open(_MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - an OS psutil cannot read: assume a modest machine
        return 4 << 30


def is_oom(exc: BaseException) -> bool:
    """Whether an exception means the device ran out of memory (numpy's MemoryError too: a
    window's arrays that do not fit fit when the tiles are smaller)."""
    torch = sys.modules.get("torch")  # a CUDA error can only come from a torch that is loaded
    if isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def free_accelerator_cache() -> None:
    """Hand memory cached by torch's CUDA or MPS allocator back (after an out-of-memory error)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and hasattr(mps, "empty_cache") and torch.backends.mps.is_available():
        mps.empty_cache()

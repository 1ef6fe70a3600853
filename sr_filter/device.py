"""Choosing where and in which precision a model runs.

``auto`` means CUDA, then Apple's MPS, then the CPU. Half precision is used only where it is
fast and safe: CUDA GPUs of compute capability 7.0+ (Volta, Turing RTX, Ampere and later) other
than the GTX 16xx series (known to produce black fp16 output), and MPS. CPUs run fp32 unless
asked otherwise (bf16 on request).
"""

from __future__ import annotations

import os

import torch

from .errors import DeviceError

PRECISIONS = ("auto", "fp16", "bf16", "fp32")
ENV_DEVICE = "SR_FILTER_DEVICE"
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def pick_device(request: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``auto``/``cuda``/``cuda:N``/``mps``/``cpu`` to an available device.

    ``auto`` takes the ``SR_FILTER_DEVICE`` environment variable when it is set; a bad value
    there gives an error that names the variable, since that is what the user has to change.
    """
    if isinstance(request, torch.device):
        request = str(request)
    if request is not None and not isinstance(request, str):
        raise DeviceError(f"the device must be a name such as auto, cpu, cuda, cuda:N or mps, not {request!r}")
    request = (request or "auto").strip().lower()
    if request == "auto":
        env = os.environ.get(ENV_DEVICE, "").strip().lower()
        if env and env != "auto":
            try:
                return _resolve(env)
            except DeviceError as exc:
                raise DeviceError(f"{ENV_DEVICE}={env}: {exc} (or unset {ENV_DEVICE})") from None
    return _resolve(request)


def device_for_rank(request: str, local_rank: int = 0) -> torch.device:
    """The device one training process uses: ``pick_device``'s choice, with CUDA pinned to the
    process's local rank (one GPU per process under torchrun) and made the current device."""
    device = pick_device(request)
    if device.type != "cuda":
        return device
    if local_rank >= torch.cuda.device_count():
        raise DeviceError(f"process {local_rank} needs GPU {local_rank}, but this machine has {torch.cuda.device_count()}")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def _resolve(request: str) -> torch.device:
    if request == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if request == "cpu":
        return torch.device("cpu")
    if request.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"{request} was asked for but this PyTorch sees no CUDA GPU; choose the CPU or auto")
        try:
            device = torch.device(request)
        except RuntimeError:
            raise DeviceError(f"{request!r} is not a device name; use cuda or cuda:N") from None
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
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def half_is_good(device: torch.device) -> bool:
    """Whether fp16 is fast and numerically dependable on this device."""
    if device.type == "mps":
        return True
    if device.type != "cuda":
        return False
    major, _ = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    return major >= 7 and "GTX 16" not in name


def pick_dtype(device: torch.device, precision: str = "auto", *, supports_half: bool = True) -> torch.dtype:
    """The dtype a model runs in on ``device`` for the requested precision."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.float16 if supports_half and half_is_good(device) else torch.float32
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is not supported on the CPU; choose bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError("this GPU does not support bf16; choose fp16 or fp32")
    return _DTYPES[precision]


def free_memory(device: torch.device) -> int:
    """Bytes the next allocation can reasonably use on ``device``."""
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
    """Whether an exception means the device ran out of memory."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)

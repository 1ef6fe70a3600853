"""Independent reference implementations (spandrel) for checking our networks.

spandrel imports torchvision for two architectures we never use (LaMa, RestoreFormer). The
torchvision wheel on PyPI is a CUDA build that does not import next to a CPU build of torch, so
when the real torchvision cannot be imported a placeholder module is registered before importing
spandrel; calling anything in it raises. The networks compared here never touch it.
"""

from __future__ import annotations

import sys
import types

import pytest


def _placeholder_torchvision() -> None:
    def unavailable(*args, **kwargs):
        raise RuntimeError("torchvision is not usable in this environment")

    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = type("InterpolationMode", (), {})
    functional.rotate = functional.normalize = unavailable
    tv.transforms, transforms.functional = transforms, functional
    sys.modules.update({"torchvision": tv, "torchvision.transforms": transforms, "torchvision.transforms.functional": functional})


def spandrel():
    """Import spandrel (installed only in the test environment) or skip."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        _placeholder_torchvision()
    try:
        import spandrel as module
    except ImportError as exc:
        pytest.skip(f"spandrel (reference implementation) is not installed: {exc}")
    return module

"""Import Real-ESRGAN's own ``RealESRGANer`` and ``SRVGGNetCompact`` for the benchmark only.

``pip install --no-deps realesrgan basicsr`` puts the code in place, but importing the packages
runs ``realesrgan/__init__.py`` and ``basicsr/__init__.py``, which import torchvision (PyPI's is a
CUDA build that does not load next to a CPU torch), ``torchvision.transforms.functional_tensor``
(removed in torchvision 0.17) and basicsr's training stack (scipy, scikit-image, lmdb, ...).
The two files the benchmark needs do not use any of that: ``realesrgan/utils.py`` imports only
``basicsr.utils.download_util.load_file_from_url`` (for URLs; we pass local files) and
``realesrgan/archs/srvgg_arch.py`` only ``basicsr.utils.registry.ARCH_REGISTRY``. So this module
loads those two files straight from the installed packages, with two small placeholder modules
standing in for those basicsr imports. The code that runs (tiling, inference) is upstream's,
unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path


#: what the reference needs that sr-filter does not, and the install line of each (benchmarks/README.md)
NEEDS = {"realesrgan": "pip install --no-deps realesrgan==0.3.0 basicsr==1.4.2",
         "cv2": "pip install -e '.[bench]' (opencv-python-headless)"}


def missing() -> str | None:
    """None when the reference can be loaded; otherwise one line: what is missing and how to install it."""
    absent = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if not absent:
        return None
    return (f"{' and '.join(absent)} not installed ({'; '.join(NEEDS[name] for name in absent)}; "
            "see benchmarks/README.md)")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} is not installed; see benchmarks/README.md")
    return Path(next(iter(spec.submodule_search_locations)))


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _placeholders() -> None:
    def load_file_from_url(*args, **kwargs):
        raise RuntimeError("the benchmark passes local weight files; downloading is not available")

    class _Registry:
        def register(self, obj=None):
            return obj if obj is not None else (lambda o: o)

    download = types.ModuleType("basicsr.utils.download_util")
    download.load_file_from_url = load_file_from_url
    registry = types.ModuleType("basicsr.utils.registry")
    registry.ARCH_REGISTRY = _Registry()
    for name, module in {"basicsr.utils.download_util": download, "basicsr.utils.registry": registry}.items():
        sys.modules.setdefault(name, module)
    for parent in ("basicsr", "basicsr.utils"):
        sys.modules.setdefault(parent, types.ModuleType(parent))


def load() -> tuple[type, type]:
    """(RealESRGANer, SRVGGNetCompact) from the installed realesrgan package."""
    root = _package_dir("realesrgan")
    _placeholders()
    utils = _load("_upstream_realesrgan_utils", root / "utils.py")
    srvgg = _load("_upstream_srvgg_arch", root / "archs" / "srvgg_arch.py")
    return utils.RealESRGANer, srvgg.SRVGGNetCompact

"""A module imported on first use of one of its attributes: the name that annotations give a heavy
module's types (``torch.device``), so that ``typing.get_type_hints`` (IDEs, sphinx-autodoc,
validators) resolves them while importing the module that names them still imports nothing."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name`` and imports it when one of its attributes is asked for."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # copy, pickle and inspect probe for these: not a reason to import
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._lazy_name), attr)

    def __repr__(self) -> str:
        return f"<module {self._lazy_name!r}, imported on first use>"

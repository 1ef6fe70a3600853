"""The layer table in docs/architecture.md is the rule: every module of sr_filter has a layer there,
and no module imports one of a higher layer (lazy imports inside functions included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "sr_filter"


def _layers() -> dict[str, int]:
    """Top-level entry of sr_filter (``x.py`` or ``x/``) -> layer number, from the doc's table."""
    table = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").split("## Layers", 1)[1].split("\n\n## ", 1)[0]
    layers = {}
    for number, modules in re.findall(r"^\| (\d)\. [^|]+\| ([^|]+) \|", table, re.M):
        for name in re.findall(r"`([^`]+)`", modules):
            layers[name] = int(number)
    return layers


def _entry(path: Path) -> str:
    """The top-level entry a file belongs to: ``upscaler.py`` or ``backends/``."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) == 1 else parts[0] + "/"


def _targets(path: Path, text: str | None = None) -> list[tuple[Path, int]]:
    """Files of sr_filter that ``path`` (or ``text`` as if it were that file) imports, with the line."""
    tree = ast.parse(path.read_text(encoding="utf-8") if text is None else text)
    package = path.parent
    found = []

    def resolve(base: Path, name: str | None, line: int) -> None:
        if name:
            for part in name.split("."):
                base = base / part
        if base.with_suffix(".py").is_file():
            found.append((base.with_suffix(".py"), line))
        elif (base / "__init__.py").is_file():
            found.append((base / "__init__.py", line))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.parent
            elif node.module and node.module.split(".")[0] == "sr_filter":
                base = ROOT
            else:
                continue
            module_base = base
            if node.module:
                resolve(base, node.module, node.lineno)
                for part in node.module.split("."):
                    module_base = module_base / part
            elif not node.level:
                continue
            for alias in node.names:  # `from .. import convert`: a submodule, else a name of the package
                if (module_base / f"{alias.name}.py").is_file() or (module_base / alias.name / "__init__.py").is_file():
                    resolve(module_base, alias.name, node.lineno)
                elif not node.module:
                    resolve(module_base, None, node.lineno)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sr_filter":
                    resolve(ROOT, alias.name, node.lineno)
    return found


def test_every_module_has_a_layer_in_the_doc():
    layers = _layers()
    entries = {_entry(p) for p in PACKAGE.rglob("*.py")}
    assert sorted(entries - set(layers)) == []


def test_no_module_imports_a_higher_layer():
    layers = _layers()
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _entry(path)
        for target, line in _targets(path):
            if _entry(target) != source and layers[_entry(target)] > layers[source]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} (layer {layers[source]}) imports "
                             f"{target.relative_to(ROOT)} (layer {layers[_entry(target)]})")
    assert wrong == []


def test_the_check_sees_an_import_back_up():
    """The rule has teeth: a lazy import of the upscaler from the ground layer is found."""
    errors = PACKAGE / "errors.py"
    text = errors.read_text(encoding="utf-8") + "\n\ndef _probe():\n    from .upscaler import Upscaler\n"
    assert "upscaler.py" not in {_entry(t) for t, _ in _targets(errors)}
    assert "upscaler.py" in {_entry(t) for t, _ in _targets(errors, text)}
    assert _layers()["upscaler.py"] > _layers()["errors.py"]


def test_no_docstring_holds_a_lone_surrogate():
    """Python 3.13 cleans docstrings at compile time and cannot encode a lone surrogate: a "\\udcff"
    written in a docstring (not a raw one) made `import sr_filter` fail in GIMP's Python 3.13."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc and any(0xD800 <= ord(c) <= 0xDFFF for c in doc):
                    found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 1)}")
    assert not found, found

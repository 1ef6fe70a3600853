"""Install the GIMP 3 plug-in for the current Python: ``python -m sr_filter.gimp_install``.

Copies ``gimp_plugin/sr-filter/sr-filter.py`` (mode 755) and the protocol module into
GIMP's user plug-ins folder and writes ``sr-filter.json`` naming the interpreter that runs
the worker (``sys.executable`` by default), so GIMP's own Python never needs torch.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Optional

from sr_filter import gimp_protocol
from sr_filter.errors import SrFilterError

PLUGIN_NAME = "sr-filter"
CONFIG_NAME = "sr-filter.json"
# Same place in a source checkout and in an installed wheel (pyproject package-data).
PLUGIN_SOURCE = Path(__file__).resolve().parent.parent / "gimp_plugin" / PLUGIN_NAME


def gimp_config_root(platform: str = sys.platform, env: Optional[dict] = None, home: Optional[Path] = None) -> Path:
    """Folder that holds GIMP's per-version profiles (``3.0``, ``3.2``...) on this platform."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "GIMP"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "GIMP"


def default_gimp_dir(root: Path) -> Path:
    """Newest existing GIMP 3.x profile under ``root``, else ``root/3.0``."""
    versions = []
    for child in root.glob("3.*") if root.is_dir() else []:
        try:
            versions.append((int(child.name.split(".")[1]), child))
        except ValueError:
            continue
    return max(versions)[1] if versions else root / "3.0"


def install(gimp_dir: Path, python: str) -> Path:
    """Install the plug-in into ``gimp_dir/plug-ins/sr-filter``; return the plug-in file."""
    source = PLUGIN_SOURCE / (PLUGIN_NAME + ".py")
    if not source.is_file():
        raise SrFilterError("plug-in file missing: %s (reinstall sr-filter)" % source)
    found = shutil.which(python)  # accepts "python3"; symlinks are kept: a venv needs its own path
    if found is None:
        raise SrFilterError("Python interpreter not found: %s (pass --python PATH)" % python)
    python = os.path.abspath(found)
    target = Path(gimp_dir) / "plug-ins" / PLUGIN_NAME
    try:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / source.name)
        os.chmod(target / source.name, 0o755)
        shutil.copyfile(gimp_protocol.__file__, target / "gimp_protocol.py")
        config = {"python": str(python)}
        (target / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SrFilterError("cannot install the GIMP plug-in into %s: %s" % (target, exc)) from None
    return target / source.name


if __name__ == "__main__":
    from sr_filter.cli.gimp import gimp_install

    gimp_install(prog_name="python -m sr_filter.gimp_install")

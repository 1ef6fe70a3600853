"""Install the GIMP 3 plug-in for the current Python: ``python -m sr_filter.gimp.install``.

Copies ``sr_filter/gimp/plugin/sr-filter.py`` (mode 755) and the protocol module into
GIMP's user plug-ins folder and writes ``sr-filter.json`` naming the interpreter that runs
the worker (``sys.executable`` by default), so GIMP's own Python never needs torch, and the
menu choices that interpreter's worker reports (presets from its manifest), so the plug-in
registers without starting it. ``sr-filter gimp-install`` is the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional

from sr_filter.errors import SrFilterError
from sr_filter.gimp import protocol

PLUGIN_NAME = "sr-filter"
CONFIG_NAME = "sr-filter.json"
GIMP_DIR_HELP = "GIMP 3 profile folder (default: newest existing one, e.g. ~/.config/GIMP/3.0)."
PYTHON_HELP = "Interpreter with sr-filter and torch that runs the worker (default: this one)."
PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugin"  # package data: in a checkout and in a wheel alike


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


def install(gimp_dir: Path, python: str, env: Optional[Dict[str, str]] = None) -> Path:
    """Install the plug-in into ``gimp_dir/plug-ins/sr-filter``; return the plug-in file.

    The interpreter is asked for the menu choices through the worker protocol (``env``: its
    environment, default :func:`protocol.worker_env`), which also proves that it can run the
    worker.
    """
    source = PLUGIN_SOURCE / (PLUGIN_NAME + ".py")
    version = Path(gimp_dir).name.split(".")
    if len(version) == 2 and version[0].isdigit() and version[1].isdigit() and int(version[0]) < 3:
        # GIMP 2.10 would not run a GIMP 3 plug-in, and says nothing: the entry is just missing
        raise SrFilterError("%s is the profile of GIMP %s; the plug-in needs GIMP 3 (its profile is a 3.x folder "
                            "beside it, e.g. %s)" % (gimp_dir, Path(gimp_dir).name, Path(gimp_dir).parent / "3.0"))
    if not source.is_file():
        raise SrFilterError("plug-in file missing: %s (reinstall sr-filter)" % source)
    found = shutil.which(python)  # accepts "python3"; symlinks are kept: a venv needs its own path
    if found is None:
        raise SrFilterError("Python interpreter not found: %s (name the Python that has sr-filter and torch)" % python)
    python = os.path.abspath(found)
    choices = menu_choices(python, env)
    target = Path(gimp_dir) / "plug-ins" / PLUGIN_NAME
    try:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / source.name)
        os.chmod(target / source.name, 0o755)
        shutil.copyfile(protocol.__file__, target / "gimp_protocol.py")
        config = {"python": str(python), "choices": choices}
        (target / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SrFilterError("cannot install the GIMP plug-in into %s: %s" % (target, exc)) from None
    return target / source.name


def menu_choices(python: str, env: Optional[Dict[str, str]] = None) -> Dict[str, object]:
    """The plug-in's menu choices as the worker run by ``python`` reports them.

    Always from a worker process started as GIMP will start it (no PYTHONPATH, not from the
    current folder), also for this interpreter: one that imports sr_filter only from a
    checkout it was started in would pass here and fail in GIMP."""
    try:
        return protocol.describe_worker(python, env)
    except (protocol.WorkerError, protocol.ProtocolError) as exc:
        raise SrFilterError("%s cannot run the sr-filter worker (install sr-filter and torch for it, or "
                            "choose another interpreter): %s" % (python, str(exc).strip().splitlines()[-1])) from None


def run(gimp_dir: Optional[Path], python: Optional[str]) -> List[str]:
    """Install into ``gimp_dir`` (default: the newest GIMP 3 profile); return the lines to show."""
    gimp_dir = gimp_dir or default_gimp_dir(gimp_config_root())
    path = install(gimp_dir, python or sys.executable)
    return ["installed %s (worker: %s)" % (path, protocol.python_from_config(str(path.parent / CONFIG_NAME))),
            "restart GIMP, then use Filters > Enhance > Super-resolution..."]


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m sr_filter.gimp.install [--gimp-dir DIR] [--python PATH]``."""
    parser = argparse.ArgumentParser(prog="python -m sr_filter.gimp.install",
                                     description="Install the Filters > Enhance > Super-resolution plug-in into GIMP 3.")
    parser.add_argument("--gimp-dir", type=Path, default=None, help=GIMP_DIR_HELP)
    parser.add_argument("--python", default=None, help=PYTHON_HELP)
    args = parser.parse_args(argv)
    try:
        lines = run(args.gimp_dir, args.python)
    except SrFilterError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

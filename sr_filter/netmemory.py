"""Remembering, for a few minutes, which download hosts could not be reached.

Without a network every run of a preset would wait for the same failed name lookup or
connection before falling back to a built-in model. When a host cannot be reached, it is noted
in ``.unreachable.json`` in the weights cache for :data:`REMEMBER_S` seconds; during that time a
preset skips it at once. An explicit model name, or ``SR_FILTER_OFFLINE=0``, still tries. The
file is a hint: when it cannot be read or written, nothing is remembered and nothing fails.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

from .atomic import publish

REMEMBER_S = 600.0
FILE_NAME = ".unreachable.json"


def host_of(url: str) -> str:
    """``scheme://host:port`` of a URL: what "could not be reached" is about."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _read(folder: Path) -> dict[str, float]:
    try:
        data = json.loads((folder / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def _write(folder: Path, data: dict[str, float]) -> None:
    path = folder / FILE_NAME
    tmp = folder / f"{FILE_NAME}.{os.getpid()}.tmp"
    try:
        if not data:
            path.unlink(missing_ok=True)
            return
        tmp.write_text(json.dumps(data), encoding="utf-8")
        publish(tmp, path, overwrite=True)
    except OSError:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)


def unreachable_since(folder: Path, urls: list[str]) -> float | None:
    """When all of ``urls``' hosts were last found unreachable (within :data:`REMEMBER_S`), else None."""
    if not urls:
        return None
    now = time.time()
    data = _read(folder)
    stamps = [data.get(host_of(u)) for u in urls]
    if any(s is None or not (now - REMEMBER_S < s <= now) for s in stamps):
        return None
    return min(stamps)  # type: ignore[type-var]


def remember(folder: Path, urls: list[str], reachable: bool) -> None:
    """Note ``urls``' hosts as unreachable now, or forget them once one answered."""
    now = time.time()
    data = {h: t for h, t in _read(folder).items() if now - REMEMBER_S < t <= now}
    hosts = {host_of(u) for u in urls}
    if reachable:
        if not hosts & data.keys():
            return
        data = {h: t for h, t in data.items() if h not in hosts}
    else:
        data.update({h: now for h in hosts})
    _write(folder, data)

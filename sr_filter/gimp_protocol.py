"""Wire protocol between the GIMP plug-in and its worker process (standard library only).

GIMP 3 runs plug-ins in its own Python, which usually cannot import torch, so the plug-in
sends pixels to ``PYTHON -m sr_filter.gimp_worker`` and reads the result back. This module
is imported by both sides: by the worker from the installed package, and by the plug-in
from a copy the installer puts next to ``sr-filter.py``. It must therefore never import
numpy, torch or anything outside the standard library.

Request, on the worker's stdin: one JSON line ``{"version": 1, "options": {...},
"images": [{"width", "height", "channels", "dtype"}, ...]}`` followed by the raw pixels of
every image, concatenated, row-major, interleaved channels, native byte order.
Reply, on stdout: one JSON line ``{"ok": true, "images": [...]}`` plus the pixels the same
way, or ``{"ok": false, "error": "...", "kind": "ExceptionClass"}`` and nothing else.
Progress, on stderr: JSON lines ``{"image": i, "done": d, "total": t}``; any other stderr
line is log output (kept to explain a crash).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

VERSION = 1
BYTES_PER_SAMPLE = {"uint8": 1, "uint16": 2, "float32": 4}
PROGRESS_KEY = "done"
MAX_HEADER = 1 << 20

Image = Tuple[Dict[str, Any], bytes]  # (geometry dict, raw pixels)
ProgressFn = Callable[[int, int, int], Optional[bool]]  # (image index, done, total)


class ProtocolError(Exception):
    """The other side sent something that does not follow this protocol."""


class WorkerError(Exception):
    """The worker reported an error (``kind`` is the library's exception class name)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


def image_nbytes(info: Dict[str, Any]) -> int:
    """Byte size of one image described by a header entry; validates the entry."""
    try:
        w, h, c, dtype = int(info["width"]), int(info["height"]), int(info["channels"]), info["dtype"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError("bad image entry %r: %s" % (info, exc)) from None
    if dtype not in BYTES_PER_SAMPLE:
        raise ProtocolError("unknown dtype %r (expected one of %s)" % (dtype, ", ".join(BYTES_PER_SAMPLE)))
    if w < 1 or h < 1 or not 1 <= c <= 4:
        raise ProtocolError("bad image size %dx%d with %d channels" % (w, h, c))
    return w * h * c * BYTES_PER_SAMPLE[dtype]


def scaled(n: int, scale: float) -> int:
    """Canvas size or layer offset ``n`` after scaling, rounded like sr_filter rounds sizes."""
    return max(1, round(n * scale)) if n > 0 else round(n * scale)


def write_message(stream: IO[bytes], header: Dict[str, Any], images: Sequence[bytes] = ()) -> None:
    """Write a JSON header line and the raw payloads, then flush."""
    stream.write(json.dumps(header).encode("utf-8") + b"\n")
    for data in images:
        stream.write(data)
    stream.flush()


def read_message(stream: IO[bytes]) -> Tuple[Dict[str, Any], List[bytes]]:
    """Read one header line and the payloads its ``images`` list announces."""
    line = stream.readline(MAX_HEADER)
    if not line.endswith(b"\n"):
        raise ProtocolError("no header line (stream ended or header too long)")
    try:
        header = json.loads(line.decode("utf-8"))
    except ValueError as exc:
        raise ProtocolError("header is not JSON: %s" % exc) from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    payloads = []
    for info in header.get("images", []):
        n = image_nbytes(info)
        data = stream.read(n)
        if len(data) != n:
            raise ProtocolError("expected %d pixel bytes, got %d" % (n, len(data)))
        payloads.append(data)
    return header, payloads


def progress_line(image: int, done: int, total: int) -> str:
    """One stderr progress line (without newline)."""
    return json.dumps({"image": image, PROGRESS_KEY: done, "total": total})


def parse_progress(line: str) -> Optional[Tuple[int, int, int]]:
    """(image, done, total) if ``line`` is a progress line, else None."""
    if not line.startswith("{"):
        return None
    try:
        d = json.loads(line)
        return int(d["image"]), int(d[PROGRESS_KEY]), int(d["total"])
    except (ValueError, KeyError, TypeError):
        return None


def worker_env(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for the worker: the caller's, minus the settings of GIMP's own Python."""
    env = dict(os.environ if base is None else base)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_worker(
    python: str,
    options: Dict[str, Any],
    images: Sequence[Image],
    progress: Optional[ProgressFn] = None,
    env: Optional[Dict[str, str]] = None,
) -> List[Image]:
    """Run ``python -m sr_filter.gimp_worker`` on ``images`` and return its results.

    Raises WorkerError with the library's message when the worker reports one, or with
    the exit status and the last log lines when it dies without a reply. ``progress``
    returning False kills the worker and raises WorkerError(kind="CancelledError").
    """
    header = {"version": VERSION, "options": options, "images": [info for info, _ in images]}
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
    try:
        proc = subprocess.Popen(
            [python, "-m", "sr_filter.gimp_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=worker_env() if env is None else env, creationflags=flags,
        )
    except OSError as exc:
        raise WorkerError("cannot start the sr-filter worker %r: %s" % (python, exc), "OSError") from None
    reply: Dict[str, Any] = {}

    def feed() -> None:
        try:
            write_message(proc.stdin, header, [data for _, data in images])
            proc.stdin.close()
        except OSError:  # worker died early; its exit status and stderr tell why
            pass

    def collect() -> None:
        try:
            reply["message"] = read_message(proc.stdout)
        except (ProtocolError, OSError) as exc:
            reply["problem"] = str(exc)

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=collect, daemon=True)]
    for t in threads:
        t.start()
    log: List[str] = []
    cancelled = False
    for raw in proc.stderr:
        line = raw.decode("utf-8", "replace").rstrip()
        step = parse_progress(line)
        if step is None:
            log = (log + [line])[-20:]
        elif progress is not None and progress(*step) is False:
            cancelled = True
            proc.kill()
            break
    for t in threads:
        t.join()
    status = proc.wait()
    if cancelled:
        raise WorkerError("cancelled", "CancelledError")
    if "message" not in reply:
        tail = "\n".join(line for line in log if line.strip())
        raise WorkerError("the sr-filter worker (%s) exited with status %s without a result: %s\n%s"
                          % (python, status, reply.get("problem", ""), tail), "WorkerCrash")
    head, payloads = reply["message"]
    if not head.get("ok"):
        raise WorkerError(str(head.get("error", "unknown error")), str(head.get("kind", "")))
    return list(zip(head["images"], payloads))


def python_from_config(path: str) -> Optional[str]:
    """The interpreter named in the installer's JSON config, or None if there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            python = json.load(f).get("python")
    except (OSError, ValueError, AttributeError):
        return None
    return python if isinstance(python, str) and python else None


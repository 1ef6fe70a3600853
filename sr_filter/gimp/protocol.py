"""Wire protocol between the GIMP plug-in and its worker process (standard library only).

GIMP 3 runs plug-ins in its own Python, which usually cannot import torch, so the plug-in
sends pixels to ``PYTHON -m sr_filter.gimp.worker`` and reads the result back. This module
is imported by both sides: by the worker from the installed package, and by the plug-in
from a copy the installer puts next to ``sr-filter.py`` (as ``gimp_protocol.py``). It must
therefore never import numpy, torch or anything outside the standard library.

Request, on the worker's stdin: one JSON line ``{"version": 5, "request": "upscale",
"options": {...}, "images": [{"width", "height", "channels", "dtype"[, "name"][, "mask"]}, ...]}`` followed by
the raw pixels of every image, concatenated, row-major, interleaved channels, native byte
order. ``options`` carry the library's values (``tile``: ``"auto"``, 0 = whole image, or a
size; ``scale``: absent or null = the model's own; ``colour_fix``: true or false (absent:
the preset's choice); ``tta``: true for the 8-fold test-time augmentation; ``precision``: the library's
(auto, fp32, fp16, bf16); ``sizes``: optional ``[width, height]`` per
image, the exact output size, within a pixel or two of the scaled size, so that layers that
meet on the canvas still meet after rounding). An image with ``"mask": true`` is a layer mask
(one channel): it is resized to its size, not upscaled, so that it covers its layer's new box
exactly. ``{"version": 5, "request": "describe"}``
asks for the plug-in's menu choices instead (see :func:`check_choices`).
Reply, on stdout: one JSON line ``{"ok": true, "images": [...], "warnings": [...]}`` plus
the pixels the same way (``{"ok": true, "choices": {...}}`` for ``describe``), or ``{"ok":
false, "error": "...", "kind": "ExceptionClass"}`` and nothing else. ``warnings`` are the
library's warning lines (a fallback model, clipped values...) for the plug-in to show.
Progress, on stderr: JSON lines ``{"image": i, "done": d, "total": t}``; any other stderr
line is log output (kept to explain a crash).

Every request is checked against this schema, sizes included, before any pixel buffer is
allocated; payloads are read in chunks, so a short header that claims a huge image costs
nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

VERSION = 5
REQUESTS = ("upscale", "describe")
WORKER_MODULE = "sr_filter.gimp.worker"
#: the first words of the line the launcher writes when that Python cannot import sr_filter
CANNOT_IMPORT = "sr-filter worker: cannot import sr_filter: "
#: ``python -c`` this: the worker without the current folder on sys.path, so it imports the
#: same sr_filter wherever GIMP (or the installer's check) was started; a Python without
#: sr_filter says so in one line (:data:`CANNOT_IMPORT`) and exits 3
LAUNCH = ("import sys, runpy\nif sys.path and sys.path[0] in ('', '.'): del sys.path[0]\n"  # PYTHONSAFEPATH adds none
          "try:\n    import sr_filter.gimp\nexcept ImportError as exc:\n"
          "    sys.stderr.write(%r + str(exc) + '\\n')\n    sys.exit(3)\n"
          "runpy.run_module(%r, run_name='__main__', alter_sys=True)" % (CANNOT_IMPORT, WORKER_MODULE))
INSTALL_COMMAND = "python -m sr_filter.gimp.install"
BYTES_PER_SAMPLE = {"uint8": 1, "uint16": 2, "float32": 4}
PROGRESS_KEY = "done"
MAX_HEADER = 1 << 20
#: GIMP's own largest image edge
MAX_SIDE = 524288
#: layers in one request
MAX_IMAGES = 10000
#: pixel bytes in one request (a 16000x16000 RGBA float image); the worker's memory check follows
MAX_PAYLOAD_BYTES = 4 << 30
#: the plug-in offers 1 to 8
MAX_SCALE = 16.0
#: how far a requested output size may be from the scaled size (rounding at layer edges)
SIZE_SLACK = 2
CHUNK = 1 << 22
#: text options -> their longest accepted value
OPTIONS = {"preset": 256, "model": 4096, "device": 64, "backend": 16, "precision": 16}

Image = Tuple[Dict[str, Any], bytes]  # (geometry dict, raw pixels)
ProgressFn = Callable[[int, int, int], Optional[bool]]  # (image index, done, total)


class ProtocolError(Exception):
    """The other side sent something that does not follow this protocol."""


class WorkerError(Exception):
    """The worker reported an error (``kind`` is the library's exception class name)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def image_nbytes(info: Any) -> int:
    """Byte size of one image described by a header entry; validates the entry."""
    if not isinstance(info, dict) or set(info) - {"name", "mask"} != {"width", "height", "channels", "dtype"}:
        raise ProtocolError("bad image entry %s: expected width, height, channels and dtype (and a name)" % _short(info))
    if "mask" in info and not (info["mask"] is True and info["channels"] == 1):
        raise ProtocolError("bad image entry %s: \"mask\" is true, for one channel" % _short(info))
    if not isinstance(info.get("name", ""), str) or len(info.get("name", "")) > 256:
        raise ProtocolError("bad image entry %s: the name must be a text of at most 256 characters" % _short(info))
    w, h, c, dtype = info["width"], info["height"], info["channels"], info["dtype"]
    if not (_is_int(w) and _is_int(h) and _is_int(c)):
        raise ProtocolError("bad image entry %s: width, height and channels must be integers" % _short(info))
    if dtype not in BYTES_PER_SAMPLE:
        raise ProtocolError("unknown dtype %s (expected one of %s)" % (_short(dtype), ", ".join(BYTES_PER_SAMPLE)))
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE) or not 1 <= c <= 4:
        raise ProtocolError("bad image size %dx%d with %d channels (sides 1 to %d, 1 to 4 channels)"
                            % (w, h, c, MAX_SIDE))
    return w * h * c * BYTES_PER_SAMPLE[dtype]


def check_images(images: Any) -> List[Dict[str, Any]]:
    """Validate a header's ``images`` list, its count and total size, before any pixel is read."""
    if not isinstance(images, list):
        raise ProtocolError("'images' must be a list of image entries, not %s" % _short(images))
    if len(images) > MAX_IMAGES:
        raise ProtocolError("%d images in one request; at most %d" % (len(images), MAX_IMAGES))
    total = sum(image_nbytes(info) for info in images)
    if total > MAX_PAYLOAD_BYTES:
        deeper = any(info["dtype"] != "uint8" for info in images)  # 8-bit pictures have no lower depth to go to
        raise ProtocolError("the images hold %.1f GiB of pixels; at most %.0f GiB per run: work on a crop%s"
                            % (total / (1 << 30), MAX_PAYLOAD_BYTES / (1 << 30),
                               " or a lower bit depth" if deeper else ", or on fewer layers at a time"))
    return images


def check_options(options: Any) -> Dict[str, Any]:
    """Validate upscale options (types and ranges); returns them unchanged."""
    if not isinstance(options, dict):
        raise ProtocolError("'options' must be an object, not %s" % _short(options))
    others = {"scale", "tile", "sizes", "colour_fix", "tta"}
    unknown = sorted(set(options) - set(OPTIONS) - others)
    if unknown:
        raise ProtocolError("unknown option %s (known: %s)"
                            % (_short(unknown[0]), ", ".join(sorted(set(OPTIONS) | others))))
    for flag in ("colour_fix", "tta"):
        if options.get(flag) is not None and not isinstance(options[flag], bool):
            raise ProtocolError("%s must be true or false, not %s" % (flag, _short(options[flag])))
    for name, longest in OPTIONS.items():
        value = options.get(name)
        if value is not None and not (isinstance(value, str) and len(value) <= longest):
            raise ProtocolError("option %r must be a text of at most %d characters, not %s"
                                % (name, longest, _short(value)))
    scale = options.get("scale")
    if scale is not None:
        if not (isinstance(scale, (int, float)) and not isinstance(scale, bool)):
            raise ProtocolError("scale must be a number, not %s" % _short(scale))
        if not (math.isfinite(scale) and 0 < scale <= MAX_SCALE):
            raise ProtocolError("scale must be above 0 and at most %g, not %s" % (MAX_SCALE, _short(scale)))
    tile = options.get("tile")
    if tile is not None and tile != "auto" and not (_is_int(tile) and 0 <= tile <= MAX_SIDE):
        raise ProtocolError("tile must be \"auto\", 0 (whole image) or a size in pixels, not %s" % _short(tile))
    sizes = options.get("sizes")
    if sizes is not None:
        if not isinstance(sizes, list) or not all(
                isinstance(s, list) and len(s) == 2 and all(_is_int(n) and 1 <= n <= MAX_SIDE for n in s) for s in sizes):
            raise ProtocolError("sizes must be a list of [width, height] pairs of 1 to %d, not %s" % (MAX_SIDE, _short(sizes)))
    return options


def check_request(header: Dict[str, Any]) -> Dict[str, Any]:
    """Validate a request header; returns ``{"request", "options", "images"}`` with defaults filled."""
    version = header.get("version")
    if version != VERSION:
        raise ProtocolError("the GIMP plug-in speaks protocol version %s, this sr-filter worker speaks %d: "
                            "run `%s` again with this Python and restart GIMP"
                            % (_short(version), VERSION, INSTALL_COMMAND))
    request = header.get("request", "upscale")
    if request not in REQUESTS:
        raise ProtocolError("unknown request %s (expected one of %s)" % (_short(request), ", ".join(REQUESTS)))
    if request == "describe":
        return {"request": request, "options": {}, "images": []}
    if "images" not in header:
        raise ProtocolError("the request has no 'images' list")
    options = check_options(header.get("options", {}))
    images = check_images(header["images"])
    if options.get("sizes") is not None and len(options["sizes"]) != len(images):
        raise ProtocolError("%d sizes for %d images" % (len(options["sizes"]), len(images)))
    return {"request": request, "options": options, "images": images}


def check_choices(choices: Any) -> Dict[str, Any]:
    """Validate the menu choices a worker or the installer's config gives the plug-in.

    ``{"presets": [[nick, label, help], ...], "default": nick, "min_tile": n}``.
    """
    try:
        presets = [(str(n), str(label), str(text)) for n, label, text in choices["presets"]]
        default, min_tile = str(choices["default"]), int(choices["min_tile"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError("bad menu choices: %s" % _short(exc)) from None
    if not presets or default not in [n for n, _, _ in presets]:
        raise ProtocolError("bad menu choices: no presets, or default %r is not one of them" % default)
    return {"presets": presets, "default": default, "min_tile": min_tile}


def available_memory() -> Optional[int]:
    """Bytes of memory free now, where the system says (Linux, most Unixes); None elsewhere."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def layer_label(name: object, limit: int = 60) -> str:
    """A layer as messages name it: ``layer 'Name'`` as the Layers dialog shows the name, control
    characters escaped (the message stays one line), a long name cut in the middle. Python's repr
    had shown quotes and accents as escapes (``'a"b\\'c``) and a 300-character name in full."""
    text = str(name)
    # its own backslashes doubled where it holds an escape or what reads as one (as sr_filter.errors.shown_path
    # does; this module stays standard-library only): a name holding a backslash and an n is not a newline
    doubled = not text.isprintable() or re.search(r"\\(?:[ntr\\]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})", text)
    shown = "".join(("\\\\" if doubled else c) if c == "\\" else c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(shown) > limit:
        half = (limit - 1) // 2
        shown = shown[:half] + "\u2026" + shown[-half:]
    return "layer '%s'" % shown


def too_large(name: str, width: int, height: int, channels: int, scale: float,
              available: Optional[int] = None) -> Optional[str]:
    """Why a layer cannot be upscaled at all, before its pixels are copied (the plug-in's copy and
    the worker's took about four times the layer's size before the worker's own check refused
    it): what every upscale of it holds per output pixel (the part of the worker's estimate,
    ``sr_filter.limits.estimate_bytes``, that does not depend on alpha or sample size: never
    more than the worker's own) would not fit in the memory free now. The worker checks the rest."""
    free = available_memory() if available is None else available
    out_w, out_h = scaled(width, scale), scaled(height, scale)
    need = out_w * out_h * 6 * channels
    if free is None or need <= free:
        return None
    return ("%s is %dx%d; upscaled x%g it would be %dx%d and need more than %.1f GiB of memory, but "
            "%.1f GiB is free: choose a smaller scale, or crop or scale the image down first"
            % (layer_label(name), width, height, scale, out_w, out_h, need / (1 << 30), free / (1 << 30)))


def scaled(n: int, scale: float) -> int:
    """Canvas size or layer offset ``n`` after scaling, rounded half up like
    ``sr_filter.sizing.scaled_length`` and GIMP's own scale (31 x 1.5 = 47); the product rounded to
    6 decimals first, as there (25 x 1.14 is 28.499999999999996 in floating point)."""
    value = math.floor(round(n * scale, 6) + 0.5)
    return max(1, value) if n > 0 else value


def scaled_box(x: int, y: int, width: int, height: int, scale: float) -> Tuple[int, int, int, int]:
    """A layer's (x, y, width, height) after scaling: its edges are scaled like the canvas's, so
    layers that meet before meet after (rounding each size on its own left one-pixel gaps)."""
    nx, ny = scaled(x, scale), scaled(y, scale)
    return nx, ny, max(1, scaled(x + width, scale) - nx), max(1, scaled(y + height, scale) - ny)


def write_message(stream: IO[bytes], header: Dict[str, Any], images: Sequence[bytes] = ()) -> None:
    """Write a JSON header line and the raw payloads, then flush."""
    stream.write(json.dumps(header).encode("utf-8") + b"\n")
    for data in images:
        stream.write(data)
    stream.flush()


def read_header(stream: IO[bytes]) -> Dict[str, Any]:
    """Read and decode one JSON header line (at most MAX_HEADER bytes)."""
    line = stream.readline(MAX_HEADER)
    if not line.endswith(b"\n"):
        raise ProtocolError("no header line (stream ended or header longer than %d bytes)" % MAX_HEADER)
    try:
        header = json.loads(line.decode("utf-8"))
    except RecursionError:
        raise ProtocolError("header is nested too deeply") from None
    except ValueError as exc:  # also bad UTF-8
        raise ProtocolError("header is not JSON: %s" % exc) from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    return header


def read_payloads(stream: IO[bytes], images: Sequence[Dict[str, Any]]) -> List[bytearray]:
    """Read the pixels of validated image entries, in chunks: memory grows only with the data."""
    payloads = []
    for info in images:
        n = image_nbytes(info)
        data = bytearray()
        while len(data) < n:
            chunk = stream.read(min(CHUNK, n - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) != n:
            raise ProtocolError("expected %d pixel bytes, got %d" % (n, len(data)))
        payloads.append(data)
    return payloads


def read_message(stream: IO[bytes]) -> Tuple[Dict[str, Any], List[bytearray]]:
    """Read one header line and the payloads its ``images`` list announces (a reply)."""
    header = read_header(stream)
    return header, read_payloads(stream, check_images(header.get("images", [])))


def read_request(stream: IO[bytes]) -> Tuple[Dict[str, Any], List[bytearray]]:
    """Read one request: the header checked against the schema, then the announced pixels."""
    request = check_request(read_header(stream))
    return request, read_payloads(stream, request["images"])


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
    warnings: Optional[List[str]] = None,
) -> List[Image]:
    """Run the worker (``python -m sr_filter.gimp.worker``) on ``images`` and return its results;
    the library's warning lines are added to ``warnings`` when a list is given.

    Raises WorkerError with the library's message when the worker reports one, or with
    how it ended and the last log lines when it dies without a reply. ``progress``
    returning False kills the worker and raises WorkerError(kind="CancelledError").
    """
    header = {"version": VERSION, "request": "upscale", "options": options, "images": [info for info, _ in images]}
    head, payloads = _exchange(python, header, [data for _, data in images], progress, env)
    infos = head.get("images")
    if not isinstance(infos, list) or len(infos) != len(images) or len(payloads) != len(images):
        # a worker from another sr-filter than the plug-in's: had been "KeyError: 'images'"
        raise WorkerError("the sr-filter worker (%s) answered in a form this plug-in does not know: run `%s` with "
                          "that Python, then restart GIMP" % (python, INSTALL_COMMAND), "ProtocolError")
    lines = head.get("warnings")
    if warnings is not None and isinstance(lines, list):
        warnings.extend(str(line) for line in lines)
    return list(zip(infos, payloads))


def describe_worker(python: str, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Ask the worker for the plug-in's menu choices (presets, default, smallest tile)."""
    head, _ = _exchange(python, {"version": VERSION, "request": "describe"}, [], None, env)
    return check_choices(head.get("choices"))


def _exchange(
    python: str, header: Dict[str, Any], payloads: Sequence[bytes], progress: Optional[ProgressFn],
    env: Optional[Dict[str, str]],
) -> Tuple[Dict[str, Any], List[bytearray]]:
    """Start the worker, send one request, relay progress, return the reply (or raise WorkerError)."""
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
    try:
        proc = subprocess.Popen(
            [python, "-c", LAUNCH], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=worker_env() if env is None else env, creationflags=flags,
        )
    except OSError as exc:  # the Python that sr-filter.json names is gone (a venv moved or deleted)
        raise WorkerError("cannot start the sr-filter worker %r (%s): run `%s` again with the Python that has "
                          "sr-filter, then restart GIMP" % (python, exc.strerror or exc, INSTALL_COMMAND), "OSError") from None
    reply: Dict[str, Any] = {}

    def feed() -> None:
        try:
            write_message(proc.stdin, header, payloads)
            proc.stdin.close()
        except OSError:  # worker died early; its exit status and stderr tell why
            try:  # what the pipe still buffers goes nowhere ("Exception ignored ... BrokenPipeError" had followed)
                proc.stdin.close()
            except OSError:
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
        missing = [line[len(CANNOT_IMPORT):] for line in log if line.startswith(CANNOT_IMPORT)]
        if missing:  # sr-filter uninstalled from that Python, or the venv rebuilt without it: had been a traceback
            raise WorkerError("the Python that runs the sr-filter worker (%s) cannot import sr_filter (%s): run `%s` "
                              "with the Python that has sr-filter, then restart GIMP" % (python, missing[-1], INSTALL_COMMAND),
                              "ImportError")
        raise WorkerError(crash_message(python, status, reply.get("problem", ""), log), "WorkerCrash")
    head, data = reply["message"]
    if not head.get("ok"):
        raise WorkerError(str(head.get("error", "unknown error")), str(head.get("kind", "")))
    return head, data


def crash_message(python: str, status: int, problem: str, log: Sequence[str]) -> str:
    """What to tell the user when the worker ended without a reply: how it ended, then its last log lines."""
    if status < 0:  # POSIX: killed by a signal
        signals = {9: "SIGKILL: often the system stopping it for lack of memory; try a smaller tile size or image",
                   15: "SIGTERM", 11: "SIGSEGV: it crashed", 6: "SIGABRT: it aborted"}
        how = "was stopped by signal %d (%s)" % (-status, signals.get(-status, "see the log below"))
    else:
        how = "exited with status %s without a result" % status
        if status == 0 and problem:  # it ended normally but its answer was not one: say what was wrong with it
            how += " (%s)" % problem
    tail = "\n".join(line for line in log if line.strip())
    return "the sr-filter worker (%s) %s%s" % (python, how, "\n" + tail if tail else "")


def read_config(path: str) -> Dict[str, Any]:
    """The installer's JSON config next to the plug-in, or {} if there is none or it is unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def python_from_config(path: str) -> Optional[str]:
    """The interpreter named in the installer's JSON config, or None if there is none."""
    python = read_config(path).get("python")
    return python if isinstance(python, str) and python else None


def choices_from_config(path: str) -> Optional[Dict[str, Any]]:
    """The menu choices the installer wrote into its config, or None if absent or malformed."""
    try:
        return check_choices(read_config(path).get("choices"))
    except ProtocolError:
        return None

"""Worker process for the GIMP plug-in: ``python -m sr_filter.gimp.worker``.

Reads a request (see :mod:`sr_filter.gimp.protocol`) on stdin, upscales every image with
the public :class:`sr_filter.Upscaler`, writes the reply on stdout and progress on stderr.
It runs in the user's Python environment (where torch lives), not in GIMP's.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from typing import IO, Any, Dict, List, Optional, Tuple

import numpy as np

import sr_filter
from sr_filter.device import available_ram
from sr_filter.errors import ImageTooLargeError, SrFilterError, resource_failure
from sr_filter.gimp import protocol as proto
from sr_filter.manifest import load_manifest
from sr_filter.weights import ENV_OFFLINE

DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float32": np.float32}


def to_array(info: Dict[str, Any], data: bytes) -> np.ndarray:
    """Raw interleaved pixels -> HxWxC array of the announced dtype (writable; no copy of a bytearray)."""
    proto.image_nbytes(info)  # validates the entry
    arr = np.frombuffer(data, dtype=DTYPES[info["dtype"]])
    arr = arr.reshape(info["height"], info["width"], info["channels"])
    return arr if arr.flags.writeable else arr.copy()


def from_array(arr: np.ndarray) -> Tuple[Dict[str, Any], bytes]:
    """HxW or HxWxC array -> (header entry, raw interleaved pixels)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    name = {np.dtype(v): k for k, v in DTYPES.items()}.get(arr.dtype)
    if name is None:
        raise proto.ProtocolError("cannot send dtype %s" % arr.dtype)
    info = {"width": arr.shape[1], "height": arr.shape[0], "channels": arr.shape[2], "dtype": name}
    return info, np.ascontiguousarray(arr).tobytes()


def fit(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """The upscaled layer at the exact size the plug-in asked for (its edges scaled like the
    canvas's): a pixel or two cut off, or the edge pixels repeated."""
    h, w = arr.shape[:2]
    if abs(w - width) > proto.SIZE_SLACK or abs(h - height) > proto.SIZE_SLACK:
        raise proto.ProtocolError("asked for %dx%d, but the layer upscaled is %dx%d" % (width, height, w, h))
    if (h, w) == (height, width):
        return arr
    arr = arr[:height, :width]
    pad = ((0, height - arr.shape[0]), (0, width - arr.shape[1])) + ((0, 0),) * (arr.ndim - 2)
    return np.pad(arr, pad, mode="edge")


def resized_mask(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """A layer mask (HxWx1) resized to ``width`` x ``height``, its layer's new box: bicubic, as GIMP
    scales masks, but onto the box the layer's pixels fill (GIMP's own box for the layer was a pixel
    off it, and the mask came out shifted, with a transparent seam along one edge)."""
    from sr_filter import convert
    from sr_filter.resize import resize

    plane = convert.to_float(arr)[:, :, 0][None, None]
    return convert.from_float(resize(plane, height, width)[0, 0], arr.dtype)[:, :, None]


class _Warnings(logging.Handler):
    """The library's warning lines during one request, for the reply (the plug-in shows them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if line not in self.lines:
            self.lines.append(line)


def describe() -> Dict[str, Any]:
    """The plug-in's menu choices, from the manifest (the source of truth; no network).

    The presets in manifest order, then the models that ship inside sr-filter and that no
    preset already uses (e.g. ``sr-cartoon-x4``); the smallest tile the library accepts.
    """
    from sr_filter.tiling import MIN_TILE  # torch: only when asked

    manifest = load_manifest()
    presets = [(p.name, p.name.capitalize(), p.description) for p in manifest.presets.values()]
    used = {name for p in manifest.presets.values() for name in p.models}
    seen = set()
    for entry in manifest.models:
        if entry.packaged and entry.name not in used and entry.name not in seen:
            seen.add(entry.name)
            presets.append((entry.name, "%s (built-in)" % entry.name, entry.description))
    return proto.check_choices({"presets": presets, "default": manifest.default_preset, "min_tile": MIN_TILE})


def upscale_options(options: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[float]]:
    """Checked request options -> (sr_filter.Upscaler keyword arguments, scale).

    The values are the library's own (``tile`` 0 = whole image); empty ones take the
    library's defaults; a model file wins over the preset.
    """
    proto.check_options(options)
    kwargs: Dict[str, Any] = {"device": options.get("device") or "auto", "backend": options.get("backend") or "auto"}
    model = options.get("model") or options.get("preset")
    if model:
        kwargs["model"] = model
    if options.get("tile") is not None:
        kwargs["tile"] = options["tile"]
    if options.get("colour_fix") is not None:  # absent: the preset's choice
        kwargs["colour_fix"] = options["colour_fix"]
    if options.get("tta"):
        kwargs["tta"] = True
    if options.get("precision"):
        kwargs["precision"] = options["precision"]
    scale = options.get("scale")
    return kwargs, None if scale is None else float(scale)


def serve(stdin: IO[bytes], stdout: IO[bytes], stderr: IO[str]) -> int:
    """Handle one request; always answer with a reply header unless the output pipe is gone."""
    warnings = _Warnings()
    library_log = logging.getLogger("sr_filter")
    library_log.addHandler(warnings)
    try:
        return _serve(stdin, stdout, stderr, warnings)
    finally:
        library_log.removeHandler(warnings)


def _serve(stdin: IO[bytes], stdout: IO[bytes], stderr: IO[str], warnings: _Warnings) -> int:
    try:
        request, payloads = proto.read_request(stdin)
        if request["request"] == "describe":
            proto.write_message(stdout, {"ok": True, "choices": describe()})
            return 0
        from sr_filter import limits  # only for a well-formed upscale request

        kwargs, scale = upscale_options(request["options"])
        upscaler = sr_filter.Upscaler(**kwargs)  # loaded once for all layers
        have, held = available_ram(), 0  # the results wait for the last layer: each one counts against the next
        factor = scale or upscaler.scale
        for index, info in enumerate(request["images"]):
            named = proto.layer_label(info["name"]) if info.get("name") else "layer %d" % (index + 1)  # as the Layers dialog shows it
            itemsize = np.dtype(DTYPES[info["dtype"]]).itemsize
            try:
                limits.check_fits(("the mask of " if info.get("mask") else "") + named, info["width"], info["height"],
                                  info["channels"], factor, itemsize, model_scale=1 if info.get("mask") else upscaler.scale,
                                  available=max(have - held, 0))
            except ImageTooLargeError as exc:
                if not held:
                    raise
                before = "the result before it" if index == 1 else "the %d results before it" % index  # layers and masks
                size = "%.1f GiB" % (held / (1 << 30)) if held >= 1 << 30 else "%.1f MiB" % (held / (1 << 20))
                raise type(exc)("%s (%s, kept until the last one is done, take%s %s)"
                                % (exc, before, "s" if index == 1 else "", size)) from None
            pixels = info["width"] * info["height"] * info["channels"] * itemsize
            result = proto.scaled(info["width"], factor) * proto.scaled(info["height"], factor) * info["channels"] * itemsize
            held += max(result - pixels, 0)  # its own pixels are let go once it is done
        results: List[Tuple[Dict[str, Any], bytes]] = []
        for index, (info, data) in enumerate(zip(request["images"], payloads)):
            def progress(done: int, total: int, _i: int = index) -> bool:
                try:
                    stderr.write(proto.progress_line(_i, done, total) + "\n")
                    stderr.flush()
                except OSError:  # the plug-in is gone (GIMP cancelled it): stop
                    return False
                return True

            sizes = request["options"].get("sizes")
            if info.get("mask"):
                width, height = sizes[index] if sizes else (proto.scaled(info["width"], factor), proto.scaled(info["height"], factor))
                out = resized_mask(to_array(info, data), width, height)
            else:
                out = upscaler.upscale(to_array(info, data), scale=scale, progress=progress)
            payloads[index] = bytearray()  # the input pixels are no longer needed
            if sizes and not info.get("mask"):
                out = fit(out, *sizes[index])
            results.append(from_array(out))
        reply: Dict[str, Any] = {"ok": True, "images": [info for info, _ in results],
                                 "warnings": [for_gimp_user(line) for line in warnings.lines]}
        proto.write_message(stdout, reply, [data for _, data in results])
        return 0
    except Exception as exc:  # every failure becomes one JSON error line
        kind = type(exc).__name__
        message = str(exc) or kind
        if isinstance(exc, MemoryError):
            message = "out of memory: close other programs, or try a smaller scale or a smaller image"
        elif isinstance(exc, ImportError):  # torch or another package missing or broken: had been an "internal error"
            message = "%s (the plug-in's worker runs %s)" % (resource_failure(exc), sys.executable)
        elif not _is_user_error(exc):
            traceback.print_exc(file=stderr)
            message = "internal error in sr-filter (%s: %s)" % (kind, message)
        message = for_gimp_user(message)
        try:
            proto.write_message(stdout, {"ok": False, "error": message, "kind": kind})
        except OSError:
            pass
        return 1


def for_gimp_user(message: str) -> str:
    """``message`` with its advice made for GIMP's user: ``pip install`` naming the worker's
    interpreter (GIMP's user has several Pythons, and a plain `pip` installs into whichever comes
    first on PATH, rarely this one), and, for a server remembered as unreachable, the command that
    fetches the model now instead of an environment variable GIMP does not pass on."""
    message = re.sub(r"(?<!-m )(?<!uv )(?<![-\w])pip install", "%s -m pip install" % sys.executable, message)
    wanted = re.search(r"instead of ([\w.@-]+)", message)
    fetch = ("`sr-filter models --download %s` in a terminal fetches it now" % wanted.group(1) if wanted
             else "`sr-filter models --download NAME` in a terminal fetches a model now")
    return message.replace("set %s=0 to try now" % ENV_OFFLINE, fetch)


def _is_user_error(exc: BaseException) -> bool:
    """True for the library's own errors and protocol errors, whose message is for the user."""
    return isinstance(exc, (SrFilterError, proto.ProtocolError))


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: keep the reply channel private so stray prints cannot corrupt it."""
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # print() now goes to the log
    try:
        return serve(sys.stdin.buffer, reply, sys.stderr)
    finally:
        reply.close()


if __name__ == "__main__":
    sys.exit(main())

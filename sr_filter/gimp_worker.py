"""Worker process for the GIMP plug-in: ``python -m sr_filter.gimp_worker``.

Reads a request (see :mod:`sr_filter.gimp_protocol`) on stdin, upscales every image with
the public :class:`sr_filter.Upscaler`, writes the reply on stdout and progress on stderr.
It runs in the user's Python environment (where torch lives), not in GIMP's.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import IO, Any, Dict, List, Optional, Tuple

import numpy as np

import sr_filter
from sr_filter import gimp_protocol as proto
from sr_filter.errors import SrFilterError

MIN_TILE = 32  # sr_filter refuses smaller tiles; the plug-in's 0 means "auto", not "whole image"
DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float32": np.float32}


def to_array(info: Dict[str, Any], data: bytes) -> np.ndarray:
    """Raw interleaved pixels -> HxWxC array of the announced dtype (a copy, writable)."""
    proto.image_nbytes(info)  # validates the entry
    arr = np.frombuffer(data, dtype=DTYPES[info["dtype"]])
    return arr.reshape(int(info["height"]), int(info["width"]), int(info["channels"])).copy()


def from_array(arr: np.ndarray) -> Tuple[Dict[str, Any], bytes]:
    """HxW or HxWxC array -> (header entry, raw interleaved pixels)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    name = {np.dtype(v): k for k, v in DTYPES.items()}.get(arr.dtype)
    if name is None:
        raise proto.ProtocolError("cannot send dtype %s" % arr.dtype)
    info = {"width": arr.shape[1], "height": arr.shape[0], "channels": arr.shape[2], "dtype": name}
    return info, np.ascontiguousarray(arr).tobytes()


def upscale_options(options: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[float]]:
    """Request options -> (sr_filter.Upscaler keyword arguments, scale); empty values = defaults."""
    tile = int(options.get("tile") or 0)
    if 0 < tile < MIN_TILE:
        raise SrFilterError("tile size must be 0 (automatic) or at least %d pixels, not %d" % (MIN_TILE, tile))
    scale = options.get("scale")
    kwargs = {
        "model": options.get("model") or options.get("preset") or "photo",
        "device": options.get("device") or "auto",
        "tile": tile or "auto",
    }
    return kwargs, float(scale) if scale else None


def serve(stdin: IO[bytes], stdout: IO[bytes], stderr: IO[str]) -> int:
    """Handle one request; always answer with a reply header unless the output pipe is gone."""
    try:
        header, payloads = proto.read_message(stdin)
        if header.get("version") != proto.VERSION:
            raise proto.ProtocolError("protocol version %r, this worker speaks %d"
                                      % (header.get("version"), proto.VERSION))
        kwargs, scale = upscale_options(header.get("options") or {})
        upscaler = sr_filter.Upscaler(**kwargs)  # loaded once for all layers
        results: List[Tuple[Dict[str, Any], bytes]] = []
        for index, (info, data) in enumerate(zip(header["images"], payloads)):
            def progress(done: int, total: int, _i: int = index) -> bool:
                try:
                    stderr.write(proto.progress_line(_i, done, total) + "\n")
                    stderr.flush()
                except OSError:  # the plug-in is gone (GIMP cancelled it): stop
                    return False
                return True

            out = upscaler.upscale(to_array(info, data), scale=scale, progress=progress)
            results.append(from_array(out))
        reply: Dict[str, Any] = {"ok": True, "images": [info for info, _ in results]}
        proto.write_message(stdout, reply, [data for _, data in results])
        return 0
    except Exception as exc:  # every failure becomes one JSON error line
        kind = type(exc).__name__
        message = str(exc) or kind
        if isinstance(exc, MemoryError):
            message = "out of memory: try a smaller tile size or a smaller image"
        elif not _is_user_error(exc):
            traceback.print_exc(file=stderr)
            message = "internal error in sr-filter (%s: %s)" % (kind, message)
        try:
            proto.write_message(stdout, {"ok": False, "error": message, "kind": kind})
        except OSError:
            pass
        return 1


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

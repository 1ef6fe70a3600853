"""Frame streams for shell pipelines: YUV4MPEG2 (``.y4m``) and concatenated PNG (``image2pipe``).

``ffmpeg -i in.mkv -f yuv4mpegpipe - | sr-filter - -o - --format y4m | ffmpeg -i - out.mkv``:
frames are read, upscaled and written one at a time (through the same overlapping stages as
video files), so memory stays constant whatever the length. The Y4M header is kept (frame rate,
aspect, chroma layout, X-parameters) with the new size; interlaced frames are upscaled whole and
marked progressive, with a notice.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..atomic import write_all
from ..errors import VideoFormatError
from ..metadata import sides_scale
from ..sizing import nearest_multiple
from ..stdio import refuse_closed
from . import batches, interlace_line, pipeline

log = logging.getLogger("sr_filter")

MAGIC = b"YUV4MPEG2"
_LAYOUTS = {  # C parameter -> (chroma step in x, chroma step in y, bits)
    "420jpeg": (2, 2, 8), "420paldv": (2, 2, 8), "420mpeg2": (2, 2, 8), "420": (2, 2, 8),
    "422": (2, 1, 8), "444": (1, 1, 8), "mono": (0, 0, 8),
    "420p10": (2, 2, 10), "422p10": (2, 1, 10), "444p10": (1, 1, 10), "mono10": (0, 0, 10),
}
_MAX_SIDE = 1 << 15


@dataclass
class Y4mHeader:
    width: int
    height: int
    colour: str = "420jpeg"
    params: list[str] = field(default_factory=list)  # every parameter as written (W, H replaced on output)

    @property
    def layout(self) -> tuple[int, int, int]:
        return _LAYOUTS[self.colour]

    def frame_bytes(self) -> int:
        sx, sy, bits = self.layout
        size = 2 if bits > 8 else 1
        luma = self.width * self.height
        chroma = 0 if not sx else 2 * (-(-self.width // sx)) * (-(-self.height // sy))
        return (luma + chroma) * size

    @property
    def interlaced(self) -> str | None:
        """"top", "bottom" or "mixed" for an interlaced stream (I parameter t, b or m); None when progressive."""
        order = next((p[1:2] for p in self.params if p[0] == "I"), "p")
        return {"t": "top", "b": "bottom", "m": "mixed"}.get(order)

    def full_range(self) -> bool:
        return "XCOLORRANGE=FULL" in self.params

    def encode(self) -> bytes:
        fields = [f"W{self.width}" if p[0] == "W" else f"H{self.height}" if p[0] == "H" else p for p in self.params]
        return " ".join(["YUV4MPEG2", *fields]).encode("latin-1") + b"\n"  # as read: any byte passes through


def read_header(stream: BinaryIO) -> Y4mHeader:
    line = stream.readline(4096)
    if not line:
        raise VideoFormatError("the input is empty: no YUV4MPEG2 stream came in")
    if line.startswith(MAGIC + b" ") and not line.endswith(b"\n"):
        where = "within 4096 bytes" if len(line) >= 4096 else "before the input ends"
        raise VideoFormatError(f"the YUV4MPEG2 header has no end of line {where}: the stream is cut short or damaged")
    if not line.startswith(MAGIC + b" "):
        from ..sniff import is_image_prefix

        if is_image_prefix(line + stream.read(16)):  # `sr-filter photo.png -o - --format y4m`: an image where a stream was asked for
            raise VideoFormatError("the input is an image, and --format y4m upscales a YUV4MPEG2 frame stream into one; "
                                   "for an image choose an image --format (png, jpg, ...)")
        raise VideoFormatError("the input is not a YUV4MPEG2 stream (it must start with 'YUV4MPEG2 ')")
    # split on spaces alone: X parameters may hold any bytes (UTF-8 text), kept as they are (str.split()
    # had also split at bytes that are whitespace in latin-1, 0x85 and 0xa0, inside UTF-8 letters)
    fields = [f for f in line.rstrip(b"\r\n").decode("latin-1").split(" ")[1:] if f]
    values = {f[0]: f[1:] for f in fields if f[0] in "WHC"}
    try:
        width, height = int(values["W"]), int(values["H"])
    except (KeyError, ValueError):
        raise VideoFormatError("the YUV4MPEG2 header lacks a valid width (W) or height (H)") from None
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise VideoFormatError(f"the YUV4MPEG2 header claims {width}x{height} frames, which is not a usable size")
    colour = values.get("C", "420jpeg")
    if colour not in _LAYOUTS:
        raise VideoFormatError(f"YUV4MPEG2 colour layout C{colour} is not supported; use one of {', '.join(_LAYOUTS)}")
    return Y4mHeader(width, height, colour, fields)


def read_frames(stream: BinaryIO, header: Y4mHeader) -> Iterator[np.ndarray]:
    """RGB frames (uint8, or uint16 for 10-bit layouts) until the stream ends."""
    size = header.frame_bytes()
    number = 0
    while True:
        marker = stream.readline(4096)
        if not marker:
            return
        if not marker.startswith(b"FRAME"):
            raise VideoFormatError(f"the YUV4MPEG2 stream is damaged at frame {number} (no FRAME marker)")
        data = stream.read(size)
        if len(data) < size:
            raise VideoFormatError(f"the YUV4MPEG2 stream ends in the middle of frame {number}")
        yield yuv_to_rgb(data, header)
        number += 1


def _matrix(height: int) -> tuple[float, float]:
    return (0.299, 0.114) if height < 720 else (0.2126, 0.0722)


def yuv_to_rgb(data: bytes, header: Y4mHeader) -> np.ndarray:
    sx, sy, bits = header.layout
    w, h = header.width, header.height
    samples = np.frombuffer(data, dtype="<u2" if bits > 8 else np.uint8).astype(np.float32)
    y = samples[: w * h].reshape(h, w)
    unit = 2 ** (bits - 8)
    if header.full_range():
        y = y / (2**bits - 1)
    else:
        y = (y - 16 * unit) / (219 * unit)
    if sx:
        cw, ch = -(-w // sx), -(-h // sy)
        planes = samples[w * h :].reshape(2, ch, cw)
        scale = (2**bits - 1) if header.full_range() else 224 * unit
        cb, cr = ((planes - 128 * unit) / scale).repeat(sy, axis=1).repeat(sx, axis=2)[:, :h, :w]
    else:
        cb = cr = np.zeros_like(y)
    kr, kb = _matrix(h)
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    rgb = np.clip(np.stack([r, g, b], axis=-1), 0, 1)
    return np.rint(rgb * (65535 if bits > 8 else 255)).astype(np.uint16 if bits > 8 else np.uint8)


def rgb_to_yuv(rgb: np.ndarray, header: Y4mHeader, matrix_height: int) -> bytes:
    sx, sy, bits = header.layout
    x = rgb.astype(np.float32) / (65535 if rgb.dtype == np.uint16 else 255)
    kr, kb = _matrix(matrix_height)
    y = kr * x[..., 0] + (1 - kr - kb) * x[..., 1] + kb * x[..., 2]
    unit, top = 2 ** (bits - 8), 2**bits - 1
    full = header.full_range()
    planes = [y * top if full else 16 * unit + 219 * unit * y]
    if sx:
        cb = (x[..., 2] - y) / (2 * (1 - kb))
        cr = (x[..., 0] - y) / (2 * (1 - kr))
        for c in (cb, cr):
            h, w = c.shape
            c = np.pad(c, ((0, -h % sy), (0, -w % sx)), mode="edge")
            c = c.reshape(c.shape[0] // sy, sy, c.shape[1] // sx, sx).mean(axis=(1, 3))
            planes.append(128 * unit + c * (top if full else 224 * unit))
    dtype = "<u2" if bits > 8 else np.uint8
    return b"".join(np.clip(np.rint(p), 0, top).astype(dtype).tobytes() for p in planes)


def upscale_y4m(source: BinaryIO, target: BinaryIO, upscaler: Any, scale: float | None = None) -> int:
    """Upscale a Y4M stream (:data:`~.batches.FRAME_BATCH` frames per network pass); returns the
    number of frames written."""
    header = read_header(source)
    factor = upscaler.check_scale(scale)
    sx, sy, _ = header.layout
    # on the chroma grid, halves up as sizing.scaled_length rounds
    width = max(2, nearest_multiple(header.width * factor, max(sx, 1)))
    height = max(2, nearest_multiple(header.height * factor, max(sy, 1)))
    params = header.params
    if header.interlaced:
        order = "mixed field order" if header.interlaced == "mixed" else f"{header.interlaced} field first"
        log.warning("%s", interlace_line("the stream", order))
        params = ["Ip" if p[0] == "I" else p for p in params]
    out = Y4mHeader(width, height, header.colour, params)
    count = [0]

    def consume(frames) -> None:
        write_all(target, out.encode())
        for frame in frames:
            write_all(target, b"FRAME\n")
            # the matrix of the written size: a stream carries none, and what reads it takes BT.709 from
            # 720 lines (an SD stream upscaled to HD had kept BT.601's values, its colours shifted there)
            write_all(target, rgb_to_yuv(frame, out, out.height))
            count[0] += 1
        target.flush()

    def work(group: list[np.ndarray]) -> list[np.ndarray]:
        return [batches.fit(big, (width, height)) for big in upscaler.upscale_batch(group, scale)]

    size = batches.FRAME_BATCH
    pipeline.run(batches.chunks(read_frames(source, header), size, lambda _: True), work,
                 lambda groups: consume(batches.flatten(groups)), depth=batches.queue_depth(size))
    if not count[0]:  # a header alone: the program upstream made no frame, which a pipeline must hear of
        raise VideoFormatError("the YUV4MPEG2 stream is empty: a header and no frame came in")
    return count[0]


def read_pngs(stream: BinaryIO) -> Iterator[bytes]:
    """Split concatenated PNG files (what ``ffmpeg -f image2pipe -c:v png`` writes)."""
    signature = b"\x89PNG\r\n\x1a\n"
    number = 0
    while True:
        head = stream.read(8)
        if not head:
            return
        if head != signature:
            if not number and head.startswith(MAGIC[:8]):
                raise VideoFormatError("the input is a YUV4MPEG2 frame stream, not a PNG stream; use --format y4m")
            if not number:  # a TIFF or JPEG piped in with --format png-stream had been "damaged at image 0"
                from ..sniff import image_format

                kind = image_format(head + stream.read(8))
                if kind is not None:
                    raise VideoFormatError(f"the input is a {kind} image, and --format png-stream upscales a stream of "
                                           "PNG images; for one image choose an image --format (png, jpg, ...)")
            raise VideoFormatError(f"the PNG stream is damaged at image {number} (no PNG signature)")
        parts = [head]
        while True:
            chunk_head = stream.read(8)
            if len(chunk_head) < 8:
                raise VideoFormatError(f"the PNG stream ends in the middle of image {number}")
            length = int.from_bytes(chunk_head[:4], "big")
            body = stream.read(length + 4)
            if len(body) < length + 4:
                raise VideoFormatError(f"the PNG stream ends in the middle of image {number}")
            parts += [chunk_head, body]
            if chunk_head[4:] == b"IEND":
                break
        yield b"".join(parts)
        number += 1


def upscale_png_stream(source: BinaryIO, target: BinaryIO, upscaler: Any, scale: float | None = None) -> int:
    """Upscale every PNG of a concatenated stream, writing each as soon as it is done."""
    from .. import imageio

    count = [0]

    def work(data: bytes) -> bytes:
        factor = upscaler.check_scale(scale)
        array, meta = imageio.read_image(data, scale=factor, model_scale=upscaler.scale)
        result = upscaler.upscale_array(array, scale)
        return imageio.encode_image(result, "PNG", meta, scale=sides_scale(array.shape, result.shape))

    def consume(images) -> None:
        for data in images:
            write_all(target, data)
            count[0] += 1
        target.flush()

    pipeline.run(read_pngs(source), work, consume)
    if not count[0]:  # as an empty YUV4MPEG2 stream is: nothing came, which a pipeline must hear of
        raise VideoFormatError("the PNG stream is empty: no image came in")
    return count[0]


def run_cli(inputs: list[str], output: str | None, fmt: str, upscaler: Any, *, scale: float | None, overwrite: bool = False) -> None:
    """``sr-filter - -o - --format y4m`` (or files): standard streams unless names are given."""
    if len(inputs) != 1:
        raise VideoFormatError("a frame stream takes exactly one input ('-' for standard input)")
    to_stdout = output in (None, "-")
    refuse_closed(reads_stdin=inputs[0] == "-", writes_stdout=to_stdout)  # `<&-`: one line (it had been a traceback)
    if inputs[0] == "-" and sys.stdin.isatty():
        raise VideoFormatError("'-' reads a frame stream from standard input, which is a terminal; pipe one into it")
    if to_stdout and sys.stdout.isatty():
        raise VideoFormatError("refusing to write a frame stream to a terminal; redirect standard output")
    source = sys.stdin.buffer if inputs[0] == "-" else open(inputs[0], "rb")  # noqa: SIM115 - closed below
    try:
        if to_stdout:
            _run(fmt, source, sys.stdout.buffer, upscaler, scale)
        else:
            from .job import atomic_file

            with atomic_file(Path(output), overwrite) as target:
                _run(fmt, source, target, upscaler, scale)
    finally:
        if source is not sys.stdin.buffer:
            source.close()


def _run(fmt: str, source: BinaryIO, target: BinaryIO, upscaler: Any, scale: float | None) -> int:
    return (upscale_y4m if fmt == "y4m" else upscale_png_stream)(source, target, upscaler, scale)

"""The cluster worker: loads the model once, then turns one input file into one output file.

It uses the library's own I/O (:func:`sr_filter.imageio.read_image`, ``encode_image``) so alpha,
16-bit samples and ICC/EXIF/DPI come through as on one machine, and publishes each output whole
or not at all (:func:`sr_filter.cluster.storage.write_once`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import atomic
from ..errors import OutputExistsError, SrFilterError, first_line
from . import storage

_S = TypeVar("_S", bound="Settings")


@dataclass(frozen=True)
class Settings:
    """What every worker needs to build the same :class:`~sr_filter.Upscaler`."""

    model: str | None = None
    scale: float | None = None
    device: str = "cpu"
    precision: str = "auto"
    backend: str = "auto"
    tile: int | str = "auto"
    offline: bool | None = None
    fmt: str | None = None
    quality: int | None = None
    threads: int = 1
    tta: bool = False
    denoise: float | None = None
    colour_fix: bool | None = None  # None: the preset's choice
    size: tuple[int | None, int | None] = (None, None)  # (width, height) to fit, instead of scale

    @classmethod
    def from_keywords(cls: type[_S], keywords: Mapping[str, Any], **chosen: Any) -> _S:
        """The settings in a public function's ``keywords`` (its ``locals()`` on entry): each
        field of the same name, ``model`` else ``preset``; ``chosen`` overrides (what the driver
        picked, such as a video's codec). One place, so a new option is a field here and a
        keyword of the function, nothing more."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {name: keywords[name] for name in names if name in keywords}
        values["model"] = keywords.get("model") or keywords.get("preset")
        return cls(**{**values, **chosen})


@dataclass(frozen=True)
class Outcome:
    """What became of one task: ``done``, ``exists`` (written by another attempt) or ``failed``."""

    task: storage.Task
    status: str
    message: str = ""
    seconds: float = 0.0
    worker: int = 0  # the worker's process id
    #: what making the file warned of (a flattened alpha channel, metadata the format cannot hold),
    #: a line about the file's content naming it as one machine does: a worker's own log reaches no one
    notices: tuple[str, ...] = ()


def convert(upscaler, data: bytes, name: str, target: str, settings: Settings) -> bytes:
    """Decode ``data``, upscale it and encode it for ``target``: one file, as the CLI does it
    (:func:`sr_filter.imagefile.upscale_image_file`), an output too large for its format refused
    before the work."""
    from .. import imageio
    from ..imagefile import upscale_image_file

    out_format = imageio.format_for(target.rsplit("/", 1)[-1], settings.fmt)
    return upscale_image_file(upscaler, data, out_format=out_format, scale=settings.scale, size=settings.size,
                              quality=settings.quality, name=name)


@contextlib.contextmanager
def _warnings_into(lines: list[str], name: str | None = None) -> Iterator[None]:
    """Collect the package's warning lines while the block runs (each once); a line about a
    file's content (``extra=PER_FILE``) starts with ``name``, as one machine's batch names it."""

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            line = record.getMessage()
            if line.startswith("waiting for another process"):  # workers of one node share a cache: over by now
                return
            if name and getattr(record, "per_file", False) and name not in line:
                line = f"{name}: {line}"
            if line not in lines:
                lines.append(line)

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("sr_filter")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


class UpscaleWorker:
    """A Ray actor body (wrapped with ``ray.remote`` by the scheduler). A model that cannot load
    is remembered, not raised, so the driver can show its one-line message."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.error = ""
        self.upscaler = None
        #: what loading the model warned of (a built-in model used instead of the one asked for),
        #: for the driver to show: a worker's own log reaches no one
        self.notices: list[str] = []
        with _warnings_into(self.notices):
            self._load(settings)

    def _load(self, settings: Settings) -> None:
        try:
            from ..device import set_cpu_threads
            from ..upscaler import Upscaler

            set_cpu_threads(settings.threads)
            self.upscaler = Upscaler(settings.model, device=settings.device, precision=settings.precision, tile=settings.tile, offline=settings.offline,
                                     backend=settings.backend, tta=settings.tta, denoise=settings.denoise,
                                     colour_fix=settings.colour_fix)
            # a scale the model cannot give (x4 of a 1x model) is one line before the job, not
            # the same failure file by file
            self.upscaler.check_scale(settings.scale)
        except SrFilterError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the driver shows one line
            self.error = f"the model could not be loaded on a worker: {first_line(exc)}"

    def ready(self) -> tuple[str, str, int, str, list[str], str]:
        """``(error or "", model description, process id, Ray node id, notices, temporary-file tag)``:
        the driver shows the model and the notices, waits on this process when it stops the worker
        (:mod:`sr_filter.cluster.stop`), and removes the temporary files of this process id *and*
        machine once it has stopped (another node's live writer may have the same id)."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        up = self.upscaler
        described = f"{up.describe()}, licence {up.model.license}" if up is not None else ""
        return self.error, described, os.getpid(), node, self.notices, atomic.HOST_TAG

    def run(self, task: storage.Task) -> Outcome:
        notices: list[str] = []
        with _warnings_into(notices, task.source):
            outcome = self._run(task)
        return dataclasses.replace(outcome, notices=tuple(notices))

    def _run(self, task: storage.Task) -> Outcome:
        started = time.monotonic()
        if self.upscaler is None:  # the model did not load on this worker's node
            return Outcome(task, "failed", self.error, worker=os.getpid())
        try:
            if storage.check_output(task.target):
                return Outcome(task, "exists", worker=os.getpid())
            self.make(task)
        except OutputExistsError:
            return Outcome(task, "exists", seconds=time.monotonic() - started, worker=os.getpid())
        except MemoryError:
            return Outcome(task, "failed", "ran out of memory; use a smaller scale", time.monotonic() - started, os.getpid())
        except SrFilterError as exc:
            return Outcome(task, "failed", str(exc), time.monotonic() - started, os.getpid())
        except Exception as exc:  # noqa: BLE001 - one file's surprise must not stop the others
            return Outcome(task, "failed", f"{type(exc).__name__}: {first_line(exc)}", time.monotonic() - started, os.getpid())
        return Outcome(task, "done", seconds=time.monotonic() - started, worker=os.getpid())

    def make(self, task: storage.Task) -> None:
        """Write ``task.target`` from ``task.source``, whole or not at all, never over a file."""
        data = storage.read_bytes(task.source)
        encoded = convert(self.upscaler, data, task.source, task.target, self.settings)
        storage.write_once(encoded, task.target)

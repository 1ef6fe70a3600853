"""Upscale whole collections on a Ray cluster: the same files as on one machine, spread out.

>>> from sr_filter.cluster import upscale_folder
>>> summary = upscale_folder("scans/", "scans_x4/", preset="photo", address="auto")
>>> summary.done, summary.skipped, summary.failed
>>> upscale_video("episode.mkv", "episode_x4.mkv", preset="cartoon")  # segments on different workers

Ray is an optional extra (``pip install '.[cluster]'`` in the sr-filter folder); importing this package does not
import it. See docs/cluster.md for running on many machines.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Callable

from ..datasets import left_out_text
from ..errors import ClusterError
from . import storage
from .connect import INSTALL_HINT
from .scheduler import Event, Interrupted, Summary
from .video import upscale_video
from .worker import Settings

log = logging.getLogger(__name__)

__all__ = ["ClusterError", "Event", "INSTALL_HINT", "Interrupted", "Summary", "plan", "upscale_folder", "upscale_video"]


def plan(inputs: str | os.PathLike | list, output: str | os.PathLike, *, fmt: str | None = None,
         unreadable: list[tuple[str, str]] | None = None) -> tuple[list[storage.Task], int]:
    """The files still to do and how many are skipped because their output exists (resume);
    subfolders that cannot be read go into ``unreadable`` (else they stop the listing)."""
    from .connect import import_ray

    import_ray()  # the install hint comes before anything else
    output = storage.locations(output, "output")[0]
    left_out: Counter = Counter()
    tasks = storage.list_tasks(storage.locations(inputs, "inputs"), output, fmt, left_out, unreadable)
    line = left_out_text(left_out)
    if line:  # as on one machine (the cluster had said nothing of them)
        log.warning("%s", line)
    done = storage.finished(tasks, output)
    todo = [t for t in tasks if t.target not in done]
    return todo, len(tasks) - len(todo)


def upscale_folder(
    src: str | os.PathLike | list,
    dst: str | os.PathLike,
    *,
    preset: str | None = None,
    model: str | None = None,
    scale: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    backend: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    fmt: str | None = None,
    quality: int | None = None,
    tta: bool = False,
    denoise: float | None = None,
    colour_fix: bool | None = None,
    size: tuple[int | None, int | None] = (None, None),
    address: str | None = "auto",
    workers: int | None = None,
    cpus_per_worker: int = 1,
    num_cpus: int | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    on_ready: Callable[[str, list[str]], None] | None = None,
) -> Summary:
    """Upscale every image under ``src`` (folders, files, glob patterns; local paths on a shared
    file system or URIs such as ``s3://bucket/scans``) into ``dst``, keeping relative paths.
    The model settings are :class:`~sr_filter.Upscaler`'s (``tta``, ``denoise``, ``colour_fix`` included); ``size``
    = ``(width, height)`` fits each image inside them instead of ``scale``.

    ``address``: ``"auto"`` joins ``RAY_ADDRESS`` if set, else starts a local cluster (of
    ``num_cpus`` cores); or ``HOST:PORT`` / ``ray://HOST:PORT``. Outputs that exist are skipped,
    so running again resumes. One worker per GPU, else per ``cpus_per_worker`` cores (at most
    ``workers``), each loading the model once. A file that fails is reported through ``on_event``
    and in the summary while the rest go on; files of a lost worker go to another. ``on_plan``
    hears ``(files to do, files skipped)`` once the inputs are listed, ``on_ready`` ``(the model's
    description, the warnings of loading it)`` once the workers have loaded it. On Ctrl-C,
    raises :class:`Interrupted` after stopping the workers: no output is left half-written.
    """
    keywords = dict(locals())
    from .. import atomic, imageio
    from . import scheduler
    from .connect import check_address

    scheduler.check_job(workers=workers, cpus_per_worker=cpus_per_worker, num_cpus=num_cpus, tta=tta, address=address,
                        scale=scale, quality=quality, size=size, on_event=on_event, on_plan=on_plan, on_ready=on_ready)
    src, dst = storage.locations(src, "src"), storage.locations(dst, "dst")
    if len(dst) != 1:
        raise ClusterError(f"dst must be one output folder (a path or URI), not {len(dst)}")
    dst = dst[0]
    imageio.check_format(fmt, "fmt")  # as upscale_file refuses it: every file had failed on the workers
    check_address(address)
    with atomic.new_folders():  # output folders a job that writes nothing made are removed, as on one machine
        return _run_folder(src, dst, Settings.from_keywords(keywords), address=address, fmt=fmt, workers=workers,
                           cpus_per_worker=cpus_per_worker, num_cpus=num_cpus, on_event=on_event, on_plan=on_plan,
                           on_ready=on_ready)


def _run_folder(src: list[str], dst: str, settings: Settings, *, address: str | None, fmt: str | None, workers: int | None,
                cpus_per_worker: int, num_cpus: int | None, on_event: Callable[[Event], None] | None,
                on_plan: Callable[[int, int], None] | None, on_ready: Callable[[str, list[str]], None] | None) -> Summary:
    """List, check the output folder, and run the checked job on the cluster."""
    from . import scheduler
    from .connect import connect, disconnect

    unreadable: list[tuple[str, str]] = []
    tasks, skipped = plan(src, dst, fmt=fmt, unreadable=unreadable)
    for _, message in unreadable:  # failed alone, as on one machine; the rest goes on
        log.error("error: %s", message)
    storage.check_writable(dst)
    if on_plan is not None:
        on_plan(len(tasks), skipped)
    if not tasks:
        return Summary(skipped=skipped, failed=list(unreadable))
    started = connect(address, num_cpus=num_cpus)
    try:
        summary = scheduler.run(tasks, settings, workers=workers, cpus_per_worker=cpus_per_worker, on_event=on_event,
                                on_ready=on_ready)
    except Interrupted as stop:
        stop.summary.skipped += skipped
        raise
    finally:
        disconnect(started)
    summary.skipped += skipped
    summary.failed += unreadable
    return summary

"""``upscale_video`` on a Ray cluster: segments upscaled on different workers, joined on the driver.

>>> from sr_filter.cluster import upscale_video
>>> result = upscale_video("episode.mkv", "episode_x4.mkv", preset="cartoon", address="auto")

The driver plans keyframe-aligned segments (:mod:`sr_filter.cluster.segments`), hands them to
model-holding workers through the same queue as images (retries on a lost worker, exactly-once
files), then joins the finished segments with the source's audio, subtitle and attachment
streams copied, without re-encoding (:func:`sr_filter.video.resume.join`), and publishes the
output atomically. Segments live in ``.NAME.parts/`` beside the output with a ``job.json``;
run the same job again after the driver stops and finished segments are kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from ..errors import ClusterError, OutputExistsError, VideoFormatError
from . import segments
from .scheduler import Event, Interrupted, Summary

log = logging.getLogger("sr_filter")

#: frames per segment at least (a segment ends before a source keyframe): ~20 s at 30 fps, long
#: enough that starting an encoder and seeking are small next to the work, short enough to spread
SEGMENT_FRAMES = 600


def upscale_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    preset: str | None = None,
    model: str | None = None,
    scale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    backend: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    codec: str | None = None,
    crf: int | None = None,
    tta: bool = False,
    denoise: float | None = None,
    colour_fix: bool | None = None,
    address: str | None = "auto",
    workers: int | None = None,
    cpus_per_worker: int = 1,
    num_cpus: int | None = None,
    segment_frames: int | None = None,
    batch: int | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    on_ready: Callable[[str, list[str]], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> Summary:
    """Upscale the video ``src`` into ``dst`` on the cluster: the same frames, timestamps and
    copied streams as :func:`sr_filter.video.upscale_video` with ``resume=True`` on one machine.

    Both paths must be on a file system every node mounts at the same place. Each segment is one
    task (``on_event`` hears each; ``on_plan`` hears ``(segments to do, segments kept)``,
    ``on_ready`` the model's description and the warnings of loading it, as for images, which
    ``notice`` hears instead where no ``on_ready`` is given); a
    failed segment leaves the output unwritten and the finished segments kept for a rerun. The
    output is never replaced. ``batch`` frames of a segment go through the network together
    (default :data:`sr_filter.video.batches.FRAME_BATCH`), grouped as on one machine.
    ``width``/``height`` pick the scale that fits the picture, as players show it, inside them
    instead of ``scale``, as on one machine. ``notice`` hears what the output cannot keep (default: the log), before the upscale. Returns the :class:`Summary` of the segments, with ``frames``,
    ``dropped`` (streams the container cannot hold), ``converted`` (text subtitles converted for it) and ``path`` set on it.
    """
    keywords = dict(locals())
    from ..models import expected_scale
    from ..video import batches, encode, source
    from ..video.job import _fitting, size_notice
    from .connect import check_address, connect, disconnect, import_ray

    from .scheduler import check_job

    check_job(workers=workers, cpus_per_worker=cpus_per_worker, num_cpus=num_cpus, tta=tta, address=address, scale=scale,
              size=(width, height),
              segment_frames=segment_frames, on_event=on_event, on_plan=on_plan, on_ready=on_ready, notice=notice)
    batches.check_batch(batch)
    import_ray()
    for location in (str(src), str(dst)):
        if "://" in location:
            raise ClusterError(f"{location}: videos on a cluster are read and written on a shared file system; give a path every node mounts")
    given = os.fspath(src)  # messages name it as given, as on one machine; the workers read the absolute path
    src, dst = Path(src).resolve(), Path(dst).resolve()
    muxer = encode.container_for(dst)
    if dst.exists():
        raise OutputExistsError(f"{dst} exists; remove it or choose another output name")
    container = source.open_video(given)
    try:
        info = source.describe(container, given, scale=1.0)  # the driver holds no upscaled frames
        family = encode.choose_codec(codec, info.codec, muxer)
        ignored = encode.check_crf(family, crf)  # as on one machine: the workers' encoder had clamped it
        first = source.first_frame(container)
        info.rotation = source.rotation(first)
    finally:
        container.close()
    check_address(address)  # after the job's own checks (a crf out of range is said at once), before any notice
    if ignored:  # a crf the codec has no use for (ffv1), said first as on one machine
        (notice or log.warning)(ignored)
    info.steady = encode.steady_time_base(src, muxer, notice or log.warning)
    encode.settle_alpha(info, family, muxer)
    for line in encode.notices(info, family, muxer):  # as on one machine
        (notice or log.warning)(line)
    # what the output leaves out or converts, before the upscale as on one machine (said after the join, they had come last)
    said = encode.foreseen_changes(src, muxer, family, info, crf)
    encode.say_changes(*said, notice or log.warning)
    if first is not None:  # what the workers' frames show, said once here as one machine says it (none had been)
        source.say_static_hdr(first, given, notice or log.warning)
    keeps_sar, asked = encode.keeps_sar(muxer, encode.ENCODERS[family][0]), None
    if width or height:  # the scale that fits, on even sizes, as on one machine
        scale, asked, _ = _fitting(Path(given), width, height, keeps_sar=keeps_sar)
    factor = scale or expected_scale(model or preset)  # None for a weights file: its scale is known once it loads
    rounded = factor and size_notice(info, float(factor), keeps_sar, lambda: info.rotation, asked)
    if rounded:  # an odd size rounded to an even one, as one machine says it (the cluster had said nothing)
        (notice or log.warning)(rounded)
    frames = segment_frames or SEGMENT_FRAMES
    planned = segments.plan(str(src), frames, name=given, notice=notice or log.warning)
    parts = _parts(src, dst, {"model": model or preset, "scale": scale, "codec": family, "crf": crf, "segment_frames": frames,
                              "tta": tta, "denoise": denoise, "colour_fix": colour_fix})  # a changed setting starts over: segments are never mixed
    tasks = [dataclasses.replace(span, target=str(parts / segments.segment_name(span.first, span.end))) for span in planned]
    todo = [t for t in tasks if not Path(t.target).exists()]
    if on_plan is not None:
        on_plan(len(todo), len(tasks) - len(todo))
    summary = Summary(skipped=len(tasks) - len(todo))
    if todo:
        settings = segments.VideoSettings.from_keywords(keywords, codec=family, steady=info.steady, alpha=info.alpha, scale=scale)
        try:
            started = connect(address, num_cpus=num_cpus)
            try:
                if on_ready is None and notice is not None:  # loading's warnings are the job's too, as on one machine
                    on_ready = lambda model, lines: [notice(line) for line in lines]  # noqa: E731
                ran = _run(todo, settings, workers, cpus_per_worker, on_event, on_ready, parts)
            finally:
                disconnect(started)
        except Interrupted as stop:
            stop.summary.skipped += summary.skipped
            _drop_if_unused(parts)
            raise
        except BaseException:
            _drop_if_unused(parts)  # failed before any segment (no cluster, a model no worker loads)
            raise
        ran.skipped += summary.skipped
        summary = ran
    if summary.failed:
        return summary
    summary.dropped, summary.converted = _join(tasks, src, dst, muxer, info, notice)
    encode.say_new_changes(summary.dropped, summary.converted, said, notice or log.warning)
    summary.frames, summary.path = planned[-1].end, str(dst)
    shutil.rmtree(parts, ignore_errors=True)
    return summary


def _run(todo, settings, workers, cpus_per_worker, on_event, on_ready, parts: Path) -> Summary:
    from . import scheduler

    busy: list[str] = []  # segments of workers still running after the stop: their scratch stays
    try:
        return scheduler.run(todo, settings, workers=workers, cpus_per_worker=cpus_per_worker, on_event=on_event,
                             on_ready=on_ready, worker_class=segments.SegmentWorker)
    except Interrupted as stop:
        busy = stop.busy
        raise
    finally:
        kept = tuple(f".{Path(target).name}." for target in busy)
        for leftover in parts.glob(".seg-*.tmp"):  # scratch folders of killed or stopped workers
            if not leftover.name.startswith(kept):
                shutil.rmtree(leftover, ignore_errors=True)


def _parts(src: Path, dst: Path, settings: dict) -> Path:
    """The job's segment folder; a folder of a different job (another source, model, codec or
    segment length) is emptied first so outputs never mix."""
    from ..video import resume

    parts = resume.parts_folder(dst)
    stat = src.stat()
    job = {"cluster": 1, "source": str(src), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, **settings}
    manifest = parts / "job.json"
    try:
        if parts.exists() and (not manifest.exists() or json.loads(manifest.read_text()) != job):
            shutil.rmtree(parts)
        parts.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(job))
    except (OSError, ValueError) as exc:
        raise VideoFormatError(f"cannot write the segment folder {parts}: {getattr(exc, 'strerror', None) or exc}") from None
    return parts


def _drop_if_unused(parts: Path) -> None:
    """Remove the job's segment folder when it holds no finished segment (only ``job.json``, and
    scratch of stopped workers, which the sweep keeps only while one may still write)."""
    if not any(parts.glob("seg-*.seg")) and not any(parts.glob(".seg-*.tmp")):
        shutil.rmtree(parts, ignore_errors=True)


def _join(tasks: list[segments.Segment], src: Path, dst: Path, muxer: str, info, notice=None) -> tuple[list[str], list[str]]:
    """Interleave the finished segments and the source's copied streams into ``dst``, atomically."""
    from ..video import resume
    from ..video.job import written

    with written(dst, overwrite=False) as tmp:
        return resume.join([(t.first, t.end, Path(t.target)) for t in tasks], src, str(tmp), muxer, info, notice)

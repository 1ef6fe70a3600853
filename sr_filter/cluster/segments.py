"""A long video as cluster tasks: keyframe-aligned segments planned on the driver, each one
decoded, upscaled and encoded by a worker into the job's shared parts folder.

The driver plans from the packet index alone (timestamps and keyframe flags, no decoding) with
the single-machine rule of :mod:`sr_filter.video.resume` (a segment holds at least N frames and
ends before a source keyframe), so the segments, their frames and their timestamps are those of
a resumable single-machine run. A worker takes exactly the frames whose timestamps fall in its
segment's ``[first_pts, end_pts)``: it seeks to the keyframe, drops frames before it (open GOPs)
and checks the count against the plan, so no frame is lost or doubled at a join.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import OutputExistsError, VideoFormatError, first_line
from . import storage
from .worker import Settings, UpscaleWorker


@dataclass(frozen=True)
class Segment(storage.Task):
    """Frames ``[first, end)`` of the video ``source``, encoded into ``target`` (``seg-FIRST-END.seg``);
    ``first_pts``/``end_pts`` are their timestamps in the video stream's time base (``end_pts``
    is ``None`` for the last segment)."""

    first: int = 0
    end: int = 0
    first_pts: int = 0
    end_pts: int | None = None
    first_pos: int = -1  # where the first packet lies in the file (-1: unknown), to check the seek


@dataclass(frozen=True)
class VideoSettings(Settings):
    """Settings for segment workers: the encoder family and quality chosen by the driver."""

    codec: str = "h264"
    crf: int | None = None
    steady: Fraction | None = None  # the output's constant-rate time base (AVI), as VideoInfo.steady
    alpha: bool = False  # frames keep the source's alpha channel, as VideoInfo.alpha
    batch: int | None = None  # frames per network pass (None: sr_filter.video.batches.FRAME_BATCH)


def plan(src: str, segment_frames: int, name: str | None = None, notice=None) -> list[Segment]:
    """The segments of ``src`` (their ``target`` left empty), from the video packets' timestamps;
    messages call it ``name`` (as given; ``src`` is the absolute path the workers read). Frames
    missing mid-file (a jump in otherwise even timestamps) are said through ``notice``, as one
    machine says them while decoding: each worker sees only its segment, and none had said them."""
    name = name or src
    from ..video import resume, source

    container = source.open_video(src)
    try:
        video = source.video_stream(container)
        order = source.decode_order_only(container)  # frames are timed as the workers' Clock times them
        stamps = []
        last_end = None  # seconds: where the last frame ends, to refuse a truncated file as one machine does
        for packet in container.demux(video):
            if not packet.size:
                continue
            stamp = source.packet_time(packet, order)
            if stamp is None:
                raise VideoFormatError(f"{name}: its video packets carry no timestamps, so it cannot be split into segments; upscale it on one machine")
            stamps.append((stamp, bool(packet.is_keyframe), packet.pos if packet.pos is not None else -1))
            if packet.pts is not None and packet.time_base is not None:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                last_end = end if last_end is None else max(last_end, end)
        if last_end is not None:
            source.check_complete(video, name, last_end)
    except OSError as exc:
        raise VideoFormatError(f"{name} cannot be read ({first_line(exc)})") from None
    finally:
        container.close()
    if not stamps:
        raise VideoFormatError(f"{name} contains no video frames")
    stamps.sort()
    if len({stamp[0] for stamp in stamps}) != len(stamps):
        raise VideoFormatError(f"{name}: two video frames share a timestamp, so it cannot be split into segments; upscale it on one machine")
    if notice is not None and video.codec_context.name not in source.ANIMATION_CODECS:  # an animation's pauses are its own
        gaps = source.Gaps()
        for stamp, _, _ in stamps:
            gaps.add(stamp, video.time_base)
        gaps.say(name, notice)
    rule = resume.Cuts(segment_frames, 0)
    cuts = [0] + [index for index, (_, key, _) in enumerate(stamps) if rule.starts(index, key)]
    bounds = cuts + [len(stamps)]
    return [Segment(src, "", a, b, stamps[a][0], stamps[b][0] if b < len(stamps) else None, stamps[a][2] if order else -1)
            for a, b in zip(bounds, bounds[1:])]


def segment_name(first: int, end: int) -> str:
    """The finished segment's file name, as :func:`sr_filter.video.resume.finished` reads it."""
    return f"seg-{first:08d}-{end:08d}.seg"


class SegmentWorker(UpscaleWorker):
    """A Ray actor body holding the model; each call makes one segment file."""

    def make(self, task: Segment) -> None:
        encode_segment(self.upscaler, task, self.settings)


def encode_segment(upscaler, task: Segment, settings: VideoSettings) -> None:
    """Decode, upscale and encode one segment in a private scratch folder, then publish it under
    its final name with a no-clobber hard link (a second attempt finds it and stops)."""
    from ..video import batches, encode, pipeline, resume, source
    from ..video.encode import even_dimension

    src, target = task.source, Path(task.target)
    container = source.open_video(src)
    scratch = None
    try:
        factor = float(settings.scale or upscaler.scale)
        info = source.describe(container, src, scale=factor)
        info.steady = settings.steady
        info.alpha = settings.alpha  # as the driver settled it for the output container
        size = (even_dimension(info.width * factor), even_dimension(info.height * factor))
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        writer = resume.SegmentWriter(scratch, settings.codec, info, container, size, settings.crf, 1 << 62, task.first, None, 0)

        def work(chunk: list) -> list:
            return batches.upscale_chunk(chunk, upscaler, settings.scale, lambda array: batches.fit(array, size))

        batch = batches.check_batch(settings.batch)
        items = batches.chunks(_frames(container, src, info, task), batch)  # paired as on one machine
        pipeline.run(items, work, lambda results: writer.consume(batches.flatten(results)), depth=batches.queue_depth(batch))
        made = scratch / segment_name(task.first, task.end)
        if not made.exists():
            raise VideoFormatError(f"{src}: frames {task.first}-{task.end} did not come out as planned")
        try:
            os.link(made, target)
        except FileExistsError:
            raise OutputExistsError(f"{target} exists") from None
    finally:
        container.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _frames(container, src: str, info, task: Segment) -> Iterator:
    """The source frames of ``task`` with their own timestamps and planned indices."""
    import av

    from ..video import source

    video = source.video_stream(container)
    decode = source.decoder(video).decode
    if task.first:
        container.seek(task.first_pts, stream=video, backward=True, any_frame=False)
    clock = source.Clock(container)  # timestamps as on one machine (AVI: from the packets' decode times)
    index = task.first
    held = None  # each frame waits for the next, as on one machine: the video's last one is timed at the end
    try:
        for packet in container.demux(video):
            if clock.decode_order and task.first_pos >= 0 and packet.pos == task.first_pos:
                # FFmpeg's AVI reader can misdate the packets after a seek (by 5 ticks after one to
                # the last keyframe); the segment's first packet, known by its place in the file,
                # has the decode time the plan gave it, and the rest follow from it
                clock.move(task.first_pts - packet.dts)
            clock.fed(packet)
            for frame in decode(packet):
                pts = clock.stamp(frame)
                if pts is None or pts < task.first_pts:
                    continue  # before the segment: the previous one's (open GOP) frames
                if task.end_pts is not None and pts >= task.end_pts:
                    break
                if index == task.first:
                    if pts != task.first_pts:
                        raise VideoFormatError(f"{src}: the frame at timestamp {task.first_pts} was not found after seeking; upscale it on one machine")
                    info.rotation = source.rotation(frame)
                if held is not None:
                    yield held
                held = source.as_frame(frame, pts, info, index, index == task.first)
                index += 1
            else:
                continue
            break
        else:
            source.last_until_the_end(held, video)
    except av.error.FFmpegError as exc:
        raise VideoFormatError(f"{src} is damaged near frame {index} ({first_line(exc)})") from None
    if held is not None:
        yield held
    if index != task.end:
        raise VideoFormatError(f"{src}: frames {task.first}-{task.end} decoded as {index - task.first} frames; the file may be damaged")

"""Resumable video jobs: the upscaled video is written as finished segments that start at source
keyframes; after an interruption the same command continues after the last finished segment.

Segments live in ``.NAME.parts/`` beside the output, with ``job.json`` describing the job (source
size and time, model, scale, codec), so a changed job starts over instead of mixing outputs. A
segment is renamed to ``seg-FIRST-END.seg`` only once its encoder has flushed, so a segment cut
short by Ctrl-C is redone. At the end the segments' packets and the source's other streams are
interleaved into the output (no re-encoding) and the folder is removed.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import shutil
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..errors import VideoFormatError
from ..progress import cancels
from . import batches, encode, pipeline, source

#: a segment holds at least this many frames and ends before a source keyframe
SEGMENT_FRAMES = 48


def parts_folder(dst: Path) -> Path:
    """The hidden folder of a resumable job's segments, beside its output: ``.NAME.parts``, or for a
    name too long to take 7 more bytes (file names hold 255), its start and a digest of the rest."""
    name = f".{dst.name}.parts"
    if len(name.encode("utf-8", "surrogateescape")) > 255:
        digest = hashlib.sha1(dst.name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        name = f".{dst.name.encode('utf-8', 'surrogateescape')[:200].decode('utf-8', 'ignore')}-{digest}.parts"
    return dst.parent / name


def finished(parts: Path, *, check: bool = False, notice=None) -> list[tuple[int, int, Path]]:
    """(first frame, end frame, file) of the finished segments, in order and without gaps. With
    ``check`` each one is read back (its video packets counted): a damaged one (a disk error, a
    file cut short) and those after it are removed and redone, said through ``notice``; every
    rerun had failed at the join."""
    found = []
    for path in parts.glob("seg-*-*.seg"):
        fields = path.stem.split("-")  # a stray name (seg-0-6-1.seg) had raised ValueError
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            found.append((int(fields[1]), int(fields[2]), path))
    found.sort()
    kept, expect = [], 0
    for first, end, path in found:
        if first != expect or (check and not _whole(path, end - first)):
            if check:
                if notice is not None and first == expect:
                    notice(f"finished segment {path.name} is damaged; redoing the video from frame {first}")
                for *_, later in found[len(kept):]:
                    later.unlink(missing_ok=True)
            break
        kept.append((first, end, path))
        expect = end
    return kept


def _whole(path: Path, frames: int) -> bool:
    """Whether a segment file reads back with ``frames`` video packets."""
    try:
        with av.open(source.ffmpeg_name(path)) as segment:
            return sum(1 for p in segment.demux(segment.streams.video[0]) if p.size) == frames
    except (av.error.FFmpegError, IndexError, OSError, ValueError):
        return False


def run(container, src: Path, dst: Path, tmp: str, muxer: str, family: str, info: source.VideoInfo, upscaler: Any,
        scale, size: tuple[int, int], *, crf, progress, notice, segment_frames: int | None = None,
        batch: int = 1, skip_damaged: bool = False) -> dict:
    """Upscale into segments (skipping finished ones), then join them into ``tmp``."""
    segment_frames = segment_frames or SEGMENT_FRAMES
    parts = parts_folder(dst)
    if parts.exists() and not parts.is_dir():
        raise VideoFormatError(f"{parts} is a file where resume=True keeps its segments; move it away or run without resume=True")
    parts.mkdir(exist_ok=True)
    stat = src.stat()
    job = {"source": str(src.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "model": upscaler.name,
           "scale": scale, "codec": family, "crf": crf, "size": list(size), "segment_frames": segment_frames,
           "tta": getattr(getattr(upscaler, "backend", None), "name", "").endswith("+tta"),  # no mixing of TTA settings
           # nor of what else changes the pixels (a colour fix turned off on the rerun had left a colour step at the join)
           "colour_fix": bool(getattr(upscaler, "colour_fix", False)), "denoise": getattr(upscaler, "denoise", None),
           "precision": getattr(upscaler, "precision", None)}
    manifest = parts / "job.json"
    recorded = _recorded(manifest)
    if recorded != job and (recorded is not None or any(parts.glob("seg-*"))):
        notice(f"{parts} belongs to a different job; starting over" if recorded else f"{manifest} is damaged; starting over")
        shutil.rmtree(parts)
        parts.mkdir()
    if recorded != job:  # written whole or not at all: a crash mid-write had left it empty (a traceback)
        writing = parts / "job.json.tmp"
        writing.write_text(json.dumps(job))
        os.replace(writing, manifest)
    done = finished(parts, check=True, notice=notice)
    resume_at = done[-1][1] if done else 0
    if resume_at:
        notice(f"resuming at frame {resume_at}: {len(done)} finished segment(s) kept")
    total = source.FrameTotal(src, container, info)  # Matroska stores no count: counted
    writer = _SegmentWriter(parts, family, info, container, size, crf, segment_frames, resume_at, progress, total)
    cuts = Cuts(segment_frames, resume_at)  # the decoder's copy of the writer's rule (another thread)

    def work(chunk: list[Any]) -> list[Any]:
        return batches.upscale_chunk(chunk, upscaler, scale, lambda array: batches.fit(array, size))

    # said before the upscale, as a run writing the file says them at its first frame (they had come after the join)
    said = encode.foreseen_changes(src, muxer, family, info, crf)
    encode.say_changes(*said, notice)
    if not (info.frames and resume_at >= info.frames):
        items = batches.chunks(source.items(container, str(src), info, start=resume_at, skip_damaged=skip_damaged, notice=notice,
                                            resumed=True), batch,
                               starts=lambda frame: cuts.starts(frame.index, frame.key))
        try:
            pipeline.run(items, work, lambda results: writer.consume(batches.flatten(results)), depth=batches.queue_depth(batch))
        finally:
            total.stop()
    segments = finished(parts)
    if not segments:
        raise VideoFormatError(f"{src} contains no video frames")
    dropped, converted = join(segments, src, tmp, muxer, info, notice)
    encode.say_new_changes(dropped, converted, said, notice)
    total = segments[-1][1]
    return {"frames": total, "resumed_at": resume_at, "codec": family, "pix_fmt": encode.choose_pix_fmt(info.pix_fmt, encode.ENCODERS[family][0], alpha=info.alpha),
            "dropped": dropped, "converted": converted, "parts": parts}


def _recorded(manifest: Path) -> dict | None:
    """The job a parts folder records; None when it has none or it cannot be read."""
    try:
        found = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


class Cuts:
    """Where segments start: at the first source keyframe ``segment_frames`` or more frames after
    the start of the current one (the first segment starts at frame ``first``). The cluster's
    planner (:func:`sr_filter.cluster.segments.plan`) applies the same rule to the packet index."""

    def __init__(self, segment_frames: int, first: int) -> None:
        self.segment_frames, self.first = segment_frames, first

    def starts(self, index: int, key: bool) -> bool:
        """Whether frame ``index`` (asked in display order), a keyframe or not, starts a new segment."""
        if key and index - self.first >= self.segment_frames:
            self.first = index
            return True
        return False


class _SegmentWriter:
    """Encodes frames into segment files, closing one where :class:`Cuts` starts the next."""

    def __init__(self, parts: Path, family, info, container, size, crf, segment_frames: int, first: int, progress,
                 total: int | Callable[[], int]) -> None:
        self.parts, self.family, self.info, self.container = parts, family, info, container
        self.size, self.crf = size, crf
        self.cuts = Cuts(segment_frames, first)
        self.output: encode.Output | None = None
        self.first = self.next = first
        self.progress, self.total = progress, total

    def consume(self, frames) -> None:
        try:
            for item in frames:
                if self.cuts.starts(item.index, item.key) and self.output is not None:
                    self._close()
                if self.output is None:
                    self.first = item.index
                    path = self.parts / f"seg-{item.index:08d}.part"
                    self.output = encode.Output(str(path), _segment_muxer(self.family, self.info.alpha), self.family, self.info, self.container,
                                                width=self.size[0], height=self.size[1], crf=self.crf, copy=set())
                    self.output.path = path
                self.output.add(item)
                self.next = item.index + 1
                if self.progress is not None and cancels(self.progress(self.next, self.total() if callable(self.total) else self.total)):
                    from ..errors import CancelledError

                    raise CancelledError("stopped by the progress callback; finished segments are kept for resuming")
            if self.output is not None:
                self._close()
        except BaseException:
            if self.output is not None:
                self.output.abandon()
                self.output.path.unlink(missing_ok=True)
            raise

    def _close(self) -> None:
        self.output.finish()
        os.replace(self.output.path, self.parts / f"seg-{self.first:08d}-{self.next:08d}.seg")
        self.output = None


#: the cluster's workers (sr_filter.cluster.video) encode one planned segment each with it
SegmentWriter = _SegmentWriter


def _segment_muxer(family: str, alpha: bool) -> str:
    """mov keeps the exact time base and B-frame timing, and where the last frame ends (its edit
    list); FFmpeg writes VP9, AV1 and FFV1 only in its mp4 flavour (the same writer). FFV1 had
    been written in NUT, which stores no frame durations: its reader guessed the last frame's (a
    2 s last frame of an animation came out 1 s after --resume). VP9's alpha plane travels beside
    the pictures, which only Matroska keeps (the output is then .webm or .mkv, Matroska's
    millisecond time base too)."""
    if family == "vp9" and alpha:
        return "matroska"
    return {"ffv1": "mp4", "vp9": "mp4", "av1": "mp4"}.get(family, "mov")


def join(segments: list[tuple[int, int, Path]], src: Path, tmp: str, muxer: str, info: source.VideoInfo,
         notice=None) -> tuple[list[str], list[str]]:
    """Interleave the segments' video packets and the source's copied streams into ``tmp``; returns
    the lines of what was dropped and of what was converted (:class:`encode.Copies`); a subtitle
    cue that cannot be converted is said through ``notice`` (default: the log)."""
    out = encode.open_output(tmp, muxer, info.steady or info.time_base)
    container = source.open_video(src)  # read from the start again: every packet, priming ones too
    opened = [av.open(source.ffmpeg_name(path)) for _, _, path in segments]
    try:
        out.metadata.update({k: v for k, v in container.metadata.items() if k.lower() != "encoder"})
        try:
            video = out.add_stream_from_template(opened[0].streams.video[0])
        except av.codec.codec.UnknownCodecError:  # read by a decoder without an encoder of its name (libdav1d)
            video = out.add_stream_from_template(opened[0].streams.video[0], opaque=True)
        codec = opened[0].streams.video[0].codec_context.name
        encode.tag_for_apple(video.codec_context, codec, muxer)  # the decoder names HEVC as its family
        if codec == "prores":  # its tag names the profile, which a template leaves out: mov's default, apch
            # (422 HQ), had labelled a resumed ProRes 4444 (ap4h), alpha and all, and .mkv had no fourcc at all
            video.codec_context.codec_tag = opened[0].streams.video[0].codec_tag
        info.colour.for_codec(codec).tag(video.codec_context, info.height)  # NUT segments (FFV1, before) did not carry the colour tags
        if info.steady:  # a constant-rate output: the segments' frames are its ticks
            video.time_base = info.steady
            video.codec_context.framerate = 1 / info.steady
        elif info.rate:  # the stream's rate is the source's, not one read back from the segments' time base
            video.codec_context.framerate = info.rate
        to_annex_b = _ANNEX_B.get(opened[0].streams.video[0].codec_context.name) if muxer in _ANNEX_B_MUXERS else None
        if to_annex_b:
            video.codec_context.extradata = None  # the parameter sets travel in the packets instead
        video_lost = encode.keep_video_tags(source.video_stream(container), video, muxer)
        encode.mark_alpha_beside(video, codec, info)
        if info.rotation:
            video.set_display_rotation(info.rotation)
        copies = encode.copy_streams(out, container, muxer, encode.copyable(container), notice)
        encoder = encode.ENCODERS.get(codec, (codec,))[0]  # lost_in asks with the encoder's name (libx264, not h264)
        streams, dropped = copies.streams, (encode.lost_in(muxer, encoder, info) + video_lost + copies.dropped
                                            + encode.chapters_lost(muxer, container.chapters()))
        # demux([]) would read every stream, the source's own video too: nothing copied, nothing read
        wrapped_at = source.wrap_reference(container)
        others = ((source.unwrap(p, wrapped_at) for p in container.demux([container.streams[i] for i in streams]) if p.size)
                  if streams else iter(()))
        shift = source.start_time(container) if info.steady else Fraction(0)  # the video starts at zero there
        others = (p for p in others if encode.moved(p, shift, from_zero=bool(info.steady)))
        out.set_chapters(encode.chapters_from(container.chapters(), shift))
        videos = (p for seg in opened for p in _video_packets(seg, to_annex_b))
        paths = [path for _, _, path in segments]
        if info.steady:
            videos = _in_slots(videos, info.steady)
        else:
            shown = _display_times(paths)  # the segments (mov) hold decode-time steps as durations
            videos = _shown_for(_decoded_at(videos, _decode_times(paths)), shown)
            if muxer in ("mp4", "mov") and shown:
                videos = _ending_at(videos, max(start + length for start, length in shown.items()))
        for *_, packet in heapq.merge(_timed(videos, 0), _timed(others, 1)):
            if packet.stream.type == "video":
                packet.stream = video
                out.mux(packet)
            else:
                copies.mux(out, packet)
        copies.flush(out)
    finally:
        for segment in opened:
            segment.close()
        container.close()
        out.close()
    return dropped, copies.converted


#: codecs whose segments (mov, mp4) hold length-prefixed packets, and the filter that turns them
#: into the start-code form that the muxers in _ANNEX_B_MUXERS take
_ANNEX_B = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}
_ANNEX_B_MUXERS = frozenset({"avi"})


def _video_packets(segment, to_annex_b: str | None) -> Iterator[av.Packet]:
    """A segment's video packets, in the start-code form when ``to_annex_b`` names the filter."""
    stream = segment.streams.video[0]
    packets = (p for p in segment.demux(stream) if p.size)
    if not to_annex_b:
        yield from packets
        return
    from av.bitstream import BitStreamFilterContext

    bsf = BitStreamFilterContext(to_annex_b, stream)
    for packet in [*packets, None]:
        for filtered in bsf.filter(packet):
            filtered.stream, filtered.time_base = stream, stream.time_base
            yield filtered


def _in_slots(packets: Iterator[av.Packet], step: Fraction) -> Iterator[av.Packet]:
    """Video packets for a constant-rate output (AVI) in ticks of ``step``, decode times one slot
    apart throughout: each segment's encoder starts its decode times as early as its own frame
    reordering needs (none in a short last segment), which left empty slots, read back as extra
    frames, at the joins."""
    delay = None
    for number, packet in enumerate(packets):
        ticks = packet.time_base / step
        pts = round(packet.pts * ticks)
        if delay is None:
            delay = pts - round(packet.dts * ticks)
        packet.pts, packet.dts, packet.duration = pts, number - delay, round(packet.duration * ticks)
        packet.time_base = step
        yield packet


def _decode_times(paths: list[Path]) -> list[Fraction] | None:
    """The joined video's decode times in seconds, one per packet in decode order: the display
    times in order, ``delay`` frames later, as one encoder of the whole video writes them.

    Each segment's encoder starts its decode times before its first frame by its reordering
    delay counted in its own first frames' durations; at variable frame rate those differ, so a
    segment's first decode time could fall before the previous one's last (the muxers refuse
    that: ``--resume`` failed on every run). ``delay`` is the segments' own (frames decoded
    before the first is shown), and at least what any packet is decoded ahead of its place in
    display order, so no frame is decoded after it is shown. None when a packet has no time
    (the segments' own times are kept)."""
    shown: list[Fraction] = []
    delay = 0
    for path in paths:
        with av.open(source.ffmpeg_name(path)) as segment:
            stream = segment.streams.video[0]
            time_base = Fraction(stream.time_base)  # read while open (see _display_times)
            stamps = [(p.dts, p.pts) for p in segment.demux(stream) if p.size]
        if not stamps or any(dts is None or pts is None for dts, pts in stamps):
            return None
        first = min(pts for _, pts in stamps)
        delay = max(delay, sum(1 for dts, _ in stamps if dts < first))
        shown += [pts * time_base for _, pts in stamps]
    order = sorted(shown)
    if len(set(order)) != len(order):
        return None
    rank = {start: number for number, start in enumerate(order)}
    delay = min(max(delay, *(number - rank[start] for number, start in enumerate(shown))), len(order) - 1)
    lead = order[delay] - order[0]
    return [order[number - delay] if number >= delay else order[number] - lead for number in range(len(order))]


def _decoded_at(packets: Iterator[av.Packet], times: list[Fraction] | None) -> Iterator[av.Packet]:
    """The packets with the decode times of :func:`_decode_times` (None: their own)."""
    for number, packet in enumerate(packets):
        if times is not None:
            packet.dts = round(times[number] / packet.time_base)
        yield packet


def _ending_at(packets: Iterator[av.Packet], end: Fraction) -> Iterator[av.Packet]:
    """The packets, the last one lasting so the track ends at ``end`` seconds: mp4 and mov take a
    track's length from its decode steps, the last packet's duration closing it, and its first
    frame is shown the reordering delay after it starts (as :meth:`encode.Output._mux_last`)."""
    lead, held = None, None
    for packet in packets:
        if lead is None and packet.pts is not None and packet.dts is not None:
            lead = packet.pts - packet.dts
        if held is not None:
            yield held
        held = packet
    if held is not None:
        if held.dts is not None and held.time_base:
            held.duration = max(1, round(end / held.time_base) - held.dts - (lead or 0))
        yield held


def _display_times(paths: list[Path]) -> dict[Fraction, Fraction]:
    """Each segment frame's start -> how long it is shown, in seconds: until the next frame, across
    the joins too, and the last one to its segment's end. A segment (mov) keeps decode-time steps
    as its packets' durations, and Matroska took them for display times: after ``--resume`` frames
    beside the joins lasted 0.25 s instead of 0.08, and the last one twice its time. The end is
    the one the segment records (mov's edit list): counted from its first decode time and delay,
    it was off at variable frame rate, where the delay at the end is not the one at the start."""
    starts: list[Fraction] = []
    end = Fraction(0)
    for path in paths:
        with av.open(source.ffmpeg_name(path)) as segment:
            stream = segment.streams.video[0]
            # read while the file is open: a closed container's stream gave a time base from freed
            # memory, and joined videos frame durations of 20 s or a length of 551 years, at random
            time_base = Fraction(stream.time_base)
            recorded = stream.start_time + stream.duration if stream.start_time is not None and stream.duration else None
            steps = [(p.dts, p.pts, p.duration or 0) for p in segment.demux(stream) if p.size and p.pts is not None]
        if not steps or steps[0][0] is None or steps[-1][0] is None:
            continue
        starts += sorted(pts * time_base for _, pts, _ in steps)
        if recorded is not None:  # mov: the edit list's end, where the last shown frame ends
            end = recorded * time_base
        else:  # the track runs from the first decode time; its shown part starts that frame's delay later
            (first_dts, first_pts, _), (last_dts, _, last_step) = steps[0], steps[-1]
            end = (last_dts + last_step + first_pts - first_dts) * time_base
    starts.sort()
    return {start: max(following - start, Fraction(0)) for start, following in zip(starts, [*starts[1:], max(end, starts[-1])])} if starts else {}


def _shown_for(packets: Iterator[av.Packet], times: dict[Fraction, Fraction]) -> Iterator[av.Packet]:
    """The packets, each lasting as long as its frame is shown (:func:`_display_times`)."""
    for packet in packets:
        shown = times.get(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
        if shown:
            packet.duration = max(1, round(shown / packet.time_base))
        yield packet


def _timed(packets, order: int) -> Iterator[tuple[float, int, int, av.Packet]]:
    """(seconds, order, number, packet): what heapq.merge sorts by, never the packet itself."""
    for number, packet in enumerate(packets):
        stamp = packet.dts if packet.dts is not None else packet.pts
        yield (float(stamp * packet.time_base) if stamp is not None else 0.0, order, number, packet)

"""Reading a video: open and check it before any work, then yield its frames and other packets.

A bad file (not a video, an unknown codec, an absurd picture size, no frames) is refused with
one :class:`~sr_filter.errors.VideoFormatError` line. Frames come out in presentation order as
RGB arrays (uint16 for sources deeper than 8 bits), with the source's timestamps untouched
where the container stores them. AVI stores none (only decode order): there the frames take the
decode timestamps of the packets in order, as FFmpeg's best-effort timestamps would, since the
decoder's own ones come out of order for B-frame video.
"""

from __future__ import annotations

import errno
import heapq
import logging
import os
import re
import shlex
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import OutOfMemoryError, VideoDamagedError, VideoEndsEarlyError, VideoFormatError, first_line
from ..imageio import IMAGE_SUFFIXES
from ..limits import estimate_bytes
from ..sizing import scaled_length
from ..device import available_ram
from .colour import Colour

#: frames held at once on the way through (queues on both sides, the encoder's look-ahead)
FRAMES_IN_FLIGHT = 12
#: demuxers that give packets decode times only: frames are timed from them, in order
DECODE_ORDER_ONLY = frozenset({"avi"})
#: frames held back after a skipped damaged packet to put them in order of their own times (a
#: decoder that lost a reference gives B-frames back after later frames: 27, 18, 28, 19, ...)
REORDER_AFTER_DAMAGE = 4
#: WebM keeps a VP8/VP9 picture's alpha plane beside it (stream tag alpha_mode=1), which FFmpeg's
#: own decoders drop and libvpx's read, as 4:2:0 with alpha
_ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}

log = logging.getLogger("sr_filter")


@dataclass
class VideoInfo:
    """What the output must keep of the source's video stream."""

    width: int
    height: int
    codec: str
    pix_fmt: str
    time_base: Fraction
    rate: Fraction | None
    sar: Fraction | None
    colour: Colour
    rotation: int = 0
    deep: bool = False
    #: frames are read with their alpha channel (RGBA), which the chosen encoder keeps (set with
    #: :func:`sr_filter.video.encode.settle_alpha` once the codec is known)
    alpha: bool = False
    frames: int = 0  # the container's count; 0 = unknown
    #: FFmpeg's field order when the pictures are interlaced (2 top field first, 3 bottom first,
    #: 4 and 5 the same, coded the other way); 0 for progressive or unknown
    interlaced: int = 0
    metadata: dict = field(default_factory=dict)
    #: the time base of a constant-rate output (AVI), 1/rate: there frame n of the output is tick n
    #: (None: the source's time base and timestamps are kept)
    steady: Fraction | None = None

    @property
    def pixel_aspect(self) -> Fraction:
        """Width of a stored pixel as players show it (the sample aspect ratio; 1 where none or
        a nonsensical one is recorded)."""
        return Fraction(self.sar) if self.sar and self.sar > 0 else Fraction(1)


@dataclass
class Frame:
    """One upscaling job: pixels plus the source's timestamp."""

    array: np.ndarray
    pts: int | None
    time_base: Fraction
    index: int
    key: bool = False  # a keyframe in the source: where a resumable segment may start
    duration: int | None = None  # display time in time_base units, as the source gives it (0/None: unknown)


#: how a name FFmpeg reads as a protocol starts ("clip:1.mp4" is protocol "clip", "ep:1/a.mkv" "ep")
_PROTOCOL = re.compile(r"[A-Za-z0-9+.-]+:")
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def ffmpeg_name(path: str | os.PathLike) -> str:
    """``path`` as FFmpeg is given a local file: a relative name whose start reads as a protocol
    (a file named 12:30.mp4, a folder ep:1) had failed "Protocol not found", so it is given as
    ``./NAME``."""
    text = os.fspath(path)
    if _PROTOCOL.match(text) and not (os.name == "nt" and _DRIVE.match(text)):
        return os.curdir + os.sep + text
    return text


def open_video(path: str | Path) -> av.container.InputContainer:
    """Open ``path`` for reading, or explain in one line why it is not a video we can read."""
    container = _open(path)
    if container.streams.video and not any(s.codec_context is not None and s.codec_context.width > 0
                                           for s in container.streams.video):
        # FFmpeg looks 5 s into the file for each stream's picture size: an MPEG-TS cut mid-GOP
        # (x264's default 250-frame GOP: 10 s at 25 fps) had been refused as "no picture size
        # (damaged header?)" until its first keyframe; looked for further, from there it plays
        container.close()
        container = _open(path, LONG_PROBE)
    if not container.streams.video:
        container.close()
        raise VideoFormatError(f"{path} has no video stream")
    if all(is_cover(stream) for stream in container.streams.video):  # an audio file's cover art had been upscaled
        # into a one-frame H.264 "video" of it (.mkv), or failed "cannot write OUT.mp4: Invalid argument" (.mp4)
        picture = container.streams.video[0].codec_context  # all are covers: the first one
        suffix = ".jpg" if picture is not None and picture.name == "mjpeg" else ".png"
        container.close()
        raise VideoFormatError(f"{path} has no video, only a cover picture (an audio file with cover art); to upscale the "
                               f"picture, save it as an image (ffmpeg -i {shlex.quote(os.fspath(path))} -map 0:v -c copy cover{suffix}) and upscale that")
    demuxer = container.format.name or ""
    if demuxer.endswith("_pipe") or demuxer == "image2":  # FFmpeg reads a lone picture as a one-frame video
        kind = "an image" if demuxer == "image2" else f"a {demuxer.removesuffix('_pipe').upper()} image"
        container.close()
        if Path(path).suffix.lower() in IMAGE_SUFFIXES:  # named as one: given to the API's upscale_video
            raise VideoFormatError(f"{path} is {kind}, not a video; sr_filter.upscale_file(src, dst) upscales pictures")
        raise VideoFormatError(f"{path} is {kind}, not a video; give it an image name (such as .png or .jpg) "
                               "to upscale it as one")
    return container


#: how far FFmpeg reads into a file for a picture size it did not find in its first 5 s
LONG_PROBE = {"analyzeduration": str(60 * 1_000_000), "probesize": str(64 << 20)}


def _open(path: str | Path, options: dict | None = None) -> av.container.InputContainer:
    try:
        return av.open(ffmpeg_name(path), "r", metadata_errors="replace", container_options=options)
    except FileNotFoundError:
        raise VideoFormatError(f"{path} does not exist") from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoFormatError(f"{path} is not a readable video ({first_line(exc)})") from None


def is_cover(stream) -> bool:
    """Whether a video stream is a still picture attached to the file (cover art, as FFmpeg reads
    an .mkv's image attachment or an .mp4's covr box), not video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def video_stream(container: av.container.InputContainer):
    """The video stream a job upscales: the first that is not a cover picture (an .mp4 whose
    metadata box comes before its tracks lists its cover first: the cover had been upscaled into
    a one-frame video, and the video itself dropped)."""
    return next((s for s in container.streams.video if not is_cover(s)), container.streams.video[0])


def first_frame(container: av.container.InputContainer) -> av.VideoFrame | None:
    """The upscaled stream's first decoded frame (None for none): PyAV reports the display rotation,
    and FFmpeg the HDR10 metadata, on decoded frames only."""
    return next(container.decode(video_stream(container)), None)


def rotation(frame: av.VideoFrame | None) -> int:
    """A decoded frame's display rotation in whole degrees (0 for none, or no frame)."""
    return int(round(frame.rotation or 0)) if frame is not None else 0


def codec_name(container: av.container.InputContainer) -> str:
    """The upscaled video stream's codec name ("" when unknown): enough to choose the encoder."""
    context = video_stream(container).codec_context
    return (context.name or "") if context is not None else ""


def _alpha_decoder(stream) -> str | None:
    """The decoder that reads the alpha plane a WebM keeps beside the pictures, where there is one
    and this build of FFmpeg has that decoder."""
    context = stream.codec_context
    name = _ALPHA_DECODERS.get(context.name or "") if context is not None else None
    tags = {key.lower(): value for key, value in stream.metadata.items()}
    if name is None or tags.get("alpha_mode") != "1" or context.pix_fmt != "yuv420p":
        return None
    try:
        av.Codec(name, "r")
    except (ValueError, av.error.FFmpegError):  # a build without libvpx: the pictures without alpha
        return None
    return name


def decoder(stream) -> av.CodecContext:
    """What decodes ``stream``'s packets: its own context, or libvpx's where a WebM keeps an alpha
    plane (frames then come as yuva420p), on all cores."""
    name = _alpha_decoder(stream)
    if name is None:
        stream.thread_type = "AUTO"
        return stream.codec_context
    context = av.CodecContext.create(name, "r")
    if stream.codec_context.extradata:
        context.extradata = stream.codec_context.extradata
    return context  # libvpx takes every core when no thread count is set


def describe(container: av.container.InputContainer, name: str, *, scale: float) -> VideoInfo:
    """The upscaled video stream's facts (:func:`video_stream`); refuses unknown codecs and sizes that would not fit in memory."""
    stream = video_stream(container)
    context = stream.codec_context
    if context is None or context.codec is None or context.name in ("none", ""):
        raise VideoFormatError(f"{name}: its video codec is unknown to this build of FFmpeg, so it cannot be decoded")
    width, height = context.width, context.height
    if width <= 0 or height <= 0:
        raise VideoFormatError(f"{name}: the video stream has no picture size (damaged header?)")
    fmt = av.VideoFormat("yuva420p") if _alpha_decoder(stream) else context.format  # as decoder() gives the frames
    pix_fmt = fmt.name if fmt is not None else "yuv420p"
    deep = fmt is not None and any(c.bits > 8 for c in fmt.components)
    channels = 4 if fmt is not None and any(c.is_alpha for c in fmt.components) else 3  # alpha goes through too
    need = (estimate_bytes(width, height, channels, scale, 2 if deep else 1) * 2
            + _frames_bytes(width, height, scale, deep) * channels // 3)
    have = available_ram()
    if need > have:
        raise VideoFormatError(
            f"{name} has {width}x{height} frames; upscaled x{scale:g} they would need about "
            f"{need / (1 << 30):,.1f} GiB of memory but {have / (1 << 30):,.1f} GiB is available; "
            f"choose a smaller scale"
        )
    return VideoInfo(
        width=width,
        height=height,
        codec=context.name,
        pix_fmt=pix_fmt,
        time_base=stream.time_base or Fraction(1, 1000),
        rate=stream.average_rate or stream.guessed_rate,
        sar=stream.sample_aspect_ratio or context.sample_aspect_ratio,
        colour=Colour.of(context),
        deep=deep,
        frames=stream.frames or 0,
        metadata=dict(stream.metadata),
        interlaced=field if (field := int(getattr(context, "field_order", 0) or 0)) >= 2 else 0,
    )


def _frames_bytes(width: int, height: int, scale: float, deep: bool) -> int:
    """Frames held by the queues and the encoder, at the output size, in RGB and YUV."""
    out_px = scaled_length(width, scale) * scaled_length(height, scale)
    return FRAMES_IN_FLIGHT * out_px * 3 * (2 if deep else 1) * 2


def items(container: av.container.InputContainer, name: str, info: VideoInfo, *,
          start: int = 0, end: int | None = None, copy: set[int] | None = None,
          skip_damaged: bool = False, notice: Callable[[str], None] | None = None,
          resumed: bool = False) -> Iterator[Frame | av.Packet]:
    """Demux once, in file order: decoded video frames (within [start, end)) as :class:`Frame`,
    and the untouched packets of the streams in ``copy``. With a range, only the packets that fall
    between the first kept frame and the end of the last one are passed on. ``skip_damaged``: a
    packet the decoder cannot read is left out and said, as a player shows the rest (not in an
    AVI, whose frames are timed by their place, nor past one damaged packet in twenty, or ten);
    without it a damaged packet is an error. What the frames show on the way (a gap, a size change,
    damage skipped) is said through ``notice`` (default: the log), the job's one channel.
    ``resumed``: ``start`` is where a resumed job's finished segments end, so a video of just that
    many frames is done, not a range past its end (a run stopped while joining them had failed
    every rerun so, from a source that stores no frame count)."""
    notice = notice or _logged
    video = video_stream(container)
    decode = decoder(video).decode
    ranged = start > 0 or end is not None
    window = _Window()
    clock = Clock(container)
    index = -1
    last_end: float | None = None
    held: Frame | None = None  # each frame waits for the next: the last one's display time is fixed at the end
    gaps = Gaps()
    damaged: list[int] = []  # frame numbers near which a packet could not be decoded and was skipped
    late = 0  # frames decoded after a skipped packet whose time an earlier-shown frame had passed: left out
    order = _Reorder()  # after a skipped packet, frames in order of their own times
    resized = False  # whether a frame of another size than the stream's has been said
    packets = container.demux([video] + [s for s in container.streams if s.index in (copy or ())])
    wrapped_at = wrap_reference(container)
    try:
        for packet in packets:
            if packet.stream.index != video.index:
                if packet.size == 0:  # the demuxer's end-of-stream marker: nothing to copy
                    continue
                packet = unwrap(packet, wrapped_at)
                if not ranged:
                    yield packet
                else:
                    yield from window.offer(packet)
                continue
            clock.fed(packet)
            try:
                decoded = list(decode(packet))
            except av.error.InvalidDataError:
                if end is not None and index + 1 >= end:  # frame END, read only for where the range ends: the range is whole
                    break
                if not skip_damaged or clock.decode_order or len(damaged) >= max(10, (index + 1) // 20):
                    raise
                damaged.append(index + 1)
                order.depth = REORDER_AFTER_DAMAGE
                continue
            for frame in order.put(decoded, end_of_stream=not packet.size):
                if damaged and clock.passed(frame):  # too late even for the reordering: its time is already shown
                    late += 1
                    continue
                index += 1
                pts = clock.stamp(frame)
                if end is not None and index == end:  # the first frame past the range: where the last kept one ends
                    if held is not None and pts is not None and held.pts is not None and pts > held.pts:
                        held.duration = round((pts * frame.time_base - held.pts * held.time_base) / held.time_base)
                        yield from window.close_at(float(pts * frame.time_base))
                if index < start or (end is not None and index >= end):
                    continue
                if index == start:
                    info.rotation = rotation(frame)
                    say_static_hdr(frame, name, notice)
                if pts is not None:
                    last_end = float((pts + (frame.duration or 0)) * frame.time_base)
                    gaps.add(pts, frame.time_base)
                if held is not None:
                    yield held
                if not resized and (frame.width, frame.height) != (info.width, info.height):
                    resized = True
                    notice(f"{name} has {frame.width}x{frame.height} frames from frame {index} on, where its video stream is "
                           f"{info.width}x{info.height}: a video file holds one size, so they are resized to "
                           f"{info.width}x{info.height} before upscaling"
                           + (", which stretches them" if frame.width * info.height != frame.height * info.width else ""))
                held = as_frame(frame, pts, info, index)
                if ranged and pts is not None:
                    yield from window.extend(pts, frame)
            if end is not None and index >= end:
                # the copied streams' packets that play before the range's end can come later in the
                # file than that frame's: read on a little (the sound had stopped with the last frame's
                # own, sometimes shorter, time: 2.166 s where the range ended at 2.25 s)
                yield from window.drain(packets, video.index)
                break
        else:  # the stream's last frame lasts until the stream's end, where the file says that is
            last_until_the_end(held, video)
    except av.error.FFmpegError as exc:
        if getattr(exc, "errno", None) in (errno.EAGAIN, errno.ENOMEM):  # FFmpeg short of memory or threads, not the file
            raise OutOfMemoryError(f"decoding {name} stopped near frame {index + 1} for lack of memory or threads "
                                   f"({first_line(exc)}); close other programs or raise the memory limit") from None
        lasting = isinstance(exc, av.error.InvalidDataError)  # the file's bytes, not a read that failed
        raise VideoDamagedError(f"{name} is damaged near frame {index + 1} ({first_line(exc)})", index + 1 if index > 0 else None,
                                skippable=lasting and not skip_damaged and not clock.decode_order, lasting=lasting) from None
    if held is not None:
        yield held
    if index < 0:
        raise VideoFormatError(f"{name} contains no video frames")
    if end is None and last_end is not None:
        check_complete(video, name, last_end, index + 1)
    if index < start and not (resumed and index + 1 == start):
        raise VideoFormatError(f"{name} has {index + 1} frames; the range starts at frame {start}")
    if damaged:
        near = ", ".join(map(str, damaged[:5])) + (", ..." if len(damaged) > 5 else "")
        notice(f"{name} has {len(damaged)} damaged packet(s), near frame(s) {near}: skipped, so their pictures are missing "
               f"from the output (the other frames keep their times){_late_note(late)}")
    elif info.codec not in ANIMATION_CODECS:  # an animation's pauses are its own (a skipped packet's gap is said above)
        gaps.say(name, notice)
    if end is not None and index + 1 < end:  # it had given fewer frames than asked without a word
        notice(f"the frame range ends at frame {end}, but {name} has {index + 1} frames: upscaled to its end")


class _Reorder:
    """Decoded frames in order of their own times, ``depth`` frames held back (0: passed on as
    decoded, as the decoder's own reordering already gives them)."""

    def __init__(self) -> None:
        self.depth = 0
        self.held: list[tuple[int, int, av.VideoFrame]] = []
        self.count = 0
        self.key = 0

    def put(self, frames: list[av.VideoFrame], end_of_stream: bool = False) -> list[av.VideoFrame]:
        """The frames now due: all held ones at the end of the stream."""
        if not self.depth and not self.held:
            return frames
        for frame in frames:  # a frame without a time keeps its place after the one before it
            self.key = frame.pts if frame.pts is not None else self.key
            self.count += 1
            heapq.heappush(self.held, (self.key, self.count, frame))
        keep = 0 if end_of_stream else self.depth
        return [heapq.heappop(self.held)[2] for _ in range(max(0, len(self.held) - keep))]


def _late_note(late: int) -> str:
    """The end of the damaged-packet warning: the frames left out for coming back out of order."""
    if not late:
        return ""
    return (f"; {late} frame(s) the decoder gave back after them out of order, their times already passed, "
            f"were left out too")


def last_until_the_end(frame: Frame | None, stream) -> None:
    """Give the stream's last frame the display time up to the end the stream declares. Its
    decoded duration is its packet's, which in an mp4 with B-frames is a decode-order gap: the last
    shown frame got another frame's time (a 1.83 s clip came out 2.0 s long)."""
    end = declared_end(stream)
    if frame is None or frame.pts is None or end is None or not frame.time_base:
        return
    ticks = int(round(end / frame.time_base))
    if ticks > frame.pts:
        frame.duration = ticks - frame.pts


def expected_frames(container, info: VideoInfo, start: int = 0, end: int | None = None) -> int:
    """How many frames a job will upscale, for progress (0: unknown): the container's count, else
    (Matroska, WebM: none is stored) the stream's declared length times its rate, an estimate;
    a range's end bounds it (it had been 0 for every .mkv, with a range too, so no bar had an ETA)."""
    total = info.frames
    if not total and info.rate:
        stream = video_stream(container)
        end_time = declared_end(stream)
        first = (stream.start_time or 0) * stream.time_base if stream.start_time is not None and stream.time_base else 0
        if end_time is not None and end_time > first:
            total = max(1, round((end_time - first) * info.rate))
    if end is not None:
        total = min(end, total) if total else end
    return max(0, total - start) if total else 0


#: demuxers whose video packets are whole frames (not fields, as a parsed MPEG-TS can give), so
#: counting them counts the frames a job will upscale
_WHOLE_FRAME_PACKETS = frozenset({"matroska", "webm", "avi", "flv", "mov", "mp4", "nut", "ogg"})


#: demuxers whose video packets can be single fields of interlaced video; a progressive stream's
#: are whole frames (an MPEG-TS whose H.264 timing ticks 1/72 s at 12 fps had said 216 frames
#: for its 36: its length times that rate)
_FIELD_PACKETS = frozenset({"mpegts"})


def _progressive(stream) -> bool:
    """Whether the stream says its pictures are progressive (FFmpeg's AV_FIELD_PROGRESSIVE)."""
    context = stream.codec_context
    return context is not None and int(getattr(context, "field_order", 0) or 0) == 1


class FrameTotal:
    """How many frames a job will upscale, for progress (0: unknown), as ``total()``. Where the
    file stores no count (Matroska, WebM, a progressive MPEG-TS) or counts slots, not frames (an AVI's skipped-frame
    slots), the video packets are counted without decoding, in the background: the length times a
    guessed rate had said 88 frames for a variable-rate .mkv of 10 spread over 3 s, and an AVI's
    header 30 for its 10 frames, so the bar's total and ETA were wrong for the whole run. Until
    the count is in (a quarter of a second is waited for it; an hour of video takes about half a
    second, an 8 GB file a few seconds more to read), :func:`expected_frames` is the total."""

    WAIT = 0.25

    def __init__(self, path: str | Path, container: av.container.InputContainer, info: VideoInfo,
                 start: int = 0, end: int | None = None) -> None:
        self.start, self.end = start, end
        self.value = expected_frames(container, info, start, end)
        self._stop = threading.Event()
        demuxers = _demuxers(container)
        if info.frames and not decode_order_only(container):
            return
        if not demuxers & _WHOLE_FRAME_PACKETS and not (demuxers & _FIELD_PACKETS and _progressive(video_stream(container))):
            return
        counting = threading.Thread(target=self._count, args=(path,), name="sr-filter frame count", daemon=True)
        counting.start()
        counting.join(self.WAIT)

    def __call__(self) -> int:
        return self.value

    def stop(self) -> None:
        """The job is over: the count, if still reading, stops."""
        self._stop.set()

    def _count(self, path: str | Path) -> None:
        try:
            container = av.open(ffmpeg_name(path), "r", metadata_errors="replace")
        except (av.error.FFmpegError, OSError, ValueError):
            return
        count = 0
        try:
            for packet in container.demux(video_stream(container)):
                if self._stop.is_set():
                    return
                count += bool(packet.size)
        except (av.error.FFmpegError, OSError, ValueError):  # a damaged file: the job says so; the estimate stays
            return
        finally:
            container.close()
        if count:
            total = min(self.end, count) if self.end is not None else count
            self.value = max(0, total - self.start)


def declared_end(stream) -> Fraction | None:
    """Where the file says the video stream ends (seconds on its timeline), or None. Matroska
    stores no track duration in its header: FFmpeg gives each stream the whole file's, which
    is the audio's where that runs longer (a valid file was refused as cut short, and its last
    frame shown until the sound ended), so there the track's own DURATION tag comes first."""
    tag = _duration_tag(stream)
    if tag is not None and "matroska" in (stream.container.format.name or ""):
        return tag
    if stream.duration and stream.time_base:
        return (stream.duration + (stream.start_time or 0)) * stream.time_base
    return tag


#: picture codecs of animations (GIF, APNG, animated WebP), whose frames pause where they mean to
ANIMATION_CODECS = frozenset({"gif", "apng", "webp"})


class Gaps:
    """The spacing of the frames' timestamps, to say where frames are missing from a file (a cut
    out piece of a capture had frozen the picture for 1.3 s without a word): only where the frames
    are otherwise evenly spaced, since a variable-rate source's long frames are its own."""

    def __init__(self) -> None:
        self.spacing: Counter = Counter()
        self.last: int | None = None
        self.widest = (0, 0)  # (gap, pts after it), in ticks
        self.time_base = None

    def add(self, pts: int, time_base) -> None:
        if self.last is not None and pts > self.last:
            gap = pts - self.last
            self.spacing[gap] += 1
            self.widest = max(self.widest, (gap, pts))
        self.last, self.time_base = pts, time_base

    def say(self, name: str, notice: Callable[[str], None]) -> None:
        count = sum(self.spacing.values())
        if count < 10 or not self.time_base:
            return
        ordered = sorted(self.spacing.elements())
        usual = ordered[len(ordered) // 2]  # the median spacing; a tick either way is rounding (41/42 ms at 24 fps)
        near = sum(n for g, n in self.spacing.items() if abs(g - usual) <= max(1, usual // 10))
        gap, where = self.widest
        seconds = float(gap * self.time_base)
        if near >= 0.9 * count and gap >= 10 * usual and seconds >= 0.5:
            notice(f"{name} jumps {seconds:.2f} s at {float((where - gap) * self.time_base):.2f} s where its frames are "
                   f"otherwise {float(usual * self.time_base) * 1000:.0f} ms apart (frames missing from the file?); the "
                   "output keeps the jump")


def _logged(line: str) -> None:
    """A notice where the caller gave no ``notice``: the log, as a warning."""
    log.warning("%s", line)


def say_static_hdr(frame: av.VideoFrame, name: str, notice: Callable[[str], None]) -> None:
    """HDR10's static metadata (the mastering display's colours and brightness, the content's
    light levels) comes with the decoded pictures, and no encoder here takes it back: said, as
    the output is still tagged PQ or HLG but players tone-map it with their own defaults (it
    had been dropped without a word)."""
    kinds = {str(getattr(sd, "type", "")).rsplit(".", 1)[-1].split(":")[0] for sd in frame.side_data}
    if kinds & {"MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"}:
        notice(f"{name} carries HDR10 mastering-display and light-level metadata, which the output does not keep "
               "(its PQ/HLG colour tags are kept; players tone-map it with their own defaults)")


def _duration_tag(stream) -> Fraction | None:
    """A Matroska track's DURATION tag ("HH:MM:SS.nnnnnnnnn") in seconds; None without one."""
    value = next((v for k, v in stream.metadata.items() if k.upper() == "DURATION"), None)
    try:
        hours, minutes, seconds = value.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + Fraction(seconds)
    except (AttributeError, ValueError):
        return None


def check_complete(stream, name: str, last_end: float, frames: int | None = None) -> None:
    """Refuse a file whose video stops well before the end its header declares (truncated): by
    more than two frames, and by more than half a second or a fifth of the clip. The message
    says how to upscale the ``frames`` it has, when they are counted (on one machine)."""
    declared = declared_end(stream)
    if declared is None:
        return
    declared = float(declared)
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    start = float((stream.start_time or 0) * stream.time_base) if stream.time_base else 0.0
    if last_end < declared - max(2 / rate, min(0.5, (declared - start) / 5)):
        raise VideoEndsEarlyError(f"{name} ends early: its video stops at {last_end:.2f} s but the file says it lasts "
                                  f"{declared:.2f} s (truncated or damaged?)", frames)


def as_frame(frame: av.VideoFrame, pts: int | None, info: VideoInfo, index: int, key: bool | None = None) -> Frame:
    """A decoded frame as an upscaling job: RGB pixels, the timestamp ``pts`` (from a
    :class:`Clock`), its display time as the source gives it, and whether it is a keyframe."""
    picture = frame
    if (frame.width, frame.height) != (info.width, info.height):  # the stream changed its picture size: the
        # output holds one, so the frame is resized to it (its upscaled pixels had been cut off or edge-padded)
        picture = frame.reformat(width=info.width, height=info.height, interpolation="BICUBIC")
    return Frame(info.colour.to_rgb(picture, info.deep, alpha=info.alpha), pts, frame.time_base, index,
                 bool(frame.key_frame) if key is None else key, frame.duration or None)


def _demuxers(container: av.container.InputContainer) -> set[str]:
    """The names the container's demuxer goes by (FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2" is one)."""
    return set((container.format.name or "").split(","))


def decode_order_only(container: av.container.InputContainer) -> bool:
    """Whether the container stores decode times only (AVI): its frames are timed by :class:`Clock`
    from their packets' decode times, in order."""
    return container.format.name in DECODE_ORDER_ONLY


def packet_time(packet: av.Packet, decode_order: bool) -> int | None:
    """The timestamp a video packet gives its frame, as :class:`Clock` assigns it (without decoding):
    its decode time where the container stores only that, else its presentation time."""
    return packet.dts if decode_order else packet.pts


def steady_rate(path: str | Path) -> tuple[Fraction, bool]:
    """The frame rate for a container that holds one constant rate (AVI), read from the video
    packets' timestamps without decoding: the source's nominal rate when its frames are evenly
    spaced at it, else (variable frame rate) its average, frames over length. Also says whether
    the source's frame rate is variable."""
    container = open_video(path)
    try:
        video = video_stream(container)
        base = video.time_base or Fraction(1, 1000)
        nominal = [rate for rate in (video.average_rate, video.guessed_rate) if rate]
        order = decode_order_only(container)
        times = _shown_times(container)
    except av.error.FFmpegError as exc:
        raise VideoFormatError(f"{path} is not a readable video ({first_line(exc)})") from None
    finally:
        container.close()
    steps = [b - a for (a, _), (b, _) in zip(times, times[1:])]
    # the last frame's display time counts too where it runs longer (a GIF's final pause), where
    # packets have their own; a shorter one only ends the clip sooner (an MPEG-TS packet lasts a
    # field of its H.264, 1/72 s at 12 fps: a steady clip had been called variable, and its AVI
    # written at 12.08 fps, drifting from its sound)
    ending = [times[-1][1]] if times and times[-1][1] and not order else []
    for rate in nominal:  # evenly spaced at a stated rate (within a tenth of a frame, or the time base's rounding)
        tick = 1 / (rate * base)
        if (all(abs(step - tick) <= max(tick / 10, 1) for step in steps)
                and all(end - tick <= max(tick / 10, 1) for end in ending)):
            return Fraction(rate), False
    if not steps:
        return Fraction(nominal[0] if nominal else 25), False
    shown = steps + [end for end in ending if end > max(steps)]
    if max(shown) - min(shown) <= 1:  # evenly spaced at a rate the header does not state (an AVI's
        # empty frames make it say 72 for 12 fps): that rate, not a variable-rate average over it
        return (len(steps) / (sum(steps) * base)).limit_denominator(1001), False
    last = times[-1][1] or Fraction(times[-1][0] - times[0][0], len(steps))
    length = (times[-1][0] - times[0][0] + last) * base
    return (len(times) / length).limit_denominator(1001), True


def frame_time(path: str | Path, index: int) -> Fraction | None:
    """Seconds from the file's zero to frame ``index`` (in display order), read from the video
    packets' timestamps without decoding; None past the last frame."""
    container = open_video(path)
    try:
        video = video_stream(container)
        times = _shown_times(container)
    except av.error.FFmpegError:
        return None
    finally:
        container.close()
    return Fraction(times[index][0] * video.time_base) if index < len(times) and video.time_base else None


def _shown_times(container: av.container.InputContainer) -> list[tuple[int, int]]:
    """(time, duration) of every video packet, in display order, read without decoding; the time
    is the one :class:`Clock` gives its frame (:func:`packet_time`)."""
    order = decode_order_only(container)
    return sorted((packet_time(p, order), p.duration or 0) for p in container.demux(video_stream(container))
                  if p.size and packet_time(p, order) is not None)


#: demuxers whose times count 33 bits of 90 kHz ticks, wrapping every 26.5 hours (MPEG-TS, MPEG-PS)
_WRAPPING = frozenset({"mpegts", "mpeg"})
_WRAP = 1 << 33
_TICK = Fraction(1, 90_000)
_NEAR = 90_000 * 600  # ten minutes: how far apart two streams' times across the wrap are taken to lie


def wrap_reference(container: av.container.InputContainer) -> int | None:
    """The video's start in 90 kHz ticks where the demuxer's times wrap at 33 bits (MPEG-TS and
    -PS), for :func:`unwrap`; None elsewhere."""
    video = video_stream(container)
    if not _demuxers(container) & _WRAPPING or video.time_base != _TICK:
        return None
    return video.start_time


def unwrap(packet: av.Packet, reference: int | None) -> av.Packet:
    """A copied stream's ``packet`` whose time lies just across the 33-bit wrap from the video's
    start (``reference``, :func:`wrap_reference`) brought next to it. FFmpeg leaves wrapped a stream
    it first meets past its probe whose times are just before the video's (a .ts whose sound
    starts 10 s into the file: AAC's priming packet at 2^33 - 11520): 26.5 hours late, after which
    the muxer refused the next one ("cannot write OUT.mkv: Invalid argument")."""
    if reference is not None and packet.time_base == _TICK:
        if packet.pts is not None:
            packet.pts = _near(packet.pts, reference)
        if packet.dts is not None:
            packet.dts = _near(packet.dts, reference)
    return packet


def _near(ticks: int, reference: int) -> int:
    if ticks - reference > _WRAP - _NEAR:
        return ticks - _WRAP
    if reference - ticks > _WRAP - _NEAR:
        return ticks + _WRAP
    return ticks


def start_time(container: av.container.InputContainer) -> Fraction:
    """Seconds from the file's zero to its first video frame, as the demuxer states it."""
    video = video_stream(container)
    return Fraction(video.start_time * video.time_base) if video.start_time and video.time_base else Fraction(0)


class Clock:
    """Presentation timestamps that rise from frame to frame.

    Where the container stores them they are the decoder's, untouched. AVI stores only the order
    of decoding: each packet's time is its slot (its dts), and the decoder, given B-frame video,
    pairs its frames with the wrong packets' guesses (0.04, 0.16, 0.12, ...). The frames come out
    in display order, so the k-th frame takes the k-th packet's time. A frame whose time still
    does not rise (a damaged file) is placed one frame after the previous one instead of being
    handed to the encoder, which refuses it; after a skipped damaged packet, the caller leaves such
    a frame out instead (:meth:`passed`), since placing it late moved every later frame too."""

    def __init__(self, container: av.container.InputContainer) -> None:
        stream = video_stream(container)
        self.decode_order = decode_order_only(container)
        self.slots: deque[int] = deque()
        self.shift = 0
        self.last: int | None = None
        rate = stream.average_rate or stream.guessed_rate
        base = stream.time_base
        self.step = max(1, round(1 / (rate * base))) if rate and base else 1

    def fed(self, packet: av.Packet) -> None:
        if self.decode_order and packet.size and packet.dts is not None:
            self.slots.append(packet.dts + self.shift)

    def move(self, ticks: int) -> None:
        """Correct the decode times read from here on, and those waiting, by ``ticks``."""
        if ticks:
            self.slots = deque(slot + ticks for slot in self.slots)
            self.shift += ticks

    def passed(self, frame: av.VideoFrame) -> bool:
        """Whether a frame's own time is at or before the last one stamped: a decoder that lost a
        reference gives B-frames back after later frames (27, 18, 28, 19, ...). AVI's frames take
        their slots in order, so there none has passed."""
        return (not self.decode_order and frame.pts is not None and self.last is not None
                and frame.pts <= self.last)

    def stamp(self, frame: av.VideoFrame) -> int | None:
        pts = frame.pts
        if self.decode_order:
            pts = self.slots.popleft() if self.slots else None
            if pts is None and self.last is not None:
                pts = self.last + (frame.duration or self.step)
        if pts is not None and self.last is not None and pts <= self.last:
            pts = self.last + (frame.duration or self.step)
        if pts is not None:
            self.last = pts
        return pts


def _shown_at(packet: av.Packet, seconds: float) -> bool:
    """Whether a packet still plays at ``seconds``: a subtitle cue on screen there (kept, cut to
    the range), or an audio packet that starts before it (a range from frame 0 had lost an AC3
    stream's first packet, at -6 ms, and its sound started 26 ms late)."""
    end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
    if packet.stream.type == "audio":  # one that ends right at the start primes the decoder for it (AAC)
        return bool(packet.duration) and end >= seconds
    return bool(packet.duration) and end > seconds


class _Window:
    """Copied packets for a frame range: held until the kept frames' time span says yes or no."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last_end: float | None = None
        self.held: list[av.Packet] = []

    def offer(self, packet: av.Packet) -> Iterator[av.Packet]:
        if packet.pts is not None:
            self.held.append(packet)
        return self._release()

    def extend(self, pts: int, frame: av.VideoFrame) -> Iterator[av.Packet]:
        seconds = float(pts * frame.time_base)
        if self.first is None:
            self.first = seconds
        self.last_end = max(self.last_end or 0.0, seconds + float((frame.duration or 0) * frame.time_base))
        return self._release()

    def close_at(self, seconds: float) -> Iterator[av.Packet]:
        """The range ends at ``seconds`` (the first frame past it starts there)."""
        self.last_end = seconds
        return self._release()

    def drain(self, packets: Iterator[av.Packet], video: int, reach: float = 2.0) -> Iterator[av.Packet]:
        """The copied packets that follow in the file, until any packet (the video's, which come
        often, bound it: sparse subtitles alone had read the whole rest of the file) starts ``reach``
        seconds past the end."""
        for packet in packets:
            stamp = packet.dts if packet.dts is not None else packet.pts
            if self.last_end is not None and stamp is not None and packet.time_base and float(stamp * packet.time_base) > self.last_end + reach:
                return
            if packet.stream.index == video or packet.size == 0 or packet.pts is None:
                continue
            yield from self.offer(packet)

    def _release(self) -> Iterator[av.Packet]:
        if self.first is None:
            return iter(())
        ready, keep = [], []
        for packet in self.held:
            seconds = float(packet.pts * packet.time_base)
            if seconds < self.first and not _shown_at(packet, self.first):
                continue
            (ready if self.last_end is not None and seconds < self.last_end else keep).append(packet)
        self.held = keep
        return iter(ready)

"""Small real video clips for the tests, made with PyAV (no downloads, no ffmpeg binary).

Every clip is a few dozen tiny frames of a moving pattern, so a test can tell frames apart and
see one lost or repeated; audio is a quiet tone; subtitles are real ASS events.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ASS_HEADER = """[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def pattern(index: int, width: int, height: int, dtype=np.uint8) -> np.ndarray:
    """Frame ``index`` of a moving gradient with a bright square: every frame differs."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(1, width - 1) + index * 9) % 256
    g = (y * 255 // max(1, height - 1)) % 256
    b = np.full_like(r, (index * 37) % 256)
    image = np.stack([r, g, b], axis=-1).astype(np.float64)
    side = max(2, min(width, height) // 4)
    left = (index * 3) % max(1, width - side)
    image[: side, left : left + side] = 255
    if dtype == np.uint16:
        return (image * 257).astype(np.uint16)
    return image.astype(np.uint8)


def make_clip(
    path: Path,
    *,
    frames: int = 24,
    size: tuple[int, int] = (32, 24),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rate: int = 12,
    audio: int = 1,
    audio_codec: str | None = None,
    audio_layout: str = "mono",
    subtitles: bool = False,
    attachment: bool = False,
    vfr: bool = False,
    color: dict | None = None,
    rotation: int | None = None,
    gop: int | None = None,
    bframes: int = 0,
    audio_tags: list[dict] | None = None,
    subtitle_tags: dict | None = None,
    video_tags: dict | None = None,
    times: list[float] | None = None,
) -> Path:
    """Write a clip; returns ``path``. ``vfr`` spaces the frames unevenly (1, 2 or 3 ticks);
    ``times`` places the frames at those seconds instead (``frames`` of them);
    ``bframes`` lets x264 use up to that many B-frames (frames stored out of display order);
    ``video_tags``, ``audio_tags`` (one dict per track) and ``subtitle_tags`` are stream tags, where the key
    ``disposition`` gives the stream's flags (``av.stream.Disposition``) instead."""
    width, height = size
    deep = "10" in pix_fmt or "16" in pix_fmt
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        tick = Fraction(1, rate * 6)
        video.time_base = video.codec_context.time_base = tick
        if codec == "libx264":
            video.codec_context.options = {"preset": "ultrafast", **({"bf": str(bframes)} if bframes else {})}
        if gop:
            video.codec_context.gop_size = gop
        for key, value in (color or {}).items():
            setattr(video.codec_context, key, value)
        if rotation is not None:
            video.set_display_rotation(rotation)
        _tag(video, video_tags or {})
        tracks = []
        for _ in range(audio):
            name = audio_codec or ("libopus" if path.suffix == ".webm" else "aac")
            stream = out.add_stream(name, rate=48000 if name == "libopus" else 8000, layout=audio_layout)
            _tag(stream, (audio_tags or [])[len(tracks)] if len(audio_tags or []) > len(tracks) else {})
            tracks.append(stream)
        subtitle = None
        if subtitles:
            subtitle = out.add_stream("ass")
            subtitle.codec_context.extradata = ASS_HEADER.encode()
            _tag(subtitle, subtitle_tags or {})
        if attachment:
            out.add_attachment("font.ttf", "application/x-truetype-font", b"\0\1\0\0not-a-real-font")
        pts = 0
        for i in range(len(times) if times else frames):
            image = pattern(i, width, height, np.uint16 if deep else np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb48le" if deep else "rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=(color or {}).get("colorspace"),
                                   dst_color_range=(color or {}).get("color_range"))
            frame.pts = round(times[i] * rate * 6) if times else pts
            frame.time_base = tick
            pts += 6 * (1 + i % 3) if vfr else 6
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        seconds = times[-1] + 1 / rate if times else pts / (rate * 6)
        for number, stream in enumerate(tracks):
            _write_tone(out, stream, seconds, 220.0 * (number + 1))
        if subtitle is not None:
            for start in range(0, int(seconds * 1000), 500):
                text = f"{start // 500},0,Default,,0,0,0,,line {start // 500}"
                packet = av.Packet(text.encode())
                packet.stream = subtitle
                packet.pts = packet.dts = start
                packet.duration = 400
                packet.time_base = Fraction(1, 1000)
                out.mux(packet)
    return path


def _tag(stream, tags: dict) -> None:
    for key, value in tags.items():
        if key == "disposition":
            stream.disposition = value
        else:
            stream.metadata[key] = value


def _write_tone(out, stream, seconds: float, hz: float) -> None:
    rate = stream.codec_context.sample_rate
    total = int(seconds * rate)
    step = stream.codec_context.frame_size or 1024
    done = 0
    while done < total:
        n = min(step, total - done)
        t = (np.arange(done, done + n) / rate).astype(np.float32)
        layout = stream.codec_context.layout.name
        channels = stream.codec_context.channels
        samples = np.repeat((0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None, :], channels, axis=0)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = done
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        done += n
    for packet in stream.encode():
        out.mux(packet)


def add_cover(out, jpeg: bytes, size: tuple[int, int]) -> None:
    """Mux ``jpeg`` into ``out`` as an mp4's cover picture (an attached-picture mjpeg stream)."""
    cover = out.add_stream("mjpeg")
    cover.width, cover.height, cover.pix_fmt = *size, "yuvj420p"
    cover.disposition = av.stream.Disposition.attached_pic
    packet = av.Packet(jpeg)
    packet.stream, packet.pts, packet.dts, packet.time_base = cover, 0, 0, Fraction(1, 90000)
    out.mux(packet)


def cover_only(path: Path) -> Path:
    """An audio file with cover art: a second of tone and a JPEG, attached (.mkv, which FFmpeg
    reads as a video stream marked attached_pic) or as that stream itself (.mp4)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pattern(0, 32, 24)).save(buffer, "JPEG")
    with av.open(str(path), "w") as out:
        sound = out.add_stream("aac", rate=8000, layout="mono")
        if path.suffix == ".mkv":
            out.add_attachment("cover.jpg", "image/jpeg", buffer.getvalue())
        else:
            add_cover(out, buffer.getvalue(), (32, 24))
        _write_tone(out, sound, 1.0, 220.0)
    return path


def describe(path: Path) -> dict:
    """What a test compares: frame count and times, video tags, and the other streams."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        times, first = [], None
        for frame in container.decode(video):
            times.append(float(frame.pts * frame.time_base))
            first = first or frame
        context = video.codec_context
        others = [(s.type, s.codec_context.name if s.codec_context else None) for s in container.streams if s.type != "video"]
        return {
            "times": times,
            "size": (context.width, context.height),
            "pix_fmt": context.pix_fmt,
            "codec": context.name,
            "color_range": int(first.color_range) if first else None,
            "colorspace": int(first.colorspace) if first else None,
            "color_primaries": int(first.color_primaries) if first else None,
            "color_trc": int(first.color_trc) if first else None,
            "rotation": first.rotation if first else None,
            "sar": video.sample_aspect_ratio,
            "others": others,
        }


def frame_arrays(path: Path) -> list[np.ndarray]:
    """Every frame as RGB uint8."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def make_y4m(path: Path, *, frames: int = 6, size: tuple[int, int] = (32, 24), pix_fmt: str = "yuv420p", rate: int = 12) -> Path:
    """A YUV4MPEG2 file written by FFmpeg's own muxer (as ``ffmpeg -f yuv4mpegpipe`` does)."""
    width, height = size
    with av.open(str(path), "w", format="yuv4mpegpipe", container_options={"strict": "-1"}) as out:
        stream = out.add_stream("wrapped_avframe", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            deep = "10" in pix_fmt
            image = pattern(i, width, height, np.uint16 if deep else np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb48le" if deep else "rgb24").reformat(format=pix_fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_sync_clip(path: Path, *, rate: int = 25, frames: int = 50, flash: int = 12, audio_codec: str = "aac",
                   sample_rate: int = 8000, bframes: int = 2, vfr: bool | tuple[int, ...] = False,
                   gop: int | None = None) -> Path:
    """A black clip whose frame ``flash`` is white, with a 1 kHz beep starting at that frame's
    time in otherwise silent audio: where a player shows the flash and plays the beep tells
    whether picture and sound are in sync. ``vfr`` spaces the frames 1, 2 or 3 ticks apart, or
    as many ticks as a tuple says, in turn; ``gop`` puts a keyframe every that many frames.

    8 kHz AAC has 128 ms of encoder priming (1024 samples), which mp4 trims with an edit list:
    the case where a copied audio stream most easily slips against a re-encoded video."""
    width, height = 32, 24
    tick = Fraction(1, rate)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = tick
        video.codec_context.options = {"preset": "ultrafast", "bf": str(bframes)}
        if gop:
            video.codec_context.gop_size = gop
        audio = out.add_stream(audio_codec, rate=sample_rate, layout="mono")
        pts, flash_at = 0, None
        for i in range(frames):
            value = 255 if i == flash else 0
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), value, np.uint8), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = pts, tick
            flash_at = pts * tick if i == flash else flash_at
            steps = vfr if isinstance(vfr, tuple) else (1, 2, 3) if vfr else (1,)
            pts += steps[i % len(steps)]
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        step = audio.codec_context.frame_size or 1024
        onset, total, done = round(flash_at * sample_rate), round(pts * tick * sample_rate), 0
        while done < total:
            index = np.arange(done, done + step)
            beep = (index >= onset) & (index < onset + sample_rate // 20)
            samples = np.where(beep, 0.8 * np.sin(2 * np.pi * 1000 * index / sample_rate), 0).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, done, Fraction(1, sample_rate)
            for packet in audio.encode(frame):
                out.mux(packet)
            done += step
        for packet in audio.encode():
            out.mux(packet)
    return path


def flash_and_beep(path: Path) -> tuple[float, float]:
    """When a player shows the white frame and when the beep starts, in seconds, as FFmpeg
    decodes them (mp4's edit list and Opus's pre-skip applied)."""
    flash = beep = None
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0], container.streams.audio[0]):
            if isinstance(frame, av.VideoFrame):
                if flash is None and frame.to_ndarray(format="gray").mean() > 128:
                    flash = float(frame.pts * frame.time_base)
            elif beep is None:
                loud = np.nonzero(np.abs(frame.to_ndarray()).max(axis=0) > 0.2)[0]
                if len(loud):
                    beep = float(frame.pts * frame.time_base) + loud[0] / frame.sample_rate
    assert flash is not None and beep is not None, f"{path}: no flash or no beep"
    return flash, beep


def alpha_clip(path: Path, *, codec: str = "ffv1", pix_fmt: str = "yuva420p", frames: int = 3, size=(32, 24)) -> Path:
    """A clip whose left half is transparent and right half opaque, in a pixel format with alpha."""
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libvpx":  # VP8 takes transparency only without alternate reference frames
            stream.options = {"auto-alt-ref": "0"}
        for i in range(frames):
            rgba = np.zeros((height, width, 4), np.uint8)
            rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 40 * i, 90
            rgba[:, width // 2:, 3] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format=pix_fmt)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def alpha_halves(path: Path) -> list[tuple[float, float]]:
    """Each frame's mean alpha in its left and right quarter (0-255). A WebM's VP8/VP9 alpha plane
    is read with libvpx's decoder, as FFmpeg's own leave it out."""
    import av

    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        libvpx = {"vp8": "libvpx", "vp9": "libvpx-vp9"}.get(stream.codec_context.name)
        if libvpx and stream.metadata.get("alpha_mode") == "1":
            context = av.CodecContext.create(libvpx, "r")
            frames = (frame for packet in container.demux(stream) for frame in context.decode(packet))
        else:
            frames = container.decode(stream)
        for frame in frames:
            alpha = frame.to_ndarray(format="rgba")[..., 3].astype(float)
            quarter = alpha.shape[1] // 4
            out.append((alpha[:, :quarter].mean(), alpha[:, -quarter:].mean()))
    return out


def write_pattern_frames(out, stream, frames: int) -> None:
    """Encode ``frames`` test-pattern pictures (one tick apart) into ``stream`` of ``out`` and flush it."""
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern(i, stream.width, stream.height), format="rgb24").reformat(format=stream.pix_fmt)
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def write_hevc10(path: Path, *, frames: int, size: tuple[int, int] = (32, 24), hdr10: bool = False) -> Path:
    """A 10-bit HEVC clip of flat frames at 10 fps (``hdr10``: tagged BT.2020/PQ with HDR10
    mastering-display and light-level metadata), written by libx265 as a camera or encoder would."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx265", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        params = "log-level=error"
        if hdr10:
            params += ":master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"
            stream.codec_context.color_primaries, stream.codec_context.color_trc, stream.codec_context.colorspace = 9, 16, 9
        stream.options = {"x265-params": params}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 20000 * (i + 1), np.uint16), format="rgb48le")
            frame = frame.reformat(format="yuv420p10le")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path

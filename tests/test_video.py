"""Video in, video out: every frame with its timestamp, colour tags, rotation and other streams kept.

Clips are made here with PyAV (tests/videos.py): tiny frames, a few dozen of them, real codecs.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from sr_filter.errors import OutputExistsError, SrFilterError, VideoFormatError
from sr_filter.upscaler import Upscaler
from sr_filter.video import upscale_video

from .conftest import ROOT
from .videos import add_cover, describe, frame_arrays, make_clip, write_hevc10, write_pattern_frames

MODEL = "sr-cartoon-x4"


@pytest.fixture(scope="module")
def upscaler():
    return Upscaler(MODEL, device="cpu", tile=32)


def run(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sr_filter", *map(str, args)], capture_output=True, timeout=timeout, env=env)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_cli_mp4_keeps_every_frame_timestamps_and_audio(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=12)
    result = run(clip, "-m", MODEL, "-t", "32", "-o", tmp_path / "clip_x4.mp4")
    assert result.returncode == 0, result.stderr.decode()
    before, after = describe(clip), describe(tmp_path / "clip_x4.mp4")
    assert after["size"] == (128, 96)
    assert len(after["times"]) == 12
    assert after["times"] == pytest.approx(before["times"])
    assert after["others"] == before["others"] == [("audio", "aac")]
    assert after["pix_fmt"] == "yuv420p" and after["codec"] == "h264"
    assert leftovers(tmp_path) == []


def test_frames_are_the_upscaled_source_frames_in_order(tmp_path, upscaler):
    clip = make_clip(tmp_path / "clip.mkv", frames=8, codec="ffv1", pix_fmt="yuv444p", audio=0)
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler)
    source, output = frame_arrays(clip), frame_arrays(tmp_path / "out.mkv")
    assert len(output) == len(source) == 8
    expected = [upscaler.upscale_array(frame).astype(float) for frame in source]
    for i, frame in enumerate(output):  # each output frame is closest to its own upscaled source frame
        errors = [np.abs(frame.astype(float) - e).mean() for e in expected]
        assert int(np.argmin(errors)) == i and errors[i] < 4


def test_the_api_takes_a_preset_by_position_and_a_model_by_name_as_for_images(tmp_path, monkeypatch):
    import inspect

    import sr_filter

    for call in (sr_filter.upscale_video, sr_filter.upscale_animation, sr_filter.upscale_file):
        params = inspect.signature(call).parameters
        assert list(params)[:3] == ["src", "dst", "preset"] and params["model"].kind is inspect.Parameter.KEYWORD_ONLY
    clip = make_clip(tmp_path / "clip.mkv", frames=3, codec="ffv1", pix_fmt="yuv444p", audio=0)
    made = []
    monkeypatch.setattr("sr_filter.upscaler.Upscaler", lambda name, **options: made.append(name) or Upscaler(MODEL, tile=32))
    upscale_video(clip, tmp_path / "a.mkv", "cartoon")
    upscale_video(clip, tmp_path / "b.mkv", "cartoon", model=MODEL)  # the model wins, as on the command line
    assert made == ["cartoon", MODEL]
    assert frame_arrays(tmp_path / "a.mkv")[0].shape == (96, 128, 3)


def test_the_api_fits_videos_and_animations_inside_a_width_and_height_as_the_command_line_does(tmp_path, upscaler):
    """upscale_video and upscale_animation had no width/height (a plain TypeError), where the CLI
    and upscale_file have them."""
    import sr_filter

    clip = make_clip(tmp_path / "clip.mkv", frames=3, size=(32, 24), codec="ffv1", audio=0)
    upscale_video(clip, tmp_path / "w.mkv", upscaler=upscaler, width=64)
    assert describe(tmp_path / "w.mkv")["size"] == (64, 48)
    frames = [Image.new("RGB", (20, 10), (i * 80, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    sr_filter.upscale_animation(tmp_path / "a.gif", tmp_path / "b.gif", upscaler=upscaler, height=25)
    assert Image.open(tmp_path / "b.gif").size == (50, 25)
    # numpy's integers (from an array's shape) are whole numbers too, as tile and quality take them
    sr_filter.upscale_animation(tmp_path / "a.gif", tmp_path / "c.gif", upscaler=upscaler, height=np.int64(25))
    assert Image.open(tmp_path / "c.gif").size == (50, 25)
    upscale_video(clip, tmp_path / "n.mkv", upscaler=upscaler, width=np.int32(64))
    assert describe(tmp_path / "n.mkv")["size"] == (64, 48)
    for call, src, dst in ((upscale_video, clip, "x.mkv"), (sr_filter.upscale_animation, tmp_path / "a.gif", "x.gif")):
        with pytest.raises(SrFilterError, match="give either scale or width/height, not both"):
            call(src, tmp_path / dst, upscaler=upscaler, scale=2, width=64)
        with pytest.raises(SrFilterError, match="width must be a whole number from 1 to 1,000,000"):
            call(src, tmp_path / dst, upscaler=upscaler, width=0)
        assert not (tmp_path / dst).exists()


def test_vfr_mkv_two_audio_tracks_subtitles_and_attachment(tmp_path, upscaler):
    clip = make_clip(tmp_path / "vfr.mkv", frames=24, vfr=True, audio=2, subtitles=True, attachment=True)
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler)
    before, after = describe(clip), describe(tmp_path / "out.mkv")
    gaps = np.diff(after["times"])
    assert len(set(np.round(gaps, 3))) == 3  # variable frame rate kept, not forced to a constant one
    assert after["times"] == pytest.approx(before["times"])
    assert after["others"] == before["others"] == [("audio", "aac"), ("audio", "aac"), ("subtitle", "ssa"), ("attachment", None)]
    with_audio = _packet_counts(tmp_path / "out.mkv")
    assert with_audio == _packet_counts(clip)  # every audio and subtitle packet copied


def _packet_counts(path: Path) -> dict[int, int]:
    import av

    with av.open(str(path)) as container:
        counts: dict[int, int] = {}
        for packet in container.demux():
            if packet.size and packet.stream.type in ("audio", "subtitle"):
                counts[packet.stream.index] = counts.get(packet.stream.index, 0) + 1
        return counts


def test_10bit_colour_tags_rotation_and_aspect_kept(tmp_path, upscaler):
    colour = {"color_range": 1, "colorspace": 9, "color_primaries": 9, "color_trc": 16}
    clip = make_clip(tmp_path / "deep.mp4", frames=8, pix_fmt="yuv422p10le", color=colour, rotation=90)
    upscale_video(clip, tmp_path / "out.mov", upscaler=upscaler)
    before, after = describe(clip), describe(tmp_path / "out.mov")
    assert after["pix_fmt"] == "yuv422p10le"
    for key in ("color_range", "colorspace", "color_primaries", "color_trc", "rotation"):
        assert after[key] == before[key], key
    assert after["rotation"] == 90
    # colours not muted: mean and spread per channel close to the source's
    src, out = frame_arrays(clip)[4].astype(float), frame_arrays(tmp_path / "out.mov")[4].astype(float)
    assert np.abs(src.mean((0, 1)) - out.mean((0, 1))).max() < 3
    assert np.abs(src.std((0, 1)) - out.std((0, 1))).max() < 6


def test_full_range_source_stays_full_range(tmp_path, upscaler):
    clip = make_clip(tmp_path / "full.mkv", frames=4, audio=0, color={"color_range": 2, "colorspace": 1})
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler)
    assert describe(tmp_path / "out.mkv")["color_range"] == 2
    src, out = frame_arrays(clip)[1].astype(float), frame_arrays(tmp_path / "out.mkv")[1].astype(float)
    assert np.abs(src.mean((0, 1)) - out.mean((0, 1))).max() < 3


def _bt601_mean(frame: av.VideoFrame, full: bool) -> np.ndarray:
    """The mean RGB colour of an 8-bit planar YUV frame's stored samples, by BT.601's formula."""
    luma = np.frombuffer(frame.planes[0], np.uint8).reshape(frame.height, -1)[:, :frame.width].astype(float)
    rows, cols = frame.height // frame.planes[1].height, frame.width // frame.planes[1].width
    cb, cr = (np.frombuffer(p, np.uint8).reshape(p.height, -1)[:, :p.width].astype(float).repeat(rows, 0).repeat(cols, 1)
              for p in frame.planes[1:3])
    if full:
        y, u, v = luma, cb - 128, cr - 128
    else:
        y, u, v = (luma - 16) * 255 / 219, (cb - 128) * 255 / 224, (cr - 128) * 255 / 224
    return np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1).clip(0, 255).mean((0, 1))


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_a_full_range_video_keeps_its_colours(tmp_path, upscaler, set5, pix_fmt):
    """swscale's RGB -> full-range YUV wrote every Cb and Cr sample half a level low: a full-range
    video came out green (R -0.7, G +0.5, B -0.9 levels on average against the same picture
    written limited range). Measured on the samples given and written, through BT.601's formula."""
    picture = np.asarray(Image.open(set5 / "baby.png").convert("RGB").resize((32, 32), Image.BICUBIC))
    means = []
    for full in (False, True):
        clip = tmp_path / f"clip{int(full)}.mkv"
        with av.open(str(clip), "w") as out:
            stream = out.add_stream("ffv1", rate=10)
            stream.width, stream.height, stream.pix_fmt = 32, 32, pix_fmt
            stream.codec_context.color_range, stream.codec_context.colorspace = 1 + full, 6
            for i in range(2):
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                    format=pix_fmt, dst_colorspace="ITU601", dst_color_range=1 + full)
                frame.pts = i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        upscale_video(clip, tmp_path / f"out{int(full)}.mkv", upscaler=upscaler)
        with av.open(str(clip)) as given, av.open(str(tmp_path / f"out{int(full)}.mkv")) as done:
            frame = next(done.decode(video=0))
            assert int(frame.color_range) == 1 + full
            # what the upscaling changed, from the samples given to the samples written
            means.append(_bt601_mean(frame, full) - _bt601_mean(next(given.decode(video=0)), full))
    assert np.abs(means[1] - means[0]).max() < 0.3, means


def first_frame_read(clip: Path) -> np.ndarray:
    """The first frame of ``clip`` as the video reader gives it to the network (RGB, 8 or 16 bits)."""
    from sr_filter.video import source

    container = source.open_video(clip)
    try:
        info = source.describe(container, str(clip), scale=1)
        return next(item.array for item in source.items(container, str(clip), info) if isinstance(item, source.Frame))
    finally:
        container.close()


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p"])
def test_subsampled_frames_reach_the_network_at_their_own_brightness(tmp_path, pix_fmt):
    """swscale's direct 4:2:0/4:2:2 -> RGB conversion rounds down: every frame of an ordinary 8-bit
    video reached the network (and so the output) 1-2 levels darker in each channel than its
    samples say. Measured against the BT.601 formula on the stored samples of a lossless clip."""
    clip = tmp_path / "clip.mkv"
    ramp = np.linspace(0, 255, 64)
    picture = np.stack([np.tile(ramp, (48, 1)), np.tile(ramp[:48, None], (1, 64)), np.full((48, 64), 170.0)], -1).astype(np.uint8)
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace="ITU601", dst_color_range=1)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with av.open(str(clip)) as container:  # the stored samples, through the formula (chroma repeated)
        yuv = next(container.decode(video=0))
    luma = np.frombuffer(yuv.planes[0], np.uint8).reshape(48, -1)[:, :64].astype(float)
    rows, cols = 48 // yuv.planes[1].height, 64 // yuv.planes[1].width
    cb, cr = (np.frombuffer(p, np.uint8).reshape(p.height, -1)[:, :p.width].astype(float).repeat(rows, 0).repeat(cols, 1)
              for p in yuv.planes[1:])
    y, u, v = (luma - 16) * 255 / 219, (cb - 128) * 255 / 224, (cr - 128) * 255 / 224
    truth = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1).clip(0, 255)
    seen = first_frame_read(clip)
    assert np.abs(seen.astype(float).mean((0, 1)) - truth.mean((0, 1))).max() < 0.4, (seen.mean((0, 1)), truth.mean((0, 1)))


def _bt709_rgb(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray, full: bool) -> np.ndarray:
    """A 64x48 frame's 10-bit samples through the BT.709 equations (chroma repeated to full size),
    as 8-bit RGB in floats: what an exact reader gives."""
    cb, cr = (c.repeat(48 // c.shape[0], 0).repeat(64 // c.shape[1], 1) for c in (cb, cr))
    if full:
        y, u, v = luma / 1023, (cb - 512) / 1023, (cr - 512) / 1023
    else:
        y, u, v = (luma - 64) / 876, (cb - 512) / 896, (cr - 512) / 896
    r, b = y + 1.5748 * v, y + 1.8556 * u
    return np.stack([r, (y - 0.2126 * r - 0.0722 * b) / 0.7152, b], -1).clip(0, 1) * 255


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv444p10le"])
@pytest.mark.parametrize("full", [True, False])
def test_10bit_frames_reach_the_network_at_their_own_brightness(tmp_path, pix_fmt, full):
    """swscale's 10-bit YUV -> RGB conversion reads dark: a full-range picture by 0.16 levels (in
    8-bit terms) in each channel on average, a limited-range one by 0.4-0.65. Measured against
    the BT.709 equations on the stored samples of a lossless clip."""
    clip = tmp_path / "clip.mkv"
    ramp = np.linspace(0, 65535, 64)
    picture = np.stack([np.tile(ramp, (48, 1)), np.tile(ramp[:48, None] * 1.3, (1, 64)), np.full((48, 64), 43690.0)], -1)
    picture = picture.clip(0, 65535).astype(np.uint16)
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        stream.codec_context.color_range, stream.codec_context.colorspace = 1 + full, 1
        frame = av.VideoFrame.from_ndarray(picture, format="rgb48le").reformat(
            format=pix_fmt, dst_colorspace="ITU709", dst_color_range=1 + full)
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    with av.open(str(clip)) as container:  # the stored samples, through the equations (chroma repeated)
        yuv = next(container.decode(video=0))
    luma, cb, cr = (np.frombuffer(p, "<u2").reshape(p.height, -1)[:, :p.width].astype(float) for p in yuv.planes)
    truth = _bt709_rgb(luma, cb, cr, full)
    seen = first_frame_read(clip)
    assert seen.dtype == np.uint16
    bias = seen.astype(float).mean((0, 1)) / 257 - truth.mean((0, 1))
    assert np.abs(bias).max() < 0.05, bias


@pytest.mark.parametrize("pix_fmt", ["p010le", "p210le", "yuv420p10be"])
@pytest.mark.parametrize("full", [True, False])
def test_semi_planar_10bit_frames_are_read_at_their_own_brightness(pix_fmt, full):
    """A hardware decoder hands 10-bit video over as p010le (luma, then Cb and Cr interleaved, each
    sample in a 16-bit word's top 10 bits), which went past the exact equations (they read planar
    yuv420p10le) to swscale: read 0.5-0.66 levels dark (in 8-bit terms) in each channel, 0.12-0.16
    at full range, as big-endian planar 10-bit was. Measured against the BT.709 equations on the
    frame's own samples."""
    from sr_filter.video.colour import Colour

    ramp = np.linspace(0, 65535, 64)
    picture = np.stack([np.tile(ramp, (48, 1)), np.tile(ramp[:48, None] * 1.3, (1, 64)), np.full((48, 64), 43690.0)], -1)
    frame = av.VideoFrame.from_ndarray(picture.clip(0, 65535).astype(np.uint16), format="rgb48le").reformat(
        format=pix_fmt, dst_colorspace="ITU709", dst_color_range=1 + full)
    assert frame.format.name == pix_fmt
    big = pix_fmt.endswith("be")
    planes = [np.frombuffer(p, ">u2" if big else "<u2").reshape(p.height, -1).astype(float) for p in frame.planes]
    if big:  # planar: Y, Cb, Cr
        luma, cb, cr = (p[:, : (64 if i == 0 else 32)] for i, p in enumerate(planes))
    else:  # semi-planar, the samples in the top 10 bits
        luma, both = planes[0][:, :64] / 64, planes[1][:, :64] / 64
        cb, cr = both[:, 0::2], both[:, 1::2]
    truth = _bt709_rgb(luma, cb, cr, full)
    seen = Colour(range=1 + full, matrix=1).to_rgb(frame, deep=True)
    assert seen.dtype == np.uint16 and seen.shape == (48, 64, 3)
    bias = seen.astype(float).mean((0, 1)) / 257 - truth.mean((0, 1))
    assert np.abs(bias).max() < 0.05, bias  # each channel's own: Cb and Cr swapped would move red and blue by 40+


@pytest.mark.parametrize(("source", "encoder", "written"), [
    ("p210le", "libx264", "yuv422p10le"), ("nv16", "libx265", "yuv422p"), ("p410le", "ffv1", "yuv444p10le"),
    ("nv24", "libx264", "yuv444p"), ("y210le", "libx265", "yuv422p10le"), ("p216le", "ffv1", "yuv422p16le"),
    ("p216le", "libsvtav1", "yuv420p10le"), ("yuv444p12le", "libsvtav1", "yuv420p10le"), ("nv12", "libx265", "yuv420p")])
def test_the_written_format_keeps_a_semi_planar_sources_chroma_and_depth(source, encoder, written):
    """Formats whose names carry no "422" or "444" (hardware decoders' p210le, nv16, p410le ...)
    had been taken for 4:2:0, so 10-bit 4:2:2 was written as 4:2:0 without a word; 12- and
    16-bit had been written at 10 bits where FFV1 keeps them, and 16-bit 4:2:2 went to SVT-AV1
    at 8 bits. The notice compares the same layouts."""
    from sr_filter.video.colour import Colour
    from sr_filter.video.encode import VideoInfo, choose_pix_fmt, depth_notice

    assert choose_pix_fmt(source, encoder) == written
    info = VideoInfo(width=32, height=24, codec="rawvideo", pix_fmt="nv16", time_base=Fraction(1, 12), rate=Fraction(12),
                     sar=None, colour=Colour())
    assert "colour detail of the source's nv16 is halved" in depth_notice(info, "av1", "matroska")
    info.pix_fmt = "nv12"
    assert depth_notice(info, "av1", "matroska") is None


@pytest.mark.parametrize("tagged", [0, 1])
def test_grey_video_keeps_its_range(tmp_path, upscaler, tagged):
    """swscale passes grey samples through whatever the range says: an untagged grey source (full
    range, as FFmpeg reads it) had come out with its samples unchanged but tagged limited, so
    players crushed 10 to black and 245 to white; a limited-range one had not been expanded."""
    bands = np.repeat(np.array([0, 10, 128, 245, 255, 60, 200, 30], np.uint8), 8)[None].repeat(48, 0)
    clip = tmp_path / "grey.mkv"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "gray"
        stream.codec_context.color_range = tagged
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(bands, format="gray")
            frame.pts, frame.color_range = i, tagged
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    for name, codec in (("out.mkv", "ffv1"), ("out.mp4", "h264")):
        upscale_video(clip, tmp_path / name, upscaler=upscaler, codec=codec)
        with av.open(str(tmp_path / name)) as done:
            frame = next(done.decode(video=0))
            shown = frame.reformat(format="rgb24", src_color_range=frame.color_range, dst_color_range=2).to_ndarray()
            limited_grey = frame.format.name == "gray" and frame.color_range == 1  # swscale would not expand it
        middles = shown[80, 32 * np.arange(8) + 16, 0].astype(float)  # the middle of each band, x4
        want = bands[0, 8 * np.arange(8)].astype(float)
        expand = lambda v: np.clip(np.rint((v - 16) * 255 / 219), 0, 255)  # noqa: E731 - what a player shows of limited range
        middles = expand(middles) if limited_grey else middles
        want = expand(want) if tagged == 1 else want
        assert np.abs(middles - want).max() <= 3, (name, middles, want)


def test_hdr10_static_metadata_that_is_not_kept_is_said(tmp_path, upscaler, caplog):
    """The mastering display and light levels of an HDR10 source had been dropped without a word."""
    clip = write_hevc10(tmp_path / "hdr.mkv", frames=3, size=(64, 48), hdr10=True)
    with caplog.at_level("WARNING"):
        upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler)
    assert caplog.text.count("carries HDR10 mastering-display and light-level metadata, which the output does not keep") == 1
    assert describe(tmp_path / "out.mkv")["color_trc"] == 16  # the PQ tag itself is kept


def test_webm_vp9_with_opus_into_mp4_and_codec_choice(tmp_path, upscaler):
    clip = make_clip(tmp_path / "clip.webm", frames=6, codec="libvpx-vp9")
    summary = upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler)
    assert summary["codec"] == "vp9"  # the source's family, which mp4 can hold
    assert describe(tmp_path / "out.mp4")["others"] == [("audio", "opus")]
    summary = upscale_video(clip, tmp_path / "out265.mp4", upscaler=upscaler, codec="hevc", crf=28)
    assert describe(tmp_path / "out265.mp4")["codec"] == "hevc"


def test_streams_the_container_cannot_hold_are_named(tmp_path, upscaler):
    clip = make_clip(tmp_path / "subs.mkv", frames=6, subtitles=True, attachment=True)
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler, notice=notices.append)
    assert any("attachment" in n for n in notices), notices
    assert describe(tmp_path / "out.mp4")["others"] == [("audio", "aac"), ("subtitle", "mov_text")]
    notices.clear()
    upscale_video(clip, tmp_path / "out.avi", upscaler=upscaler, notice=notices.append)
    assert "dropped subtitle stream 2 (ssa): an .avi file cannot hold ssa; a .mkv output keeps it" in notices, notices


def test_every_warning_of_a_job_reaches_the_notice_callback(tmp_path, upscaler, caplog):
    """An API caller that passes ``notice`` (a GUI, which shows no log) hears the job's warnings
    there: those said while the frames were read (a frame range past the end, a gap, damage
    skipped) and those of loading the model had gone to the log instead, the callback never hearing them."""
    clip = make_clip(tmp_path / "clip.mkv", frames=6, audio=0)
    notices: list[str] = []
    with caplog.at_level("WARNING"):
        upscale_video(clip, tmp_path / "end.mkv", upscaler=upscaler, frames="0:100", notice=notices.append)
        upscale_video(clip, tmp_path / "photo.mkv", preset="photo", offline=True, device="cpu", notice=notices.append)
    assert notices == [f"the frame range ends at frame 100, but {clip} has 6 frames: upscaled to its end",
                       "offline: using the built-in model sr-photo-x4 instead of realesr-general-x4v3 (not downloaded yet)"], notices
    assert not caplog.records, caplog.text  # said once, to the caller's callback
    with caplog.at_level("WARNING"):  # without a callback, the log hears them as before
        upscale_video(clip, tmp_path / "logged.mkv", upscaler=upscaler, frames="0:100")
    assert "the frame range ends at frame 100" in caplog.text


@pytest.mark.parametrize("resume", [False, True])
def test_dropped_streams_are_said_before_the_upscale_with_or_without_resume(tmp_path, upscaler, resume):
    """With resume=True the dropped and converted streams were said only after the segments were
    joined, hours into a long video, where one run writing the file says them at its first frame."""
    clip = make_clip(tmp_path / "subs.mkv", frames=6, subtitles=True, attachment=True)
    heard: list[str] = []
    summary = upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler, resume=resume, notice=heard.append,
                            progress=lambda done, total: heard.append(f"frame {done}"))
    said = [f"dropped {line}" for line in summary["dropped"]] + [f"converted {line}" for line in summary["converted"]]
    assert len(said) == 2 and heard[:2] == said and heard[2:] == [f"frame {n}" for n in range(1, 7)], heard


def test_a_batch_names_each_video_once_in_its_notices(tmp_path, cli):
    """A batch puts the video's name in front of its notices; a notice that names it already
    (said through the notice callback, as every warning of the job now is) had named it twice."""
    for name in ("a.mkv", "b.mkv"):
        make_clip(tmp_path / name, frames=3, audio=0)
    done = cli(tmp_path / "a.mkv", tmp_path / "b.mkv", "-o", tmp_path / "out", "--frames", "0:100", "-m", MODEL, "-d", "cpu")
    lines = [line for line in done.stderr.decode().splitlines() if "frame range" in line]
    assert done.returncode == 0 and lines == [f"sr-filter: the frame range ends at frame 100, but {tmp_path / n} has 3 frames: "
                                              "upscaled to its end" for n in ("a.mkv", "b.mkv")], done.stderr.decode()


def _cues(path) -> list[tuple[float, float, str]]:
    """(start, seconds shown, text) of each subtitle cue, as a player decodes them."""
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        cues = []
        for packet in container.demux(stream):
            shown = stream.decode2(packet) if packet.size else None
            if shown is not None and len(shown):
                text = b"".join(cue.dialogue for cue in shown).decode()
                cues.append((round(float(packet.pts * packet.time_base), 3), round(float(packet.duration * packet.time_base), 3), text))
        return cues


@pytest.mark.parametrize("name, codec, resume, file", [("out.mp4", "mov_text", False, "an .mp4 or .m4v file"), ("out.mov", "mov_text", False, "a .mov file"),
                                                       ("out.webm", "webvtt", False, "a .webm file"), ("out.mp4", "mov_text", True, "an .mp4 or .m4v file")])
def test_text_subtitles_are_converted_for_a_container_that_holds_another_text_codec(tmp_path, upscaler, name, codec, resume, file):
    """.mp4 and .mov hold only mov_text and .webm only WebVTT: an .mkv's ASS subtitles had been
    dropped going into them. They are converted, each cue at its time with its text and the
    track's language and title, and the notice says so and that ASS styles are lost."""
    clip = make_clip(tmp_path / "clip.mkv", frames=24, audio=0, subtitles=True, subtitle_tags={"language": "ger", "title": "Deutsch"})
    notices: list[str] = []
    summary = upscale_video(clip, tmp_path / name, upscaler=upscaler, notice=notices.append, resume=resume,
                            **({"codec": "vp9"} if name.endswith(".webm") else {}))
    assert summary["converted"] == [f"subtitle stream 1 (ssa) to {codec}: {file} cannot hold ssa; its styles (fonts, colours, "
                                    "places) are lost, which a .mkv output keeps"]
    assert f"converted {summary['converted'][0]}" in notices and not summary["dropped"]
    assert describe(tmp_path / name)["others"] == [("subtitle", codec)]
    assert _cues(tmp_path / name) == _cues(clip) and len(_cues(clip)) == 4
    assert [tags[1:3] for tags in _tags(tmp_path / name)] == [("ger", "Deutsch")]


def _subrip_clip(path, cues: list[tuple[int, int, str]], frames: int = 36, codec: str = "subrip") -> None:
    """A 12 fps clip with SubRip (or ``codec``) cues of (start ms, length ms, text)."""
    from fractions import Fraction

    header = av.CodecContext.create("subrip", "r")
    header.open()
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        text = out.add_stream(codec)
        text.codec_context.subtitle_header = header.subtitle_header
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), i * 7, np.uint8), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        for start, length, words in cues:
            cue = av.Packet(words.encode())
            cue.stream, cue.pts, cue.dts, cue.duration, cue.time_base = text, start, start, length, Fraction(1, 1000)
            out.mux(cue)


def test_webvtt_into_mp4_says_its_cue_settings_are_lost(tmp_path, upscaler):
    """WebVTT cue settings (positions) and identifiers went into mov_text without a word; the line
    had warned of lost styles for ASS alone."""
    _subrip_clip(tmp_path / "vtt.mkv", [(0, 500, "hello")], codec="webvtt")
    notices: list[str] = []
    upscale_video(tmp_path / "vtt.mkv", tmp_path / "out.mp4", upscaler=upscaler, notice=notices.append)
    assert notices == ["converted subtitle stream 1 (webvtt) to mov_text: an .mp4 or .m4v file cannot hold webvtt; its styles "
                       "(fonts, colours, places) are lost, which a .mkv output keeps"], notices
    assert [text for _, _, text in _cues(tmp_path / "out.mp4")] == ["hello"]


@pytest.mark.parametrize("name, resume", [("out.mp4", False), ("out.mov", False), ("out.mp4", True)])
def test_overlapping_cues_keep_their_times_in_mov_text(tmp_path, upscaler, name, resume):
    """mov_text shows one cue at a time, and FFmpeg's mov writer moved each overlapping cue to where
    the one before ended: eight cues 0.25 s apart and 0.5 s long drifted, the last 1.75 s late. The
    cues on screen together are now one cue per stretch of time, a line each."""
    _subrip_clip(tmp_path / "ovl.mkv", [(i * 250, 500, f"cue {i}") for i in range(8)])
    upscale_video(tmp_path / "ovl.mkv", tmp_path / name, upscaler=upscaler, notice=lambda _: None, resume=resume)
    want = [(0.0, 0.25, "cue 0")] + [(i * 0.25, 0.25, f"cue {i - 1}\ncue {i}") for i in range(1, 8)] + [(2.0, 0.25, "cue 7")]
    assert _cues(tmp_path / name) == want


def test_a_cue_that_cannot_be_converted_is_said_and_the_rest_kept(tmp_path, upscaler, caplog):
    """mov_text holds at most 64 KiB per cue: a longer SubRip cue had been left out without a word."""
    from fractions import Fraction

    header = av.CodecContext.create("subrip", "r")
    header.open()
    with av.open(str(tmp_path / "long.mkv"), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        text = out.add_stream("subrip")
        text.codec_context.subtitle_header = header.subtitle_header
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.zeros((24, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
            if i in (2, 6):
                cue = av.Packet(("y" * 70000 if i == 2 else "short").encode())
                cue.stream, cue.pts, cue.dts, cue.duration, cue.time_base = text, i * 83, i * 83, 80, Fraction(1, 1000)
                out.mux(cue)
        for packet in video.encode():
            out.mux(packet)
    notices: list[str] = []
    upscale_video(tmp_path / "long.mkv", tmp_path / "long.mp4", upscaler=upscaler, notice=notices.append)
    assert any("subtitle stream 1: a cue at 0.166 s could not be converted to mov_text" in n for n in notices), notices
    with caplog.at_level("WARNING"):  # no callback: the log
        upscale_video(tmp_path / "long.mkv", tmp_path / "logged.mp4", upscaler=upscaler, resume=True)
    assert "subtitle stream 1: a cue at 0.166 s could not be converted to mov_text" in caplog.text, caplog.text
    assert [text for _, _, text in _cues(tmp_path / "long.mp4")] == ["short"]


def test_language_tags_and_flags_a_container_cannot_hold_are_said(tmp_path, upscaler):
    """A .mov written by FFmpeg keeps only languages with a Macintosh code (fre and deu came out with
    none, though fra and ger are kept) and only the default flag (forced came out 0); a .webm drops
    hearing impaired. All without a word. Now the other ISO 639-2 spelling is used where it is kept,
    and what is lost is one line each."""
    from av.stream import Disposition

    clip = make_clip(tmp_path / "langs.mkv", frames=4, audio=3,
                     audio_tags=[{"language": "fre"}, {"language": "deu", "disposition": Disposition.forced},
                                 {"language": "swe", "disposition": Disposition.hearing_impaired}])
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.mov", upscaler=upscaler, notice=notices.append)
    assert [(tags[1], tags[3]) for tags in _tags(tmp_path / "out.mov")] == [("fra", 1), ("ger", 0), (None, 0)]
    assert notices == [
        "dropped the forced flag of audio stream 2: a .mov file cannot hold it; a .mkv or .mp4 output keeps it",
        "dropped the language tag (swe) of audio stream 3: a .mov file keeps only languages FFmpeg has a Macintosh code "
        "for; an .mp4 or .mkv output keeps it",
        "dropped the hearing impaired flag of audio stream 3: a .mov file cannot hold it; a .mkv or .mp4 output keeps it"]
    notices.clear()
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, notice=notices.append)
    assert notices == [] and [tags[1] for tags in _tags(tmp_path / "out.mkv")] == ["fre", "deu", "swe"]
    notices.clear()  # an .avi holds no language: every track's had been lost without a word
    upscale_video(clip, tmp_path / "out.avi", upscaler=upscaler, notice=notices.append)
    assert [tags[1] for tags in _tags(tmp_path / "out.avi")] == [None, None, None]
    assert [n for n in notices if "language" in n] == [
        f"dropped the language tag ({code}) of audio stream {number}: an .avi file cannot hold it; a .mkv or .mp4 output keeps it"
        for number, code in ((1, "fre"), (2, "deu"), (3, "swe"))], notices


def test_mov_text_becomes_subrip_in_matroska_and_a_frame_range_cuts_its_cues(tmp_path, upscaler):
    clip = make_clip(tmp_path / "clip.mkv", frames=24, audio=0, subtitles=True)
    upscale_video(clip, tmp_path / "mid.mp4", upscaler=upscaler, notice=lambda _: None)
    notices: list[str] = []
    upscale_video(tmp_path / "mid.mp4", tmp_path / "out.mkv", upscaler=upscaler, notice=notices.append, frames=(5, 20))
    assert notices == ["converted subtitle stream 1 (mov_text) to subrip: an .mkv file cannot hold mov_text"]
    # frame 5 starts at 5/12 s: the cue shown from 0.5 s comes 1/12 s after the range's start
    assert _cues(tmp_path / "out.mkv") == [(0.083, 0.4, "line 1"), (0.583, 0.4, "line 2"), (1.083, 0.167, "line 3")]


def test_frame_range(tmp_path, upscaler, caplog):
    clip = make_clip(tmp_path / "clip.mp4", frames=24)
    summary = upscale_video(clip, tmp_path / "part.mp4", upscaler=upscaler, frames="6:12")
    after = describe(tmp_path / "part.mp4")
    assert summary["frames"] == len(after["times"]) == 6
    assert after["times"][0] == pytest.approx(0.0)
    assert after["times"] == pytest.approx(np.array(describe(clip)["times"][6:12]) - 0.5)
    with pytest.raises(VideoFormatError, match="START:END"):
        upscale_video(clip, tmp_path / "bad.mp4", upscaler=upscaler, frames="9:3")
    with caplog.at_level("WARNING"):  # beyond the end: said (it had given 1 frame without a word)
        assert upscale_video(clip, tmp_path / "end.mp4", upscaler=upscaler, frames="23:100")["frames"] == 1
    assert f"the frame range ends at frame 100, but {clip} has 24 frames: upscaled to its end" in caplog.text


def test_container_that_cannot_hold_the_codec(tmp_path, upscaler):
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    with pytest.raises(VideoFormatError, match="webm file cannot hold h264"):
        upscale_video(clip, tmp_path / "out.webm", upscaler=upscaler, codec="h264")
    with pytest.raises(VideoFormatError, match="unknown video codec 'divx'; choose one of"):
        upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, codec="divx")
    with pytest.raises(VideoFormatError, match="unknown video codec 'h265'; did you mean hevc\\?"):
        upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, codec="h265")
    for wrong in (5, b"h264", ["h264"]):  # had been AttributeError: 'int' object has no attribute 'lower'
        with pytest.raises(VideoFormatError, match=f"codec must be a name, one of h264, .* \\(or None\\), not {re.escape(repr(wrong))}$"):
            upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, codec=wrong)
    assert not (tmp_path / "out.webm").exists() and leftovers(tmp_path) == []


def test_a_codec_name_is_taken_as_a_device_name_is(tmp_path, upscaler):
    """codec=" H264" (a value read from a settings file) had been "unknown video codec ' H264'",
    where device=" CPU" and format=" PNG" are taken."""
    clip = make_clip(tmp_path / "clip.mkv", frames=2, audio=0)
    assert upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler, codec=" H264\n")["codec"] == "h264"


def test_truncated_corrupt_and_empty_files(tmp_path, upscaler):
    clip = make_clip(tmp_path / "clip.mp4", frames=8)
    data = clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # mp4 index (moov) is at the end: lost
    (tmp_path / "noise.mkv").write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (tmp_path / "empty.mp4").write_bytes(b"")
    make_clip(tmp_path / "zero.mkv", frames=0, audio=0)
    whole = make_clip(tmp_path / "whole.mkv", frames=24).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) * 3 // 5])  # Matroska: readable up to the cut
    short = make_clip(tmp_path / "short.mkv", frames=8).read_bytes()  # 0.67 s: half of it lost is less than half a second
    (tmp_path / "cut-short.mkv").write_bytes(short[: len(short) * 7 // 10])
    for name in ("cut.mp4", "noise.mkv", "empty.mp4", "zero.mkv", "cut.mkv", "cut-short.mkv"):
        with pytest.raises(VideoFormatError) as info:
            upscale_video(tmp_path / name, tmp_path / f"out_{name}", upscaler=upscaler)
        assert name in str(info.value) and "\n" not in str(info.value)
        assert "Errno" not in str(info.value)  # FFmpeg's error number ([Errno 1094995529]) means nothing to users
        assert not (tmp_path / f"out_{name}").exists()
        if name == "cut.mkv":  # the way to save what it has is said, and works
            rescue = re.search(r"the frame range (0:\d+) upscales the \d+ frames it has$", str(info.value))
            assert rescue, str(info.value)
            upscale_video(tmp_path / name, tmp_path / "rescued.mkv", upscaler=upscaler, frames=rescue.group(1))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("codec", ["libx264", "libvpx-vp9"])
def test_sound_that_outlasts_the_picture_is_no_cut_file(tmp_path, upscaler, codec):
    """FFmpeg gives a Matroska video stream the whole file's duration: with 3 s of sound after
    0.5 s of picture, a valid file was refused as truncated (H.264 without B-frames) or its last
    frame was shown until the sound ended."""
    from .videos import _write_tone, write_pattern_frames

    clip = tmp_path / "long-sound.mkv"
    with av.open(str(clip), "w") as out:
        video = out.add_stream(codec, rate=12)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        if codec == "libx264":
            video.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        sound = out.add_stream("aac", rate=8000, layout="mono")
        write_pattern_frames(out, video, 6)
        _write_tone(out, sound, 3.0, 440.0)
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"out{suffix}"
        upscale_video(clip, out, upscaler=upscaler, codec="h264")
        facts = describe(out)
        assert len(facts["times"]) == 6 and ("audio", "aac") in facts["others"]
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            end = next(f for f in reversed(list(container.decode(stream))))  # the last frame's display time
            assert float((end.pts + end.duration) * end.time_base) == pytest.approx(0.5, abs=0.01)


def test_an_interlaced_source_is_said_to_be_upscaled_as_whole_pictures(tmp_path, upscaler):
    """Interlaced pictures came out progressive, their combing enlarged, without a word."""
    from .videos import write_pattern_frames

    clip = tmp_path / "fields.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "x264-params": "interlaced=1:tff=1"}
        write_pattern_frames(out, video, 3)
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler, notice=notices.append)
    assert notices == ["the source is interlaced (top field first): both fields are upscaled together as one picture "
                       "and written progressive, which enlarges the combing on motion; deinterlace it first "
                       "(for example ffmpeg -vf bwdif)"]
    notices.clear()
    upscale_video(make_clip(tmp_path / "plain.mp4", frames=3), tmp_path / "plain-out.mp4", upscaler=upscaler,
                  notice=notices.append)
    assert not [n for n in notices if "interlaced" in n]


def test_a_timecode_is_kept(tmp_path, upscaler):
    """A QuickTime timecode (the video's tag and its tmcd track) was lost, with "a .mov file
    cannot hold unknown" for the track."""
    clip = make_clip(tmp_path / "tc.mov", frames=4, video_tags={"timecode": "01:00:00:00"})
    with av.open(str(clip)) as source:
        assert [s.type for s in source.streams] == ["video", "audio", "data"]  # the writer's tmcd track
    for target, resume in (("o.mov", False), ("r.mov", True), ("o.mkv", False), ("o.mp4", False)):
        notices: list[str] = []
        upscale_video(clip, tmp_path / target, upscaler=upscaler, resume=resume, notice=notices.append)
        assert not [n for n in notices if "cannot hold" in n], notices
        with av.open(str(tmp_path / target)) as out:
            tags = {k.lower(): v for k, v in out.streams.video[0].metadata.items()}
            assert tags.get("timecode") == "01:00:00:00", (target, tags)
            if target.endswith((".mov", ".mp4")):
                assert "data" in [s.type for s in out.streams], target  # the track, written anew


def test_a_size_rounded_to_even_is_said(tmp_path, upscaler, cli):
    """Encoders take even picture sizes: 21x15 at x3 is written 64x46 (halves round up, as sizes do), which had happened silently."""
    clip = make_clip(tmp_path / "odd.mkv", frames=2, size=(21, 15), codec="ffv1", audio=0)
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, scale=3, notice=notices.append)
    assert notices == ["the video is written 64x46, not 63x45: video encoders take even picture sizes"]
    assert describe(tmp_path / "out.mkv")["size"] == (64, 46)
    # 31 x 1.5 = 46.5 is 47 by the size rule, written 46: said (it had been compared with round()'s 46, and not said)
    clip = make_clip(tmp_path / "odd31.mkv", frames=2, size=(31, 21), codec="ffv1", audio=0)
    notices.clear()
    upscale_video(clip, tmp_path / "out31.mkv", upscaler=upscaler, scale=1.5, notice=notices.append)
    assert notices == ["the video is written 46x32, not 47x32: video encoders take even picture sizes"]
    # a width asked for is named: --width 41 on 40x30 is 40x30, where a picture is 41x31 (it had said "40x30, not 40x30"
    # or, on other sizes, compared with the even scale's own size and not named the width asked for)
    clip = make_clip(tmp_path / "w40.mkv", frames=2, size=(40, 30), codec="ffv1", audio=0)
    notices.clear()
    upscale_video(clip, tmp_path / "w41.mkv", upscaler=upscaler, width=41, notice=notices.append)
    assert notices == ["the video is written 40x30, not 41x31: video encoders take even picture sizes"]
    assert describe(tmp_path / "w41.mkv")["size"] == (40, 30)
    # a turned video's sizes are said as players show it (it had said the stored 40x30 for a 30x40 picture)
    clip = make_clip(tmp_path / "turned.mp4", frames=2, size=(40, 30), rotation=90, audio=0)
    notices.clear()
    upscale_video(clip, tmp_path / "t31.mp4", upscaler=upscaler, width=31, notice=notices.append)
    assert [n for n in notices if "even picture sizes" in n] == [
        "the video is written 30x40, not 31x41: video encoders take even picture sizes"], notices
    # in a batch of videos the line names its video (the progress line naming it comes after it)
    said = cli(tmp_path / "odd.mkv", tmp_path / "odd31.mkv", "-o", tmp_path / "batch", "-m", MODEL, "-s", "3")
    lines = said.stderr.decode().splitlines()
    assert said.returncode == 0 and f"sr-filter: {tmp_path / 'odd.mkv'}: the video is written 64x46, not 63x45: video " \
        "encoders take even picture sizes" in lines, lines


def test_a_picture_named_as_a_video_is_refused(tmp_path, upscaler):
    """FFmpeg reads a lone PNG or JPEG as a one-frame video: a PNG named .mp4 became an H.264 file."""
    Image.new("RGB", (8, 6)).save(tmp_path / "png.mp4", "PNG")
    Image.new("RGB", (8, 6)).save(tmp_path / "jpeg.mkv", "JPEG")
    for name, kind in (("png.mp4", "a PNG image"), ("jpeg.mkv", "a JPEG image")):
        with pytest.raises(VideoFormatError, match=f"{name} is {kind}, not a video; give it an image name"):
            upscale_video(tmp_path / name, tmp_path / f"out-{name}", upscaler=upscaler)
        assert not (tmp_path / f"out-{name}").exists()
    import sr_filter

    # a picture named as one, given to the API's upscale_video, or a video to upscale_animation: which call
    # takes it (renaming it to .png had been the advice for a file named .png, and a video "not a readable image")
    Image.new("RGB", (8, 6)).save(tmp_path / "still.png")
    with pytest.raises(VideoFormatError, match=r"still.png is a PNG image, not a video; sr_filter.upscale_file\(src, dst\) "):
        upscale_video(tmp_path / "still.png", tmp_path / "out.mkv", upscaler=upscaler)
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=0)
    with pytest.raises(SrFilterError, match=r"clip.mp4 is a video; sr_filter.upscale_video\(src, dst\) upscales videos"):
        sr_filter.upscale_animation(clip, tmp_path / "out.gif", upscaler=upscaler)
    assert not (tmp_path / "out.mkv").exists() and not (tmp_path / "out.gif").exists()


@pytest.mark.parametrize("name", ["song.mkv", "song.mp4"])
def test_an_audio_file_with_cover_art_is_refused_as_having_no_video(tmp_path, upscaler, name, cli):
    """Its only video stream is the attached cover picture: an .mkv had been upscaled into a
    one-frame H.264 "video" of it (exit 0), an .mp4 failed "cannot write OUT.mp4: Invalid
    argument". Refused in one line, before the model loads, saying how to upscale the picture; a
    batch goes on with the other videos."""
    from .videos import cover_only

    song = cover_only(tmp_path / name)
    with pytest.raises(VideoFormatError, match=f"{name} has no video, only a cover picture .*cover.jpg"):
        upscale_video(song, tmp_path / f"out-{name}", upscaler=upscaler)
    done = cli(song, "-o", tmp_path / f"cli-{name}", "--model", MODEL, "--device", "cpu")
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "only a cover picture" in lines[0], lines
    clip = make_clip(tmp_path / "clip.mkv", frames=2, audio=0)
    done = cli(song, clip, "-o", tmp_path / "batch", "--model", MODEL, "--device", "cpu")
    assert done.returncode == 1 and b"only a cover picture" in done.stderr and b"1 upscaled" in done.stderr, done.stderr
    assert sorted(p.name for p in (tmp_path / "batch").iterdir()) == ["clip.mkv"]
    assert not (tmp_path / f"out-{name}").exists() and not (tmp_path / f"cli-{name}").exists()


def test_a_video_named_as_an_image_is_said_to_be_one(tmp_path, cli):
    """`cp a.mp4 clip.png; sr-filter clip.png` had said "not a readable image (unknown or damaged
    format)", where a picture named as a video is told what it is and what name to give it."""
    import sr_filter

    from .videos import make_y4m

    for source, kind, suffix in ((make_clip(tmp_path / "a.mp4", frames=2, audio=0), "an MP4 video", ".mp4"),
                                 (make_clip(tmp_path / "a.mkv", frames=2, audio=0), "a Matroska video", ".mkv")):
        named = tmp_path / f"clip{suffix}.png"
        named.write_bytes(source.read_bytes())
        said = f"{named.name} is {kind}, not an image; give it a video name (such as {suffix}) to upscale it as one"
        result = cli(named, "-m", MODEL)
        assert result.returncode == 1 and result.stderr.decode().strip().endswith(said), result.stderr
        batch = cli(named, tmp_path / "a.mp4", "-m", MODEL, "-o", f"{tmp_path / 'batch'}/", "--overwrite")  # one failure of a batch
        assert batch.returncode == 1 and said in batch.stderr.decode(), batch.stderr
        with pytest.raises(SrFilterError, match=re.escape(said)):
            sr_filter.upscale_file(named, tmp_path / "out.png", "sr-cartoon-x4")
    stream = tmp_path / "stream.png"
    stream.write_bytes(make_y4m(tmp_path / "in.y4m", frames=1).read_bytes())
    result = cli(stream, "-m", MODEL)
    assert result.returncode == 1 and b"stream.png is a YUV4MPEG2 frame stream, not an image; give it a .y4m name" in result.stderr


def test_iso_media_pictures_are_not_called_videos():
    """Still pictures in MP4's box format (HEIF sequences, JPEG 2000 in HEIF, a Canon CR3 raw, an
    AVIF that also names mp41) had been called "an MP4 video": renaming them helps nothing."""
    from sr_filter.sniff import video_kind

    def ftyp(major: bytes, *compatible: bytes) -> bytes:
        body = major + b"\0\0\0\0" + b"".join(compatible)
        return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\0\0\0\x08free"

    for still in (ftyp(b"crx ", b"isom"), ftyp(b"hevc", b"mif1"), ftyp(b"j2ki", b"mif1"), ftyp(b"MA1B", b"avif", b"mif1"),
                  ftyp(b"mp41", b"avif"), ftyp(b"abcd", b"isom")):
        assert video_kind(still) is None, still
    assert video_kind(ftyp(b"isom", b"iso2", b"avc1", b"mp41")) == ("an MP4", ".mp4")
    assert video_kind(ftyp(b"qt  ", b"qt  ")) == ("a QuickTime", ".mov")
    assert video_kind(ftyp(b"mp42")) == ("an MP4", ".mp4")


def test_a_video_output_from_standard_input_points_to_frame_streams(tmp_path):
    """`sr-filter - -o o.mkv < in.y4m` had been told that "a video input needs a video suffix":
    standard input has no name; a frame stream is what it takes."""
    from .test_video_streams import run as run_with_input
    from .videos import make_y4m

    data = make_y4m(tmp_path / "in.y4m", frames=1).read_bytes()
    result = run_with_input("-", "-o", tmp_path / "o.mkv", "-m", MODEL, stdin=data)
    err = result.stderr.decode().strip()
    assert result.returncode == 2 and err.count("\n") == 0 and "o.mkv names a video file, which is not made from standard " \
        "input" in err and "--format y4m | ffmpeg -i - o.mkv" in err, err
    assert not (tmp_path / "o.mkv").exists()


def test_unknown_codec(tmp_path, upscaler):
    clip = make_clip(tmp_path / "clip.avi", frames=4, codec="ffv1", audio=0)
    (tmp_path / "odd.avi").write_bytes(clip.read_bytes().replace(b"FFV1", b"QZQZ"))
    with pytest.raises(VideoFormatError, match="unknown|not a readable"):
        upscale_video(tmp_path / "odd.avi", tmp_path / "out.mkv", upscaler=upscaler)


def test_huge_header_is_refused_before_decoding(tmp_path, upscaler):
    for side in (16000, 100000):
        path = tmp_path / f"huge{side}.y4m"
        path.write_bytes(f"YUV4MPEG2 W{side} H{side} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + b"\0" * 1000)
        with pytest.raises(VideoFormatError) as info:
            upscale_video(path, tmp_path / "out.mkv", upscaler=upscaler)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "out.mkv").exists()


def test_existing_output_and_unwritable_folder(tmp_path, upscaler):
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    (tmp_path / "taken.mp4").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        upscale_video(clip, tmp_path / "taken.mp4", upscaler=upscaler)
    assert (tmp_path / "taken.mp4").read_bytes() == b"keep"
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(VideoFormatError, match="a-file is a file, not a folder; choose another output path"):
        upscale_video(clip, tmp_path / "a-file" / "out.mp4", upscaler=upscaler)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root can write anywhere; others cannot write here
            with pytest.raises(VideoFormatError, match="cannot write"):
                upscale_video(clip, locked / "out.mp4", upscaler=upscaler)
    finally:
        locked.chmod(0o700)


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\x11" * 3000)
    result = run(tmp_path / "broken.mp4", "-m", MODEL, "-o", tmp_path / "out.mp4")
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode != 0
    assert len([line for line in lines if "error" in line]) == 1 and "Traceback" not in result.stderr.decode()
    assert "broken.mp4" in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_sigterm_leaves_no_partial_output(tmp_path):
    clip = make_clip(tmp_path / "long.mkv", frames=400, size=(64, 48), audio=0)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "sr_filter", clip, "-m", MODEL, "-t", "0", "-o", tmp_path / "out.mkv"],
                               stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.suffix == ".part" for p in tmp_path.iterdir()):
        time.sleep(0.05)
    assert any(p.suffix == ".part" for p in tmp_path.iterdir()), "the job never started writing"
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    err = process.stderr.read().decode()
    assert process.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err  # as for images
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mkv"]


class CountingUpscaler:
    """The real upscaler, counting the frames it is given (to see which work a resume skips)."""

    def __init__(self, upscaler):
        self.inner, self.calls = upscaler, 0

    def __getattr__(self, name):  # scale, name, precision, colour fix, ...: the real one's
        return getattr(self.inner, name)

    def upscale_array(self, array, scale=None, progress=None):
        self.calls += 1
        return self.inner.upscale_array(array, scale, progress)

    def upscale_batch(self, arrays, scale=None, progress=None):
        self.calls += len(arrays)
        return self.inner.upscale_batch(arrays, scale, progress)


def test_resume_continues_after_the_last_finished_segment(tmp_path, upscaler, monkeypatch):
    from sr_filter.errors import CancelledError
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    clip = make_clip(tmp_path / "clip.mkv", frames=24, gop=6, vfr=True, audio=2, subtitles=True)
    target = tmp_path / "out.mkv"
    with pytest.raises(CancelledError):  # stopped after frame 15, as by Ctrl-C
        upscale_video(clip, target, upscaler=upscaler, resume=True, progress=lambda done, total: done < 15)
    assert not target.exists()
    parts = resume.finished(resume.parts_folder(target))
    assert [(a, b) for a, b, _ in parts] == [(0, 6), (6, 12)]  # the cut-short third segment is not kept
    counting = CountingUpscaler(upscaler)
    notices: list[str] = []
    summary = upscale_video(clip, target, upscaler=counting, resume=True, notice=notices.append)
    assert summary["resumed_at"] == 12 and counting.calls == 12 and any("resuming at frame 12" in n for n in notices)
    before, after = describe(clip), describe(target)
    assert after["times"] == pytest.approx(before["times"])  # no frame lost or doubled at the joins
    assert after["others"] == before["others"] and _packet_counts(target) == _packet_counts(clip)
    assert leftovers(tmp_path) == []  # parts folder and temporary files gone
    joined, source = frame_arrays(target), frame_arrays(clip)
    assert len(joined) == 24
    for i in (5, 6, 11, 12, 13):  # either side of the joins: each frame is its own source frame, upscaled
        # (closest to it of its neighbours: the test decodes with swscale's direct conversion, which differs
        # from the pipeline's by a level or two at this pattern's hard edges)
        errors = {j: np.abs(joined[i].astype(float) - upscaler.upscale_array(source[j])).mean() for j in (i - 1, i, i + 1)}
        assert min(errors, key=errors.get) == i and errors[i] < 6, (i, errors)


def test_segment_display_times_are_read_while_the_segment_is_open(tmp_path, upscaler, monkeypatch):
    """A stream's time base read after its container was closed came from freed memory: a joined
    .mkv (--resume, or --cluster) got frames lasting 20 s or a length of 551 years, at random. Here a
    closed segment's streams are made to say another time base, as freed memory may."""
    from fractions import Fraction

    from sr_filter.errors import CancelledError
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    clip = make_clip(tmp_path / "clip.mkv", frames=12, gop=6, audio=0)
    with pytest.raises(CancelledError):  # stopped in the second segment: the first one is kept
        upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, resume=True, progress=lambda done, total: done < 9)
    segments = [path for _, _, path in resume.finished(resume.parts_folder(tmp_path / "out.mkv"))]
    expected = resume._display_times(segments)
    opened = av.open

    class Freed:
        def __init__(self, *args, **kwargs):
            self.container = opened(*args, **kwargs)

        def __enter__(self):
            return self.container

        def __exit__(self, *exc):
            for stream in self.container.streams:
                stream.time_base = Fraction(1, 7)
            self.container.close()

    monkeypatch.setattr(resume.av, "open", Freed)
    assert resume._display_times(segments) == expected and all(0 < shown < 1 for shown in expected.values()), expected


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_resumed_mp4_keeps_every_timestamp_exactly(tmp_path, upscaler, monkeypatch, suffix):
    """Segments are written as mov, whose edit list (the B-frame delay) was counted in
    milliseconds: every frame after the first segment moved by 6 or 12 ticks of 1/18432."""
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 8)
    clip = make_clip(tmp_path / "clip.mp4", frames=24, gop=8, bframes=2, audio=0)
    target = tmp_path / f"out{suffix}"
    upscale_video(clip, target, upscaler=upscaler, resume=True)

    def exact(path):
        with av.open(str(path)) as container:
            return [frame.pts * frame.time_base for frame in container.decode(video=0)]

    assert exact(target) == exact(clip)


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_resumed_matroska_frames_last_as_long_as_in_one_run(tmp_path, upscaler, monkeypatch, suffix):
    """Segments (mov) keep decode-time steps as durations, and Matroska took them as display
    times: beside the joins a frame lasted 0.25 s instead of 0.08, and the last frame twice its time."""
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    clip = make_clip(tmp_path / "clip.mkv", frames=24, gop=6, vfr=True, audio=0)
    upscale_video(clip, tmp_path / f"whole{suffix}", upscaler=upscaler)
    upscale_video(clip, tmp_path / f"resumed{suffix}", upscaler=upscaler, resume=True)

    def shown(path):
        with av.open(str(path)) as container:
            return sorted((p.pts, p.duration) for p in container.demux(video=0) if p.size), container.duration

    assert shown(tmp_path / f"resumed{suffix}") == shown(tmp_path / f"whole{suffix}")


@pytest.mark.parametrize("name, vfr", [("clip.mkv", False), ("clip.webm", False), ("clip.mkv", True), ("clip.mp4", False),
                                       ("clip.ts", False), ("clip.ts", True)])
def test_progress_knows_how_many_frames_to_expect(tmp_path, upscaler, name, vfr):
    """Matroska stores no frame count: progress had been told 0 frames expected for every .mkv and
    .webm (a range too), so no bar had a total or an ETA. The stream's length times its rate is an
    estimate; a range's end bounds it. An MPEG-TS stores no count either, and its H.264 timing
    ticks 1/72 s at 12 fps here (as x264 writes a fine time base): 144 frames expected for 24,
    276 for the variable-rate one; its progressive video's packets are counted too."""
    clip = make_clip(tmp_path / name, frames=24, audio=0, vfr=vfr, **({"codec": "libvpx-vp9"} if name.endswith(".webm") else {}))
    for frames, want in ((None, 24), ((4, 14), 10)):
        seen: list[tuple[int, int]] = []
        upscale_video(clip, tmp_path / f"out-{frames is None}{'.mkv' if name.endswith('.ts') else name[-5:]}", upscaler=upscaler, frames=frames,
                      progress=lambda done, total: seen.append((done, total)))
        totals = {total for _, total in seen}
        assert len(totals) == 1 and seen[-1][0] == want, (seen[:3], seen[-1])
        assert totals.pop() == want


@pytest.mark.parametrize("name, codec", [("gaps.mkv", "libx264"), ("gaps.webm", "libvpx-vp9"), ("gaps.avi", "mpeg4")])
def test_progress_counts_the_frames_of_a_clip_with_gaps(tmp_path, upscaler, name, codec):
    """10 frames spread over 3 s with gaps: Matroska stores no count, and its length times a
    guessed 12 fps had told progress 36 frames (the bar's total and ETA wrong for the whole run);
    an AVI fills the gaps with empty slots, and its header's 215 had been the total. The video
    packets are counted instead."""
    times = [0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 2.5, 2.6, 2.9]
    clip = make_clip(tmp_path / name, times=times, audio=0, codec=codec, pix_fmt="yuv420p")
    for frames, want in ((None, 10), ((2, 8), 6), ((4, None), 6)):
        seen: list[tuple[int, int]] = []
        upscale_video(clip, tmp_path / f"out-{frames}{name[-5:]}", upscaler=upscaler, frames=frames,
                      progress=lambda done, total: seen.append((done, total)))
        assert [total for _, total in seen] == [want] * want and seen[-1][0] == want, seen


@pytest.mark.parametrize("frames", [(0, 10), (5, 20)])
def test_a_range_of_a_variable_rate_clip_lasts_until_its_end_frame(tmp_path, upscaler, frames):
    """The last frame of a range lasted its own stored time (Matroska: the track's default, shorter
    than a long variable-rate frame), so the video and the sound copied with it ended before the
    range did (2.166 s where frame 10 starts at 2.25 s). They now run to the start of frame END."""
    clip = make_clip(tmp_path / "vfr.mkv", frames=24, vfr=True)
    with av.open(str(clip)) as container:
        times = [frame.pts * frame.time_base for frame in container.decode(video=0)]
    start, end = frames
    upscale_video(clip, tmp_path / "part.mkv", upscaler=upscaler, frames=frames)
    with av.open(str(tmp_path / "part.mkv")) as container:
        ends = {}
        for stream in container.streams:
            packets = [p for p in container.demux(stream) if p.size and p.pts is not None]
            container.seek(0)
            last = max(packets, key=lambda p: p.pts)
            ends[stream.type] = float((last.pts + last.duration) * stream.time_base)
    length = float(times[end] - times[start])
    offset = float(times[0]) if start == 0 else 0.0  # a range from frame 0 keeps the source's timeline
    assert ends["video"] == pytest.approx(offset + length, abs=0.002), (ends, length)
    assert ends["audio"] >= offset + length - 0.13, ends  # to the packet that plays at the end (AAC: 128 ms each at 8 kHz)


def test_a_range_reads_no_further_than_it_needs_and_a_damaged_frame_past_it_is_no_matter(tmp_path, upscaler):
    """Looking past a range's end for the sound that plays before it had read the whole rest of a
    file without sound (601 packets for frames 0:5 of 600); and the frame just past the range,
    decoded for where the range ends, failed the range when it was damaged."""
    from sr_filter.video import encode, source

    clip = make_clip(tmp_path / "long.mkv", frames=600, audio=0)
    read = []

    class Counted:  # the container, counting the packets read from it
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def demux(self, *streams):
            for packet in self.inner.demux(*streams):
                read.append(packet.size)
                yield packet

    with av.open(str(clip)) as container:
        info = source.describe(container, str(clip), scale=4)
        items = list(source.items(Counted(container), str(clip), info, start=0, end=5, copy=encode.copyable(container)))
    assert len(items) == 5 and len(read) < 60, len(read)
    short = make_clip(tmp_path / "short.mkv", frames=24, gop=6, audio=0)
    data = bytearray(short.read_bytes())
    with av.open(str(short)) as container:
        packets = [(data.find(bytes(p)), p.size, p.is_keyframe) for p in container.demux(video=0) if p.size]
    damaged = next(i for i in range(10, 24) if not packets[i][2])
    where, size, _ = packets[damaged]
    data[where:where + size] = b"\xff" * size
    (tmp_path / "hit.mkv").write_bytes(bytes(data))
    summary = upscale_video(tmp_path / "hit.mkv", tmp_path / "out.mkv", upscaler=upscaler, frames=(0, damaged), notice=lambda _: None)
    assert summary["frames"] == damaged


def test_disk_full_mid_encode_is_one_line_and_leaves_nothing(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) makes writes fail part-way, as a full disk does."""
    import resource

    clip = make_clip(tmp_path / "clip.mkv", frames=12, audio=0)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    result = subprocess.run([sys.executable, "-m", "sr_filter", clip, "-m", MODEL, "-t", "32", "--codec", "ffv1", "-o", tmp_path / "out.mkv"],
                            capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), preexec_fn=limit, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == f"sr-filter: error: cannot write {tmp_path / 'out.mkv'}: File too large"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv"]


def test_one_bound_alone_is_kept_inside_and_sizes_round_halves_up_through_float_noise(tmp_path):
    """--width 1001 alone gave a 202 px wide clip 1002 px (only both bounds were kept inside), and a
    300 px one 1000 from 300 * (1001 / 300) = 1000.9999999999999. Odd bounds give the even size
    below them, as with both bounds; sizes that are halves as written round up (25 x 1.14 = 28.5)."""
    from sr_filter.sizing import scaled_length
    from sr_filter.video.encode import even_dimension
    from sr_filter.video.job import scale_to_fit

    for wide, high in ((202, 48), (300, 64), (232, 64)):
        clip = make_clip(tmp_path / f"c{wide}.mp4", frames=1, size=(wide, high), audio=0)
        for bound in (1001, 1000, 333):
            scale = scale_to_fit(clip, bound, None)
            assert even_dimension(wide * scale) == bound - bound % 2, (wide, bound)
        for bound in (333, 332, 101):
            scale = scale_to_fit(clip, None, bound)
            assert even_dimension(high * scale) == bound - bound % 2, (high, bound)
        assert even_dimension(wide * scale_to_fit(clip, 1, None)) == 2  # frames are at least 2 px (a scale of 0 had been refused)
    assert scaled_length(25, 1.14) == 29 and scaled_length(300, 1001 / 300) == 1001 and scaled_length(31, 1.5) == 47
    assert even_dimension(25 * 1.14) == 28 and even_dimension(25 * 1.16) == 30  # 28.5 and 29.0: nearest even, halves up


def test_width_and_height_pick_the_scale_for_videos_animations_and_not_streams(tmp_path, cli):
    from PIL import Image

    from sr_filter import animation

    clip = make_clip(tmp_path / "clip.mp4", frames=4)  # 32x24
    assert cli(clip, "-m", MODEL, "-t", "32", "--width", "64", "-o", tmp_path / "w.mp4").returncode == 0
    assert describe(tmp_path / "w.mp4")["size"] == (64, 48)
    turned = make_clip(tmp_path / "turned.mp4", frames=4, rotation=90)  # shown 24 wide, 32 high
    assert cli(turned, "-m", MODEL, "-t", "32", "--height", "64", "-o", tmp_path / "t.mp4").returncode == 0
    assert describe(tmp_path / "t.mp4")["size"] == (64, 48)  # coded size; shown 48x64
    assert cli(clip, "-m", MODEL, "-t", "32", "--width", "101", "--height", "75", "-o", tmp_path / "in.mp4").returncode == 0
    assert describe(tmp_path / "in.mp4")["size"] == (98, 74)  # inside both though sizes are even (100x76 before)
    frames = [Image.new("RGB", (10, 8), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert cli(tmp_path / "a.gif", "-m", MODEL, "--width", "25", "-o", tmp_path / "b.gif").returncode == 0
    written = animation.read_animation(tmp_path / "b.gif")
    assert len(written.frames) == 3 and written.frames[0].shape[:2] == (20, 25)
    from .videos import make_y4m

    stream = cli(make_y4m(tmp_path / "in.y4m", frames=2), "--format", "y4m", "--width", "64", "-o", tmp_path / "s.y4m")
    assert stream.returncode == 2 and b"--width/--height need a file" in stream.stderr


@pytest.mark.parametrize("source,audio,target", [("clip.webm", "libopus", "out.avi"), ("clip.mkv", "flac", "out.webm")])
def test_a_dropped_stream_names_only_outputs_that_keep_it(tmp_path, upscaler, source, audio, target):
    """Opus dropped from an .avi and FLAC from a .webm had offered "a .mkv or .mp4 or .mov output",
    and a .mov output dropped them too (its header refuses them). The outputs offered now pass the
    same test as the drop, and each one named keeps the stream."""
    clip = make_clip(tmp_path / source, frames=4, codec="libvpx-vp9" if source.endswith("webm") else "libx264",
                     audio_codec=audio)
    codec = describe(clip)["others"][0][1]
    notices: list[str] = []
    upscale_video(clip, tmp_path / target, upscaler=upscaler, notice=notices.append)
    line = next(n for n in notices if n.startswith("dropped audio stream"))
    assert line.endswith(f"cannot hold {codec}; a .mkv or .mp4 output keeps it"), line
    for suffix in (".mkv", ".mp4"):
        kept = tmp_path / f"kept{suffix}"
        upscale_video(clip, kept, upscaler=upscaler, codec="vp9", notice=notices.append)
        assert describe(kept)["others"] == [("audio", codec)]


@pytest.mark.parametrize("name,codec", [("out.mkv", None), ("out.mov", None), ("out.webm", None), ("out.mp4", "av1")])
def test_resume_without_copied_streams_writes_only_the_upscaled_video(tmp_path, upscaler, name, codec):
    """Nothing to copy (no audio): the join reads no source packet (it once mixed the source's own
    low-resolution video in), and VP9/AV1 segments are written where FFmpeg takes them."""
    source = "clip.webm" if name == "out.webm" else "clip.mp4"
    clip = make_clip(tmp_path / source, frames=10, audio=0, codec="libvpx-vp9" if source.endswith("webm") else "libx264")
    summary = upscale_video(clip, tmp_path / name, upscaler=upscaler, resume=True, codec=codec)
    after = describe(tmp_path / name)
    assert summary["frames"] == 10 and len(after["times"]) == 10 and after["others"] == []
    assert after["times"] == pytest.approx(describe(clip)["times"], abs=1e-3)
    assert _packet_counts(tmp_path / name) == _packet_counts(clip)
    assert leftovers(tmp_path) == []


def test_mov_takes_what_its_muxer_writes_and_says_what_it_drops(tmp_path, upscaler):
    """FFmpeg's mov muxer lists VP9, AV1, Opus and FLAC but refuses them when it writes the header."""
    vp9 = make_clip(tmp_path / "clip.webm", frames=4, codec="libvpx-vp9", audio=1)  # Opus audio
    notices: list[str] = []
    summary = upscale_video(vp9, tmp_path / "out.mov", upscaler=upscaler, notice=notices.append)
    assert summary["codec"] == "h264" and describe(tmp_path / "out.mov")["others"] == []
    assert "dropped audio stream 1 (opus): a .mov file cannot hold opus; a .mkv or .mp4 output keeps it" in notices
    with pytest.raises(VideoFormatError, match="a .mov file cannot hold av1 video"):
        upscale_video(vp9, tmp_path / "b.mov", upscaler=upscaler, codec="av1")
    assert leftovers(tmp_path) == []


def test_a_stream_the_muxer_refuses_only_in_its_trailer_is_dropped_before_the_work(tmp_path, upscaler):
    """FFmpeg's mp4 muxer takes a PCM track's header and fails in the trailer ("Invalid argument"):
    the job used to fail at its very end, every frame upscaled for nothing."""
    clip = make_clip(tmp_path / "clip.mkv", frames=4, audio_codec="pcm_s16le", audio_layout="stereo")
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler, notice=notices.append)
    assert describe(tmp_path / "out.mp4")["others"] == [] and len(describe(tmp_path / "out.mp4")["times"]) == 4
    assert ("dropped audio stream 1 (pcm_s16le): an .mp4 or .m4v file cannot hold pcm_s16le; a .mkv or .mov output "
            "keeps it") in notices
    upscale_video(clip, tmp_path / "out.mov", upscaler=upscaler)  # mov holds it
    assert describe(tmp_path / "out.mov")["others"] == [("audio", "pcm_s16le")]


def _nearest_source_frames(output: Path, source_frames: list[np.ndarray], factor: int) -> list[int]:
    """For each output frame, the index of the source frame it is an upscale of (by its mean-pooled copy)."""
    found = []
    for frame in frame_arrays(output):
        h, w = frame.shape[0] // factor, frame.shape[1] // factor
        small = frame[: h * factor, : w * factor].reshape(h, factor, w, factor, 3).mean(axis=(1, 3))
        found.append(int(np.argmin([np.abs(small - s.astype(float)).mean() for s in source_frames])))
    return found


def test_avi_with_b_frames_gets_frames_in_order_with_rising_timestamps(tmp_path, upscaler):
    """AVI keeps decode order only: the decoder's timestamps of B-frame video come out of order."""
    from .videos import pattern

    clip = make_clip(tmp_path / "b.avi", frames=8, bframes=2, audio=1)
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler)
    after = describe(tmp_path / "out.mkv")
    assert after["times"] == pytest.approx([i / 12 for i in range(8)], abs=2e-3)
    assert after["others"] == [("audio", "aac")]
    source = [pattern(i, 32, 24) for i in range(8)]
    assert _nearest_source_frames(tmp_path / "out.mkv", source, 4) == list(range(8))
    upscale_video(clip, tmp_path / "again.avi", upscaler=upscaler)  # our own AVI output reads back in order too
    upscale_video(tmp_path / "again.avi", tmp_path / "again.mkv", upscaler=upscaler, scale=1)
    assert describe(tmp_path / "again.mkv")["times"] == pytest.approx([i / 12 for i in range(8)], abs=2e-3)


def _tags(path):
    import av

    with av.open(str(path)) as container:
        # FFmpeg reads an mp4 track's title back as "name" (the track's udta name box)
        return [(s.type, s.metadata.get("language"), s.metadata.get("title", s.metadata.get("name")), int(s.disposition))
                for s in container.streams if s.type != "video"]


@pytest.mark.parametrize("name,resume", [("out.mkv", False), ("out.mp4", False), ("out.mkv", True)])
def test_copied_streams_keep_their_language_title_and_flags(tmp_path, upscaler, name, resume):
    """In .mp4 the ASS subtitles are converted to mov_text, and keep their tags and flags too (and
    FFmpeg's mp4 writer enables the first track of each kind, which reads back as "default")."""
    from av.stream import Disposition

    clip = make_clip(tmp_path / "clip.mkv", frames=4, audio=2, subtitles=True,
                     audio_tags=[{"language": "eng", "title": "English", "disposition": Disposition.default},
                                 {"language": "fre", "title": "Francais"}],
                     subtitle_tags={"language": "ger", "title": "Deutsch", "disposition": Disposition.forced})
    upscale_video(clip, tmp_path / name, upscaler=upscaler, notice=lambda _: None, resume=resume)
    expected = _tags(clip)
    assert expected[:2] == [("audio", "eng", "English", int(Disposition.default)), ("audio", "fre", "Francais", 0)]
    if name.endswith(".mp4"):
        expected[2] = (*expected[2][:3], expected[2][3] | int(Disposition.default))
    assert _tags(tmp_path / name) == expected


def _seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return container.duration / 1e6


@pytest.mark.parametrize("name", ["out.mp4", "out.mkv", "out.webm"])
def test_the_last_frame_keeps_its_display_time(tmp_path, upscaler, name):
    """A GIF that holds its last frame 2 s lasts 2.3 s as a video too, not 0.3 s and a guess."""
    from PIL import Image

    frames = [Image.new("RGB", (12, 8), (80 * i, 40, 200 - 60 * i)) for i in range(4)]
    frames[0].save(tmp_path / "pause.gif", save_all=True, append_images=frames[1:], duration=[100, 100, 100, 2000], loop=0)
    notices: list[str] = []
    upscale_video(tmp_path / "pause.gif", tmp_path / name, upscaler=upscaler, notice=notices.append)
    assert notices == []  # an RGB source written as 4:2:0 is no loss worth a line
    assert describe(tmp_path / name)["times"] == pytest.approx([0, 0.1, 0.2, 0.3], abs=2e-3)
    assert _seconds(tmp_path / name) == pytest.approx(2.3, abs=0.01)


def test_vfr_mp4_keeps_its_length_and_average_rate(tmp_path, upscaler):
    import av

    clip = make_clip(tmp_path / "vfr.mp4", frames=10, vfr=True, audio=0)
    upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler)
    assert _seconds(tmp_path / "out.mp4") == pytest.approx(_seconds(clip), abs=1e-3)
    with av.open(str(clip)) as before, av.open(str(tmp_path / "out.mp4")) as after:
        assert after.streams.video[0].average_rate == before.streams.video[0].average_rate


class NoWork:
    """An upscaler that must not be used: the job is refused before any frame is upscaled."""

    scale, name = 4, "none"

    def check_scale(self, scale):
        return float(scale or 4)

    def upscale_batch(self, arrays, scale=None, progress=None):
        raise AssertionError("a frame was upscaled")

    upscale_array = upscale_batch


def test_crf_is_checked_for_the_chosen_encoder_before_any_work(tmp_path, upscaler, cli):
    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=0)
    for codec, crf, valid in (("hevc", 60, "0-51"), (None, 99, "0-51"), ("h264", 52, "0-51"), ("vp9", 64, "0-63"),
                              ("av1", 0, "1-63"), ("av1", -1, "1-63")):
        with pytest.raises(VideoFormatError, match=f"crf {crf} .*{valid}") as info:
            upscale_video(clip, tmp_path / "out.mkv", upscaler=NoWork(), codec=codec, crf=crf)
        assert "\n" not in str(info.value)
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.mkv").exists()
    notices: list[str] = []
    upscale_video(clip, tmp_path / "lossless.mkv", upscaler=upscaler, codec="ffv1", crf=10, notice=notices.append)
    assert notices == ["crf 10 is ignored: ffv1 is lossless"]
    result = cli(clip, "-m", MODEL, "--codec", "hevc", "--crf", "60", "-o", tmp_path / "cli.mp4")
    stderr = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in stderr and "x265 [" not in stderr
    assert stderr.strip().splitlines() == ["sr-filter: error: crf 60 is out of range for hevc (libx265 takes 0-51; lower is better)"]


def test_a_second_video_stream_left_out_is_named(tmp_path, upscaler):
    import av

    from .videos import pattern

    with av.open(str(tmp_path / "two.mkv"), "w") as out:
        streams = []
        for width, height in ((32, 24), (16, 12)):
            stream = out.add_stream("libx264", rate=12)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            streams.append(stream)
        for i in range(3):
            for stream in streams:
                frame = av.VideoFrame.from_ndarray(pattern(i, stream.width, stream.height), format="rgb24").reformat(format="yuv420p")
                frame.pts = i
                for packet in stream.encode(frame):
                    out.mux(packet)
        for stream in streams:
            for packet in stream.encode():
                out.mux(packet)
    for resume in (False, True):
        notices: list[str] = []
        upscale_video(tmp_path / "two.mkv", tmp_path / f"out{resume}.mkv", upscaler=upscaler, notice=notices.append, resume=resume)
        assert notices == ["dropped video stream 1 (h264, 16x12): only the first video stream is upscaled"]
        assert describe(tmp_path / f"out{resume}.mkv")["others"] == []


def test_resumed_output_keeps_the_source_frame_rate_and_language(tmp_path, upscaler):
    import av

    clip = make_clip(tmp_path / "clip.mkv", frames=6, rate=24, video_tags={"language": "jpn"})
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, resume=True)
    with av.open(str(tmp_path / "out.mkv")) as container:
        assert container.streams.video[0].average_rate == 24
        assert container.streams.video[0].metadata.get("language") == "jpn"


def test_quiet_av1_prints_nothing_of_the_encoder(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=0)
    env = {k: v for k, v in os.environ.items() if k != "SVT_LOG"}
    result = subprocess.run([sys.executable, "-m", "sr_filter", "-q", clip, "-m", MODEL, "-t", "32", "--codec", "av1",
                             "-o", tmp_path / "out.mkv"], capture_output=True, timeout=120, env=dict(env, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0 and result.stderr.decode() == ""


def test_a_10_bit_source_written_in_8_bits_says_so(tmp_path, upscaler):
    colour = {"color_range": 1, "colorspace": 9, "color_primaries": 9, "color_trc": 16}
    clip = make_clip(tmp_path / "deep.mkv", frames=2, pix_fmt="yuv420p10le", color=colour, audio=0)
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.webm", upscaler=upscaler, notice=notices.append)
    assert describe(tmp_path / "out.webm")["pix_fmt"] == "yuv420p"
    assert notices == ["the source has 10-bit yuv420p10le video but libvpx-vp9 in this build writes 8 bits: written as "
                       "yuv420p (banding is likely, and more so with the source's HDR transfer); codec=\"av1\" keeps 10 bits"]
    notices.clear()
    upscale_video(clip, tmp_path / "deep.mkv.mkv", upscaler=upscaler, notice=notices.append)
    assert notices == []
    # 10-bit 4:2:2 into VP9 keeps its chroma at 8 bits (it was written 4:2:0 as well), and says both
    clip422 = make_clip(tmp_path / "deep422.mkv", frames=2, pix_fmt="yuv422p10le", audio=0)
    notices.clear()
    upscale_video(clip422, tmp_path / "out422.mkv", upscaler=upscaler, codec="vp9", notice=notices.append)
    assert describe(tmp_path / "out422.mkv")["pix_fmt"] == "yuv422p"
    assert notices == ["the source has 10-bit yuv422p10le video but libvpx-vp9 in this build writes 8 bits: written as "
                       "yuv422p (banding is likely); codec=\"h264\" or \"hevc\" or \"av1\" or \"ffv1\" or \"prores\" keep 10 bits"]


def test_output_that_is_the_input_is_refused_without_pointing_at_overwrite(tmp_path, cli):
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    before = clip.read_bytes()
    result = cli(clip, "-m", MODEL, "-o", clip, "--overwrite", "-q")
    err = result.stderr.decode()
    assert result.returncode == 1 and err.count("\n") == 1 and "is the input file" in err and "--overwrite" not in err, err
    plain = cli(clip, "-m", MODEL, "-o", clip, "-q")  # without --overwrite it had pointed at --overwrite
    err = plain.stderr.decode()
    assert plain.returncode == 1 and "is the input file" in err and "--overwrite" not in err, err
    assert clip.read_bytes() == before


def test_transport_streams_and_new_output_folders(tmp_path, cli):
    """.ts (and .flv, ...) are read though not written: the default output is .mkv; -o NEW/ makes
    the folder, as for images."""
    clip = make_clip(tmp_path / "clip.ts", frames=6, audio=0)
    assert cli(clip, "-m", MODEL, "-t", "32", "-q").returncode == 0
    assert len(describe(tmp_path / "clip_x4.mkv")["times"]) == 6
    result = cli(clip, "-m", MODEL, "-t", "32", "-q", "-o", f"{tmp_path}/made/here/")
    assert result.returncode == 0, result.stderr.decode()
    assert describe(tmp_path / "made" / "here" / "clip_x4.mkv")["size"] == (128, 96)
    named = cli(clip, "-m", MODEL, "-t", "32", "-q", "-o", tmp_path / "also" / "made.mkv")  # a named file in a missing folder
    assert named.returncode == 0, named.stderr.decode()
    assert describe(tmp_path / "also" / "made.mkv")["size"] == (128, 96)


def test_a_refused_video_or_animation_leaves_no_output_folder_made_for_it(tmp_path, cli):
    """-o new/ for one video or animation made the folder before the checks and left it empty when
    the run was refused (as images never did): a frame range past the end, an image --format, an
    unknown model."""
    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=0)
    Image.new("RGB", (8, 6), "red").save(tmp_path / "anim.gif", save_all=True,
                                           append_images=[Image.new("RGB", (8, 6), "blue")], duration=100)
    for source, *options in ((clip, "--frames", "10:20"), (clip, "--format", "png"), (clip, "-m", "no-such-model"),
                             (tmp_path / "anim.gif", "-m", "no-such-model")):
        result = cli(source, "-m", MODEL, "-t", "32", "-q", *options, "-o", f"{tmp_path}/new/deeper/")
        assert result.returncode != 0 and b"error" in result.stderr, result.stderr.decode()
        assert not (tmp_path / "new").exists(), (options, result.stderr.decode())

def _read_back(path: Path) -> tuple:
    """An AVI's own header (time base, frame count, rate) and the frame times sr-filter reads."""
    import av

    from sr_filter.video import source

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        header = (video.time_base, video.frames, video.average_rate)
    container = source.open_video(path)
    try:
        info = source.describe(container, str(path), scale=1)
        times = [float(item.pts * item.time_base) for item in source.items(container, str(path), info)
                 if isinstance(item, source.Frame)]
    finally:
        container.close()
    return header, times


def test_avi_output_holds_one_frame_per_tick_of_the_source_rate(tmp_path, upscaler, monkeypatch):
    """AVI has one constant rate: a fine time base (the source's 1/18432, or FFmpeg's 1/600) made
    the file claim hundreds of frames and fps, the gaps filled with empty frames."""
    from fractions import Fraction

    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 4)
    clip = make_clip(tmp_path / "clip.mp4", frames=10, size=(16, 12), gop=4, audio=1)
    steady = ((Fraction(1, 12), 10, 12), pytest.approx([i / 12 for i in range(10)], abs=1e-6))
    notices: list[str] = []
    upscale_video(clip, tmp_path / "plain.avi", upscaler=upscaler, notice=notices.append)
    assert _read_back(tmp_path / "plain.avi") == steady
    upscale_video(clip, tmp_path / "joined.avi", upscaler=upscaler, resume=True, notice=notices.append)  # 3 segments
    assert _read_back(tmp_path / "joined.avi") == steady
    assert describe(tmp_path / "joined.avi")["others"] == [("audio", "aac")]
    upscale_video(tmp_path / "plain.avi", tmp_path / "again.avi", upscaler=upscaler, scale=1, notice=notices.append)
    assert _read_back(tmp_path / "again.avi") == steady
    assert notices == []
    filled = make_clip(tmp_path / "filled.avi", frames=12, size=(16, 12), codec="mpeg4", audio=0)  # says 72 fps:
    upscale_video(filled, tmp_path / "filled-out.avi", upscaler=upscaler, notice=notices.append)  # empty frames between
    assert _read_back(tmp_path / "filled-out.avi")[0] == (Fraction(1, 12), 12, 12)
    assert _seconds(tmp_path / "filled-out.avi") == pytest.approx(_seconds(filled), abs=1e-3)
    assert notices == []  # it had been called variable-rate, written at 12.9 fps, 0.93 s long


def test_a_steady_transport_stream_written_as_avi_keeps_its_rate(tmp_path, upscaler):
    """An MPEG-TS packet of H.264 lasts one field (1/72 s at 12 fps); the last packet's duration
    made a steady 12 fps clip count as variable-rate: its .avi was written at 12.1 fps, shorter
    than its sound, with a notice that it drifts."""
    from fractions import Fraction

    clip = make_clip(tmp_path / "clip.ts", frames=12, size=(16, 12), gop=4, audio=0)
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.avi", upscaler=upscaler, notice=notices.append)
    assert _read_back(tmp_path / "out.avi") == ((Fraction(1, 12), 12, 12), pytest.approx([i / 12 for i in range(12)], abs=1e-6))
    assert notices == []


def test_frames_whose_size_changes_mid_stream_are_resized_not_cut(tmp_path, upscaler, caplog):
    """A transport stream (or a WebRTC recording) may change its picture size: frames of 48x24 in a
    32x24 stream were upscaled to 192x96 and cut to the output's 128x96 without a word, a third of
    each picture lost (and smaller ones edge-padded). They are resized to the stream's size first,
    and that is said once."""
    first = make_clip(tmp_path / "a.ts", frames=12, size=(32, 24), audio=0)
    second = make_clip(tmp_path / "b.ts", frames=12, size=(48, 24), audio=0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    with av.open(str(joined)) as container:  # the stream's size, as its header gives it: its first part's
        assert (container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height) == (32, 24)
    with caplog.at_level("WARNING"):
        upscale_video(joined, tmp_path / "out.mkv", upscaler=upscaler)
    frames = frame_arrays(tmp_path / "out.mkv")
    assert len(frames) == 24 and {frame.shape for frame in frames} == {(96, 128, 3)}
    # the second clip's red ramp reaches 255 at its right edge; cut at 32 of its 48 columns it had ended near 170
    assert frames[12][8:, -4:, 0].mean() > 225, frames[12][8:, -4:, 0].mean()
    said = [r.getMessage() for r in caplog.records if "frames from frame" in r.getMessage()]
    assert said == [f"{joined} has 48x24 frames from frame 12 on, where its video stream is 32x24: a video file holds "
                    "one size, so they are resized to 32x24 before upscaling, which stretches them"], said


def test_variable_rate_video_written_as_avi_is_said_once(tmp_path, upscaler):
    clip = make_clip(tmp_path / "vfr.mp4", frames=6, size=(16, 12), vfr=True, audio=0)  # 1, 2, 3 ticks of 1/12 s
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.avi", upscaler=upscaler, notice=notices.append)
    (time_base, count, rate), times = _read_back(tmp_path / "out.avi")
    assert count == len(times) == 6 and rate == 1 / time_base
    assert _seconds(tmp_path / "out.avi") == pytest.approx(_seconds(clip), abs=1e-3)  # its average rate: the same length
    assert times == pytest.approx([i * float(time_base) for i in range(6)])
    assert len(notices) == 1 and notices[0].startswith("an .avi file keeps a constant frame rate") and "\n" not in notices[0]
    assert notices[0].endswith("a .mkv or .mp4 output keeps the source's timing")


def test_several_videos_and_images_in_one_command(tmp_path, cli):
    """Several inputs went to the image path, where every video failed ("cannot tell the output
    format"); now each video takes the video path with the one loaded model, keeps its container
    (a transport stream becomes .mkv) and a failing one fails alone."""
    a = make_clip(tmp_path / "a.mp4", frames=4, size=(16, 12))
    b = make_clip(tmp_path / "b.ts", frames=3, size=(16, 12), audio=0)
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"not a video")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "c.png")
    out = tmp_path / "out"
    result = cli(a, b, bad, tmp_path / "c.png", "-m", MODEL, "-d", "cpu", "-o", out, "--crf", "30")
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mkv", "c.png"]
    assert err.count("using sr-cartoon-x4") == 1 and "3 upscaled, 0 skipped, 1 failed" in err and f"failed: {bad}" in err
    assert describe(out / "a.mp4")["times"] == describe(a)["times"] and describe(out / "a.mp4")["size"] == (64, 48)
    assert len(frame_arrays(out / "b.mkv")) == 3
    assert cli(a, b, "-m", MODEL, "-d", "cpu").returncode == 0  # no -o: beside each input
    assert (tmp_path / "a_x4.mp4").is_file() and (tmp_path / "b_x4.mkv").is_file()

    folder = tmp_path / "vids"
    folder.mkdir()
    (folder / "d.mp4").write_bytes(a.read_bytes())
    err = cli(folder, "-o", tmp_path / "o2", "-m", MODEL).stderr.decode()
    assert err.strip().endswith(f"folders are searched for images only: name its videos, e.g. {folder / '*.mp4'}"), err
    refused = cli(tmp_path / "c.png", tmp_path / "c.png", "-o", tmp_path / "o3", "--codec", "h264", "-m", MODEL)
    assert refused.returncode == 2 and "--codec applies to videos" in refused.stderr.decode()


def test_a_frame_range_in_a_batch_reaches_its_animations_too(tmp_path, cli):
    """--frames 1:3 on a GIF and an mp4 had cut the mp4 to 2 frames and kept all 5 of the GIF
    without a word (given alone, the GIF keeps 2); GIFs alone in a batch had been refused."""
    from .videos import pattern

    clip = make_clip(tmp_path / "a.mp4", frames=5, size=(16, 12), audio=0)
    pictures = [Image.fromarray(pattern(i, 16, 12)) for i in range(5)]
    for name in ("g.gif", "h.gif"):
        pictures[0].save(tmp_path / name, save_all=True, append_images=pictures[1:], duration=80, loop=0)
    result = cli(tmp_path / "g.gif", clip, "-m", MODEL, "-d", "cpu", "-o", tmp_path / "bt", "--frames", "1:3")
    assert result.returncode == 0, result.stderr.decode()
    assert len(frame_arrays(tmp_path / "bt" / "a.mp4")) == 2
    with Image.open(tmp_path / "bt" / "g.gif") as gif:
        assert gif.n_frames == 2
    result = cli(tmp_path / "g.gif", tmp_path / "h.gif", "-m", MODEL, "-d", "cpu", "-o", tmp_path / "gifs", "--frames", "2:5")
    assert result.returncode == 0, result.stderr.decode()
    for name in ("g.gif", "h.gif"):
        with Image.open(tmp_path / "gifs" / name) as gif:
            assert gif.n_frames == 3
    pictures[0].save(tmp_path / "still.png")  # no video nor animation: refused, naming both
    result = cli(tmp_path / "still.png", tmp_path / "still.png", "-m", MODEL, "-o", tmp_path / "none", "--frames", "1:3")
    assert result.returncode == 2 and b"--frames applies to videos and animations; none of these inputs is a video or an " \
        b"animation" in result.stderr, result.stderr
    # animations written as still pictures, and standard input: not "none of these inputs is an animation"
    result = cli(tmp_path / "g.gif", tmp_path / "h.gif", "-m", MODEL, "-o", tmp_path / "jpgs", "--format", "jpg", "--frames", "1:3")
    assert result.returncode == 2 and b"to animations written as one (gif, webp, png, avif); these outputs hold one picture each" \
        in result.stderr, result.stderr
    piped = subprocess.run([sys.executable, "-m", "sr_filter", "-", "-o", str(tmp_path / "s.gif"), "-m", MODEL, "--frames", "0:2"],
                           input=(tmp_path / "g.gif").read_bytes(), capture_output=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert piped.returncode == 2 and b"standard input is read as one picture" in piped.stderr, piped.stderr


def test_a_codec_or_crf_refused_in_a_batch_names_its_file(tmp_path, cli):
    """"crf 55 is out of range for h264" did not say which of the inputs it was about."""
    a = make_clip(tmp_path / "a.mp4", frames=2, size=(16, 12), audio=0)
    w = make_clip(tmp_path / "w.webm", frames=2, size=(16, 12), audio=0, codec="libvpx-vp9")
    for option, named in ((("--crf", "55"), a), (("--codec", "h264"), w)):
        result = cli(a, w, "-m", MODEL, "-o", f"{tmp_path / 'mix'}/", *option)
        err = result.stderr.decode().strip()
        assert result.returncode == 1 and err.startswith(f"sr-filter: error: {named}: ") and err.count("\n") == 0, err


def test_each_output_keeps_the_colour_it_can_and_names_what_it_cannot(tmp_path, upscaler):
    """ProRes stores limited range only: a full-range source is converted, not written full-range
    and read back as limited (6-9/255 brighter and clipped). FFV1 in mp4 keeps its matrix and range
    in the colour box. An AVI keeps neither rotation nor FFV1's tags: each is named (not for RGB
    frames, which have no matrix or range to lose). ProRes keeps
    4:4:4 (as 4444); SVT-AV1's 4:2:0 is said."""
    full = make_clip(tmp_path / "full.mkv", frames=2, audio=0, color={"color_range": 2, "colorspace": 1})
    upscale_video(full, tmp_path / "ref.mkv", upscaler=upscaler, codec="ffv1")
    reference = frame_arrays(tmp_path / "ref.mkv")
    for name in ("pr.mov", "pr.mkv"):
        upscale_video(full, tmp_path / name, upscaler=upscaler, codec="prores")
        assert describe(tmp_path / name)["color_range"] == 1
        for got, want in zip(frame_arrays(tmp_path / name), reference):
            assert np.abs(got.astype(int) - want).mean() < 2

    plain = make_clip(tmp_path / "sd.mp4", frames=2, audio=0)
    for resume in (False, True):
        upscale_video(plain, tmp_path / f"ffv1-{resume}.mp4", upscaler=upscaler, codec="ffv1", resume=resume)
        tags = describe(tmp_path / f"ffv1-{resume}.mp4")
        assert (tags["color_range"], tags["colorspace"]) == (1, 6)  # BT.601 as the SD source was shown; untagged before

    turned = make_clip(tmp_path / "turned.mp4", frames=2, audio=0, rotation=90)
    for clip, codec in ((turned, None), (full, "ffv1")):
        for resume in (False, True):
            notices: list[str] = []
            upscale_video(clip, tmp_path / f"{clip.stem}-{resume}.avi", upscaler=upscaler, codec=codec, resume=resume,
                          notice=notices.append)
            what = "the display rotation (90 degrees)" if clip is turned else "the colour tags (matrix and range)"
            assert [n for n in notices if n.startswith("dropped ")] == [f"dropped {what}: " + (
                "an .avi file cannot store it, so the video shows unrotated (.mkv, .mp4 and .mov keep it)" if clip is turned else
                "neither an .avi file nor FFV1 stores them, so players guess, BT.709 for HD frames (.mkv keeps them)")], notices

    rgb = make_clip(tmp_path / "rgb.mkv", frames=2, codec="ffv1", pix_fmt="bgr0", audio=0)  # no matrix to lose
    notices = []
    upscale_video(rgb, tmp_path / "rgb.avi", upscaler=upscaler, codec="ffv1", notice=notices.append)
    assert describe(tmp_path / "rgb.avi")["pix_fmt"] == "bgr0" and not [n for n in notices if "colour tags" in n], notices

    rich = make_clip(tmp_path / "444.mkv", frames=2, codec="ffv1", pix_fmt="yuv444p", audio=0)
    upscale_video(rich, tmp_path / "444-pr.mkv", upscaler=upscaler, codec="prores")
    assert describe(tmp_path / "444-pr.mkv")["pix_fmt"].startswith("yuv444p1")  # ProRes 4444 (4:2:2 before)
    notices = []
    upscale_video(rich, tmp_path / "444-av1.mkv", upscaler=upscaler, codec="av1", notice=notices.append)
    assert notices == ["libsvtav1 writes yuv420p: the colour detail of the source's yuv444p is halved; "
                       "codec=\"h264\" or \"hevc\" or \"vp9\" or \"ffv1\" or \"prores\" keep it"]


@pytest.mark.parametrize("codec, suffix, written", [("ffv1", ".mkv", "yuva420p"), ("prores", ".mov", "yuva444p1"),
                                                    ("vp9", ".webm", "yuv420p")])
def test_an_alpha_channel_is_kept_where_the_encoder_can_and_said_where_not(tmp_path, upscaler, codec, suffix, written, cli):
    """ProRes 4444, QuickTime Animation or FFV1 with transparency came out opaque without a word.
    (VP9 keeps alpha beside the pictures, which the stream itself lists as yuv420p.)"""
    from .videos import alpha_clip, alpha_halves

    clip = alpha_clip(tmp_path / "alpha.mkv")
    notices: list[str] = []
    out = tmp_path / f"out{suffix}"
    upscale_video(clip, out, upscaler=upscaler, codec=codec, notice=notices.append)
    assert not [n for n in notices if "alpha" in n], notices
    if written:
        assert describe(out)["pix_fmt"].startswith(written)  # ProRes 4444 reads back as 12-bit
        assert all(left < 2 and right > 253 for left, right in alpha_halves(out)), alpha_halves(out)
    opaque = tmp_path / "opaque.mp4"
    upscale_video(clip, opaque, upscaler=upscaler, codec="h264", notice=notices.append)
    assert notices == ["the source's yuva420p video has an alpha channel (transparency), which libx264 cannot keep: every "
                       "frame is written opaque, on white; codec=\"ffv1\" keeps it"]  # of what an .mp4 holds
    # on white, as a still into JPEG: the colour hidden under the transparent half had shown (200, 0, 90 here)
    left = frame_arrays(opaque)[0][:, :24].reshape(-1, 3).mean(0)
    assert (left > 245).all(), left
    upscale_video(clip, tmp_path / "kept.mp4", upscaler=upscaler, codec="ffv1")  # as the line says
    assert all(left < 2 and right > 253 for left, right in alpha_halves(tmp_path / "kept.mp4"))
    if codec == "ffv1":  # the command line says it with its flag
        said = cli(clip, "-o", tmp_path / "cli.mp4", "-m", "sr-cartoon-x4", "--codec", "h264", "-s", "2")
        assert said.returncode == 0 and b"on white; --codec ffv1 keeps it\n" in said.stderr, said.stderr


def test_a_prores_4444_source_written_as_prores_is_not_said_to_band(tmp_path, upscaler):
    """FFmpeg's decoder gives every ProRes 4444 stream as 12-bit, and prores_ks writes 10: each
    such file had been told "banding is likely", which 10 bits do not show."""
    from .videos import alpha_clip

    first = tmp_path / "first.mov"
    upscale_video(alpha_clip(tmp_path / "alpha.mkv"), first, upscaler=upscaler, codec="prores")
    assert describe(first)["pix_fmt"] == "yuva444p12le"
    notices: list[str] = []
    upscale_video(first, tmp_path / "again.mov", upscaler=upscaler, notice=notices.append)
    assert notices == ["the source has 12-bit yuva444p12le video but prores_ks in this build writes 10 bits: written as "
                       "yuva444p10le (steps in smooth gradients are rarely visible at 10 bits)"], notices


def test_resumed_prores_keeps_the_fourcc_of_its_profile(tmp_path, upscaler):
    """Joined from segments, ProRes 4444 (with its alpha) was labelled apch, ProRes 422 HQ, in .mov (a
    template stream leaves the tag out, and mov's default is HQ), and .mkv had no fourcc at all;
    Apple's tools go by that tag. Now the joined stream carries the segments' tag, as a whole run's."""
    from .videos import alpha_clip

    clip = alpha_clip(tmp_path / "alpha.mkv")
    plain = make_clip(tmp_path / "plain.mkv", frames=3, codec="ffv1", pix_fmt="yuv422p", audio=0)
    for source, tag in ((clip, "ap4h"), (plain, "apch")):
        for name in ("out.mov", "out.mkv"):
            for resume in (False, True):
                target = tmp_path / f"{source.stem}-{resume}-{name}"
                upscale_video(source, target, upscaler=upscaler, codec="prores", resume=resume)
                with av.open(str(target)) as container:
                    assert container.streams.video[0].codec_tag == tag, (target.name, container.streams.video[0].codec_tag)


@pytest.mark.parametrize("source", ["alpha.png", "bgra.mkv"])
def test_rgb_with_alpha_into_vp9_keeps_its_alpha(tmp_path, upscaler, source):
    """An RGBA animation or a bgra FFV1 clip into .webm had failed "cannot write: Invalid argument":
    libvpx-vp9 lists gbrap but opens with yuva420p alone for alpha."""
    from .videos import alpha_clip, alpha_halves

    if source.endswith(".png"):
        frames = []
        for i in range(3):
            rgba = np.zeros((24, 32, 4), np.uint8)
            rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[:, 16:, 3] = 200, 40 * i, 90, 255
            frames.append(Image.fromarray(rgba, "RGBA"))
        frames[0].save(tmp_path / source, save_all=True, append_images=frames[1:], duration=100)
        clip = tmp_path / source
    else:
        clip = alpha_clip(tmp_path / source, pix_fmt="bgra")
    upscale_video(clip, tmp_path / "out.webm", upscaler=upscaler)
    assert all(left < 2 and right > 253 for left, right in alpha_halves(tmp_path / "out.webm")), alpha_halves(tmp_path / "out.webm")


@pytest.mark.parametrize("codec", ["vp9", "vp8"])
def test_a_webm_with_alpha_is_read_with_its_alpha(tmp_path, upscaler, codec):
    """A WebM keeps VP8/VP9 transparency beside the pictures, which FFmpeg's own decoders drop:
    such a source came out opaque, whatever the output could keep, and without a word."""
    from .videos import alpha_clip, alpha_halves

    clip = alpha_clip(tmp_path / "alpha.webm", codec={"vp9": "libvpx-vp9", "vp8": "libvpx"}[codec], frames=4)
    assert describe(clip)["pix_fmt"] == "yuv420p" and all(l < 2 and r > 253 for l, r in alpha_halves(clip))
    for resume in (False, True):
        notices: list[str] = []
        out = tmp_path / f"out-{resume}.mkv"
        upscale_video(clip, out, upscaler=upscaler, codec="ffv1", resume=resume, notice=notices.append)
        assert notices == [] and describe(out)["pix_fmt"] == "yuva420p"
        assert len(alpha_halves(out)) == 4 and all(l < 2 and r > 253 for l, r in alpha_halves(out)), alpha_halves(out)
    upscale_video(clip, tmp_path / "part.webm", upscaler=upscaler, frames="1:3")  # a range, back into VP9 with alpha
    assert len(alpha_halves(tmp_path / "part.webm")) == 2
    assert all(l < 2 and r > 253 for l, r in alpha_halves(tmp_path / "part.webm"))
    for resume in (False, True):  # VP9 segments are kept in Matroska, which holds the alpha plane
        upscale_video(clip, tmp_path / f"back-{resume}.webm", upscaler=upscaler, resume=resume)
        assert describe(tmp_path / f"back-{resume}.webm")["codec"] == "vp9"
        assert all(l < 2 and r > 253 for l, r in alpha_halves(tmp_path / f"back-{resume}.webm"))


def test_vp9_alpha_is_said_to_be_lost_where_the_container_cannot_hold_it(tmp_path, upscaler):
    """VP9 keeps alpha beside the pictures, which an .mp4 cannot hold: the default codec of a VP9
    source (VP9 again) wrote an opaque .mp4 without a word."""
    from .videos import alpha_clip, alpha_halves

    clip = alpha_clip(tmp_path / "alpha.webm", codec="libvpx-vp9")
    for resume in (False, True):
        notices: list[str] = []
        out = tmp_path / f"opaque-{resume}.mp4"
        upscale_video(clip, out, upscaler=upscaler, resume=resume, notice=notices.append)
        assert describe(out)["codec"] == "vp9" and all(r > 253 for _, r in alpha_halves(out))
        assert notices == ["the source's yuva420p video has an alpha channel (transparency), which libvpx-vp9 keeps only "
                           "in .webm and .mkv files: every frame is written opaque, on white; codec=\"ffv1\" keeps it"]
    notices = []
    upscale_video(clip, tmp_path / "opaque.mov", upscaler=upscaler, codec="h264", notice=notices.append)
    assert notices == ["the source's yuva420p video has an alpha channel (transparency), which libx264 cannot keep: every "
                       "frame is written opaque, on white; codec=\"prores\" keeps it"]


def test_a_gif_source_is_not_said_to_lose_alpha(tmp_path, upscaler):
    frames = [Image.new("RGB", (12, 8), (40 * i, 40, 200)) for i in range(3)]
    frames[0].save(tmp_path / "g.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    notices: list[str] = []
    upscale_video(tmp_path / "g.gif", tmp_path / "g.mp4", upscaler=upscaler, notice=notices.append)
    assert not [n for n in notices if "alpha" in n], notices


def test_each_frame_lasts_its_own_time_and_the_last_one_until_the_source_ends(tmp_path, upscaler):
    """Durations were looked up by timestamp number in two time bases (a GIF's 1/100 against the
    muxer's 1/1000 or 1/12800), so frames got other frames' display times; and the last frame of
    an mp4 with B-frames took its packet's decode-order gap (a 1.833 s clip came out 2.0 s)."""
    import av

    frames = [Image.new("RGB", (12, 8), (40 * i, 40, 200 - 30 * i)) for i in range(6)]
    durations = [100, 200, 50, 300, 100, 2000]
    frames[0].save(tmp_path / "g.gif", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    upscale_video(tmp_path / "g.gif", tmp_path / "g.mkv", upscaler=upscaler)
    with av.open(str(tmp_path / "g.mkv")) as container:
        video = container.streams.video[0]
        shown = sorted((p.pts, p.duration) for p in container.demux(video) if p.size)
        assert [round(float(d * video.time_base) * 1000) for _, d in shown] == durations

    clip = make_clip(tmp_path / "vfrb.mp4", frames=12, vfr=True, bframes=2, audio=0, size=(16, 12))
    for name in ("o.mp4", "o.mkv", "o.mov"):
        upscale_video(clip, tmp_path / name, upscaler=upscaler)
        assert _seconds(tmp_path / name) == pytest.approx(_seconds(clip), abs=2e-3), name


def test_a_resumed_ffv1_video_keeps_its_last_frames_time(tmp_path, upscaler, monkeypatch):
    """FFV1 segments were NUT files, which store no frame durations: the join took the reader's
    guess for the last frame, and an animation's 2 s last frame came out 1 s (a 3.0 s APNG ended at
    2.0 s, interrupted or not); the uninterrupted run without --resume kept it."""
    from sr_filter.errors import CancelledError
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 2)
    frames = [Image.new("RGB", (12, 8), (60 * i, 40, 200 - 50 * i)) for i in range(5)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:], duration=[500, 500, 500, 500, 2000], loop=0)
    target = tmp_path / "out.mkv"
    with pytest.raises(CancelledError):
        upscale_video(tmp_path / "a.png", target, upscaler=upscaler, codec="ffv1", resume=True, progress=lambda done, total: done < 3)
    assert upscale_video(tmp_path / "a.png", target, upscaler=upscaler, codec="ffv1", resume=True)["resumed_at"] == 2
    with av.open(str(target)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "ffv1" and container.duration / 1e6 == pytest.approx(4.0)
        shown = sorted((p.pts, p.duration) for p in container.demux(video) if p.size)
        assert [round(float(d * video.time_base), 3) for _, d in shown] == [0.5, 0.5, 0.5, 0.5, 2.0]


def test_a_run_stopped_while_joining_its_finished_segments_resumes(tmp_path, upscaler, monkeypatch):
    """Ctrl-C while the finished segments were being joined (the last step, long for a long video):
    from a source that stores no frame count (.mkv, an APNG) every rerun failed "clip.mkv has 12
    frames; the range starts at frame 12; 2 finished segment(s) are kept ... for a rerun"."""
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    clip = make_clip(tmp_path / "clip.mkv", frames=12, gop=6, audio=1)
    join = resume.join

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(resume, "join", interrupted)
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, resume=True)
    monkeypatch.setattr(resume, "join", join)
    counting = CountingUpscaler(upscaler)
    summary = upscale_video(clip, tmp_path / "out.mkv", upscaler=counting, resume=True)
    assert summary["resumed_at"] == 12 and summary["frames"] == 12 and counting.calls == 0
    assert describe(tmp_path / "out.mkv")["times"] == pytest.approx(describe(clip)["times"])
    assert leftovers(tmp_path) == []


def test_a_resumable_run_that_fails_says_where_its_finished_segments_are(tmp_path, upscaler, monkeypatch):
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 4)
    clip = make_clip(tmp_path / "clip.mkv", frames=24, gop=4)
    (tmp_path / "hit.mkv").write_bytes(_damaged_packet(clip))  # --skip-damaged takes it on from the segments
    with pytest.raises(VideoFormatError) as info:
        upscale_video(tmp_path / "hit.mkv", tmp_path / "out.mkv", upscaler=upscaler, resume=True)
    parts = resume.parts_folder(tmp_path / "out.mkv")
    kept = resume.finished(parts)
    assert kept and str(info.value).endswith(f"; {len(kept)} finished segment(s) are kept in {parts} for a rerun "
                                             "(delete that folder to start over)"), info.value
    (tmp_path / "noise.mkv").write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoFormatError) as info:
        upscale_video(tmp_path / "noise.mkv", tmp_path / "other.mkv", upscaler=upscaler, resume=True)
    assert "kept" not in str(info.value) and not resume.parts_folder(tmp_path / "other.mkv").exists()


def _damaged_packet(clip: Path) -> bytes:
    """The bytes of ``clip`` with one packet between keyframes, past the tenth, overwritten."""
    data = bytearray(clip.read_bytes())
    with av.open(str(clip)) as container:  # where each packet's bytes are (the container's own framing left whole)
        packets = [(data.find(bytes(p)), p.size, p.is_keyframe) for p in container.demux(video=0) if p.size]
    pos, size, _ = next(p for p in packets[10:] if not p[2])
    data[pos:pos + size] = bytes([0xFF]) * size
    return bytes(data)


def test_a_resumed_video_that_ends_early_says_the_way_that_works_and_leaves_nothing(tmp_path, upscaler, monkeypatch, cli):
    """A file cut short stops every run at the same frame: its segments were kept "for a rerun"
    that failed the same way each time, and the advised frame range was refused beside --resume.
    The segments are removed, and the advice says to leave --resume out; followed, it works and
    leaves nothing behind."""
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 4)
    whole = make_clip(tmp_path / "whole.mkv", frames=24, gop=4).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) * 3 // 5])
    for _ in range(2):  # a rerun, as advised before, ends the same way
        with pytest.raises(VideoFormatError, match=r"cut.mkv ends early: .*; the frame range 0:(\d+) upscales the \1 frames it has, "
                                                   r"without resume=True \(whose segments are removed: every run stops at the "
                                                   r"same frame\)$") as info:
            upscale_video(tmp_path / "cut.mkv", tmp_path / "out.mkv", upscaler=upscaler, resume=True)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mkv", "whole.mkv"]
    frames = int(re.search(r"frame range 0:(\d+)", str(info.value)).group(1))
    result = cli(tmp_path / "cut.mkv", "-o", tmp_path / "out.mkv", "-m", MODEL, "-t", "32", "--resume")
    assert result.returncode == 1 and f"--frames 0:{frames} upscales the {frames} frames it has, without --resume (" in result.stderr.decode()
    assert cli(tmp_path / "cut.mkv", "-o", tmp_path / "out.mkv", "-m", MODEL, "-t", "32", "--frames", f"0:{frames}").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mkv", "out.mkv", "whole.mkv"]


def test_a_resumed_damaged_video_is_advised_what_resuming_takes(tmp_path, upscaler, monkeypatch):
    """The advice for a damaged packet named a frame range, which --resume refuses; skipping the
    damaged packets is what goes on from the finished segments, and only that is said."""
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 4)
    clip = make_clip(tmp_path / "clip.mkv", frames=24, gop=4, audio=0)
    (tmp_path / "hit.mkv").write_bytes(_damaged_packet(clip))
    with pytest.raises(VideoFormatError, match=r"is damaged near frame \d+ .*; skipping damaged packets keeps the rest; "
                                               r"\d+ finished segment\(s\) are kept in .* for a rerun") as info:
        upscale_video(tmp_path / "hit.mkv", tmp_path / "out.mkv", upscaler=upscaler, resume=True)
    assert "frame range" not in str(info.value)
    summary = upscale_video(tmp_path / "hit.mkv", tmp_path / "out.mkv", upscaler=upscaler, resume=True, skip_damaged=True)
    assert summary["resumed_at"] >= 4 and summary["frames"] == 23
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv", "hit.mkv", "out.mkv"]


def test_one_video_or_animation_is_named_as_images_are(tmp_path, cli):
    """One video or animation without -o was NAME_x4 whatever --suffix or --width said (a 100 px
    wide clip from a 16 px one was named _x4)."""
    from PIL import Image as PILImage

    clip = make_clip(tmp_path / "v.mp4", frames=3, size=(16, 12), audio=0)
    frames = [PILImage.new("RGB", (8, 8), (i * 60, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    model = ["-m", MODEL, "-d", "cpu", "-q"]
    for args, name in (([clip, "--width", "40"], "v_w40.mp4"), ([clip, "--suffix", "_big"], "v_big.mp4"),
                       ([tmp_path / "a.gif", "--height", "20"], "a_h20.gif"),
                       ([tmp_path / "a.gif", "-o", f"{tmp_path}/out/", "--suffix", "_s"], "out/a_s.gif")):
        done = cli(*args, *model)
        assert done.returncode == 0 and (tmp_path / name).is_file(), (args, done.stderr.decode())


def test_options_are_checked_before_any_work_and_streams_take_y4m_names(tmp_path, cli):
    """A bad --crf or --frames in a batch was found after the images were written, a malformed
    range after the model loaded (exit 1); a video to .y4m or --format y4m read it as a stream."""
    from .videos import make_y4m

    clip = make_clip(tmp_path / "v.mp4", frames=3, size=(16, 12), audio=0)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    model = ["-m", MODEL, "-d", "cpu"]
    for args, code, words in (
        ([tmp_path / "a.png", clip, "-o", tmp_path / "out", "--crf", "60"], 1, "crf 60 is out of range for h264"),
        ([clip, "--frames", "abc"], 2, "Invalid value for '--frames'"),
        ([clip, "--resume", "--frames", "0:2"], 2, "--resume works on whole videos"),
        ([clip, "-o", tmp_path / "o.y4m"], 2, "decode it with ffmpeg"),
        ([clip, "-o", "-", "--format", "y4m"], 2, "decode it with ffmpeg"),
        ([clip, "--format", "webp"], 2, "--format webp names an image format"),  # was: a video written, --format ignored
        ([clip, "--format", "webp"], 2, "(e.g. -o NAME.mkv;"),  # (no -o had been given: "its -o name")
        ([clip, "-o", tmp_path / "v.mkv", "--format", "png"], 2, "(v.mkv): leave out --format"),  # -o had named it
        ([clip, clip, "-o", tmp_path / "out", "--codec", "foo"], 1, "error: unknown video codec 'foo'"),  # not "v.mp4: ..."
        # not an image format at all: had been called one
        ([clip, "--format", "webm"], 2, "'webm' is not one of png, jpg, webp, avif, bmp, tiff, gif, tga, ppm, pam, y4m, png-stream; a "
                                        "video's container comes from its output name (-o NAME.webm)"),
        ([clip, "--format", "xyz"], 2, "'xyz' is not one of png"),
        ([tmp_path / "a.png", "--overwrite", "--skip-existing"], 2, "either --overwrite or --skip-existing"),
    ):
        result = cli(*args, *model)
        err = result.stderr.decode()
        assert result.returncode == code and words in err and err.count("\n") == 1, (args, err)
        assert "using sr-cartoon" not in err  # refused before the model loaded
    assert not (tmp_path / "out").exists()
    (tmp_path / "c.webp").write_bytes(b"old")
    err = cli(clip, "-o", tmp_path / "c.webp", *model).stderr.decode()
    assert "unknown video container .webp" in err and "--overwrite" not in err  # not first 'use --overwrite'

    make_y4m(tmp_path / "in.y4m", frames=2)
    piped = subprocess.run([sys.executable, "-m", "sr_filter", "-", "-o", str(tmp_path / "out.y4m"), *model],
                           stdin=open(tmp_path / "in.y4m", "rb"), capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert piped.returncode == 0 and (tmp_path / "out.y4m").read_bytes().count(b"FRAME\n") == 2, piped.stderr

    assert cli(tmp_path / "a.png", f"{tmp_path}/./a.png", "-o", tmp_path / "once", *model).returncode == 0  # named twice: one job
    assert [p.name for p in (tmp_path / "once").iterdir()] == ["a.png"]
    resumed = cli(tmp_path / "a.png", clip, "-o", tmp_path / "once", "--resume", *model)  # a.png is done: skipped
    assert resumed.returncode == 0 and b"skipping 1 existing" in resumed.stderr, resumed.stderr
    assert sorted(p.name for p in (tmp_path / "once").iterdir()) == ["a.png", "v.mp4"]


def test_resume_of_a_finished_video_is_done_not_an_error(tmp_path, cli):
    """Run again after it finished, one video with --resume had been an error ("exists"), so a
    retry-until-success loop never ended; two videos had been skipped. --overwrite redoes it."""
    clip = make_clip(tmp_path / "clip.mkv", frames=4, audio=0)
    args = (clip, "-o", tmp_path / "out.mkv", "--resume", "-m", MODEL, "-t", "32")
    assert cli(*args).returncode == 0
    again = cli(*args)
    assert again.returncode == 0 and b"skipping existing output" in again.stderr, again.stderr
    before = (tmp_path / "out.mkv").stat().st_mtime_ns
    redo = cli(*args, "--overwrite")
    assert redo.returncode == 0 and (tmp_path / "out.mkv").stat().st_mtime_ns != before


def test_a_second_resumable_run_of_the_same_output_is_refused_while_the_first_runs(tmp_path, cli):
    """Two --resume runs of one video shared its segments folder: the second failed when the first
    removed it, saying the segments were "kept in .x.mp4.parts for a rerun" (a folder gone)."""
    from sr_filter.cachelock import CacheLock
    from sr_filter.video.resume import parts_folder

    clip = make_clip(tmp_path / "clip.mkv", frames=4, audio=0)
    with CacheLock(parts_folder(tmp_path / "out.mkv"), timeout=0):  # as the first run holds it
        second = cli(clip, "-o", tmp_path / "out.mkv", "--resume", "-m", MODEL, "-t", "32")
    err = second.stderr.decode()
    assert second.returncode == 1 and f"another sr-filter run (process {os.getpid()}) is writing out.mkv from its " \
        "segments now; wait for it to finish, or choose another output" in err, err
    assert not (tmp_path / "out.mkv").exists()
    assert cli(clip, "-o", tmp_path / "out.mkv", "--resume", "-m", MODEL, "-t", "32").returncode == 0  # once it is done
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv", "out.mkv"]  # no lock file, no segments left


def test_a_resumed_run_counts_its_own_frames_in_its_speed(tmp_path, upscaler, monkeypatch, capsys):
    """The last line of a resumed run counted the finished segments' frames as upscaled by it: a
    run resumed at frame 96 of 300 said 20 frames/s where it did 13.6 (and one that only joined
    its segments, hundreds)."""
    from sr_filter.cli import main
    from sr_filter.errors import CancelledError
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 4)
    clip = make_clip(tmp_path / "clip.mkv", frames=12, gop=4, audio=0)
    with pytest.raises(CancelledError):
        upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, resume=True, progress=lambda done, total: done < 6)
    main([str(clip), "-o", str(tmp_path / "out.mkv"), "--resume", "-m", MODEL, "-t", "32", "-d", "cpu"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(r"out\.mkv: 12 frames \(4 from the finished segments\), h264 yuv420p, [\d.]+ frames/s$", last), last


def test_a_resumable_run_that_gets_the_lock_after_another_finished_skips_it(tmp_path, monkeypatch, capsys):
    """A second --resume run that checked for the output while the first still ran, and took the
    lock just after the first finished, encoded the whole video again, then failed ("appeared while
    writing") and left its segments behind. Now it finds the output once it holds the lock."""
    from sr_filter.cachelock import CacheLock
    from sr_filter.cli import main

    clip = make_clip(tmp_path / "clip.mkv", frames=4, audio=0)
    out = tmp_path / "out.mkv"
    real = CacheLock.acquire

    def first_run_finishes_meanwhile(self, *args, **kwargs):
        out.write_bytes(clip.read_bytes())  # as the run that held the lock wrote it
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CacheLock, "acquire", first_run_finishes_meanwhile)
    main([str(clip), "-o", str(out), "--resume", "-m", MODEL, "-t", "32", "-d", "cpu"])  # exit 0: no SystemExit
    assert "skipping " in capsys.readouterr().err and out.read_bytes() == clip.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv", "out.mkv"]  # no segments encoded, none left


@pytest.mark.parametrize("first", [{"tta": True}, {"colour_fix": True}])
def test_resume_starts_over_when_a_setting_that_changes_pixels_changes(tmp_path, upscaler, monkeypatch, first):
    """The segment folder recorded neither TTA nor the colour fix: a run with one of them stopped
    and rerun without it joined two kinds of segments into one video (a colour step at the join)."""
    from sr_filter.errors import CancelledError
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 4)
    clip = make_clip(tmp_path / "clip.mkv", frames=12, gop=4, audio=0)
    target = tmp_path / "out.mkv"
    with pytest.raises(CancelledError):
        upscale_video(clip, target, upscaler=Upscaler(MODEL, device="cpu", tile=32, **first), resume=True,
                      progress=lambda done, total: done < 6)
    assert resume.finished(resume.parts_folder(target))
    notices: list[str] = []
    summary = upscale_video(clip, target, upscaler=upscaler, resume=True, notice=notices.append)
    assert summary["resumed_at"] == 0 and any("belongs to a different job; starting over" in n for n in notices)


@pytest.mark.parametrize("name, codec, kept, resume", [
    ("out.mkv", "h264", True, False), ("out.mp4", "vp9", True, False), ("out.mkv", "ffv1", False, False),
    ("out.webm", "vp9", False, False), ("out.mkv", "h264", True, True), ("out.mkv", "ffv1", False, True)])
def test_a_non_square_sample_aspect_ratio_is_kept_or_said_lost(tmp_path, upscaler, name, codec, kept, resume):
    """Matroska, WebM and AVI take the ratio from a stream field PyAV cannot set, so only H.264/HEVC,
    which carry it in their own bitstream, keep it there: a 4:3-SAR episode in VP9 or FFV1 played
    squeezed without a word. A resumable run's join had asked with the decoder's name (h264, not
    libx264), and said a kept ratio lost."""
    from fractions import Fraction

    clip = make_clip(tmp_path / "clip.mkv", frames=3, audio=0)
    source = tmp_path / "sar.mkv"
    with av.open(str(clip)) as src, av.open(str(source), "w") as out:  # the same frames, tagged 4:3
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(4, 3)
        for frame in src.decode(video=0):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert describe(source)["sar"] == Fraction(4, 3)
    notices: list[str] = []
    upscale_video(source, tmp_path / name, upscaler=upscaler, codec=codec, notice=notices.append, resume=resume)
    said = [n for n in notices if "sample aspect ratio (4:3)" in n]
    if kept:
        assert describe(tmp_path / name)["sar"] == Fraction(4, 3) and not said
    else:
        assert describe(tmp_path / name)["sar"] in (None, 1) and len(said) == 1
        assert said[0].endswith({"ffv1": "(.mp4 keeps it with ffv1)", "vp9": "(.mp4 keeps it with vp9)"}[codec]), said  # not .mov


def test_width_fits_the_picture_as_its_sample_aspect_ratio_shows_it(tmp_path, upscaler):
    """A 32x24 clip at 2:1 shows 64x24 (a DVD's 720x480 at 32:27 shows 853 wide); --width 128 gave
    128x96 stored, shown 256 wide: the width was fitted to the stored samples. Where the output
    drops the ratio (FFV1 in .mkv) the picture shows square, so the stored width is fitted there."""
    from fractions import Fraction

    source = tmp_path / "sar.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for frame in [av.VideoFrame.from_ndarray(np.full((24, 32, 3), 90, np.uint8), format="rgb24")] * 2:
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    for name, codec, bounds, stored in (("w.mp4", None, (128, None), (64, 48)), ("w.mkv", None, (128, None), (64, 48)),
                                        ("h.mkv", None, (None, 48), (64, 48)), ("both.mp4", None, (100, 100), (50, 38)),
                                        ("square.mkv", "ffv1", (128, None), (128, 96))):
        notices: list[str] = []
        upscale_video(source, tmp_path / name, upscaler=upscaler, codec=codec, width=bounds[0], height=bounds[1],
                      notice=notices.append)
        assert describe(tmp_path / name)["size"] == stored, name
        assert not [n for n in notices if "even picture sizes" in n], notices
    notices = []  # an odd bound: said as it shows (124 wide), not as stored (62)
    upscale_video(source, tmp_path / "odd.mp4", upscaler=upscaler, width=127, notice=notices.append)
    assert describe(tmp_path / "odd.mp4")["size"] == (62, 46)
    assert "the video is written 124x46, not 127x48: video encoders take even picture sizes" in notices, notices


def _with_chapters(clip: Path, target: Path) -> Path:
    """``clip`` remuxed into ``target`` with three chapters: 0-0.5 s, 0.5-1.5 s, 1.5-2 s."""
    from fractions import Fraction

    with av.open(str(clip)) as src, av.open(str(target), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for s in src.streams:
            streams[s.index].metadata.update(s.metadata)
        out.set_chapters([{"id": n + 1, "start": a, "end": b, "time_base": Fraction(1, 1000), "metadata": {"title": t}}
                          for n, (a, b, t) in enumerate([(0, 500, "Intro"), (500, 1500, "Middle"), (1500, 2000, "End")])])
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return target


def _chapters(path: Path) -> list[tuple[float, float, str]]:
    with av.open(str(path)) as container:
        return [(round(float(c["start"] * c["time_base"]), 3), round(float(c["end"] * c["time_base"]), 3), c["metadata"].get("title"))
                for c in container.chapters()]


@pytest.mark.parametrize("source_name, name, resume", [("in.mkv", "out.mkv", False), ("in.mp4", "out.mp4", False),
                                                       ("in.mp4", "out.mkv", False), ("in.mkv", "out.mov", True)])
def test_chapters_are_kept_and_a_frame_range_cuts_them(tmp_path, upscaler, source_name, name, resume):
    """Chapters were dropped from every output, and an mp4's chapter track was reported as
    'dropped data stream 2 (unknown)'."""
    clip = _with_chapters(make_clip(tmp_path / f"clip{Path(source_name).suffix}", frames=24), tmp_path / source_name)  # 2 s
    assert _chapters(clip) == [(0, 0.5, "Intro"), (0.5, 1.5, "Middle"), (1.5, 2.0, "End")]
    notices: list[str] = []
    upscale_video(clip, tmp_path / name, upscaler=upscaler, resume=resume, notice=notices.append)
    assert _chapters(tmp_path / name) == _chapters(clip) and notices == []
    upscale_video(clip, tmp_path / f"part{Path(name).suffix}", upscaler=upscaler, frames=(8, 20))  # 0.667-1.667 s
    assert _chapters(tmp_path / f"part{Path(name).suffix}") == [(0, 0.833, "Middle"), (0.833, 1.0, "End")]
    if not resume:  # an .avi holds none: said (they had been dropped without a word)
        notices.clear()
        upscale_video(clip, tmp_path / "out.avi", upscaler=upscaler, resume=resume, notice=notices.append)
        assert "dropped the chapters (3): an .avi file cannot hold them; an .mkv, .mp4 or .mov output keeps them" in notices


def test_track_titles_and_the_video_streams_own_tags_are_kept(tmp_path, upscaler):
    """mp4/mov read a track title as 'name': it was lost into mp4 and became a NAME tag in mkv; the
    upscaled stream kept only its language, not its title or flags, and its handler name in mp4/mov
    was not its title, as a copied track's is."""
    clip = make_clip(tmp_path / "clip.mkv", frames=4, video_tags={"title": "Director cut", "language": "fra"},
                     audio_tags=[{"title": "Commentary", "language": "eng"}])
    upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler)
    upscale_video(clip, tmp_path / "resumed.mov", upscaler=upscaler, resume=True)
    for name in ("out.mp4", "resumed.mov"):  # the title names each track's handler (the video's had been 'VideoHandler')
        with av.open(str(tmp_path / name)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            handlers = video.metadata.get("handler_name"), audio.metadata.get("handler_name")
            assert handlers == ("Director cut", "Commentary"), (name, handlers)
    upscale_video(tmp_path / "out.mp4", tmp_path / "back.mkv", upscaler=upscaler)
    with av.open(str(tmp_path / "back.mkv")) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.metadata.get("title") == "Director cut" and video.metadata.get("language") == "fra"
        assert audio.metadata.get("title") == "Commentary" and audio.metadata.get("language") == "eng"
        assert video.disposition & av.stream.Disposition.default


@pytest.mark.parametrize("resume", [False, True])
def test_hevc_in_mp4_is_tagged_for_apples_players(tmp_path, upscaler, resume):
    """FFmpeg tags HEVC in mp4/mov 'hev1' unless told, which QuickTime and iOS do not play."""
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    upscale_video(clip, tmp_path / "out.mp4", upscaler=upscaler, codec="hevc", resume=resume)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"


def test_damaged_resume_state_is_redone_not_a_traceback_or_a_failure_on_every_rerun(tmp_path, upscaler, monkeypatch, cli):
    """An empty or garbled job.json gave a JSONDecodeError traceback; a segment cut short made every
    rerun fail at the join ('Invalid data found'); a file in the parts folder's place said 'File exists'."""
    from sr_filter.errors import CancelledError
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    clip = make_clip(tmp_path / "clip.mkv", frames=24, gop=6, audio=1)
    target = tmp_path / "out.mkv"
    parts = resume.parts_folder(target)

    def stopped_at_15():
        with pytest.raises(CancelledError):
            upscale_video(clip, target, upscaler=upscaler, resume=True, progress=lambda done, total: done < 15)
        return resume.finished(parts)

    for damage in ("", "{garbage"):
        assert len(stopped_at_15()) == 2
        (parts / "job.json").write_text(damage)
        notices: list[str] = []
        summary = upscale_video(clip, target, upscaler=upscaler, resume=True, notice=notices.append)
        assert summary["resumed_at"] == 0 and any("job.json is damaged; starting over" in n for n in notices)
        assert len(describe(target)["times"]) == 24 and not parts.exists()
        target.unlink()
    segments = stopped_at_15()
    with open(segments[1][2], "r+b") as cut:  # the second finished segment cut short
        cut.truncate(300)
    notices = []
    summary = upscale_video(clip, target, upscaler=upscaler, resume=True, notice=notices.append)
    assert summary["resumed_at"] == 6 and any(f"{segments[1][2].name} is damaged; redoing the video from frame 6" in n for n in notices)
    assert describe(target)["times"] == pytest.approx(describe(clip)["times"])
    target.unlink()
    parts.write_text("not a folder")
    with pytest.raises(VideoFormatError, match="is a file where resume=True keeps its segments"):
        upscale_video(clip, target, upscaler=upscaler, resume=True)
    said = cli(clip, "-o", target, "-m", "sr-cartoon-x4", "--resume")
    assert said.returncode == 1 and said.stderr.decode().endswith(
        "is a file where --resume keeps its segments; move it away or run without --resume\n"), said.stderr


def test_a_whole_run_removes_the_segments_an_unresumed_run_left(tmp_path, upscaler, monkeypatch):
    """Stopped with --resume and then run without it, the job left its hidden segments for good."""
    from sr_filter.errors import CancelledError
    from sr_filter.video import resume

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    clip = make_clip(tmp_path / "clip.mkv", frames=24, gop=6, audio=0)
    target = tmp_path / "out.mkv"
    with pytest.raises(CancelledError):
        upscale_video(clip, target, upscaler=upscaler, resume=True, progress=lambda done, total: done < 15)
    assert resume.parts_folder(target).is_dir()
    notices: list[str] = []
    upscale_video(clip, target, upscaler=upscaler, notice=notices.append)
    assert not resume.parts_folder(target).exists() and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv", "out.mkv"]
    assert any("the segments of an earlier run with resume=True of out.mkv" in n for n in notices)


def test_a_video_to_a_pipe_or_device_is_refused_and_the_pipe_never_replaced(tmp_path, upscaler, cli):
    """--overwrite replaced a named pipe with a regular file (its reader got nothing), and
    -o /dev/null said 'unknown video container (none)'."""
    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=0)
    fifo = tmp_path / "pipe.mkv"
    os.mkfifo(fifo)
    for args in ([], ["--overwrite"]):
        result = cli(clip, "-m", MODEL, "-t", "32", "-o", fifo, *args)
        err = result.stderr.decode()
        assert result.returncode == 1 and err.count("\n") == 1 and "is a pipe, device or open descriptor; a video is written to a file" in err, err
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert "is a pipe, device or open descriptor" in cli(clip, "-m", MODEL, "-o", "/dev/null").stderr.decode()
    with pytest.raises(VideoFormatError, match="is a pipe, device or open descriptor"):
        upscale_video(clip, fifo, upscaler=upscaler, overwrite=True)


@pytest.mark.parametrize("name", ["g.mp4", "g.mov", "g.mkv"])
def test_a_gifs_final_pause_is_kept_in_the_length_of_every_container(tmp_path, upscaler, name):
    """mp4 and mov take a track's length from its last packet in decode order, which with
    B-frames is not the last frame shown: the GIF's 2 s final pause came out 1.9 s, 0.1 s short."""
    frames = [Image.new("RGB", (12, 8), (40 * i, 40, 200 - 30 * i)) for i in range(6)]
    frames[0].save(tmp_path / "g.gif", save_all=True, append_images=frames[1:], duration=[100, 200, 50, 300, 100, 2000], loop=0)
    upscale_video(tmp_path / "g.gif", tmp_path / name, upscaler=upscaler)
    with av.open(str(tmp_path / name)) as container:
        assert container.duration / 1e6 == pytest.approx(2.75, abs=0.005)
        shown = [float(f.pts * f.time_base) for f in container.decode(video=0)]
    assert shown == pytest.approx([0, 0.1, 0.3, 0.35, 0.65, 0.75], abs=0.005)


def test_a_frame_range_cuts_subtitle_cues_to_it(tmp_path, upscaler):
    """A cue on screen across the range's start was dropped, and one running past its end kept its
    whole time (the file came out longer than the range)."""
    clip = make_clip(tmp_path / "clip.mkv", frames=24, subtitles=True, audio=0)  # 2 s; cues at 0, 0.5, 1, 1.5 s, 0.4 s each
    upscale_video(clip, tmp_path / "part.mkv", upscaler=upscaler, frames=(4, 15))  # 0.333 s to 1.25 s
    with av.open(str(tmp_path / "part.mkv")) as container:
        stream = container.streams.subtitles[0]
        cues = [(round(float(p.pts * p.time_base), 3), round(float(p.duration * p.time_base), 3))
                for p in container.demux(stream) if p.size]
    assert cues == [(0.0, 0.067), (0.167, 0.4), (0.667, 0.25)]


def test_second_review_of_the_output_checks(tmp_path, upscaler, monkeypatch, cli):
    """A range run removed a resumable job's segments; a video in a batch whose output is itself
    was pointed at --overwrite, then refused; a link to nothing as output failed after the work
    (with --skip-existing given); a y4m stream into a named pipe asked for --overwrite; a stray
    segment name raised ValueError; 'nv12' read as 12-bit."""
    from sr_filter.errors import CancelledError
    from sr_filter.video import resume
    from sr_filter.video.encode import choose_pix_fmt

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    clip = make_clip(tmp_path / "clip.mkv", frames=24, gop=6, audio=0)
    target = tmp_path / "out.mkv"
    with pytest.raises(CancelledError):
        upscale_video(clip, target, upscaler=upscaler, resume=True, progress=lambda done, total: done < 15)
    (resume.parts_folder(target) / "seg-0-6-1.seg").write_bytes(b"stray")
    assert len(resume.finished(resume.parts_folder(target))) == 2
    upscale_video(clip, target, upscaler=upscaler, frames=(0, 6), overwrite=True)
    assert len(resume.finished(resume.parts_folder(target))) == 2  # kept for the resumable job
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "v.mp4").write_bytes(make_clip(tmp_path / "v.mp4", frames=2, audio=0).read_bytes())
    for extra in ([], ["--overwrite"]):
        err = cli(folder / "v.mp4", clip, "-m", MODEL, "-o", folder, *extra).stderr.decode()
        assert "v.mp4 is the input file, which is read while the output is written" in err and "--overwrite" not in err, err
    dangling = tmp_path / "dangling.mkv"
    dangling.symlink_to("nowhere/none.mkv")
    skipped = cli(clip, "-m", MODEL, "-o", dangling, "--skip-existing")
    assert skipped.returncode == 0 and "skipping existing output" in skipped.stderr.decode()
    refused = cli(clip, "-m", MODEL, "-o", dangling).stderr.decode()
    assert "exists; use --overwrite" in refused and "appeared while writing" not in refused
    assert choose_pix_fmt("nv12", "libx265") == "yuv420p" and choose_pix_fmt("yuv410p", "libx264") == "yuv420p"
    # alpha that the container does not keep: no alpha plane encoded (nor named in the summary)
    assert choose_pix_fmt("yuva420p", "libvpx-vp9", alpha=False) == "yuv420p"
    assert choose_pix_fmt("yuva420p", "libvpx-vp9", alpha=True) == "yuva420p"


def test_a_y4m_stream_goes_into_a_named_pipe(tmp_path):
    """A frame stream into a named pipe asked for --overwrite (the pipe "exists")."""
    import threading

    from .videos import make_y4m

    fifo = tmp_path / "frames.y4m"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as pipe:
            got.append(pipe.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    process = subprocess.run([sys.executable, "-m", "sr_filter", "-", "-m", MODEL, "-o", str(fifo), "--format", "y4m"],
                             input=make_y4m(tmp_path / "in.y4m").read_bytes(), capture_output=True, timeout=120,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if process.returncode != 0:  # the reader still waits for a writer: open the pipe once to let it go
        with open(fifo, "wb"):
            pass
    reader.join(30)
    assert process.returncode == 0, process.stderr.decode()
    assert got and got[0].startswith(b"YUV4MPEG2 W128 H96")


@pytest.mark.parametrize("resume", [False, True])
def test_an_output_name_of_up_to_255_bytes_is_written_and_reported_done(tmp_path, upscaler, resume):
    # The hidden segments folder is ".NAME.parts", 7 bytes longer: with a 249-255-byte name the
    # complete video was written and the run still failed ("File name too long"), or with
    # --resume failed before starting.
    clip = make_clip(tmp_path / "in.mp4", frames=6)
    target = tmp_path / ("v" * 251 + ".mkv")
    upscale_video(clip, target, upscaler=upscaler, resume=resume)
    assert len(describe(target)["times"]) == 6
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_frames_missing_mid_file_are_said_and_a_variable_rate_is_not(tmp_path, upscaler, caplog):
    """A piece cut out of a capture froze the picture for 1.3 s without a word; a variable-rate
    source's long frames are its own and get no such line."""
    def clip(path, stamps):
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
            stream.codec_context.time_base = Fraction(1, 1000)
            for i, ms in enumerate(stamps):
                frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), (i * 9) % 255, np.uint8), format="rgb24")
                frame.pts, frame.time_base = ms, Fraction(1, 1000)
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        return path

    holed = clip(tmp_path / "hole.mkv", [40 * i for i in range(20)] + [2000 + 40 * i for i in range(20)])
    varied = clip(tmp_path / "vfr.mkv", list(np.cumsum([40, 40, 700, 40, 120, 40, 1000, 80] * 5)))
    with caplog.at_level("WARNING"):
        upscale_video(holed, tmp_path / "hole_x4.mkv", upscaler=upscaler)
    assert "jumps 1.24 s at 0.76 s where its frames are otherwise 40 ms apart" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        upscale_video(varied, tmp_path / "vfr_x4.mkv", upscaler=upscaler)
    assert "jumps" not in caplog.text


def test_a_data_stream_ffmpeg_names_no_codec_for_is_said_as_such(tmp_path, upscaler):
    """KLV metadata in a .ts had been 'dropped data stream 1 (unknown): ... cannot hold unknown'."""
    clip = tmp_path / "klv.ts"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        data = out.add_data_stream()
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 40 * i, np.uint8), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
            packet = av.Packet(b"\x06\x0e\x2b\x34" + bytes(12))
            packet.stream, packet.pts, packet.dts, packet.time_base = data, i * 3600, i * 3600, Fraction(1, 90000)
            out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    notices: list[str] = []
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler, notice=notices.append)
    assert notices == ["dropped data stream 1 (data FFmpeg names no codec for, such as KLV): an .mkv file cannot hold it"]


def test_damaged_packets_are_an_error_unless_skipping_is_asked(tmp_path, upscaler, caplog, cli):
    """A corrupt video is one clear line and a non-zero exit (issue 16); --skip-damaged leaves a
    damaged packet out and says so, as a player shows the rest, for people restoring old captures.
    A file whose packets are damaged throughout is refused either way."""
    clip = make_clip(tmp_path / "clip.mkv", frames=24, gop=6, audio=0)
    data = bytearray(clip.read_bytes())
    with av.open(str(clip)) as container:  # where each packet's bytes are (the container's own framing left whole)
        packets = [(data.find(bytes(p)), p.size, p.is_keyframe) for p in container.demux(video=0) if p.size]
    pos, size, _ = next(p for p in packets[10:] if not p[2])  # a frame between keyframes
    hit = bytearray(data)
    hit[pos:pos + size] = bytes([0xFF]) * size
    (tmp_path / "hit.mkv").write_bytes(bytes(hit))
    with pytest.raises(VideoFormatError, match=r"is damaged near frame \d+ .*; the frame range 0:\d+ upscales the frames "
                                               r"before it; skipping damaged packets keeps the rest$"):
        upscale_video(tmp_path / "hit.mkv", tmp_path / "out.mkv", upscaler=upscaler)
    assert not (tmp_path / "out.mkv").exists()
    with caplog.at_level("WARNING"):
        summary = upscale_video(tmp_path / "hit.mkv", tmp_path / "out.mkv", upscaler=upscaler, skip_damaged=True)
    assert "has 1 damaged packet(s), near frame(s)" in caplog.text and summary["frames"] == 23
    result = cli(tmp_path / "hit.mkv", "-o", tmp_path / "cli.mkv", "-m", MODEL, "-t", "32")
    assert result.returncode == 1 and result.stderr.decode().rstrip().endswith("--skip-damaged keeps the rest")
    assert cli(tmp_path / "hit.mkv", "-o", tmp_path / "cli.mkv", "-m", MODEL, "-t", "32", "--skip-damaged").returncode == 0
    noisy = bytearray(data)
    for pos, size, _ in packets[1:]:
        noisy[pos:pos + size] = bytes([0xFF]) * size
    (tmp_path / "noisy.mkv").write_bytes(bytes(noisy))
    with pytest.raises(VideoFormatError, match="is damaged near frame"):
        upscale_video(tmp_path / "noisy.mkv", tmp_path / "noisy_out.mkv", upscaler=upscaler, skip_damaged=True)


def test_frames_after_a_skipped_damaged_packet_keep_their_own_times(tmp_path, upscaler):
    """With B-frames, the decoder gives frames back out of order after a lost keyframe (10, 22, 11,
    23, ...): they had been pushed later into a rising order, so every frame after the damage came
    out late (the sound drifted off the picture) and the video ran long. Each frame now keeps its
    own time and the length stays the source's."""
    clip = make_clip(tmp_path / "clip.mp4", frames=24, gop=12, bframes=3, audio=0)
    data = bytearray(clip.read_bytes())
    with av.open(str(clip)) as container:
        keys = [(data.find(bytes(p)), p.size) for p in container.demux(video=0) if p.size and p.is_keyframe]
    pos, size = keys[1]  # the second keyframe: the B-frames before it lose a reference
    data[pos:pos + size] = bytes([0xFF]) * size
    (tmp_path / "hit.mp4").write_bytes(bytes(data))
    source = describe(clip)["times"]
    summary = upscale_video(tmp_path / "hit.mp4", tmp_path / "out.mkv", upscaler=upscaler, skip_damaged=True)
    times = describe(tmp_path / "out.mkv")["times"]
    assert summary["frames"] == len(times) and 0 < len(times) < len(source)
    assert times == sorted(times) and all(any(abs(t - s) < 0.001 for s in source) for t in times), times
    assert round(times[-1], 3) == round(source[-1], 3)
    with av.open(str(clip)) as src, av.open(str(tmp_path / "out.mkv")) as out:
        assert abs(out.duration - src.duration) <= 1000  # microseconds: not a frame longer


def test_quiet_video_runs_print_no_notices(tmp_path, cli):
    """-q promises errors only: the 'converted ...' and 'dropped ...' notices of a video had still been printed."""
    clip = make_clip(tmp_path / "clip.mkv", frames=4, subtitles=True, attachment=True)
    done = subprocess.run([sys.executable, "-m", "sr_filter", "-q", clip, "-m", MODEL, "-o", tmp_path / "out.mp4"],
                          capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    loud = cli(clip, "-m", MODEL, "-o", tmp_path / "loud.mp4")  # (the quiet run above is a process of its own: nothing at all)
    assert b"sr-filter: converted subtitle stream" in loud.stderr and b"sr-filter: dropped attachment" in loud.stderr


@pytest.mark.parametrize("signum, batch", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)])
def test_a_stopped_resumable_run_says_where_its_segments_are(tmp_path, signum, batch):
    """Ctrl-C on `--resume` said only "interrupted", and SIGTERM "unfinished outputs were removed",
    while the finished segments were kept for the next run: the last line now says so, in a batch
    too (which had said only "the one in progress was not written")."""
    from .conftest import interruptible

    # segments end at keyframes; the run is stopped at its first (48 frames), 432 before its end
    clip = make_clip(tmp_path / "clip.mkv", frames=480, size=(32, 24), audio=0, gop=24)
    if batch:
        other = make_clip(tmp_path / "other.mkv", frames=4, size=(32, 24), audio=0)
        target, parts = tmp_path / "out", tmp_path / "out" / ".clip.mkv.parts"  # a batch keeps the names
        inputs = [clip, other]
    else:
        target, parts = tmp_path / "out.mkv", tmp_path / ".out.mkv.parts"
        inputs = [clip]
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", *inputs, "-m", MODEL, "--resume", "-o", target],
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)), preexec_fn=interruptible, text=True)
    deadline = time.monotonic() + 120
    while not any(parts.glob("seg-*.seg")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before the signal; make the clip longer"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    said = "interrupted" if signum == signal.SIGINT else "error: stopped by SIGTERM"
    if batch:
        said += " after 0 of 2 file(s); the one in progress was not written"
    kept = len(list(parts.glob("seg-*.seg")))
    assert proc.returncode == 128 + signum and kept and err.strip().splitlines()[-1] == (
        f"sr-filter: {said}; {kept} finished segment(s) are kept in {parts}: run the same command again to continue"), err


def test_the_api_makes_missing_output_folders_and_removes_them_when_nothing_is_written(tmp_path, upscaler):
    """upscale_video had refused an output in a missing folder ("output folder ... does not exist"),
    where upscale_file and the command line make it; folders made for a video that is never
    written (cancelled here) are removed again."""
    from sr_filter import CancelledError

    clip = make_clip(tmp_path / "in.mkv", frames=4, audio=0)
    with pytest.raises(CancelledError):
        upscale_video(clip, tmp_path / "new" / "deeper" / "out.mkv", upscaler=upscaler, progress=lambda done, total: False)
    assert not (tmp_path / "new").exists()
    summary = upscale_video(clip, tmp_path / "made" / "out.mkv", upscaler=upscaler)
    assert summary["frames"] == 4 and len(frame_arrays(tmp_path / "made" / "out.mkv")) == 4


def test_a_folder_given_as_dst_is_not_answered_with_the_input_name(tmp_path, upscaler):
    """dst = the clip's own folder was refused with "name the output file, e.g. FOLDER/clip.mp4":
    the input itself, which is then refused as the input."""
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=0)
    with pytest.raises(SrFilterError, match=r"is a folder; name the output file, e\.g\. .*clip_upscaled\.mp4$"):
        upscale_video(clip, tmp_path, upscaler=upscaler)
    with pytest.raises(SrFilterError, match=r"e\.g\. .*other.clip\.mp4$"):  # another folder: the input's name there
        upscale_video(clip, f"{tmp_path / 'other'}/", upscaler=upscaler)


def test_names_that_start_like_a_protocol_are_local_files(tmp_path, upscaler, monkeypatch):
    """FFmpeg reads NAME: at the start of a path as a protocol: a clip named 12:30.mp4, or an output
    in a folder ep:1, failed "Protocol not found" (segments of --resume too, in .ep:1.mkv.parts)."""
    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    clip.rename(tmp_path / "12:30.mp4")
    monkeypatch.chdir(tmp_path)
    assert upscale_video("12:30.mp4", "ep:1/out.mkv", upscaler=upscaler)["frames"] == 3
    assert upscale_video("12:30.mp4", "ep:1.mkv", upscaler=upscaler, resume=True)["frames"] == 3
    for name in ("ep:1/out.mkv", "ep:1.mkv"):
        assert describe(tmp_path / name)["others"] == [("audio", "aac")] and len(frame_arrays(tmp_path / name)) == 3


def _audio_samples(path: Path) -> list[tuple[bytes | None, int]]:
    with av.open(str(path)) as container:
        return [(s.codec_context.extradata, sum(f.samples for f in container.decode(s))) for s in container.streams.audio]


def test_aac_from_a_transport_stream_is_kept_in_every_container(tmp_path, upscaler):
    """A .ts carries AAC with ADTS headers and no setup data: into an .avi it was "dropped audio
    stream 1 (aac): an .avi file cannot hold aac" (the avi muxer refused its header). Now the
    headers come off and the setup data goes into the header, in every container alike."""
    clip = make_clip(tmp_path / "clip.ts", frames=12, audio=1)
    ((config, samples),) = _audio_samples(clip)
    assert config is None and samples == 9216
    for name in ("out.avi", "out.mkv", "out.mp4", "out.mov", "resumed.mkv"):
        notices: list[str] = []
        upscale_video(clip, tmp_path / name, upscaler=upscaler, notice=notices.append, resume=name.startswith("resumed"))
        assert notices == [], name
        ((config, kept),) = _audio_samples(tmp_path / name)  # one track (the matroska muxer had written it twice)
        assert config == b"\x15\x88", name  # AAC-LC, 8 kHz, mono
        # an .avi holds no time before zero: the encoder's priming packet goes (as from an .mp4)
        assert kept == (samples - 1024 if name.endswith(".avi") else samples), name
        assert len(frame_arrays(tmp_path / name)) == 12


def test_cover_art_is_kept_where_the_output_can_hold_it(tmp_path, upscaler):
    """A .mkv's cover picture (an image attachment, which FFmpeg reads as a one-picture video
    stream) was "dropped video stream 1 (mjpeg, 40x40): only the first video stream is upscaled",
    from .mkv into .mkv too; an .mp4's covr the same."""
    import io

    jpeg = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(jpeg, "JPEG")
    clip = tmp_path / "clip.mkv"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        out.add_attachment("cover.jpg", "image/jpeg", jpeg.getvalue())
        write_pattern_frames(out, video, 4)
    for name in ("out.mkv", "out.mp4", "again.mkv", "out.avi"):
        notices: list[str] = []
        upscale_video(tmp_path / "out.mp4" if name == "again.mkv" else clip, tmp_path / name, upscaler=upscaler, notice=notices.append)
        with av.open(str(tmp_path / name)) as done:
            covers = [s for s in done.streams.video if int(s.disposition) & av.stream.Disposition.attached_pic]
            pictures = [bytes(p) for p in done.demux(covers) if p.size] if covers else []
        assert len(frame_arrays(tmp_path / name)) == 4
        if name == "out.avi":
            assert not covers and notices == ["dropped the cover picture (video stream 1, mjpeg, 40x40): an .avi file cannot "
                                              "hold it; a .mkv or .mp4 output keeps it"]
        else:
            assert notices == [] and pictures == [jpeg.getvalue()], name


def test_a_cover_listed_before_the_video_is_kept_and_the_video_upscaled(tmp_path, upscaler):
    """An .mp4 whose metadata box (udta, where the covr picture is) comes before its tracks lists
    the cover as video stream 0: that 40x40 picture was upscaled into a one-frame video and the
    real video "dropped video stream 1 (h264, 32x24): only the first video stream is upscaled"
    (.mkv), or the run failed "cannot write out.mp4: Invalid argument"."""
    import io
    import struct

    jpeg = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(jpeg, "JPEG")
    written = tmp_path / "written.mp4"
    with av.open(str(written), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        add_cover(out, jpeg.getvalue(), (40, 40))
        write_pattern_frames(out, video, 4)

    def boxes(data: bytes, start: int, end: int) -> list[bytes]:
        found = []
        while start < end:
            (size,) = struct.unpack(">I", data[start:start + 4])
            found.append(data[start:start + size])
            start += size
        return found

    data = written.read_bytes()  # the moov box's children reordered (same sizes, so every offset holds): udta first
    moved = []
    for box in boxes(data, 0, len(data)):
        if box[4:8] == b"moov":
            kids = sorted(boxes(box, 8, len(box)), key=lambda kid: {b"mvhd": 0, b"udta": 1}.get(kid[4:8], 2))
            box = box[:8] + b"".join(kids)
        moved.append(box)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"".join(moved))
    with av.open(str(clip)) as container:
        assert [s.codec_context.name for s in container.streams.video] == ["mjpeg", "h264"]
    for name in ("out.mkv", "out.mp4", "resumed.mp4"):
        notices: list[str] = []
        upscale_video(clip, tmp_path / name, upscaler=upscaler, notice=notices.append, resume=name.startswith("resumed"))
        with av.open(str(tmp_path / name)) as done:
            covers = [s for s in done.streams.video if int(s.disposition) & av.stream.Disposition.attached_pic]
            pictures = [bytes(p) for p in done.demux(covers) if p.size]
            shown = [s for s in done.streams.video if s not in covers]
            assert [(s.codec_context.width, s.codec_context.height) for s in shown] == [(128, 96)], name
        assert notices == [] and pictures == [jpeg.getvalue()], (name, notices)
        assert len(frame_arrays(tmp_path / name)) == 4, name


def test_an_mpeg_ts_cut_long_before_its_next_keyframe_is_read_from_there(tmp_path, upscaler):
    """An MPEG-TS cut mid-GOP (x264's default GOP is 10 s at 25 fps) holds no picture size until
    its next keyframe, past the 5 s FFmpeg looks into a file for one: a valid cut was refused as
    "the video stream has no picture size (damaged header?)". Here the keyframe comes 8 s in."""
    whole = make_clip(tmp_path / "whole.ts", frames=126, gop=120, audio=0)
    data = whole.read_bytes()
    clip = tmp_path / "cut.ts"
    clip.write_bytes(data[len(data) // 188 // 5 * 188:])  # whole 188-byte TS packets: a fifth of the file gone
    with av.open(str(clip)) as container:
        assert container.streams.video[0].codec_context.width == 0  # FFmpeg's own first look finds no size
    upscale_video(clip, tmp_path / "out.mkv", upscaler=upscaler)
    assert [array.shape for array in frame_arrays(tmp_path / "out.mkv")] == [(96, 128, 3)] * 6  # from frame 120 on


def test_a_two_frame_hevc_video_is_written_every_time(tmp_path, upscaler):
    """libx265, flushed with two frames queued, now and then gives them a random decode time
    (-9e13, 7e18): a two-frame HEVC clip (or a resumable job's two-frame segment) failed about
    one run in three with "cannot write ...: Invalid argument", the muxer refusing pts < dts."""
    from sr_filter.video.encode import _sane_dts

    packet = av.Packet(b"\0")
    packet.pts, packet.dts = 1, 7192076906678150104
    _sane_dts(packet)
    assert packet.dts == 1
    packet.pts, packet.dts = 4, 2  # a B-frame's reordering delay is left alone
    _sane_dts(packet)
    assert packet.dts == 2
    for attempt in range(10):  # each run failed about one time in two: ten all failed at least once
        clip = write_hevc10(tmp_path / f"two{attempt}.mkv", frames=2)
        upscale_video(clip, tmp_path / f"out{attempt}.mkv", upscaler=upscaler)
        assert describe(tmp_path / f"out{attempt}.mkv")["codec"] == "hevc" and len(describe(tmp_path / f"out{attempt}.mkv")["times"]) == 2


def test_a_ts_whose_sound_starts_just_before_its_video_across_the_timestamp_wrap_keeps_it(tmp_path, upscaler):
    """FFmpeg leaves wrapped the 33-bit times of a .ts stream it first meets past its probe: the
    AAC priming packet of sound that starts 10 s into the file read 2^33 - 11520 ticks (26.5 hours)
    and the next one 0, and the muxer refused that ("cannot write out.mkv: Invalid argument"), in a
    resumable job too."""
    clip = make_clip(tmp_path / "late.ts", frames=130, gop=130, audio=1)
    with av.open(str(clip)) as container:
        assert container.streams.audio[0].start_time > 2**32  # wrapped, as FFmpeg reads it
    for name, resume in (("out.mkv", False), ("out.mp4", False), ("resumed.mkv", True)):
        upscale_video(clip, tmp_path / name, upscaler=upscaler, resume=resume)
        with av.open(str(tmp_path / name)) as out:
            video, audio = out.streams.video[0], out.streams.audio[0]
            starts = [float(s.start_time * s.time_base) for s in (video, audio)]
            assert max(starts) < 0.2, (name, starts)  # together, as the source plays them
            assert abs(out.duration / 1e6 - 130 / 12) < 0.3, (name, out.duration)

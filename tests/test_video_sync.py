"""Picture and sound stay together: a white frame and a beep that start at the same moment in
the source start at the same moment in the output, through every container that keeps the
audio, a frame range, variable frame rate and a resumed run's joins.

Audio is copied packet for packet while the video is re-encoded, so a slip would come from
timestamps: AAC's encoder priming (128 ms at 8 kHz, trimmed by mp4's edit list), B-frames'
negative decode times, or a shift applied to one stream and not the other.
"""

from __future__ import annotations

import av
import pytest

from sr_filter.errors import CancelledError
from sr_filter.upscaler import Upscaler
from sr_filter.video import resume, upscale_video

from .videos import flash_and_beep, make_sync_clip

#: both onsets are found to the sample, so only rounding separates them
TOLERANCE = 0.002


@pytest.fixture(scope="module")
def upscaler():
    return Upscaler("sr-cartoon-x4", device="cpu", tile=32)


def gap(path) -> float:
    flash, beep = flash_and_beep(path)
    return beep - flash


SOURCES = {
    "mp4-aac-8k": dict(name="clip.mp4", audio_codec="aac", sample_rate=8000),
    "mkv-opus": dict(name="clip.mkv", audio_codec="libopus", sample_rate=48000),
    "mkv-aac-vfr": dict(name="clip.mkv", audio_codec="aac", sample_rate=8000, vfr=True),
}


def clip(tmp_path, kind, **more):
    settings = dict(SOURCES[kind])
    return make_sync_clip(tmp_path / settings.pop("name"), **settings, **more)


@pytest.mark.parametrize("kind, output", [
    ("mp4-aac-8k", "out.mp4"), ("mp4-aac-8k", "out.mkv"), ("mp4-aac-8k", "out.mov"),
    ("mkv-opus", "out.mkv"), ("mkv-opus", "out.webm"), ("mkv-opus", "out.mp4"),
    ("mkv-aac-vfr", "out.mp4"), ("mkv-aac-vfr", "out.mkv"),
])
def test_the_beep_stays_on_the_flash(tmp_path, upscaler, kind, output):
    source = clip(tmp_path, kind)
    assert abs(gap(source)) < TOLERANCE  # the clip itself is in sync
    upscale_video(source, tmp_path / output, upscaler=upscaler)
    assert gap(tmp_path / output) == pytest.approx(gap(source), abs=TOLERANCE)


@pytest.mark.parametrize("codec, sample_rate, frames", [("ac3", 48000, (5, 40)), ("aac", 8000, (5, 40)), ("aac", 8000, (0, 30))])
def test_a_range_keeps_the_audio_packet_sounding_at_its_start(tmp_path, upscaler, codec, sample_rate, frames):
    """Straddling the range's first frame (or priming AAC's decoder for it), that packet was
    dropped: the sound started 18-56 ms late, or lost its 128 ms priming packet."""
    source = make_sync_clip(tmp_path / "clip.mp4", audio_codec=codec, sample_rate=sample_rate)
    upscale_video(source, tmp_path / "part.mp4", upscaler=upscaler, frames=frames)
    assert gap(tmp_path / "part.mp4") == pytest.approx(gap(source), abs=TOLERANCE)


@pytest.mark.parametrize("kind", ["mp4-aac-8k", "mkv-aac-vfr"])
def test_a_frame_range_keeps_sync(tmp_path, upscaler, kind):
    source = clip(tmp_path, kind)
    upscale_video(source, tmp_path / "part.mp4", upscaler=upscaler, frames=(5, 40))
    flash, _ = flash_and_beep(tmp_path / "part.mp4")
    assert flash < flash_and_beep(source)[0]  # the range starts at its first frame
    assert gap(tmp_path / "part.mp4") == pytest.approx(gap(source), abs=TOLERANCE)


@pytest.mark.parametrize("kind, output", [("mp4-aac-8k", "out.mp4"), ("mkv-aac-vfr", "out.mkv")])
def test_a_resumed_run_keeps_sync_across_its_joins(tmp_path, upscaler, monkeypatch, kind, output):
    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)  # the flash (frame 12) opens the third segment
    source = clip(tmp_path, kind, gop=6)
    target = tmp_path / output
    with pytest.raises(CancelledError):  # stopped after frame 15, as by Ctrl-C
        upscale_video(source, target, upscaler=upscaler, resume=True, progress=lambda done, total: done < 15)
    summary = upscale_video(source, target, upscaler=upscaler, resume=True)
    assert summary["resumed_at"] == 12
    assert gap(target) == pytest.approx(gap(source), abs=TOLERANCE)


def test_a_range_from_the_first_frame_keeps_the_audio_packet_that_starts_before_it(tmp_path, upscaler):
    """An AC3 stream's first packet starts a few ms before the first frame; a range from frame 0
    dropped it, and the sound started 26 ms late."""
    source = make_sync_clip(tmp_path / "clip.mp4", audio_codec="ac3", sample_rate=48000)
    with av.open(str(source)) as container:
        first = next(p.pts for p in container.demux(container.streams.audio[0]) if p.size)
    assert first < 0
    upscale_video(source, tmp_path / "part.mp4", upscaler=upscaler, frames=(0, 30))
    with av.open(str(tmp_path / "part.mp4")) as container:
        assert next(p.pts for p in container.demux(container.streams.audio[0]) if p.size) == first
    assert gap(tmp_path / "part.mp4") == pytest.approx(gap(source), abs=TOLERANCE)


def test_ac3_copied_into_avi_keeps_its_timing(tmp_path, upscaler):
    """An AVI times audio packets by the samples in each, which the reader of an AVI source leaves
    unknown: copied so, 2 s of AC3 ended at 0.38 s and players going by timestamps lost sync."""
    source = make_sync_clip(tmp_path / "clip.avi", audio_codec="ac3", sample_rate=48000, bframes=0)
    upscale_video(source, tmp_path / "out.avi", upscaler=upscaler)
    with av.open(str(source)) as container:
        want = [float(p.pts * p.time_base) for p in container.demux(container.streams.audio[0]) if p.size]
    with av.open(str(tmp_path / "out.avi")) as container:
        got = [float(p.pts * p.time_base) for p in container.demux(container.streams.audio[0]) if p.size]
    assert len(got) == len(want) and got[-1] == pytest.approx(want[-1] - want[0], abs=0.002)


@pytest.mark.parametrize("codec, sample_rate", [("aac", 8000), ("aac", 48000)])
def test_an_avi_output_keeps_each_frame_in_its_slot_and_the_sound_on_the_picture(tmp_path, upscaler, codec, sample_rate):
    """AAC's priming packet starts before zero, which an AVI cannot hold: its muxer moved every
    stream later, which the constant-rate video took as empty slots (54 frames read back for 50,
    frame 0 shown for 160 ms, the beep 32 ms before the flash). A frame range that starts inside
    an audio packet did the same (39 slots for 35 frames)."""
    source = make_sync_clip(tmp_path / "clip.mp4", audio_codec=codec, sample_rate=sample_rate)
    for frames, count in ((None, 50), ((5, 40), 35)):
        target = tmp_path / f"out{count}.avi"
        upscale_video(source, target, upscaler=upscaler, codec="ffv1", frames=frames)
        with av.open(str(target)) as container:
            assert container.streams.video[0].frames == count
            assert [frame.pts for frame in container.decode(video=0)] == list(range(count))
        if frames is None:
            assert gap(target) == pytest.approx(gap(source), abs=TOLERANCE)
        else:  # the packets' order places an AVI's sound: a packet cut by the range's start moves it by less than half its length
            assert gap(target) == pytest.approx(gap(source), abs=1024 / sample_rate / 2 + TOLERANCE)


def test_a_packet_before_zero_in_an_avi_is_dropped_or_starts_there_by_its_presentation_time():
    """The choice went by the decode time and rewrote the presentation time: a packet shown after
    zero but decoded before it had been moved to zero."""
    from fractions import Fraction

    from sr_filter.video.encode import moved

    def packet(pts, dts, duration):
        made = av.Packet(8)
        made.pts, made.dts, made.duration, made.time_base = pts, dts, duration, Fraction(1, 1000)
        return made

    kept = packet(-10, -10, 40)  # mostly after zero: starts there
    assert moved(kept, Fraction(0), from_zero=True) and (kept.pts, kept.dts) == (0, 0)
    assert not moved(packet(-30, -30, 40), Fraction(0), from_zero=True)  # mostly before: left out
    bare = packet(None, -10, 40)  # no presentation time: its decode time decides
    assert moved(bare, Fraction(0), from_zero=True) and (bare.pts, bare.dts) == (None, 0)
    shown_later = packet(40, -40, 40)
    assert moved(shown_later, Fraction(0), from_zero=True) and (shown_later.pts, shown_later.dts) == (40, -40)
    whole = packet(-10, -10, 40)  # elsewhere a packet before zero stays (mp4 and mkv trim it)
    assert moved(whole, Fraction(0)) and whole.pts == -10


@pytest.mark.parametrize("steps", [(2, 1, 4, 2, 6), (1, 3, 1, 1, 6)])
@pytest.mark.parametrize("output", ["out.mp4", "out.mkv"])
def test_a_resumed_variable_rate_clip_with_b_frames_keeps_its_timing_and_sync(tmp_path, upscaler, monkeypatch, steps, output):
    """Each segment's encoder starts its decode times early by its B-frame delay, counted in its
    own first frames' durations: at variable frame rate a segment's first decode time fell before
    the previous one's last, and every run failed at the join ("cannot write ...: Invalid
    argument"). The joined video now has a whole run's frame times, length and sync."""
    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    source = make_sync_clip(tmp_path / "clip.mp4", vfr=steps, gop=6, frames=30)
    upscale_video(source, tmp_path / output, upscaler=upscaler, resume=True)
    upscale_video(source, tmp_path / f"whole{output}", upscaler=upscaler)

    def timing(path):
        with av.open(str(path)) as container:
            return [frame.pts * frame.time_base for frame in container.decode(video=0)], container.duration

    def spacing(path):
        times = timing(path)[0]
        return [later - earlier for earlier, later in zip(times, times[1:])]

    assert timing(tmp_path / output) == timing(tmp_path / f"whole{output}")
    assert spacing(tmp_path / output) == spacing(source)
    assert gap(tmp_path / output) == pytest.approx(gap(source), abs=TOLERANCE)

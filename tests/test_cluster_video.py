"""One video on a real local Ray cluster (2 CPUs, started once for the module): keyframe-aligned
segments upscaled on different workers and joined without re-encoding give the frames,
timestamps and streams of a single-machine run; a worker killed mid-job and a driver stopped
mid-job still end in a complete output."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
import pytest

from sr_filter.upscaler import Upscaler

from .conftest import KillFirstWorker, one_thread
from .videos import describe, frame_arrays, make_clip, write_hevc10

ray = pytest.importorskip("ray")

from sr_filter.cluster import Interrupted, segments, upscale_video  # noqa: E402
from sr_filter.errors import SrFilterError, VideoFormatError  # noqa: E402
from sr_filter.video import resume  # noqa: E402
from sr_filter.video import upscale_video as upscale_video_here  # noqa: E402

SETTINGS = {"model": "sr-cartoon-x4", "tile": 32, "device": "cpu"}


@pytest.fixture(scope="module")
def upscaler():
    """The single-machine reference, with one thread as the workers (the tests compare pixels exactly)."""
    with one_thread():
        return Upscaler("sr-cartoon-x4", device="cpu", tile=32)


@pytest.fixture(scope="module")
def lossless(tmp_path_factory, upscaler):
    """An FFV1 clip with audio and subtitles, and its single-machine upscaled copy (the reference)."""
    root = tmp_path_factory.mktemp("lossless")
    clip = make_clip(root / "clip.mkv", frames=24, codec="ffv1", pix_fmt="yuv444p", gop=3, vfr=True, subtitles=True)
    reference = root / "reference.mkv"
    upscale_video_here(clip, reference, upscaler=upscaler)
    return clip, reference, frame_arrays(reference)


def _same_video(path: Path, reference: Path, frames: list[np.ndarray]) -> None:
    assert describe(path) == describe(reference)  # frame count, timestamps, size, tags, other streams
    got = frame_arrays(path)
    assert len(got) == len(frames)
    for i, (a, b) in enumerate(zip(got, frames)):
        assert np.array_equal(a, b), f"frame {i} differs"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _live_workers() -> list[int]:
    """Segment-worker processes of this test's cluster (the raylet is this process's child)."""
    live = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "SegmentWorker" in " ".join(process.cmdline()):
                live.append(process.pid)
        except psutil.Error:
            continue  # gone while looking
    return live


def test_plan_cuts_before_keyframes_as_the_single_machine_run_does(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=30, gop=7, audio=0)
    planned = segments.plan(str(clip), 6)
    assert [(s.first, s.end) for s in planned] == [(0, 7), (7, 14), (14, 21), (21, 28), (28, 30)]
    times = describe(clip)["times"]
    with av.open(str(clip)) as container:
        tick = float(container.streams.video[0].time_base)
    assert [round(s.first_pts * tick, 6) for s in planned] == [round(times[s.first], 6) for s in planned]
    assert planned[-1].end_pts is None and planned[0].end_pts == planned[1].first_pts


def test_resumable_ffv1_output_keeps_the_colour_tags(lossless, upscaler, tmp_path):
    """Single machine: segments of FFV1 (NUT files before, which carry no colour tags); the joined
    output must still have the source's (as the one-pass output has)."""
    clip, reference, _ = lossless
    upscale_video_here(clip, tmp_path / "resumable.mkv", upscaler=upscaler, resume=True)
    assert describe(tmp_path / "resumable.mkv") == describe(reference)


def test_same_frames_timestamps_and_streams_as_one_machine(cluster, lossless, tmp_path):
    clip, reference, frames = lossless
    planned: list[tuple[int, int]] = []
    summary = upscale_video(clip, tmp_path / "out.mkv", **SETTINGS, segment_frames=6, on_plan=lambda todo, kept: planned.append((todo, kept)))
    assert planned == [(4, 0)] and summary.done == 4 and summary.failed == [] and summary.workers == 2
    assert summary.frames == 24 and summary.path == str(tmp_path / "out.mkv")
    _same_video(tmp_path / "out.mkv", reference, frames)
    assert _leftovers(tmp_path) == []  # the parts folder and temporary files are gone


def test_frames_share_a_network_pass_only_within_a_segment_on_both_paths(tmp_path, monkeypatch):
    """Frames that go through the network together may differ in the last bit from frames that go
    alone (it depends on the CPU), and a lossy encoder magnifies that. So one machine's resumable
    run pairs frames from each segment's start, as a worker that sees only its segment does: with
    5-frame segments and 2 frames per pass, both make passes of 2, 2 and 1 frames per segment."""
    from .test_video_batch import PassRecorder

    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 4)
    clip = make_clip(tmp_path / "clip.mp4", frames=15, gop=5, audio=0)
    here = Upscaler("sr-cartoon-x4", device="cpu", tile=0)
    here.backend = PassRecorder(here.backend)
    upscale_video_here(clip, tmp_path / "here.mkv", upscaler=here, resume=True, batch=2)
    assert [shape[0] for shape in here.backend.shapes] == [2, 2, 1] * 3

    there = Upscaler("sr-cartoon-x4", device="cpu", tile=0)
    there.backend = PassRecorder(there.backend)
    planned = segments.plan(str(clip), 4)
    assert [(s.first, s.end) for s in planned] == [(0, 5), (5, 10), (10, 15)]
    settings = segments.VideoSettings(model="sr-cartoon-x4", device="cpu", tile=0, codec="h264")
    for span in planned:
        segments.encode_segment(there, dataclasses.replace(span, target=str(tmp_path / segments.segment_name(span.first, span.end))), settings)
    assert there.backend.shapes == here.backend.shapes


def test_h264_segments_equal_the_resumable_single_machine_run(cluster, upscaler, tmp_path, monkeypatch):
    """Lossy codec: the cluster encodes the same segments as ``resume=True`` on one machine, so the
    decoded frames are equal too, and the joins were not re-encoded."""
    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 6)
    clip = make_clip(tmp_path / "clip.mp4", frames=20, gop=6, vfr=True)
    upscale_video_here(clip, tmp_path / "here.mp4", upscaler=upscaler, resume=True)
    summary = upscale_video(clip, tmp_path / "there.mp4", **SETTINGS, segment_frames=6)
    assert summary.done == 4 and not summary.failed  # keyframes at 0, 6, 12, 18
    _same_video(tmp_path / "there.mp4", tmp_path / "here.mp4", frame_arrays(tmp_path / "here.mp4"))
    assert describe(tmp_path / "there.mp4")["others"] == [("audio", "aac")]


def test_a_killed_worker_still_gives_a_complete_output(cluster, lossless, tmp_path):
    clip, reference, frames = lossless
    killer = KillFirstWorker()
    summary = upscale_video(clip, tmp_path / "out.mkv", **SETTINGS, segment_frames=3, on_event=killer)
    assert killer.killed and summary.workers_lost == 1 and not summary.failed
    done = sorted(e.task.first for e in killer.events if e.kind in ("done", "skipped"))
    assert done == list(range(0, 24, 3))  # every segment exactly once
    _same_video(tmp_path / "out.mkv", reference, frames)
    assert _leftovers(tmp_path) == []


def test_a_model_the_workers_cannot_load_leaves_no_segment_folder(cluster, lossless, tmp_path):
    from sr_filter.errors import ClusterError

    clip, _, _ = lossless
    with pytest.raises(ClusterError, match="^unknown model or preset 'no-such-model'"):
        upscale_video(clip, tmp_path / "out.mkv", model="no-such-model", device="cpu", segment_frames=6)
    assert list(tmp_path.iterdir()) == []  # its .out.mkv.parts/job.json had stayed


def test_a_stopped_driver_resumes_with_its_finished_segments(cluster, lossless, tmp_path):
    clip, reference, frames = lossless
    target = tmp_path / "out.mkv"

    def stop(event):  # as Ctrl-C on the driver once the first segment is in
        if event.kind == "done":
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        upscale_video(clip, target, **SETTINGS, segment_frames=6, on_event=stop)
    assert _live_workers() == []  # stopped for certain before the driver cleaned up
    assert not target.exists()
    kept = [tuple(int(n) for n in p.stem.split("-")[1:]) for p in resume.parts_folder(target).glob("seg-*.seg")]  # any order
    assert kept and not list(resume.parts_folder(target).glob(".*.tmp"))  # no half-written segment left
    planned, events = [], []
    summary = upscale_video(clip, target, **SETTINGS, segment_frames=6, on_plan=lambda *a: planned.append(a), on_event=events.append)
    assert planned == [(4 - len(kept), len(kept))] and summary.skipped == len(kept)
    assert {(e.task.first, e.task.end) for e in events}.isdisjoint(kept)  # finished segments were not redone
    _same_video(target, reference, frames)
    assert _leftovers(tmp_path) == []


def test_cli_video_on_the_cluster_and_its_one_line_errors(cluster, lossless, tmp_path, capsys, monkeypatch):
    """Through the console entry point in this process (so it joins the module's cluster); only
    its signal handlers are left out, to keep pytest's."""
    import sr_filter.cli as cli

    monkeypatch.setattr(cli, "_install_signal_handlers", lambda: None)
    clip, reference, frames = lossless
    out = tmp_path / "out.mkv"

    def sr_filter(*args: str) -> tuple[int, str]:
        try:
            cli.main([*args, "--cluster", "auto", "-m", "sr-cartoon-x4", "-t", "32", "-d", "cpu"])
            code = 0
        except SystemExit as exc:
            code = exc.code
        return code, capsys.readouterr().err

    code, err = sr_filter(str(clip), "-o", str(out))
    assert code == 0, err
    assert "1 segment(s) upscaled, 0 skipped, 0 failed" in err and "24 frames joined" in err
    _same_video(out, reference, frames)
    for args, message in (
        ([str(clip), "-o", str(out)], f"sr-filter: error: --cluster never replaces an existing output ({out} exists); remove it or choose another -o"),
        ([str(clip), "-o", str(tmp_path / "b.mkv"), "--frames", "0:4"], "sr-filter: error: --cluster upscales whole videos and animations; leave out --frames"),
        ([str(clip), "-o", str(tmp_path / "b.mkv"), "--overwrite"], "sr-filter: error: --cluster never replaces an existing output"),
        ([str(clip), "-o", "s3://bucket/b.mkv"], "sr-filter: error: s3://bucket/b.mkv: videos on a cluster are read and written on a shared file system"),
    ):
        code, err = sr_filter(*args)
        assert code != 0 and len(err.strip().splitlines()) == 1 and err.startswith(message) and "--overwrite to" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]
    before = out.stat().st_mtime_ns
    for flag in ("--skip-existing", "--resume"):  # a retry after the output was published: done, exit 0 (had been exit 2)
        code, err = sr_filter(str(clip), "-o", str(out), flag)
        assert code == 0 and err.strip() == f"sr-filter: skipping existing output {out}", (flag, err)
    assert out.stat().st_mtime_ns == before
    dangling = tmp_path / "gone.mkv"
    dangling.symlink_to(tmp_path / "nowhere" / "x.mkv")  # a link to nothing is an output that exists
    code, err = sr_filter(str(clip), "-o", str(dangling), "--skip-existing")
    assert code == 0 and err.strip() == f"sr-filter: skipping existing output {dangling}", err
    code, err = sr_filter(str(clip), "-o", str(dangling))
    assert code != 0 and err.startswith("sr-filter: error: --cluster never replaces an existing output"), err
    assert dangling.is_symlink() and not (tmp_path / "nowhere").exists()


def test_frames_missing_mid_file_and_hdr10_metadata_are_said_as_on_one_machine(cluster, tmp_path):
    """One machine says a jump in otherwise even timestamps and HDR10 metadata the output does
    not keep, while decoding; each worker sees its segment only, and the cluster said neither."""
    holed = tmp_path / "hole.mkv"
    with av.open(str(holed), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate([40 * i for i in range(12)] + [2000 + 40 * i for i in range(12)]):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), (i * 9) % 255, np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    hdr = write_hevc10(tmp_path / "hdr.mkv", frames=2, hdr10=True)
    for clip, said in ((holed, f"{holed} jumps 1.56 s at 0.44 s where its frames are otherwise 40 ms apart"),
                       (hdr, f"{hdr} carries HDR10 mastering-display and light-level metadata, which the output does not keep")):
        here: list[str] = []
        upscale_video_here(clip, tmp_path / f"{clip.stem}_here.mkv", **SETTINGS, notice=here.append)
        there: list[str] = []
        upscale_video(clip, tmp_path / f"{clip.stem}_x4.mkv", **SETTINGS, address=cluster, notice=there.append)
        assert there == here and len(here) == 1 and here[0].startswith(said), (here, there)


def test_a_size_rounded_to_even_is_said_as_on_one_machine_and_a_width_is_taken(cluster, tmp_path):
    """One machine says an output size rounded to the even sizes encoders take; the cluster said
    nothing, and took no width or height (the command line turned them into a scale, so a
    rounded --width was said as neither)."""
    clip = make_clip(tmp_path / "odd.mkv", frames=4, size=(33, 25), codec="ffv1", pix_fmt="yuv444p", audio=0)
    for number, sizing in enumerate(({"scale": 3}, {"width": 101})):
        here: list[str] = []
        upscale_video_here(clip, tmp_path / f"here{number}.mkv", **SETTINGS, **sizing, notice=here.append)
        there: list[str] = []
        upscale_video(clip, tmp_path / f"there{number}.mkv", **SETTINGS, **sizing, address=cluster, notice=there.append)
        assert there == here and len(here) == 1 and here[0].endswith("video encoders take even picture sizes"), (here, there)
        assert describe(tmp_path / f"there{number}.mkv")["size"] == describe(tmp_path / f"here{number}.mkv")["size"]


def test_the_warnings_of_loading_the_model_reach_notice_without_on_ready(cluster, tmp_path):
    """A caller that gives ``notice`` alone heard nothing of a built-in model used instead of the
    preset's (one machine's notice hears it); without on_ready the workers' lines were lost."""
    clip = make_clip(tmp_path / "clip.mkv", frames=3, audio=0)
    here: list[str] = []
    upscale_video_here(clip, tmp_path / "here.mkv", preset="photo", offline=True, tile=32, device="cpu", notice=here.append)
    there: list[str] = []
    upscale_video(clip, tmp_path / "there.mkv", preset="photo", offline=True, tile=32, device="cpu", address=cluster,
                  notice=there.append)
    assert there == here and len(here) == 1 and here[0].startswith("offline: using the built-in model sr-photo-x4"), (here, there)


def test_quiet_cli_video_on_the_cluster_says_no_notice(cluster, tmp_path, capsys, monkeypatch):
    """-q is errors only, and one machine says no notice under it; with --cluster the notices
    (a variable rate written constant, a stream dropped) were printed anyway."""
    import sr_filter.cli as cli

    monkeypatch.setattr(cli, "_install_signal_handlers", lambda: None)
    clip = make_clip(tmp_path / "subs.mkv", frames=6, vfr=True, attachment=True)
    for quiet in (True, False):
        try:
            cli.main([str(clip), "-o", str(tmp_path / f"out{quiet}.avi"), *(["-q"] if quiet else []), "--cluster", "auto",
                      "-m", "sr-cartoon-x4", "-t", "32", "-d", "cpu"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        err = capsys.readouterr().err
        said = ["sr-filter: an .avi file keeps a constant frame rate", "sr-filter: dropped attachment stream 2 (font.ttf)"]
        assert (err == "") if quiet else all(line in err for line in said), err


def _packet_times(path: Path) -> list[tuple[float, float]]:
    """(start, display time) of every video packet, in seconds, in presentation order."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return sorted((round(float(p.pts * p.time_base), 6), round(float(p.duration * p.time_base), 6))
                      for p in container.demux(video) if p.size)


def test_avi_segments_are_timed_as_the_whole_file_where_a_seek_misdates_the_packets(tmp_path):
    """FFmpeg's AVI reader dates the packets after a seek to this clip's last keyframe 5 ticks late
    (221 for 216), and that segment failed ("not found after seeking"); the segment's first
    packet, known by its place in the file, sets the clock right."""
    from sr_filter.video import source

    clip = make_clip(tmp_path / "b.avi", frames=40, size=(16, 12), bframes=3, gop=9, audio=1)
    container = source.open_video(str(clip))
    try:
        clock, whole = source.Clock(container), []
        for packet in container.demux(container.streams.video[0]):
            clock.fed(packet)
            whole += [clock.stamp(frame) for frame in packet.decode()]
    finally:
        container.close()
    planned = segments.plan(str(clip), 8)
    assert [s.first for s in planned] == [0, 9, 18, 27, 36] and all(s.first_pos > 0 for s in planned)
    for span in planned:
        container = source.open_video(str(clip))
        try:
            info = source.describe(container, str(clip), scale=1.0)
            assert [frame.pts for frame in segments._frames(container, str(clip), info, span)] == whole[span.first:span.end]
        finally:
            container.close()


def test_avi_b_frames_and_each_segment_end_are_timed_as_on_one_machine(cluster, upscaler, tmp_path, monkeypatch):
    """AVI stores decode times only: the workers time B-frame video as one machine does (frames in
    order, rising timestamps). And the last frame of every segment keeps its display time, so the
    joined packets last as long as those of the resumable single-machine run."""
    monkeypatch.setattr(resume, "SEGMENT_FRAMES", 4)
    for clip in (make_clip(tmp_path / "b.avi", frames=12, size=(16, 12), bframes=2, gop=4, audio=0),
                 make_clip(tmp_path / "vfr.mp4", frames=12, size=(16, 12), vfr=True, gop=4, audio=0)):
        here, there = tmp_path / f"{clip.stem}-here.mkv", tmp_path / f"{clip.stem}-there.mkv"
        upscale_video_here(clip, here, upscaler=upscaler, resume=True)
        summary = upscale_video(clip, there, **SETTINGS, segment_frames=4)
        assert summary.done == 3 and not summary.failed, summary.failed
        _same_video(there, here, frame_arrays(here))
        assert _packet_times(there) == _packet_times(here)
    assert describe(tmp_path / "b-there.mkv")["times"] == pytest.approx([i / 12 for i in range(12)], abs=2e-3)
    upscale_video(tmp_path / "b.avi", tmp_path / "there.avi", **SETTINGS, segment_frames=4)  # AVI out: one frame per tick
    with av.open(str(tmp_path / "there.avi")) as container:
        video = container.streams.video[0]
        assert (video.time_base, video.frames, video.average_rate) == (Fraction(1, 12), 12, 12)


def test_a_truncated_video_is_refused_before_any_segment_as_on_one_machine(tmp_path):
    whole = make_clip(tmp_path / "whole.mkv", frames=24).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) * 3 // 5])  # Matroska: readable up to the cut
    with pytest.raises(VideoFormatError, match="cut.mkv ends early"):
        segments.plan(str(tmp_path / "cut.mkv"), 6)
    assert len(segments.plan(str(tmp_path / "whole.mkv"), 6)) >= 1


@pytest.mark.parametrize("batch", [0, 65, "2", 1.5])
def test_frames_per_pass_is_checked_before_the_cluster(tmp_path, batch):
    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=0)
    with pytest.raises(SrFilterError, match="frames per pass"):
        upscale_video(clip, tmp_path / "out.mkv", **SETTINGS, batch=batch, address="127.0.0.1:1")
    assert not (tmp_path / "out.mkv").exists() and _leftovers(tmp_path) == []


def test_what_the_output_cannot_keep_is_said_as_on_one_machine(cluster, tmp_path):
    """The driver said nothing of a lost alpha channel or of fewer colour details (one machine did)."""
    from .videos import alpha_clip, alpha_halves

    alpha = alpha_clip(tmp_path / "alpha.mkv", pix_fmt="yuva444p")
    notices: list[str] = []
    upscale_video(alpha, tmp_path / "out.mkv", **SETTINGS, codec="av1", address=cluster, notice=notices.append)
    assert [n.split(":")[0] for n in notices] == ["the source's yuva444p video has an alpha channel (transparency), which "
                                                  "libsvtav1 cannot keep", "libsvtav1 writes yuv420p"], notices
    notices.clear()  # and the workers keep it where the encoder can
    upscale_video(alpha, tmp_path / "kept.mkv", **SETTINGS, codec="ffv1", address=cluster, notice=notices.append)
    assert notices == [] and describe(tmp_path / "kept.mkv")["pix_fmt"] == "yuva444p"
    assert all(left < 2 and right > 253 for left, right in alpha_halves(tmp_path / "kept.mkv"))
    webm = alpha_clip(tmp_path / "alpha.webm", codec="libvpx-vp9", frames=4)  # alpha beside VP9's pictures, read and kept
    upscale_video(webm, tmp_path / "kept.webm", **SETTINGS, address=cluster, notice=notices.append)
    assert notices == [] and describe(tmp_path / "kept.webm")["codec"] == "vp9"
    assert len(alpha_halves(tmp_path / "kept.webm")) == 4
    assert all(left < 2 and right > 253 for left, right in alpha_halves(tmp_path / "kept.webm"))



def test_dropped_streams_are_said_through_notice_before_the_upscale(cluster, tmp_path):
    """The driver said what the output leaves out only in the command's summary, after every
    segment was upscaled and joined; an API caller's notice never heard it. Now it is said
    before the work, as on one machine, and only once."""
    clip = make_clip(tmp_path / "subs.mkv", frames=6, subtitles=True, attachment=True)
    heard: list[str] = []
    summary = upscale_video(clip, tmp_path / "out.mp4", **SETTINGS, address=cluster, notice=heard.append,
                            on_plan=lambda todo, kept: heard.append("plan"), on_event=lambda event: heard.append("event"))
    said = [f"dropped {line}" for line in summary.dropped] + [f"converted {line}" for line in summary.converted]
    assert len(said) == 2 and heard[:3] == [*said, "plan"] and set(heard[3:]) == {"event"}, heard


def test_a_crf_the_encoder_does_not_take_is_refused_before_the_cluster(tmp_path, capsys, monkeypatch):
    """The workers' encoder had clamped crf 60 to 51 without a word (exit 0); one machine refuses it."""
    from sr_filter import cli

    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=0)
    with pytest.raises(VideoFormatError, match=r"^crf 100 is out of range for h264 \(libx264 takes 0-51; lower is better\)$"):
        upscale_video(clip, tmp_path / "out.mkv", **SETTINGS, crf=100, address="127.0.0.1:1")
    monkeypatch.setattr(cli, "_install_signal_handlers", lambda: None)
    with pytest.raises(SystemExit) as ended:
        cli.main([str(clip), "-o", str(tmp_path / "out.mkv"), "--crf", "60", "--cluster", "127.0.0.1:1", "-m", "sr-cartoon-x4"])
    assert ended.value.code == 1
    assert capsys.readouterr().err.strip() == "sr-filter: error: crf 60 is out of range for h264 (libx264 takes 0-51; lower is better)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_quality_is_refused_for_a_video_before_the_cluster_as_on_one_machine(tmp_path, capsys, monkeypatch):
    """--quality with a video had been accepted and changed nothing (exit 0); one machine refuses it."""
    from sr_filter import cli

    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=0)
    monkeypatch.setattr(cli, "_install_signal_handlers", lambda: None)
    with pytest.raises(SystemExit) as ended:
        cli.main([str(clip), "-o", str(tmp_path / "out.mkv"), "--quality", "50", "--cluster", "127.0.0.1:1", "-m", "sr-cartoon-x4"])
    assert ended.value.code == 2
    assert capsys.readouterr().err.strip() == ("sr-filter: error: --quality is for JPEG, WebP and AVIF pictures; a video's quality is "
                                               "--crf (lower is better: h264 and hevc 0-51, vp9 0-63, av1 1-63)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_bad_video_is_named_as_given_as_on_one_machine(cluster, tmp_path, monkeypatch):
    """The driver's refusals named the video by the absolute path the workers read
    ("/tmp/.../cut.mkv ends early"); one machine names it as given."""
    whole = make_clip(tmp_path / "whole.mkv", frames=24).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) * 3 // 5])
    (tmp_path / "junk.mkv").write_bytes(b"not a video at all")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VideoFormatError, match=r"^cut.mkv ends early: its video stops at "):
        upscale_video("cut.mkv", "out.mkv", **SETTINGS, address=cluster)
    with pytest.raises(VideoFormatError, match=r"^junk.mkv is not a readable video"):
        upscale_video(Path("junk.mkv"), "out.mkv", **SETTINGS, address="127.0.0.1:1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mkv", "junk.mkv", "whole.mkv"]

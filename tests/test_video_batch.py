"""Frames batched through the network (``Upscaler.upscale_batch``, the video path's frames per
pass) and the image options ``--tta`` / ``--denoise`` / ``--backend`` reaching the video path."""

from __future__ import annotations

import numpy as np
import pytest

from sr_filter.errors import SrFilterError
from sr_filter.upscaler import Upscaler
from sr_filter.video import upscale_frames, upscale_video

from .test_video import MODEL, leftovers
from .videos import describe, frame_arrays, make_clip, pattern


class PassRecorder:
    """Wraps a real backend and records the input shape of every network pass (the spy only counts)."""

    def __init__(self, backend):
        self.inner, self.shapes = backend, []
        self.name, self.precision = backend.name, backend.precision

    def run(self, batch):
        self.shapes.append(tuple(batch.shape))
        return self.inner.run(batch)


def _recorded(tile) -> Upscaler:
    up = Upscaler(MODEL, device="cpu", tile=tile)
    up.backend = PassRecorder(up.backend)
    return up


@pytest.mark.parametrize("tile", [0, 32])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_batch_equals_one_frame_at_a_time_in_one_pass_per_window(tile, dtype):
    up = _recorded(tile)
    frames = [pattern(i, 44, 30, dtype) for i in range(3)]  # 44x30: padding and uneven tiles too
    single = [up.upscale_array(f) for f in frames]
    passes = len(up.backend.shapes) // len(frames)  # windows per frame
    up.backend.shapes.clear()
    batched = up.upscale_batch(frames)
    assert len(up.backend.shapes) == passes  # one pass per window for all three frames together
    assert {shape[0] for shape in up.backend.shapes} == {3}
    top = np.iinfo(dtype).max
    for a, b in zip(single, batched):
        assert b.shape == a.shape == (120, 176, 3) and b.dtype == dtype
        assert np.abs(a.astype(np.int64) - b).max() <= top / 255  # within 1/255 (in fact equal)


def test_batch_of_grey_frames_and_progress():
    up = _recorded(32)
    frames = [pattern(i, 40, 24)[:, :, 1] for i in range(2)]
    seen: list[tuple[int, int]] = []
    batched = up.upscale_batch(frames, progress=lambda done, total: seen.append((done, total)))
    assert {shape[0] for shape in up.backend.shapes} == {2}
    for frame, out in zip(frames, batched):
        assert out.shape == (96, 160) and np.array_equal(out, up.upscale_array(frame))
    assert seen[-1] == (2 * 40 * 24, 2 * 40 * 24) and [d for d, _ in seen] == sorted(d for d, _ in seen)  # over all the frames


def test_frames_that_cannot_share_a_pass_run_one_by_one():
    up = _recorded(0)
    rgba = np.dstack([pattern(0, 16, 12), np.full((12, 16), 128, np.uint8)])
    mixed = [pattern(0, 16, 12), pattern(1, 20, 12), rgba]
    out = up.upscale_batch(mixed)
    assert {shape[0] for shape in up.backend.shapes} == {1}
    for frame, big in zip(mixed, out):
        assert np.array_equal(big, up.upscale_array(frame))
    assert [a.shape for a in up.upscale_batch(mixed[:2], scale=2)] == [(24, 32, 3), (24, 40, 3)]  # below native: resized
    assert up.upscale_batch([]) == []
    with pytest.raises(SrFilterError, match="expected image pixels, got a file name"):  # bad input: upscale_array's one-line errors
        up.upscale_batch(["not", "frames"])
    with pytest.raises(SrFilterError, match="scale must be a number"):
        up.upscale_batch(mixed[:2], scale="x4")


def test_upscale_frames_in_groups_keeps_order_and_the_last_short_group():
    up = _recorded(0)
    frames = [pattern(i, 16, 12) for i in range(5)]
    out = list(upscale_frames(iter(frames), up, batch=2))
    assert [shape[0] for shape in up.backend.shapes] == [2, 2, 1]
    up.backend.shapes.clear()
    assert all(np.array_equal(a, up.upscale_array(f)) for a, f in zip(out, frames)) and len(out) == 5
    with pytest.raises(SrFilterError, match="frames per pass"):
        next(upscale_frames(iter(frames), up, batch=0))


def test_upscale_frames_names_a_bad_frame_by_its_place_in_the_stream():
    """Frame 5 of a stream, not a numpy image, had been said as "arrays[1]" (its place in a batch of 2)."""
    up = Upscaler(MODEL, tile=0)
    frames = [pattern(i, 16, 12) for i in range(5)] + ["frame5.png"]
    done = []
    with pytest.raises(SrFilterError, match=r"^frame 5: expected image pixels, got a file name"):
        for frame in upscale_frames(iter(frames), up, batch=2):
            done.append(frame)
    assert len(done) == 4


@pytest.mark.parametrize("batch", [0, 65, 2.5, True])
def test_frames_per_pass_is_checked(tmp_path, batch):
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=0)
    with pytest.raises(SrFilterError, match="frames per pass"):
        upscale_video(clip, tmp_path / "out.mp4", MODEL, device="cpu", batch=batch)
    assert not (tmp_path / "out.mp4").exists()


def test_a_model_or_loading_setting_beside_a_ready_upscaler_is_refused(tmp_path):
    """Both had been ignored without a word (device="cuda" ran on the CPU, tta=True without TTA),
    where upscale_file and upscale_animation refuse them."""
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=0)
    with pytest.raises(SrFilterError, match="either a ready upscaler or a preset/model"):
        upscale_video(clip, tmp_path / "out.mp4", "photo", upscaler=_recorded(0))
    for setting in ({"tta": True}, {"device": "cuda"}, {"denoise": 0.5}, {"tile": 64}):
        name = next(iter(setting))
        with pytest.raises(SrFilterError, match=f"^{name} is set on the Upscaler"):
            upscale_video(clip, tmp_path / "out.mp4", upscaler=_recorded(0), **setting)
    assert not (tmp_path / "out.mp4").exists()


def test_video_batched_equals_unbatched_with_every_frame_and_packet(tmp_path):
    up = _recorded(32)
    clip = make_clip(tmp_path / "clip.mkv", frames=7, codec="ffv1", pix_fmt="yuv444p", audio=2, subtitles=True, vfr=True)
    upscale_video(clip, tmp_path / "one.mkv", upscaler=up, batch=1)
    assert {shape[0] for shape in up.backend.shapes} == {1}
    up.backend.shapes.clear()
    upscale_video(clip, tmp_path / "three.mkv", upscaler=up, batch=3)  # 3 + 3 + a last pass of 1
    assert sorted({shape[0] for shape in up.backend.shapes}) == [1, 3]
    one, three = frame_arrays(tmp_path / "one.mkv"), frame_arrays(tmp_path / "three.mkv")
    assert len(three) == len(one) == 7
    assert all(np.array_equal(a, b) for a, b in zip(one, three))
    before, after = describe(clip), describe(tmp_path / "three.mkv")
    assert after["times"] == pytest.approx(before["times"]) and after["others"] == before["others"]
    assert leftovers(tmp_path) == []


def test_cli_tta_reaches_the_video_path(tmp_path, cli):
    clip = make_clip(tmp_path / "clip.mkv", frames=2, codec="ffv1", pix_fmt="yuv444p", audio=0)
    result = cli(clip, "-m", MODEL, "-t", "32", "--tta", "--backend", "torch", "--codec", "ffv1", "-o", tmp_path / "tta.mkv")
    assert result.returncode == 0, result.stderr.decode()
    assert "torch+tta" in result.stderr.decode()  # the announced backend
    plain = Upscaler(MODEL, device="cpu", tile=32)
    tta = Upscaler(MODEL, device="cpu", tile=32, tta=True)
    for source, out in zip(frame_arrays(clip), frame_arrays(tmp_path / "tta.mkv")):
        to_tta = np.abs(out.astype(float) - tta.upscale_array(source)).mean()
        to_plain = np.abs(out.astype(float) - plain.upscale_array(source)).mean()
        assert to_tta < to_plain


def test_quality_for_a_video_is_refused_or_said_in_a_batch(tmp_path, cli):
    """--quality (JPEG/WebP) on a video had changed nothing without a word: the output was the same file."""
    from PIL import Image

    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=0)
    result = cli(clip, "-m", MODEL, "--quality", "5", "-o", tmp_path / "out.mp4")
    err = result.stderr.decode().strip()
    assert result.returncode == 2 and err.count("\n") == 0 and "a video's quality is --crf" in err, err
    assert not (tmp_path / "out.mp4").exists()
    Image.new("RGB", (16, 12), (200, 30, 40)).save(tmp_path / "a.png")
    result = cli(tmp_path / "a.png", clip, "-m", MODEL, "--quality", "50", "-o", f"{tmp_path / 'out'}/")
    err = result.stderr.decode()
    assert result.returncode == 0 and "clip.mp4: --quality is for JPEG, WebP and AVIF pictures" in err, err
    assert (tmp_path / "out" / "clip.mp4").exists() and (tmp_path / "out" / "a.png").exists()
    from .videos import make_y4m  # a frame stream has no quality setting either (it had been ignored)

    stream = make_y4m(tmp_path / "in.y4m", frames=2)
    result = cli(stream, "-m", MODEL, "--quality", "5", "-o", tmp_path / "out.y4m")
    err = result.stderr.decode().strip()
    assert result.returncode == 2 and "a frame stream has none" in err and not (tmp_path / "out.y4m").exists(), err


def test_a_quoted_pattern_of_videos_upscales_every_video_it_finds(tmp_path, cli):
    """``sr-filter "clips/*.mp4" -o out/`` had been taken for one video: the first file the pattern
    found was upscaled, the others passed over without a word (exit 0). A pattern is a batch,
    named as the shell's expansion of it would be, whatever it finds."""
    (tmp_path / "clips").mkdir()
    make_clip(tmp_path / "clips" / "a.mp4", frames=2, audio=0)
    make_clip(tmp_path / "clips" / "b.mp4", frames=2, audio=0)
    result = cli(f"{tmp_path / 'clips'}/*.mp4", "-m", MODEL, "-t", "32", "-o", f"{tmp_path / 'out'}/")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]
    assert "2 upscaled, 0 skipped, 0 failed" in result.stderr.decode()


def test_cli_denoise_reaches_the_video_path(tmp_path, cli):
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=0)
    result = cli(clip, "-m", MODEL, "--denoise", "0.5", "-o", tmp_path / "out.mp4")
    err = result.stderr.decode().strip()
    assert result.returncode == 1 and len(err.splitlines()) == 1 and "--denoise" in err, err
    assert not (tmp_path / "out.mp4").exists()


def test_openvino_backend_takes_several_frames_per_pass():
    pytest.importorskip("openvino")
    up = Upscaler(MODEL, device="cpu", tile=32, backend="openvino")
    assert up.backend.name == "openvino"
    up.backend = PassRecorder(up.backend)
    frames = [pattern(i, 40, 28) for i in range(3)]
    batched = up.upscale_batch(frames)
    assert {shape[0] for shape in up.backend.shapes} == {3}  # the converted model's batch is dynamic
    for frame, out in zip(frames, batched):
        assert np.abs(out.astype(int) - up.upscale_array(frame)).max() <= 1


def test_y4m_stream_goes_through_in_groups_with_the_same_bytes(tmp_path, monkeypatch):
    import io

    from sr_filter.video import batches, stream

    from .videos import make_y4m

    data = make_y4m(tmp_path / "in.y4m", frames=3, pix_fmt="yuv444p").read_bytes()
    up = _recorded(0)
    grouped, single = io.BytesIO(), io.BytesIO()
    assert stream.upscale_y4m(io.BytesIO(data), grouped, up) == 3
    assert [shape[0] for shape in up.backend.shapes] == [2, 1]  # FRAME_BATCH frames, then the rest
    monkeypatch.setattr(batches, "FRAME_BATCH", 1)
    assert stream.upscale_y4m(io.BytesIO(data), single, up) == 3
    assert grouped.getvalue() == single.getvalue()

"""Animated GIF, WebP and APNG: every frame upscaled, timing, loop count and disposal kept."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sr_filter import animation
from sr_filter.errors import CancelledError, OutputExistsError, VideoFormatError
from sr_filter.upscaler import Upscaler

from .conftest import ROOT
from .videos import pattern

DURATIONS = [40, 80, 120, 160, 200]


@pytest.fixture(scope="module")
def upscaler():
    return Upscaler("sr-cartoon-x4", device="cpu", tile=32)


def frames(count: int = 5) -> list[Image.Image]:
    """Moving pictures whose left quarter is transparent."""
    out = []
    for i in range(count):
        alpha = np.full((24, 32), 255, np.uint8)
        alpha[:, :8] = 0
        out.append(Image.fromarray(np.dstack([pattern(i, 32, 24), alpha]), "RGBA"))
    return out


def save(path, **options):
    images = frames()
    images[0].save(path, save_all=True, append_images=images[1:], duration=DURATIONS, **options)
    return path


@pytest.mark.parametrize("name, options, disposal", [
    ("a.gif", {"loop": 3, "disposal": 2}, [2] * 5),
    ("a.webp", {"loop": 2, "lossless": True}, [0] * 5),
    ("a.png", {"loop": 1, "disposal": 1, "blend": 0}, [0] * 5),  # APNG frames are written whole, each kept
    ("a.avif", {"quality": 100}, [0] * 5),  # an AVIF sequence: no play count (forever) and no disposal
])
def test_all_frames_timing_loop_and_disposal_kept(tmp_path, upscaler, name, options, disposal):
    source = save(tmp_path / name, **options)
    assert animation.is_animated(source)
    animation.upscale_animation(source, tmp_path / f"x4_{name}", upscaler)
    before, after = animation.read_animation(source), animation.read_animation(tmp_path / f"x4_{name}")
    assert len(after.frames) == 5 and after.frames[0].shape == (96, 128, 4)
    assert after.durations == DURATIONS
    assert after.loop == options.get("loop", 0)
    assert after.disposal == disposal
    expected = [upscaler.upscale_array(f)[:, 40:, :3].astype(float) for f in before.frames]
    for i, frame in enumerate(after.frames):  # each frame is its own source frame, upscaled
        assert (frame[:, :32, 3] < 128).mean() > 0.95 and (frame[:, 40:, 3] >= 250).all()
        errors = [np.abs(frame[:, 40:, :3] - e).mean() for e in expected]
        assert int(np.argmin(errors)) == i and errors[i] < 6


def test_gif_without_loop_block_plays_once_and_gets_per_frame_palettes(tmp_path, upscaler):
    source = save(tmp_path / "once.gif")
    animation.upscale_animation(source, tmp_path / "out.gif", upscaler)
    assert animation.read_animation(tmp_path / "out.gif").loop is None
    palettes = local_colour_tables((tmp_path / "out.gif").read_bytes())
    assert len(palettes) == 5 and len(set(palettes)) == 5  # re-quantised per frame, not one shared palette


def local_colour_tables(data: bytes) -> list[bytes]:
    """The local colour table of every frame of a GIF file (b"" for a frame without one)."""
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    tables = []
    while data[pos] != 0x3B:
        if data[pos] == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:  # image descriptor: 9 bytes, local table, LZW code size, sub-blocks
            packed = data[pos + 9]
            size = 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0
            tables.append(data[pos + 10 : pos + 10 + size])
            pos += 10 + size + 1
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    return tables


def test_cli_routes_an_animated_gif_and_keeps_a_still_one_on_the_image_path(tmp_path):
    source = save(tmp_path / "anim.gif", loop=0)
    frames()[0].save(tmp_path / "still.gif")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in ("anim.gif", "still.gif"):
        result = subprocess.run([sys.executable, "-m", "sr_filter", tmp_path / name, "-m", "sr-cartoon-x4", "-t", "32", "-q"],
                                capture_output=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr.decode()
    assert len(animation.read_animation(tmp_path / "anim_x4.gif").frames) == 5
    with Image.open(tmp_path / "still_x4.gif") as still:
        assert still.size == (128, 96) and not getattr(still, "is_animated", False)
    assert source.exists()


def test_broken_animation_is_one_line(tmp_path):
    data = save(tmp_path / "a.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoFormatError) as info:
        animation.read_animation(tmp_path / "cut.gif")
    assert "cut.gif" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("keep", [0.7, 0.4])
def test_a_truncated_animated_gif_is_one_line_and_a_batch_goes_on(tmp_path, keep):
    """Pillow's GIF reader raises IndexError on these: a traceback that ended the whole batch."""
    from click.testing import CliRunner

    from sr_filter.cli import cli

    data = small(tmp_path / "whole.gif", loop=0).read_bytes()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.gif").write_bytes(data[: int(len(data) * keep)])
    Image.fromarray(pattern(0, 16, 16)).save(folder / "z.png")
    model = ["-m", "sr-cartoon-x4", "-t", "32", "-d", "cpu"]
    alone = CliRunner().invoke(cli, [str(folder / "bad.gif"), "-o", str(tmp_path / "out.gif"), *model])
    assert isinstance(alone.exception, VideoFormatError), alone.exception  # the CLI's main() prints it as one line
    assert str(alone.exception).endswith("bad.gif is truncated or damaged (index out of range)")
    assert not (tmp_path / "out.gif").exists()
    result = CliRunner().invoke(cli, [str(folder), "-o", str(tmp_path / "out"), *model])
    assert result.exit_code == 1 and "1 upscaled, 0 skipped, 1 failed" in result.stderr, result.stderr
    assert (tmp_path / "out" / "z.png").is_file()


SMALL_DURATIONS = [50, 100, 150]


def small(path, **options):
    """A 3-frame 16x16 animation (every frame differs), saved by Pillow."""
    images = [Image.fromarray(pattern(i, 16, 16)) for i in range(3)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=SMALL_DURATIONS, **options)
    return path


def batch(args):
    from click.testing import CliRunner

    from sr_filter.cli import cli

    result = CliRunner().invoke(cli, [*map(str, args), "-m", "sr-cartoon-x4", "-t", "32", "-d", "cpu"])
    assert result.exit_code == 0, result.output
    return result.stderr


def test_a_lossless_animated_webp_stays_lossless(tmp_path, upscaler):
    """Every frame's pictures had been re-encoded lossy at quality 90."""
    source = small(tmp_path / "a.webp", loop=0, lossless=True)
    animation.upscale_animation(source, tmp_path / "b.webp", upscaler)
    data = (tmp_path / "b.webp").read_bytes()
    assert b"VP8L" in data and b"VP8 " not in data
    animation.upscale_animation(source, tmp_path / "c.webp", upscaler, quality=80)
    assert b"VP8 " in (tmp_path / "c.webp").read_bytes()
    small(tmp_path / "d.webp", loop=0, quality=80)
    animation.upscale_animation(tmp_path / "d.webp", tmp_path / "e.webp", upscaler)
    assert b"VP8L" not in (tmp_path / "e.webp").read_bytes()


def test_folder_batch_keeps_every_frame_of_its_animations(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    small(folder / "a.gif", loop=2, disposal=2)
    small(folder / "b.webp", loop=0, lossless=True)
    small(folder / "c.png", loop=1)
    Image.fromarray(pattern(0, 16, 16)).save(folder / "still.png")
    pages = [Image.fromarray(pattern(i, 16, 16)) for i in range(2)]
    pages[0].save(folder / "pages.tif", save_all=True, append_images=pages[1:])
    err = batch([folder, "-o", tmp_path / "out"])
    out = tmp_path / "out"
    for name, loop in (("a.gif", 2), ("b.webp", 0), ("c.png", 1)):
        written = animation.read_animation(out / name)
        assert len(written.frames) == 3 and written.frames[0].shape == (64, 64, 4), name
        assert written.durations == SMALL_DURATIONS and written.loop == loop, name
    assert animation.read_animation(out / "a.gif").disposal == [2, 2, 2]
    with Image.open(out / "still.png") as still, Image.open(out / "pages.tif") as tiff:
        assert still.size == (64, 64) and tiff.size == (64, 64) and getattr(tiff, "n_frames", 1) == 1
    notices = [line for line in err.splitlines() if "only the first" in line]
    assert len(notices) == 1 and "pages.tif has 2 pages; only the first page is upscaled" in notices[0], err


def test_folder_batch_to_a_format_without_animation_writes_the_first_frame_and_says_so(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    small(folder / "a.gif", loop=0)
    Image.fromarray(pattern(0, 16, 16)).save(folder / "still.png")
    err = batch([folder, "-o", tmp_path / "out", "--format", "jpg"])
    notices = [line for line in err.splitlines() if "a.gif" in line and "only the first" in line]
    assert len(notices) == 1 and "GIF, WebP, PNG or AVIF, the formats that hold animation" in notices[0], err
    with Image.open(tmp_path / "out" / "a.jpg") as out:
        assert out.size == (64, 64) and getattr(out, "n_frames", 1) == 1


def test_one_animation_asked_for_as_a_still_format_writes_its_first_frame_like_a_batch(tmp_path):
    source = small(tmp_path / "a.gif", loop=0)
    for args, name in ((["-o", tmp_path / "still.jpg"], "still.jpg"), (["--format", "tiff", "-o", tmp_path / "s.tif"], "s.tif")):
        err = batch([source, *args])
        assert "a.gif has 3 frames; only the first is upscaled" in err, err
        with Image.open(tmp_path / name) as out:
            assert out.size == (64, 64) and getattr(out, "n_frames", 1) == 1
    batch([source, "-o", tmp_path / "moving.webp"])  # a format that holds animation keeps every frame
    assert len(animation.read_animation(tmp_path / "moving.webp").frames) == 3


def test_a_size_picks_the_scale_and_an_existing_output_is_refused_before_the_work(tmp_path, upscaler):
    source = small(tmp_path / "a.gif", loop=0)
    steps = []
    written = animation.upscale_animation(source, tmp_path / "w.webp", upscaler, size=(40, None),
                                          progress=lambda done, total: steps.append((done, total)))
    assert [f.shape for f in written.frames] == [(40, 40, 4)] * 3 and steps == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(CancelledError):
        animation.upscale_animation(source, tmp_path / "stopped.gif", upscaler, progress=lambda done, total: done < 2)
    assert not (tmp_path / "stopped.gif").exists()
    calls = []
    with pytest.raises(OutputExistsError):
        animation.upscale_animation(source, tmp_path / "w.webp", upscaler, before_work=lambda: calls.append(1))
    assert calls == []


def test_api_upscale_animation_and_a_notice_for_an_animated_pil_image(tmp_path, caplog):
    import sr_filter

    source = small(tmp_path / "a.png", loop=0)
    written = sr_filter.upscale_animation(source, tmp_path / "x4.png", model="sr-cartoon-x4", device="cpu", tile=32)
    back = animation.read_animation(tmp_path / "x4.png")
    assert len(written.frames) == len(back.frames) == 3 and back.durations == SMALL_DURATIONS
    with Image.open(source) as image:
        big = sr_filter.upscale(image, model="sr-cartoon-x4", device="cpu", tile=32)
    assert big.size == (64, 64)
    assert any("3 frames" in r.getMessage() and "upscale_animation" in r.getMessage() for r in caplog.records)


def test_an_animated_gif_or_apng_written_as_a_video_keeps_frames_and_timing(tmp_path):
    from click.testing import CliRunner

    from sr_filter.cli import cli

    from .videos import describe

    for name in ("a.gif", "a.png"):
        batch([small(tmp_path / name, loop=0), "-o", tmp_path / f"{name}.mp4"])
        info = describe(tmp_path / f"{name}.mp4")
        assert info["size"] == (64, 64) and info["times"] == [0.0, 0.05, 0.15], (name, info)
    result = CliRunner().invoke(cli, [str(small(tmp_path / "a.webp", loop=0)), "-o", str(tmp_path / "w.mp4"), "-m", "sr-cartoon-x4"])
    assert isinstance(result.exception, VideoFormatError)  # main() prints it as one line, exit 1
    assert "animated WebP can be written as .gif, .webp, .png or .avif" in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "w.mp4").exists()
    # FFmpeg gives an AVIF sequence's still picture as its first stream: one frame had been written, the frames dropped
    result = CliRunner().invoke(cli, [str(small(tmp_path / "a.avif")), "-o", str(tmp_path / "v.mp4"), "-m", "sr-cartoon-x4"])
    assert isinstance(result.exception, VideoFormatError)
    assert "animated AVIF can be written as .gif, .webp, .png or .avif, not as a video" in str(result.exception)
    assert not (tmp_path / "v.mp4").exists()


class Nearest:
    """A stand-in upscaler: every pixel repeated 4x4, so an output can be compared exactly."""

    scale = 4

    def check_scale(self, scale):
        return float(scale or 4)

    def upscale_array(self, array, scale=None):
        return array.repeat(4, 0).repeat(4, 1)


def moving_box(path, **options):
    """Four 16x12 frames: an opaque box moving right over a transparent canvas, changing colour."""
    images = []
    for i in range(4):
        rgba = np.zeros((12, 16, 4), np.uint8)
        rgba[2:10, 1 + 3 * i : 7 + 3 * i] = (250, 60 * i, 20, 255)
        images.append(Image.fromarray(rgba, "RGBA"))
    images[0].save(path, save_all=True, append_images=images[1:], duration=[60, 70, 80, 90], loop=0, **options)
    return path


@pytest.mark.parametrize("name, options", [
    ("none.png", {"disposal": 0, "blend": 0}),
    ("background.png", {"disposal": 1, "blend": 0}),
    ("previous.png", {"disposal": 2, "blend": 0}),
    ("over.png", {"disposal": 0, "blend": 1}),
    ("a.webp", {"lossless": True}),
    ("background.gif", {"disposal": 2}),
    ("previous.gif", {"disposal": 3}),
])
@pytest.mark.parametrize("target", ["GIF", "PNG", "WEBP", "AVIF"])
def test_transparent_frames_show_exactly_their_own_pixels_in_every_output_format(tmp_path, name, options, target):
    source = moving_box(tmp_path / name, **options)
    data = animation.upscale_to_bytes(source, Nearest(), target)[1]
    expected = [Nearest().upscale_array(frame) for frame in animation.read_animation(source).frames]
    written = animation.read_animation(data)
    assert len(written.frames) == len(expected) and written.durations == [60, 70, 80, 90]
    for i, (frame, want) in enumerate(zip(written.frames, expected)):
        shown = frame[..., 3] >= 128
        assert np.array_equal(shown, want[..., 3] >= 128), (name, target, i)  # no trail of an earlier frame
        assert np.abs(frame[shown, :3].astype(int) - want[shown, :3]).mean() < 8, (name, target, i)


def test_disposal_numbers_are_translated_between_gif_and_apng(tmp_path):
    # GIF: 1 keep, 2 restore to background, 3 restore to previous; APNG: 0 none, 1 background, 2 previous.
    # Into APNG the complete frames are each kept (0): see test_an_apng_from_a_gif_with_every_disposal_shows_each_frame
    opaque = [np.dstack([pattern(i, 8, 8), np.full((8, 8), 255, np.uint8)]) for i in range(3)]
    for disposal, fmt, other, expected in (([1, 2, 3], "GIF", "PNG", [0, 0, 0]), ([0, 1, 2], "PNG", "GIF", [1, 2, 3])):
        moving = animation.Animation(list(opaque), [50] * 3, 0, disposal, format=fmt)
        assert animation.read_animation(animation.encode_animation(moving, other)).disposal == expected, (fmt, other)


def test_an_animation_whose_frames_are_all_the_same_is_written_as_gif():
    """A GIF whose second frame repeats the first (a pause, as GIF makers write one) written as GIF:
    Pillow merges the frames into a still and then took the per-frame disposal list for one frame,
    a TypeError ("this is a bug in sr-filter") after the whole upscale. Frames that differ only under
    full transparency, which a GIF stores alike, the same."""
    still = np.dstack([pattern(0, 8, 8), np.full((8, 8), 255, np.uint8)])
    holed = still.copy()
    holed[:2, ..., 3] = 0
    hidden = holed.copy()
    hidden[:2, ..., :3] = 255 - hidden[:2, ..., :3]  # other colours where nothing shows
    for frames in ([still, still.copy()], [holed, hidden, holed.copy()]):
        moving = animation.Animation(frames, [50] * len(frames), 0, [1] * len(frames), format="GIF")
        with Image.open(io.BytesIO(animation.encode_animation(moving, "GIF"))) as out:
            assert out.size == (8, 8) and out.info["duration"] == 50 * len(frames)


def written_loop(data: bytes):
    with Image.open(io.BytesIO(data)) as image:
        return image.info.get("loop")  # GIF: absent = no loop block = plays once


# plays: 0 forever, N times. A GIF's loop block counts repeats after the first play (none: plays
# once); APNG's num_plays and WebP's loop count count plays (as libwebp's gif2webp converts them)
@pytest.mark.parametrize("fmt, loop, plays", [
    ("GIF", None, 1), ("GIF", 0, 0), ("GIF", 1, 2), ("GIF", 3, 4),
    ("PNG", 0, 0), ("PNG", 1, 1), ("PNG", 3, 3), ("WEBP", 0, 0), ("WEBP", 1, 1), ("WEBP", 3, 3),
])
def test_the_number_of_plays_is_kept_in_every_output_format(fmt, loop, plays):
    opaque = [np.dstack([pattern(i, 8, 8), np.full((8, 8), 255, np.uint8)]) for i in range(3)]
    moving = animation.Animation(opaque, [50] * 3, loop, format=fmt)
    expected = {"GIF": {0: 0, 1: None}.get(plays, plays - 1), "PNG": plays, "WEBP": plays}
    for target, want in expected.items():
        data = animation.encode_animation(moving, target)
        assert written_loop(data) == want, (fmt, loop, target)
        assert animation.read_animation(data).loop == want, (fmt, loop, target)


def test_a_frame_range_keeps_those_frames_with_their_durations(tmp_path):
    source = save(tmp_path / "a.gif", loop=0)
    steps = []
    for frames, kept in (("1:3", [1, 2]), ((3, None), [3, 4]), ("0:99", [0, 1, 2, 3, 4])):
        written = animation.upscale_animation(source, tmp_path / "out.gif", Nearest(), frames=frames, overwrite=True,
                                              progress=lambda done, total: steps.append((done, total)))
        back = animation.read_animation(tmp_path / "out.gif")
        assert back.durations == written.durations == [DURATIONS[i] for i in kept], frames
        expected = animation.read_animation(source).frames
        for frame, i in zip(back.frames, kept):
            opaque = frame[..., 3] >= 128
            assert np.abs(frame[opaque, :3].astype(int) - Nearest().upscale_array(expected[i])[opaque, :3]).mean() < 8
    assert steps[:2] == [(1, 2), (2, 2)]
    for frames in ("5:7", "x:2", "3:1"):
        with pytest.raises(VideoFormatError) as info:
            animation.upscale_animation(source, tmp_path / "none.gif", Nearest(), frames=frames)
        assert "\n" not in str(info.value) and not (tmp_path / "none.gif").exists()
    assert "a.gif has 5 frames" in str(pytest.raises(VideoFormatError, animation.upscale_animation, source,
                                                     tmp_path / "none.gif", Nearest(), frames="5:7").value)


def test_a_frame_range_past_the_last_frame_is_said(tmp_path, caplog):
    """frames="3:99" on a 5-frame GIF was cut to its end without a word (a video's range says it)."""
    source = save(tmp_path / "a.gif", loop=0)
    with caplog.at_level("WARNING", logger="sr_filter"):
        written = animation.upscale_animation(source, tmp_path / "out.gif", Nearest(), frames=(3, 99))
        animation.upscale_animation(source, tmp_path / "whole.gif", Nearest(), frames="3:5")
    assert written.durations == DURATIONS[3:]
    said = [r.getMessage() for r in caplog.records]
    assert said == ["the frame range ends at frame 99, but " + str(source) + " has 5 frames: upscaled to its end"], said


def test_one_frame_outputs_and_unreadable_sources_are_named(tmp_path, upscaler):
    """A one-frame GIF (--frames 0:1, or a still image given to upscale_animation) crashed in
    Pillow's GIF writer with a TypeError; a missing file, a folder and a text file were all
    "truncated or damaged"."""
    source = save(tmp_path / "a.gif", loop=0)
    for name, picked in (("one.gif", "0:1"), ("one.png", "2:3"), ("one.webp", "4:9")):
        animation.upscale_animation(source, tmp_path / name, upscaler, frames=picked)
        back = animation.read_animation(tmp_path / name)
        assert len(back.frames) == 1 and back.frames[0].shape == (96, 128, 4), name
    frames()[0].save(tmp_path / "still.png")
    written = animation.upscale_animation(tmp_path / "still.png", tmp_path / "still.gif", upscaler)
    assert Image.open(tmp_path / "still.gif").size == (128, 96)
    assert repr(written).startswith("Animation(1 frame of 128x96 pixels, ")  # not "1 frames"
    result = subprocess.run([sys.executable, "-m", "sr_filter", str(source), "--frames", "1:2", "-o", str(tmp_path / "cli.gif"),
                             "-m", "sr-cartoon-x4", "-d", "cpu", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stderr == "" and Image.open(tmp_path / "cli.gif").size == (128, 96)
    (tmp_path / "notes.txt").write_text("hello")
    for bad, words in (("nope.gif", "does not exist"), (".", "is a folder"), ("notes.txt", "is not a readable image")):
        with pytest.raises(VideoFormatError, match=words):
            animation.upscale_animation(tmp_path / bad, tmp_path / "none.gif", upscaler)


def test_cli_frames_format_and_video_only_options_for_animations(tmp_path):
    """--frames keeps those frames; --format webp writes an animated WebP; --codec, --crf and
    --resume, which only videos take, are refused in one line instead of being ignored."""
    save(tmp_path / "a.gif", loop=0)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "sr_filter", tmp_path / "a.gif", "-m", "sr-cartoon-x4", "-t", "32", "-q", *args],
                              capture_output=True, env=env, timeout=120)

    assert cli("-o", tmp_path / "two.gif", "--frames", "1:3").returncode == 0
    two = animation.read_animation(tmp_path / "two.gif")
    assert len(two.frames) == 2 and two.durations == DURATIONS[1:3]
    assert cli("--format", "webp").returncode == 0
    with Image.open(tmp_path / "a_x4.webp") as webp:
        assert webp.format == "WEBP" and webp.n_frames == 5
    assert cli("--format", "avif").returncode == 0  # it had been written into a_x4.gif
    with Image.open(tmp_path / "a_x4.avif") as avif:
        assert avif.format == "AVIF" and avif.n_frames == 5
    assert not (tmp_path / "a_x4.gif").exists()
    assert cli("-o", f"{tmp_path}/new/folder/").returncode == 0  # a folder that does not exist yet
    assert len(animation.read_animation(tmp_path / "new" / "folder" / "a_x4.gif").frames) == 5
    assert cli("-o", tmp_path / "made" / "named.gif").returncode == 0  # a file in a missing folder: made, as for images
    assert len(animation.read_animation(tmp_path / "made" / "named.gif").frames) == 5
    animation.upscale_animation(tmp_path / "a.gif", tmp_path / "api" / "b.gif", "sr-cartoon-x4")  # the API too
    assert len(animation.read_animation(tmp_path / "api" / "b.gif").frames) == 5
    into_file = cli("-o", tmp_path / "a.gif" / "c.gif")
    assert into_file.returncode == 1 and into_file.stderr.decode().endswith("a.gif is a file, not a folder; choose another output path\n")
    for args in (["--codec", "hevc"], ["--crf", "20"], ["--resume"]):
        refused = cli("-o", tmp_path / "no.gif", *args)
        err = refused.stderr.decode()
        assert refused.returncode == 2 and err.count("\n") == 1 and f"{args[0]} applies to videos" in err, err
    assert not (tmp_path / "no.gif").exists()
    for args, fmt in (([], "GIF"), (["--format", "webp"], "WEBP"), (["--frames", "1:3"], "GIF")):  # -o -: every frame
        piped = cli("-o", "-", *args)  # it was refused as "a video cannot be written to standard output"
        assert piped.returncode == 0, piped.stderr.decode()
        with Image.open(io.BytesIO(piped.stdout)) as out:
            assert out.format == fmt and out.n_frames == (2 if args[:1] == ["--frames"] else 5)


def test_an_animation_keeps_its_profile_exif_dpi_and_text_as_a_still_image_does(tmp_path, upscaler):
    """Animated WebP and APNG came out without their ICC profile (colours shift on wide-gamut
    sources), EXIF, DPI and text chunks."""
    from PIL import PngImagePlugin

    from sr_filter.metadata import srgb_profile

    icc = srgb_profile()
    exif = Image.Exif()
    exif[0x010F] = "AnimMaker"
    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "two frames")
    small(tmp_path / "a.webp", loop=0, lossless=True, icc_profile=icc, exif=exif.tobytes())
    small(tmp_path / "a.png", loop=0, icc_profile=icc, dpi=(150, 150), pnginfo=text)
    for source, target in (("a.webp", "o.webp"), ("a.png", "o.png"), ("a.png", "x.webp"), ("a.webp", "x.png")):
        animation.upscale_animation(tmp_path / source, tmp_path / target, upscaler)
        with Image.open(tmp_path / target) as out:
            assert getattr(out, "n_frames", 1) == 3 and out.info.get("icc_profile") == icc, (source, target)
            if source == "a.webp":
                assert out.getexif().get(0x010F) == "AnimMaker", (source, target)
            if (source, target) == ("a.png", "o.png"):
                assert out.info["dpi"] == pytest.approx((600, 600), abs=0.5) and out.text["Title"] == "two frames"


def test_an_animation_s_xmp_states_the_upscaled_size_as_a_still_s_does(tmp_path, upscaler):
    """Animated WebP, AVIF and APNG kept their XMP with the input's pixel sizes (exif:PixelXDimension,
    tiff:ImageWidth ...), which then disagreed with the picture and its EXIF; a still's are updated."""
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
           b'exif:PixelXDimension="16" exif:PixelYDimension="16" tiff:ImageWidth="16" tiff:ImageLength="16"/>'
           b'</rdf:RDF></x:xmpmeta>')
    small(tmp_path / "a.webp", loop=0, lossless=True, xmp=xmp)
    small(tmp_path / "a.avif", quality=90, xmp=xmp)
    for source, target in (("a.webp", "o.webp"), ("a.avif", "o.avif"), ("a.webp", "o.png")):
        animation.upscale_animation(tmp_path / source, tmp_path / target, upscaler)
        with Image.open(tmp_path / target) as out:
            out.load()
            written = out.info.get("xmp") or out.info.get("XML:com.adobe.xmp")
            written = written.encode() if isinstance(written, str) else written
            assert getattr(out, "n_frames", 1) == 3 and out.size == (64, 64), target
            for field in (b'exif:PixelXDimension="64"', b'exif:PixelYDimension="64"', b'tiff:ImageWidth="64"',
                          b'tiff:ImageLength="64"'):
                assert field in written, (target, field)


def test_an_apng_keeps_its_pixel_aspect_ratio_as_a_still_png_does(tmp_path, upscaler, caplog):
    """A pHYs with no unit (non-square pixels) was dropped from APNG and WebP output without a word."""
    import struct
    import zlib

    small(tmp_path / "plain.png", loop=0)
    data = (tmp_path / "plain.png").read_bytes()
    body = struct.pack(">IIB", 1, 2, 0)
    phys = struct.pack(">I", len(body)) + b"pHYs" + body + struct.pack(">I", zlib.crc32(b"pHYs" + body))
    (tmp_path / "a.png").write_bytes(data[:33] + phys + data[33:])
    animation.upscale_animation(tmp_path / "a.png", tmp_path / "o.png", upscaler)
    with Image.open(tmp_path / "o.png") as out:
        assert getattr(out, "n_frames", 1) == 3 and out.info.get("aspect") == (1, 2)
    with caplog.at_level("WARNING"):
        animation.upscale_animation(tmp_path / "a.png", tmp_path / "o.webp", upscaler)
    assert "WebP cannot hold the pixel aspect ratio (2:1, width to height)" in caplog.text


def test_an_apng_keeps_its_gamma_and_chromaticity_as_a_still_png_does(tmp_path, upscaler):
    """gAMA and cHRM were dropped from an APNG written as an APNG, without a word (a still PNG
    keeps them): a linear-gamma animation was then shown with sRGB's tones. sRGB is kept too, but
    not beside an ICC profile, as for a still."""
    import struct

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", struct.pack(">I", 100000))
    info.add(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
    frames = [Image.fromarray(pattern(i, 12, 8)) for i in range(2)]
    frames[0].save(tmp_path / "g.png", save_all=True, append_images=frames[1:], duration=100, pnginfo=info)
    animation.upscale_animation(tmp_path / "g.png", tmp_path / "o.png", upscaler)
    with Image.open(tmp_path / "o.png") as out:
        assert getattr(out, "n_frames", 1) == 2
        assert out.info.get("gamma") == 1.0 and out.info.get("chromaticity") == (0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)
    srgb = PngImagePlugin.PngInfo()
    srgb.add(b"sRGB", b"\x00")
    frames[0].save(tmp_path / "s.png", save_all=True, append_images=frames[1:], duration=100, pnginfo=srgb)
    animation.upscale_animation(tmp_path / "s.png", tmp_path / "os.png", upscaler)
    with Image.open(tmp_path / "os.png") as out:
        assert out.info.get("srgb") == 0


@pytest.mark.parametrize("layout", ["rgb", "grey", "grey+alpha"])
def test_a_16_bit_apng_stays_16_bit_as_a_still_png_does(tmp_path, upscaler, caplog, layout):
    """A 16-bit APNG came out 8-bit without a word (a still PNG keeps 16 bits): Pillow reads its
    frames at 8 bits and cannot write 16. libpng reads and writes them now, each frame the still
    picture's upscale, with the timing, plays and metadata an 8-bit APNG keeps; a format that holds
    8 bits says so."""
    import struct

    import imagecodecs

    rng = np.random.default_rng(16)
    channels = {"rgb": 3, "grey": 1, "grey+alpha": 2}[layout]
    stack = rng.integers(0, 65536, (3, 8, 12, channels), dtype=np.uint16)
    data = imagecodecs.apng_encode(stack[..., 0] if channels == 1 else stack, delay=100)
    body = struct.pack(">I", 100000)  # a gAMA chunk after the header, kept as a still's is
    gama = struct.pack(">I", 4) + b"gAMA" + body + struct.pack(">I", __import__("zlib").crc32(b"gAMA" + body))
    (tmp_path / "a16.png").write_bytes(data[:33] + gama + data[33:])
    with caplog.at_level("WARNING"):
        animation.upscale_animation(tmp_path / "a16.png", tmp_path / "o.png", upscaler)
    assert "8 bits" not in caplog.text, caplog.text
    out = imagecodecs.apng_decode((tmp_path / "o.png").read_bytes())
    assert out.dtype == np.uint16 and len(out) == 3
    for frame, written in zip(stack, out):
        rgba = np.concatenate([np.repeat(frame[..., :1], 3, -1) if channels < 3 else frame,
                               frame[..., 1:] if channels == 2 else np.full((8, 12, 1), 65535, np.uint16)], axis=-1)
        expected = upscaler.upscale_array(rgba)
        assert np.array_equal(written, expected if channels == 2 else expected[..., :3])
    with Image.open(tmp_path / "o.png") as read:
        assert read.info.get("gamma") == 1.0 and read.info.get("loop") == 0 and read.n_frames == 3
        assert [read.seek(i) or read.info.get("duration") for i in range(3)] == [100, 100, 100]
    caplog.clear()
    with caplog.at_level("WARNING"):
        animation.upscale_animation(tmp_path / "a16.png", tmp_path / "o.webp", upscaler)
    assert "WebP holds 8 bits per channel: the 16-bit animation is written with 8 (APNG keeps 16)" in caplog.text


@pytest.mark.parametrize("name", ["a.png", "a.webp", "a.gif"])
def test_an_opaque_animation_stays_opaque(tmp_path, upscaler, name):
    """An RGB APNG came out RGBA (alpha 255 everywhere), and an opaque GIF declared a transparent
    colour it never used."""
    images = [Image.fromarray(pattern(i, 12, 8)) for i in range(3)]
    images[0].save(tmp_path / name, save_all=True, append_images=images[1:], duration=100, loop=0)
    animation.upscale_animation(tmp_path / name, tmp_path / f"out{name[1:]}", upscaler)
    with Image.open(tmp_path / f"out{name[1:]}") as out:
        assert getattr(out, "n_frames", 1) == 3
        if name.endswith(".gif"):
            assert "transparency" not in out.info
        else:
            assert out.mode == "RGB"


def test_a_wide_gamut_animation_written_as_gif_is_converted_to_srgb_and_said(tmp_path, upscaler, caplog):
    """GIF holds no ICC profile: a still picture's colours were moved to sRGB with a notice, an
    animation's frames were written unconverted, their profile dropped without a word."""
    from .test_imageio import _rgb_profile_with_wide_primaries

    red = [Image.new("RGB", (12, 8), (200, 40, 30)), Image.new("RGB", (12, 8), (30, 120, 200))]
    red[0].save(tmp_path / "wide.png", save_all=True, append_images=red[1:], duration=100,
                icc_profile=_rgb_profile_with_wide_primaries())
    with caplog.at_level("WARNING"):
        animation.upscale_animation(tmp_path / "wide.png", tmp_path / "out.gif", upscaler)
    back = animation.read_animation(tmp_path / "out.gif")
    assert back.frames[0][16, 24, 0] > 210 and back.frames[0][16, 24, 1] < 30  # a more saturated sRGB red
    said = [r.getMessage() for r in caplog.records]
    assert "GIF cannot hold the ICC profile (the colours are converted to sRGB, which it is shown as); left out " \
           "(PNG keeps it)" in said, said


@pytest.mark.parametrize("name", ["d.gif", "d.png", "d.webp"])
def test_a_frame_shown_for_no_time_keeps_its_zero(tmp_path, upscaler, name):
    """0 ms (a frame composed with the next, or as fast as the player goes) had become 100 ms."""
    images = frames(3)
    options = {"lossless": True} if name.endswith("webp") else {}
    images[0].save(tmp_path / name, save_all=True, append_images=images[1:], duration=[50, 0, 20], loop=0, **options)
    assert animation.read_animation(tmp_path / name).durations == [50, 0, 20]
    for target in ("o.gif", "o.png", "o.webp"):
        animation.upscale_animation(tmp_path / name, tmp_path / target, upscaler, overwrite=True)
        assert animation.read_animation(tmp_path / target).durations == [50, 0, 20], (name, target)


def test_an_apng_default_image_outside_the_animation_is_not_played(tmp_path, upscaler):
    """The default image of an APNG may be for viewers without animation only (no fcTL before
    its IDAT): it had been upscaled and played as an extra first frame."""
    images = [Image.new("RGB", (12, 8), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    images[0].save(tmp_path / "d.png", save_all=True, append_images=images[1:], default_image=True, duration=[0, 40, 60])
    with Image.open(tmp_path / "d.png") as source:
        assert source.info.get("default_image") and source.n_frames == 3  # as Pillow counts it
    for target in ("o.png", "o.gif"):
        animation.upscale_animation(tmp_path / "d.png", tmp_path / target, upscaler)
        out = animation.read_animation(tmp_path / target)
        assert len(out.frames) == 2 and out.frames[0][8, 8, 1] > 200 and out.frames[1][8, 8, 2] > 200, target
    animation.upscale_animation(tmp_path / "d.png", tmp_path / "last.png", upscaler, frames="1:2")
    assert animation.read_animation(tmp_path / "last.png").frames[0][8, 8, 2] > 200  # frame 1 is the blue one


def test_an_apngs_text_chunks_are_written_back_as_stored_and_an_edit_is_kept(tmp_path, upscaler):
    """An animated PNG's text had been merged by keyword and stored uncompressed; and once a
    still PNG's chunks were kept as stored, a caller's change to meta.text was ignored."""
    from PIL import PngImagePlugin

    from sr_filter import imageio, png
    from sr_filter.animation import read_animation, upscale_animation

    info = PngImagePlugin.PngInfo()
    info.add_text("Dup", "one")
    info.add_text("Dup", "two")
    info.add_text("Big", "x" * 50_000, zip=True)
    frames = [Image.new("RGBA", (8, 6), (40 * i, 90, 200, 255)) for i in range(3)]
    frames[0].save(tmp_path / "in.png", save_all=True, append_images=frames[1:], duration=100, pnginfo=info)
    assert len(read_animation(tmp_path / "in.png").meta.png_text_chunks) == 3
    upscale_animation(tmp_path / "in.png", tmp_path / "out.png", upscaler)
    assert png.text_chunks((tmp_path / "out.png").read_bytes()) == png.text_chunks((tmp_path / "in.png").read_bytes())
    array, meta = imageio.read_image((tmp_path / "in.png").read_bytes())
    meta.text["Dup"] = "changed"
    written = Image.open(io.BytesIO(imageio.encode_image(array, "PNG", meta)))
    written.load()
    assert written.text["Dup"] == "changed" and len(written.text["Big"]) == 50_000


def test_an_apng_from_a_gif_with_every_disposal_shows_each_frame(tmp_path, upscaler):
    """A GIF disposing to background, then to previous, written as APNG: Pillow stores each frame's
    difference from the frame before, and with the source's disposal kept frame 3 showed a stripe
    of an earlier picture (191 levels off). Complete frames are now each kept (dispose none)."""
    blue = np.zeros((24, 32, 3), np.uint8)
    blue[:] = (0, 0, 255)
    frames = [blue.copy() for _ in range(4)]
    frames[1][4:12, 4:12] = (255, 0, 0)
    frames[2][8:14, 16:26] = (0, 255, 0)
    frames[3][2:22, 2:8] = (255, 255, 0)
    Image.fromarray(frames[0]).save(tmp_path / "in.gif", save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
                                    disposal=[1, 2, 3, 0], duration=100, loop=0)
    animation.upscale_animation(tmp_path / "in.gif", tmp_path / "out.png", upscaler)
    source, written = animation.read_animation(tmp_path / "in.gif"), animation.read_animation(tmp_path / "out.png")
    assert len(written.frames) == 4
    for before, after in zip(source.frames, written.frames):
        shrunk = after.reshape(24, 4, 32, 4, 4).mean(axis=(1, 3))
        assert np.abs(shrunk[..., :3] - before[..., :3]).max() < 20


def test_a_gif_frame_past_its_logical_screen_is_cut_to_it(tmp_path, upscaler):
    """A frame reaching past the GIF's logical screen grew Pillow's canvas: a WebP output failed
    ("internal error ... Invalid frame dimensions"), GIF and PNG ones got a larger canvas with the
    first frames padded. The frames share one canvas, as browsers show them: the screen, grown to
    the first frame where it reaches further (a 1x1 screen had cut 40x32 frames to 1x1)."""
    import struct

    images = [Image.fromarray(np.dstack([pattern(i, 40, 32), np.full((32, 40), 255, np.uint8)]), "RGBA") for i in range(3)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    data = bytearray(buffer.getvalue())
    for screen in ((32, 24), (1, 1)):  # the logical screen is smaller than the frames
        data[6:10] = struct.pack("<HH", *screen)
        (tmp_path / "in.gif").write_bytes(bytes(data))
        for name in ("out.webp", "out.gif", "out.png"):
            animation.upscale_animation(tmp_path / "in.gif", tmp_path / name, upscaler, overwrite=True)
            written = animation.read_animation(tmp_path / name)
            assert len(written.frames) == 3 and {f.shape for f in written.frames} == {(128, 160, 4)}, (screen, name)


def test_a_frame_range_for_a_still_output_of_an_animation_says_why_not(tmp_path):
    """`sr-filter anim.gif --frames 2:3 -o still.jpg` was told "none of these inputs is a video"
    with the "(and to an animation given alone)" of a batch, though the animation was given alone."""
    save(tmp_path / "a.gif", loop=0)
    done = subprocess.run([sys.executable, "-m", "sr_filter", tmp_path / "a.gif", "--frames", "2:3", "-m", "sr-cartoon-x4",
                           "-o", tmp_path / "still.jpg"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 2 and done.stderr.strip().endswith(
        f"--frames applies to videos and to animations written as one (gif, webp, png, avif); {tmp_path / 'still.jpg'} holds one picture"), done.stderr


def test_a_gif_cut_at_a_frame_boundary_is_said(caplog):
    """Cut just after a frame, a GIF reads without an error, a frame or more short: it had passed
    without a word (its trailer byte, 0x3B, is what is missing)."""
    frames = [Image.new("RGB", (12, 10), (40 * i, 0, 0)) for i in range(4)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    whole = buffer.getvalue()
    assert len(animation.read_animation(whole).frames) == 4 and "trailer" not in caplog.text
    animation.read_animation(whole + b"\0\0", "padded.gif")  # zeros after the trailer: not cut
    assert "trailer" not in caplog.text
    animation.read_animation(whole[:-1], "cut.gif")
    assert "cut.gif ends without the GIF trailer: it may be cut short" in caplog.text
    # cut after its first frame it reads as a still picture: said there too
    from sr_filter import imageio

    still = io.BytesIO()
    frames[0].save(still, "GIF")
    imageio.read_image(still.getvalue()[:-1], name="one.gif")
    assert "one.gif ends without the GIF trailer" in caplog.text
    caplog.clear()
    imageio.read_image(still.getvalue(), name="whole.gif")
    assert "trailer" not in caplog.text


def test_an_animation_on_a_terminal_shows_a_bar_of_frames(tmp_path):
    """Upscaling an animated GIF or WebP alone showed no bar at all on a terminal (still pictures
    and videos do): about 10 s of silence for 16 frames. Run under a real pseudo-terminal."""
    import pty
    import select

    frames = [Image.new("RGB", (24, 16), (50 * i, 90, 0)) for i in range(5)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", str(tmp_path / "a.gif"), "-o", str(tmp_path / "b.gif"),
                             "-m", "sr-cartoon-x4"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    shown = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other end closed: the command is done
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        proc.wait(timeout=120)
    assert proc.returncode == 0 and (tmp_path / "b.gif").is_file(), shown
    assert b"5/5" in shown and b"frame" in shown, shown



def test_an_animated_pngs_text_written_as_webp_is_said_lost(upscaler, caplog):
    """A still PNG's text into WebP is said lost; an animated PNG's went without a word."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "someone")
    frames = [Image.fromarray(pattern(i, 12, 8)) for i in range(2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=100, pnginfo=info)
    with caplog.at_level("WARNING"):
        animation.upscale_to_bytes(buffer.getvalue(), upscaler, "WEBP")
    assert "WebP cannot hold the PNG text (Author)" in caplog.text, caplog.text


def test_an_animation_played_a_set_number_of_times_written_as_avif_says_it_plays_on(caplog):
    """Pillow writes no repetition count into an AVIF sequence: a GIF played three times would loop
    forever in a browser without a word."""
    opaque = [np.dstack([pattern(i, 8, 8), np.full((8, 8), 255, np.uint8)]) for i in range(3)]
    with caplog.at_level("WARNING"):
        animation.encode_animation(animation.Animation(list(opaque), [50] * 3, 0, format="GIF"), "AVIF")
    assert "play count" not in caplog.text  # forever, as an AVIF plays
    with caplog.at_level("WARNING"):
        data = animation.encode_animation(animation.Animation(list(opaque), [50] * 3, 2, format="GIF"), "AVIF")
    assert "AVIF, as written here, holds no play count" in caplog.text and "not 3 times" in caplog.text
    assert len(animation.read_animation(data).frames) == 3

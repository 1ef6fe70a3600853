"""Animated GIF, WebP and APNG: every frame upscaled, timing, loop count and disposal kept."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sr_filter import animation
from sr_filter.errors import VideoFormatError
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
    ("a.png", {"loop": 1, "disposal": 1, "blend": 0}, [1] * 5),
])
def test_all_frames_timing_loop_and_disposal_kept(tmp_path, upscaler, name, options, disposal):
    source = save(tmp_path / name, **options)
    assert animation.is_animated(source)
    animation.upscale_animation(source, tmp_path / f"x4_{name}", upscaler)
    before, after = animation.read_animation(source), animation.read_animation(tmp_path / f"x4_{name}")
    assert len(after.frames) == 5 and after.frames[0].shape == (96, 128, 4)
    assert after.durations == DURATIONS
    assert after.loop == options["loop"]
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


def test_folder_batch_names_an_animation_whose_later_frames_it_leaves_out(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    save(folder / "anim.gif", loop=0)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "sr_filter", folder, "-o", tmp_path / "out", "-m", "sr-cartoon-x4", "-t", "32"],
                            capture_output=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    notices = [line for line in result.stderr.decode().splitlines() if "anim.gif" in line and "only the first" in line and "on its own keeps every frame" in line]
    assert len(notices) == 1, result.stderr.decode()
    with Image.open(tmp_path / "out" / "anim.gif") as out:  # the folder path writes the first frame only
        assert out.size == (128, 96) and getattr(out, "n_frames", 1) == 1

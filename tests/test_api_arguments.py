"""The API's file and array calls: every argument that needs no model is checked before a model
loads (a missing input had been said after seconds of converting or downloading one), a leading
``~`` in a path is the home folder, and a wrong format or a number given as the model is said in
the library's own words."""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pytest
from PIL import Image

import sr_filter
import sr_filter.upscaler
from sr_filter import SrFilterError, Upscaler
from sr_filter.errors import ImageFormatError, VideoFormatError


@pytest.fixture
def no_model(monkeypatch):
    """Building an Upscaler fails the test: what is refused here must be refused before a model
    loads, converts or downloads."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(sr_filter.upscaler, "Upscaler", refuse)


def _animation(path):
    frames = [Image.new("RGB", (8, 6), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    return path


def test_file_calls_refuse_bad_arguments_before_the_model_loads(tmp_path, no_model):
    picture = tmp_path / "in.png"
    Image.new("RGB", (8, 6)).save(picture)
    gif = _animation(tmp_path / "a.gif")
    (tmp_path / "notes.png").write_text("hello")
    (tmp_path / "file").write_text("not a folder")
    common = [({"src": tmp_path / "nope.png"}, ImageFormatError, r"nope\.png does not exist"),
              ({"src": tmp_path}, ImageFormatError, "is a folder"),
              ({"src": tmp_path / "notes.png"}, ImageFormatError, "is not a readable image"),
              ({"scale": 100}, SrFilterError, "the scale must be greater than 0 and at most 16, not 100"),
              ({"scale": float("nan")}, SrFilterError, "the scale must be greater than 0 and at most 16"),
              ({"scale": "x4"}, SrFilterError, "the scale must be a number, not 'x4'"),
              ({"progress": 5}, SrFilterError, "progress must be a function"),
              ({"overwrite": "no"}, SrFilterError, "overwrite must be True or False"),
              ({"quality": 500}, SrFilterError, "quality must be a whole number from 1 to 100"),
              ({"dst": "file/o.png"}, ImageFormatError, "is a file, not a folder")]
    only_files = [({"format": "bogus"}, ImageFormatError, "unknown format 'bogus'")]
    only_animations = [({"dst": "o.bmp"}, VideoFormatError, "an animation can be written as"),
                       ({"frames": "x"}, VideoFormatError, "frame range 'x'")]
    calls = {sr_filter.upscale_file: (picture, "o.png", common + only_files),
             sr_filter.upscale_animation: (gif, "o.gif", common + only_animations)}
    for call, (src, dst, cases) in calls.items():
        for given, kind, words in cases:
            arguments = {"src": src, "dst": dst, **given}
            arguments["dst"] = tmp_path / arguments["dst"]
            with pytest.raises(kind, match=words):
                call(model="sr-cartoon-x4", **arguments)
    # nothing written, no folder made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "file", "in.png", "notes.png"]


def test_arrays_and_videos_refuse_bad_arguments_before_the_model_loads(tmp_path, no_model):
    from .videos import make_clip

    image = np.zeros((8, 8, 3), np.uint8)
    for given, words in (({"progress": 5}, "progress must be a function"), ({"progress": lambda: None}, "progress must take two"),
                         ({"scale": 100}, "the scale must be greater than 0 and at most 16")):
        with pytest.raises(SrFilterError, match=words):
            sr_filter.upscale(image, "cartoon", **given)
    with pytest.raises(ImageFormatError, match="expected image pixels, got a file name"):
        sr_filter.upscale("photo.png", progress=5)
    with pytest.raises(ImageFormatError, match=r"expected an HxW or HxWxC"):
        sr_filter.upscale(np.zeros((8, 8, 7), np.uint8))
    clip = make_clip(tmp_path / "c.mkv", frames=2, audio=0)
    with pytest.raises(SrFilterError, match="the scale must be greater than 0 and at most 16, not 100"):
        sr_filter.upscale_video(clip, tmp_path / "o.mkv", model="sr-cartoon-x4", scale=100)


def test_a_leading_tilde_in_a_path_is_the_home_folder(tmp_path, monkeypatch):
    """'~/out.png' had made a folder named '~' in the current folder; an Upscaler's weights path
    expands it, and so do the file calls now."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    Image.new("RGB", (8, 6), (200, 30, 40)).save(home / "in.png")
    _animation(home / "a.gif")
    up = Upscaler("sr-cartoon-x4", tile=0)
    assert sr_filter.upscale_file("~/in.png", "~/out.png", upscaler=up) == home / "out.png"
    assert Image.open(home / "out.png").size == (32, 24)
    from pathlib import Path

    written = sr_filter.upscale_animation(Path("~/a.gif"), "~/deeper/b.gif", upscaler=up)
    assert len(written.frames) == 3 and Image.open(home / "deeper" / "b.gif").size == (32, 24)
    (home / "sub").mkdir()
    with pytest.raises(SrFilterError, match=f"dst {re.escape(str(home))}/sub is a folder"):
        sr_filter.upscale_file("~/in.png", "~/sub", upscaler=up)
    assert list(work.iterdir()) == []  # no '~' folder here


def test_a_format_that_is_no_format_name_is_said_in_the_librarys_words(tmp_path, no_model):
    Image.new("RGB", (8, 6)).save(tmp_path / "in.png")
    for bad in (5, b"png", True, ["png"], "", "."):  # AttributeError and TypeError from inside had leaked
        words = rf"^format must be a format name such as 'png' \(or None\), not {re.escape(repr(bad))}$"
        with pytest.raises(SrFilterError, match=words):
            sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "o.png", model="sr-cartoon-x4", format=bad)
    assert not (tmp_path / "o.png").exists()


def test_colour_hidden_under_full_transparency_warns_of_nothing(caplog):
    """A fully transparent float picture whose colour goes beyond 1 had let numpy's "Mean of empty
    slice" escape; colour hidden under alpha 0 had made the visible 0s and 1s look like 0..255 data."""
    from sr_filter import convert

    up = Upscaler("sr-cartoon-x4", tile=0)
    hidden = np.array([[[1.3, 0.0]]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert convert.beyond_unit(hidden) is not None
        out = up.upscale(hidden, scale=5)
    assert out.shape == (5, 5, 2) and not out[..., 1].any()
    picture = np.zeros((8, 8, 4), np.float32)
    picture[:4] = 1.0, 0.0, 1.0, 1.0  # whole numbers that show, within 0..1
    picture[4:] = 300.0, 300.0, 300.0, 0.0  # and what an eraser left under alpha 0
    with caplog.at_level(logging.INFO, logger="sr_filter"):
        up.upscale(picture)
    assert "beyond 0..1" in caplog.text and "divide by 255" not in caplog.text


def test_a_number_given_as_the_model_points_to_scale():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(SrFilterError, match=r"^the model must be a preset, a model name or a file path, not int; "
                                            r"for a scale, write scale=2$"):
        sr_filter.upscale(image, 2)
    with pytest.raises(SrFilterError, match=r"not float; for a scale, write scale=1\.5$"):
        Upscaler(1.5)
    with pytest.raises(SrFilterError, match=r"not bool$"):
        Upscaler(True)


def test_a_files_contents_given_as_its_path_is_said_in_one_short_line(tmp_path, no_model):
    """upscale_file(open(f, "rb").read(), ...) had quoted every byte of the picture in the message
    (420 kB for a 420 kB PNG); a str path holding a NUL is shown shortened."""
    picture = tmp_path / "in.png"
    Image.new("RGB", (64, 48), (200, 30, 40)).save(picture)
    data = picture.read_bytes()
    calls = [lambda: sr_filter.upscale_file(data, tmp_path / "o.png", model="sr-cartoon-x4"),
             lambda: sr_filter.upscale_file(picture, data, model="sr-cartoon-x4"),
             lambda: sr_filter.upscale_animation(data, tmp_path / "o.gif", model="sr-cartoon-x4"),
             lambda: sr_filter.upscale_video(data, tmp_path / "o.mkv", model="sr-cartoon-x4")]
    for call in calls:
        with pytest.raises(SrFilterError, match=rf"^(src|dst) is {len(data)} bytes of data, not a file name .*io\.BytesIO") as caught:
            call()
        assert len(str(caught.value)) < 200
    with pytest.raises(SrFilterError, match=r"\(2000 characters\) holds a character no file name can") as caught:
        sr_filter.upscale_file("a\0" + "b" * 1998, tmp_path / "o.png", model="sr-cartoon-x4")
    assert len(str(caught.value)) < 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_a_notice_callback_that_cannot_take_the_message_is_refused_before_the_work(tmp_path, no_model):
    """upscale_video(..., notice=lambda: ...) had run, and failed with Python's TypeError from inside
    (on the encoding thread) at the first notice, which may come after all the frames."""
    from .videos import make_clip

    clip = make_clip(tmp_path / "c.mkv", frames=2, audio=0)
    for notice in (lambda: None, lambda text, more: None):
        with pytest.raises(SrFilterError, match=r"^notice must take one argument, the message; '<lambda>' does not$"):
            sr_filter.upscale_video(clip, tmp_path / "o.mp4", model="sr-cartoon-x4", notice=notice)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mkv"]


def test_a_loaded_upscaler_given_as_the_preset_points_to_its_place(tmp_path):
    """upscale(image, up) and upscale_file(src, dst, up) had said only "not Upscaler"."""
    up = Upscaler("sr-cartoon-x4", tile=0)
    Image.new("RGB", (8, 6)).save(tmp_path / "in.png")
    words = r"not Upscaler; a loaded Upscaler is given as upscaler=up \(or used as up\.upscale\(image\)\)$"
    with pytest.raises(SrFilterError, match=words):
        sr_filter.upscale(np.zeros((8, 8, 3), np.uint8), up)
    with pytest.raises(SrFilterError, match=words):
        sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "sub" / "o.png", up)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_upscale_takes_a_ready_upscaler_as_the_file_calls_do():
    """sr_filter.upscale(image, upscaler=up) had been Python's TypeError (an unexpected keyword),
    where upscale_file, upscale_animation and upscale_video take a loaded model so."""
    up = Upscaler("sr-cartoon-x4", tile=0)
    image = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    assert np.array_equal(sr_filter.upscale(image, upscaler=up, scale=2), up.upscale(image, scale=2))
    pil = sr_filter.upscale(Image.fromarray(image), upscaler=up)
    assert pil.size == (32, 24)
    with pytest.raises(SrFilterError, match=r"^give either a ready upscaler or a preset/model, not both$"):
        sr_filter.upscale(image, "cartoon", upscaler=up)
    with pytest.raises(SrFilterError, match=r"^tile is set on the Upscaler"):  # it would not be used
        sr_filter.upscale(image, upscaler=up, tile=64)


def test_an_empty_path_is_said_to_be_empty(tmp_path, monkeypatch, no_model):
    """src="" or dst="" (an unset setting) had been taken as the current folder: ". is a folder, not
    an image", "dst  is a folder; name the output file"."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 6)).save("in.png")
    gif = _animation(tmp_path / "a.gif")
    calls = [(sr_filter.upscale_file, "in.png", "o.png"), (sr_filter.upscale_animation, gif, "o.gif"),
             (sr_filter.upscale_video, "in.mkv", "o.mkv")]
    for call, src, dst in calls:
        for name, given in (("src", {"src": "", "dst": dst}), ("dst", {"src": src, "dst": ""}), ("src", {"src": b"", "dst": dst})):
            with pytest.raises(SrFilterError, match=rf"^{name} is an empty string; name the file$"):
                call(model="sr-cartoon-x4", **given)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "in.png"]

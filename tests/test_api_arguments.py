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

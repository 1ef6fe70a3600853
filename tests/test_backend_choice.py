"""Choosing the inference engine where users choose it: the command line, the GIMP worker's
options and the API. Real subprocesses, a real model, real OpenVINO (skipped where it is absent)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sr_filter.gimp.worker import upscale_options

from .test_cli import run


@pytest.fixture
def tiny_png(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "tiny.png"
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)
    return path


def test_backend_flag_picks_the_engine_and_both_give_the_same_picture(tiny_png, tmp_path):
    pytest.importorskip("openvino")
    outputs = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / f"{backend}.png"
        done = run(tiny_png, "-o", out, "--model", "sr-cartoon-x4", "--backend", backend, "-v")
        assert done.returncode == 0, done.stderr.decode()
        assert f"with {backend}" in done.stderr.decode()  # the run says which engine ran
        outputs[backend] = np.asarray(Image.open(out), dtype=np.int16)
    assert outputs["torch"].shape == (80, 96, 3)
    assert np.abs(outputs["torch"] - outputs["openvino"]).max() <= 1


def test_unknown_backend_is_one_line_and_exit_2(tiny_png, tmp_path):
    done = run(tiny_png, "-o", tmp_path / "x.png", "--backend", "tensorrt")
    err = done.stderr.decode().strip()
    assert done.returncode == 2 and len(err.splitlines()) == 1 and "--backend" in err, err
    assert not (tmp_path / "x.png").exists()


def test_gimp_worker_passes_the_backend_on():
    kwargs, _ = upscale_options({"preset": "cartoon", "device": "cpu", "backend": "torch"})
    assert kwargs["backend"] == "torch"
    assert upscale_options({"preset": "cartoon"})[0]["backend"] == "auto"


def test_tta_flag_averages_views_and_denoise_is_refused_for_models_without_a_twin(tiny_png, tmp_path):
    plain, tta = tmp_path / "plain.png", tmp_path / "tta.png"
    for out, extra in ((plain, []), (tta, ["--tta"])):
        done = run(tiny_png, "-o", out, "--model", "sr-cartoon-x4", "--backend", "torch", "-v", *extra)
        assert done.returncode == 0, done.stderr.decode()
    assert "with torch+tta" in done.stderr.decode()
    a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in (plain, tta))
    assert a.shape == b.shape and 0 < np.abs(a - b).mean() < 20  # the same picture, averaged over 8 views
    refused = run(tiny_png, "-o", tmp_path / "d.png", "--model", "sr-cartoon-x4", "--denoise", "0.5")
    err = refused.stderr.decode().strip()
    assert refused.returncode == 1 and len(err.splitlines()) == 1 and "--denoise" in err, err
    for bad, words in (("2", "2 is not from 0 to 1"), ("nan", "nan is not a number; give one from 0 to 1"),
                       ("abc", "'abc' is not a number; give one from 0 to 1")):  # nan had passed the range check
        out_of_range = run(tiny_png, "-o", tmp_path / "d.png", "--denoise", bad)
        lines = out_of_range.stderr.decode().strip().splitlines()
        assert out_of_range.returncode == 2 and len(lines) == 1 and lines[0].endswith(words), bad


def test_openvino_after_torch_in_one_process():
    """A torch backend made first must not break the next OpenVINO one (the backends package once had a
    submodule named ``torch`` that, once imported, shadowed the torch module inside the package)."""
    pytest.importorskip("openvino")
    from sr_filter import Upscaler

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    first = Upscaler("sr-cartoon-x4", device="cpu", backend="torch").upscale_array(image)
    second = Upscaler("sr-cartoon-x4", device="cpu", backend="openvino")
    assert second.backend.name == "openvino"
    assert np.abs(second.upscale_array(image).astype(int) - first).max() <= 1

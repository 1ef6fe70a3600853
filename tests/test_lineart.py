"""Procedural line art (training/lineart.py), its held-out set and its place in the training mix."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_filter.training import Trainer, load_config
from sr_filter.training.data import PatchSampler
from sr_filter.training.lineart import HELD_OUT, KINDS, dot_screen, line_screen, make_lineart

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_deterministic_any_size_and_inked(kind):
    a = make_lineart((96, 72), 5, kind)
    assert a.shape == (72, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, make_lineart((96, 72), 5, kind))
    assert not np.array_equal(a, make_lineart((96, 72), 6, kind))
    big = make_lineart(256, 11, kind)
    gray = big.mean(axis=2)
    assert (gray < 40).mean() > 0.01, "some ink"
    # anti-aliased edges: values between ink and paper, but most pixels are one or the other (line art)
    mid = ((gray > 60) & (gray < 200)).mean()
    assert 0.001 < mid
    if kind != "flat":
        assert np.array_equal(big[..., 0], big[..., 1]) and np.array_equal(big[..., 1], big[..., 2])
        assert (gray > 245).mean() > 0.2, "paper"
        assert mid < 0.35
    else:
        assert np.ptp(big.astype(int), axis=2).max() > 50, "flat colour fills"


def test_screens_follow_tone_period_and_angle():
    for tone in (0.1, 0.3, 0.6):
        assert dot_screen(400, 400, 8.0, 15.0, tone).mean() == pytest.approx(tone, abs=0.02)
        assert line_screen(400, 400, 6.0, 30.0, tone).mean() == pytest.approx(tone, abs=0.02)
    # a line screen at 0 degrees is constant along y and repeats every period along x
    ls = line_screen(64, 64, 8.0, 0.0, 0.25)
    assert (ls == ls[:1]).all() and np.array_equal(ls[:, :-8], ls[:, 8:])


def test_random_kind_from_a_generator_and_bad_arguments():
    rng = np.random.default_rng(0)
    pics = [make_lineart(48, rng) for _ in range(4)]
    assert len({p.tobytes() for p in pics}) == 4
    with pytest.raises(ValueError, match="known: ink"):
        make_lineart(32, 0, "watercolour")
    with pytest.raises(ValueError, match="positive size"):
        make_lineart((0, 32), 0)


def test_held_out_set_covers_every_kind_and_the_script_writes_it(tmp_path):
    assert sorted({k for _, k, _ in HELD_OUT}) == sorted(KINDS) and len(HELD_OUT) == 12
    assert len({seed for *_, seed in HELD_OUT}) == 12
    out = tmp_path / "held"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_lineart.py"), str(out), "--size", "64"],
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    files = sorted(out.glob("*.png"))
    assert [f.stem for f in files] == sorted(stem for stem, *_ in HELD_OUT)
    from sr_filter.datasets import read_rgb

    stem, kind, seed = HELD_OUT[3]
    assert np.array_equal(read_rgb(out / f"{stem}.png"), make_lineart(64, seed, kind))
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_lineart.py"), str(out), "--size", "0"],
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "size" in bad.stderr


def _v2_config(train_dir: Path, out: Path, **data):
    cfg = load_config(ROOT / "configs" / "cartoon_x4_v2.toml")
    return dataclasses.replace(
        cfg, out_dir=str(out), plot=False, log_every=1, checkpoint_every=1000, checkpoint_seconds=0,
        data=dataclasses.replace(cfg.data, train_dirs=(str(train_dir),), exclude=(), rescale=(1.0,), batch=4,
                                 patch=12, **data),
        optim=dataclasses.replace(cfg.optim, iterations=3, warmup=0),
        val=dataclasses.replace(cfg.val, dirs=()))


def _flat_grey_folder(tmp_path: Path) -> Path:
    """One smooth, unlined training picture, so line-art patches are recognisable in a batch."""
    from PIL import Image

    folder = tmp_path / "train"
    folder.mkdir()
    yy, xx = np.mgrid[0:96, 0:96]
    img = np.stack([100 + yy, 100 + xx, np.full_like(xx, 150)], axis=-1).astype(np.uint8)
    Image.fromarray(img).save(folder / "smooth.png")
    return folder


def test_sampler_mixes_in_degraded_line_art_patches(tmp_path):
    folder = _flat_grey_folder(tmp_path)
    cfg = _v2_config(folder, tmp_path / "runs", lineart=0.5).data
    sampler = PatchSampler(dataclasses.replace(cfg, batch=16), seed=1)
    lr, hr = sampler.batch(0)
    assert lr.shape == (16, 3, 12, 12) and hr.shape == (16, 3, 48, 48)
    ink = (hr.amin(dim=(1, 2, 3)) < 0.2).sum().item()  # the smooth picture has no dark pixel
    assert 3 <= ink <= 13
    again = PatchSampler(dataclasses.replace(cfg, batch=16), seed=1).batch(0)
    assert torch.equal(again[0], lr) and torch.equal(again[1], hr)
    none = PatchSampler(dataclasses.replace(cfg, batch=16, lineart=0.0), seed=1).batch(0)[1]
    assert (none.amin(dim=(1, 2, 3)) >= 0.2).all()
    allart = PatchSampler(dataclasses.replace(cfg, batch=8, lineart=1.0), seed=1).batch(3)[1]
    assert (allart.amin(dim=(1, 2, 3)) < 0.2).sum() >= 6


def test_v2_config_trains_a_few_iterations_from_the_v1_model(tmp_path):
    folder = _flat_grey_folder(tmp_path)
    cfg = _v2_config(folder, tmp_path / "runs")
    assert cfg.data.lineart == 0.5 and cfg.loss.adversarial > 0 and cfg.model.init == "sr-cartoon-x4"
    tr = Trainer(cfg, log=lambda s: None)
    before = [p.detach().clone() for p in tr.model.parameters()]
    path = tr.run(resume=False)
    assert path.is_file() and tr.iteration == 3
    log = [json.loads(line) for line in (tmp_path / "runs" / "cartoon_x4_v2" / "log.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in log] == [1, 2, 3] and all(np.isfinite(e["l1"]) and "adversarial" in e for e in log)
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))

"""The scripts that produce the docs' model tables and pictures run (on tiny settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    """A script run with this checkout's package first on the path (not an installed copy)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_before_after_sheet_shows_input_bicubic_models_and_ground_truth(tmp_path):
    rng = np.random.default_rng(0)
    hr = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize((160, 120), Image.BICUBIC)
    hr.save(tmp_path / "hr.png")
    out = tmp_path / "sheet.png"
    res = _run("scripts/before_after.py", f"{tmp_path / 'hr.png'}:4,3,20,16", "-m", "sr-photo-x4", "--hr",
               "--jpeg", "80", "--out", str(out))
    assert res.returncode == 0, res.stderr
    sheet = Image.open(out)
    # four 80x64 crops (input, bicubic, model, ground truth) with 18 px labels, 4 px apart
    assert sheet.size == (4 * 80 + 3 * 4, 64 + 18)
    gt = np.asarray(sheet)[18:, 3 * 84:3 * 84 + 80]
    np.testing.assert_array_equal(gt, np.asarray(hr)[12:76, 16:96])


def test_edsr_ablation_trains_each_cell_and_writes_the_table(tmp_path):
    data = tmp_path / "data"
    rng = np.random.default_rng(1)
    for sub in ("train/T91", "train/BSD200", "benchmarks/Set5", "benchmarks/Set14"):
        (data / sub).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((64, 64), Image.BICUBIC).save(
            data / sub / "a.png")
    res = _run("scripts/edsr_ablation.py", "--blocks", "1", "--upsamplers", "pixelshuffle", "nearest", "--feat", "4",
               "--iterations", "2", "--patch", "8", "--batch", "2", "--threads", "1", "--data", str(data),
               "--out", str(tmp_path / "runs"))
    assert res.returncode == 0, res.stderr
    rows = json.loads((tmp_path / "runs" / "ablation.json").read_text())
    assert [(r["blocks"], r["upsampler"], r["iterations"]) for r in rows] == [(1, "pixelshuffle", 2), (1, "nearest", 2)]
    assert all(np.isfinite(r["Set5_psnr"]) for r in rows)
    assert "| 1 | nearest |" in (tmp_path / "runs" / "ablation.md").read_text()


def test_grown_network_computes_what_the_trained_one_does(tmp_path):
    """The identity layers keep the output: training continues from the model, with more depth."""
    import torch

    from sr_filter.models import load_file, load_model

    out = tmp_path / "grown.pth"
    res = _run("scripts/grow_srvgg.py", "sr-cartoon-x4", str(out), "--num-conv", "13")
    assert res.returncode == 0, res.stderr
    grown, original = load_file(out), load_model("sr-cartoon-x4")
    assert grown.params["num_conv"] == 13 and original.params["num_conv"] == 10
    x = torch.rand(1, 3, 24, 30)
    with torch.inference_mode():
        assert torch.allclose(grown.network(x), original.network(x), atol=1e-6)
    refused = _run("scripts/grow_srvgg.py", "sr-cartoon-x4", str(tmp_path / "no.pth"), "--num-conv", "8")
    assert refused.returncode == 1 and "cannot grow it to 8" in refused.stderr and not (tmp_path / "no.pth").exists()


def test_video_eval_encodes_pans_and_reports_every_method(tmp_path):
    """docs/video.md's evaluation script, shrunk to one frame per pan."""
    from .conftest import SHARED, require_shared

    require_shared(SHARED / "data" / "train" / "cartoon")
    csv = tmp_path / "frames.csv"
    done = _run("scripts/video_eval.py", "--frames", "1", "--device", "cpu", "--csv", str(csv))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = csv.read_text().splitlines()
    assert len(rows) > 3 and all(name in done.stdout for name in ("bicubic", "realesr-animevideov3", "sr-cartoon-x4"))

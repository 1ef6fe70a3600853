"""Evaluation conventions: MATLAB imresize, Y PSNR/SSIM, and the published bicubic baselines."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image
import pytest
import torch

from sr_filter import datasets, imageops, metrics
from sr_filter import evaluation as ev
from sr_filter.errors import EvaluationError

from .conftest import UPSTREAM, require_shared

BENCH = Path(os.environ.get("SR_FILTER_BENCHMARKS", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "benchmarks"))
if not (BENCH / "Set5").is_dir():
    BENCH = Path("/work/shared/data/benchmarks")
needs_bench = pytest.mark.skipif(not (BENCH / "Set5").is_dir(), reason="benchmark images (shared/data/benchmarks) not present")


def test_imresize_reproduces_linear_ramps_inside():
    # a symmetric, normalised kernel reproduces linear functions away from the mirrored borders
    ramp = np.tile(np.arange(64, dtype=np.float64), (8, 1))
    down = imageops.imresize(ramp, 0.25)
    assert down.shape == (2, 16)
    centres = (np.arange(16) + 0.5) * 4 - 0.5  # output pixel centres in input coordinates
    np.testing.assert_allclose(down[0, 3:-3], centres[3:-3], atol=1e-9)
    up = imageops.imresize(ramp, 2.0)
    np.testing.assert_allclose(up[0, 4:-4], ((np.arange(128) + 0.5) / 2 - 0.5)[4:-4], atol=1e-9)


def test_imresize_weights_are_matlab_cubic_and_antialias_widens_kernel():
    w, idx = imageops._contributions(16, 4, 0.25, antialias=True)
    assert 16 <= w.shape[1] <= 18  # ceil(4 / 0.25) + 2 taps, less the all-zero columns
    np.testing.assert_allclose(w.sum(1), 1.0)
    w2, _ = imageops._contributions(16, 4, 0.25, antialias=False)
    assert w2.shape[1] < w.shape[1]
    # cubic kernel with a = -0.5: k(0)=1, k(1)=0, k(0.5)=0.5625
    assert imageops._cubic(np.array([0.0, 1.0, 0.5, 2.0]))[[0, 1, 3]].tolist() == [1.0, 0.0, 0.0]
    assert imageops._cubic(np.array([0.5]))[0] == pytest.approx(0.5625)
    # mirrored borders: indices stay inside the image
    assert idx.min() >= 0 and idx.max() < 16


def test_imresize_uint8_rounds_and_keeps_constant_images():
    img = np.full((13, 17, 3), 200, np.uint8)
    out = imageops.imresize(img, 0.5)
    assert out.dtype == np.uint8 and out.shape == (7, 9, 3)
    assert (out == 200).all()
    assert imageops.imresize(img, size=(26, 5)).shape == (26, 5, 3)


def test_psnr_ssim_and_y():
    a = np.full((32, 32), 100.0)
    assert metrics.psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40)).astype(np.float64)
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    assert metrics.ssim(img, img + rng.normal(0, 60, img.shape)) < 0.9
    white = np.full((2, 2, 3), 255, np.uint8)
    assert imageops.rgb_to_y(white) == pytest.approx(235.0, abs=1e-3)
    assert imageops.rgb_to_y(np.zeros((2, 2, 3), np.uint8)) == pytest.approx(16.0)
    assert imageops.gray_value(np.full((2, 2, 3), 77, np.uint8)) == pytest.approx(77.0)


def test_modcrop_and_size_mismatch_error():
    assert imageops.modcrop(np.zeros((361, 250, 3)), 4).shape == (360, 248, 3)
    with pytest.raises(EvaluationError):
        metrics.measure(np.zeros((8, 8, 3)), np.zeros((12, 8, 3)), 4)


def test_empty_folder_is_an_actionable_error(tmp_path):
    with pytest.raises(EvaluationError, match="no images"):
        datasets.list_images(tmp_path)
    for name in ("Set5", "Set14", ".cache"):  # a folder of sets given for a set: its sets are named
        (tmp_path / name).mkdir()
    with pytest.raises(EvaluationError, match=r"in .*; it holds folders \(Set14, Set5\): give those, each a set$"):
        datasets.list_images(tmp_path)


def test_network_upscaler_and_report(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    net = torch.nn.Upsample(scale_factor=2, mode="nearest")
    report = ev.evaluate(ev.network_upscaler(net), [tmp_path], 2, "nearest")
    data = json.loads(report.to_json())
    assert data["sets"][0]["dataset"] == tmp_path.name and len(data["sets"][0]["images"]) == 2
    assert 5 < report.sets[0].psnr < 40
    assert "PSNR-Y" in report.table(per_image=True)


@needs_bench
@pytest.mark.parametrize("dataset, published_psnr, published_ssim", [("Set5", 28.42, 0.8104), ("Set14", 26.00, 0.7027)])
def test_bicubic_x4_matches_published_tables(dataset, published_psnr, published_ssim):
    res = ev.evaluate_folder(ev.bicubic_upscaler(4), BENCH / dataset, 4)
    assert abs(res.psnr - published_psnr) <= 0.05
    assert abs(res.ssim - published_ssim) <= 0.003


@needs_bench
def test_eval_cli_table_and_json(tmp_path):
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    out = tmp_path / "r.json"
    res = CliRunner().invoke(eval_cmd, [str(BENCH / "Set5"), "-m", "bicubic", "-s", "4", "--json", str(out), "--per-image"])
    assert res.exit_code == 0, res.output
    assert "Set5/butterfly" in res.output
    data = json.loads(out.read_text())
    assert data[0]["scale"] == 4 and abs(data[0]["sets"][0]["psnr"] - 28.42) <= 0.05


@needs_bench
def test_a_model_is_measured_at_another_scale_as_the_filter_runs_it(tmp_path):
    """`eval -m sr-photo-x4 -s 2` had been refused ("applies to bicubic only"), so the model card's
    x2 figures for the x4 model could not be checked with the tool."""
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd
    from sr_filter.evaluation import evaluate_folder
    from sr_filter.upscaler import Upscaler

    out = tmp_path / "r.json"
    folder = tmp_path / "set"  # 128 px of Set5's first two pictures (the model is 2.2 and 7.3 dB above bicubic there)
    folder.mkdir()
    for name, corner in (("baby", 100), ("bird", 60)):
        Image.open(BENCH / "Set5" / f"{name}.png").crop((corner, corner, corner + 128, corner + 128)).save(folder / f"{name}.png")
    res = CliRunner().invoke(eval_cmd, [str(folder), "-m", "sr-photo-x4", "-m", "bicubic", "-s", "2",
                                        "--limit", "2", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert [r["scale"] for r in rows] == [2, 2] and rows[0]["model"].endswith("resized to x2"), rows
    up = Upscaler("sr-photo-x4")
    direct = evaluate_folder(lambda lr: up.upscale_array(lr, scale=2), folder, 2, limit=2)
    assert rows[0]["sets"][0]["psnr"] == pytest.approx(direct.psnr, abs=1e-4)  # the JSON holds 4 decimals
    assert rows[0]["sets"][0]["psnr"] > rows[1]["sets"][0]["psnr"] + 1  # well above bicubic x2
    res = CliRunner().invoke(eval_cmd, [str(BENCH / "Set5"), "-m", "sr-cartoon-x4", "-s", "16", "--limit", "1"])
    assert res.exit_code == 0 and "run 2 times to x16" in res.output and "resized" not in res.output, res.output


@needs_bench
def test_bicubic_is_measured_at_every_scale_the_models_have(tmp_path):
    """With an x2 and an x4 model, bicubic had been measured at x2 only: the x4 row had no baseline."""
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    out = tmp_path / "r.json"
    x2 = str(require_shared(UPSTREAM / "RealESRGANv2-animevideo-xsx2.pth"))
    folder = _crops(tmp_path / "set", 96)  # one picture that can be measured at x4 (24 px once downscaled)
    res = CliRunner().invoke(eval_cmd, [str(folder), "-m", "bicubic", "-m", x2, "--limit", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert [r["scale"] for r in json.loads(out.read_text())] == [2, 2]
    res = CliRunner().invoke(eval_cmd, [str(folder), "-m", x2, "-m", "sr-cartoon-x4", "-m", "bicubic", "--limit", "1",
                                        "--json", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    rows = [(r["model"].split(" ")[0], r["scale"]) for r in json.loads(out.read_text())]
    assert rows[2:] == [("bicubic", 2), ("bicubic", 4)] and [s for _, s in rows[:2]] == [2, 4]


def _piq_gmsd():
    """piq's GMSD (an independent implementation) without importing piq's package root, which pulls
    in torchvision for its VGG-based metrics (torchvision from the index does not import next to the
    CPU torch used here)."""
    import importlib.util
    import sys
    import types

    if "piq" not in sys.modules:
        spec = importlib.util.find_spec("piq")
        if spec is None:
            pytest.skip("piq (test extra) is not installed")
        pkg = types.ModuleType("piq")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["piq"] = pkg
    from piq.gmsd import gmsd

    return gmsd


@needs_bench
@pytest.mark.parametrize("name", ["butterfly", "baby"])
def test_gmsd_matches_an_independent_implementation(name):
    piq_gmsd = _piq_gmsd()
    hr = datasets.read_rgb(BENCH / "Set5" / f"{name}.png")
    for sr in (imageops.imresize(imageops.imresize(hr, 0.25), 4.0), np.clip(hr.astype(int) + 9, 0, 255).astype(np.uint8)):
        a, b = imageops.rgb_to_y(sr), imageops.rgb_to_y(hr)
        ref = float(piq_gmsd(torch.from_numpy(a)[None, None] / 255.0, torch.from_numpy(b)[None, None] / 255.0,
                             data_range=1.0))
        assert metrics.gmsd(a, b) == pytest.approx(ref, rel=1e-3, abs=1e-5)


def test_gmsd_is_zero_for_the_same_image_and_grows_with_blur():
    rng = np.random.default_rng(0)
    img = imageops.imresize(rng.integers(0, 256, (24, 24, 3)).astype(np.uint8), 4.0)
    y = imageops.rgb_to_y(img)
    assert metrics.gmsd(y, y) == 0.0
    mild = imageops.rgb_to_y(imageops.imresize(imageops.imresize(img, 0.5), 2.0))
    strong = imageops.rgb_to_y(imageops.imresize(imageops.imresize(img, 0.25), 4.0))
    assert 0 < metrics.gmsd(mild, y) < metrics.gmsd(strong, y)
    # odd sizes (the 2x2 mean pads like MATLAB's conv2 'same')
    assert metrics.gmsd(y[:-1, :-3], strong[:-1, :-3]) > 0


def test_include_and_hr_scale_select_and_shrink_the_ground_truth(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for name in ("src_a.png", "src_b.png", "ref_c.png"):
        Image.fromarray(imageops.imresize(rng.integers(0, 256, (16, 16, 3)).astype(np.uint8), 4.0)).save(tmp_path / name)
    assert [p.name for p in datasets.select_images(tmp_path, exclude=["src_*"])] == ["ref_c.png"]
    res = ev.evaluate_folder(ev.bicubic_upscaler(2), tmp_path, 2, include=["src_*"], hr_scale=0.5)
    assert [r.name for r in res.images] == ["src_a", "src_b"]
    hr = imageops.modcrop(imageops.imresize(datasets.read_rgb(tmp_path / "src_a.png"), 0.5), 2)
    assert hr.shape == (32, 32, 3)
    p, s, g = metrics.measure(imageops.imresize(imageops.make_lr(hr, 2), 2.0), hr, 2)
    assert res.images[0].psnr == pytest.approx(p) and res.images[0].gmsd == pytest.approx(g)
    # JPEG-compressed inputs: the same comparison, a worse score for bicubic
    jp = ev.evaluate_folder(ev.bicubic_upscaler(2), tmp_path, 2, include=["src_*"], hr_scale=0.5, jpeg=20)
    assert jp.psnr < res.psnr - 0.5
    lr_j = imageops.jpeg_roundtrip(imageops.make_lr(hr, 2), 20)
    assert lr_j.dtype == np.uint8 and jp.images[0].psnr == pytest.approx(metrics.measure(imageops.imresize(lr_j, 2.0), hr, 2)[0])
    with pytest.raises(EvaluationError, match="no image"):
        datasets.select_images(tmp_path, include=["nothing*"])
    with pytest.raises(EvaluationError, match="hr_scale"):
        ev.evaluate_folder(ev.bicubic_upscaler(2), tmp_path, 2, hr_scale=1.5)


def test_eval_command_takes_a_held_out_split_at_a_smaller_size(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from sr_filter.cli.eval import eval_cmd

    rng = np.random.default_rng(2)
    for name in ("src_a.png", "ref_b.png"):
        Image.fromarray(imageops.imresize(rng.integers(0, 256, (20, 20, 3)).astype(np.uint8), 4.0)).save(tmp_path / name)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(eval_cmd, [str(tmp_path), "--include", "src_*", "--hr-scale", "0.5", "--per-image",
                                        "--jpeg", "50", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "GMSD-Y" in res.output and "src_a" in res.output and "ref_b" not in res.output
    images = json.loads(out.read_text())[0]["sets"][0]["images"]
    assert [i["name"] for i in images] == ["src_a"] and images[0]["gmsd"] > 0
    # the conditions the inputs were made under travel with the numbers (they had been left out)
    assert json.loads(out.read_text())[0]["conditions"] == {"jpeg": 50, "hr_scale": 0.5, "include": ["src_*"], "exclude": [],
                                                            "limit": None}
    assert "inputs: LR saved as JPEG q50; ground truth downscaled x0.5; only src_*" in res.output
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    res = CliRunner().invoke(eval_cmd, [str(tmp_path)])
    assert res.exit_code == 1 and "leave it out with --exclude broken.png" in str(res.exception)
    res = CliRunner().invoke(eval_cmd, [str(tmp_path), "--exclude", "broken*", "--json", "-"])
    assert res.exit_code == 0 and len(json.loads(res.output)[0]["sets"][0]["images"]) == 2
    assert json.loads(res.output)[0]["conditions"]["exclude"] == ["broken*"]
    res = CliRunner().invoke(eval_cmd, [str(tmp_path), "--exclude", "broken", "--exclude", "src_a", "--json", "-"])
    assert res.exit_code == 0 and [i["name"] for i in json.loads(res.output)[0]["sets"][0]["images"]] == ["ref_b"]
    # a hidden file (macOS's ._ beside each picture copied from a Mac) is left out, as upscale leaves it out
    (tmp_path / "._ref_b.png").write_bytes(b"\0\5\26\7 AppleDouble")
    res = CliRunner().invoke(eval_cmd, [str(tmp_path), "--exclude", "broken*", "--json", str(tmp_path / "r2.json")])
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "r2.json").read_text())[0]["sets"][0]["images"]) == 2
    assert res.stdout.count("wrote") == 0 and "sr-filter: wrote" in res.stderr  # a message, beside the tables on stdout
    res = CliRunner().invoke(eval_cmd, [str(tmp_path), "--exclude", "brokn*"])  # a typo: was "without brokn*", all measured
    assert res.exit_code == 2 and "'brokn*' matches no image" in res.output
    bad = CliRunner().invoke(eval_cmd, [str(tmp_path), "--hr-scale", "2"])
    assert bad.exit_code == 2 and "hr-scale" in bad.output


def _unsharp(img: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp masking: the image plus ``amount`` times its difference to a Gaussian blur."""
    from sr_filter.training.degradations import blur

    x = img.astype(np.float64)
    return x + amount * (x - blur(x[..., None], 1.5)[..., 0])


@needs_bench
@pytest.mark.parametrize("name", ["butterfly", "bird"])
def test_sharpness_is_one_for_the_truth_below_for_bicubic_above_for_unsharp_masking(name):
    hr = datasets.read_rgb(BENCH / "Set5" / f"{name}.png")
    hr = imageops.modcrop(hr, 4)
    y = metrics.shave(imageops.rgb_to_y(hr), 4)
    assert metrics.sharpness(y, y) == pytest.approx(1.0, abs=1e-12)
    bicubic = imageops.imresize(imageops.make_lr(hr, 4), 4.0)
    soft = metrics.measure_sharpness(bicubic, hr, 4)
    assert soft < 0.7  # measured 0.40 (butterfly), 0.51 (bird)
    # milder blur (x2) is less soft than x4, and unsharp masking steepens the edges
    assert soft < metrics.measure_sharpness(imageops.imresize(imageops.make_lr(hr, 2), 2.0), hr, 4) < 1.0
    assert metrics.sharpness(_unsharp(y, 1.0), y) > 1.2
    assert metrics.sharpness(_unsharp(y, 1.0), y) < metrics.sharpness(_unsharp(y, 2.0), y)
    # the intensity scale does not matter (a 16-bit or 0..1 pipeline reads the same)
    yb = metrics.shave(imageops.rgb_to_y(bicubic), 4)
    assert metrics.sharpness(yb * 257.0, y * 257.0) == pytest.approx(metrics.sharpness(yb, y), rel=1e-9)
    assert metrics.sharpness(yb / 255.0, y / 255.0) == pytest.approx(soft, rel=1e-9)


def test_sharpness_edge_cases():
    flat = np.full((16, 16), 80.0)
    assert math.isnan(metrics.sharpness(flat, flat))
    step = np.zeros((16, 16))
    step[:, 8:] = 200.0
    assert metrics.sharpness(step * 0.5, step) == pytest.approx(0.5)  # a weaker edge, the same place
    with pytest.raises(EvaluationError, match="reference"):
        metrics.sharpness(step[:8], step)
    with pytest.raises(EvaluationError, match="too small"):
        metrics.sharpness(step[:2, :2], step[:2, :2])
    with pytest.raises(EvaluationError, match="fraction"):
        metrics.sharpness(step, step, fraction=0.0)


@needs_bench
def test_eval_reports_sharpness_in_the_table_json_and_api(tmp_path):
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    out = tmp_path / "r.json"
    res = CliRunner().invoke(eval_cmd, [str(BENCH / "Set5"), "-m", "bicubic", "--json", str(out), "--per-image"])
    assert res.exit_code == 0, res.output
    assert "sharp" in res.output.splitlines()[1]
    s = json.loads(out.read_text())[0]["sets"][0]
    api = ev.evaluate_folder(ev.bicubic_upscaler(4), BENCH / "Set5", 4)
    assert s["sharpness"] == pytest.approx(api.sharpness, abs=1e-4) and 0.3 < api.sharpness < 0.7
    hr = imageops.modcrop(datasets.read_rgb(BENCH / "Set5" / "baby.png"), 4)
    baby = next(i for i in s["images"] if i["name"] == "baby")
    assert baby["sharpness"] == pytest.approx(
        metrics.measure_sharpness(imageops.imresize(imageops.make_lr(hr, 4), 4.0), hr, 4), abs=1e-4)


def test_table_columns_stay_aligned_with_long_image_names(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(4)
    long = "a_rather_long_held_out_image_name"
    Image.fromarray(imageops.imresize(rng.integers(0, 256, (8, 8, 3)).astype(np.uint8), 4.0)).save(tmp_path / f"{long}.png")
    report = ev.EvalReport(model="bicubic", scale=2, sets=[ev.evaluate_folder(ev.bicubic_upscaler(2), tmp_path, 2)])
    header, row, total = report.table(per_image=True).splitlines()[1:]
    assert long in row and len(header) == len(row) == len(total)
    assert header.index("PSNR-Y") + len("PSNR-Y") == row.index(f"{report.sets[0].images[0].psnr:.2f}") + 5


def _eval(*args: str):
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    return CliRunner().invoke(eval_cmd, [str(a) for a in args])


def _crops(folder: Path, *sizes: int) -> Path:
    from PIL import Image

    folder.mkdir()
    image = Image.open(BENCH / "Set5" / "baby.png")
    for n in sizes:
        image.crop((100, 100, 100 + n, 100 + n)).save(folder / f"crop{n}.png")
    return folder


@needs_bench
def test_the_json_file_is_checked_before_the_work_and_never_replaced_unasked(tmp_path):
    victim = tmp_path / "ground_truth.png"
    victim.write_bytes(b"not results")
    folder = _crops(tmp_path / "set", 48)
    refused = _eval(folder, "--json", victim)
    assert refused.exit_code != 0 and "exists" in str(refused.exception) and "PSNR" not in refused.output
    assert victim.read_bytes() == b"not results"
    blocked = _eval(folder, "--json", victim / "sub" / "r.json")
    assert blocked.exit_code != 0 and "is a file, not a folder" in str(blocked.exception) and "PSNR" not in blocked.output
    replaced = _eval(folder, "--json", victim, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(victim.read_text())[0]["sets"][0]["dataset"] == "set"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ground_truth.png", "set"]  # no temporary left


@needs_bench
def test_the_json_files_missing_folders_are_made_and_removed_when_nothing_is_written(tmp_path):
    """--json into a missing folder was refused ("output folder ... does not exist"), where
    upscaling's and export's -o make theirs."""
    from sr_filter.cli import main

    def command(*args: object) -> int:
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            return exc.code or 0
        return 0

    folder = _crops(tmp_path / "set", 48)
    assert command("eval", folder, "--json", tmp_path / "new" / "deep" / "r.json", "-q") == 0
    assert json.loads((tmp_path / "new" / "deep" / "r.json").read_text())[0]["sets"][0]["dataset"] == "set"
    # made before the work, and removed when the command stops before writing the file
    assert command("eval", folder, "--json", tmp_path / "gone" / "r.json", "--exclude", "nomatch") != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "set"]


@needs_bench
def test_results_are_strict_json_when_a_score_is_infinite(tmp_path):
    out = tmp_path / "r.json"
    done = _eval(_crops(tmp_path / "set", 32), "-s", "1", "--json", out)  # x1 bicubic: the image itself
    assert done.exit_code == 0, done.output
    result = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert result[0]["sets"][0]["psnr"] is None and " inf " in done.output


@needs_bench
@pytest.mark.parametrize("name", ["scan[1].png", "odd\udcff name.png"])
def test_the_advice_for_a_damaged_image_leaves_out_exactly_that_file(tmp_path, name):
    """A '[' in the name had read as a pattern ("matches no image"), and a byte that is no text had
    been printed as a \\udcff escape that no shell can give back: the advice, pasted, must work."""
    import shlex

    from .conftest import run_in_process as run

    folder = _crops(tmp_path / "set", 48, 40)
    (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    (folder / "scan1.png").write_bytes((folder / "crop48.png").read_bytes())  # what a '[1]' read as a pattern matches
    with pytest.raises(EvaluationError) as info:
        ev.evaluate_folder(ev.bicubic_upscaler(4), folder, 4)
    advice = str(info.value).rpartition("; leave it out with ")[2]
    assert advice.startswith("--exclude ") and advice.isprintable(), advice
    done = run("eval", folder, "--per-image", *shlex.split(advice))
    assert done.returncode == 0, done.stderr.decode()
    assert [line.split()[0] for line in done.stdout.decode().splitlines() if line.startswith("  set/")] == \
        ["set/crop40", "set/crop48", "set/scan1"]
    # one too small to measure: its advice works the same way
    (folder / name).unlink()
    Image.open(folder / "crop48.png").crop((0, 0, 12, 12)).save(folder / name, format="PNG")
    with pytest.raises(EvaluationError) as info:
        ev.evaluate_folder(ev.bicubic_upscaler(4), folder, 4)
    advice = str(info.value).rpartition("; leave it out with ")[2]
    assert advice.isprintable() and run("eval", folder, *shlex.split(advice)).returncode == 0, advice


@needs_bench
def test_images_too_small_to_measure_are_named_with_the_size_needed(tmp_path):
    from .conftest import run_in_process as run

    folder = _crops(tmp_path / "set", 48, 12)
    done = run("eval", folder)
    err = done.stderr.decode()
    assert done.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err and "Warning" not in err, err
    assert "crop12.png is 12x12 pixels; measuring needs at least 19 on each side" in err
    assert "leave it out with --exclude crop12.png" in err  # --include had been the advice: listing every other file
    assert run("eval", folder, "--exclude", "crop12.png").returncode == 0
    with pytest.raises(EvaluationError, match=r"crop48.png is 48x48 pixels, 12x12 once downscaled by 0.25 .*larger --hr-scale"):
        ev.evaluate_folder(ev.bicubic_upscaler(4), folder, 4, include=["crop48*"], hr_scale=0.25)
    Image.new("RGB", (3, 3)).save(folder / "tiny.png")  # two too small: both named at once (they had come one per run)
    with pytest.raises(EvaluationError) as info:
        ev.evaluate_folder(ev.bicubic_upscaler(4), folder, 4)
    assert str(info.value).startswith("2 image(s) are too small to measure at x4, which needs at least 19 px on each side")
    assert "crop12.png (12x12 pixels), tiny.png (3x3 pixels, 0x0 once cropped to a multiple of 4)" in str(info.value)
    assert str(info.value).endswith("leave them out with --exclude crop12.png --exclude tiny.png")
    # every one too small: leaving them out would leave nothing (each had been named, with an --exclude for each)
    with pytest.raises(EvaluationError) as info:
        ev.evaluate_folder(ev.bicubic_upscaler(4), folder, 4, hr_scale=0.25)
    assert str(info.value) == ("every image is too small to measure at x4, which needs at least 19 px on each side (the largest, "
                               "crop48.png, is 48x48 pixels, 12x12 once downscaled by 0.25 and cropped to a multiple of 4); "
                               "use a larger --hr-scale")


@needs_bench
def test_sixteen_bit_and_float_ground_truth_is_read_by_value(tmp_path):
    from PIL import Image

    eight = np.asarray(Image.open(BENCH / "Set5" / "baby.png").convert("L").crop((0, 0, 64, 64)))
    folders = {}
    for kind, pixels in (("8", eight), ("16", eight.astype(np.uint16) * 257), ("float", eight.astype(np.float32) / 255)):
        folders[kind] = tmp_path / kind
        folders[kind].mkdir()
        Image.fromarray(pixels).save(folders[kind] / ("g.tif" if kind == "float" else "g.png"))  # L, I;16, F
    scores = {k: ev.evaluate_folder(ev.bicubic_upscaler(2), f, 2).images[0] for k, f in folders.items()}
    assert math.isfinite(scores["8"].psnr) and scores["8"].ssim < 0.999  # not the clipped, flat picture
    for kind in ("16", "float"):
        assert scores[kind].psnr == pytest.approx(scores["8"].psnr, abs=1e-9)
        assert scores[kind].ssim == pytest.approx(scores["8"].ssim, abs=1e-9)


@needs_bench
def test_folder_names_model_names_and_patterns_are_said_plainly(tmp_path, monkeypatch):
    a, b = _crops(tmp_path / "a", 32), tmp_path / "b"
    b.mkdir()
    same = _crops(b / "a", 32)
    done = _eval(a, same)
    # as training's validation names them: as much of each path as tells them apart
    assert done.exit_code == 0 and f"\n{tmp_path.name}/a (1)" in done.output and "\nb/a (1)" in done.output, done.output
    monkeypatch.chdir(a)
    here = _eval(".")
    assert here.exit_code == 0 and "\na (1)" in here.output, here.output
    empty = _eval(a, "-m", "")
    assert empty.exit_code != 0 and "a model name is empty" in empty.output
    with pytest.raises(EvaluationError, match=r"no image in .* matches 'crop'; patterns match file names or names without"):
        datasets.select_images(a, ["crop"])
    # it had said "matches anything, except '*'"
    with pytest.raises(EvaluationError, match=r"no image in .* is left once '\*' is left out; patterns match"):
        datasets.select_images(a, exclude=["*"])
    with pytest.raises(EvaluationError, match=r"no image in .* matches 'a\*' and not '\*'; patterns match"):
        datasets.select_images(a, ["a*"], ["*"])


@needs_bench
def test_a_pattern_that_leaves_a_folder_empty_is_refused_before_any_work(tmp_path):
    """--include matching in one folder only: the first folder was measured, then the run failed
    (exit 1, no table) on the second."""
    one, two = _crops(tmp_path / "one", 32), _crops(tmp_path / "two", 40)
    (one / "crop32.png").rename(one / "baby.png")
    done = _eval(one, two, "--include", "baby*")
    assert done.exit_code == 2 and "no image in" in done.output and str(two) in done.output, done.output
    assert "PSNR" not in done.output


def test_two_files_of_one_stem_are_told_apart(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for name in ("same.png", "same.bmp", "other.png"):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / name)
    result = ev.evaluate_folder(ev.bicubic_upscaler(2), folder, 2)
    assert sorted(r.name for r in result.images) == ["other", "same.bmp", "same.png"]


def test_a_flat_or_exact_image_does_not_spoil_the_sets_means(tmp_path, caplog):
    """A flat picture has no edges (sharpness NaN) and bicubic reproduces it exactly (PSNR
    infinite): the set's mean sharpness was NaN and its mean PSNR infinite, the other images lost."""
    folder = tmp_path / "set"
    folder.mkdir()
    Image.new("RGB", (48, 48), (120, 90, 60)).save(folder / "flat.png")
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(folder / "noise.png")
    with caplog.at_level("WARNING", logger="sr_filter"):
        result = ev.evaluate_folder(ev.bicubic_upscaler(4), folder, 4)
    flat, noise = sorted(result.images, key=lambda r: r.name)
    assert math.isinf(flat.psnr) and math.isnan(flat.sharpness) and math.isfinite(noise.psnr)
    assert result.psnr == noise.psnr and result.sharpness == noise.sharpness
    assert any(r.getMessage() == "flat.png: left out of the set's mean PSNR (the output equals the ground truth) and "
               "sharpness (the ground truth has no edges)" for r in caplog.records), caplog.records
    # every output exact (x1): one line that the mean is infinite ("left out of the mean" for each, then inf, had been said)
    caplog.clear()
    with caplog.at_level("WARNING", logger="sr_filter"):
        result = ev.evaluate_folder(ev.bicubic_upscaler(1), folder, 1)
    assert math.isinf(result.psnr)
    assert [r.getMessage() for r in caplog.records] == [
        "set: every output equals its ground truth: the set's PSNR is infinite",
        "flat.png: left out of the set's mean sharpness (the ground truth has no edges)"]
    caplog.clear()  # a set of one as well (it had said "left out of the mean", then inf)
    with caplog.at_level("WARNING", logger="sr_filter"):
        ev.evaluate_folder(ev.bicubic_upscaler(1), folder, 1, include=["noise*"])
    assert [r.getMessage() for r in caplog.records] == ["set: every output equals its ground truth: the set's PSNR is infinite"]


@needs_bench
def test_bicubic_is_known_with_stray_spaces(tmp_path):
    done = _eval(_crops(tmp_path / "set", 32), "-m", " bicubic ")
    assert done.exit_code == 0 and "bicubic" in done.output, done.output


@needs_bench
def test_a_json_name_ending_in_a_slash_is_a_folder_not_a_file(tmp_path, monkeypatch):
    """`--json res/` wrote a file called `res` (click's Path dropped the slash)."""
    monkeypatch.chdir(tmp_path)
    done = _eval(_crops(tmp_path / "set", 32), "--json", "res/")
    assert done.exit_code == 2 and "res/ names a folder" in done.output and not (tmp_path / "res").exists(), done.output
    assert _eval(tmp_path / "set", "--json", "res.json").exit_code == 0 and (tmp_path / "res.json").is_file()



def test_json_to_dev_stdout_is_standard_output_as_a_dash_is(tmp_path):
    """`--json /dev/stdout` had written the tables to standard output and then the JSON after them,
    so `| jq` failed; it is `--json -` now, as `-o /dev/stdout` is `-o -` for upscaling."""
    import subprocess
    import sys

    from .conftest import ROOT

    done = subprocess.run([sys.executable, "-m", "sr_filter", "eval", _crops(tmp_path / "set", 32), "-m", "bicubic",
                           "--json", "/dev/stdout", "-q"], capture_output=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)[0]["scale"] == 4 and not (tmp_path / "-").exists()


def test_ground_truth_notices_speak_of_reading_not_upscaling(tmp_path, caplog):
    """An animated ground truth was "only the first is upscaled here (... written as GIF ...)", an
    oversized one "upscaled x1 it would be ... use a smaller scale": advice for upscaling, not eval."""
    import struct
    import zlib

    from sr_filter.errors import ImageTooLargeError

    frames = [Image.new("RGB", (24, 24), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with caplog.at_level("WARNING", logger="sr_filter"):
        datasets.read_image(tmp_path / "anim.gif")
    assert [r.getMessage() for r in caplog.records] == [f"{tmp_path / 'anim.gif'} has 3 frames; only the first is used"]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    with pytest.raises(ImageTooLargeError, match=r"is 60000x60000 \(3,600 megapixels\); reading it would need about .* GiB"):
        datasets.read_image(tmp_path / "huge.png")


def test_the_colour_fix_is_named_in_the_results_and_refused_for_bicubic_alone(tmp_path):
    """`--colour-fix` with bicubic alone was silently ignored; with a model its rows say it."""
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    alone = CliRunner().invoke(eval_cmd, [str(BENCH / "Set5"), "--colour-fix", "--limit", "1"])
    assert alone.exit_code == 2 and "bicubic alone shifts no colours" in alone.output
    out = tmp_path / "r.json"
    res = CliRunner().invoke(eval_cmd, [str(BENCH / "Set5"), "-m", "sr-cartoon-x4", "-m", "cartoon", "--limit", "1",
                                        "--json", str(out)])
    assert res.exit_code == 0, res.output
    models = [r["model"] for r in json.loads(out.read_text())]
    assert ", colour fix" not in models[0] and ", colour fix" in models[1]  # the cartoon preset turns it on


@needs_bench
def test_validation_measures_a_grey_image_as_eval_does(tmp_path):
    # training's validation (network_upscaler on the in-memory network) and `sr-filter eval` of the
    # exported model: a grey picture comes out grey from the filter, and had been measured on the
    # network's raw colour output in validation (0.01 dB apart on bridge)
    from sr_filter.models import load_model

    Image.open(BENCH / "Set14" / "bridge.png").crop((0, 0, 128, 128)).save(tmp_path / "bridge.png")
    assert Image.open(tmp_path / "bridge.png").mode == "L"
    net = load_model("sr-cartoon-x4").network.eval()
    validation = ev.evaluate_folder(ev.network_upscaler(net), tmp_path, 4)
    upscale, scale, _ = ev.model_upscaler("sr-cartoon-x4", device="cpu")
    evaluation = ev.evaluate_folder(upscale, tmp_path, scale)
    assert validation.psnr == pytest.approx(evaluation.psnr, abs=1e-6)
    assert validation.ssim == pytest.approx(evaluation.ssim, abs=1e-7)


@needs_bench
def test_scale_given_twice_measures_each(tmp_path):
    """`-s 2 -s 4` had measured x4 alone, the -s 2 dropped without a word (-m and --include repeat)."""
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    out = tmp_path / "r.json"
    res = CliRunner().invoke(eval_cmd, [str(BENCH / "Set5"), "-m", "bicubic", "-m", "sr-cartoon-x4", "-s", "2", "-s", "4",
                                        "-s", "2", "--limit", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = [(r["model"].split(" ")[0], r["scale"]) for r in json.loads(out.read_text())]
    assert rows == [("bicubic", 2), ("bicubic", 4), ("sr-cartoon-x4@1", 2), ("sr-cartoon-x4@1", 4)], rows
    alone = json.loads(CliRunner().invoke(eval_cmd, [str(BENCH / "Set5"), "-s", "3", "-s", "2", "--limit", "1",
                                                     "--json", "-"]).output)
    assert [r["scale"] for r in alone] == [3, 2]


@needs_bench
def test_folders_of_one_name_are_told_apart_as_training_logs_them(tmp_path):
    """eval named every set by its full path once two shared a name; training's validation named the
    two by as much of their paths as told them apart: one way now, for both."""
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    for side in ("x2", "x4", "other"):
        (tmp_path / side / ("val" if side != "other" else "Set5")).mkdir(parents=True)
    for folder in ("x2/val", "x4/val", "other/Set5"):
        Image.open(BENCH / "Set5" / "baby.png").crop((0, 0, 64, 64)).save(tmp_path / folder / "baby.png")
    assert ev.set_names([tmp_path / "x2/val", tmp_path / "x4/val", tmp_path / "other/Set5"]) == ["x2/val", "x4/val", "Set5"]
    res = CliRunner().invoke(eval_cmd, [str(tmp_path / "x2/val"), str(tmp_path / "x4/val"), str(tmp_path / "other/Set5"),
                                        "--json", "-"])
    assert res.exit_code == 0, res.output
    assert [s["dataset"] for s in json.loads(res.output)[0]["sets"]] == ["x2/val", "x4/val", "Set5"]
    api = ev.evaluate(ev.bicubic_upscaler(4), [tmp_path / "x2/val", tmp_path / "x4/val"], 4)
    assert [s.dataset for s in api.sets] == ["x2/val", "x4/val"]


@needs_bench
def test_a_picture_too_small_at_a_later_scale_is_found_before_any_work(tmp_path, caplog):
    """With an x2 and an x4 model (or -s 2 -s 4), a picture too small at x4 had ended the command
    after the x2 work: every folder is checked at every scale first."""
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    (tmp_path / "big").mkdir()
    (tmp_path / "small").mkdir()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / "big" / "flat.png")  # its x2 measure logs a warning
    Image.open(BENCH / "Set5" / "baby.png").crop((0, 0, 16, 16)).save(tmp_path / "small" / "tiny.png")
    x2 = str(require_shared(UPSTREAM / "RealESRGANv2-animevideo-xsx2.pth"))
    with caplog.at_level("WARNING", logger="sr_filter"):
        res = CliRunner().invoke(eval_cmd, [str(tmp_path / "big"), str(tmp_path / "small"), "-m", x2, "-m", "sr-cartoon-x4"])
    assert res.exit_code == 1 and "tiny.png is 16x16 pixels; measuring needs at least 19" in str(res.exception), res.output
    assert not [r for r in caplog.records if "no edges" in r.getMessage()]  # x2 had been measured first


def test_a_damaged_picture_in_a_later_folder_is_found_before_any_work(tmp_path, caplog):
    """A file that is no picture had been found in its turn, after the folders before it were measured."""
    from click.testing import CliRunner

    from sr_filter.cli.eval import eval_cmd

    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / "good" / "flat.png")  # its measure logs a warning
    Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / "bad" / "a.png")
    (tmp_path / "bad" / "b.png").write_bytes(b"not a picture")
    with caplog.at_level("WARNING", logger="sr_filter"):
        res = CliRunner().invoke(eval_cmd, [str(tmp_path / "good"), str(tmp_path / "bad"), "-s", "2"])
    assert res.exit_code == 1 and str(res.exception).endswith("b.png is not a readable image (unknown or damaged format); "
                                                              "leave it out with --exclude b.png"), res.output
    assert not [r for r in caplog.records if "no edges" in r.getMessage()]  # good/ had been measured first

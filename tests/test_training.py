"""Training pipeline: every generator and loss learns on a fixed batch, resume is bit-exact,
degradations, configs, export to the filter, DDP under torchrun, checked feature-weight download."""

from __future__ import annotations

import hashlib
import json
import http.server
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sr_filter.archs import detect_arch, get_arch
from sr_filter.errors import SrFilterError
from sr_filter.training import ConfigError, Trainer, config_from_dict, load_config
from sr_filter.training.adversarial import Critic, critic_step
from sr_filter.training.config import DegradationConfig, LossConfig
from sr_filter.training.data import DataError
from sr_filter.training.degradations import degrade
from sr_filter.training.features import FeatureExtractor, gram_loss
from sr_filter.training.losses import GeneratorLoss

from .conftest import ROOT, interruptible

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is faster than two, and much faster on a busy 2-core CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fixed_batch(scale: int = 2, n: int = 2, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth HR batch (learnable structure, not noise) and its area-downscaled LR."""
    g = torch.Generator().manual_seed(0)
    hr = F.interpolate(torch.rand(n, 3, size // 2, size // 2, generator=g), size=(size * scale,) * 2, mode="bicubic",
                       align_corners=False).clamp(0, 1)
    lr = F.avg_pool2d(hr, scale)
    return lr, hr


def _fit(net: torch.nn.Module, loss_fn, steps: int = 12, lr: float = 2e-3, scale: int = 2) -> tuple[float, float]:
    torch.manual_seed(0)
    x, y = _fixed_batch(scale)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses[0], losses[-1]


GENERATORS = [
    ("edsr", {"num_feat": 16, "num_block": 2, "upsampler": "pixelshuffle"}),
    ("edsr", {"num_feat": 16, "num_block": 2, "upsampler": "deconv"}),
    ("edsr", {"num_feat": 16, "num_block": 2, "upsampler": "nearest"}),
    ("edsr", {"num_feat": 16, "num_block": 2, "upsampler": "bilinear", "res_scale": 0.1}),
    ("edsr", {"num_feat": 16, "num_block": 2, "upsampler": "subpixel", "skip": "bicubic"}),
    ("srresnet", {"num_feat": 16, "num_block": 2}),
    ("rrdbnet", {"num_feat": 16, "num_block": 1, "num_grow_ch": 8}),
    ("unet", {"num_feat": 8, "blocks": [1, 1, 1]}),
    ("srvgg", {"num_feat": 16, "num_conv": 4}),
]


@pytest.mark.parametrize("arch_name, settings", GENERATORS, ids=[f"{a}-{s.get('upsampler', '')}" for a, s in GENERATORS])
def test_generator_learns_and_round_trips_through_the_registry(arch_name, settings):
    arch = get_arch(arch_name)
    params = {**settings, arch.scale_param: 2}
    torch.manual_seed(0)
    net = arch.build(params)
    first, last = _fit(net, F.l1_loss, steps=15)
    assert last < 0.85 * first, f"{arch_name}: L1 went from {first:.4f} to {last:.4f}"
    # the trained state dict alone rebuilds the same network (what loading by path relies on)
    found, inferred = detect_arch(net.state_dict())
    assert found.name == arch_name
    clone = found.build(inferred)
    clone.load_state_dict(net.state_dict())
    x = _fixed_batch()[0]
    net.eval(), clone.eval()
    assert torch.equal(net(x), clone(x))


def test_a_small_unet_trains_on_the_samplers_channels_last_batches(tmp_path):
    """Training a U-Net of num_feat <= 8 crashed the process in its first backward pass (segfault,
    or "double free or corruption"): torch 2.13's oneDNN corrupts memory in the weight gradient of
    a 1x1 stride-2 convolution on channels-last inputs of few channels, and the patch sampler's
    batches are channels-last. Run in a child process: a crash would take pytest with it."""
    from PIL import Image

    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).resize((96, 96), Image.BICUBIC).save(folder / f"im{i}.png")
    cfg = tmp_path / "unet.toml"
    cfg.write_text(textwrap.dedent(f"""\
        name = "unet"
        out_dir = "{tmp_path.as_posix()}"
        threads = 1
        checkpoint_seconds = 0
        plot = false
        [model]
        arch = "unet"
        settings = {{ num_feat = 8, blocks = [1, 1] }}
        [data]
        train_dirs = ["{folder.as_posix()}"]
        scale = 4
        patch = 16
        batch = 2
        [optim]
        iterations = 2
        """))
    done = subprocess.run([sys.executable, "-m", "sr_filter", "train", str(cfg)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(tmp_path / "unet" / "latest.pt", weights_only=True)["iteration"] == 2


def test_the_unet_projection_is_a_stride_2_convolution():
    """The stride is taken by slicing (see above); files trained before must give the same pixels."""
    from sr_filter.archs.unet import BasicBlock

    torch.manual_seed(0)
    block = BasicBlock(8, 16, stride=2)
    x = torch.rand(1, 8, 33, 17)
    expected = F.relu(F.conv2d(x, block.proj.weight, block.proj.bias, stride=2)
                      + block.conv2(F.relu(block.conv1(x))))
    assert torch.allclose(block(x), expected, atol=1e-6) and block(x).shape == (1, 16, 17, 9)


def _small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return get_arch("edsr").build({"num_feat": 16, "num_block": 2, "upscale": 2, "upsampler": "subpixel"})


@pytest.mark.parametrize("terms", [
    {"l1": 1.0},
    {"l1": 0.0, "mse": 1.0},
    # random VGG/ResNet weights: torchvision's files cannot be downloaded here (no network); the
    # download path itself is tested below against a local server
    {"l1": 0.0, "perceptual": 1.0, "perceptual_layers": ["relu2_2"], "feature_pretrained": False},
    {"l1": 0.0, "perceptual": 1.0, "perceptual_net": "resnet50", "perceptual_layers": ["conv1"], "feature_pretrained": False},
    {"l1": 0.0, "texture": 1.0, "texture_layers": ["relu1_1", "relu2_1"], "texture_patch": 4, "feature_pretrained": False},
], ids=["l1", "mse", "perceptual-vgg", "perceptual-resnet", "texture"])
def test_each_loss_goes_down_on_a_fixed_batch(terms):
    cfg = LossConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in terms.items()})
    loss = GeneratorLoss(cfg)
    first, last = _fit(_small_net(), lambda sr, hr: loss(sr, hr)[0], steps=15)
    assert last < 0.8 * first, f"{terms}: {first:.5g} -> {last:.5g}"


def test_wgan_gp_critic_separates_and_generator_fools_it():
    torch.manual_seed(0)
    lr, hr = _fixed_batch()
    net = _small_net()
    critic = Critic(num_feat=8, depth=2)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.0, 0.9))
    with torch.no_grad():
        fake = net(lr)
    logs = [critic_step(critic, opt, hr, fake, 10.0, torch.Generator().manual_seed(i)) for i in range(15)]
    assert logs[-1]["critic_wdist"] > logs[0]["critic_wdist"]  # the critic learns to tell them apart
    for p in critic.parameters():
        p.requires_grad_(False)
    first, last = _fit(net, lambda sr, _hr: -critic(sr).mean(), steps=10, lr=1e-3)
    assert last < first  # the generator's adversarial loss falls against a fixed critic


# ----------------------------------------------------------------------------- the trainer


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i in range(3):
        base = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(base).resize((64, 56), Image.BICUBIC).save(folder / f"im{i}.png")
    return folder


def _config(folder: Path, out: Path, **over) -> "object":
    data = {
        "name": "t", "out_dir": str(out), "seed": 3, "threads": 1, "ema": 0.9, "log_every": 2, "plot": False,
        "checkpoint_every": 1000, "checkpoint_seconds": 0,
        "model": {"arch": "edsr", "settings": {"num_feat": 8, "num_block": 1, "upsampler": "subpixel", "skip": "bicubic"}},
        "data": {"train_dirs": [str(folder)], "scale": 2, "patch": 8, "batch": 2},
        "optim": {"lr": 1e-3, "iterations": 6, "warmup": 2},
        "loss": {"l1": 1.0},
        "val": {"dirs": [str(folder)], "every": 3},
    }
    for k, v in over.items():
        if isinstance(v, dict):
            data[k] = {**data.get(k, {}), **v}
        else:
            data[k] = v
    return config_from_dict(data)


def test_resume_continues_bit_for_bit(image_folder, tmp_path):
    over = {"loss": {"l1": 1.0, "adversarial": 0.01, "texture": 0.1, "texture_layers": ["relu1_1"],
                     "feature_pretrained": False, "critic_feat": 8, "critic_depth": 2},
            "data": {"degradation": {"blur_prob": 0.5, "noise_prob": 0.5, "jpeg_prob": 0.5}}}
    straight = Trainer(_config(image_folder, tmp_path / "a", **over), log=lambda s: None)
    straight.run(resume=False)

    cfg = _config(image_folder, tmp_path / "b", **over)
    first = Trainer(cfg, log=lambda s: None)
    for _ in range(3):
        first.step()
    first.save_checkpoint()
    del first
    second = Trainer(cfg, log=lambda s: None)
    second.run(resume=True)
    assert second.iteration == straight.iteration == 6
    for name in ("model", "ema", "critic", "optimizer"):
        a, b = straight.state()[name], second.state()[name]
        flat_a, flat_b = _flatten(a), _flatten(b)
        assert flat_a.keys() == flat_b.keys()
        for k in flat_a:
            assert torch.equal(flat_a[k], flat_b[k]), f"{name}.{k} differs after resume"


def test_a_checkpoint_of_changed_settings_names_them(image_folder, tmp_path):
    """Resuming with another scale had shown torch's size-mismatch list."""
    from sr_filter.training.trainer import CheckpointError

    Trainer(_config(image_folder, tmp_path, optim={"iterations": 2}), log=lambda s: None).run(resume=False)
    changed = Trainer(_config(image_folder, tmp_path, optim={"iterations": 2}, data={"scale": 3}), log=lambda s: None)
    with pytest.raises(CheckpointError) as info:
        changed.run(resume=True)
    message = str(info.value)
    assert "(data.scale: 2 -> 3 since the checkpoint was written); undo the change, or start over with --fresh" in message, message
    assert "size mismatch" not in message


def test_a_checkpoint_of_another_architecture_says_the_ways_on(image_folder, tmp_path):
    """It had said only "use another run name or out_dir", where a change of settings offers
    undoing it and --fresh too."""
    from sr_filter.training.trainer import CheckpointError

    Trainer(_config(image_folder, tmp_path, optim={"iterations": 2}), log=lambda s: None).run(resume=False)
    srvgg = {"arch": "srvgg", "settings": {"num_feat": 8, "num_conv": 1}}
    changed = Trainer(_config(image_folder, tmp_path, optim={"iterations": 2}, model=srvgg), log=lambda s: None)
    with pytest.raises(CheckpointError) as info:
        changed.run(resume=True)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 't' / 'latest.pt'} holds a model of [model] arch 'edsr', where this config "
                              "has 'srvgg' (model.arch: 'edsr' -> 'srvgg'; model.settings: "), message
    assert message.endswith(" since the checkpoint was written); undo the change, or start over with --fresh or under "
                            "another run name"), message
    assert changed.run(resume=False).is_file()  # --fresh: the way on it names


def _flatten(obj, prefix="") -> dict:
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}{i}."))
    elif isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif obj is not None:
        out[prefix] = torch.tensor(float(obj))
    return out


def test_trainer_logs_validates_plots_and_exports_a_model_the_filter_loads(image_folder, tmp_path):
    from sr_filter.models import load_file

    tr = Trainer(_config(image_folder, tmp_path, plot=True), log=lambda s: None)
    path = tr.run(resume=False)
    run = tmp_path / "t"
    log = (run / "log.jsonl").read_text().splitlines()
    assert any('"val"' in line for line in log) and any('"l1"' in line for line in log)
    assert (run / "latest.pt").is_file() and (run / "iter_0000006.pt").is_file()
    pytest.importorskip("matplotlib")
    assert (run / "curves.png").stat().st_size > 1000
    loaded = load_file(path)
    assert loaded.arch.name == "edsr" and loaded.scale == 2
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        assert torch.allclose(loaded.network(x), tr.ema.eval()(x))


def test_config_errors_are_actionable(tmp_path, image_folder):
    with pytest.raises(ConfigError, match="unknown setting"):
        config_from_dict({"data": {"train_dirs": ["x"], "pach": 4}})
    with pytest.raises(ConfigError, match="train_dirs"):
        config_from_dict({})
    with pytest.raises(ConfigError, match="hr_scale"):
        config_from_dict({"data": {"train_dirs": ["x"]}, "val": {"hr_scale": 2}})
    with pytest.raises(ConfigError, match="JPEG quality"):
        config_from_dict({"data": {"train_dirs": ["x"]}, "val": {"jpeg": 101}})
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_a_config_without_a_name_runs_in_a_folder_named_after_its_file(tmp_path, caplog):
    """Two such configs had shared runs/experiment: the second resumed the first's weights and
    overwrote its model.pth, with exit status 0."""
    (tmp_path / "photos_a.toml").write_text('[data]\ntrain_dirs = ["x"]\n')
    (tmp_path / "named.toml").write_text('name = "mine"\n[data]\ntrain_dirs = ["x"]\n')
    assert load_config(tmp_path / "photos_a.toml").run_dir == tmp_path / "runs" / "photos_a"
    assert load_config(tmp_path / "named.toml").run_dir == tmp_path / "runs" / "mine"
    # a run such a config began before (in runs/experiment) is pointed to, not silently left
    (tmp_path / "runs" / "experiment").mkdir(parents=True)
    (tmp_path / "runs" / "experiment" / "latest.pt").write_bytes(b"")
    with caplog.at_level("WARNING"):
        load_config(tmp_path / "photos_a.toml")
    assert 'to continue that one, add name = "experiment" to the config' in caplog.text


def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path):
    """PowerShell's "utf8" (and older Notepad) start a file with a byte-order mark: such a config
    had been "not valid TOML: Invalid statement (at line 1, column 1)", a line that looks right."""
    (tmp_path / "bom.toml").write_bytes('\ufeffname = "mine"\n[data]\ntrain_dirs = ["x"]\n'.encode("utf-8"))
    assert load_config(tmp_path / "bom.toml").run_dir == tmp_path / "runs" / "mine"


def test_shipped_configs_parse_and_build_their_networks():
    from sr_filter.training.trainer import build_model

    for path in sorted((ROOT / "configs").glob("*.toml")):
        cfg = load_config(path)
        assert cfg.data.train_dirs, path
        build_model(cfg)  # the settings check and one RGB patch through the network (under a second in all)


def test_degradations_are_seeded_and_each_stage_acts():
    from sr_filter.imageops import imresize

    rng0 = np.random.default_rng(0)
    hr = imresize(rng0.integers(0, 256, (6, 6, 3), dtype=np.uint8), size=(48, 48))
    plain = degrade(hr, 4, DegradationConfig(), np.random.default_rng(1))
    assert plain.shape == (12, 12, 3) and plain.dtype == np.uint8
    assert np.array_equal(plain, imresize(hr, 0.25))
    for stage in ("blur_prob", "noise_prob", "jpeg_prob", "video_prob"):
        cfg = DegradationConfig(**{stage: 1.0})
        a = degrade(hr, 4, cfg, np.random.default_rng(5))
        b = degrade(hr, 4, cfg, np.random.default_rng(5))
        assert np.array_equal(a, b), stage
        assert not np.array_equal(a, plain), stage


# ----------------------------------------------------------------------------- DDP and downloads


def _write_toml(path: Path, name: str, out: Path, folder: Path, model: str, extra: str = "") -> Path:
    """A tiny two-iteration experiment as a TOML file (for the command-line entry points)."""
    path.write_text(f"""
name = "{name}"
out_dir = "{out.as_posix()}"
threads = 1
checkpoint_seconds = 0
plot = false
[model]
{model}
[data]
train_dirs = ["{folder.as_posix()}"]
scale = 2
patch = 8
batch = 2
[optim]
iterations = 2
{extra}""")
    return path


def test_torchrun_ddp_runs_the_same_config(image_folder, tmp_path):
    cfg = _write_toml(tmp_path / "ddp.toml", "ddp", tmp_path, image_folder,
                      'arch = "edsr"\nsettings = { num_feat = 8, num_block = 1, upsampler = "subpixel" }',
                      "[loss]\nl1 = 1.0\nadversarial = 0.01\ncritic_feat = 8\ncritic_depth = 2\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "sr_filter", "train", str(cfg)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the launcher and both workers
        proc.communicate()
        pytest.fail("torchrun did not finish in 180 s")
    assert proc.returncode == 0, err[-2000:]
    state = torch.load(tmp_path / "ddp" / "latest.pt", weights_only=True)
    assert state["iteration"] == 2 and state["critic"] is not None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


def test_paths_in_a_config_file_are_its_own_folders_and_home_folders(image_folder, tmp_path, monkeypatch):
    """[loss] feature_weights had been read from the working folder, unlike every other path of the
    file (docs/training.md: relative to the config), and its error named no setting; a "~/" path
    had become a folder named "~" beside the config."""
    from click.testing import CliRunner

    from sr_filter.cli import cli
    from sr_filter.training.features import resolve_weights

    (tmp_path / "cfg").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = _write_toml(tmp_path / "cfg" / "x.toml", "x", tmp_path, image_folder,
                      'arch = "edsr"\nsettings = { num_feat = 8, num_block = 1, upsampler = "subpixel" }',
                      '[loss]\nperceptual = 1.0\nfeature_weights = "../weights/vgg19.pth"\n')
    cfg.write_text(cfg.read_text().replace(f'out_dir = "{tmp_path.as_posix()}"', 'out_dir = "~/runs"'))
    loaded = load_config(cfg)
    assert loaded.loss.feature_weights == str(tmp_path / "weights" / "vgg19.pth")
    assert loaded.out_dir == str(tmp_path / "home" / "runs")
    with pytest.raises(SrFilterError) as info:
        resolve_weights("vgg19", loaded.loss.feature_weights)
    assert str(info.value) == f"[loss] feature_weights: {tmp_path / 'weights' / 'vgg19.pth'} does not exist"
    # a time limit that is no number had meant none at all
    done = CliRunner().invoke(cli, ["train", str(cfg), "--max-minutes", "nan"])
    assert done.exit_code == 2 and "nan is not a number of minutes; give one greater than 0" in done.output, done.output


def test_feature_weights_download_through_the_checked_fetch(tmp_path, monkeypatch):
    """torchvision's server cannot be reached here, so a local HTTP server plays it."""
    pytest.importorskip("sr_filter.weights")
    from functools import partial

    from sr_filter.errors import DownloadError
    from sr_filter.backbones import PublishedWeights
    from sr_filter.training import features

    served = tmp_path / "served"
    served.mkdir()
    torch.manual_seed(0)
    ref = features.VGG19Features(features.vgg19_layer_names()["relu1_2"])
    torch.save(ref.state_dict(), served / "vgg19-test.pth")
    digest = hashlib.sha256((served / "vgg19-test.pth").read_bytes()).hexdigest()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/vgg19-test.pth"
        monkeypatch.setitem(features.PUBLISHED, "vgg19", PublishedWeights(url, digest[:8]))
        monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.delenv("SR_FILTER_WEIGHTS_URL", raising=False)
        monkeypatch.delenv("SR_FILTER_OFFLINE", raising=False)
        with pytest.raises(DownloadError, match="no full sha256 pin"):
            FeatureExtractor("vgg19", ("relu1_2",))
        with pytest.raises(DownloadError, match="does not match"):
            FeatureExtractor("vgg19", ("relu1_2",), sha256="0" * 64)
        net = FeatureExtractor("vgg19", ("relu1_2",), sha256=digest)
        assert (tmp_path / "cache" / "vgg19-test.pth").is_file()
        for k, v in ref.state_dict().items():
            assert torch.equal(net.net.state_dict()[k], v)
        # a local copy is accepted when its hash has torchvision's prefix
        FeatureExtractor("vgg19", ("relu1_2",), weights_path=str(served / "vgg19-test.pth"))
    finally:
        server.shutdown()


def test_gram_loss_is_zero_for_equal_features_and_positive_otherwise():
    f = torch.rand(2, 4, 8, 8)
    assert float(gram_loss(f, f, 4)) == 0.0
    assert float(gram_loss(f, torch.rand(2, 4, 8, 8), 4)) > 0.0


def test_train_command_runs_a_config_and_resumes(image_folder, tmp_path):
    from click.testing import CliRunner

    from sr_filter.cli.train import train_cmd

    cfg = _write_toml(tmp_path / "c.toml", "cli", tmp_path, image_folder,
                      'arch = "srresnet"\nsettings = { num_feat = 8, num_block = 1, norm = false }')
    res = CliRunner().invoke(train_cmd, [str(cfg)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cli" / "model.pth").is_file()
    cfg.write_text(cfg.read_text().replace("iterations = 2", "iterations = 3"))
    res = CliRunner().invoke(train_cmd, [str(cfg)])
    assert "resumed" in res.output and torch.load(tmp_path / "cli" / "latest.pt", weights_only=True)["iteration"] == 3
    assert "iter 3 " in res.output
    # -q: the iteration lines are left out (they had been printed), the end is said; log.jsonl keeps them
    cfg.write_text(cfg.read_text().replace("iterations = 3", "iterations = 4"))
    res = CliRunner().invoke(train_cmd, [str(cfg), "-q"])
    assert res.exit_code == 0 and "iter " not in res.output and "done at iteration 4" in res.output, res.output
    logged = [json.loads(line) for line in (tmp_path / "cli" / "log.jsonl").read_text().splitlines()]
    assert [entry["iter"] for entry in logged if "s_per_it" in entry][-1] == 4


def test_exported_model_loads_through_a_manifest_entry(image_folder, tmp_path):
    from sr_filter.manifest import parse_manifest
    from sr_filter.models import load_entry
    from sr_filter.training.export import manifest_entry

    tr = Trainer(_config(image_folder, tmp_path, optim={"iterations": 1}, val={"dirs": []}), log=lambda s: None)
    path = tr.run(resume=False)
    raw = manifest_entry(path, "test-edsr", description="test", packaged="builtin/test-edsr.pth", license="CC0-1.0")
    assert raw["license"] == "CC0-1.0"
    manifest = parse_manifest({"manifest_version": 1, "default_preset": "photo",
                               "presets": {"photo": {"models": ["test-edsr"]}}, "models": [raw]})
    loaded = load_entry(manifest.get("test-edsr"), path)
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(loaded.network(x), tr.ema.eval()(x))


def test_a_manifest_entry_is_refused_in_one_line_for_what_is_not_a_trained_model(image_folder, tmp_path):
    """A checkpoint had been called "not written by the sr_filter trainer", a truncated file was a
    bare OSError, a missing one FileNotFoundError; and every model got BSD-3-Clause by default."""
    from sr_filter.errors import WeightsFormatError
    from sr_filter.training.export import manifest_entry

    Trainer(_config(image_folder, tmp_path, optim={"iterations": 1}, val={"dirs": []}), log=lambda s: None).run(resume=False)
    run = tmp_path / "t"
    with pytest.raises(TypeError, match="license"):
        manifest_entry(run / "model.pth", "x")
    with pytest.raises(WeightsFormatError, match="is a training checkpoint; register the run's model.pth"):
        manifest_entry(run / "latest.pt", "x", license="CC0-1.0")
    cut = tmp_path / "cut.pth"
    cut.write_bytes((run / "model.pth").read_bytes()[:300])
    with pytest.raises(WeightsFormatError, match=r"cut.pth is not a readable model file \("):
        manifest_entry(cut, "x", license="CC0-1.0")
    with pytest.raises(WeightsFormatError, match=r"cannot read .*missing.pth \(No such file or directory\)"):
        manifest_entry(tmp_path / "missing.pth", "x", license="CC0-1.0")


def test_published_backbones_are_fully_pinned():
    from sr_filter.training import features

    for pub in features.PUBLISHED.values():
        assert pub.sha256 and len(pub.sha256) == 64 and pub.sha256.startswith(pub.sha256_prefix)
        assert pub.url.endswith(f"-{pub.sha256_prefix}.pth")


def test_held_out_images_are_excluded_from_training_and_used_for_validation(image_folder, tmp_path):
    from sr_filter.training.data import PatchSampler

    cfg = _config(image_folder, tmp_path, data={"exclude": ["im0*"]},
                  val={"dirs": [str(image_folder)], "include": ["im0*"], "hr_scale": 0.5, "every": 3})
    assert len(PatchSampler(cfg.data)) == 2  # im1, im2 (rescale 1.0 only)
    tr = Trainer(cfg, log=lambda s: None)
    tr.run(resume=False)
    vals = [json.loads(line)["val"] for line in (tmp_path / "t" / "log.jsonl").read_text().splitlines() if '"val"' in line]
    assert vals and all(set(v) == {image_folder.name} for v in vals)
    # the validation score is that of the one included image at half size, measured the same way
    from sr_filter.evaluation import evaluate_folder, network_upscaler

    res = evaluate_folder(network_upscaler(tr.ema.eval()), image_folder, 2, include=["im0*"], hr_scale=0.5)
    assert [r.name for r in res.images] == ["im0"]
    assert vals[-1][image_folder.name] == pytest.approx(res.psnr, abs=1e-3)
    with pytest.raises(DataError, match="no image"):
        PatchSampler(_config(image_folder, tmp_path, data={"exclude": ["*.png"]}).data)


def test_init_starts_from_given_weights_and_refuses_other_architectures(image_folder, tmp_path):
    first = Trainer(_config(image_folder, tmp_path / "a"), log=lambda s: None)
    exported = first.run(resume=False)
    cfg = _config(image_folder, tmp_path / "b", seed=99, model={"init": str(exported)})
    tuned = Trainer(cfg, log=lambda s: None)
    start = first.ema.state_dict()
    for k, v in tuned.model.state_dict().items():
        assert torch.equal(v, start[k]), k  # not the seed-99 random weights
    assert tuned.ema is not None and all(torch.equal(v, start[k]) for k, v in tuned.ema.state_dict().items())
    # the packaged photo model by name, into the same settings it ships with
    photo = _config(image_folder, tmp_path / "c", data={"scale": 4, "patch": 8},
                    model={"settings": {"num_feat": 48, "num_block": 6, "upsampler": "subpixel", "skip": "bicubic"},
                           "init": "sr-photo-x4"})
    Trainer(photo, log=lambda s: None)
    # the settings that differ are named (it had been torch's list of missing keys)
    with pytest.raises(SrFilterError, match=r"init '.*model.pth' was built with num_feat = 8, where \[model\] settings give "
                                            r"num_feat = 16; give its settings to fine-tune it$"):
        Trainer(_config(image_folder, tmp_path / "d", model={"settings": {"num_feat": 16, "num_block": 1},
                                                              "init": str(exported)}), log=lambda s: None)
    with pytest.raises(SrFilterError, match=r"init '.*model.pth' is a x2 model, where \[data\] scale = 4; set \[data\] scale = 2 "
                                            r"to fine-tune it$"):  # it had pointed at [model] settings upscale, then refused it
        Trainer(_config(image_folder, tmp_path / "d4", data={"scale": 4}, model={"init": str(exported)}), log=lambda s: None)
    with pytest.raises(SrFilterError, match="is a srvgg model"):
        Trainer(_config(image_folder, tmp_path / "e", data={"scale": 4}, model={"init": "realesr-animevideov3"}),
                log=lambda s: None)
    # a relative init path in a TOML file is relative to that file
    toml = tmp_path / "cfg" / "x.toml"
    toml.parent.mkdir()
    toml.write_text(f'[model]\ninit = "../a/t/model.pth"\n[data]\ntrain_dirs = ["{image_folder}"]\n')
    assert load_config(toml).model.init == str(exported.resolve())


def test_init_of_a_relu_model_is_refused_for_a_leakyrelu_config(image_folder, tmp_path):
    """ReLU and LeakyReLU have no weights, so a ReLU model's tensors load into a LeakyReLU network:
    fine-tuning one under act_type = "leakyrelu" had gone on without a word, as another network."""
    relu = {"arch": "srvgg", "settings": {"num_feat": 8, "num_conv": 2, "act_type": "relu"}}
    exported = Trainer(_config(image_folder, tmp_path / "a", val={"dirs": []}, optim={"iterations": 1, "warmup": 0},
                               model=relu), log=lambda s: None).run(resume=False)
    leaky = {"arch": "srvgg", "settings": {"num_feat": 8, "num_conv": 2, "act_type": "leakyrelu"}, "init": str(exported)}
    with pytest.raises(SrFilterError, match=r'was built with act_type = "relu", where \[model\] settings give '
                                            r'act_type = "leakyrelu"; give its settings to fine-tune it$'):
        Trainer(_config(image_folder, tmp_path / "b", val={"dirs": []}, model=leaky), log=lambda s: None)
    Trainer(_config(image_folder, tmp_path / "c", val={"dirs": []}, model={**relu, "init": str(exported)}), log=lambda s: None)


def test_a_run_resumes_without_its_init_file_which_only_a_fresh_start_needs(image_folder, tmp_path):
    """A run fine-tuned from a file (a grown model made for it, another run's model.pth) could not
    be resumed once that file was gone, though latest.pt holds every weight; --fresh still needs
    it, and says so before the old run's files are removed."""
    import shutil

    init = Trainer(_config(image_folder, tmp_path / "a", val={"dirs": []}, optim={"iterations": 1, "warmup": 0}),
                   log=lambda s: None).run(resume=False)
    moved = shutil.copy(init, tmp_path / "init.pth")
    tuned = _config(image_folder, tmp_path / "b", val={"dirs": []}, optim={"iterations": 2, "warmup": 0},
                    model={"init": str(moved)})
    Trainer(tuned, log=lambda s: None).run(resume=False)
    Path(moved).unlink()
    longer = _config(image_folder, tmp_path / "b", val={"dirs": []}, optim={"iterations": 3, "warmup": 0},
                     model={"init": str(moved)})
    resumed = Trainer(longer, log=lambda s: None)
    resumed.run(resume=True)
    assert resumed.iteration == 3
    before = sorted(p.name for p in (tmp_path / "b" / "t").iterdir())
    with pytest.raises(ConfigError, match=r"\[model\] init: .*init.pth does not exist"):
        Trainer(longer, log=lambda s: None).run(resume=False)
    assert sorted(p.name for p in (tmp_path / "b" / "t").iterdir()) == before  # nothing removed
    with pytest.raises(ConfigError, match="does not exist"):  # a new run needs it at once, as before
        Trainer(_config(image_folder, tmp_path / "c", model={"init": str(moved)}), log=lambda s: None)


def test_an_init_file_that_is_missing_or_no_weights_names_the_setting(image_folder, tmp_path):
    """It had been "weights file /.../runs/x.pth does not exist", which names no setting: the
    shipped cartoon_x4_v2_grow.toml starts from a file in the git-ignored runs/."""
    toml = tmp_path / "cfg" / "x.toml"
    toml.parent.mkdir()
    toml.write_text(f'out_dir = "{tmp_path}"\n[model]\ninit = "../runs/grown.pth"\n[data]\ntrain_dirs = ["{image_folder}"]\n')
    with pytest.raises(ConfigError) as info:
        Trainer(load_config(toml), log=lambda _: None)
    assert str(info.value) == (f"[model] init: weights file {tmp_path / 'runs' / 'grown.pth'} does not exist; correct the "
                               "path (a relative one is relative to the config file) or make that file first")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "grown.pth").write_text("not weights")
    with pytest.raises(ConfigError, match=r"^\[model\] init: grown.pth is a text file, not model weights$"):
        Trainer(load_config(toml), log=lambda _: None)


def test_learning_rate_and_ema_decay_follow_the_iteration_alone():
    from sr_filter.training.schedule import ema_decay, learning_rate, update_ema

    cos = config_from_dict({"data": {"train_dirs": ["x"]}, "optim": {"lr": 1e-3, "min_lr": 1e-5, "warmup": 10,
                                                                    "iterations": 110}})
    assert learning_rate(cos, 5) == pytest.approx(5e-4)  # linear warm-up
    assert learning_rate(cos, 10) == pytest.approx(1e-3)
    assert learning_rate(cos, 60) == pytest.approx((1e-3 + 1e-5) / 2)  # half way down the cosine
    assert learning_rate(cos, 110) == pytest.approx(1e-5)
    step = config_from_dict({"data": {"train_dirs": ["x"]},
                             "optim": {"lr": 1e-3, "schedule": "step", "milestones": [100, 200], "gamma": 0.5}})
    assert [learning_rate(step, i) for i in (100, 101, 201)] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert ema_decay(0.999, 0) == pytest.approx(0.1) and ema_decay(0.999, 10**6) == 0.999
    average, model = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    expected = 0.9 * average.weight.detach() + 0.1 * model.weight.detach()
    update_ema(average, model, 0.9)
    assert torch.allclose(average.weight, expected)


# -- what a user training their own model runs into ---------------------------------------------------


@pytest.mark.parametrize("over, message", [
    ({"optim": {"iterations": "10"}}, "[optim] iterations must be a whole number, not '10'"),
    ({"optim": {"iterations": 10.5}}, "[optim] iterations must be a whole number, not 10.5"),
    ({"amp": True}, "amp must be auto, bf16, fp16 or off (a string in quotes), not True"),  # had been "must be a string"
    ({"optim": {"schedule": 3}}, "[optim] schedule must be cosine, step or constant (a string in quotes), not 3"),
    ({"data": {"train_dirs": "T91"}}, "[data] train_dirs must be a list of strings"),
    ({"data": {"degradation": {"jpeg_quality": 50}}}, "jpeg_quality must be a list of two whole numbers"),
    ({"data": {"degradation": {"blur_prob": 2.0}}}, "blur_prob is a probability from 0 to 1"),
    ({"data": {"degradation": {"jpeg_quality": [0, 200]}}}, "jpeg_quality is a range [low, high] with 1 <= low"),
    ({"data": {"rescale": []}}, "[data] rescale lists downscaling factors in (0, 1]"),
    ({"optim": {"lr": -1.0}}, "[optim] lr must be above 0, not -1"),  # had named gamma and four others too
    ({"optim": {"gamma": 0.0}}, "[optim] gamma must be above 0, not 0"),
    ({"optim": {"warmup": -2}}, "[optim] warmup must be 0 or more, not -2"),
    ({"optim": {"betas": [0.9]}}, "[optim] betas must be a list of two numbers"),
    ({"log_every": 0}, "log_every must be at least 1, not 0"),
    ({"checkpoint_seconds": -1.5}, "checkpoint_seconds must be 0 or more, not -1.5"),
    ({"val": {"every": 0}}, "[val] every must be at least 1, not 0"),
    ({"val": {"limit": -1}}, "[val] limit must be 0 or more (0: every image), not -1"),
    ({"name": "../../escape"}, "must be a folder name inside out_dir"),
    ({"name": ""}, "must be a folder name inside out_dir"),
    ({"loss": {"l1": 0.0}}, "at least one of l1, mse, perceptual and texture above 0"),
    ({"loss": {"l1": 0.0, "adversarial": 0.01}}, "adversarial trains beside a content loss"),  # a traceback at iteration 1
    ({"data": {"degradation": {"blur_sigma": [float("nan"), float("nan")]}}}, "[data.degradation] blur_sigma must be a finite number"),
    ({"data": {"degradation": {"noise_sigma": [1.0, float("inf")]}}}, "[data.degradation] noise_sigma must be a finite number"),
    ({"optim": {"weight_decay": float("nan")}}, "[optim] weight_decay must be a finite number"),
    ({"optim": {"lr": float("inf")}}, "[optim] lr must be a finite number"),
    ({"seed": 2**63 - 1}, "seed must be at most 2147483647, not 9223372036854775807"),
    ({"threads": 100000000000}, "threads must be at most 4096"),
    ({"loss": {"perceptual_net": "vgg16"}}, "perceptual_net must be vgg19 or resnet50"),
    ({"model": {"settings": "num_feat=8"}}, "[model] settings must be a table"),
])
def test_a_setting_of_the_wrong_type_or_range_is_named(image_folder, tmp_path, over, message):
    with pytest.raises(ConfigError) as info:
        _config(image_folder, tmp_path, **over)
    assert message in str(info.value)


def test_negative_or_empty_network_sizes_are_one_line_without_warnings(image_folder, tmp_path, recwarn):
    """num_conv = -1 trained (as 0), and num_feat = 0 printed torch's two-line warning first."""
    with pytest.raises(ConfigError, match=r"\[model\] settings num_conv must be 0 or more, not -1"):
        Trainer(_config(image_folder, tmp_path, model={"arch": "srvgg", "settings": {"num_feat": 8, "num_conv": -1}}),
                log=lambda _: None)
    with pytest.raises(ConfigError, match=r"\[model\] settings .* do not make a working srvgg network"):
        Trainer(_config(image_folder, tmp_path, model={"arch": "srvgg", "settings": {"num_feat": 0, "num_conv": 1}}),
                log=lambda _: None)
    assert not [w for w in recwarn if "zero-element" in str(w.message)]


def test_settings_an_architecture_refuses_are_one_line(image_folder, tmp_path):
    cfg = _config(image_folder, tmp_path, model={"arch": "srvgg", "settings": {"num_feat": 8, "num_conv": 1, "act_type": "gelu"}})
    with pytest.raises(SrFilterError, match="bad settings for architecture 'srvgg'"):
        Trainer(cfg, log=lambda _: None)


def test_validation_settings_are_checked_before_any_training(image_folder, tmp_path):
    for val, message in (({"include": ["nomatch*"]}, "matches 'nomatch*'"),
                         # a typo beside a pattern that matches: the image meant is not measured, unsaid
                         ({"include": ["im0", "im9*"]}, "[val] include 'im9*' matches no validation image"),
                         ({"hr_scale": 0.05}, "use a larger [val] hr_scale")):
        with pytest.raises(ConfigError) as info:
            Trainer(_config(image_folder, tmp_path, val=val), log=lambda _: None)
        assert str(info.value).startswith("[val] ") and message in str(info.value)
    assert not (tmp_path / "t").exists()


def test_a_missing_folder_is_said_to_be_missing(image_folder, tmp_path):
    """It had been "is not a folder of images", as if the folder were there without images."""
    for val, message in (({"dirs": [str(tmp_path / "nope")]}, f"[val] {tmp_path / 'nope'} does not exist"),
                         ({"dirs": [str(image_folder / "im0.png")]}, f"[val] {image_folder / 'im0.png'} is a file, not a folder")):
        with pytest.raises(ConfigError) as info:
            Trainer(_config(image_folder, tmp_path, val=val), log=lambda _: None)
        assert str(info.value).startswith(message), info.value
    with pytest.raises(SrFilterError, match=f"^training data: {re.escape(str(tmp_path / 'gone'))} does not exist$"):
        Trainer(_config(tmp_path / "gone", tmp_path, val={"dirs": []}), log=lambda _: None)


def test_a_validation_file_that_is_no_image_is_named_with_the_way_on(image_folder, tmp_path):
    """It had been Pillow's "cannot identify image file '/long/path/fake.png'" after the folder."""
    import shutil

    val = tmp_path / "val"
    shutil.copytree(image_folder, val)
    (val / "fake.png").write_text("not a picture")
    with pytest.raises(ConfigError) as info:
        Trainer(_config(image_folder, tmp_path / "out", val={"dirs": [str(val)]}), log=lambda _: None)
    assert str(info.value) == (f"[val] {val / 'fake.png'} is not a readable image (unknown or damaged format); "
                               "leave it out with [val] include")


def test_a_training_file_that_is_no_image_is_named_with_the_way_on(image_folder, tmp_path):
    """[val] and eval said how to leave such a file out; training data said nothing more."""
    import shutil

    import tomllib

    from sr_filter.training.data import PatchSampler

    train = tmp_path / "train"
    shutil.copytree(image_folder, train)
    (train / "fake[1].png").write_text("not a picture")
    with pytest.raises(DataError) as info:
        PatchSampler(_config(train, tmp_path / "out", val={"dirs": []}).data)
    assert str(info.value) == (f"{train / 'fake[1].png'} is not a readable image (unknown or damaged format); "
                               'leave it out with [data] exclude = ["fake[[]1].png"]')
    # the advice works: that pattern leaves exactly that file out
    assert len(PatchSampler(_config(train, tmp_path / "out", data={"exclude": ["fake[[]1].png"]}, val={"dirs": []}).data)) == 3
    # a name with a byte that is no text: the advice had held a \\udcff escape, which TOML reads as an error
    (train / "fake[1].png").unlink()
    (train / "odd\udcff.png").write_text("not a picture")
    with pytest.raises(DataError) as info:
        PatchSampler(_config(train, tmp_path / "out", val={"dirs": []}).data)
    line = str(info.value).rpartition("leave it out with ")[2]
    assert line == '[data] exclude = ["odd?.png"]'
    pasted = tomllib.loads(line.replace("[data] ", ""))["exclude"]
    assert len(PatchSampler(_config(train, tmp_path / "out", data={"exclude": pasted}, val={"dirs": []}).data)) == 3


def test_a_truncated_validation_image_is_found_before_the_first_iteration(image_folder, tmp_path):
    """Its header was read, not its pixels: training ran to the first validation (500 iterations
    with the shipped configs) and died there, every resume again, with eval's advice --exclude,
    which train does not have."""
    import shutil

    val = tmp_path / "val"
    shutil.copytree(image_folder, val)
    whole = next(p for p in sorted(val.iterdir()) if p.suffix == ".png").read_bytes()
    (val / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ConfigError) as info:
        Trainer(_config(image_folder, tmp_path / "out", val={"dirs": [str(val)]}), log=lambda _: None)
    message = str(info.value)
    assert message.startswith(f"[val] {val / 'cut.png'} is truncated or damaged") and "--exclude" not in message
    assert message.endswith("; leave it out with [val] include")


def test_images_too_small_after_rescaling_name_the_rescale(image_folder, tmp_path):
    """Only a smaller patch had been suggested, though the rescale factors made them small."""
    with pytest.raises(DataError, match=r"px on each side after \[data\] rescale 0.1 in .*; use a smaller \[data\] patch "
                                        r"or larger rescale factors"):
        Trainer(_config(image_folder, tmp_path, data={"rescale": [0.1]}), log=lambda _: None)
    with pytest.raises(DataError, match=r"px on each side in .*; use a smaller \[data\] patch$"):
        Trainer(_config(image_folder, tmp_path, data={"patch": 60, "rescale": [1.0, 0.1]}), log=lambda _: None)


def test_a_run_folder_that_cannot_be_made_is_one_line_naming_out_dir(image_folder, tmp_path):
    """It had been the system's bare words ("/x/runs/t: Not a directory")."""
    (tmp_path / "afile").write_text("a file, not a folder")
    trainer = Trainer(_config(image_folder, tmp_path / "afile" / "runs"), log=lambda _: None)
    with pytest.raises(ConfigError) as info:
        trainer.run(resume=False)
    assert str(info.value) == (f"cannot write to the run folder {tmp_path / 'afile' / 'runs' / 't'} (Not a directory); "
                               "set out_dir in the config to a folder you can write")


def test_the_log_says_short_windows_and_the_learning_rate_of_its_iteration(image_folder, tmp_path):
    """A stop had left the iterations since the last line unlogged, the first line after a resume
    averaged fewer iterations without saying so, and lr was the window's mean."""
    from sr_filter.training.schedule import learning_rate

    cfg = _config(image_folder, tmp_path, log_every=4, val={"dirs": []}, optim={"iterations": 6, "warmup": 5})
    Trainer(cfg, log=lambda s: None).run(resume=False, max_seconds=0)  # stops after its first iteration
    Trainer(cfg, log=lambda s: None).run(resume=True)
    lines = [json.loads(line) for line in (tmp_path / "t" / "log.jsonl").read_text().splitlines()]
    assert [(e["iter"], e.get("averaged_over")) for e in lines] == [(1, 1), (4, 3), (6, 2)]
    for entry in lines:
        assert entry["lr"] == pytest.approx(learning_rate(cfg, entry["iter"]))
    pytest.importorskip("matplotlib")
    from sr_filter.training.plot import loss_terms

    assert loss_terms(lines) == ["l1"]  # the window's length had been drawn as a loss of 1 to 3


def test_an_exclude_pattern_that_matches_nothing_is_refused(image_folder, tmp_path):
    with pytest.raises(DataError, match=r"exclude 'typo_\*' matches no training image"):
        Trainer(_config(image_folder, tmp_path, data={"exclude": ["typo_*"]}), log=lambda _: None)


def test_one_training_per_run_folder_fresh_starts_clean_and_a_time_limit_says_so(image_folder, tmp_path):
    from sr_filter.cachelock import CacheLock

    said: list[str] = []
    Trainer(_config(image_folder, tmp_path, checkpoint_every=2), log=said.append).run()
    assert (tmp_path / "t" / "iter_0000006.pt").is_file() and said[-1].startswith("done at iteration 6")
    with CacheLock(tmp_path / "t" / "training", timeout=0):
        with pytest.raises(ConfigError, match=r"is being trained by another process; wait for it, or give this run another "
                                              r"name: name = \"...\" in the config \(without one, the file's name\)"):
            Trainer(_config(image_folder, tmp_path), log=said.append).run()
    Trainer(_config(image_folder, tmp_path, optim={"iterations": 4}, checkpoint_every=4), log=said.append).run(resume=False)
    assert sorted(p.name for p in (tmp_path / "t").glob("iter_*.pt")) == ["iter_0000004.pt"]  # the old run's are gone
    Trainer(_config(image_folder, tmp_path, optim={"iterations": 10_000}), log=said.append).run(max_seconds=0.5)
    assert said[-1].startswith("stopped at iteration ") and "of 10000 (time limit); run the same command again" in said[-1]


def test_log_lines_say_how_long_the_run_has_left(image_folder, tmp_path):
    """A training run's log lines gave seconds per iteration but no estimate of when it ends."""
    said: list[str] = []
    Trainer(_config(image_folder, tmp_path, val={"dirs": []}), log=said.append).run()
    logs = [line for line in said if line.startswith("iter ")]
    assert [line.split()[1] for line in logs] == ["2", "4", "6"], said
    assert all(re.search(r"  eta \d+:\d\d:\d\d$", line) for line in logs[:2]), logs
    assert " eta " not in logs[-1]  # the last iteration: nothing left
    said.clear()
    Trainer(_config(image_folder, tmp_path, optim={"iterations": 10**9}, val={"dirs": []}), log=said.append).run(
        resume=False, max_seconds=2)
    logs = [line for line in said if line.startswith("iter ")]
    assert logs and re.search(r"  eta \d+:\d\d:\d\d \(time limit in 0:00:0[0-2]\)$", logs[0]), logs


def test_the_time_left_counts_validation_and_checkpoints(image_folder, tmp_path, monkeypatch):
    """The estimate had counted training steps alone: a run whose validation takes most of its
    time said "eta 0:00:00" with most of it still to come. Validation here takes 1.5 s, every 2
    iterations of 8 (the steps themselves take hundredths of a second)."""
    real = Trainer.validate

    def slow(self):
        time.sleep(1.5)
        return real(self)

    monkeypatch.setattr(Trainer, "validate", slow)
    said: list[str] = []
    Trainer(_config(image_folder, tmp_path, optim={"iterations": 8}, val={"every": 2}), log=said.append).run()
    at4 = next(line for line in said if line.startswith("iter 4 ") and " eta " in line)
    hours, minutes, seconds = map(int, at4.rsplit(" eta ", 1)[1].split(":"))
    assert hours * 3600 + minutes * 60 + seconds >= 2, at4  # 4 left at >= 1.5 s per 4 done, beside the steps


def test_turning_ema_on_for_a_run_without_it_starts_from_its_weights(image_folder, tmp_path):
    Trainer(_config(image_folder, tmp_path, ema=0.0, val={"dirs": []}), log=lambda _: None).run()
    said: list[str] = []
    trainer = Trainer(_config(image_folder, tmp_path, ema=0.999, optim={"iterations": 6}, val={"dirs": []}), log=said.append)
    trainer.run()
    assert any("the EMA starts from the resumed weights" in line for line in said)
    assert any(line.startswith("settings changed since the run began") and "ema: 0.0 -> 0.999" in line for line in said)
    for a, b in zip(trainer.ema.state_dict().values(), trainer.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_time_limit_under_torchrun_stops_every_rank_at_the_same_step(image_folder, tmp_path):
    cfg = _write_toml(tmp_path / "ddp.toml", "ddp", tmp_path, image_folder,
                      'arch = "edsr"\nsettings = { num_feat = 8, num_block = 1, upsampler = "subpixel" }')
    cfg.write_text(cfg.read_text().replace("iterations = 2", "iterations = 100000"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "sr_filter", "train", str(cfg), "--max-minutes", "0.03"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        pytest.fail("the ranks did not stop together within 120 s")
    assert proc.returncode == 0 and "stopped at iteration" in out, f"{out[-1000:]}\n---\n{err[-2000:]}"


# ----------------------------------------------------------------------------- what users ran into


def _endless_run(tmp_path: Path, image_folder: Path) -> tuple[Path, dict]:
    """A config that trains a tiny EDSR for a million iterations (logging every 5, no checkpoint of
    its own), and the environment to run it in a child process with."""
    cfg = _write_toml(tmp_path / "long.toml", "long", tmp_path, image_folder,
                      'arch = "edsr"\nsettings = { num_feat = 8, num_block = 1, upsampler = "subpixel" }')
    cfg.write_text(cfg.read_text().replace("iterations = 2", "iterations = 1000000") + "[loss]\nl1 = 1.0\n")
    cfg.write_text(cfg.read_text().replace('threads = 1', 'threads = 1\nlog_every = 5\ncheckpoint_every = 1000000'))
    return cfg, {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_saves_a_checkpoint_and_a_rerun_continues_from_it(image_folder, tmp_path, signum, code):
    """Ctrl-C (or a scheduler's SIGTERM) lost every iteration since the last checkpoint: with
    checkpoints every 100000 iterations, all of them."""
    cfg, env = _endless_run(tmp_path, image_folder)
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", "train", str(cfg)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    try:
        for line in proc.stdout:  # training is under way once the first log line is out
            if line.startswith("iter 10 "):
                break
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    stopped = [line for line in out.splitlines() if line.startswith("stopped at iteration")]
    assert stopped and "checkpoint saved: run the same command again to continue" in stopped[0], out
    at = int(stopped[0].split()[3])
    assert at >= 10 and torch.load(tmp_path / "long" / "latest.pt", weights_only=True)["iteration"] == at
    assert err == "", err  # no error line after a stop that lost nothing (was "stopped by SIGTERM; ... removed")
    again = Trainer(load_config(cfg), log=lambda s: None)
    again.load_checkpoint(tmp_path / "long" / "latest.pt")
    assert again.iteration == at


def test_a_closed_output_pipe_stops_with_a_checkpoint_and_says_so(image_folder, tmp_path):
    """`sr-filter train CONFIG | head -2` had ended with status 1, no word and no checkpoint."""
    cfg, env = _endless_run(tmp_path, image_folder)
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", "train", str(cfg)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("iter 10 "):
                break
        proc.stdout.close()  # as `head` does once it has its lines
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + 13, err
    assert err.startswith("sr-filter: stopped at iteration ") and "(the output pipe closed); checkpoint saved" in err, err
    assert "Traceback" not in err
    at = int(err.split()[4])
    assert at >= 10 and torch.load(tmp_path / "long" / "latest.pt", weights_only=True)["iteration"] == at


def test_resuming_past_or_beyond_a_finished_run_says_what_the_iterations_do(image_folder, tmp_path):
    """Fewer iterations than done ended at once with "done" and exit 0; more, on a finished cosine
    run, raised the learning rate from its floor without a word."""
    lines = []
    cfg = _config(image_folder, tmp_path, val={"dirs": []}, optim={"iterations": 6, "warmup": 0})
    Trainer(cfg, log=lines.append).run(resume=False)
    longer = _config(image_folder, tmp_path, val={"dirs": []}, optim={"iterations": 12, "warmup": 0})
    Trainer(longer, log=lines.append).run(resume=True, max_seconds=0)
    assert any(line.startswith("note: the run had finished its 6 iterations; with 12 its cosine schedule goes on") for line in lines), lines
    shorter = _config(image_folder, tmp_path, val={"dirs": []}, optim={"iterations": 3, "warmup": 0})
    lines.clear()
    Trainer(shorter, log=lines.append).run(resume=True)
    assert any(line.startswith("note: the run is at iteration 7, past [optim] iterations = 3: nothing is trained") for line in lines), lines


def test_settings_that_cannot_train_are_config_errors_before_the_first_iteration(image_folder, tmp_path):
    """These ran into a traceback at iteration 1 (a critic deeper than the patch, no features, one
    input channel), trained at another scale than asked, or climbed to a learning rate of 1."""
    base = {"data": {"train_dirs": ["x"]}}
    for over, words in (
        ({"optim": {"lr": 5e-4, "min_lr": 1.0}}, "min_lr 1 is above lr 0.0005"),
        ({"loss": {"l1": 1.0, "adversarial": 0.01, "critic_depth": 6}, "data": {"train_dirs": ["x"], "patch": 8, "scale": 4}},
         "critic_depth 6 needs HR patches of at least 64 px"),
        ({"sed": 2}, "unknown setting.s. in the top level: sed"),
        ({"source": "zzz"}, "unknown setting.s. in the top level: source"),
    ):
        with pytest.raises(ConfigError, match=words):
            config_from_dict({**base, **over})
    for settings, words in (
        ({"num_feat": 0}, "do not make a working edsr network that takes RGB patches"),
        ({"num_in_ch": 1}, "do not make a working edsr network that takes RGB patches"),
        ({"num_feat": "8"}, "settings num_feat must be a whole number, not '8'"),
        ({"upscale": 4}, "upscale = 4 contradicts .data. scale = 2"),
        ({"features": 8}, "edsr has no setting 'features'"),
    ):
        cfg = _config(image_folder, tmp_path, model={"arch": "edsr", "settings": {"num_block": 1, **settings}})
        with pytest.raises(ConfigError, match=words):
            Trainer(cfg, log=lambda s: None)


def test_a_loss_that_is_no_longer_a_number_stops_training(image_folder, tmp_path):
    from sr_filter.training.trainer import TrainingError

    cfg = _config(image_folder, tmp_path, optim={"lr": 1e12, "iterations": 40, "warmup": 0}, val={"dirs": []})
    with pytest.raises(TrainingError, match="the loss became (nan|inf) at iteration"):
        Trainer(cfg, log=lambda s: None).run(resume=False)
    assert not (tmp_path / "t").exists()  # a new folder of a config and an empty log had stayed
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError):
        Trainer(cfg, log=lambda s: None).run(resume=False)
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["config.json", "log.jsonl", "notes.txt"]  # not ours to empty


def test_two_validation_folders_of_one_name_are_both_measured(image_folder, tmp_path):
    import shutil

    for side in ("x2", "x4"):
        shutil.copytree(image_folder, tmp_path / side / "val")
    tr = Trainer(_config(image_folder, tmp_path, val={"dirs": [str(tmp_path / "x2" / "val"), str(tmp_path / "x4" / "val")]}),
                 log=lambda s: None)
    assert sorted(tr.validate()) == ["x2/val", "x4/val"]  # one had replaced the other
    # one folder twice: it had been measured twice and logged once, under full paths
    with pytest.raises(ConfigError, match=r"^\[val\] dirs lists .*x2/val twice; list each folder once$"):
        config_from_dict({"data": {"train_dirs": ["x2"]}, "val": {"dirs": ["x2/val", "x2/val/"]}}, base=tmp_path)


def test_checkpoints_load_their_ema_weights_and_run_files_are_named_after_the_run(image_folder, tmp_path):
    """-m latest.pt (eval, export, upscale) took the raw weights, not the EMA ones validation
    measured; every run's model.pth was named "model" in messages and exports."""
    from sr_filter.models import load_model

    lines: list[str] = []
    tr = Trainer(_config(image_folder, tmp_path, val={"dirs": []}), log=lines.append)
    tr.run(resume=False)
    x = torch.rand(1, 3, 10, 10)
    for name in ("latest.pt", "iter_0000006.pt", "model.pth"):
        loaded = load_model(str(tmp_path / "t" / name))
        with torch.no_grad():
            assert torch.equal(loaded.network(x), tr.ema.eval()(x)), name
    assert load_model(str(tmp_path / "t" / "model.pth")).name == "t"
    assert load_model(str(tmp_path / "t" / "latest.pt")).name == "t-latest"
    longer = Trainer(_config(image_folder, tmp_path, val={"dirs": []}, optim={"iterations": 8}), log=lines.append)
    longer.run(resume=True)
    assert any("optim.iterations: 6 -> 8" in line for line in lines)  # the schedule's shape changed


def test_a_trained_networks_activation_is_read_from_its_record(tmp_path):
    """ReLU and LeakyReLU have no weights, so the tensors alone cannot tell them apart: a network
    trained with act_type = "relu" was loaded with LeakyReLU (other pixels in the filter, eval
    and export). The trainer's record in the file says which."""
    from sr_filter.archs.srvgg import SRVGGNetCompact
    from sr_filter.models import load_model

    torch.manual_seed(0)
    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2, act_type="relu").eval()
    settings = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 2, "upscale": 2, "act_type": "relu"}
    torch.save({"params": net.state_dict(), "sr_filter": {"arch": "srvgg", "settings": settings}}, tmp_path / "model.pth")
    loaded = load_model(str(tmp_path / "model.pth"))
    x = torch.rand(1, 3, 12, 10) - 0.5  # negative values too: where ReLU and LeakyReLU differ
    with torch.no_grad():
        assert loaded.params["act_type"] == "relu" and torch.equal(loaded.network(x), net(x))
    torch.save({"params": net.state_dict()}, tmp_path / "bare.pth")  # no record: the shapes decide, as before
    assert load_model(str(tmp_path / "bare.pth")).params["act_type"] == "leakyrelu"


def test_models_inspect_says_the_activation_a_trained_network_loads_with(tmp_path):
    """`sr-filter models --inspect` read the settings from the shapes alone and said
    act_type=leakyrelu for a network trained (and loaded) with ReLU."""
    from sr_filter.archs.srvgg import SRVGGNetCompact
    from sr_filter.community import inspect_file

    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2, act_type="relu")
    settings = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 2, "upscale": 2, "act_type": "relu"}
    torch.save({"params": net.state_dict(), "sr_filter": {"arch": "srvgg", "settings": settings}}, tmp_path / "model.pth")
    facts = inspect_file(tmp_path / "model.pth")
    assert "act_type=relu" in facts["tags"] and facts["usable"] == "yes"


def test_a_relu_runs_checkpoints_load_with_relu_as_its_model_does(image_folder, tmp_path):
    """latest.pt and iter_N.pt keep the trainer's arch and settings at their top level, not under
    the "sr_filter" key model.pth has: a ReLU run's checkpoints loaded with LeakyReLU (4 levels
    of 255 off model.pth's pixels, and off what validation measured)."""
    from sr_filter.models import load_model

    cfg = _config(image_folder, tmp_path, val={"dirs": []}, checkpoint_every=2, optim={"iterations": 2, "warmup": 0},
                  model={"arch": "srvgg", "settings": {"num_feat": 8, "num_conv": 2, "act_type": "relu"}})
    tr = Trainer(cfg, log=lambda s: None)
    tr.run(resume=False)
    x = torch.rand(1, 3, 10, 10) - 0.5  # negative values too: where ReLU and LeakyReLU differ
    for name in ("model.pth", "latest.pt", "iter_0000002.pt"):
        loaded = load_model(str(tmp_path / "t" / name))
        with torch.no_grad():
            assert loaded.params["act_type"] == "relu", name
            assert torch.equal(loaded.network(x), tr.ema.eval()(x)), name


@pytest.fixture
def sigint_handled():
    """Ctrl-C handled as in a terminal, even where this test run was started with it ignored (a
    background job): the trainer leaves an ignored signal ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_stop_asked_for_during_the_last_iteration_still_finishes(image_folder, tmp_path, sigint_handled):
    """Ctrl-C during the last step reported a finished run as stopped ("run the same command again
    to continue", exit 130)."""
    cfg = _config(image_folder, tmp_path, val={"dirs": []})
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith(f"iter {cfg.optim.iterations} "):
            os.kill(os.getpid(), signal.SIGINT)  # the handler the run installs asks it to stop

    Trainer(cfg, log=log).run()
    assert any(line.startswith(f"done at iteration {cfg.optim.iterations}") for line in lines), lines
    assert not any("stopped" in line for line in lines), lines


def test_training_images_too_small_for_the_patch_are_named(tmp_path, caplog):
    """One image smaller than the patch among larger ones was left out without a word, even with -v."""
    from PIL import Image

    from sr_filter.training.data import PatchSampler

    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name, side in (("big.png", 96), ("small.png", 40)):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / name)
    cfg = _config(folder, tmp_path, data={"patch": 24}, val={"dirs": []})
    with caplog.at_level("WARNING", logger="sr_filter"):
        PatchSampler(cfg.data)
    assert [r.getMessage() for r in caplog.records] == ["1 training image(s) smaller than 48 px on a side are left out: small.png"]


def test_rescaled_copies_too_small_for_the_patch_are_counted_per_factor(tmp_path, caplog):
    """A copy that [data] rescale made smaller than the patch was dropped without a word when the
    image had another copy large enough (the shipped photo config lost 75 copies of T91 so)."""
    from PIL import Image

    from sr_filter.training.data import PatchSampler

    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name, side in (("big.png", 96), ("mid.png", 40), ("small.png", 20)):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / name)
    cfg = _config(folder, tmp_path, data={"patch": 12, "rescale": [1.0, 0.5, 0.2]}, val={"dirs": []})
    with caplog.at_level("WARNING", logger="sr_filter"):
        assert len(PatchSampler(cfg.data)) == 3  # big at 1.0 and 0.5, mid at 1.0
    # small.png (too small at every factor) is named once, as an image, and not counted as copies too
    assert [r.getMessage() for r in caplog.records] == [
        "1 training image(s) smaller than 24 px on a side are left out: small.png",
        "3 rescaled copies of training images smaller than 24 px on a side are left out: "
        "1 of 2 at [data] rescale 0.5, 2 of 2 at [data] rescale 0.2"]


def test_ctrl_c_while_fresh_removes_the_old_run_removes_all_of_it(image_folder, tmp_path, monkeypatch, sigint_handled):
    """A Ctrl-C that landed while --fresh removed the old run's files stopped it halfway: the
    checkpoints were gone, the old model.pth and log were left."""
    from sr_filter.training.trainer import TrainingStopped

    cfg = _config(image_folder, tmp_path, val={"dirs": []})
    Trainer(cfg, log=lambda _: None).run()
    run = tmp_path / "t"
    assert (run / "model.pth").exists() and (run / "latest.pt").exists()
    real_unlink = Path.unlink

    def unlink(self, *args, **kwargs):
        real_unlink(self, *args, **kwargs)
        if self.parent == run:
            monkeypatch.setattr(Path, "unlink", real_unlink)
            os.kill(os.getpid(), signal.SIGINT)  # at the first removal

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(TrainingStopped):
        Trainer(cfg, log=lambda _: None).run(resume=False)
    state = torch.load(run / "latest.pt", weights_only=True)
    assert state["iteration"] == 1  # every old file went; the new run stopped after one step, saved


def test_a_damaged_checkpoint_says_how_to_go_on(image_folder, tmp_path):
    """A truncated latest.pt was "cannot read checkpoint ...: [Errno 22] Invalid argument", with no way on."""
    from sr_filter.training.trainer import CheckpointError

    cfg = _config(image_folder, tmp_path, val={"dirs": []}, checkpoint_every=3)
    Trainer(cfg, log=lambda _: None).run()
    latest = tmp_path / "t" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:3000])
    with pytest.raises(CheckpointError, match=r"\(PytorchStreamReader failed [^.]*: damaged or cut short\?\); copy "
                                              r"iter_0000006.pt over it to go on from there, or start over with --fresh$"):
        Trainer(cfg, log=lambda _: None).run()


class Evil:
    """Pickled, it would create a file when loaded: the loaders must never run it."""

    def __reduce__(self):
        return (open, (os.environ.get("PYTEST_TMP_MARK", "/nonexistent/ran"), "w"))


def test_a_run_folder_without_its_latest_checkpoint_is_not_started_over(image_folder, tmp_path, monkeypatch):
    """With latest.pt gone (deleted to save space) the same command had started a new run there without
    a word, replacing model.pth, the log and the iter_*.pt checkpoints; a checkpoint holding pickled
    objects was "damaged or cut short?" (and a plain pickle added torch's warnings)."""
    import pickle
    import warnings

    from sr_filter.training.trainer import CheckpointError

    monkeypatch.setenv("PYTEST_TMP_MARK", str(tmp_path / "ran"))
    cfg = _config(image_folder, tmp_path, val={"dirs": []}, checkpoint_every=3)
    Trainer(cfg, log=lambda _: None).run()
    run = tmp_path / "t"
    model = (run / "model.pth").read_bytes()
    (run / "latest.pt").unlink()
    with pytest.raises(CheckpointError, match=r"t holds an earlier run \(iter_0000003.pt, iter_0000006.pt, model.pth\) but no "
                                              r"latest.pt to go on from; copy iter_0000006.pt to latest.pt to go on from "
                                              r"there, or start over with --fresh \(which removes them\)$"):
        Trainer(cfg, log=lambda _: None).run()
    assert (run / "model.pth").read_bytes() == model
    os.utime(run / "iter_0000003.pt")  # the older checkpoint with the newer file time (a copy, a restore): still 6 is named
    with pytest.raises(CheckpointError, match=r"copy iter_0000006.pt to latest.pt"):
        Trainer(cfg, log=lambda _: None).run()
    (run / "latest.pt").write_bytes(pickle.dumps({"model": {}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CheckpointError, match=r"latest.pt is a plain Python pickle, not a checkpoint of this program; "
                                                  r"copy iter_0000006.pt over it"):
            Trainer(cfg, log=lambda _: None).run()
    torch.save({"model": Evil()}, run / "latest.pt")
    with pytest.raises(CheckpointError, match=r"latest.pt holds pickled Python objects, which are never run here, so it is "
                                              r"no checkpoint of this program; copy iter_0000006.pt over it"):
        Trainer(cfg, log=lambda _: None).run()
    assert not (tmp_path / "ran").exists()
    (run / "latest.pt").write_bytes(bytes(range(256)) * 16)  # random bytes: damaged, not "pickled objects"
    with pytest.raises(CheckpointError, match=r"damaged or cut short\?\); copy iter_0000006.pt over it"):
        Trainer(cfg, log=lambda _: None).run()
    Trainer(cfg, log=lambda _: None).run(resume=False)  # --fresh starts over
    assert (run / "latest.pt").is_file()


def test_a_loss_network_out_of_reach_says_how_to_give_it(isolated_cache, monkeypatch):
    """No network for the VGG file: the command line had added its upscaling advice ("a built-in model
    (`sr-filter models`) runs without the network"), which no loss network has; the config's own way
    to name a copy is said instead."""
    from sr_filter.cli.messages import hint_for
    from sr_filter.cli.train import train_cmd
    from sr_filter.errors import DownloadError, NetworkUnavailableError
    from sr_filter.training.features import resolve_weights

    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", "http://127.0.0.1:1/")  # nothing listens there: connection refused
    with pytest.raises(DownloadError) as info:
        resolve_weights("vgg19")
    flags = frozenset(o for p in train_cmd.params for o in (*p.opts, *p.secondary_opts))  # as the command line sets them
    assert not isinstance(info.value, NetworkUnavailableError) and hint_for(info.value, flags=flags) is None
    assert str(info.value).endswith('; or name a copy in the config: [loss] feature_weights = "/path/to/vgg19-dcbb9e9d.pth"')
    monkeypatch.setenv("SR_FILTER_OFFLINE", "1")  # nor, offline, "choose a built-in model"
    with pytest.raises(DownloadError) as info:
        resolve_weights("vgg19")
    assert "built-in" not in str(info.value) and hint_for(info.value, flags=flags) is None, str(info.value)
    assert str(info.value).endswith(', or name a copy in the config: [loss] feature_weights = "/path/to/vgg19-dcbb9e9d.pth".')


def test_a_checkpoint_that_does_not_fit_on_the_disk_is_one_line_and_leaves_no_file(tmp_path):
    """A full disk had been an internal error ("unexpected pos ..." from torch's file writer).
    A file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes the write fail as a full disk
    does, without a small file system to fill."""
    script = textwrap.dedent(f"""
        import resource, signal, torch
        from pathlib import Path
        from sr_filter.training.trainer import CheckpointError, _atomic_save
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            _atomic_save({{"w": torch.zeros(1_000_000)}}, Path({str(tmp_path / "latest.pt")!r}))
        except CheckpointError as exc:
            print(exc)
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cannot write {tmp_path / 'latest.pt'}: File too large", result.stdout
    assert list(tmp_path.iterdir()) == []


def test_keep_checkpoints_keeps_the_newest_copies_of_this_run(image_folder, tmp_path):
    """A long run had kept every iter_*.pt (an RRDB run writes hundreds of MB each time). A copy
    numbered past the run's iteration (from a path of the run abandoned by restoring an older copy
    as latest.pt) is not the run's to remove."""
    out = tmp_path / "runs"
    cfg = _config(image_folder, out, checkpoint_every=1, keep_checkpoints=2, val={"dirs": []})
    Trainer(cfg, log=lambda _: None).run()
    assert sorted(p.name for p in (out / "t").glob("iter_*.pt")) == ["iter_0000005.pt", "iter_0000006.pt"]
    foreign = out / "t" / "iter_0000099.pt"
    foreign.write_bytes(b"another path of the run")
    cfg = _config(image_folder, out, checkpoint_every=1, keep_checkpoints=1, val={"dirs": []}, optim={"iterations": 8})
    Trainer(cfg, log=lambda _: None).run()
    assert sorted(p.name for p in (out / "t").glob("iter_*.pt")) == ["iter_0000008.pt", "iter_0000099.pt"]
    every = _config(image_folder, tmp_path / "all", checkpoint_every=2, val={"dirs": []})
    Trainer(every, log=lambda _: None).run()
    assert sorted(p.name for p in (tmp_path / "all" / "t").glob("iter_*.pt")) == [
        "iter_0000002.pt", "iter_0000004.pt", "iter_0000006.pt"]
    with pytest.raises(ConfigError, match="^keep_checkpoints must be 0 or more, not -1$"):
        _config(image_folder, out, keep_checkpoints=-1)


def test_log_lines_are_strict_json_when_validation_is_exact(image_folder, tmp_path):
    """A scale-1 network that still passes its input through unchanged measures an infinite
    PSNR: log.jsonl had held the bare word Infinity, which no strict JSON reader (jq, JavaScript)
    accepts; it says null there, as eval's --json does."""
    def strict(text: str) -> object:
        return json.loads(text, parse_constant=lambda word: pytest.fail(f"log.jsonl holds {word}"))

    cfg = _config(image_folder, tmp_path, model={"arch": "unet", "settings": {"num_feat": 4, "blocks": [1, 1]}},
                  data={"scale": 1}, optim={"lr": 1e-12, "iterations": 2, "warmup": 0, "schedule": "constant"},
                  val={"every": 1})
    lines = []
    Trainer(cfg, log=lines.append).run(resume=False)
    assert any("validation PSNR-Y" in line and line.endswith(" inf") for line in lines)
    log = [strict(line) for line in (tmp_path / "t" / "log.jsonl").read_text().splitlines()]
    assert [list(h["val"].values()) for h in log if "val" in h] == [[None], [None]]
    Trainer(cfg, log=lambda s: None).run()  # a resumed run writes the log again from its checkpoint
    log = [strict(line) for line in (tmp_path / "t" / "log.jsonl").read_text().splitlines()]
    assert [list(h["val"].values()) for h in log if "val" in h] == [[None], [None]]


def test_a_plot_of_losses_that_are_all_zero_says_nothing_on_stderr(tmp_path):
    """A scale-1 run whose network passes its input through has an l1 of 0 throughout: nothing to
    draw on the log scale, and matplotlib's "No artists with labels found" had reached stderr."""
    import warnings

    from sr_filter.training.plot import plot_history

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_history([{"iter": 1, "l1": 0.0, "total": 0.0}, {"iter": 2, "l1": 0.0, "total": 0.0},
                      {"iter": 2, "val": {"Set5": float("inf")}}], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_changed_settings_are_those_since_the_checkpoint_not_since_the_last_command(image_folder, tmp_path):
    """The note compared with config.json, which every command rewrites: one that trained nothing
    (fewer iterations than done) or was killed before its first checkpoint had made it the
    baseline, and one killed while writing it left it empty, after which no change was named."""
    lines = []
    cfg = _config(image_folder, tmp_path, val={"dirs": []}, optim={"iterations": 6, "warmup": 0})
    Trainer(cfg, log=lines.append).run(resume=False)
    shorter = _config(image_folder, tmp_path, val={"dirs": []}, optim={"iterations": 3, "warmup": 0})
    Trainer(shorter, log=lines.append).run(resume=True)  # trains nothing
    lines.clear()
    longer = _config(image_folder, tmp_path, val={"dirs": []}, optim={"iterations": 12, "warmup": 0})
    Trainer(longer, log=lines.append).run(resume=True, max_seconds=0)
    assert any("optim.iterations: 6 -> 12" in line for line in lines), lines
    assert any(line.startswith("note: the run had finished its 6 iterations; with 12") for line in lines), lines
    (tmp_path / "t" / "config.json").write_text("")  # cut short by a kill
    lines.clear()
    bigger = _config(image_folder, tmp_path, val={"dirs": []}, data={"patch": 12}, optim={"iterations": 12, "warmup": 0})
    Trainer(bigger, log=lines.append).run(resume=True, max_seconds=0)
    assert any(line.startswith("settings changed since the run began") and "data.patch: 8 -> 12" in line
               for line in lines), lines


def test_a_resume_that_cannot_write_its_files_leaves_them_whole_and_names_them(image_folder, tmp_path):
    """A full disk when a run resumed had cut config.json short (at the file size limit) and the
    command said "File too large" alone. A file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) fails
    the write as a full disk does."""
    cfg = _config(image_folder, tmp_path, val={"dirs": []}, optim={"iterations": 2, "warmup": 0})
    Trainer(cfg, log=lambda s: None).run(resume=False)
    before = {name: (tmp_path / "t" / name).read_bytes() for name in ("config.json", "log.jsonl")}
    assert len(before["config.json"]) > 1500
    script = textwrap.dedent(f"""
        import json, resource, signal
        from sr_filter.training.config import config_from_dict
        from sr_filter.training.trainer import Trainer
        from sr_filter.errors import SrFilterError
        cfg = config_from_dict({{k: v for k, v in json.loads({json.dumps(json.dumps(cfg.to_dict()))}).items() if k != "source"}})
        trainer = Trainer(cfg, log=lambda s: None)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        try:
            trainer.run()
        except SrFilterError as exc:
            print(exc)
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cannot write {tmp_path / 't' / 'config.json'}: File too large", result.stdout
    assert {name: (tmp_path / "t" / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in (tmp_path / "t").iterdir() if p.name.startswith(".")) == []


def test_a_latest_checkpoint_that_is_a_model_file_or_no_dict_says_how_to_go_on(image_folder, tmp_path):
    """model.pth copied over latest.pt had been "not a checkpoint of this experiment's edsr model;
    use another run name or out_dir" (it is this experiment's model), and a file of a list "unexpected
    AttributeError ... this is a bug in sr-filter"."""
    from sr_filter.training.trainer import CheckpointError

    cfg = _config(image_folder, tmp_path, val={"dirs": []}, checkpoint_every=3)
    Trainer(cfg, log=lambda _: None).run()
    latest = tmp_path / "t" / "latest.pt"
    latest.write_bytes((tmp_path / "t" / "model.pth").read_bytes())
    with pytest.raises(CheckpointError, match=r"latest.pt holds a model's weights alone, not a training checkpoint \(no iteration "
                                              r"or optimiser state\); copy iter_0000006.pt over it to go on from there, or start "
                                              r"over with --fresh; to start from these weights, name a copy of it in \[model\] init$"):
        Trainer(cfg, log=lambda _: None).run()
    torch.save([torch.zeros(3)], latest)
    with pytest.raises(CheckpointError, match=r"latest.pt is not a training checkpoint of this program; copy iter_0000006.pt "
                                              r"over it to go on from there, or start over with --fresh$"):
        Trainer(cfg, log=lambda _: None).run()

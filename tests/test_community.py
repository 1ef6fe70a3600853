"""Community model files through spandrel: loading, safe reading, tiling, inspection, refusals.

The networks are small and randomly initialised (tests/community_nets.py), saved as real files.
They prove that files of each family are recognised, built with the right scale and size needs,
and that tiles meet whole-image inference; they cannot prove a trained model's receptive field.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_filter.community import import_spandrel
from sr_filter.archs.srvgg import SRVGGNetCompact
from sr_filter.errors import CommunityModelError, SrFilterError, WeightsFormatError
from sr_filter.models import load_file, load_model
from sr_filter.tiling import plan_spans, round_up
from sr_filter.upscaler import Upscaler
from sr_filter.weights import load_state_dict

from .community_nets import save_random
from .conftest import ROOT, _link_conversions

BUILTIN = ROOT / "sr_filter" / "builtin" / "sr-cartoon-x4.pth"


@pytest.fixture(scope="module")
def _module_conversions(tmp_path_factory, converted_built_ins):
    folder = tmp_path_factory.mktemp("community-conversions") / "openvino"
    _link_conversions(converted_built_ins, folder)
    return folder


@pytest.fixture
def shared_conversions(isolated_cache, _module_conversions):
    """The test's cache keeps the OpenVINO conversions of this module's tests that are not about
    converting: the same random network (save_random writes the same bytes for a name and seed)
    converts once for the module, not once per test (several seconds each, SwinIR, OmniSR, HAT,
    RealCUGAN, SCUNet), as a user's later runs find it."""
    import shutil

    shutil.rmtree(isolated_cache / "openvino")
    (isolated_cache / "openvino").symlink_to(_module_conversions, target_is_directory=True)


def cli(*args):
    """The command in a bare environment, with the test's own cache (never the user's)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
           **{k: os.environ[k] for k in ("SR_FILTER_CACHE_DIR", "SR_FILTER_WEIGHTS_URL")}}
    return subprocess.run([sys.executable, "-m", "sr_filter", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.parametrize("name, multiple", [("SwinIR", 8), ("SPAN", 1), ("RealCUGAN", 4), ("RealPLKSR", 1)])
@pytest.mark.usefixtures("shared_conversions")
def test_tiled_equals_whole_image(tmp_path, name, multiple):
    path = save_random(name, tmp_path)
    model = load_file(path)
    assert model.arch.name in (name, "PLKSR") and model.params["via"] == "spandrel"
    assert model.scale == 2 and model.arch.multiple(model.params) == multiple
    x = torch.rand(1, 3, 20, 236)  # not a multiple of the attention windows: the image is padded
    pad = model.arch.context(model.params) + model.arch.blend // 2
    spans = plan_spans(round_up(236, multiple), 32, pad, multiple)
    assert len(spans) > 2 and spans[1].size < 236  # real tiles with their context, not the whole strip
    whole = Upscaler(str(path), device="cpu", precision="fp32", tile=0).run(x)
    tiled = Upscaler(str(path), device="cpu", precision="fp32", tile=32).run(x)
    assert whole.shape == (1, 3, 40, 472)
    assert (whole - tiled).abs().max() < 1 / 255


def test_safetensors_and_ckpt_load_the_same_network(tmp_path):
    pth = load_file(save_random("SPAN", tmp_path, seed=3))
    st = load_file(save_random("SPAN", tmp_path, seed=3, suffix=".safetensors"))
    ckpt = tmp_path / "lightning.ckpt"  # a training checkpoint: weights under "state_dict", plus other entries
    torch.save({"state_dict": torch.load(tmp_path / "SPAN.pth", weights_only=True)["params"], "epoch": 3}, ckpt)
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert torch.equal(pth.network(x), st.network(x))
        assert torch.equal(pth.network(x), load_file(ckpt).network(x))


def test_a_safetensors_header_whose_length_starts_like_a_pickle_is_read(tmp_path):
    """One safetensors file in 256 has a header length whose low byte is the pickle protocol's
    0x80; it was refused as "pickled Python objects"."""
    from safetensors.torch import save_file

    state = torch.load(save_random("SPAN", tmp_path, seed=3), weights_only=True)["params"]
    for pad in range(300):
        path = tmp_path / "odd.safetensors"
        save_file(state, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length ending in 0x80")
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert torch.equal(load_file(path).network(x), load_file(tmp_path / "SPAN.pth").network(x))


@pytest.mark.parametrize("name", ["OmniSR", "DAT", "SwinIR"])
@pytest.mark.usefixtures("shared_conversions")
def test_a_picture_off_the_window_grid_comes_out_as_upstreams(tmp_path, name):
    """OmniSR pads the picture to its windows with zeros and DAT pads inside its attention; mirrored
    out to the window grid first, a 71x58 picture came out up to 115/255 (OmniSR) and 33/255 (DAT)
    off spandrel's own call on random networks. Whole-image runs, as the CPU runs these."""
    spandrel = import_spandrel()
    path = save_random(name, tmp_path, seed=5)
    picture = torch.rand(1, 3, 58, 71, generator=torch.Generator().manual_seed(2))
    descriptor = spandrel.ModelLoader().load_from_file(path)
    with torch.inference_mode():
        upstream = descriptor(picture).clamp(0, 1)
    for backend in ("torch", "auto"):  # auto: OpenVINO, where it converts the network (not DAT)
        ours = Upscaler(str(path), device="cpu", tile=0, backend=backend).run(picture.numpy())
        assert ours.shape == tuple(upstream.shape) and np.abs(ours - upstream.numpy()).max() * 255 < 1, (name, backend)


@pytest.mark.parametrize("name", ["SwinIR", "HAT"])
@pytest.mark.usefixtures("shared_conversions")
def test_a_picture_smaller_than_the_window_is_padded_as_upstream_pads_it(tmp_path, name):
    """spandrel mirrors each side as far as it can and repeats the edge for the rest; both sides had
    been edge-repeated as soon as one was too short to mirror, and a 20x7 picture came out up to
    122/255 off spandrel's own call (a 7x3 one 151/255)."""
    spandrel = import_spandrel()
    path = save_random(name, tmp_path, seed=3)
    descriptor = spandrel.ModelLoader().load_from_file(path)
    ups = {backend: Upscaler(str(path), device="cpu", tile=0, backend=backend) for backend in ("torch", "auto")}
    for height, width in ((3, 7), (7, 20), (20, 12)):
        picture = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
        with torch.inference_mode():
            upstream = descriptor(picture).clamp(0, 1)
        for backend, upscaler in ups.items():
            ours = upscaler.run(picture.numpy())
            assert np.abs(ours - upstream.numpy()).max() * 255 < 1, (name, height, width, backend)
    up = ups["torch"]
    frames = [(np.random.default_rng(i).random((3, 7, 3)) * 255).astype(np.uint8) for i in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(up.upscale_batch(frames), map(up.upscale_array, frames)))


def test_a_network_whose_call_takes_one_picture_runs_a_batch(tmp_path):
    """spandrel's DRUNet call builds its noise map for one picture: a video's batch of frames through
    the torch backend had failed ("Sizes of tensors must match ...")."""
    model = load_file(save_random("DRUNet", tmp_path, seed=1))
    frames = torch.rand(2, 3, 24, 32, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        together = model.network(frames)
        alone = torch.cat([model.network(frames[i : i + 1]) for i in range(2)])
    assert torch.allclose(together, alone, atol=1e-6)
    assert load_file(save_random("SPAN", tmp_path, seed=1)).network._call is None  # spandrel's plain call: batched


def test_our_own_architectures_come_first():
    model = load_file(BUILTIN)
    assert model.arch.name == "srvgg" and "via" not in model.params


def test_no_pickled_code_runs(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"params": Evil()}))
    with pytest.raises(WeightsFormatError, match="plain Python pickle .*pickled objects are never run here"):
        load_file(path)
    assert not marker.exists()


def test_truncated_safetensors_is_one_clear_line(tmp_path):
    path = save_random("SPAN", tmp_path, suffix=".safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFormatError, match="not a complete safetensors file"):
        load_file(path)


def test_classifier_is_refused(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 10))
    path = tmp_path / "classifier.pth"
    torch.save(net.state_dict(), path)
    with pytest.raises(CommunityModelError, match="classifier.pth: not a known super-resolution architecture"):
        load_file(path)


@pytest.mark.parametrize("name, width", [("DnCNN", 300), ("DRUNet", 300), ("SCUNet", 192)])
@pytest.mark.usefixtures("shared_conversions")
def test_one_x_restoration_models_run_at_the_images_size_and_tile_exactly(tmp_path, name, width):
    """Denoising and de-JPEG networks (1x) run like any model: the output keeps the input's size,
    and tiles (on the architecture's grid, with its measured context) meet the whole image.
    (SCUNet's context, 64 on its 64 px grid, makes every window as wide as the picture up to
    320 px: 192 px, three 64 px tiles, proves what 300 px did, at a third of the work.)"""
    path = save_random(name, tmp_path)
    model = load_file(path)
    assert model.scale == 1 and model.params["via"] == "spandrel"
    x = torch.rand(1, 3, 20, width)
    whole = Upscaler(str(path), device="cpu", precision="fp32", tile=0).run(x)
    tiled = Upscaler(str(path), device="cpu", precision="fp32", tile=64).run(x)
    assert whole.shape == (1, 3, 20, width)
    assert (whole - tiled).abs().max() < 1 / 255


def test_one_x_models_refuse_another_size_whoever_built_them(tmp_path):
    """A 1x model where x4 (or any other size) is asked is one clear line, for a community file
    and for one of our own architectures alike; without a scale both give the input's size."""
    own = tmp_path / "own_1x.pth"
    torch.manual_seed(0)
    torch.save({"params": SRVGGNetCompact(num_feat=8, num_conv=2, upscale=1).state_dict()}, own)
    image = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    for path in (save_random("DnCNN", tmp_path), own):
        upscaler = Upscaler(str(path), device="cpu", precision="fp32")
        assert upscaler.upscale_array(image).shape == image.shape
        assert upscaler.upscale_array(image, scale=1).shape == image.shape
        for scale in (4, 2, 0.5):
            with pytest.raises(SrFilterError, match=r"is a 1x model: .* does not give x%g" % scale):
                upscaler.upscale_array(image, scale=scale)
    source = tmp_path / "in.png"
    Image.fromarray(image).save(source)
    ok = cli(source, "--model", own, "-o", tmp_path / "same.png")
    assert ok.returncode == 0 and Image.open(tmp_path / "same.png").size == (16, 12), ok.stderr
    for args in (("--scale", "4"), ("--width", "64")):
        out = cli(source, "--model", tmp_path / "DnCNN.pth", *args, "-o", tmp_path / "x.png")
        assert out.returncode != 0 and not (tmp_path / "x.png").exists()
        lines = [line for line in out.stderr.strip().splitlines() if not line.startswith("sr-filter: using ")]
        assert len(lines) == 1 and "DnCNN.pth is a 1x model" in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_a_grey_model_whose_network_cannot_run_grey_is_refused_at_load(tmp_path):
    """spandrel's SPAN takes one channel but subtracts an RGB mean inside: refused at load in one
    line, not on every window later."""
    import_spandrel()
    from spandrel.architectures.SPAN import SPAN

    path = tmp_path / "grey.pth"
    torch.save(SPAN(num_in_ch=1, num_out_ch=1, feature_channels=8, upscale=2).state_dict(), path)
    with pytest.raises(CommunityModelError, match="grey.pth is a 1-channel SPAN model whose network does not run on 1-channel"):
        load_file(path)


def test_spandrel_import_leaves_no_placeholder_torchvision():
    code = (
        "import sys; from sr_filter.community import import_spandrel; import_spandrel(); "
        "tv = sys.modules.get('torchvision'); print(tv is None or hasattr(tv, '__file__'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)},
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


@pytest.mark.usefixtures("shared_conversions")
def test_cli_inspect_and_upscale_with_a_community_file(tmp_path):
    from click.testing import CliRunner

    from sr_filter.cli import cli as command

    path = save_random("OmniSR", tmp_path)
    out = CliRunner().invoke(command, ["models", "--inspect", str(path), "--json"])
    assert out.exit_code == 0, out.output
    facts = json.loads(out.stdout)
    assert facts["arch"] == "OmniSR" and facts["scale"] == 2 and facts["size_multiple"] == 8
    assert facts["via"].startswith("spandrel") and facts["usable"] == "yes" and facts["params"] > 1000
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(image)
    out = CliRunner().invoke(command, [str(image), "--model", str(path), "--tile", "32", "-o", str(tmp_path / "out.png")])
    assert out.exit_code == 0, out.output
    assert Image.open(tmp_path / "out.png").size == (60, 40)


def test_cli_bad_files_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    for args in (("models", "--inspect", bad), (image, "--model", bad, "-o", tmp_path / "o.png")):
        out = cli(*args)
        assert out.returncode != 0
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "broken.safetensors" in lines[0] and "Traceback" not in out.stderr, out.stderr


@pytest.mark.usefixtures("shared_conversions")
def test_whole_image_architecture_warns_and_tiles_closely(tmp_path, caplog):
    # OmniSR's grid attention mixes the whole image: no context makes tiles exact, so tiling says
    # so (once), and the tiled result stays close (measured 3.3/255 on this random network)
    path = save_random("OmniSR", tmp_path)
    model = load_file(path)
    assert model.facts.whole_image and model.arch.multiple(model.params) == 8
    x = torch.rand(1, 3, 16, 200)
    with caplog.at_level("WARNING"):
        whole = Upscaler(str(path), device="cpu", precision="fp32", tile=0).run(x)
        assert "mixes the whole picture" not in caplog.text  # it had warned at every load
        tiled_up = Upscaler(str(path), device="cpu", precision="fp32", tile=32)
        tiled = tiled_up.run(x)
        tiled_up.run(x)
    assert caplog.text.count("mixes the whole picture") == 1
    assert "a 200x16 picture is tiled here in 32 px tiles, as asked; tile 0 runs it whole" in caplog.text
    assert 0 < (whole - tiled).abs().max() < 8 / 255
    caplog.clear()
    with caplog.at_level("WARNING"):  # automatic tiles on the CPU: the whole picture while memory allows
        auto = Upscaler(str(path), device="cpu", precision="fp32", backend="torch").run(torch.rand(1, 3, 16, 400))
    assert auto.shape[-1] == 400 * model.scale and "mixes the whole picture" not in caplog.text


def test_whole_image_architecture_runs_whole_on_the_cpu_while_half_the_free_memory_holds_it(tmp_path, caplog, monkeypatch):
    """A 256x256 picture had been tiled "to fit in memory" with 23 GB free: the CPU budget was at
    most 2 GiB, as for tiles that change nothing. Free memory is set here (the test machine's
    varies): 16 GiB holds a 256x256 picture by the estimate, 1 GiB does not, and the message then
    gives the numbers and the picture's own size (250x240, not the padded 256x240)."""
    path = save_random("OmniSR", tmp_path)
    up = Upscaler(str(path), device="cpu", precision="fp32", backend="torch")
    monkeypatch.setattr("sr_filter.upscaler.free_memory", lambda device: 16 << 30)
    assert up._tile_for(256, 256) == 0
    monkeypatch.setattr("sr_filter.upscaler.free_memory", lambda device: 1 << 30)
    with caplog.at_level("INFO"):
        out = up.run(torch.rand(1, 3, 240, 250))
    assert out.shape[-2:] == (240 * up.scale, 250 * up.scale)
    assert "automatic tiles: " in caplog.text and "px for a 250x240 picture" in caplog.text
    assert ("a 250x240 picture is tiled here to fit in memory (whole, it would need about 2.3 GiB by the estimate for "
            "this architecture, more than half of the 1.0 GiB free); tile 0 runs it whole anyway") in caplog.text


@pytest.mark.parametrize("arch", ["HAT", "DAT", "RCAN", "RealCUGAN"])
def test_channel_attention_over_the_whole_picture_is_known(arch, tmp_path):
    """Their channel attention averages each feature over the picture, so tiles change it
    (RCAN: 17/255 with strong attention); they had been tiled without a word."""
    assert load_file(save_random(arch, tmp_path)).facts.whole_image


def test_a_network_that_cannot_run_in_bf16_runs_in_fp32_with_one_warning(tmp_path, caplog):
    """SwinIR builds an fp32 attention mask for sizes other than its img_size, which a bf16
    network cannot multiply: fp32 from then on, said once, the same pixels as an fp32 run."""
    path = save_random("SwinIR", tmp_path)
    image = (np.random.default_rng(0).random((24, 72, 3)) * 255).astype(np.uint8)
    with caplog.at_level("WARNING"):
        up = Upscaler(str(path), device="cpu", backend="torch", precision="bf16", tile=32)
        assert up.backend.precision == "fp32" and "in fp32" in up.describe()  # known before the work is announced
        out = up.upscale_array(image)
    said = [r.getMessage() for r in caplog.records if "does not run in bf16" in r.getMessage()]
    assert len(said) == 1 and up.backend.precision == "fp32"
    expected = Upscaler(str(path), device="cpu", backend="torch", precision="fp32", tile=32).upscale_array(image)
    assert np.array_equal(out, expected)


def test_a_probe_failure_that_fp32_shares_keeps_the_reduced_precision():
    """The probe at start switched to fp32 on any error; a network that refuses the probe's size
    (a size check of its own, in every precision) had been run in fp32 for nothing."""
    import torch

    from sr_filter.backends.pytorch import TorchBackend
    from sr_filter.models import LoadedModel, load_model

    class SquareOnly(torch.nn.Module):  # the probe is not square
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] != x.shape[-2]:
                raise RuntimeError("this network takes square pictures")
            return self.net(x)

    real = load_model("sr-cartoon-x4")
    model = LoadedModel(SquareOnly(real.network), real.arch, real.params, real.scale, real.name, real.path, real.entry)
    backend = TorchBackend(model, torch.device("cpu"), torch.bfloat16)
    assert backend.precision == "bf16" and backend.dtype == torch.bfloat16
    assert backend._net_fp32 is None  # the fp32 copy made to try the probe is not held for the whole run
    assert backend.run(np.zeros((1, 3, 16, 16), np.float32)).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("wrap", [lambda sd: {"net": sd}, lambda sd: {"params-ema": sd},
                                  lambda sd: {"model_state_dict": sd, "epoch": 1}, lambda sd: {"weights": sd}])
def test_checkpoint_containers_that_training_code_writes_are_unwrapped(tmp_path, wrap):
    state = torch.load(save_random("SPAN", tmp_path, seed=3), weights_only=True)["params"]
    path = tmp_path / "wrapped.pth"
    torch.save(wrap(state), path)
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert torch.equal(load_file(path).network(x), load_file(tmp_path / "SPAN.pth").network(x))


def test_the_format_is_told_by_the_bytes_not_the_name(tmp_path):
    """A safetensors file named .pth, a PyTorch file named .safetensors: both load."""
    st = save_random("SPAN", tmp_path, seed=3, suffix=".safetensors")
    pth = save_random("SPAN", tmp_path, seed=3)
    swapped_st, swapped_pth = tmp_path / "a.pth", tmp_path / "b.safetensors"
    swapped_st.write_bytes(st.read_bytes())
    swapped_pth.write_bytes(pth.read_bytes())
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        expected = load_file(pth).network(x)
        assert torch.equal(load_file(swapped_st).network(x), expected)
        assert torch.equal(load_file(swapped_pth).network(x), expected)


def _renamed_in_pickle(path: Path, old: bytes, new: bytes) -> Path:
    """A copy of a torch.save file whose pickle names ``new`` where it named ``old``."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
        for info in source.infolist():
            data = source.read(info.filename)
            copy.writestr(info, data.replace(old, new) if info.filename.endswith("data.pkl") else data)
    renamed = path.with_name("renamed-" + path.name)
    renamed.write_bytes(out.getvalue())
    return renamed


def test_files_that_are_not_weights_say_what_they_are(tmp_path, monkeypatch):
    script = torch.jit.script(torch.nn.Conv2d(3, 3, 3))
    script.save(str(tmp_path / "scripted.pt"))
    whole = tmp_path / "whole.pth"
    torch.save(torch.nn.Conv2d(3, 3, 3), whole)  # a whole pickled module, not a state dict
    (tmp_path / "notes.pth").write_text("see the release page")
    (tmp_path / "folder.pth").mkdir()
    for name, words in (("scripted.pt", "is a TorchScript program"),
                        ("whole.pth", r"holds pickled Python objects \(torch.nn.modules.conv.Conv2d\), which are never run"),
                        ("notes.pth", "is a text file, not model weights"), ("folder.pth", "is a folder, not a weights file")):
        with pytest.raises(WeightsFormatError, match=words):
            load_file(tmp_path / name)
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    out = cli(image, "--model", tmp_path / "whole.pth", "-o", tmp_path / "o.png")
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "Warning" not in out.stderr, out.stderr
    inspected = cli("models", "--inspect", tmp_path / "notes.pth")
    assert inspected.returncode == 1 and "--inspect" not in inspected.stderr and inspected.stderr.count("\n") == 1
    import zipfile

    with zipfile.ZipFile(tmp_path / "notes.zip.pth", "w") as archive:  # had been "([enforce fail at inline_container.cc:180] )"
        archive.writestr("readme.txt", "hello")
    with pytest.raises(WeightsFormatError, match=r"^notes.zip.pth is a zip archive but not one torch.save wrote \(it holds "
                                                 r"no pickled tensors\), not model weights$"):
        load_file(tmp_path / "notes.zip.pth")
    from click.testing import CliRunner

    from sr_filter.cli.models import models

    (tmp_path / "folder").mkdir()  # a bare name that is a folder here: --inspect had said "unknown model or preset", listing every name
    monkeypatch.chdir(tmp_path)
    inspected = CliRunner().invoke(models, ["--inspect", "folder"])
    assert inspected.exit_code == 1 and "folder is a folder here, and no model or preset has that name" in inspected.output
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(64))  # protobuf: "is not a PyTorch file, not model weights"
    with pytest.raises(WeightsFormatError, match=r"model.onnx is an ONNX model, which is not read here; give the PyTorch "
                                                 r"weights it was made from \(.pth, .pt, .ckpt or .safetensors\)$"):
        load_file(tmp_path / "model.onnx")
    # a training checkpoint's numpy numbers beside the weights are read (the file had been refused as pickled objects),
    # written by numpy 2 or, named numpy.core, by numpy 1
    network = torch.nn.Conv2d(3, 3, 3)
    torch.save({"params_ema": network.state_dict(), "epoch": np.int64(5), "best": np.float32(0.3)}, tmp_path / "ckpt.pth")
    assert torch.equal(load_state_dict(tmp_path / "ckpt.pth", None)["weight"], network.weight.detach())
    old_numpy = _renamed_in_pickle(tmp_path / "ckpt.pth", b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert torch.equal(load_state_dict(old_numpy, None)["weight"], network.weight.detach())
    # numbers only: a structured (void) value is refused with what it is. A crafted file had described
    # an object field in such a value's dtype state, and numpy's own dtype and scalar then turned the
    # file's bytes into a pointer (a crash on reading it); the stand-ins never build a numpy dtype from
    # a file's state, and make Python numbers of plain number types alone
    torch.save({"params_ema": network.state_dict(), "x": np.void(b"12345678")}, tmp_path / "void.pth")
    with pytest.raises(WeightsFormatError, match=r"holds pickled Python objects \(a numpy value that is not a plain number\)"):
        load_state_dict(tmp_path / "void.pth", None)
    import pickle
    import struct

    from sr_filter.weights import _pickled_scalar, _PickledDtype

    for spec, state in (("V8", (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 0)),  # the crafted file's
                        ("i8", (3, "<", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 0)), ("O", (3, "|", None, None, None, -1, -1, 63))):
        crafted = _PickledDtype(spec)
        crafted.__setstate__(state)
        with pytest.raises(pickle.UnpicklingError):
            _pickled_scalar(crafted, struct.pack("<Q", 0x4141414141414141))
    number = _PickledDtype("i8")
    number.__setstate__((3, "<", None, None, None, -1, -1, 0))
    assert _pickled_scalar(number, struct.pack("<q", -5)) == -5
    # torch before 2.6 has no stand-ins for numpy's names: such a checkpoint is refused, the plain weights load
    from sr_filter import weights as weights_module

    monkeypatch.setattr(torch, "__version__", "2.4.1")
    with pytest.raises(WeightsFormatError, match="holds pickled Python objects"):
        load_state_dict(tmp_path / "ckpt.pth", None)
    torch.save(network.state_dict(), tmp_path / "plain.pth")
    assert torch.equal(weights_module.load_state_dict(tmp_path / "plain.pth", None)["weight"], network.weight.detach())
    os.mkfifo(tmp_path / "pipe.pth")  # a device or a pipe had been "does not exist"
    for special in (tmp_path / "pipe.pth", Path("/dev/null")):
        with pytest.raises(WeightsFormatError, match=r"is not a regular file \(a device or pipe\), not a weights file$"):
            load_file(special)


def test_checkpoints_with_numpy_numbers_load_in_several_threads_at_once(tmp_path):
    """torch allows the numpy stand-ins for the whole process; the first of several loads in threads
    to finish had taken them away from the others, and a good checkpoint was refused at random."""
    import threading

    network = torch.nn.Conv2d(3, 3, 3)
    torch.save({"params_ema": network.state_dict(), "epoch": np.int64(5), "best": np.float64(31.2)}, tmp_path / "ckpt.pth")
    start, failures = threading.Barrier(4), []

    def load() -> None:
        start.wait()
        for _ in range(8):
            try:
                load_state_dict(tmp_path / "ckpt.pth", None)
            except WeightsFormatError as exc:
                failures.append(str(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.parametrize("shape", [(10, 10), (2, 40)])
@pytest.mark.usefixtures("shared_conversions")
def test_images_below_the_minimum_size_run_in_every_backend(tmp_path, monkeypatch, shape):
    """Real-CUGAN pads inputs below 32 px in its own code, which a converted (OpenVINO) graph does
    not keep: the windows are padded before the backend, so both backends give the same picture."""
    pytest.importorskip("openvino")
    path = save_random("RealCUGAN", tmp_path)
    image = (np.random.default_rng(1).random(shape + (3,)) * 255).astype(np.uint8)
    outs = [Upscaler(str(path), device="cpu", backend=b, tile=0).upscale_array(image) for b in ("torch", "openvino")]
    assert outs[0].shape == outs[1].shape == (shape[0] * 2, shape[1] * 2, 3)
    assert int(np.abs(outs[0].astype(int) - outs[1].astype(int)).max()) <= 1


def test_inspect_takes_a_model_name_on_this_machine(tmp_path):
    out = cli("models", "--inspect", "sr-photo-x4", "--json")
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    assert facts["arch"] == "edsr" and facts["scale"] == 4 and facts["file"].endswith("sr-photo-x4.pth")
    assert facts["manifest"].startswith("sr-photo-x4@") and ", licence " in facts["manifest"]  # which model the file is
    missing = cli("models", "--inspect", tmp_path / "nothing.pth")
    assert missing.returncode == 1 and "does not exist" in missing.stderr and missing.stderr.count("\n") == 1
    twice = cli("models", "--inspect", "sr-photo-x4", "--inspect", "sr-cartoon-x4")  # the first had been left out
    assert twice.returncode == 2 and twice.stderr.strip().endswith("give one --inspect at a time"), twice.stderr


def test_names_win_over_bare_files_of_the_same_name_and_empty_names_are_refused(tmp_path):
    """A folder called `photo` or a stray file called `sr-photo-x4` in the working folder does not
    hide the preset or the model; `./sr-photo-x4` still names the file."""
    (tmp_path / "photo").mkdir()
    (tmp_path / "sr-photo-x4").write_text("notes")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "SR_FILTER_OFFLINE": "1",
           "SR_FILTER_CACHE_DIR": str(tmp_path / "cache")}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "sr_filter", *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=600)

    for name in ("sr-photo-x4", "sr-cartoon-x4"):
        out = run("models", "--inspect", name, "--json")
        assert out.returncode == 0 and json.loads(out.stdout)["file"].endswith(f"{name}.pth"), out.stderr
    file = run("models", "--inspect", "./sr-photo-x4")
    assert file.returncode == 1 and "is a text file, not model weights" in file.stderr, file.stderr
    empty = run("models", "--inspect", "")
    assert empty.returncode == 2 and "give a weights file or a model name" in empty.stderr and ". is a folder" not in empty.stderr


def test_a_truncated_pth_file_says_so_in_a_whole_sentence(tmp_path):
    path = tmp_path / "cut.pth"
    for size in (300_000, 30_000):  # cut short of its first tensor, torch says "Invalid argument"
        path.write_bytes(BUILTIN.read_bytes()[:size])
        with pytest.raises(WeightsFormatError) as info:
            load_file(path)
        message = str(info.value)
        assert message.startswith("cut.pth is truncated or damaged (") and message.endswith("; download or copy it again")
        assert "If you are seeing this error" not in message


def test_dat_runs_with_torch_under_auto_and_a_failed_conversion_is_said_once(tmp_path, caplog, isolated_cache):
    """OpenVINO's converter crashed the whole process on DAT files (a segmentation fault, exit 139);
    a model that does not convert was converted again, for seconds, on every run, without a word."""
    import logging

    from sr_filter.errors import BackendError

    path = save_random("DAT", tmp_path)
    with caplog.at_level(logging.INFO, logger="sr_filter"):
        first = Upscaler(str(path), device="cpu")
    assert first.backend.name == "torch"
    said = [r for r in caplog.records if "not converted to OpenVINO" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING]
    assert list((isolated_cache / "openvino").glob("*.failed"))  # remembered
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sr_filter"):
        assert Upscaler(str(path), device="cpu").backend.name == "torch"
    assert all(r.levelno < logging.WARNING for r in caplog.records)  # said once
    with pytest.raises(BackendError, match="not converted to OpenVINO: OpenVINO's converter crashes on DAT"):
        Upscaler(str(path), device="cpu", backend="openvino")


def test_a_network_that_fails_on_its_input_is_one_line(tmp_path):
    """A file whose settings build a network that cannot run (DAT with embed_dim 12 makes a
    convolution with no output channels) ended in the network's traceback."""
    from sr_filter.community import import_spandrel
    from sr_filter.errors import ModelRunError

    import_spandrel()
    from spandrel.architectures.DAT import DAT

    torch.manual_seed(0)
    net = DAT(embed_dim=12, depth=[2], num_heads=[2], split_size=[4, 8], upscale=2, img_size=32)
    torch.save({"params": net.state_dict()}, tmp_path / "bad_dat.pth")
    image = np.zeros((40, 48, 3), np.uint8)
    with pytest.raises(ModelRunError, match=r"bad_dat fails on a \d+x\d+ window \(Given groups=1") as info:
        Upscaler(str(tmp_path / "bad_dat.pth"), device="cpu").upscale(image)
    assert "\n" not in str(info.value)


def test_grey_community_models_run_plane_by_plane(tmp_path):
    """Grey (1-channel) files, as many manga models are, had been refused ("only RGB models"),
    though sr_filter's own grey networks run each plane of a picture in turn."""
    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(in_nc=1, out_nc=1, num_filters=16, num_blocks=1, scale=2).eval()
    path = tmp_path / "grey.pth"
    torch.save(net.state_dict(), path)
    rgb = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    for backend in ("torch", "openvino"):
        up = Upscaler(str(path), device="cpu", backend=backend, tile=32)
        out, grey = up.upscale_array(rgb), up.upscale_array(rgb[..., 0])
        assert out.shape == (74, 106, 3) and grey.shape == (74, 106)
        with torch.no_grad():
            whole = net(torch.from_numpy(rgb[..., 0] / 255.0).float()[None, None]).clamp(0, 1)[0, 0].numpy()
        assert np.abs(grey / 255.0 - whole).max() <= 1 / 255 and np.array_equal(out[..., 0], grey)
    odd = tmp_path / "odd.pth"
    torch.save(ESRGAN(in_nc=1, out_nc=3, num_filters=16, num_blocks=1, scale=2).state_dict(), odd)
    with pytest.raises(CommunityModelError, match="takes 1 and gives 3 channels; supported are grey"):
        load_file(odd)


def test_a_lightning_checkpoint_with_prefixed_keys_loads(tmp_path):
    """Every key under "model." in Lightning's state_dict had been "not a known architecture",
    while the same weights loaded from every other wrapper."""
    plain = save_random("SPAN", tmp_path)
    state = torch.load(plain, weights_only=True)["params"]
    lightning = tmp_path / "span.ckpt"
    torch.save({"epoch": 3, "state_dict": {f"model.{k}": v for k, v in state.items()}}, lightning)
    x = torch.rand(1, 3, 24, 20)
    want = Upscaler(str(plain), device="cpu", backend="torch", tile=0).run(x)
    got = Upscaler(str(lightning), device="cpu", backend="torch", tile=0).run(x)
    assert torch.equal(want, got)


def test_inspect_tries_what_spandrel_claims():
    """spandrel says SwinIR runs in bf16, but its fp32 attention mask stops it: --inspect had
    printed the claim (and a grey SPAN as usable, though it cannot run grey pictures)."""
    import tempfile
    from pathlib import Path

    from sr_filter.community import inspect_file

    with tempfile.TemporaryDirectory() as folder:
        assert inspect_file(save_random("SwinIR", Path(folder)))["bf16"] is False
        assert inspect_file(save_random("SPAN", Path(folder)))["bf16"] is True
        import_spandrel()
        from spandrel.architectures.SPAN import SPAN

        grey = Path(folder) / "grey.pth"
        torch.save(SPAN(num_in_ch=1, num_out_ch=1, feature_channels=8, upscale=2).state_dict(), grey)
        assert inspect_file(grey)["usable"].startswith("no: grey.pth is a 1-channel SPAN model whose network does not run")
        # 3 in, 1 out at x2 had read as 3 out at x1: "usable: yes", then torch's size mismatch at every run;
        # it reads as what it is, and is refused as the upscale refuses it (other channel layouts)
        odd = Path(folder) / "odd.pth"
        torch.save(SRVGGNetCompact(num_in_ch=3, num_out_ch=1, num_feat=8, num_conv=2, upscale=2).state_dict(), odd)
        assert inspect_file(odd)["usable"] == ("no: odd.pth: a model with 3 input and 1 output channels cannot upscale "
                                               "images; supported are 1 (grey), 3 (RGB) or 4 (RGBA) channels, as many out as in")
        with pytest.raises(WeightsFormatError, match="a model with 3 input and 1 output channels cannot upscale images"):
            load_file(odd)
        assert inspect_file(save_random("SPAN", Path(folder)))["usable"] == "yes"
        plain = Path(folder) / "plain.pth"
        torch.save(SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2).state_dict(), plain)
        assert inspect_file(plain)["usable"] == "yes"


@pytest.mark.parametrize("name", ["SwinIR", "DRUNet", "HAT"])
@pytest.mark.usefixtures("shared_conversions")
def test_frames_in_a_batch_come_out_as_alone_on_openvino(tmp_path, name):
    """A converted network can hold its traced example's batch of one as a constant: in a batch
    of frames (videos pass 2 at a time) SwinIR's and HAT's came out other than alone (SwinIR up to
    3 levels off) and DRUNet's failed. OpenVINO now takes each picture of a batch in its own inference."""
    path = save_random(name, tmp_path)
    openvino = Upscaler(str(path), device="cpu", backend="openvino", tile=0)
    torch_up = Upscaler(str(path), device="cpu", backend="torch", tile=0)
    multiple = int(torch_up.model.arch.multiple(torch_up.model.params))
    h, w = (-(-edge // multiple) * multiple for edge in (32, 48))  # the sizes the network takes (SCUNet: 64)
    frames = np.random.default_rng(5).random((3, 3, h, w), dtype=np.float32)
    together = openvino.backend.run(frames)
    alone = np.concatenate([openvino.backend.run(frames[i : i + 1]) for i in range(3)])
    assert np.array_equal(together, alone)
    with torch.inference_mode():  # one at a time: DRUNet's own forward takes one picture
        reference = np.concatenate([torch_up.model.network(torch.from_numpy(frames[i : i + 1])).clamp(0, 1).numpy()
                                    for i in range(3)])
    assert np.abs(together - reference).max() * 255 < 1


def test_swin_networks_trained_at_the_trace_size_convert_and_export(tmp_path, monkeypatch):
    """SwinIR releases trained on 64 px patches (SwinIR-M/S s64w8) keep a precomputed attention
    mask for 64 px, which a trace at 64 baked into the OpenVINO graph: it failed at every other
    size, so they never ran with OpenVINO ("Reshape ... failed", said as "later runs skip the
    conversion" though the next run converted again); a 128 px one did not export to ONNX
    (traced at 128). The trace now takes a size the network keeps no mask for."""
    pytest.importorskip("openvino")
    from sr_filter.community import import_spandrel
    from sr_filter.export import export_onnx
    from sr_filter.models import load_model

    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path / "cache"))
    import_spandrel()
    from spandrel.architectures.SwinIR import SwinIR

    image = (np.random.default_rng(0).random((30, 44, 3)) * 255).astype(np.uint8)
    for size in (64, 128):
        torch.manual_seed(0)
        net = SwinIR(embed_dim=24, depths=[2], num_heads=[2], window_size=8, upscale=2, upsampler="pixelshuffledirect",
                     img_size=size, mlp_ratio=2.0)
        path = tmp_path / f"swinir{size}.pth"
        torch.save({"params": net.state_dict()}, path)
        outs = [Upscaler(str(path), device="cpu", backend=b, tile=0).upscale_array(image) for b in ("torch", "openvino")]
        assert int(np.abs(outs[0].astype(int) - outs[1].astype(int)).max()) <= 1, size
        assert export_onnx(load_model(str(path)), tmp_path / f"swinir{size}.onnx").is_file()  # (checked in onnxruntime)
    from sr_filter.facts import trace_edge

    class Net(torch.nn.Module):  # input_resolution as SCUNet keeps it (one int), and as a torch.Size
        def __init__(self, *sizes):
            super().__init__()
            self.blocks = torch.nn.ModuleList(torch.nn.Identity() for _ in sizes)
            for block, resolution in zip(self.blocks, sizes):
                block.input_resolution = resolution

    assert trace_edge(Net(64), 8) == 72 and trace_edge(Net(64, torch.Size([72, 72])), 8) == 80  # (an int had been a TypeError)
    assert trace_edge(Net(64), 64, 40) == 128 and trace_edge(Net(None, "64"), 8) == 64


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_weights_with_nan_or_inf_are_refused_as_damaged_at_load(tmp_path, monkeypatch, bad):
    """A file with a NaN (or infinite) weight was "usable: yes"; running it blamed the OpenVINO
    conversion first ("differs from the torch network by nan/255", remembered as a failed
    conversion), then the weights. An attention mask's -inf (not a weight) stays allowed."""
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path / "cache"))
    path = save_random("SPAN", tmp_path)
    state = torch.load(path, weights_only=True)["params"]
    name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 4)
    state[name].view(-1)[0] = bad
    for suffix in (".pth", ".safetensors"):
        damaged = tmp_path / f"damaged{suffix}"
        if suffix == ".pth":
            torch.save({"params": state}, damaged)
        else:
            from safetensors.torch import save_file

            save_file(state, str(damaged))
        with pytest.raises(WeightsFormatError, match=rf"^damaged{suffix} holds NaN or infinite values \({name}\): the "
                                                     "weights are damaged"):
            load_model(str(damaged))
    out = cli("models", "--inspect", str(tmp_path / "damaged.pth"))
    assert out.returncode == 1 and "holds NaN or infinite values" in out.stderr and not list((tmp_path / "cache").rglob("*.failed"))


def test_an_x8_esrgan_in_real_esrgans_key_layout_runs_through_spandrel(tmp_path):
    """Real-ESRGAN's RRDBNet keys with a third upsampling convolution are an x8 ESRGAN, which
    spandrel loads; our x1/x2/x4 RRDBNet claimed the file and refused it ("Unexpected key(s):
    conv_up3"), and --inspect called it x4."""
    from sr_filter.community import inspect_file

    torch.manual_seed(0)
    state = {}

    def conv(name, out_ch, in_ch):
        state[f"{name}.weight"], state[f"{name}.bias"] = torch.randn(out_ch, in_ch, 3, 3) * 0.02, torch.zeros(out_ch)

    feat, grow = 16, 32  # spandrel reads ESRGAN's growth as 32
    conv("conv_first", feat, 3)
    for r in (1, 2, 3):
        for c in range(1, 6):
            conv(f"body.0.rdb{r}.conv{c}", feat if c == 5 else grow, feat + (c - 1) * grow)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_up3", "conv_hr"):
        conv(name, feat, feat)
    conv("conv_last", 3, feat)
    path = tmp_path / "esrgan_x8.pth"
    torch.save({"params_ema": state}, path)
    assert inspect_file(path)["scale"] == 8
    picture = (np.random.default_rng(0).random((12, 10, 3)) * 255).astype(np.uint8)
    out = Upscaler(str(path), device="cpu", backend="torch", tile=0).upscale(picture)
    desc = import_spandrel().ModelLoader().load_from_state_dict(state)
    with torch.no_grad():
        theirs = desc(torch.from_numpy(picture / 255.0).float().permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert out.shape == (96, 80, 3) and np.abs(out / 255.0 - theirs).max() <= 1 / 255


def test_an_rrdbnet_file_with_3_channels_in_and_1_out_is_refused_for_its_channels(tmp_path):
    """3 in and 1 out had been read as a grey x2 model (3 divides by 1) and refused with a raw
    size mismatch; it is x4, 3 -> 1, and said so."""
    from sr_filter.archs.rrdbnet import RRDBNet
    from sr_filter.community import inspect_file

    path = tmp_path / "rrdb_3to1.pth"
    torch.save(RRDBNet(num_in_ch=3, num_out_ch=1, scale=4, num_feat=16, num_block=1, num_grow_ch=8).state_dict(), path)
    facts = inspect_file(path)
    assert (facts["scale"], facts["input_channels"], facts["output_channels"]) == (4, 3, 1)
    with pytest.raises(SrFilterError, match=r"3 input and 1 output channels"):
        load_file(path)

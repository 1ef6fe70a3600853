"""The core's contract at its edges: bad API values, models with 1 or 4 channels or scale 1, the
backend choice, scale warnings, and progress/cancelling on the CPU with automatic tiles."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sr_filter
from sr_filter import CancelledError, SrFilterError, Upscaler
from sr_filter.archs.srvgg import SRVGGNetCompact
from sr_filter.backends import make_backend
from sr_filter.backends.pytorch import TorchBackend
from sr_filter.errors import BackendError, DeviceError, ImageFormatError, WeightsFormatError


@pytest.fixture(scope="module")
def photo(set5):
    return np.asarray(Image.open(set5 / "bird.png").convert("RGB"))[:40, :48].copy()


def _save(tmp_path: Path, name: str, channels: int, upscale: int) -> Path:
    torch.manual_seed(channels * 10 + upscale)
    net = SRVGGNetCompact(num_in_ch=channels, num_out_ch=channels, num_feat=8, num_conv=2, upscale=upscale)
    path = tmp_path / name
    torch.save(net.state_dict(), path)
    return path


# -- API values (issue 13.15) ------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0, 0.0, -0.0, float("nan"), "2", True])
def test_bad_scales_are_errors_not_the_default(photo, scale):
    up = Upscaler("sr-cartoon-x4", tile=0)
    with pytest.raises(SrFilterError, match="scale"):
        up.upscale(photo, scale=scale)


def test_path_model_is_a_path(photo):
    path = Path(sr_filter.__file__).parent / "builtin" / "sr-cartoon-x4.pth"
    out = sr_filter.upscale(photo, model=path, tile=0)
    assert out.shape == (160, 192, 3)
    assert Upscaler(path).model.path == path


@pytest.mark.parametrize(
    "kwargs,match",
    [({"tile": None}, "tile"), ({"tile": float("nan")}, "tile"), ({"tile": 7.5}, "tile"), ({"device": 123}, "device"),
     ({"batch": "x"}, "batch"), ({"batch": 0}, "batch"), ({"backend": "tensorrt"}, "backend"), ({"model": 5}, "model")],
)
def test_bad_settings_are_clear_errors(kwargs, match):
    model = kwargs.pop("model", "sr-cartoon-x4")
    with pytest.raises(SrFilterError, match=match):
        Upscaler(model, **kwargs)


def test_truncated_lazy_pil_image_is_an_image_error(tmp_path, photo):
    path = tmp_path / "cut.png"
    Image.fromarray(photo).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with Image.open(path) as image:  # opening reads only the header; the damage shows on load
        with pytest.raises(ImageFormatError, match="cannot read the image"):
            sr_filter.upscale(image, model="sr-cartoon-x4")


def test_device_variable_is_named_when_it_made_the_request(monkeypatch):
    monkeypatch.setenv("SR_FILTER_DEVICE", "cuda")  # no CUDA on this machine
    with pytest.raises(DeviceError) as info:
        Upscaler("sr-cartoon-x4")
    assert "SR_FILTER_DEVICE" in str(info.value) and "--device" not in str(info.value)
    monkeypatch.setenv("SR_FILTER_DEVICE", "cuda:x")  # a misspelling, said as one (it had been "no CUDA GPU")
    with pytest.raises(DeviceError, match=r"^SR_FILTER_DEVICE=cuda:x: 'cuda:x' is not a device name; use auto, cpu"):
        Upscaler("sr-cartoon-x4")
    monkeypatch.setenv("SR_FILTER_DEVICE", "cpu")
    assert Upscaler("sr-cartoon-x4").device.type == "cpu"


# -- scale below the model's (issue 12) -----------------------------------------------------------


def test_scale_below_one_warns_what_happens(photo, caplog):
    up = Upscaler("sr-cartoon-x4", tile=0)
    with caplog.at_level(logging.INFO, logger="sr_filter"):
        out = up.upscale(photo, scale=0.5)
    assert out.shape == (20, 24, 3)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("scale 0.5 is below the model's x4: the x4 result is resized down" in r.getMessage() for r in warned)


# -- models with other channel counts or scale 1 (issue 13.5) -----------------------------------------


def test_grey_model_runs_on_grey_and_on_colour_images(tmp_path, photo):
    """A 1-channel model upscales a grey image directly and each plane of a colour image."""
    up = Upscaler(str(_save(tmp_path, "grey.pth", 1, 2)), tile=0)
    grey = photo.mean(axis=2).round().astype(np.uint8)
    out_grey = up.upscale(grey)
    assert out_grey.shape == (80, 96)
    out_rgb = up.upscale(photo)
    assert out_rgb.shape == (80, 96, 3)
    for c in range(3):  # each colour plane is that plane run alone
        assert np.abs(out_rgb[..., c].astype(int) - up.upscale(photo[..., c]).astype(int)).max() <= 1
    tiled = Upscaler(str(tmp_path / "grey.pth"), tile=32).upscale(photo)
    assert np.abs(tiled.astype(int) - out_rgb.astype(int)).max() <= 1
    alpha = (np.indices(photo.shape[:2]).sum(0) % 2 * 255).astype(np.uint8)  # sharp all over: the network's (softalpha)
    out_rgba = up.upscale(np.dstack([photo, alpha]))  # alpha runs once, as a grey image
    assert out_rgba.shape == (80, 96, 4)
    assert np.abs(out_rgba[..., 3].astype(int) - up.upscale(alpha).astype(int)).max() <= 1


def test_rgba_model_takes_alpha_with_the_colour(tmp_path, photo):
    up = Upscaler(str(_save(tmp_path, "rgba.pth", 4, 2)), tile=0)
    alpha = (np.indices(photo.shape[:2]).sum(0) % 2 * 255).astype(np.uint8)[..., None]  # sharp: the network's alpha
    rgba = np.concatenate([photo, alpha], axis=2)
    out = up.upscale(rgba)
    x = rgba.transpose(2, 0, 1)[None].astype(np.float32) / 255
    x[:, :3] = sr_filter.convert.bleed_transparent(x[:, :3], x[:, 3:])
    expected = (up.model(torch.from_numpy(x))[0].permute(1, 2, 0).numpy() * 255).round()
    assert out.shape == (80, 96, 4) and np.abs(out.astype(int) - expected).max() <= 1
    out_rgb = up.upscale(photo)  # no alpha: the model sees an opaque one
    x = np.concatenate([x[:, :3], np.ones_like(x[:, :1])], 1)
    x[:, :3] = photo.transpose(2, 0, 1)[None].astype(np.float32) / 255
    expected = (up.model(torch.from_numpy(x))[0, :3].permute(1, 2, 0).numpy() * 255).round()
    assert out_rgb.shape == (80, 96, 3) and np.abs(out_rgb.astype(int) - expected).max() <= 1


def test_unsupported_channel_counts_are_refused_at_load(tmp_path):
    with pytest.raises(WeightsFormatError, match="2 input and 2 output channels"):
        Upscaler(str(_save(tmp_path, "two.pth", 2, 2)))


def test_x1_model_keeps_the_size_and_refuses_others(tmp_path, photo):
    up = Upscaler(str(_save(tmp_path, "one.pth", 3, 1)), tile=0)
    assert up.scale == 1 and up.upscale(photo).shape == photo.shape
    with pytest.raises(SrFilterError, match="one.pth is a 1x model"):
        up.upscale(photo, scale=2)


# -- backends --------------------------------------------------------------------------------------


def test_backend_choice():
    up = Upscaler("sr-cartoon-x4", backend="torch")
    assert isinstance(up.backend, TorchBackend) and up.backend.precision == "fp32"
    assert "with torch" in up.describe()
    with pytest.raises(BackendError, match="CPU"):  # OpenVINO runs on the CPU only
        make_backend("openvino", up.model, torch.device("meta"), torch.float32)
    with pytest.raises(BackendError, match="fp32 or bf16"):
        make_backend("openvino", up.model, torch.device("cpu"), torch.float16)
    assert make_backend("torch", up.model, torch.device("cpu"), torch.bfloat16).precision == "bf16"


def test_auto_backend_without_openvino_takes_torch_and_says_why(monkeypatch, caplog):
    """OpenVINO cannot be uninstalled here, so its module is made unimportable (as without it)."""
    monkeypatch.setitem(sys.modules, "sr_filter.backends.openvino", None)
    with caplog.at_level(logging.INFO, logger="sr_filter"):
        up = Upscaler("sr-cartoon-x4", device="cpu", backend="auto")
    assert up.backend.name == "torch"
    assert any(r.levelno == logging.INFO and "backend: torch, because" in r.getMessage() for r in caplog.records)
    with pytest.raises(BackendError, match="install"):
        Upscaler("sr-cartoon-x4", device="cpu", backend="openvino")


def test_torch_backend_keeps_the_window_contract(photo):
    up = Upscaler("sr-cartoon-x4", backend="torch")
    batch = torch.rand(2, 3, 24, 20).numpy()
    out = up.backend.run(batch)
    assert isinstance(out, np.ndarray)  # a host array, like the CPU tensor before
    assert out.shape == (2, 3, 96, 80) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and not np.shares_memory(out, batch)
    assert np.allclose(out, up.model(torch.from_numpy(batch)).numpy(), atol=1e-5)


# -- progress on the CPU with automatic tiles (issues 12 and 15) ---------------------------------------


def test_auto_tiles_on_the_cpu_give_progress_and_cancel_early(set5):
    """A real photo and model, tile=auto on the CPU: several windows, so the first progress comes
    after one window, and a callback that returns False at once stops after that window. (The
    cartoon model's automatic CPU tile is 256 px, so a 512 px photo is four windows of a cheap
    network; sr-photo-x4's is 512 px, a 1024 px picture and ten times the work for one window.)"""
    image = np.asarray(Image.open(set5 / "baby.png").convert("RGB"))  # 512x512
    up = Upscaler("sr-cartoon-x4", device="cpu")
    assert 0 < up._tile_for(*image.shape[:2]) < max(image.shape[:2])
    calls = []
    run = up.backend.run
    up.backend.run = lambda batch: calls.append(batch.shape) or run(batch)
    with pytest.raises(CancelledError):
        up.upscale(image, progress=lambda done, total: False)
    assert len(calls) == 1


def test_model_giving_nan_is_one_error_without_numpy_warnings(tmp_path, photo, recwarn):
    """Damaged weights that give NaN in fp32: one clear error. Before, NaN reached the integer
    cast in the row sink (numpy RuntimeWarnings naming tiling.py) and a black or NaN picture came out.
    (Weights that hold NaN themselves are refused at load: these overflow to infinities, whose
    differences are NaN.)"""
    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2)
    with torch.no_grad():
        net.body[0].weight.fill_(1e38)
        net.body[2].weight.uniform_(-1e38, 1e38)
    torch.save(net.state_dict(), tmp_path / "nan.pth")
    up = Upscaler(str(tmp_path / "nan.pth"), tile=32)
    for dtype in (np.uint8, np.float32):
        with pytest.raises(WeightsFormatError, match="NaN"):
            up.upscale(photo.astype(dtype) / (255 if dtype == np.float32 else 1))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_device_for_rank_is_pick_device_with_the_rank(monkeypatch):
    """The trainer's device choice is the library's: CPU stays CPU whatever the rank, a CUDA
    request on a machine without CUDA is the same DeviceError as for inference."""
    from sr_filter.device import device_for_rank

    monkeypatch.delenv("SR_FILTER_DEVICE", raising=False)
    assert device_for_rank("cpu", 3) == torch.device("cpu")
    assert device_for_rank("auto", 0).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            device_for_rank("cuda", 0)


def test_the_device_names_torch_gives_are_taken(monkeypatch):
    """torch.device("cpu", 0) (str: "cpu:0"), as the type hint allows, and "mps:0", the device of a
    tensor on the Apple GPU, had been "unknown device"."""
    from sr_filter.device import cpu_only, pick_device

    monkeypatch.delenv("SR_FILTER_DEVICE", raising=False)
    for device in (torch.device("cpu", 0), "cpu:0", "CPU:2"):
        assert pick_device(device) == torch.device("cpu")
        up = Upscaler("sr-cartoon-x4", device=device, tile=0)
        assert up.device == torch.device("cpu") and up.upscale(np.zeros((4, 4, 3), np.uint8)).shape == (16, 16, 3)
    assert cpu_only("cpu:0")
    monkeypatch.setenv("SR_FILTER_DEVICE", " CPU:0")
    assert pick_device("auto") == torch.device("cpu")
    assert cpu_only("auto")  # the CPU for sure, run without torch where converted (it had loaded torch)
    monkeypatch.delenv("SR_FILTER_DEVICE")
    if torch.backends.mps.is_available():
        assert pick_device("mps:0") == torch.device("mps")
    else:  # the mps request itself, not an unknown name
        with pytest.raises(DeviceError, match="no usable Apple MPS device"):
            pick_device("mps:0")
    with pytest.raises(DeviceError, match="unknown device 'mps:1'"):
        pick_device("mps:1")

"""The Python API on real images with the built-in cartoon weights."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import sr_filter
from sr_filter import CancelledError, SrFilterError, Upscaler, imageio
from sr_filter.errors import ImageFormatError

from .conftest import ROOT, UPSTREAM, require_shared
from .imagefiles import heic
from .reference import spandrel


@pytest.fixture(scope="module")
def cartoon():
    """The cartoon preset's model by its own name: the published pixels (the preset adds the colour fix)."""
    return Upscaler("realesr-animevideov3", tile=0)


@pytest.fixture(scope="module")
def baby(set5):
    return np.asarray(Image.open(set5 / "baby.png").convert("RGB"))[:72, :88].copy()


def test_pil_in_pil_out(set5):
    image = Image.open(set5 / "head.png").crop((0, 0, 60, 50))
    out = sr_filter.upscale(image, preset="cartoon")
    assert isinstance(out, Image.Image) and out.size == (240, 200) and out.mode == "RGB"


def test_pil_grey_modes_come_back_in_their_own_mode(cartoon):
    """Mode "I" (32-bit grey) came back as "I;16"; the values are 16-bit either way."""
    grey = np.arange(64, dtype=np.int32).reshape(8, 8) * 900
    for image in (Image.fromarray(grey), Image.fromarray(grey.astype(np.uint16))):
        out = cartoon.upscale(image)
        assert out.mode == image.mode and out.size == (32, 32), image.mode
    assert np.array_equal(np.asarray(cartoon.upscale(Image.fromarray(grey))), cartoon.upscale(grey.astype(np.uint16)))


def _keyed_art(bits: int) -> tuple[bytes, np.ndarray]:
    """Line art as a grey PNG of ``bits`` bits with a colour key: (the file, where it is transparent)."""
    from .test_io_hardening import _low_grey_png

    top = (1 << bits) - 1
    values = np.zeros((16, 16), np.uint8)
    values[:, 8:] = top
    values[4:12, 2:6] = top // 2  # a grey mark on the black half (1 bit: none); the white half is keyed
    return _low_grey_png(values, bits, top), values == top  # key 3 or 15: Pillow's pixels are 255 there


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_depth_grey_png_keeps_its_transparency(cartoon, bits, tmp_path):
    """A 1-, 2- or 4-bit grey PNG with a colour key (oxipng's line art on transparency) comes out
    transparent where it is, through a PIL image and through upscale_file: it had come out opaque
    (mode L, or LA with alpha 255 everywhere)."""
    data, hidden = _keyed_art(bits)
    assert hidden[:, 8:].all() and not hidden[:, :8].any()
    (tmp_path / "art.png").write_bytes(data)
    out = np.asarray(cartoon.upscale(Image.open(tmp_path / "art.png")))
    assert out.shape == (64, 64, 2)
    assert np.all(out[:, 36:, 1] == 0) and np.all(out[:, :28, 1] == 255)  # away from the edge between the halves
    sr_filter.upscale_file(tmp_path / "art.png", tmp_path / "out.png", upscaler=cartoon)
    written = Image.open(tmp_path / "out.png")
    assert written.mode == "LA" and np.array_equal(np.asarray(written)[..., 1], out[..., 1])


def test_pil_16bit_grey_with_a_colour_key_comes_back_transparent(cartoon, tmp_path, caplog):
    """Pillow opens a 16-bit grey PNG with tRNS as I;16 with info["transparency"]; the key had been
    dropped without a word. It comes back as 8-bit LA (Pillow has no 16-bit grey + alpha mode), the
    same pixels as upscale_file's 16-bit grey + alpha rounded to 8 bits, with a warning naming upscale_file."""
    import logging

    grey = (np.add.outer(np.arange(16), np.arange(16)) * 1500 + 6000).astype(np.uint16)
    grey[:, 10:] = 5000
    Image.fromarray(grey).save(tmp_path / "g16key.png", transparency=5000)
    image = Image.open(tmp_path / "g16key.png")
    assert image.mode == "I;16" and image.info["transparency"] == 5000
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        out = cartoon.upscale(image)
    assert out.mode == "LA" and out.size == (64, 64)
    assert "upscale_file" in caplog.text and "8-bit" in caplog.text
    alpha = np.asarray(out)[..., 1]
    assert np.all(alpha[:, 44:] == 0) and np.all(alpha[:, :36] == 255)
    sr_filter.upscale_file(tmp_path / "g16key.png", tmp_path / "out.png", upscaler=cartoon)
    deep = imageio.read_image(tmp_path / "out.png")[0]
    assert deep.dtype == np.uint16 and deep.shape == (64, 64, 2)
    assert np.array_equal(np.asarray(out), ((deep.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8))


def test_pil_colour_profile_is_kept(set5):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.open(set5 / "head.png").crop((0, 0, 30, 20))
    image.info["icc_profile"] = profile
    out = sr_filter.upscale(image, preset="cartoon")
    assert out.info["icc_profile"] == profile
    cmyk = image.convert("CMYK")  # no profile: plain conversion, no profile invented
    assert "icc_profile" not in sr_filter.upscale(cmyk, preset="cartoon").info


def test_pil_orientation_exif_dpi_and_xmp_are_carried(cartoon, baby, tmp_path):
    """A phone photo (orientation 6) keeps its tag, so it still shows upright; EXIF sizes and DPI
    follow the new size (the pixels are not turned: the same geometry comes back, larger)."""
    from PIL import ImageOps

    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Camera Maker"
    path = tmp_path / "phone.jpg"
    xmp = b'<x:xmpmeta>kept <rdf:Description exif:PixelXDimension="88" tiff:XResolution="72/1"/></x:xmpmeta>'
    Image.fromarray(baby).save(path, exif=exif.tobytes(), dpi=(72, 72), xmp=xmp, quality=95)
    image = Image.open(path)
    out = cartoon.upscale(image)
    assert out.size == (4 * 88, 4 * 72) and ImageOps.exif_transpose(out).size == (4 * 72, 4 * 88)
    assert out.getexif().get(0x0112) == 6 and out.getexif().get(0x010F) == "Camera Maker"
    assert out.info["dpi"] == pytest.approx((288, 288)) and b"kept" in out.info["xmp"]
    # the XMP's sizes and resolution the output's too, as the EXIF's (they had stayed the input's)
    assert b'exif:PixelXDimension="352"' in out.info["xmp"] and b'tiff:XResolution="288/1"' in out.info["xmp"]
    no_resolution = tmp_path / "plain.tif"
    Image.fromarray(baby).save(no_resolution)
    assert "dpi" not in cartoon.upscale(Image.open(no_resolution)).info  # Pillow's 1x1 is not a resolution


def test_matches_reference_implementation_end_to_end(cartoon, baby):
    """uint8 in, uint8 out through the whole pipeline: within 1 level of spandrel's output."""
    sp = spandrel()
    reference = sp.ModelLoader().load_from_file(str(require_shared(UPSTREAM / "realesr-animevideov3.pth"))).model.eval()
    x = torch.from_numpy(baby).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        expected = (reference(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round()
    ours = cartoon.upscale(baby)
    assert ours.shape == (288, 352, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize(
    "shape,dtype",
    [((40, 50), np.uint8), ((40, 50, 1), np.uint8), ((40, 50, 2), np.uint8), ((40, 50, 3), np.uint16),
     ((40, 50, 4), np.uint8), ((40, 50, 4), np.uint16), ((40, 50, 3), np.float32)],
)
def test_layouts_and_dtypes_round_trip(cartoon, baby, shape, dtype):
    rgb = baby[:40, :50].astype(np.float32) / 255
    grey = rgb.mean(axis=2, keepdims=True)
    alpha = np.linspace(0, 1, 50, dtype=np.float32)[None, :, None].repeat(40, 0)
    planes = {1: grey, 2: np.concatenate([grey, alpha], 2), 3: rgb, 4: np.concatenate([rgb, alpha], 2)}
    data = planes[shape[2] if len(shape) == 3 else 1]
    if len(shape) == 2:
        data = data[:, :, 0]
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    array = (data * top).round().astype(dtype) if dtype != np.float32 else data
    out = cartoon.upscale(array)
    assert out.dtype == dtype and out.shape == (160, 200) + tuple(shape[2:])
    assert out.min() >= 0 and out.max() <= top
    # the same pixels through the float path: integer outputs are that result rounded (bounds
    # alone cannot fail for unsigned types)
    ref = cartoon.upscale(array.astype(np.float32) / np.float32(top))
    assert ref.dtype == np.float32 and ref.min() >= 0 and ref.max() <= 1
    assert np.abs(out.astype(np.float64) / top - ref).max() <= 0.5 / top + 1e-6
    if dtype == np.uint16:
        assert len(np.unique(out)) > 256  # kept at 16 bits, not squashed to 8
    if len(shape) == 3 and shape[2] in (2, 4):
        # alpha is upscaled smoothly: the ramp stays a ramp
        assert abs(float(out[..., -1].astype(np.float64).mean()) / top - 0.5) < 0.02


def test_other_scales(cartoon, baby):
    assert cartoon.upscale(baby, scale=2).shape == (144, 176, 3)
    assert cartoon.upscale(baby, scale=1.5).shape == (108, 132, 3)
    assert cartoon.upscale(baby, scale=3).shape == (216, 264, 3)
    small = baby[:20, :24]
    assert cartoon.upscale(small, scale=8).shape == (160, 192, 3)  # two passes of the x4 model
    # halves round up, as GIMP and most image tools do: 31 x 1.5 = 46.5 gives 47 (was 46)
    assert cartoon.upscale(baby[:31, :33], scale=1.5).shape == (47, 50, 3)


def test_a_scale_just_above_the_models_runs_it_once(cartoon):
    """--width 401 on a 200 px image with an x2 model ran the network twice (x4, then shrunk): five
    times the work for a 0.25% larger picture. Up to 10% above the model's scale: once, then enlarged."""
    from sr_filter.sizing import network_passes

    assert [network_passes(s, 2) for s in (0.5, 1, 2, 2.005, 2.2, 2.21, 4, 4.4, 4.5, 8)] == [1, 1, 1, 1, 1, 2, 2, 2, 3, 3]
    assert [network_passes(s, 4) for s in (3, 4, 4.4, 4.5, 16, 17.6)] == [1, 1, 1, 2, 2, 2]
    calls = []
    original = cartoon.run_into  # every pass of the network goes through it (run too)
    cartoon.run_into = lambda x, out, progress=None: calls.append(x.shape) or original(x, out, progress)
    try:
        assert cartoon.upscale(np.zeros((10, 12, 3), np.uint8), scale=4.2).shape == (42, 50, 3)
        assert cartoon.upscale(np.zeros((10, 12, 3), np.uint8), scale=8).shape == (80, 96, 3)
    finally:
        del cartoon.run_into
    assert calls == [(1, 3, 10, 12), (1, 3, 10, 12), (1, 3, 40, 48)]


def test_x2_model_by_path(baby):
    up = Upscaler(str(require_shared(UPSTREAM / "RealESRGANv2-animevideo-xsx2.pth")))
    assert up.scale == 2 and up.upscale(baby).shape == (144, 176, 3)


def test_a_path_object_names_a_file_even_where_a_preset_has_its_name(tmp_path, monkeypatch):
    """Upscaler(Path("cartoon")) ran the cartoon preset (x4, colour fix on), not the weights file
    named cartoon in the working folder: a pathlib.Path is a file by its type."""
    import shutil
    from pathlib import Path

    shutil.copy(require_shared(UPSTREAM / "RealESRGANv2-animevideo-xsx2.pth"), tmp_path / "cartoon")
    monkeypatch.chdir(tmp_path)
    up = Upscaler(Path("cartoon"), backend="torch")
    assert up.scale == 2 and Path(up.model.path).resolve() == tmp_path / "cartoon" and not up.colour_fix
    assert Upscaler("cartoon", backend="torch").scale == 4  # the name as a string stays the preset


def test_tiled_equals_whole_image(baby):
    whole = Upscaler("cartoon", tile=0).upscale(baby)
    tiled = Upscaler("cartoon", tile=32).upscale(baby)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_progress_and_cancel(baby):
    up = Upscaler("cartoon", tile=32)
    seen = []
    up.upscale(baby, progress=lambda d, t: seen.append((d, t)))
    assert len(seen) >= 4 and seen[-1][0] == seen[-1][1]
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    with pytest.raises(CancelledError):
        up.upscale(baby, progress=lambda d, t: False)


def test_reduced_precision_nan_falls_back_to_fp32(baby, tmp_path):
    """fp16 NaN/Inf recovery with a real network that overflows in fp16 (the built-in cartoon
    model with its activations scaled by 2^17: the same pixels in fp32, Inf in fp16). The API
    refuses fp16 on the CPU, where it is slow, so the backend is made by hand; torch's CPU
    kernels overflow in fp16 as a GPU's do."""
    from sr_filter.backends.pytorch import TorchBackend

    from .weightfiles import fp16_overflowing

    weights = fp16_overflowing(ROOT / "sr_filter" / "builtin" / "sr-cartoon-x4.pth", tmp_path / "big.pth")
    expected = Upscaler("sr-cartoon-x4", precision="fp32", tile=48, backend="torch").upscale(baby)
    up = Upscaler(str(weights), precision="fp32", tile=48, backend="torch")
    assert np.array_equal(up.upscale(baby), expected)  # fp32: bit for bit the built-in model
    up.backend = TorchBackend(up.model, torch.device("cpu"), torch.float16)
    probe = torch.rand(1, 3, 16, 16, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    assert not bool(torch.isfinite(up.backend.net(probe)).all())
    out = up.upscale(baby)
    assert up.fallbacks >= 1  # every window overflows, each re-run in fp32
    assert np.array_equal(out, expected)


def test_bad_inputs_are_clear_errors(cartoon):
    with pytest.raises(SrFilterError, match="HxWxC"):
        cartoon.upscale(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(SrFilterError, match=r"empty \(width 4, height 0\)"):
        cartoon.upscale(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(SrFilterError, match="unsupported pixel type"):
        cartoon.upscale(np.zeros((4, 4, 3), np.int64))
    with pytest.raises(SrFilterError, match="scale"):
        cartoon.upscale(np.zeros((4, 4, 3), np.uint8), scale=-1)
    with pytest.raises(SrFilterError, match="tile"):
        Upscaler("cartoon", tile=5)
    with pytest.raises(SrFilterError, match="unknown model or preset"):
        Upscaler("nope")
    with pytest.raises(SrFilterError, match="no CUDA GPU"):
        Upscaler("cartoon", device="cuda")
    with pytest.raises(SrFilterError, match="fp16 is not supported on the CPU"):
        Upscaler("cartoon", device="cpu", precision="fp16")


def test_a_dst_with_a_trailing_slash_that_is_no_folder_is_said_so(tmp_path, monkeypatch):
    """upscale_file(src, "small.png/") had said "dst small.png/ is a folder; name the output file, e.g.
    small.png/in.png", of a folder that does not exist (the slash was likely a slip)."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 6)).save("in.png")
    Image.new("RGB", (8, 6)).save("old.png")
    for dst, words in (
            ("small.png/", "dst small.png/ ends with '/', which names a folder, and there is no folder small.png; "
                           "for the file small.png, leave out the '/'"),
            ("new/", "dst new/ ends with '/', which names a folder, and there is no folder new; name the output file, "
                     "e.g. new/in.png"),
            ("old.png/", "dst old.png/ ends with '/', which names a folder, but old.png is a file; leave out the '/' to "
                         "replace that file (overwrite=True)"),
            ("in.png/", "dst in.png/ ends with '/', which names a folder, but in.png is the input file; name the output "
                        "file, e.g. in_upscaled.png")):
        with pytest.raises(SrFilterError, match=f"^{re.escape(words)}$"):
            sr_filter.upscale_file("in.png", dst, model="sr-cartoon-x4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "old.png"]


def test_a_dst_without_an_extension_is_not_answered_with_a_folder(tmp_path, monkeypatch):
    """upscale_file(src, "out") had said "use an extension such as .png (or out/ for a folder)", the
    command line's advice: upscale_file writes one file, and "out/" is then refused as a folder."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 6)).save("in.png")
    words = "cannot tell the output format from 'out'; use an extension such as .png or name the format"
    with pytest.raises(ImageFormatError, match=f"^{re.escape(words)}$"):
        sr_filter.upscale_file("in.png", "out", model="sr-cartoon-x4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_a_format_name_is_taken_as_a_device_name_is(tmp_path):
    """format=" JPG" (a value read from a file) had been "unknown format ' JPG'" where device=" CPU"
    was the CPU."""
    Image.new("RGB", (8, 6)).save(tmp_path / "in.png")
    written = sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "out", model="sr-cartoon-x4", format=" JPG\n")
    assert Image.open(written).format == "JPEG"


def test_a_quality_for_a_lossless_output_is_said_to_change_nothing(tmp_path, caplog):
    """upscale_file(src, "out.png", quality=50) had written the PNG without a word, where the
    command line says that --quality changes nothing for PNG."""
    Image.new("RGB", (8, 6)).save(tmp_path / "in.png")
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "out.png", model="sr-cartoon-x4", quality=50)
        sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "out.jpg", model="sr-cartoon-x4", quality=50)
    said = [r.getMessage() for r in caplog.records if "quality" in r.getMessage()]
    assert said == ["quality is for JPEG, WebP and AVIF output; PNG has no quality setting, so it changes nothing"]
    # an animation's too: quality=50 for a GIF had changed nothing without a word
    frames = [Image.new("RGB", (8, 6), (40 * i, 90, 200)) for i in range(2)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        sr_filter.upscale_animation(tmp_path / "a.gif", tmp_path / "b.gif", model="sr-cartoon-x4", quality=50)
        sr_filter.upscale_animation(tmp_path / "a.gif", tmp_path / "b.webp", model="sr-cartoon-x4", quality=50)
    said = [r.getMessage() for r in caplog.records if "quality" in r.getMessage()]
    assert said == ["quality is for JPEG, WebP and AVIF output; GIF has no quality setting, so it changes nothing"]


def test_a_file_where_an_output_folder_would_be_made_is_named(tmp_path, monkeypatch):
    """upscale_file(src, "a.png/sub/x.png") had said "cannot create output folder a.png/sub: Not a
    directory", where "a.png/x.png" says "a.png is a file, not a folder"."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 6)).save("a.png")
    for dst in ("a.png/x.png", "a.png/sub/deeper/x.png"):
        with pytest.raises(ImageFormatError, match=r"^a\.png is a file, not a folder; choose another output path$"):
            sr_filter.upscale_file("a.png", dst, model="sr-cartoon-x4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_a_masked_array_is_refused_rather_than_its_mask_dropped(cartoon):
    """A numpy masked array had been upscaled as its data, the masked pixels' values coming back as
    if they were picture, and a plain array returned without the mask."""
    data = np.full((6, 8, 3), 100, np.uint8)
    image = np.ma.masked_array(data.copy())
    image[2, 3] = np.ma.masked
    words = r"^the array is a numpy masked array with 3 masked value\(s\), and the upscaled picture has no mask; fill them"
    for call in (lambda: sr_filter.upscale(image, upscaler=cartoon), lambda: cartoon.upscale(image)):
        with pytest.raises(ImageFormatError, match=words):
            call()
    with pytest.raises(ImageFormatError, match=r"^arrays\[1\]: the array is a numpy masked array"):
        cartoon.upscale_batch([data, image])
    assert np.array_equal(cartoon.upscale(np.ma.masked_array(data)), cartoon.upscale(data))  # nothing masked: its data


def test_a_precision_is_taken_as_a_device_name_is():
    """precision=" fp32" (a value read from a file or typed with a space) had been "unknown precision
    ' fp32'" where device=" CPU" was the CPU; both backends, and sr_filter.upscale, take it now."""
    for backend in ("auto", "torch"):
        assert Upscaler("sr-cartoon-x4", device=" CPU", precision=" fp32\n", backend=backend, tile=0).precision == "fp32"
    assert Upscaler("sr-cartoon-x4", device=None, precision=None).precision == "fp32"  # None: auto, as for the device
    with pytest.raises(SrFilterError, match="fp16 is not supported on the CPU"):  # still checked, in any spelling
        Upscaler("sr-cartoon-x4", device="cpu", precision=" FP16")
    out = sr_filter.upscale(np.zeros((4, 4, 3), np.uint8), model="sr-cartoon-x4", device="cpu", precision="FP32 ")
    assert out.shape == (16, 16, 3)


# -- what a developer embedding the library runs into ------------------------------------------------


def test_threads_sharing_an_upscaler_get_their_own_pictures():
    """The default CPU backend (OpenVINO) has one inference request, read in place: threads take turns."""
    import threading

    up = Upscaler("sr-cartoon-x4", device="cpu")
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(2)]
    want = [up.upscale(image) for image in images]
    errors: list[str] = []

    def work(i: int) -> None:
        for _ in range(25):
            try:
                if not np.array_equal(up.upscale(images[i]), want[i]):
                    errors.append(f"thread {i}: another picture")
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(f"thread {i}: {exc}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert up.backend.name == "openvino" and errors == []


def test_float_pixels_beyond_zero_to_one_are_kept_and_nan_and_infinities_are_said(cartoon, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(np.full((8, 8, 3), 0.5, np.float32))
    assert caplog.text == ""
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        out = cartoon.upscale(np.full((8, 8, 3), 200.0, np.float32))
    assert np.allclose(out, 200, atol=0.03)  # was clipped to 1.0: a white picture (0.03: the network on white)
    assert "float pixels hold values from 200 to 200, beyond 0..1" in caplog.text
    assert "for 0..255 data divide by 255 first" in caplog.text
    caplog.clear()
    # 0..255 data with fractions (as float processing leaves it) is no HDR picture either: it had got no warning
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale((np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.float32))
    assert "for 0..255 data divide by 255 first" in caplog.text
    caplog.clear()
    dark = (np.random.default_rng(3).random((8, 8, 3)) * 29 + 1.5).astype(np.float32)  # a dark 8-bit picture: 1.5 to 30.5
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(dark)
    assert "for 0..255 data divide by 255 first" in caplog.text
    caplog.clear()
    undershoot = (np.random.default_rng(1).random((8, 8, 3)) * 255).astype(np.float32)
    undershoot[0, 0] = -18.9, 283.1, 12.0  # a bicubic resize's undershoot and overshoot around 0..255 data
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(undershoot)
    assert "for 0..255 data divide by 255 first" in caplog.text
    caplog.clear()
    highlight = np.full((8, 8, 3), 0.5, np.float32)
    highlight[2:4, 2:4] = 6.5  # an HDR picture's highlight, above white in a few pixels: no such advice
    bright = np.random.default_rng(2).uniform(1.5, 6, (8, 8, 3)).astype(np.float32)  # a bright HDR scene, most of it above 1
    bright[6:] = 0.3
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(highlight)
        cartoon.upscale(bright)
    assert "divide" not in caplog.text
    data = np.full((8, 8, 3), 0.5, np.float32)
    data[0, 0] = np.nan, np.inf, -np.inf  # was "these go no finite values" without a word about infinities
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(data)
    assert "these hold 1 NaN value(s) (taken as 0), 2 infinite value(s) (taken as 0 or 1)" in caplog.text
    assert "divide" not in caplog.text
    caplog.clear()
    data[0, 1] = 3.0  # beside a highlight the infinities are still counted (that line had left them out)
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(data)
    assert "values from 0.5 to 3, beyond 0..1" in caplog.text and "; 2 infinite value(s) are taken as 0 or 1" in caplog.text
    assert "1 NaN value(s) (taken as 0)" in caplog.text
    caplog.clear()
    # colour beyond 0..1 is kept, alpha is clipped: the line names the alpha channel ("float pixels" had
    # read as if the colour were clipped too)
    rgba = np.full((8, 8, 4), 0.5, np.float32)
    rgba[..., 3] = np.linspace(0, 1.5, 8)
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(rgba)
    assert "the alpha channel is taken as 0..1, and it holds values from 0 to 1.5 (clipped to 0..1" in caplog.text
    # once per picture with the colour fix too (the cartoon preset had said each line twice)
    fixed = Upscaler("cartoon", tile=0)
    for image, words in ((data, "these hold 1 NaN value(s)"), (rgba, "the alpha channel is taken as 0..1")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sr_filter"):
            fixed.upscale(image)
        assert caplog.text.count(words) == 1, caplog.text
    # an animated PIL image through a reused Upscaler says that one frame is upscaled, as upscale() does
    frames = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(Image.open(buffer))
    assert caplog.text.count("the image has 3 frames; only the current one is upscaled") == 1, caplog.text


def test_float_pixels_of_16_bit_range_are_told_to_divide_by_65535(cartoon, caplog):
    """Float pixels taken from 16-bit samples (up to 65535) had been told "for 0..255 data divide by 255"."""
    data = (np.random.default_rng(0).random((8, 8, 3)) * 65535).round().astype(np.float32)
    rgba = np.dstack([data / 65535, np.full((8, 8), 65535, np.float32)])
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        cartoon.upscale(data)
        cartoon.upscale(rgba)
    assert "beyond 0..1: the network upscales the part within 0..1 and the rest is resized (bilinear) and added back; " \
           "for 0..65535 data divide by 65535 first" in caplog.text
    assert "(clipped to 0..1; divide 0..65535 data by 65535 first)" in caplog.text
    assert "255" not in caplog.text.replace("65535", "")


def test_float64_values_beyond_float32s_range_give_no_nan(cartoon, caplog):
    """A float64 picture holding 1e300 (a "no data" marker) had come back with NaN all around those
    pixels: what lies beyond 0..1 is resized in float32, where 1e300 is inf, and inf times the zero
    weights is NaN. Such values are now taken as infinities are (0 or 1), and said."""
    data = np.full((8, 8, 3), 0.5)
    data[2:4, 2:4] = 1e300
    data[6, 6] = -1e300
    data[0, 0] = 2.0  # a highlight within range keeps what lies beyond 1
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="sr_filter"):
        warnings.simplefilter("error")  # numpy's overflow in the cast had escaped too
        out = cartoon.upscale(data)
    assert out.dtype == np.float64 and out.shape == (32, 32, 3)
    assert np.isfinite(out).all()
    assert out[9:15, 9:15].min() > 0.9 and out[0, 0].max() > 1.5
    assert "15 value(s) beyond float32's range (3.4e38) are taken as 0 or 1" in caplog.text


@pytest.mark.parametrize("layout", ["rgb", "rgba", "grey", "grey-alpha"])
def test_hdr_highlights_and_out_of_gamut_colour_survive_the_network(cartoon, layout, caplog):
    # A linear-light float image (GIMP 32-bit, float TIFF) holds light above white and colours below
    # black; the network sees 0..1, and what lies beyond is resized and added back instead of clipped.
    import logging

    ramp = np.linspace(0.3, 0.7, 16, dtype=np.float32)
    data = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (16, 1)), np.tile(ramp[:, None], (1, 16))], axis=2)
    data[4:8, 4:8] = 4.0  # a highlight
    data[10:, 10:, 2] = -0.25  # out of gamut
    if layout.startswith("grey"):
        data = data[..., 0]
    if layout.endswith("alpha"):
        alpha = np.full(data.shape[:2] + (1,), 0.75, np.float32)
        data = np.concatenate([data[..., None] if data.ndim == 2 else data, alpha], axis=2)
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        out = cartoon.upscale(data)
    assert caplog.text == ""  # HDR is not a mistake: said at -v only
    assert out.dtype == np.float32 and out.shape[:2] == (64, 64)
    colours = 1 if layout.startswith("grey") else 3
    colour = out if out.ndim == 2 else out[..., :colours]
    assert colour[22:26, 22:26].min() > 3.8  # the highlight is there (was clipped to white, 1.0)
    # the network's part is its result on the clipped picture; the rest is the beyond part resized
    # (bilinear: inside a block it is exact, and no value goes past what the picture holds)
    clipped = cartoon.upscale(np.clip(data, 0, 1))
    beyond = (out - clipped) if out.ndim == 2 else (out - clipped)[..., :colours]
    assert np.allclose(beyond[22:26, 22:26], 3.0, atol=1e-4) and beyond.max() <= 3.0 + 1e-4
    if layout in ("rgb", "rgba"):
        assert np.allclose(beyond[46:60, 46:60, 2], -0.25, atol=1e-4) and beyond.min() >= -0.25 - 1e-4
    far = np.ones(out.shape[:2], bool)
    far[8:40, 8:40] = far[32:, 32:] = False
    assert np.abs(out[far] - clipped[far]).max() < 1e-5
    if layout.endswith("alpha"):
        assert np.array_equal(out[..., -1], clipped[..., -1])


def test_hdr_colour_hidden_under_full_transparency_stays_hidden(cartoon):
    # what an eraser leaves under alpha 0 (8.0 here) had spread into the visible edge (3.1 for 0.5)
    data = np.zeros((16, 16, 4), np.float32)
    data[:, :8] = 0.5, 0.5, 0.5, 1.0
    data[:, 8:] = 8.0, 8.0, 8.0, 0.0
    out = cartoon.upscale(data)
    assert out[..., :3][out[..., 3] > 0.99].max() < 0.6


def test_arrays_too_large_for_memory_and_bad_flags_are_refused_before_the_work(cartoon):
    from sr_filter.errors import ImageTooLargeError, SrFilterError
    from sr_filter.upscaler import Upscaler

    huge = np.zeros((40000, 40000, 3), np.uint8)  # calloc'd: no page is touched
    with pytest.raises(ImageTooLargeError, match=r"the image is 40000x40000 \(1,600 megapixels\): for a 160000x160000 output, or any other size"):
        cartoon.upscale(huge)  # was numpy's MemoryError, after the work
    for flag in ("offline", "tta"):
        with pytest.raises(SrFilterError, match=f"{flag} must be True or False, not 'no'"):
            Upscaler("sr-cartoon-x4", device="cpu", **{flag: "no"})  # "no" had meant yes


def test_colour_spaces_come_back_as_rgb_without_the_inputs_profile(cartoon):
    from PIL import ImageCms

    rgb = Image.new("RGB", (8, 8), (200, 30, 40))
    lab = ImageCms.applyTransform(rgb, ImageCms.buildTransformFromOpenProfiles(
        ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"))
    for image in (lab, rgb.convert("HSV"), rgb.convert("YCbCr")):
        out = cartoon.upscale(image)
        assert out.mode == "RGB" and "icc_profile" not in out.info, image.mode
        assert np.abs(np.asarray(out, np.int16)[4:-4, 4:-4] - (200, 30, 40)).max() < 12, image.mode


def test_big_endian_samples_are_the_same_picture(cartoon):
    data = np.random.default_rng(2).integers(0, 65535, (8, 8, 3)).astype(np.uint16)
    assert np.array_equal(cartoon.upscale(data.astype(">u2")), cartoon.upscale(data))


def test_wrong_arguments_are_the_librarys_own_errors_before_any_work(cartoon, tmp_path):
    from sr_filter.errors import UnknownModelError
    from sr_filter.video import upscale_frames

    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(SrFilterError, match="progress must be a function"):
        cartoon.upscale(image, progress=5)
    with pytest.raises(UnknownModelError, match="the model name is empty"):
        Upscaler("")
    for call in (sr_filter.upscale_video, sr_filter.upscale_file, sr_filter.upscale_animation):
        with pytest.raises(SrFilterError, match="src must be a file path"):  # upscale_file: pathlib's TypeError
            call(42, tmp_path / "o.mp4", upscaler=cartoon)
        # a name longer than the file system allows: one line (it had been a raw OSError, "File name too long")
        with pytest.raises(SrFilterError, match=r"dst L+\.\.\.L+\.png is 260 bytes, a name longer than the file system allows"):
            call(tmp_path / "in.png", tmp_path / ("L" * 256 + ".png"), upscaler=cartoon)
    for odd in ("a\0b.png", "a\ud800.png"):  # had been a raw ValueError / UnicodeEncodeError
        with pytest.raises(SrFilterError, match="holds a character no file name can"):
            sr_filter.upscale_file(tmp_path / odd, tmp_path / "o.png", upscaler=cartoon)
    Image.new("RGB", (8, 6)).save(tmp_path / "in.png")  # bytes name a file as os.fsdecode reads them
    assert sr_filter.upscale_file(os.fsencode(tmp_path / "in.png"), os.fsencode(tmp_path / "b.png"), upscaler=cartoon) \
        == tmp_path / "b.png"
    (tmp_path / "keep.mp4").write_bytes(b"mine")
    with pytest.raises(SrFilterError, match="overwrite must be True or False, not 'no'"):
        sr_filter.upscale_video(tmp_path / "clip.mp4", tmp_path / "keep.mp4", upscaler=cartoon, overwrite="no")
    assert (tmp_path / "keep.mp4").read_bytes() == b"mine"
    (tmp_path / "keep.png").write_bytes(b"mine")
    for call, name in ((sr_filter.upscale_video, "keep.mp4"), (sr_filter.upscale_file, "keep.png")):  # the API's words, not the flag's
        with pytest.raises(SrFilterError, match=rf"{name} exists; allow overwriting \(overwrite=True\) to replace it"):
            call(tmp_path / "in.png", tmp_path / name, upscaler=cartoon)
        assert (tmp_path / name).read_bytes() == b"mine"
    with pytest.raises(SrFilterError, match="upscaler must be an sr_filter.Upscaler or a model name, not int"):
        list(upscale_frames([image], 3))
    with pytest.raises(SrFilterError, match="expected a numpy image array, got a PIL image; Upscaler.upscale takes"):
        cartoon.upscale_batch([Image.new("RGB", (8, 8))] * 2)
    for bad, message in ((np.zeros((1, 3, 0, 8), np.float32), r"empty \(width 8, height 0\)"), ([[1]], "got list"),
                         (np.zeros((1, 3, 8, 8), np.uint8), "expected float values")):
        with pytest.raises(SrFilterError, match=message):
            cartoon.run(bad)
    # run_into's out, checked before any work: a uint8 array had been filled with 0s and 1s, a
    # wrong shape failed inside numpy after the first windows, a list with "no attribute 'write'"
    x = np.random.default_rng(0).random((1, 3, 10, 12)).astype(np.float32)
    fine = np.zeros((1, 3, 40, 48), np.float32)
    cartoon.run_into(x, fine)
    assert np.array_equal(fine, cartoon.run(x))
    for bad, message in ((np.zeros((1, 3, 40, 48), np.uint8), "not a uint8 array of shape"),
                         (np.zeros((1, 3, 30, 30), np.float32), r"of shape \(1, 3, 40, 48\) .*not a float32 array of shape \(1, 3, 30, 30\)"),
                         (np.zeros((1, 3, 40, 48), np.float32)[:, :, ::-1][:, :, ::-1].copy().view(), None),
                         ([], "not list")):
        if message is None:
            bad.flags.writeable = False
            message = "not a read-only float32 array"
        with pytest.raises(ImageFormatError, match=message):
            cartoon.run_into(x, bad)


def test_animations_take_a_model_name_and_check_quality(tmp_path):
    from sr_filter.animation import upscale_animation  # the core, whose upscaler argument may be a name

    frames = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    for bad in ("high", 0, 101, True):  # one rule with upscale_file's: 0 had been taken, and said as a video error
        with pytest.raises(SrFilterError, match=f"quality must be a whole number from 1 to 100 \\(or None\\), not {bad!r}") as info:
            upscale_animation(tmp_path / "a.gif", tmp_path / "o.webp", "sr-cartoon-x4", quality=bad)
        assert type(info.value) is SrFilterError
        with pytest.raises(SrFilterError, match="quality must be a whole number from 1 to 100"):
            sr_filter.upscale_file(tmp_path / "a.gif", tmp_path / "o.webp", model="sr-cartoon-x4", quality=bad)
    # an existing folder, and one named with a slash; the input's own folder is not offered the input's name
    # (following that advice replaced the input with overwrite=True, and a video's was refused)
    for folder, meant in ((tmp_path, "a_upscaled.gif"), (f"{tmp_path / 'new'}/", "new/a.gif")):
        with pytest.raises(SrFilterError, match=rf"folder.*; name the output file, e\.g\. .*{meant}$"):
            upscale_animation(tmp_path / "a.gif", folder, "sr-cartoon-x4")  # had been "... not (none)"
        with pytest.raises(SrFilterError, match=rf"folder.*; name the output file, e\.g\. .*{meant}$"):
            sr_filter.upscale_file(tmp_path / "a.gif", folder, model="sr-cartoon-x4", format="png")
    assert not (tmp_path / "new").exists()  # no file named like the folder
    result = upscale_animation(tmp_path / "a.gif", tmp_path / "o.webp", "sr-cartoon-x4", frames=(0, 2))
    assert len(result.frames) == 2 and Image.open(tmp_path / "o.webp").size == (32, 32)
    top = sr_filter.upscale_animation(tmp_path / "a.gif", tmp_path / "t.gif", model="sr-cartoon-x4", frames="1:")
    assert len(top.frames) == 2


def test_a_sixteen_bit_grey_picture_keeps_its_grey_through_the_animation_path(tmp_path):
    from sr_filter.animation import upscale_animation

    Image.fromarray(np.full((8, 8), 50000, np.uint16)).save(tmp_path / "g16.png")  # 194 of 255
    result = upscale_animation(tmp_path / "g16.png", tmp_path / "o.png", "sr-cartoon-x4")
    assert result.frames[0].dtype == np.uint16  # 16 bits kept, as the APNG output keeps them
    assert abs(int(np.median(result.frames[0][..., :3])) - 50000) <= 3 * 257


def test_32_bit_integer_pictures_outside_16_bits_are_said(cartoon, caplog):
    import logging

    image = Image.fromarray(np.array([[-100000, 200000], [0, 65535]] * 4, dtype=np.int32).repeat(4, 1))
    assert image.mode == "I"
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        out = cartoon.upscale(image)
    assert out.mode == "I" and "go from -100000 to 200000: clipped to 0..65535" in caplog.text
    assert np.asarray(out).min() >= 0 and np.asarray(out).max() <= 65535


def test_upscale_file_writes_what_the_cli_writes_and_keeps_sixteen_bits(tmp_path, cartoon):
    """Files had no API: ``upscale("a.png")`` was "got str", and the README's ``Image.open`` route
    turned a 16-bit RGB PNG into 8 bits before the upscale."""
    import subprocess
    import sys

    from sr_filter.errors import ImageFormatError, OutputExistsError

    from .conftest import ROOT
    from .imagefiles import png16_filtered

    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 65536, (12, 10, 4), dtype=np.uint16)
    (tmp_path / "deep.png").write_bytes(png16_filtered(rgba, interlaced=False))
    written = sr_filter.upscale_file(tmp_path / "deep.png", tmp_path / "api.png", upscaler=cartoon)
    assert written == tmp_path / "api.png"
    subprocess.run([sys.executable, "-m", "sr_filter", str(tmp_path / "deep.png"), "-o", str(tmp_path / "cli.png"),
                    "-m", "realesr-animevideov3", "--tile", "0", "-q"], check=True, cwd=ROOT)
    assert (tmp_path / "api.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    from sr_filter.imageio import read_image

    back, _ = read_image(tmp_path / "api.png")
    assert back.dtype == np.uint16 and back.shape == (48, 40, 4)
    assert np.array_equal(back, cartoon.upscale(rgba))
    sr_filter.upscale_file(tmp_path / "deep.png", tmp_path / "small.webp", upscaler=cartoon, width=20, quality=95)
    assert Image.open(tmp_path / "small.webp").size == (20, 24)
    sr_filter.upscale_file(tmp_path / "deep.png", tmp_path / "named", upscaler=cartoon, format="tiff", scale=2)
    assert Image.open(tmp_path / "named").format == "TIFF"
    before = (tmp_path / "api.png").stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="api.png exists"):
        sr_filter.upscale_file(tmp_path / "deep.png", tmp_path / "api.png", upscaler=cartoon)
    sr_filter.upscale_file(tmp_path / "deep.png", tmp_path / "api.png", upscaler=cartoon, overwrite=True)
    assert (tmp_path / "api.png").stat().st_mtime_ns != before
    with pytest.raises(SrFilterError, match="either a ready upscaler or a preset/model"):
        sr_filter.upscale_file(tmp_path / "deep.png", tmp_path / "x.png", "photo", upscaler=cartoon)  # was: preset ignored
    with pytest.raises(SrFilterError, match="either a ready upscaler or a preset/model"):
        sr_filter.upscale_animation(tmp_path / "deep.png", tmp_path / "x.gif", "photo", upscaler=cartoon)
    for name in (tmp_path / "deep.png", str(tmp_path / "deep.png")):  # not "a numpy image array": upscale takes PIL images too
        with pytest.raises(ImageFormatError, match=r"^expected image pixels, got a file name "
                                                   r"\((PosixPath|str)\); for an image file use sr_filter.upscale_file"):
            cartoon.upscale(name)
    with pytest.raises(ImageFormatError, match="does not exist"):
        sr_filter.upscale_file(tmp_path / "none.png", tmp_path / "y.png", upscaler=cartoon)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
    # options the ready upscaler has its own of were dropped; sizes and qualities the CLI refuses were taken
    for bad, words in (({"tta": True}, "tta is set on the Upscaler"), ({"width": 0}, "width must be a whole number"),
                       ({"width": True}, "width must be"), ({"height": "100"}, "height must be"),
                       ({"quality": 500}, "quality must be a whole number from 1 to 100"),
                       ({"scale": float("nan")}, "scale must be greater than 0"),  # was numpy's ValueError
                       ({"scale": float("inf")}, "scale must be greater than 0")):  # was OverflowError
        with pytest.raises(SrFilterError, match=words):
            sr_filter.upscale_file(tmp_path / "deep.png", tmp_path / "z.png", upscaler=cartoon, **bad)
    with pytest.raises(SrFilterError, match="is a folder; name the output file"):
        sr_filter.upscale_file(tmp_path / "deep.png", tmp_path, upscaler=cartoon)
    made = sr_filter.upscale_file(tmp_path / "deep.png", tmp_path / "new" / "deeper" / "o.png", upscaler=cartoon)
    assert made.is_file()  # missing folders are made, as the command line makes them


def test_folders_made_for_an_output_never_written_are_removed_by_the_api(tmp_path, cartoon):
    """The command line removed the folders it made for outputs it never wrote; the API left them
    (and remembered them for the process's life). Folders that were there stay, as do written outputs'."""
    from sr_filter.animation import upscale_animation

    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / "in.png")
    frames = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(2)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    (tmp_path / "kept").mkdir()
    stop = lambda done, total: False  # noqa: E731  (cancels after the first window or frame)
    with pytest.raises(CancelledError):
        sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "new" / "deeper" / "o.png", upscaler=cartoon, progress=stop)
    with pytest.raises(CancelledError):
        upscale_animation(tmp_path / "a.gif", tmp_path / "kept" / "anim" / "o.gif", cartoon, progress=stop)
    (tmp_path / "no.png").write_text("not a picture")
    with pytest.raises(ImageFormatError):  # found out after the folders were made
        sr_filter.upscale_file(tmp_path / "no.png", tmp_path / "q" / "o.jpg", upscaler=cartoon)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "in.png", "kept", "no.png"] and not any((tmp_path / "kept").iterdir())
    assert sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "made" / "o.png", upscaler=cartoon).is_file()


def test_a_numpy_matrix_is_refused_in_words_of_the_callers_own(cartoon):
    with pytest.raises(SrFilterError, match=r"got a numpy.matrix; pass numpy.asarray\(matrix\)$"):
        cartoon.upscale(np.asmatrix(np.zeros((8, 8), np.uint8)))


def test_numpys_false_from_a_progress_callback_cancels(cartoon):
    """``return not flag.any()`` gives numpy's False, which had not cancelled."""
    from sr_filter.errors import CancelledError

    with pytest.raises(CancelledError):
        cartoon.upscale(np.zeros((8, 8, 3), np.uint8), progress=lambda done, total: np.False_)
    assert cartoon.upscale(np.zeros((8, 8, 3), np.uint8), progress=lambda done, total: np.True_).shape == (32, 32, 3)


def test_batches_refuse_frames_too_large_before_any_copy_and_a_low_scale_is_said_once(cartoon, caplog):
    """upscale_batch (video frames) skipped the size check: numpy's MemoryError, or a huge job on a
    larger machine; and a scale below the model's was said once for every frame."""
    from sr_filter.errors import ImageTooLargeError

    big = np.broadcast_to(np.zeros(3, np.uint8), (60000, 60000, 3))
    with pytest.raises(ImageTooLargeError):
        cartoon.upscale_batch([big, big])
    fresh = Upscaler("sr-cartoon-x4", tile=0)
    frames = [np.full((6, 8, 3), i * 40, np.uint8) for i in range(4)]
    with caplog.at_level("WARNING", logger="sr_filter"):
        out = fresh.upscale_batch(frames, scale=0.5)
        fresh.upscale_array(frames[0], scale=0.5)
    assert [o.shape for o in out] == [(3, 4, 3)] * 4
    said = [r for r in caplog.records if "is below the model's" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]


def test_a_batch_refuses_a_bad_item_or_scale_before_any_work(cartoon):
    """upscale_batch([frame, frame, "x.png"]) had upscaled the frames before it, then said only
    "expected image pixels" (which one?); a bad scale came after the first image too."""
    frame = np.zeros((8, 8, 3), np.uint8)
    calls = []
    for bad, words in (("x.png", r"^arrays\[2\]: expected image pixels, got a file name"),
                       (np.zeros((8, 8, 7), np.uint8), r"^arrays\[2\]: expected an HxW or HxWxC")):
        with pytest.raises(ImageFormatError, match=words):
            cartoon.upscale_batch([frame, frame[:4], bad], progress=lambda done, total: calls.append(done))
    with pytest.raises(SrFilterError, match="the scale must be greater than 0"):
        cartoon.upscale_batch([frame, frame[:4]], scale=-1, progress=lambda done, total: calls.append(done))
    assert calls == []



@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is a POSIX start method")
def test_the_torch_backend_runs_in_forked_children(tmp_path):
    """multiprocessing's default on Linux (and gunicorn --preload) forks: a child of a parent that
    had run the torch network hung for ever in torch's thread pool."""
    script = tmp_path / "fork.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, numpy as np
        from sr_filter import Upscaler
        up = Upscaler("sr-cartoon-x4", backend="torch", tile=0)
        a = (np.random.default_rng(0).random((48, 40, 3)) * 255).astype(np.uint8)
        ref = up.upscale(a)
        def work(x):  # the forked child's copy of the parent's Upscaler
            return up.upscale(x)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            out = pool.map_async(work, [a, a]).get(timeout=60)
        print(all(np.abs(o.astype(int) - ref).max() <= 1 for o in out))
        """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]


def test_an_upscaler_pickles_as_its_settings_for_process_pools(tmp_path):
    """A process pool pickles what it sends: that had failed with Python's own AttributeError.
    The child loads the model from the settings once per process; each unpickled Upscaler is a
    handle of its own on it (they had been one object: a task changing its tile changed the next's)."""
    import pickle

    up = Upscaler("sr-cartoon-x4", tile=32, colour_fix=True)
    again, twice = pickle.loads(pickle.dumps(up)), pickle.loads(pickle.dumps(up))
    assert again is not twice and again is not up and again.colour_fix and again.tile == 32
    assert again.backend is twice.backend and again.model is twice.model  # the model is loaded once per process
    again.tile, again.colour_fix = 48, False  # one task's handle changed: the next task's is as pickled
    assert twice.tile == 32 and twice.colour_fix and pickle.loads(pickle.dumps(up)).tile == 32
    image = (np.random.default_rng(1).random((30, 40, 3)) * 255).astype(np.uint8)
    assert np.array_equal(again.upscale(image), up.upscale(image))
    import copy

    up.tile = 64  # changed after it was made: pickled as it is now
    assert pickle.loads(pickle.dumps(up)).tile == 64
    shallow, deep = copy.copy(up), copy.deepcopy(up)
    assert shallow.backend is up.backend and deep.backend is not up.backend and deep is not copy.deepcopy(up)
    script = tmp_path / "spawn.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, numpy as np
        from concurrent.futures import ProcessPoolExecutor
        from sr_filter import Upscaler
        if __name__ == "__main__":
            up = Upscaler("sr-cartoon-x4", tile=32)
            a = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                out = list(pool.map(up.upscale, [a, a]))
            print(all(np.array_equal(o, up.upscale(a)) for o in out))
        """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]


def test_a_pool_task_whose_model_cannot_load_fails_alone(tmp_path):
    """A worker that could not load a pickled Upscaler's model (its weights file gone) died while
    unpickling the task: every pending task failed with BrokenProcessPool and a traceback was
    printed. Now that task fails with the load error and the pool goes on."""
    script = tmp_path / "gone.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, os, numpy as np, torch
        from concurrent.futures import ProcessPoolExecutor
        from sr_filter import SrFilterError, Upscaler
        from sr_filter.archs.srvgg import SRVGGNetCompact
        if __name__ == "__main__":
            torch.manual_seed(0)
            torch.save(SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=2).state_dict(), "mine.pth")
            up = Upscaler("mine.pth", tile=0)
            os.remove("mine.pth")
            from PIL import Image
            import sr_filter
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save("in.png")
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                for task in (pool.submit(up.upscale, np.zeros((8, 8, 3), np.uint8)),
                             pool.submit(sr_filter.upscale_file, "in.png", "out.png", upscaler=up)):
                    try:
                        task.result()
                    except SrFilterError as exc:
                        print(type(exc).__name__, exc)
                print(pool.submit(sum, [1, 2]).result())
        """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == 2 * [f"WeightsFormatError weights file {tmp_path / 'mine.pth'} does not exist"] + ["3"]
    assert "Traceback" not in done.stderr


def test_a_pickled_upscaler_names_the_model_it_runs_not_the_preset(monkeypatch):
    """A preset resolved offline to the built-in model was pickled as the preset: a copy made in a
    process that could download would have run another model, with other pixels. (The preset's
    own first model cannot be served here, so the settings sent are what is checked.)"""
    import copy
    import pickle

    monkeypatch.setenv("SR_FILTER_OFFLINE", "1")
    up = Upscaler("photo")
    assert up.name.startswith("sr-photo-x4@")  # the offline fallback
    function, (kind, loading, changeable) = up.__reduce__()
    assert dict(loading)["model"] == up.name and dict(changeable)["colour_fix"] is up.colour_fix
    assert pickle.loads(pickle.dumps(up)).name == up.name == copy.deepcopy(up).name
    cartoon = Upscaler("cartoon", colour_fix=False)
    for twin in (copy.deepcopy(cartoon), pickle.loads(pickle.dumps(cartoon))):
        assert twin.colour_fix is False
        twin.colour_fix = None  # the preset's choice, as on the original, though made from the model's name
        assert twin.colour_fix is True


def test_settings_changed_on_an_upscaler_are_checked_as_the_constructor_checks_them(cartoon):
    """up.tile = True had run 1-pixel tiles (minutes for a thumbnail), "Auto" and None failed
    inside upscale with Python's own errors, and up.colour_fix = "no" turned the fix on."""
    import copy

    up = copy.copy(cartoon)  # a handle of its own: the module's shared Upscaler keeps its settings
    for bad, words in ((True, "not True"), (5, "at least 32"), (None, "not None"), (-1, "got -1"), ("big", "not 'big'")):
        with pytest.raises(SrFilterError, match=words):
            up.tile = bad
    up.tile = " Auto"
    assert up.tile == "auto"
    for bad in ("no", 1, "False"):
        with pytest.raises(SrFilterError, match=f"colour_fix must be True or False, not {bad!r}"):
            up.colour_fix = bad
    up.colour_fix = None  # the preset's choice: off for a model name
    assert up.colour_fix is False
    with pytest.raises(SrFilterError, match="batch size must be a whole number of at least 1, not 0"):
        up.batch = 0
    assert up.upscale(np.zeros((8, 8, 3), np.uint8)).shape == (32, 32, 3)


def test_a_call_cancelled_in_a_new_folder_leaves_it_to_another_thread_writing_there(tmp_path, cartoon):
    """Two threads write into one new folder; the one that made it is cancelled after the other
    has checked it: its cleanup removed the folder, and the other thread's finished picture failed
    with "output folder ... does not exist". Also where one names the folder through a symlink."""
    import threading
    import time

    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(tmp_path / "in.png")
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "real").mkdir()
    for made_as, written_as in ((tmp_path / "out" / "new", tmp_path / "out" / "new"),
                                (tmp_path / "link" / "new", tmp_path / "real" / "new")):
        checked, first_done, results = threading.Event(), threading.Event(), {}

        def first() -> None:
            def stop(done: int, total: int) -> bool:
                checked.wait(60)
                return False

            try:
                with pytest.raises(CancelledError):
                    sr_filter.upscale_file(tmp_path / "in.png", made_as / "a.png", upscaler=cartoon, progress=stop)
                results["first"] = "cancelled"
            finally:
                first_done.set()

        def second() -> None:
            def going(done: int, total: int) -> bool:
                checked.set()  # its output folder has been checked: the first call may stop now,
                first_done.wait(60)  # and has cleaned up before this one writes
                return True

            try:
                results["second"] = sr_filter.upscale_file(tmp_path / "in.png", written_as / "b.png", upscaler=cartoon,
                                                           progress=going)
            except SrFilterError as exc:
                results["second"] = exc

        one = threading.Thread(target=first)
        one.start()
        while not made_as.is_dir() and one.is_alive():
            time.sleep(0.01)
        two = threading.Thread(target=second)
        two.start()
        one.join(120)
        two.join(120)
        assert results == {"first": "cancelled", "second": written_as / "b.png"}, made_as
        assert sorted(p.name for p in written_as.iterdir()) == ["b.png"]
    with pytest.raises(CancelledError):  # alone, a cancelled call still removes what it made
        sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "other" / "c.png", upscaler=cartoon,
                               progress=lambda done, total: False)
    assert not (tmp_path / "other").exists()


def test_an_output_that_is_the_input_or_a_folder_is_said_to_be_one(tmp_path):
    """upscale_file(a, a) said "a exists; allow overwriting", as if it were any file, and
    upscale_video with a folder as dst said "unknown video container (none)"."""
    from sr_filter.errors import OutputIsInputError

    from .videos import make_clip

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputIsInputError, match=r"in\.png is the input file; pass overwrite=True to replace it, or choose another dst$"):
        sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "in.png", model="sr-cartoon-x4")
    clip = make_clip(tmp_path / "c.mkv", frames=2, audio=0)
    with pytest.raises(SrFilterError, match=r"^dst \S+folder is a folder; name the output file, e\.g\. \S+folder/c\.mkv$"):
        sr_filter.upscale_video(clip, tmp_path / "folder", model="sr-cartoon-x4")
    assert sr_filter.upscale_file(tmp_path / "in.png", tmp_path / "in.png", model="sr-cartoon-x4", overwrite=True).is_file()
    assert Image.open(tmp_path / "in.png").size == (32, 32)  # replaced, as asked


def test_an_output_descriptor_the_shell_opened_on_the_input_is_refused(tmp_path):
    """upscale_file(src, "/dev/stdout", overwrite=True) in a program run as ``prog >> src`` had
    added the picture to the input's end: a descriptor cannot be replaced by rename, so overwrite
    cannot help. Refused, as the CLI refuses it, for pictures, animations and videos."""
    from .videos import make_clip

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.gif", save_all=True,
                                                        append_images=[Image.new("RGB", (8, 8), "red")])
    make_clip(tmp_path / "c.mkv", frames=2, audio=0)
    script = tmp_path / "calls.py"
    script.write_text(textwrap.dedent("""
        import sys
        import sr_filter
        call, src, dst = sys.argv[1:]
        try:
            getattr(sr_filter, call)(src, dst, model="sr-cartoon-x4", overwrite=True)
        except sr_filter.SrFilterError as exc:
            print(type(exc).__name__, exc, file=sys.stderr)
            sys.exit(3)
    """))
    for call, name in (("upscale_file", "in.png"), ("upscale_animation", "in.gif"), ("upscale_video", "c.mkv")):
        src = tmp_path / name
        before = src.read_bytes()
        for dst, redirect in (("/dev/stdout", ">>"), ("/dev/fd/3", "3>>")):  # the shell's `>> src`, `3>> src`
            argv = ["sh", "-c", f'f="$1"; shift; exec "$@" {redirect}"$f"', "sh", str(src),
                    sys.executable, str(script), call, str(src), dst]
            done = subprocess.run(argv, stderr=subprocess.PIPE, text=True, timeout=120)
            assert done.returncode == 3, (call, dst, done.stderr)
            assert done.stderr.startswith("OutputIsInputError ") and "is the input file" in done.stderr, done.stderr
            assert "write it to another file" in done.stderr, done.stderr
            assert src.read_bytes() == before, (call, dst)


def test_run_names_non_finite_input_values_not_the_weights():
    """NaN in run()'s input had been reported as damaged weights."""
    from sr_filter.errors import ImageFormatError

    x = torch.rand(1, 3, 20, 20)
    x[0, 0, 5, 5], x[0, 1, 2, 2] = float("nan"), float("inf")
    with pytest.raises(ImageFormatError, match="the input holds 1 NaN and 1 infinite value"):
        Upscaler("sr-cartoon-x4", tile=32).run(x)


def test_a_mode_i_image_of_8_bit_values_is_warned_of(caplog):
    """convert("I") of an L image keeps 0..255, which mode I's 16-bit reading makes nearly black:
    mode F of 0..255 values had a warning, mode I none."""
    grey = Image.fromarray((np.random.default_rng(2).random((20, 24)) * 200 + 20).astype(np.uint8), "L")
    with caplog.at_level("WARNING"):
        Upscaler("sr-cartoon-x4", tile=32).upscale(grey.convert("I"))
    assert "mode I pixels are read as 16-bit (0..65535), and these go up to" in caplog.text


def test_a_progress_callback_of_the_wrong_shape_and_a_tensor_are_told_before_any_work():
    """lambda: None had failed with Python's TypeError after the first tile; a tensor's message
    had not said what takes one."""
    up = Upscaler("sr-cartoon-x4", tile=32)
    with pytest.raises(SrFilterError, match=r"progress must take two arguments, \(done, total\)"):
        up.upscale_array(np.zeros((40, 40, 3), np.uint8), progress=lambda: None)
    up.upscale_array(np.zeros((40, 40, 3), np.uint8), progress=lambda *args: None)  # any two do
    with pytest.raises(SrFilterError, match=r"Upscaler.run takes \(1, C, H, W\) tensors"):
        up.upscale(torch.rand(20, 20, 3))


def test_a_lazily_opened_picture_too_large_to_upscale_is_refused_before_it_is_decoded(tmp_path):
    """A 6000x6000 PNG at x16 had been decoded (0.9 s, 200 MB) before the refusal."""
    from sr_filter.errors import ImageTooLargeError

    Image.new("RGB", (6000, 6000)).save(tmp_path / "big.png")
    with Image.open(tmp_path / "big.png") as lazy:
        with pytest.raises(ImageTooLargeError, match="upscaled x16 it would be 96000x96000"):
            Upscaler("sr-cartoon-x4", tile=32).upscale(lazy, scale=16)
        assert lazy._im is None  # still not decoded


def test_a_bare_name_that_is_a_folder_here_is_said_to_be_one(tmp_path, monkeypatch):
    """`-m more`, where more is a folder in the working folder, had been "unknown model or preset 'more'"."""
    from sr_filter.errors import UnknownModelError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "more").mkdir()
    with pytest.raises(UnknownModelError, match=r"^more is a folder here, and no model or preset has that name; give a "
                                                r"weights file inside it, or a name from `sr-filter models`$"):
        Upscaler("more")
    (tmp_path / "photo").mkdir()
    assert Upscaler("photo", offline=True).model is not None  # a preset's name still wins over a folder of that name



def test_a_local_copy_of_a_manifest_model_has_its_licence(tmp_path):
    """Official weights downloaded by hand had been 'licence unknown (local file)'."""
    import shutil
    from pathlib import Path

    from sr_filter.models import load_model

    copy = tmp_path / "mine.pth"
    shutil.copy(Path(sr_filter.__file__).parent / "builtin" / "sr-cartoon-x4.pth", copy)
    entry = sr_filter.load_manifest().get("sr-cartoon-x4")
    assert load_model(str(copy)).license == f"{entry.license} (the file is sr-cartoon-x4@{entry.version})"
    state = torch.load(copy, weights_only=True)
    state["params"] = {k: v + 1e-3 for k, v in state["params"].items()}  # other weights, same network
    torch.save(state, copy)
    assert load_model(str(copy)).license == "unknown (local file)"


def test_upscale_file_points_a_video_to_upscale_video(tmp_path, cartoon):
    """A video given to upscale_file had been "not a readable image (unknown or damaged format)",
    or, to a .mkv output, blamed the input's name."""
    (tmp_path / "v.mp4").write_bytes(b"not read: the suffix says enough")
    for dst in ("x.png", "x.mkv"):
        with pytest.raises(SrFilterError, match=r"v.mp4 is a video; sr_filter.upscale_video\(src, dst\) upscales videos"):
            sr_filter.upscale_file(tmp_path / "v.mp4", tmp_path / dst, upscaler=cartoon)
        assert not (tmp_path / dst).exists()



def test_every_error_class_of_the_library_is_at_its_top_level():
    """DenoiseError, OfflineError, OutputIsInputError and others had been reachable only through
    sr_filter.errors, which has no list of its own: a caller could not tell what to catch."""
    import inspect

    from sr_filter import errors

    defined = {name for name, value in vars(errors).items()
               if inspect.isclass(value) and issubclass(value, SrFilterError) and value.__module__ == errors.__name__}
    assert defined <= set(sr_filter.__all__), sorted(defined - set(sr_filter.__all__))
    assert all(getattr(sr_filter, name) is getattr(errors, name) for name in defined)
    # the training errors are the library's too (they had lived in sr_filter.training only); a
    # training run's stop on a signal is a stop, not an error to catch
    from sr_filter.training import config, data, trainer

    own = {name for module in (config, data, trainer) for name, value in vars(module).items()
           if inspect.isclass(value) and issubclass(value, SrFilterError) and value.__module__ == module.__name__}
    assert own == {"TrainingStopped"}, own
    assert {"ConfigError", "DataError", "CheckpointError", "TrainingError"} <= defined


def test_a_grey_picture_stored_as_colour_comes_out_grey(cartoon, baby):
    """A grey picture saved as RGB (a scanned or manga page, a grey JPEG, a grey-palette GIF) had
    come out with colour fringes on its edges, up to 40 levels off grey with the anime models,
    where the same picture stored grey stays grey. It now comes out as the grey one does, in its
    own layout; a picture with any colour in it runs as before."""
    grey = baby.mean(axis=2).round().astype(np.uint8)
    alpha = np.linspace(0, 255, grey.shape[1]).astype(np.uint8)[None, :].repeat(grey.shape[0], 0)
    for stored, as_grey in ((np.dstack([grey] * 3), grey), (np.dstack([grey] * 3 + [alpha]), np.dstack([grey, alpha])),
                            (np.dstack([grey] * 3).astype(np.uint16) * 257, grey.astype(np.uint16) * 257)):
        out, expected = cartoon.upscale(stored), cartoon.upscale(as_grey)
        assert out.shape[2] == stored.shape[2] and out.dtype == stored.dtype
        assert all(np.array_equal(out[..., c], expected if expected.ndim == 2 else expected[..., 0]) for c in range(3))
        if stored.shape[2] == 4:
            assert np.array_equal(out[..., 3], expected[..., 1])
    tiled = Upscaler("realesr-animevideov3", tile=32).upscale(np.dstack([grey] * 3))
    assert (tiled == tiled[..., :1]).all() and np.abs(tiled[..., 0].astype(int) - cartoon.upscale(grey)).max() <= 1
    palette = Image.fromarray(grey).convert("P")  # a GIF's grey palette
    assert (lambda a: (a == a[..., :1]).all())(np.asarray(cartoon.upscale(palette).convert("RGB")))
    floats = np.dstack([grey] * 3).astype(np.float32) / 255
    floats[0, 0] = np.nan  # NaN in all three (read as 0): still grey, not fringed
    out = cartoon.upscale(floats)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    tinted = np.dstack([grey] * 3)
    tinted[0, 0, 2] ^= 1  # one pixel off grey: a colour picture, run as one
    frames = cartoon.upscale_batch([np.dstack([grey] * 3), tinted])  # video frames, one pass for both
    assert np.array_equal(frames[0][..., 1], cartoon.upscale(grey)) and (frames[0] == frames[0][..., :1]).all()
    assert np.array_equal(frames[1], cartoon.upscale(tinted)) and not (frames[1] == frames[1][..., :1]).all()


def _feathered(width: int, dtype=np.uint8) -> np.ndarray:
    """A red 64x96 layer whose alpha rises over ``width`` pixels from column 40 (a feather or shadow)."""
    top = np.iinfo(dtype).max
    x = np.arange(96)[None, :].repeat(64, 0)
    alpha = np.round(np.clip((x - 40) / width, 0, 1) * top).astype(dtype)
    colour = (np.array([200, 60, 60]) / 255 * top).round().astype(dtype)
    return np.dstack([np.broadcast_to(colour, (64, 96, 3)), alpha])


def test_a_feathered_edge_stays_soft_and_a_sharp_one_stays_sharp(cartoon):
    """Alpha runs through the network as a grey picture, and the anime models took a 6-pixel
    feather for a blurred edge: it came out about 2 pixels wide (up to 0.46 off a plain resize).
    Soft alpha is resized now (equal to Pillow's bicubic within rounding) at every scale, depth
    and tile size; an anti-aliased edge still gets the network's crisp one."""
    for width, dtype, scale in ((6, np.uint8, None), (10, np.uint16, None), (6, np.uint8, 2)):
        picture = _feathered(width, dtype)
        out = cartoon.upscale(picture, scale=scale)
        size = (96 * (scale or 4), 64 * (scale or 4))
        bicubic = np.asarray(Image.fromarray(picture[..., 3].astype(np.float32)).resize(size, Image.BICUBIC))
        assert np.abs(out[..., 3] - np.clip(bicubic, 0, np.iinfo(dtype).max)).max() <= 1, (width, dtype, scale)
    tiled = Upscaler("realesr-animevideov3", tile=32).upscale(_feathered(6))
    assert np.abs(tiled.astype(int) - cartoon.upscale(_feathered(6))).max() <= 1
    sharp = _feathered(1)  # 0, 255: a hard edge
    sharp[:, 41, 3] = 128  # anti-aliased
    out, network = cartoon.upscale(sharp)[..., 3], cartoon.upscale(sharp[..., 3])
    assert np.array_equal(out[:, 160:172], network[:, 160:172])  # the edge's columns (40 to 42), x4
    assert ((out[100] > 25) & (out[100] < 230)).sum() <= 3  # 10 % to 90 %: under one input pixel (bicubic: 6)


def test_soft_alpha_all_over_is_not_run_through_the_network(cartoon):
    """A picture whose transparency is soft everywhere (a vignette) runs the network once, for
    the colour: the alpha pass would have cost as much again and given nothing."""
    totals = []
    cartoon.upscale(_feathered(64)[:, :, :], progress=lambda done, total: totals.append(total))
    assert set(totals) == {64 * 96}
    totals.clear()
    cartoon.upscale(_feathered(1), progress=lambda done, total: totals.append(total))
    assert set(totals) == {2 * 64 * 96}  # a hard edge: colour and alpha


def test_the_public_annotations_resolve_without_importing_torch_at_import():
    """typing.get_type_hints (IDEs, sphinx-autodoc, validators) had raised NameError on
    Upscaler.__init__ ('torch'), upscale ('Progress'), upscale_file and upscale_animation
    ('Upscaler'): their types were imported only for type checkers. They resolve now, to the real
    classes, and `import sr_filter` still imports neither torch nor numpy. A fresh process: this
    one has imported everything."""
    code = textwrap.dedent("""
        import inspect, sys, typing
        import sr_filter
        assert "torch" not in sys.modules and "numpy" not in sys.modules
        failed = []
        for name in [*sr_filter.__all__, "Animation"]:
            obj = getattr(sr_filter, name)
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                members = [(f"{name}.{n}", m.fget if isinstance(m, property) else getattr(m, "__func__", m))
                           for n, m in vars(obj).items() if not n.startswith("_") or n == "__init__"]
            else:
                members = [(name, obj)]
            for label, function in members:
                if inspect.isfunction(function):
                    try:
                        typing.get_type_hints(function)
                    except Exception as exc:
                        failed.append(f"{label}: {exc!r}")
        assert not failed, failed
        import torch
        assert typing.get_type_hints(sr_filter.Upscaler.__init__)["device"] == str | torch.device
        assert typing.get_type_hints(sr_filter.upscale_file)["upscaler"] == sr_filter.Upscaler | None
        assert typing.get_type_hints(sr_filter.upscale_animation)["return"] is sr_filter.Animation
        assert "sr_filter" not in dir(sr_filter)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]


def test_upscale_file_takes_a_heic_photo_into_png_at_its_depth(cartoon, tmp_path):
    """sr_filter.upscale_file on a 10-bit HEIC: a 16-bit PNG, as the command line writes it; a
    .heic output is refused before the work, saying to name it .png."""
    deep = np.zeros((8, 12, 3), np.uint16)
    deep[..., 0] = np.linspace(0, 65535, 12).astype(np.uint16)
    (tmp_path / "photo.heic").write_bytes(heic(deep))
    sr_filter.upscale_file(tmp_path / "photo.heic", tmp_path / "photo.png", upscaler=cartoon)
    data = (tmp_path / "photo.png").read_bytes()
    assert data[24] == 16 and Image.open(tmp_path / "photo.png").size == (48, 32)
    with pytest.raises(ImageFormatError, match=r"read but not written; name the output \.png"):
        sr_filter.upscale_file(tmp_path / "photo.heic", tmp_path / "again.heic", upscaler=cartoon)
    assert not (tmp_path / "again.heic").exists()

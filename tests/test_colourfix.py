"""The colour fix (``--colour-fix``, ``Upscaler(colour_fix=True)``): flat colours come out as the
input's, detail stays the network's, and every image layout and entry point takes it. Real
networks throughout: the built-in realesr-animevideov3 is one that shifts flat colours."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sr_filter import Upscaler
from sr_filter.colourfix import colour_fixed
from sr_filter.imageops import make_pair
from sr_filter.metrics import measure, measure_sharpness

FLAT = [(200, 120, 40), (30, 60, 200), (128, 128, 128), (250, 230, 210)]


@pytest.fixture(scope="module")
def anime():
    return Upscaler("realesr-animevideov3", device="cpu", precision="fp32", backend="torch", tile=0)


@pytest.fixture(scope="module")
def fixing():
    return Upscaler("realesr-animevideov3", device="cpu", precision="fp32", backend="torch", tile=0, colour_fix=True)


def _flat(colour, size=(40, 40)) -> np.ndarray:
    image = np.empty(size + (3,), np.uint8)
    image[:] = colour
    return image


def test_flat_colours_come_out_as_the_input(anime, fixing):
    """The network lifts flat (200, 120, 40) by about 4 levels; fixed, each channel's mean is the input's."""
    shifts = []
    for colour in FLAT:
        plain = anime.upscale_array(_flat(colour))[40:-40, 40:-40].reshape(-1, 3).mean(0)
        fixed = fixing.upscale_array(_flat(colour))[40:-40, 40:-40].reshape(-1, 3).mean(0)
        shifts.append(np.abs(plain - colour).max())
        assert np.abs(fixed - colour).max() < 0.6, (colour, fixed)
    assert max(shifts) >= 2, shifts  # what there was to fix


def test_detail_stays_and_the_score_rises(anime, fixing, set5):
    """On Set5 x4 (MATLAB bicubic input) the fix raises PSNR-Y and keeps the edges as steep."""
    gains, sharp = [], []
    for path in sorted(set5.glob("*.png"))[:3]:
        hr, lr = make_pair(np.asarray(Image.open(path).convert("RGB"), dtype=np.float64), 4)
        lr = np.clip(np.round(lr), 0, 255).astype(np.uint8)
        plain, fixed = anime.upscale_array(lr), fixing.upscale_array(lr)
        assert np.array_equal(colour_fixed(lr, plain.copy()), fixed)  # the option is the function
        gains.append(measure(fixed, hr, 4)[0] - measure(plain, hr, 4)[0])
        sharp.append(measure_sharpness(fixed, hr, 4) / measure_sharpness(plain, hr, 4))
        change = fixed.astype(np.float64) - plain
        # the change is smooth: next to its own 4x4 mean it varies by a level or two at most
        blocks = change.reshape(change.shape[0] // 4, 4, change.shape[1] // 4, 4, 3).mean(axis=(1, 3))
        assert np.abs(change - np.repeat(np.repeat(blocks, 4, 0), 4, 1)).mean() < 0.5
    assert np.mean(gains) > 0.05, gains
    assert min(sharp) > 0.97, sharp


def test_transparent_pixels_take_no_part(fixing, anime):
    """Black under transparency must not darken the visible edge (the network saw bled colour)."""
    image = np.zeros((32, 48, 4), np.uint8)
    image[:, 24:] = (200, 120, 40, 255)
    fixed, plain = fixing.upscale_array(image), anime.upscale_array(image)
    visible = fixed[8:-8, 96:112, :3].reshape(-1, 3).mean(0)  # the first visible columns
    assert np.abs(visible - (200, 120, 40)).max() < 1.5, visible
    assert np.array_equal(fixed[..., 3], plain[..., 3])  # a hard edge: alpha exactly 0 or full both sides


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_a_smooth_alpha_keeps_its_level(fixing, anime, dtype):
    """The network lifted a smooth alpha ramp as it lifts colours: a half-transparent layer came out
    4.4 levels more opaque on average. A smooth ramp is resized now, not run through the network
    (softalpha), and the fix, which sets alpha's level over areas too, keeps it; alpha that comes
    out exactly transparent or opaque stays so."""
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    ramp = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))
    solid = np.zeros((30, 40), np.float32)
    solid[:, 30:] = 1  # a hard step as well: its exact 0 and full stay exact
    image = np.dstack([np.full((30, 80, 3), (0.8, 0.5, 0.2), np.float32), np.hstack([ramp, solid])])
    image = image.astype(dtype) if dtype == np.float32 else np.round(image * top).astype(dtype)
    plain, fixed = anime.upscale_array(image), fixing.upscale_array(image)
    level = lambda out: out[:, :160, 3].astype(np.float64).mean() / top  # noqa: E731
    assert abs(level(plain) - 0.5) < 0.5 / 255 and abs(level(fixed) - 0.5) < 0.5 / 255, (level(plain), level(fixed))
    exact = (plain[..., 3] == 0) | (plain[..., 3] == top)
    assert exact[:, 160:].mean() > 0.9 and np.array_equal(fixed[..., 3][exact], plain[..., 3][exact])


@pytest.mark.parametrize("layout", ["grey", "grey+alpha", "rgb16", "float", "x2.5"])
def test_every_layout_keeps_its_shape_dtype_and_flat_colour(fixing, layout):
    rng = np.random.default_rng(0)
    flat = {"grey": np.full((24, 24), 90, np.uint8),
            "grey+alpha": np.dstack([np.full((24, 24), 90, np.uint8), np.full((24, 24), 200, np.uint8)]),
            "rgb16": np.tile(np.array([51400, 30840, 10280], np.uint16), (24, 24, 1)),
            "float": np.tile(np.array([0.8, 0.5, 0.2], np.float32), (24, 24, 1)),
            "x2.5": _flat((200, 120, 40), (24, 24))}[layout]
    scale = 2.5 if layout == "x2.5" else None
    out = fixing.upscale_array(flat, scale=scale)
    size = 60 if scale else 96
    assert out.shape[:2] == (size, size) and out.shape[2:] == flat.shape[2:] and out.dtype == flat.dtype
    top = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535, np.dtype(np.float32): 1}[flat.dtype]
    colour = out[..., :3] if out.ndim == 3 and out.shape[2] >= 3 else (out[..., 0] if out.ndim == 3 else out)
    source = flat[..., :3] if flat.ndim == 3 and flat.shape[2] >= 3 else (flat[..., 0] if flat.ndim == 3 else flat)
    inner = slice(size // 4, -size // 4)
    assert np.abs(colour[inner, inner].astype(np.float64).mean((0, 1)) - source[0, 0]).max() / top < 0.6 / 255
    if layout == "grey+alpha":
        assert np.all(out[..., 1] == 200)
    noise = rng.integers(0, 255, (20, 28, 3), np.uint8)  # and detail is still there
    assert fixing.upscale_array(noise).std() > 20


def test_big_endian_and_integer_inputs_agree_with_the_float_path(fixing):
    """Big-endian samples had been read as floats (the correction then pulled everything to white)."""
    data = np.random.default_rng(2).integers(0, 65535, (8, 8, 3)).astype(np.uint16)
    assert np.array_equal(fixing.upscale_array(data.astype(">u2")), fixing.upscale_array(data))
    small = np.random.default_rng(3).integers(0, 255, (12, 16, 3)).astype(np.uint8)
    as_float = fixing.upscale_array(small.astype(np.float32) / 255)
    assert np.abs(fixing.upscale_array(small) / 255.0 - as_float).max() <= 1.5 / 255  # rounded once more: about a level


def test_batches_and_values_beyond_one_go_through_it(fixing):
    frames = [_flat((200, 120, 40), (24, 32)), _flat((30, 60, 200), (24, 32))]
    together = fixing.upscale_batch(frames)
    for frame, out in zip(frames, together):
        assert np.array_equal(out, fixing.upscale_array(frame))
    hdr = np.tile(np.array([1.5, 0.5, 0.2], np.float32), (16, 16, 1))  # beyond 0..1 is resized and added back
    out = fixing.upscale_array(hdr)
    assert abs(float(out[20:-20, 20:-20, 0].mean()) - 1.5) < 0.01 and abs(float(out[20:-20, 20:-20, 1].mean()) - 0.5) < 0.003


def test_the_option_is_checked_and_off_by_default(anime, tmp_path):
    from PIL import Image

    from sr_filter.errors import SrFilterError

    assert anime.colour_fix is False
    with pytest.raises(SrFilterError, match="colour_fix"):
        Upscaler("realesr-animevideov3", colour_fix="yes")
    with pytest.raises(SrFilterError, match="colour_fix is set on the Upscaler"):
        from sr_filter import upscale_file

        Image.new("RGB", (8, 8)).save(tmp_path / "a.png")  # a real file: a missing one is said first
        upscale_file(tmp_path / "a.png", tmp_path / "b.png", upscaler=anime, colour_fix=True)


def test_the_command_line_flag(tmp_path):
    from .test_cli import run

    Image.fromarray(_flat((200, 120, 40), (24, 24))).save(tmp_path / "in.png")
    for flag, name in (("--colour-fix", "fixed.png"), ("--color-fix", "spelled.png"), (None, "plain.png")):
        args = ["-q", "-m", "realesr-animevideov3", tmp_path / "in.png", "-o", tmp_path / name]
        result = run(*args, *([flag] if flag else []))
        assert result.returncode == 0, result.stderr
    fixed, spelled, plain = (np.asarray(Image.open(tmp_path / n), dtype=np.float64) for n in ("fixed.png", "spelled.png", "plain.png"))
    assert np.array_equal(fixed, spelled)
    assert np.abs(fixed[24:-24, 24:-24].mean((0, 1)) - (200, 120, 40)).max() < 0.6
    assert np.abs(plain[24:-24, 24:-24].mean((0, 1)) - (200, 120, 40)).max() >= 2


def test_video_frames_are_fixed_too(tmp_path, fixing, anime):
    from sr_filter import upscale_video

    from .videos import make_clip

    clip = make_clip(tmp_path / "clip.mkv", frames=2, codec="ffv1", audio=0)
    upscale_video(clip, tmp_path / "fixed.mkv", upscaler=fixing, codec="ffv1")
    upscale_video(clip, tmp_path / "plain.mkv", upscaler=anime, codec="ffv1")
    import av

    def frames(path):
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(video=0)]

    with av.open(str(clip)) as container:
        source = [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(video=0)]
    for src, fixed, plain in zip(source, frames(tmp_path / "fixed.mkv"), frames(tmp_path / "plain.mkv")):
        # mean colour over the picture: the fixed frames keep the source's (within the YUV round trip)
        assert np.abs(fixed.mean((0, 1)) - src.mean((0, 1))).max() <= np.abs(plain.mean((0, 1)) - src.mean((0, 1))).max() + 0.1


def test_the_cartoon_preset_turns_it_on_and_a_model_name_leaves_it_off():
    """realesr-animevideov3, the cartoon preset's model, lifts flat colours by up to 4 levels and
    loses 0.7-0.9 dB on painted art to it: the preset turns the fix on; its own name gives the
    published model's pixels; either way the user decides last."""
    from sr_filter.models import preset_colour_fix

    assert preset_colour_fix("cartoon") and preset_colour_fix(" Cartoon ")
    assert not preset_colour_fix("photo") and not preset_colour_fix(None) and not preset_colour_fix("realesr-animevideov3")
    assert Upscaler("cartoon", device="cpu").colour_fix is True
    assert Upscaler("cartoon", device="cpu", colour_fix=False).colour_fix is False
    assert Upscaler("realesr-animevideov3", device="cpu").colour_fix is False
    assert Upscaler("photo", device="cpu", offline=True, colour_fix=True).colour_fix is True
    assert ", colour fix" in Upscaler("cartoon", device="cpu").describe()


def test_the_command_line_turns_the_presets_choice_off(tmp_path):
    from .test_cli import run

    Image.fromarray(_flat((200, 120, 40), (24, 24))).save(tmp_path / "in.png")
    for flags, name in ((["--preset", "cartoon"], "preset.png"), (["--preset", "cartoon", "--no-colour-fix"], "off.png"),
                        (["-m", "realesr-animevideov3"], "model.png")):
        result = run("-q", tmp_path / "in.png", "-o", tmp_path / name, *flags)
        assert result.returncode == 0, result.stderr
    preset, off, model = (np.asarray(Image.open(tmp_path / n)) for n in ("preset.png", "off.png", "model.png"))
    assert np.array_equal(off, model) and not np.array_equal(preset, model)
    assert np.abs(preset[24:-24, 24:-24].mean((0, 1)) - (200, 120, 40)).max() < 0.6


def test_no_dark_band_beside_a_soft_outline(anime, fixing):
    """The network sharpens a soft outline; the difference next to it had been blurred back in as a
    dark band on either side (white paper 10 levels darker, 16 px wide at x4). Busy input now
    counts little: beside the line the fixed result is closer to the original than without it."""
    from PIL import ImageFilter

    hr = np.full((320, 320, 3), 255, np.uint8)
    hr[:, 150:162] = 0
    hr[:, 162:] = (230, 60, 40)
    lr = np.asarray(Image.fromarray(hr).filter(ImageFilter.GaussianBlur(4.8)).resize((80, 80), Image.BICUBIC))
    plain, fixed = anime.upscale_array(lr).astype(int), fixing.upscale_array(lr).astype(int)
    for side in (slice(100, 148), slice(164, 200)):  # the white paper and the red fill beside the line
        assert np.abs(fixed - hr)[:, side].mean() <= np.abs(plain - hr)[:, side].mean(), side
    assert np.abs(fixed - plain)[:, 100:148].max() <= 4

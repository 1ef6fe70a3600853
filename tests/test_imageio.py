"""Image files in and out at library level: formats, modes, bit depths, metadata, bad input.

Every file is generated here (or is a shared benchmark image) and checked by reading the
encoded bytes back with an independent reader where one exists (Pillow, tifffile).
"""

from __future__ import annotations

import io
import logging
import struct
import zlib

import numpy as np
import PIL
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

from sr_filter import Upscaler, imageio, limits, png
from sr_filter.errors import ImageFormatError, ImageTooLargeError, InputTooLargeError, OutputExistsError
from sr_filter.metadata import ImageMeta, srgb_profile

from .imagefiles import cmyk_profile, grey_profile, heic, png16_filtered, raw_exif


@pytest.fixture(scope="module")
def cartoon():
    return Upscaler("cartoon", tile=0)


@pytest.fixture(scope="module")
def bird(set5):
    return np.asarray(Image.open(set5 / "bird.png").convert("RGB"))[40:88, 40:104].copy()  # 48x64


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size but holds (almost) no pixel data: the shape of a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


# -- formats and modes -----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "TIFF", "GIF", "JPEG", "AVIF", "TGA", "PPM", "PAM"])
def test_rgb_round_trip_every_format(bird, fmt):
    options = {"quality": 100} if fmt in ("JPEG", "WEBP", "AVIF") else {}
    data = imageio.encode_image(bird, fmt, ImageMeta(), **options)
    if fmt != "PAM":  # Pillow reads no PAM
        assert Image.open(io.BytesIO(data)).format == fmt
    back, meta = imageio.read_image(data)
    assert back.shape == bird.shape and back.dtype == np.uint8 and meta.format == fmt
    error = np.abs(back.astype(int) - bird.astype(int))
    if fmt in ("PNG", "BMP", "TIFF", "TGA", "PPM", "PAM"):
        assert error.max() == 0
    elif fmt == "GIF":
        assert error.mean() < 12  # a 256-colour palette
    else:
        assert error.mean() < 2.5  # lossy at quality 100 (WebP's lossy mode is 4:2:0)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "AVIF", "TGA", "PPM", "PAM"])
def test_every_layout_and_depth_can_be_written(fmt):
    rng = np.random.default_rng(4)
    for channels in (0, 1, 2, 3, 4):
        for dtype, top in ((np.uint8, 255), (np.uint16, 65535), (np.float32, 1)):
            array = (rng.random((9, 7) if channels == 0 else (9, 7, channels)) * top).astype(dtype)
            if channels in (2, 4):
                array[..., -1] = np.where(np.arange(7) < 3, 0, top)[None, :]
            back, _ = imageio.read_image(imageio.encode_image(array, fmt))
            label = (fmt, channels, dtype.__name__)
            assert back.shape[:2] == (9, 7), label
            has_alpha = back.ndim == 3 and back.shape[2] in (2, 4)
            assert has_alpha == (channels in (2, 4) and fmt in ("PNG", "WEBP", "TIFF", "GIF", "AVIF", "TGA", "PAM")), label
            if has_alpha:
                assert np.array_equal(back[..., -1] == 0, array[..., -1] == 0), label
            if fmt in ("PNG", "TIFF", "PAM"):
                assert back.shape == array.shape or (channels == 1 and back.shape == array.shape[:2]), label
            if fmt in ("PNG", "TIFF", "PPM", "PAM"):  # Netpbm: 16 bits, as PNG
                expected = {np.uint8: np.uint8, np.uint16: np.uint16, np.float32: np.float32 if fmt == "TIFF" else np.uint16}
                assert back.dtype == expected[dtype], label


def test_quality_changes_lossy_output(bird):
    small = imageio.encode_image(bird, "JPEG", quality=20)
    large = imageio.encode_image(bird, "JPEG", quality=95)
    assert len(small) < len(large) / 2
    assert len(imageio.encode_image(bird, "WEBP", quality=10)) < len(imageio.encode_image(bird, "WEBP", quality=95))
    assert len(imageio.encode_image(bird, "AVIF", quality=20)) < len(imageio.encode_image(bird, "AVIF")) / 2
    lossless, _ = imageio.read_image(imageio.encode_image(bird, "WEBP", quality=100))
    assert np.array_equal(lossless, bird)


def test_a_lossless_webp_is_written_back_lossless_unless_a_quality_is_given(bird):
    """It had come out lossy at quality 90, without a word."""
    source = imageio.encode_image(bird, "WEBP", quality=100)
    array, meta = imageio.read_image(source)
    assert meta.lossless
    again = imageio.encode_image(array, "WEBP", meta)
    assert b"VP8L" in again[:64] and np.array_equal(imageio.read_image(again)[0], bird)
    assert b"VP8L" not in imageio.encode_image(array, "WEBP", meta, quality=80)  # asked for: lossy
    lossy, meta = imageio.read_image(imageio.encode_image(bird, "WEBP"))
    assert not meta.lossless and b"VP8L" not in imageio.encode_image(lossy, "WEBP", meta)


def test_grey_and_grey_alpha_stay_grey(bird):
    grey = np.asarray(Image.fromarray(bird).convert("L"))
    back, meta = imageio.read_image(_save(Image.fromarray(grey), "PNG"))
    assert back.shape == grey.shape and meta.mode == "L" and np.array_equal(back, grey)
    la = np.dstack([grey, np.full_like(grey, 77)])
    back, meta = imageio.read_image(_save(Image.fromarray(la, "LA"), "PNG"))
    assert back.shape == la.shape and np.array_equal(back, la)
    assert Image.open(io.BytesIO(imageio.encode_image(back, "PNG"))).mode == "LA"


def test_palette_with_and_without_transparency(bird):
    pal = Image.fromarray(bird).quantize(16)
    back, meta = imageio.read_image(_save(pal, "PNG"))
    assert meta.mode == "P" and back.shape == bird.shape and np.array_equal(back, np.asarray(pal.convert("RGB")))
    transparent = pal.copy()
    transparent.info["transparency"] = 3  # palette index 3 is see-through
    data = _save(transparent, "PNG", transparency=3)
    back, _ = imageio.read_image(data)
    assert back.shape == (*bird.shape[:2], 4)
    index = np.asarray(pal)
    assert np.array_equal(back[..., 3] == 0, index == 3) and (index == 3).any()
    gif, meta = imageio.read_image(_save(transparent, "GIF", transparency=3))
    assert meta.format == "GIF" and gif.shape[2] == 4 and np.array_equal(gif[..., 3] == 0, index == 3)


def test_colour_key_transparency_becomes_alpha(bird):
    key = tuple(int(v) for v in bird[0, 0])
    back, _ = imageio.read_image(_save(Image.fromarray(bird), "PNG", transparency=key))
    assert back.shape[2] == 4
    assert np.array_equal(back[..., 3] == 0, (bird == key).all(axis=2))


def test_gif_first_frame_of_an_animation(bird):
    frames = [Image.fromarray(bird), Image.fromarray(255 - bird)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:])
    back, meta = imageio.read_image(data)
    assert meta.frames == 2 and back.shape[:2] == bird.shape[:2]
    assert np.abs(back[..., :3].astype(int) - bird.astype(int)).mean() < 12  # the first frame, not the second


def test_soft_alpha_cut_for_gif_is_said(bird, caplog):
    """GIF transparency is on or off: a feather or drop shadow written as GIF is cut at alpha 128,
    and that had happened without a word (every other loss of the format is said). Said once, for a
    still as for an animation; not for alpha that is on or off already, nor for a GIF's own."""
    from sr_filter.animation import Animation, encode_animation

    rgba = np.dstack([bird, np.full(bird.shape[:2], 255, np.uint8)])
    rgba[:, :16, 3] = 0
    rgba[:, 16:32, 3] = np.linspace(0, 255, 16).astype(np.uint8)  # a 16-pixel feather: a quarter of the picture
    said = "GIF transparency is on or off: the partly transparent pixels (22% of the picture) are made opaque"
    for encode in (lambda meta: imageio.encode_image(rgba, "GIF", meta),
                   lambda meta: encode_animation(Animation([rgba, rgba[::-1].copy()], [100, 100], meta=meta), "GIF")):
        caplog.clear()
        with caplog.at_level("WARNING"):
            out = Image.open(io.BytesIO(encode(ImageMeta(format="PNG"))))
        assert [r.getMessage() for r in caplog.records if "GIF transparency" in r.getMessage()] == [
            said + " from alpha 128 and clear below (PNG, WebP and AVIF keep soft alpha)"], caplog.text
        assert np.array_equal(np.asarray(out.convert("RGBA"))[..., 3] == 0, rgba[..., 3] < 128)
        caplog.clear()
        with caplog.at_level("WARNING"):
            encode(ImageMeta(format="GIF"))
        assert "GIF transparency" not in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        imageio.encode_image(np.dstack([bird, np.where(rgba[..., 3] < 128, 0, 255).astype(np.uint8)]), "GIF")
    assert "GIF transparency" not in caplog.text


def test_rgba_to_jpeg_and_bmp_is_flattened_on_white(bird):
    rgba = np.dstack([bird, np.zeros(bird.shape[:2], np.uint8)])
    rgba[:, :32, 3] = 255
    for fmt in ("JPEG", "BMP"):
        out = np.asarray(Image.open(io.BytesIO(imageio.encode_image(rgba, fmt, quality=100))).convert("RGB")).astype(int)
        assert out[:, 40:].min() >= 250  # transparent half is white
        assert np.abs(out[:, 4:28] - bird[:, 4:28]).mean() < 3  # opaque half kept


def test_cmyk_is_converted_through_its_icc_profile():
    cmyk = np.zeros((8, 8, 4), np.uint8)
    cmyk[:, :4, 0] = 255  # cyan ink; this test profile prints it red
    image = Image.fromarray(cmyk, "CMYK")
    profile = cmyk_profile()
    back, meta = imageio.read_image(_save(image, "JPEG", icc_profile=profile, quality=100))
    expected = np.asarray(ImageCms.profileToProfile(
        Image.open(io.BytesIO(_save(image, "JPEG", icc_profile=profile, quality=100))),
        ImageCms.ImageCmsProfile(io.BytesIO(profile)), ImageCms.createProfile("sRGB"), outputMode="RGB"))
    assert meta.mode == "CMYK" and back.shape == (8, 8, 3)
    assert np.abs(back.astype(int) - expected.astype(int)).max() <= 1
    assert back[4, 1, 0] > 200 and back[4, 1, 2] < 60  # red: the profile was used, not the naive formula
    assert meta.icc_profile == srgb_profile()  # the output is sRGB and says so
    out = Image.open(io.BytesIO(imageio.encode_image(back, "PNG", meta)))
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"]))).strip().startswith("sRGB")
    naive, meta = imageio.read_image(_save(image, "TIFF"))  # no profile: Pillow's formula
    assert meta.icc_profile is None and naive[4, 1, 0] < 30 and naive[4, 1, 2] > 200  # cyan


# -- 16 bit and float ------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("interlaced", [False, True])
def test_16bit_png_is_read_exactly(channels, interlaced):
    """All five PNG filter types, plain and Adam7, written by an independent encoder."""
    rng = np.random.default_rng(channels)
    array = (rng.random((13, 11, channels)) * 65535).astype(np.uint16)
    array[:, :4] //= 300  # small values: low bytes matter
    back, meta = imageio.read_image(png16_filtered(array, interlaced=interlaced))
    assert back.dtype == np.uint16
    assert np.array_equal(back.reshape(array.shape), array)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_round_trip_with_metadata(channels):
    rng = np.random.default_rng(7)
    array = (rng.random((9, 14, channels)) * 65535).astype(np.uint16)
    if channels == 1:
        array = array[:, :, 0]
    icc = srgb_profile() if channels >= 3 else srgb_profile()[:16] + b"GRAY" + srgb_profile()[20:]  # grey pixels, grey profile
    meta = ImageMeta(icc_profile=icc, dpi=(72.0, 72.0), text={"Title": "deep", "Comment": "ünïcode"})
    data = imageio.encode_image(array, "PNG", meta, scale=2)
    back, got = imageio.read_image(data)
    assert back.dtype == np.uint16 and np.array_equal(back, array)
    assert got.icc_profile == meta.icc_profile and got.text == meta.text
    assert got.dpi == pytest.approx((144, 144), abs=0.1)


def test_float_is_written_as_16bit_png_and_float_tiff():
    ramp = np.linspace(0, 1, 64 * 3, dtype=np.float32).reshape(8, 8, 3)
    png, _ = imageio.read_image(imageio.encode_image(ramp, "PNG"))
    assert png.dtype == np.uint16 and np.abs(png / 65535 - ramp).max() < 1e-4
    tif, meta = imageio.read_image(imageio.encode_image(ramp, "TIFF"))
    assert tif.dtype == np.float32 and np.array_equal(tif, ramp) and meta.mode == "float32"


def test_16bit_survives_the_whole_upscale(cartoon, bird):
    deep = bird.astype(np.uint16) * 257 + np.arange(bird.shape[1], dtype=np.uint16)[None, :, None] * 3
    data = imageio.encode_image(deep, "PNG")
    array, meta = imageio.read_image(data)
    out = cartoon.upscale_array(array)
    assert out.dtype == np.uint16 and len(np.unique(out)) > 4 * len(np.unique(out >> 8))
    back, _ = imageio.read_image(imageio.encode_image(out, "PNG", meta, scale=4))
    assert np.array_equal(back, out)
    tiff, _ = imageio.read_image(imageio.encode_image(out, "TIFF", meta, scale=4))
    assert np.array_equal(tiff, out)


def test_pil_16bit_grey_through_the_api(cartoon):
    grey = (np.arange(20 * 24, dtype=np.uint16).reshape(20, 24) * 131)
    out = cartoon.upscale(Image.fromarray(grey))
    assert out.mode == "I;16" and out.size == (96, 80) and len(np.unique(np.asarray(out))) > 256


# -- TIFF layouts ----------------------------------------------------------------------------
def _tiff(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def test_tiff_layouts(caplog):
    rng = np.random.default_rng(3)
    rgb = (rng.random((6, 10, 3)) * 65535).astype(np.uint16)
    alpha = (rng.random((6, 10, 1)) * 65535).astype(np.uint16)
    grey = rgb[:, :, 0]

    chunky, _ = imageio.read_image(_tiff(rgb, photometric="rgb"))
    assert np.array_equal(chunky, rgb)
    planar, _ = imageio.read_image(_tiff(np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate"))
    assert np.array_equal(planar, rgb)
    one, _ = imageio.read_image(_tiff(grey, photometric="minisblack"))
    assert one.shape == grey.shape and one.dtype == np.uint16 and np.array_equal(one, grey)
    white, _ = imageio.read_image(_tiff(grey, photometric="miniswhite"))
    assert np.array_equal(white, 65535 - grey)  # min-is-white: 0 means white
    rgba = np.concatenate([rgb, alpha], 2)
    for extra in ("unassalpha", "unspecified"):
        got, _ = imageio.read_image(_tiff(rgba, photometric="rgb", extrasamples=[extra]))
        assert np.array_equal(got, rgba)
    planar_rgba, _ = imageio.read_image(_tiff(np.moveaxis(rgba, -1, 0), photometric="rgb", planarconfig="separate", extrasamples=["unassalpha"]))
    assert np.array_equal(planar_rgba, rgba)
    # premultiplied alpha is un-premultiplied (the output stores unassociated alpha)
    half = np.concatenate([rgb // 2, np.full_like(alpha, 32768)], 2)
    got, _ = imageio.read_image(_tiff(half, photometric="rgb", extrasamples=["assocalpha"]))
    expected = np.clip(np.rint((rgb // 2) * (65535 / 32768)), 0, 65535)
    assert np.abs(got[..., :3].astype(int) - expected).max() <= 1 and np.array_equal(got[..., 3:], half[..., 3:])
    # five samples: RGB, alpha, and a mask that is dropped, and said to be (it had been dropped without a word)
    five = np.concatenate([rgb, alpha, alpha // 3], 2)
    with caplog.at_level("WARNING"):
        got, _ = imageio.read_image(_tiff(five, photometric="rgb", extrasamples=["unassalpha", "unspecified"]), name="five.tif")
    assert np.array_equal(got, rgba)
    assert "five.tif: 1 extra sample(s) per pixel beside the colour and alpha are left out" in caplog.text
    grey_alpha, _ = imageio.read_image(_tiff(np.dstack([grey, alpha[..., 0]]), photometric="minisblack", extrasamples=["unassalpha"]))
    assert grey_alpha.shape == (6, 10, 2)
    floats = (rgb / 65535).astype(np.float32)
    got, meta = imageio.read_image(_tiff(floats, photometric="rgb"))
    assert got.dtype == np.float32 and np.array_equal(got, floats)
    eight, _ = imageio.read_image(_tiff(np.moveaxis((rgb >> 8).astype(np.uint8), -1, 0), photometric="rgb", planarconfig="separate"))
    assert np.array_equal(eight, (rgb >> 8).astype(np.uint8))


def test_lzw_tiff_decodes_with_or_without_imagecodecs(bird):
    """tifffile needs the optional imagecodecs for LZW; without it Pillow decodes (grey 16-bit stays 16)."""
    back, _ = imageio.read_image(_save(Image.fromarray(bird), "TIFF", compression="tiff_lzw"))
    assert np.array_equal(back, bird)
    grey = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 21)
    back, _ = imageio.read_image(_save(Image.fromarray(grey), "TIFF", compression="tiff_lzw"))
    assert back.dtype == np.uint16 and np.array_equal(back, grey)


def test_tiff_tags_when_only_tifffile_can_open_it():
    """Float RGB and five-sample TIFFs: Pillow cannot open them, their ICC, DPI and orientation still count."""
    rgb = np.random.default_rng(2).random((6, 10, 3)).astype(np.float32)
    for array, kwargs in [(rgb, {}), ((np.random.default_rng(3).random((6, 10, 5)) * 65535).astype(np.uint16), {"extrasamples": ["unassalpha", "unspecified"]})]:
        data = _tiff(array, photometric="rgb", resolution=(100, 100), resolutionunit="CENTIMETER",
                     extratags=[(274, "H", 1, 6, True), (34675, 7, len(srgb_profile()), srgb_profile(), True)], **kwargs)
        with pytest.raises(Image.UnidentifiedImageError):  # the precondition: Pillow cannot open it
            Image.open(io.BytesIO(data))
        got, meta = imageio.read_image(data)
        assert got.shape[:2] == (10, 6) and np.array_equal(got[..., :3], np.rot90(array[..., :3], -1))
        assert meta.icc_profile == srgb_profile() and meta.dpi == pytest.approx((254, 254))


def test_tiff_output_keeps_alpha_icc_and_scales_dpi():
    rgba = (np.random.default_rng(5).random((6, 8, 4)) * 65535).astype(np.uint16)
    data = imageio.encode_image(rgba, "TIFF", ImageMeta(icc_profile=srgb_profile(), dpi=(300.0, 300.0)), scale=2)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        assert np.array_equal(page.asarray(), rgba) and int(page.extrasamples[0]) == 2
        assert page.tags["InterColorProfile"].value == srgb_profile()
    assert Image.open(io.BytesIO(data)).info["dpi"] == pytest.approx((600, 600))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _jfif(data: bytes, unit: int, x: int, y: int) -> bytes:
    """A JPEG with its JFIF header's density unit and values set (Pillow writes DPI only)."""
    assert data[6:11] == b"JFIF\x00"
    return data[:13] + bytes([unit]) + struct.pack(">HH", x, y) + data[18:]


def _tiff_resolution(data: bytes) -> tuple[int, float, float]:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        tags = tif.pages[0].tags
        x, y = (tags[name].value[0] / tags[name].value[1] for name in ("XResolution", "YResolution"))
        return int(tags["ResolutionUnit"].value), x, y


def test_a_density_in_centimetres_stays_in_centimetres(caplog):
    """A JFIF header's or TIFF's density per centimetre had come out per inch (118 dots/cm at x4:
    1199 dpi); the printed size was kept, the unit the scanner wrote was not."""
    rgb = (np.random.default_rng(7).random((6, 8, 3)) * 255).astype(np.uint8)
    jpeg = _jfif(imageio.encode_image(rgb, "JPEG", ImageMeta(dpi=(72.0, 72.0))), 2, 118, 118)
    tiff = _tiff(rgb, photometric="rgb", resolution=(100, 100), resolutionunit="CENTIMETER")
    for source, per_cm in ((jpeg, 118), (tiff, 100)):
        _, meta = imageio.read_image(source)
        assert meta.dpi_unit == "cm" and meta.dpi == pytest.approx((per_cm * 2.54, per_cm * 2.54), abs=0.01)
        out = imageio.encode_image(rgb, "JPEG", meta, scale=4)
        assert out[13] == 2 and struct.unpack(">HH", out[14:18]) == (per_cm * 4, per_cm * 4)
        for deep in (rgb, rgb.astype(np.uint16) * 257):  # Pillow's TIFF writer, and tifffile's
            unit, x, y = _tiff_resolution(imageio.encode_image(deep, "TIFF", meta, scale=4))
            assert unit == 3 and (x, y) == pytest.approx((per_cm * 4, per_cm * 4), abs=0.01)
        png_dpi = Image.open(io.BytesIO(imageio.encode_image(rgb, "PNG", meta, scale=4))).info["dpi"]
        assert png_dpi == pytest.approx((per_cm * 4 * 2.54, per_cm * 4 * 2.54), abs=0.1)  # pixels per metre: no unit to keep
    _, inches = imageio.read_image(imageio.encode_image(rgb, "JPEG", ImageMeta(dpi=(300.0, 300.0))))
    assert inches.dpi_unit == "inch"


def test_a_pixel_aspect_ratio_without_a_density_is_kept(caplog):
    """Non-square pixels stated with no unit (PNG pHYs unit 0, JFIF unit 0, TIFF ResolutionUnit 1)
    had been dropped without a word: the output showed square pixels."""
    rgb = (np.random.default_rng(8).random((6, 8, 3)) * 255).astype(np.uint8)
    plain = imageio.encode_image(rgb, "PNG")
    png_in = plain[:33] + _chunk(b"pHYs", struct.pack(">IIB", 2000, 1000, 0)) + plain[33:]
    jpeg_in = _jfif(imageio.encode_image(rgb, "JPEG", ImageMeta(dpi=(72.0, 72.0))), 0, 2, 1)
    tiff_in = _tiff(rgb, photometric="rgb", resolution=(2, 1), resolutionunit="NONE")
    for source, aspect in ((png_in, (2000, 1000)), (jpeg_in, (2, 1)), (tiff_in, (2, 1))):
        _, meta = imageio.read_image(source)
        assert meta.aspect == aspect and meta.dpi is None
        assert Image.open(io.BytesIO(imageio.encode_image(rgb, "PNG", meta, scale=4))).info["aspect"] == aspect
        jpeg = imageio.encode_image(rgb, "JPEG", meta, scale=4)
        assert jpeg[13] == 0 and struct.unpack(">HH", jpeg[14:18]) == aspect
        for deep in (rgb, rgb.astype(np.uint16) * 257):
            unit, x, y = _tiff_resolution(imageio.encode_image(deep, "TIFF", meta, scale=4))
            assert unit == 1 and x / y == 2
            assert imageio.read_image(imageio.encode_image(deep, "TIFF", meta))[1].aspect == (2, 1)
        with caplog.at_level(logging.WARNING):
            imageio.encode_image(rgb, "WEBP", meta)
        assert "WebP cannot hold the pixel aspect ratio (1:2, width to height)" in caplog.text  # twice as dense across
        caplog.clear()
    # a picture turned upright by its EXIF orientation turns its pixels' shape with it
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", exif=raw_exif((0x0112, 3, 1, struct.pack("<H", 6))))
    _, meta = imageio.read_image(_jfif(buffer.getvalue(), 0, 2, 1))
    assert meta.aspect == (1, 2)
    # a JPEG that states its density in EXIF alone (no JFIF header): both axes and the unit, and a
    # ratio with no unit, as for JFIF (Pillow reads EXIF's X alone, and a ratio as dpi: 1:2 had become 2 dpi)
    def exif_only(tags: dict) -> bytes:
        exif = Image.Exif()
        exif.update(tags)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "JPEG", exif=exif.tobytes())
        data = buffer.getvalue()
        return data[:2] + data[4 + struct.unpack(">H", data[4:6])[0]:]  # the JFIF segment left out

    _, meta = imageio.read_image(exif_only({274: 6, 282: 100.0, 283: 50.0, 296: 3}))  # per cm, turned upright
    assert (meta.dpi, meta.dpi_unit, meta.aspect) == ((127.0, 254.0), "cm", None)
    out = imageio.encode_image(rgb, "JPEG", meta, scale=2)
    assert out[13] == 2 and struct.unpack(">HH", out[14:18]) == (100, 200)
    _, meta = imageio.read_image(exif_only({282: 1.0, 283: 2.0, 296: 1}))
    assert (meta.dpi, meta.aspect) == (None, (1, 2))
    square = plain[:33] + _chunk(b"pHYs", struct.pack(">IIB", 1000, 1000, 0)) + plain[33:]
    assert imageio.read_image(square)[1].aspect is None  # square pixels: nothing to keep


def test_unsupported_tiff_sample_type_is_a_clear_error():
    with pytest.raises(ImageFormatError, match="int32 samples"):
        imageio.read_image(_tiff(np.ones((4, 4), np.int32)))


# -- metadata --------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_and_reset(bird, orientation):
    image = Image.fromarray(bird)
    exif = image.getexif()
    exif[0x0112] = orientation
    data = _save(image, "PNG", exif=exif.tobytes())
    array, meta = imageio.read_image(data)
    assert np.array_equal(array, np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")))
    out = Image.open(io.BytesIO(imageio.encode_image(array, "JPEG", meta)))
    assert out.getexif().get(0x0112) == 1 and out.size == (array.shape[1], array.shape[0])


@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 7, 8])
def test_a_turn_by_90_degrees_swaps_the_horizontal_and_vertical_resolution(bird, orientation):
    # 72 DPI across and 144 down, stored sideways (orientation 6): upright, 144 is across
    from PIL.TiffImagePlugin import IFDRational

    image = Image.fromarray(bird)
    exif = image.getexif()
    exif[0x0112], exif[0x011A], exif[0x011B], exif[0x0128] = orientation, IFDRational(72), IFDRational(144), 2
    data = _save(image, "JPEG", exif=exif.tobytes(), dpi=(72, 144))
    array, meta = imageio.read_image(data)
    turned = orientation in (5, 6, 7, 8)
    assert meta.dpi == ((144.0, 72.0) if turned else (72.0, 144.0))
    for fmt in ("JPEG", "PNG", "TIFF"):
        out = Image.open(io.BytesIO(imageio.encode_image(array, fmt, meta, scale=2.0)))
        assert out.info["dpi"] == pytest.approx((288, 144) if turned else (144, 288), abs=0.05), fmt
        if fmt != "TIFF":
            written = out.getexif()
            assert (float(written[0x011A]), float(written[0x011B])) == ((288, 144) if turned else (144, 288)), fmt


def test_metadata_carried_and_updated(bird, tmp_path):
    image = Image.fromarray(bird)
    exif = raw_exif(  # byte by byte: Pillow 10 cannot write an EXIF sub-IFD built through its API
        (0x010F, 2, 13, b"Camera Maker\0"), (0x0112, 3, 1, struct.pack("<H", 6)),
        sub=((0xA002, 4, 1, struct.pack("<I", bird.shape[1])), (0xA003, 4, 1, struct.pack("<I", bird.shape[0]))),
    )
    icc = srgb_profile()
    path = tmp_path / "in.jpg"
    path.write_bytes(_save(image, "JPEG", exif=exif, icc_profile=icc, dpi=(150, 150), quality=95,
                           xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>kept</x:xmpmeta>", comment=b"a comment"))
    array, meta = imageio.read_image(path)
    assert array.shape == (64, 48, 3)  # rotated upright
    big = np.repeat(np.repeat(array, 3, 0), 3, 1)
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        out = Image.open(io.BytesIO(imageio.encode_image(big, fmt, meta, scale=3)))
        assert out.info.get("icc_profile") == icc, fmt
        got = out.getexif()
        assert got.get(0x010F) == "Camera Maker" and got.get(0x0112) == 1, fmt
        assert got.get_ifd(0x8769).get(0xA002) == 144 and got.get_ifd(0x8769).get(0xA003) == 192, fmt
        if fmt != "WEBP":  # WebP has no resolution field
            assert out.info["dpi"] == pytest.approx((450, 450), abs=0.5), fmt
        if fmt in ("JPEG", "WEBP", "PNG"):
            assert b"kept" in (out.info.get("xmp") or out.info.get("XML:com.adobe.xmp", "").encode()), fmt
    assert Image.open(io.BytesIO(imageio.encode_image(big, "JPEG", meta, scale=3))).info.get("comment") == b"a comment"
    assert Image.open(io.BytesIO(imageio.encode_image(big, "BMP", meta, scale=3))).info["dpi"] == pytest.approx((450, 450), abs=1)


def test_tiff_without_resolution_gets_no_dpi(bird):
    """Pillow reports 1x1 DPI for a TIFF without resolution tags; the output must claim none."""
    data = _save(Image.fromarray(bird), "TIFF")
    assert Image.open(io.BytesIO(data)).info.get("dpi") == (1, 1)  # the precondition
    array, meta = imageio.read_image(data)
    assert meta.dpi is None
    for fmt in ("PNG", "JPEG"):
        assert "dpi" not in Image.open(io.BytesIO(imageio.encode_image(array, fmt, meta, scale=4))).info, fmt
    # BMP had been written at Pillow's 96 dpi; 0 pixels per metre is the format's "not stated" (which
    # Pillow before 11.1 reports as 0 dpi, later ones not at all), and reads back as none
    bmp = imageio.encode_image(array, "BMP", meta, scale=4)
    assert struct.unpack("<ii", bmp[38:46]) == (0, 0)
    assert imageio.read_image(bmp)[1].dpi is None
    with tifffile.TiffFile(io.BytesIO(imageio.encode_image(array, "TIFF", meta, scale=4))) as tif:
        assert "XResolution" not in tif.pages[0].tags


@pytest.mark.parametrize("description", ["ImageJ=1.11a\nimages=2\nslices=2\nhyperstack=true\n", '{"shape": [2, 64, 64, 3]}'])
def test_tiff_layout_descriptions_are_not_carried(bird, description):
    """ImageJ's stack header and tifffile's shape record describe the input file's layout."""
    data = _tiff(bird, photometric="rgb", description=description, software="tifffile.py", metadata=None)
    _, meta = imageio.read_image(data)
    exif = Image.Exif()
    exif.load(meta.exif or b"")
    assert 0x010E not in exif and 0x0131 not in exif
    kept = _tiff(bird, photometric="rgb", description="Harbour at dawn", software="Darktable 4.8", metadata=None)
    exif.load(imageio.read_image(kept)[1].exif)
    assert exif.get(0x010E) == "Harbour at dawn" and exif.get(0x0131) == "Darktable 4.8"


@pytest.mark.parametrize("form", [b'<rdf:Description tiff:Orientation="6"/>', b"<tiff:Orientation>6</tiff:Orientation>"])
def test_xmp_orientation_is_reset_with_the_exif_one(bird, form):
    """Viewers that read XMP would turn the upright output a second time."""
    xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/' xmlns:tiff='http://ns.adobe.com/tiff/1.0/'>" + form + b"</x:xmpmeta>"
    image = Image.fromarray(bird)
    exif = image.getexif()
    exif[0x0112] = 6
    array, meta = imageio.read_image(_save(image, "JPEG", exif=exif.tobytes(), xmp=xmp))
    assert array.shape[:2] == bird.shape[1::-1]
    out = Image.open(io.BytesIO(imageio.encode_image(array, "JPEG", meta))).info["xmp"]
    assert b"6" not in out and (b'tiff:Orientation="1"' in out or b"<tiff:Orientation>1<" in out)
    png = PngImagePlugin.PngInfo()  # PNG to PNG: the packet read as a text chunk had been written back as it was
    png.add_itxt("XML:com.adobe.xmp", xmp.decode())
    array, meta = imageio.read_image(_save(image, "PNG", exif=exif.tobytes(), pnginfo=png))
    assert array.shape[:2] == bird.shape[1::-1]
    out = Image.open(io.BytesIO(imageio.encode_image(array, "PNG", meta))).info["XML:com.adobe.xmp"].encode()
    assert b"6" not in out and (b'tiff:Orientation="1"' in out or b"<tiff:Orientation>1<" in out)


def test_an_icc_profile_is_written_only_where_it_fits_the_pixels(bird):
    """WebP has no grey: a grey picture becomes RGB there, and a grey profile on RGB pixels is
    rejected by colour-managed viewers. (The grey profile is the sRGB one with its colour space
    field set to GRAY: the field is what decides, for viewers and here.)"""
    grey_icc = srgb_profile()[:16] + b"GRAY" + srgb_profile()[20:]
    grey = np.asarray(Image.fromarray(bird).convert("L"))
    meta = ImageMeta(icc_profile=grey_icc)
    assert Image.open(io.BytesIO(imageio.encode_image(grey, "PNG", meta))).info["icc_profile"] == grey_icc
    webp = Image.open(io.BytesIO(imageio.encode_image(grey, "WEBP", meta)))
    assert webp.mode == "RGB" and "icc_profile" not in webp.info
    rgb_on_grey = Image.open(io.BytesIO(imageio.encode_image(grey, "PNG", ImageMeta(icc_profile=srgb_profile()))))
    assert rgb_on_grey.mode == "L" and "icc_profile" not in rgb_on_grey.info


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP", "AVIF"])
def test_a_cmyk_or_damaged_profile_on_rgb_pixels_is_left_out_with_a_warning(bird, fmt, caplog):
    """An RGB JPEG carrying a CMYK profile had been written as an RGB file with that profile, and
    240 bytes that are no profile were copied too, both without a word."""
    for icc, words in ((cmyk_profile(), "the CMYK ICC profile does not fit the colour output"),
                       (b"\0" * 240, "the ICC profile is damaged")):
        source = _save(Image.fromarray(bird), "JPEG", icc_profile=icc)
        caplog.clear()
        with caplog.at_level("WARNING"):
            array, meta = imageio.read_image(source)
            out = Image.open(io.BytesIO(imageio.encode_image(array, fmt, meta)))
        assert out.mode == "RGB" and "icc_profile" not in out.info and words in caplog.text, (fmt, caplog.text)


def test_png_text_chunks_carried(bird):
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a bird")
    info.add_text("Software", "zipped", zip=True)
    info.add_itxt("Description", "Vögel – birds")
    array, meta = imageio.read_image(_save(Image.fromarray(bird), "PNG", pnginfo=info, dpi=(96, 96)))
    assert meta.text == {"Title": "a bird", "Software": "zipped", "Description": "Vögel – birds"}
    data = imageio.encode_image(array, "PNG", meta, scale=4)
    out = Image.open(io.BytesIO(data))
    assert {k: out.text[k] for k in meta.text} == meta.text
    assert out.info["dpi"] == pytest.approx((384, 384), abs=0.5)
    # each chunk as the file stored it: tEXt, compressed zTXt, iTXt
    assert data.count(b"tEXtTitle\x00") == data.count(b"zTXtSoftware\x00") == data.count(b"iTXtDescription\x00") == 1
    # a picture whose text came from elsewhere (an array and its meta): ASCII as tEXt, which every reader reads,
    # the rest as UTF-8 iTXt
    made = imageio.encode_image(array, "PNG", ImageMeta(text=dict(meta.text)))
    assert made.count(b"tEXtTitle\x00") == made.count(b"tEXtSoftware\x00") == made.count(b"iTXtDescription\x00") == 1


def test_png_text_chunks_are_written_back_as_stored():
    """Two chunks of one keyword had become one (the last), an iTXt's language tag and translated
    keyword were dropped, and a compressed zTXt was written uncompressed (a 430-byte PNG holding
    300 kB of zTXt came out 300 kB larger)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Dup", "one")
    info.add_text("Dup", "two")
    info.add_itxt("Title", "Hallo", lang="de", tkey="Titel")
    info.add_text("Big", "x" * 300_000, zip=True)
    source = _save(Image.new("RGB", (8, 8), (9, 99, 199)), "PNG", pnginfo=info)
    array, meta = imageio.read_image(source)
    data = imageio.encode_image(array, "PNG", meta)
    assert png.text_chunks(data) == png.text_chunks(source) and len(png.text_chunks(source)) == 4
    assert len(data) < 10_000


# -- alpha: exactly transparent and exactly opaque away from edges --------------------------------
@pytest.mark.parametrize("dtype,scale", [(np.uint8, None), (np.uint16, None), (np.uint8, 3), (np.float32, None)])
def test_alpha_away_from_any_edge_stays_exact(cartoon, bird, dtype, scale):
    """A sticker on a wide transparent margin: the network sees zeros beyond the image and adds
    its biases, which left alpha 1-2 along the border, so trimming tools and GIF's on/off
    transparency saw content reaching the edges."""
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    n = 40
    yy, xx = np.mgrid[:n, :n]
    alpha = np.where((yy - 20) ** 2 + (xx - 20) ** 2 <= 8**2, 1.0, 0.0)  # a disc 12 px from every border
    alpha[18:23, 18:23] = 0.5  # a half-transparent hole inside
    rgba = np.dstack([bird[:n, :n] / 255.0, alpha]) * top
    rgba = rgba.astype(dtype)
    out = cartoon.upscale_array(rgba, scale)
    s = out.shape[0] / n
    oy, ox = np.mgrid[: out.shape[0], : out.shape[1]]
    far = np.sqrt(((oy + 0.5) / s - 20) ** 2 + ((ox + 0.5) / s - 20) ** 2)
    assert (out[..., 3][far > 8 + 2.5] == 0).all()  # beyond the disc's edge and its neighbours
    solid = (far < 8 - 2.5) & ((np.abs((oy + 0.5) / s - 20.5) > 4.5) | (np.abs((ox + 0.5) / s - 20.5) > 4.5))
    assert (out[..., 3][solid] == top).all()
    assert 0 < out[..., 3][int(20.5 * s), int(20.5 * s)] < top  # the half-transparent hole is the network's


# -- alpha: no dark fringes ------------------------------------------------------------------
def test_transparent_edges_have_no_dark_fringe(cartoon, set5):
    """A cut-out on a transparent background whose hidden colour is black (as many editors save it).

    Upscaling colour and alpha naively drags the black into the visible edge. Our path (colour
    bled under the transparency first) keeps the edge within a few levels of the same picture
    upscaled without any transparency; the naive path is an order of magnitude darker.
    """
    rgb = np.asarray(Image.open(set5 / "butterfly.png").convert("RGB"))[60:156, 60:156].copy()
    n, s, radius = rgb.shape[0], cartoon.scale, 36
    yy, xx = np.mgrid[:n, :n]
    inside = (yy - n / 2 + 0.5) ** 2 + (xx - n / 2 + 0.5) ** 2 <= radius**2
    rgba = np.dstack([rgb * inside[..., None], inside * 255]).astype(np.uint8)
    ours = cartoon.upscale_array(rgba)
    reference = cartoon.upscale_array(rgb)
    colour = torch.from_numpy(rgba[..., :3] / np.float32(255)).permute(2, 0, 1)[None].float()
    alpha = torch.from_numpy(rgba[..., 3] / np.float32(255))[None, None].float().expand(-1, 3, -1, -1).contiguous()
    naive_rgb = cartoon.run(colour)[0].permute(1, 2, 0).numpy() * 255
    naive_alpha = cartoon.run(alpha)[0].mean(0).numpy() * 255
    oy, ox = np.mgrid[: n * s, : n * s]
    edge = np.abs(np.sqrt(((oy + 0.5) / s - n / 2) ** 2 + ((ox + 0.5) / s - n / 2) ** 2) - radius) <= 0.75

    def darkening(colour_out, alpha_out):
        band = edge & (alpha_out >= 64)  # the visible part of the edge
        luma = np.array([0.299, 0.587, 0.114])
        return float(((reference.astype(float) @ luma) - (colour_out[..., :3].astype(float) @ luma))[band].mean())

    ours_dark, naive_dark = darkening(ours, ours[..., 3]), darkening(naive_rgb, naive_alpha)
    assert ours_dark < 6, ours_dark
    assert naive_dark > 5 * max(ours_dark, 1) and naive_dark > 15, (ours_dark, naive_dark)


@pytest.mark.parametrize("shape", [(32, 256), (256, 32), (1, 2), (3, 40)])
def test_wide_and_tall_cut_outs_have_no_dark_fringe_either(cartoon, shape):
    # The fill under the transparency stopped at the pyramid level where the short side was one
    # pixel; a banner half transparent had no visible colour there and filled in black.
    h, w = shape
    rgba = np.zeros((h, w, 4), np.uint8)
    if w >= h:
        rgba[:, w // 2:] = [20, 150, 10, 255]
    else:
        rgba[h // 2:] = [20, 150, 10, 255]
    out = cartoon.upscale_array(rgba)
    reference = cartoon.upscale_array(np.broadcast_to(np.uint8([20, 150, 10]), (h, w, 3)).copy())  # all opaque
    edge = (out[..., 3] > 0) & (out[..., 3] < 255)
    assert edge.any()
    darker = reference[edge].astype(int) - out[edge][:, :3].astype(int)
    assert darker.max() <= 6, darker.max(axis=0)  # was up to 38 levels darker


def _packed_tiff(levels: np.ndarray, bits: int, photometric: int) -> bytes:
    """A grey, uncompressed TIFF with ``bits`` per sample, packed as TIFF packs them (rows start
    on a byte), written by hand: the oldest imagecodecs this supports cannot pack them."""
    height, width = levels.shape
    shifts = np.arange(bits - 1, -1, -1)
    data = b"".join(np.packbits(((row[:, None].astype(np.uint32) >> shifts) & 1).astype(np.uint8).ravel()).tobytes()
                    for row in levels)
    tags = [(256, 3, width), (257, 3, height), (258, 3, bits), (259, 3, 1), (262, 3, photometric), (273, 4, 0),
            (277, 3, 1), (278, 3, height), (279, 4, len(data))]
    offset = 8 + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<I", offset if tag == 273 else value) if kind == 4
                                              else struct.pack("<HH", value, 0)) for tag, kind, value in tags)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00" + data


@pytest.mark.parametrize("bits, photometric", [(2, "minisblack"), (4, "minisblack"), (4, "miniswhite"), (12, "minisblack")])
def test_tiff_samples_of_other_widths_fill_their_range(tmp_path, bits, photometric):
    # tifffile hands 4-bit samples over as 0..15 in bytes (12-bit as 0..4095): the picture came
    # out almost black. They are spread over 0..255 (0..65535), as Pillow reads them.
    top = 2**bits - 1
    levels = (np.arange(48 * 64).reshape(48, 64) % (top + 1)).astype(np.uint8 if bits < 8 else np.uint16)
    (tmp_path / "g.tif").write_bytes(_packed_tiff(levels, bits, {"minisblack": 1, "miniswhite": 0}[photometric]))
    array = imageio.read_image(tmp_path / "g.tif")[0]
    full = np.iinfo(array.dtype).max
    assert array.dtype == levels.dtype
    want = np.rint(levels * (full / top)).astype(levels.dtype)
    if photometric == "miniswhite":
        want = full - want
    np.testing.assert_array_equal(array, want)


def _png(width: int, height: int, colour: int, depth: int, raw: bytes, interlace: int = 0) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("colour, depth, interlace", [(2, 8, 0), (0, 4, 0), (6, 16, 0), (2, 8, 1), (0, 16, 1)])
def test_a_png_whose_image_data_ends_early_is_damaged_not_blank(colour, depth, interlace):
    # Properly closed (IEND) but with rows missing: Pillow filled them with black and the
    # picture was upscaled as if whole (exit 0). libpng calls it "Not enough image data".
    width, height = 21, 13
    bits = {0: 1, 2: 3, 6: 4}[colour] * depth
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        boxes = [(-(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in passes]
    else:
        boxes = [(width, height)]
    need = sum(h * (1 + -(-w * bits // 8)) for w, h in boxes if w > 0 and h > 0)
    whole = _png(width, height, colour, depth, bytes(need), interlace)
    array, _ = imageio.read_image(whole)
    assert array.shape[:2] == (height, width)
    with pytest.raises(ImageFormatError, match=f"truncated or damaged: its image data ends early \\({need - 7:,} of {need:,} bytes"):
        imageio.read_image(_png(width, height, colour, depth, bytes(need - 7), interlace), name="short.png")


def test_the_memory_check_for_a_width_uses_the_scale_that_width_means():
    # --width 3000 on a 12000-pixel picture is a scale of 0.25; the check before decoding used the
    # model's x4 (a 48000x48000 output, 150 GiB) and refused jobs that fit
    header = _png(12000, 12000, 2, 8, b"")

    def outcome(**options) -> str:
        try:
            imageio.read_image(header, model_scale=4, name="six.png", **options)
        except ImageFormatError as exc:
            return str(exc)
        return "read"

    assert outcome(scale=4.0, size=(3000, None)) == outcome(scale=0.25) != outcome(scale=4.0)
    assert outcome(scale=4.0, size=(None, 6000)) == outcome(scale=0.5)
    # stored sideways (EXIF 6): 100 wide and 600 high in the file, 600 wide upright; 2000 wide is x3.33
    image = Image.new("RGB", (100, 600), (90, 60, 30))
    exif = image.getexif()
    exif[0x0112] = 6
    array, _ = imageio.read_image(_save(image, "JPEG", exif=exif.tobytes()), scale=4.0, size=(2000, None))
    assert array.shape[:2] == (100, 600)


# -- bad input -------------------------------------------------------------------------------
def test_bad_input_errors(tmp_path, set5):
    png = (set5 / "bird.png").read_bytes()
    jpeg = _save(Image.open(set5 / "bird.png"), "JPEG")
    cases = {
        "missing": (tmp_path / "missing.png", "does not exist"),
        "folder": (tmp_path, "is a folder"),
        "empty": (b"", "is empty"),
        "text": (b"just some words, not a picture", "not a readable image"),
        "truncated png": (png[: len(png) // 2], "truncated or damaged"),
        "truncated jpeg": (jpeg[: len(jpeg) // 2], "truncated or damaged"),
        "zero width": (_png_header_only(0, 10), r"has no pixels \(0x10\)"),
    }
    for label, (source, message) in cases.items():
        with pytest.raises(ImageFormatError, match=message) as error:
            imageio.read_image(source)
        text = str(error.value)
        named = str(source) if isinstance(source, type(tmp_path)) else "standard input"
        assert text.startswith(named) and "\n" not in text and "Traceback" not in text, (label, text)


def test_too_large_is_refused_from_the_header(set5):
    # a 12 kB file claiming 10^10 pixels: refused with our numbers, nothing decoded
    with pytest.raises(ImageTooLargeError, match=r"100000x100000 \(10,000 megapixels\): for a 400000x400000 output, or any other size, .*GiB of memory, but only"):
        imageio.read_image(_png_header_only(100_000, 100_000), scale=4)
    # a JPEG whose frame header claims 65000x65000
    jpeg = bytearray(_save(Image.new("L", (8, 8)), "JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    with pytest.raises(ImageTooLargeError, match="65000x65000"):
        imageio.read_image(bytes(jpeg), scale=2)
    # below Pillow's own bomb limit, but x16 of it cannot fit in any machine's memory
    with pytest.raises(ImageTooLargeError, match=r"13000x13000(; upscaled x16| .*: for a 208000x208000 output)"):
        imageio.read_image(_png_header_only(13000, 13000), scale=16)
    # a bomb in a format we do not size ourselves (GIF): Pillow's limit, still one clear error
    gif = bytearray(_save(Image.new("L", (8, 8)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65000, 65000)
    gif_frame = gif.index(b",")
    gif[gif_frame + 5 : gif_frame + 9] = struct.pack("<HH", 65000, 65000)
    with pytest.raises(ImageTooLargeError):
        imageio.read_image(bytes(gif), scale=4)
    # the same sizes that are refused pass when the memory is there
    limits.check_fits("x", 1000, 1000, 3, 4, available=64 << 30)
    # room for the network's own x4 pass, not for this output: a smaller scale helps, and the hint says so
    least, need = limits.estimate_bytes(1000, 1000, 3, 1e-3), limits.estimate_bytes(1000, 1000, 3, 6)
    with pytest.raises(ImageTooLargeError, match="1000x1000; upscaled x6 it would be 6000x6000") as refused:
        limits.check_fits("x", 1000, 1000, 3, 6, available=(least + need) // 2)
    assert not isinstance(refused.value, InputTooLargeError)
    # no room even for that pass: no scale helps (a --width 100 had been told to use a smaller --scale)
    with pytest.raises(InputTooLargeError, match=r"1000x1000 \(1 megapixels\): for a 100x100 output, or any other size"):
        limits.check_fits("x", 1000, 1000, 3, 0.1, available=least - 1)
    # pixels already in memory (an array handed to upscale_array) are not counted a second time
    need = limits.estimate_bytes(1000, 1000, 3, 4, 2)
    limits.check_fits("x", 1000, 1000, 3, 4, 2, available=need - 1000 * 1000 * 3 * 2, decoded=True)
    with pytest.raises(ImageTooLargeError):
        limits.check_fits("x", 1000, 1000, 3, 4, 2, available=need - 1000 * 1000 * 3 * 2)


def test_write_atomic_never_clobbers(tmp_path):
    target = tmp_path / "out.png"
    imageio.write_atomic(b"first", target)
    with pytest.raises(OutputExistsError):
        imageio.write_atomic(b"second", target)
    assert target.read_bytes() == b"first"
    imageio.write_atomic(b"second", target, overwrite=True)
    assert target.read_bytes() == b"second"
    with pytest.raises(ImageFormatError, match="does not exist"):
        imageio.write_atomic(b"x", tmp_path / "nowhere" / "out.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary files left


def test_format_for():
    assert imageio.format_for("a.JPG") == "JPEG" and imageio.format_for("a.tif") == "TIFF"
    assert imageio.format_for("a.png", "webp") == "WEBP"
    with pytest.raises(ImageFormatError, match="cannot tell the output format"):
        imageio.format_for("a.xyz")
    with pytest.raises(ImageFormatError, match="unknown format 'heic'"):
        imageio.format_for("a.png", "heic")
    # a name that is only a suffix had been told to "use an extension such as .png"
    with pytest.raises(ImageFormatError) as info:
        imageio.format_for("dn/.PNG")
    assert str(info.value) == ".PNG is only a suffix; name the file to write, e.g. dn/out.PNG"


def test_png16_reader_recognises_only_deep_colour(bird):
    assert not png.is_deep_png(_save(Image.fromarray(bird), "PNG"))
    assert not png.is_deep_png(_save(Image.fromarray(bird[..., 0]), "PNG"))
    assert png.is_deep_png(png.encode_png(np.zeros((2, 2, 3), np.uint16)))
    assert png.is_deep_png(png.encode_png(np.zeros((2, 2), np.uint16)))


def test_metadata_too_large_for_a_jpeg_is_left_out_with_a_warning(bird, caplog):
    """A 70 kB XMP packet or EXIF block fails Pillow's JPEG writer ("XMP data is too long"): the
    whole conversion failed after the work. Now the block is left out, said, and PNG keeps it."""
    xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + b"<!-- history -->" * 4500 + b"</x:xmpmeta>"
    image = Image.fromarray(bird)
    exif = image.getexif()
    exif[0x010F] = "camera"
    exif[0x9286] = "x" * 70000  # a user comment that big
    packet = PngImagePlugin.PngInfo()
    packet.add_itxt("XML:com.adobe.xmp", xmp.decode())
    for kind, options in (("XMP", {"pnginfo": packet}), ("EXIF", {"exif": exif.tobytes()})):
        array, meta = imageio.read_image(_save(image, "PNG", **options))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sr_filter"):
            out = Image.open(io.BytesIO(imageio.encode_image(array, "JPEG", meta)))
        assert out.size == image.size and f"the {kind} metadata" in caplog.text and "not carried" in caplog.text
        assert not out.info.get("xmp") and not out.info.get("exif")
        kept = Image.open(io.BytesIO(imageio.encode_image(array, "PNG", meta)))
        assert kept.info.get("xmp") or kept.getexif().get(0x010F) == "camera"


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_a_deep_tiff_keeps_its_descriptive_tags_and_xmp_without_tifffiles_own(dtype):
    """A 16-bit or float TIFF came out with tifffile's shape record as its description and
    'tifffile.py' as its software, its artist, copyright and XMP gone."""
    import tifffile

    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:title>Harbour</dc:title></x:xmpmeta>'
    pixels = (np.random.default_rng(3).random((6, 8, 3)) * (65535 if dtype == np.uint16 else 1)).astype(dtype)
    source = io.BytesIO()
    tifffile.imwrite(source, pixels, photometric="rgb", description="Harbour at dusk", software="Scanner 2.1",
                     extratags=[(315, 2, 0, "A. Painter", True), (33432, 2, 0, "(c) A. Painter", True), (700, 1, len(xmp), xmp, True)])
    array, meta = imageio.read_image(source.getvalue())
    out = imageio.encode_image(np.repeat(np.repeat(array, 2, 0), 2, 1), "TIFF", meta, scale=2)
    with tifffile.TiffFile(io.BytesIO(out)) as tiff:
        page = tiff.pages[0]
        tags = {tag.code: tag.value for tag in page.tags.values()}
        assert page.dtype == dtype and page.shape == (12, 16, 3)
    assert tags[270] == "Harbour at dusk" and tags[305] == "Scanner 2.1"
    assert tags[315] == "A. Painter" and tags[33432] == "(c) A. Painter" and bytes(tags[700]) == xmp
    # from another format's EXIF: its first directory's descriptive tags
    exif = Image.Exif()
    exif[0x010F], exif[0x013B] = "Camera Co", "B. Shooter"
    deep = imageio.encode_image(np.zeros((4, 4, 3), np.uint16), "TIFF", imageio.ImageMeta(exif=exif.tobytes()))
    with tifffile.TiffFile(io.BytesIO(deep)) as tiff:
        tags = {tag.code: tag.value for tag in tiff.pages[0].tags.values()}
    assert tags[271] == "Camera Co" and tags[315] == "B. Shooter" and 305 not in tags and 270 not in tags


def test_a_profile_a_format_cannot_hold_is_converted_to_srgb_and_what_is_left_out_is_said(caplog):
    """GIF and BMP store no ICC profile: wide-gamut pixels were written as they were (viewers show
    them as sRGB: dull colours), and EXIF, XMP, PNG text and 16 bits were dropped without a word."""
    from PIL import ImageCms

    wide = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not RGB: left as it is
    adobe_like = _rgb_profile_with_wide_primaries()
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    meta = imageio.ImageMeta(icc_profile=adobe_like, exif=_exif_bytes(), xmp=b"<x:xmpmeta/>", text={"Author": "A"})
    with caplog.at_level("WARNING"):
        gif = imageio.encode_image(red, "BMP", meta)
    back, _ = imageio.read_image(gif)
    assert back[0, 0, 0] > 200 and back[0, 0, 1] < 30  # a wide-gamut red is a more saturated sRGB red
    said = [r.getMessage() for r in caplog.records]
    assert any("BMP cannot hold the ICC profile (the colours are converted to sRGB, which it is shown as), the EXIF data, "
               "the XMP data and the PNG text (Author); left out (PNG keeps them)" in m for m in said), said
    caplog.clear()
    with caplog.at_level("WARNING"):
        imageio.encode_image(red, "BMP", imageio.ImageMeta(icc_profile=wide))
        imageio.encode_image((red.astype(np.uint16) * 257), "JPEG", imageio.ImageMeta())
    said = [r.getMessage() for r in caplog.records]
    assert any(m == "BMP cannot hold the ICC profile; left out (PNG keeps it)" for m in said), said
    assert any("JPEG holds 8 bits per channel: the 16-bit picture is written with 8" in m for m in said), said
    caplog.clear()
    grey = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()[:16] + b"GRAY" + bytes(100)
    with caplog.at_level("WARNING"):  # a grey picture's profile: left out, and said (it was silent)
        imageio.encode_image(red[..., 0], "GIF", imageio.ImageMeta(icc_profile=grey))
    assert any(r.getMessage() == "GIF cannot hold the ICC profile; left out (PNG keeps it)" for r in caplog.records)
    # a JPEG's comment goes into a PNG as its Comment text
    png, = (imageio.encode_image(red, "PNG", imageio.ImageMeta(comment=b"shot at dusk")),)
    assert Image.open(io.BytesIO(png)).text.get("Comment") == "shot at dusk"


def test_a_16_bit_picture_with_a_profile_stays_16_bit_in_netpbm(caplog):
    """A Netpbm file holds no ICC profile, so the colours are moved to sRGB; LittleCMS (through
    Pillow) converts 8-bit pixels only, and a 16-bit picture with an Adobe RGB-like profile had come
    out of a .ppm with 8 bits. A matrix profile's (and a grey one's) conversion is done at 16 bits."""
    red = np.zeros((4, 4, 3), np.uint16)
    red[..., 0], red[0, 0] = 50000, (1000, 2000, 3000)
    wide = _rgb_profile_with_wide_primaries()
    eight, _ = imageio.read_image(imageio.encode_image(np.rint(red / 257).astype(np.uint8), "PPM", ImageMeta(icc_profile=wide)))
    for fmt, pixels in (("PPM", red), ("PAM", np.dstack([red, np.full((4, 4), 30000, np.uint16)])), ("PPM", red / 65535.0)):
        caplog.clear()
        with caplog.at_level("WARNING"):
            back, _ = imageio.read_image(imageio.encode_image(pixels.astype(np.float32) if pixels.dtype != np.uint16 else pixels,
                                                              fmt, ImageMeta(icc_profile=wide)))
        assert back.dtype == np.uint16 and back.shape[2] == pixels.shape[2], (fmt, back.dtype)
        assert np.abs(back[..., :3] / 257.0 - eight).max() < 1.5  # as LittleCMS converts it, within its 8-bit steps
        assert back[0, 0, 0] % 257 and (back[..., 3:] == 30000).all()  # 16 bits of tone, not 8 times 257; alpha as it was
        said = [r.getMessage() for r in caplog.records]
        assert said == [f"{'PAM' if fmt == 'PAM' else 'PGM/PPM'} cannot hold the ICC profile (the colours are converted to "
                        "sRGB, which it is shown as); left out (PNG keeps it)"], said
    linear = (np.arange(16, dtype=np.uint16) * 4369).reshape(4, 4)  # grey with a linear tone curve
    back, _ = imageio.read_image(imageio.encode_image(linear, "PGM", ImageMeta(icc_profile=grey_profile(1.0))))
    value = linear / 65535.0
    srgb = np.where(value <= 0.0031308, value * 12.92, 1.055 * value ** (1 / 2.4) - 0.055) * 65535
    assert back.dtype == np.uint16 and np.abs(back - srgb).max() <= 1


def test_a_grey_profile_a_format_cannot_hold_is_converted_to_srgb_grey(caplog):
    """GIF and BMP hold no profile, and WebP no grey picture: a grey picture with a linear
    (gamma 1.0) profile was written with its values as they were, which viewers show as sRGB:
    far too dark (linear 64 is sRGB 137). Alpha stays as it was."""
    from PIL import ImageCms

    linear = grey_profile(1.0)
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(linear))).startswith("sr-filter test grey")
    grey = np.full((4, 6), 64, np.uint8)
    alpha = np.dstack([grey, np.full((4, 6), 200, np.uint8)])
    meta = imageio.ImageMeta(icc_profile=linear)
    for fmt, pixels in (("BMP", grey), ("GIF", grey), ("WEBP", grey), ("WEBP", alpha)):
        with caplog.at_level("INFO"):
            back = np.asarray(Image.open(io.BytesIO(imageio.encode_image(pixels, fmt, meta))).convert("RGBA"))
        assert abs(int(back[0, 0, 0]) - 137) <= 1 and back[0, 0, 0] == back[0, 0, 1] == back[0, 0, 2], (fmt, back[0, 0])
        assert back[0, 0, 3] == (200 if pixels.ndim == 3 else 255), fmt
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("BMP cannot hold the ICC profile (the grey tones are converted to sRGB") for m in said), said
    assert not any("does not fit" in m for m in said), said
    # where the profile fits, it is written and the values are kept
    png = Image.open(io.BytesIO(imageio.encode_image(grey, "PNG", meta)))
    assert png.info["icc_profile"] == linear and np.asarray(png)[0, 0] == 64


def test_a_linear_grey_pictures_shadows_are_converted_to_srgb_exactly():
    """LittleCMS samples an 8-bit grey-to-RGB transform on a coarse grid, and a linear grey
    picture's shadows came out of BMP, GIF and WebP up to 7 levels too dark (1 as 6, 2 as 12)."""
    grey = np.array([[0, 1, 2, 4, 8, 64, 255]], np.uint8)
    value = grey / 255.0
    srgb = np.rint(np.where(value <= 0.0031308, value * 12.92, 1.055 * value ** (1 / 2.4) - 0.055) * 255)
    for fmt in ("BMP", "GIF", "WEBP"):
        data = imageio.encode_image(grey, fmt, ImageMeta(icc_profile=grey_profile(1.0)), quality=100)
        back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[..., 0]
        assert back.tolist() == srgb.tolist() == [[0, 13, 22, 34, 50, 137, 255]], fmt


def _rgb_profile_with_wide_primaries() -> bytes:
    """An RGB matrix profile whose red lies outside sRGB's (a stand-in for Adobe RGB): sRGB's own,
    its red primary (rXYZ) pushed further out."""
    from PIL import ImageCms

    return _synthetic_wide_rgb(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _synthetic_wide_rgb(srgb: bytes) -> bytes:
    """sRGB's profile with its red primary (rXYZ) pushed further out."""
    import struct

    count = struct.unpack(">I", srgb[128:132])[0]
    out = bytearray(srgb)
    for i in range(count):
        sig, offset, size = struct.unpack(">4sII", srgb[132 + 12 * i: 144 + 12 * i])
        if sig == b"rXYZ":
            x, y, z = struct.unpack(">iii", srgb[offset + 8: offset + 20])
            out[offset + 8: offset + 20] = struct.pack(">iii", int(x * 1.25), int(y * 0.85), z)
    return bytes(out)


def _exif_bytes() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Camera Co"
    return exif.tobytes()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "AVIF"])
def test_xmp_pixel_sizes_are_the_outputs_as_the_exif_ones_are(fmt):
    """The EXIF sizes and resolutions were updated and the XMP ones left at the input's: the two disagreed."""
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:PixelXDimension="8" '
           b'exif:PixelYDimension="6" tiff:XResolution="300/1"><tiff:ImageWidth>8</tiff:ImageWidth><tiff:ImageLength>6</tiff:ImageLength>'
           b'<tiff:YResolution>72</tiff:YResolution></rdf:Description></rdf:RDF></x:xmpmeta>')
    data = imageio.encode_image(np.zeros((24, 32, 3), np.uint8), fmt, imageio.ImageMeta(xmp=xmp), scale=4)
    _, meta = imageio.read_image(data)
    assert b'exif:PixelXDimension="32"' in meta.xmp and b'exif:PixelYDimension="24"' in meta.xmp
    assert b"<tiff:ImageWidth>32</tiff:ImageWidth>" in meta.xmp and b"<tiff:ImageLength>24</tiff:ImageLength>" in meta.xmp
    assert b'tiff:XResolution="1200/1"' in meta.xmp and b"<tiff:YResolution>288/1</tiff:YResolution>" in meta.xmp


def test_a_jpegs_iptc_block_is_carried_into_jpeg_and_said_lost_elsewhere(caplog):
    """A JPEG's APP13 (IPTC caption, credit) was dropped without a word."""
    from PIL import IptcImagePlugin

    record = b"\x1c\x02\x78\x00\x07Caption\x1c\x02\x74\x00\x09(c) Corp."
    resource = b"8BIM\x04\x04\x00\x00" + len(record).to_bytes(4, "big") + record + b"\x00" * (len(record) % 2)
    app13 = b"Photoshop 3.0\x00" + resource
    jpeg = _save(Image.new("RGB", (8, 6), (10, 120, 200)), "JPEG")
    jpeg = jpeg[:2] + b"\xff\xed" + (len(app13) + 2).to_bytes(2, "big") + app13 + jpeg[2:]
    array, meta = imageio.read_image(jpeg)
    out = imageio.encode_image(array, "JPEG", meta)
    info = IptcImagePlugin.getiptcinfo(Image.open(io.BytesIO(out)))
    assert info[(2, 120)] == b"Caption" and info[(2, 116)] == b"(c) Corp."
    with caplog.at_level("WARNING"):
        imageio.encode_image(array, "PNG", meta)
    assert any("PNG cannot hold the IPTC data; left out (JPEG and TIFF keep it)" in r.getMessage() for r in caplog.records)
    # a TIFF keeps it, as Photoshop writes it there (its resources tag), 8-bit and 16-bit, and gives it back
    # (it had been said "TIFF cannot hold the IPTC data")
    for deep in (array, array.astype(np.uint16) * 257):
        caplog.clear()
        with caplog.at_level("WARNING"):
            tiff = imageio.encode_image(deep, "TIFF", meta)
        assert "IPTC" not in caplog.text
        again = imageio.read_image(tiff)[1]
        assert again.iptc == app13, deep.dtype
        info = IptcImagePlugin.getiptcinfo(Image.open(io.BytesIO(imageio.encode_image(array, "JPEG", again))))
        assert info[(2, 120)] == b"Caption"
    # a TIFF's resources are more than IPTC (a resolution record, a 100 kB thumbnail): only the IPTC record
    # is carried, so it fits a JPEG segment (the whole had been left out without a word), and without one
    # nothing is said to be lost
    import tifffile

    resolution = b"8BIM\x03\xed\x00\x00" + (16).to_bytes(4, "big") + bytes(16)
    thumbnail = b"8BIM\x04\x0c\x00\x00" + (100_000).to_bytes(4, "big") + bytes(100_000)
    for resources, iptc in ((resolution + resource + thumbnail, app13), (resolution, None)):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.zeros((6, 8, 3), np.uint8), photometric="rgb", extratags=[(34377, 1, len(resources), resources, True)])
        _, read = imageio.read_image(buffer.getvalue())
        assert read.iptc == iptc
        caplog.clear()
        with caplog.at_level("WARNING"):
            jpeg_out = imageio.encode_image(array, "JPEG", read)
            imageio.encode_image(array, "PNG", read)
        assert ("IPTC" in caplog.text) == (iptc is not None), caplog.text
        if iptc:
            assert IptcImagePlugin.getiptcinfo(Image.open(io.BytesIO(jpeg_out)))[(2, 116)] == b"(c) Corp."


def test_a_tiffs_bare_iptc_records_are_carried(caplog):
    """Many tools write a TIFF's IPTC as bare records in tag 33723 (no Photoshop resources): they
    had been dropped from every output without a word. Read as bytes or as LONGs (either byte order),
    carried into JPEG and TIFF (there in both tags), and said lost where a format cannot hold them."""
    import tifffile
    from PIL import IptcImagePlugin

    record = b"\x1c\x02\x78\x00\x07Caption\x1c\x02\x74\x00\x0b(c) Corp.!!"  # 28 bytes: whole LONGs
    for kind, byteorder in (("B", "<"), ("I", "<"), ("I", ">")):
        buffer = io.BytesIO()
        value = record if kind == "B" else tuple(int(v) for v in np.frombuffer(record, f"{byteorder}u4"))
        tifffile.imwrite(buffer, np.zeros((6, 8, 3), np.uint8), photometric="rgb", byteorder=byteorder,
                         extratags=[(33723, kind, len(value), value, True)])
        caplog.clear()
        with caplog.at_level("WARNING"):
            array, meta = imageio.read_image(buffer.getvalue(), name="naa.tif")
        assert "33723" not in caplog.text  # (Pillow's "too many entries" for LONGs: the tag is read whole)
        jpeg = imageio.encode_image(array, "JPEG", meta)
        assert IptcImagePlugin.getiptcinfo(Image.open(io.BytesIO(jpeg)))[(2, 116)] == b"(c) Corp.!!", (kind, byteorder)
        for deep in (array, array.astype(np.uint16) * 257):
            with tifffile.TiffFile(io.BytesIO(imageio.encode_image(deep, "TIFF", meta))) as tif:
                assert bytes(tif.pages[0].tags[33723].value) == record and 34377 in tif.pages[0].tags
    with caplog.at_level("WARNING"):
        imageio.encode_image(array, "PNG", meta)
    assert "PNG cannot hold the IPTC data" in caplog.text


def test_libpng_warnings_name_their_file_each_time(caplog):
    """libpng's warnings about a 16-bit PNG ("PNG warning: eXIf: invalid") had come without the
    file's name, and once in a whole batch."""
    import imagecodecs

    data = imagecodecs.png_encode(np.zeros((6, 8, 3), np.uint16))
    exif = Image.Exif()
    exif[0x0112] = 6
    body = exif.tobytes()  # Pillow's bytes start "Exif\0\0", which PNG's eXIf does not take
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    at = data.find(b"IDAT") - 4
    damaged = data[:at] + chunk + data[at:]
    for name in ("a.png", "b.png"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            imageio.read_image(damaged, name=name)
        said = [r.getMessage() for r in caplog.records]
        assert any(m.startswith(f"{name}: PNG warning: eXIf") for m in said), said


def test_a_bmp_whose_alpha_is_zero_everywhere_is_read_opaque(caplog):
    """Many writers fill a 32-bit BMP's fourth byte with 0 and leave it unused (browsers show the
    file opaque): the picture came out white (BMP, JPEG) or wholly transparent (PNG)."""
    from .imagefiles import bmp32

    rgba = np.zeros((8, 12, 4), np.uint8)
    rgba[..., :3] = (110, 85, 125)
    with caplog.at_level("WARNING"):
        array, _ = imageio.read_image(bmp32(rgba), name="unused.bmp")
    assert array.shape == (8, 12, 3) and (array == (110, 85, 125)).all()
    assert any("unused.bmp: its alpha channel is 0 everywhere" in r.getMessage() for r in caplog.records)
    rgba[:4, ..., 3] = 255  # some of it transparent: a real alpha channel, kept
    array, _ = imageio.read_image(bmp32(rgba), name="used.bmp")
    assert array.shape == (8, 12, 4) and array[0, 0, 3] == 255 and array[7, 0, 3] == 0


@pytest.mark.skipif(tuple(int(n) for n in PIL.__version__.split(".")[:2]) < (13, 0),
                    reason="Pillow 11.3 (the floor) reads this back otherwise; checked with 13.0")
def test_a_tga_with_a_colour_map_of_rgba_entries_keeps_its_alpha():
    """A colour-mapped TGA whose map has 32-bit (RGBA) entries: Pillow reads it as a palette image
    with an RGBA palette, no "transparency" key, and the alpha had been dropped (RGB out, its
    transparent parts shown). A map whose entries are all opaque gives RGB, as before."""
    index = np.zeros((6, 8), np.uint8)
    index[:, 3:6], index[:, 6:] = 1, 2
    picture = Image.fromarray(index, "P")
    picture.putpalette([255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0], "RGBA")
    array, meta = imageio.read_image(_save(picture, "TGA"))
    assert meta.format == "TGA" and array.shape == (6, 8, 4)
    assert array[0, 0].tolist() == [255, 0, 0, 255] and array[0, 4, 3] == 128 and array[0, 7, 3] == 0
    picture.putpalette([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255], "RGBA")
    array, _ = imageio.read_image(_save(picture, "TGA"))
    assert array.shape == (6, 8, 3) and array[0, 7].tolist() == [0, 0, 255]


def test_a_32_bit_tga_whose_alpha_is_zero_everywhere_is_read_opaque(caplog):
    """A 32-bit TGA whose header says it has no alpha bits, its fourth bytes 0 (as screenshot and
    game tools write it): Pillow reads it wholly transparent, and the upscale had lost the picture
    (its colour under alpha 0 replaced; a .tga, .png or .avif output showed nothing)."""
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[..., :] = (110, 85, 125)
    rgb[2:5, 3:7] = (20, 200, 40)
    bgra = np.dstack([rgb[..., ::-1], np.zeros((8, 12), np.uint8)])[::-1]  # bottom-left origin
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, 12, 8, 32, 0)  # descriptor: 0 alpha bits
    with caplog.at_level("WARNING"):
        array, meta = imageio.read_image(header + bgra.tobytes(), name="unused.tga")
    assert meta.format == "TGA" and array.shape == (8, 12, 3) and np.array_equal(array, rgb)
    assert any("unused.tga: its alpha channel is 0 everywhere, as TGA writers" in r.getMessage() for r in caplog.records)
    alpha = np.dstack([rgb, np.full((8, 12), 255, np.uint8)])
    alpha[:4, ..., 3] = 0  # some of it transparent: a real alpha channel, kept
    array, _ = imageio.read_image(_save(Image.fromarray(alpha), "TGA"), name="used.tga")
    assert array.shape == (8, 12, 4) and array[0, 0, 3] == 0 and array[7, 0, 3] == 255


def test_a_16_bit_tga_reads_its_alpha_bit_as_the_format_has_it():
    """A 16-bit TGA's top bit is alpha (1: opaque) where its header declares an attribute bit, as
    GIMP and ImageMagick read it; Pillow reads it inverted, and a cut-out had come out with the
    shape hidden and its background shown. Without an attribute bit (FFmpeg's 16-bit TGA), or with a
    TGA 2.0 extension area saying the attributes are no alpha, the picture is opaque."""
    width, height = 8, 4
    row = [0x8000 | 31 << 10] * 4 + [31 << 5] * 4  # left: red, its bit set; right: green, its bit clear
    pixels = struct.pack(f"<{width * height}H", *row * height)
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, width, height, 16, 0x21)  # 1 alpha bit, top-left
    array, meta = imageio.read_image(header + pixels, name="cutout.tga")
    assert meta.format == "TGA" and array.shape == (4, 8, 4)
    assert array[0, 0].tolist() == [255, 0, 0, 255] and array[0, 7, 3] == 0
    array, _ = imageio.read_image(header[:17] + b"\x20" + pixels, name="plain.tga")  # no attribute bits
    assert array.shape == (4, 8, 3) and array[0, 0].tolist() == [255, 0, 0] and array[0, 7].tolist() == [0, 255, 0]
    extension = bytearray(495)
    extension[:2] = (495).to_bytes(2, "little")  # attributes type (byte 494) 0: no alpha
    footer = (len(header) + len(pixels)).to_bytes(4, "little") + bytes(4) + b"TRUEVISION-XFILE.\x00"
    array, _ = imageio.read_image(header + pixels + bytes(extension) + footer, name="v2.tga")
    assert array.shape == (4, 8, 3) and array[0, 7].tolist() == [0, 255, 0]


def test_a_tga_with_a_colour_map_of_16_bit_entries_reads_their_alpha_bit_as_the_format_has_it():
    """A colour-mapped TGA whose map has 16-bit entries (A1 R5 G5 B5): Pillow reads each entry's
    alpha bit inverted, as for a 16-bit true-colour TGA, and the cut-out had come out with its shape
    hidden and its background shown. Without an attribute bit in the header, the picture is opaque."""
    index = np.zeros((4, 8), np.uint8)
    index[:, 4:], index[2:] = 1, 2  # red (its bit set), green (clear); blue (set) below
    colour_map = struct.pack("<3H", 0x8000 | 31 << 10, 31 << 5, 0x8000 | 31)
    header = struct.pack("<BBBHHBHHHHBB", 0, 1, 1, 0, 3, 16, 0, 0, 8, 4, 8, 0x21)  # 1 alpha bit, top-left
    array, meta = imageio.read_image(header + colour_map + index.tobytes(), name="mapped.tga")
    assert meta.format == "TGA" and array.shape == (4, 8, 4)
    assert array[0, 0].tolist() == [255, 0, 0, 255] and array[0, 7].tolist() == [0, 255, 0, 0]
    assert array[3].tolist() == [[0, 0, 255, 255]] * 8
    array, _ = imageio.read_image(header[:17] + b"\x20" + colour_map + index.tobytes(), name="plain.tga")
    assert array.shape == (4, 8, 3) and array[0, 7].tolist() == [0, 255, 0]


def test_a_15_bit_tga_is_read():
    """A TGA of 15-bit colour (X1 R5 G5 B5), raw or run-length coded, or with a colour map of
    15-bit entries: Pillow refuses that depth, and the picture had been "not a readable image
    (unknown or damaged format)". Its unused top bit is no alpha."""
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, 2, 1, 15, 0x20)
    array, meta = imageio.read_image(header + struct.pack("<2H", 31 << 10, 0x8000 | 31), name="raw.tga")
    assert meta.format == "TGA" and array.tolist() == [[[255, 0, 0], [0, 0, 255]]]
    rle = header[:2] + b"\x0a" + header[3:]
    assert imageio.read_image(rle + b"\x81" + struct.pack("<H", 31 << 5), name="rle.tga")[0].tolist() == [[[0, 255, 0]] * 2]
    mapped = struct.pack("<BBBHHBHHHHBB", 0, 1, 1, 0, 2, 15, 0, 0, 2, 1, 8, 0x20) + struct.pack("<2H", 31 << 10, 0x8000 | 31)
    assert imageio.read_image(mapped + bytes([1, 0]), name="mapped.tga")[0].tolist() == [[[0, 0, 255], [255, 0, 0]]]


def test_a_16_bit_bmp_keeps_the_alpha_its_bit_fields_declare():
    """A 16-bit BMP with an alpha mask (A1 R5 G5 B5, as GIMP writes one with transparency): Pillow
    reads its colour and drops the alpha, and the cut-out had come out opaque without a word."""
    width, height = 8, 4
    rows = [[0x8000 | 31 << 10] * 4 + [31 << 5] * 4] * 2 + [[0x8000 | 31] * 8] * 2  # red, green clear; blue below
    pixels = struct.pack(f"<{width * height}H", *sum(rows[::-1], []))  # bottom-up: the last row first
    header = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 16, 3, len(pixels), 2835, 2835, 0, 0)
    header += struct.pack("<IIII", 0x7C00, 0x3E0, 0x1F, 0x8000) + b"sRGB" + bytes(48)
    data = b"BM" + struct.pack("<IHHI", 14 + len(header) + len(pixels), 0, 0, 14 + len(header)) + header + pixels
    array, meta = imageio.read_image(data, name="cutout.bmp")
    assert meta.format == "BMP" and array.shape == (4, 8, 4)
    assert array[0, 0].tolist() == [255, 0, 0, 255] and array[0, 7].tolist() == [0, 255, 0, 0]
    assert array[3].tolist() == [[0, 0, 255, 255]] * 8
    opaque = data[:14 + 52] + bytes(4) + data[14 + 56:]  # X1 R5 G5 B5: no alpha mask
    array, _ = imageio.read_image(opaque)
    assert array.shape == (4, 8, 3) and array[0, 7].tolist() == [0, 255, 0]


def test_a_16_bit_bmp_of_four_bit_fields_is_read_with_its_alpha():
    """A 16-bit BMP of A4 R4 G4 B4 (or X4 R4 G4 B4) bit fields, as DirectX texture tools write one:
    Pillow refuses the layout, and the file had been refused ("Unsupported BMP bitfields layout")."""
    width, height = 8, 4
    rows = [[0xF000 | 0xF00] * 4 + [0x7000 | 0xF0] * 4] * 2 + [[0xF000 | 0xF] * 8] * 2  # red; green at 7/15; blue below
    pixels = struct.pack(f"<{width * height}H", *sum(rows[::-1], []))  # bottom-up: the last row first
    header = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 16, 3, len(pixels), 2835, 2835, 0, 0)
    header += struct.pack("<IIII", 0xF00, 0xF0, 0xF, 0xF000) + b"sRGB" + bytes(48)
    data = b"BM" + struct.pack("<IHHI", 14 + len(header) + len(pixels), 0, 0, 14 + len(header)) + header + pixels
    array, meta = imageio.read_image(data, name="texture.bmp")
    assert meta.format == "BMP" and meta.dpi == pytest.approx((72, 72), abs=0.1) and array.shape == (4, 8, 4)
    assert array[0, 0].tolist() == [255, 0, 0, 255] and array[0, 7].tolist() == [0, 255, 0, 119]
    assert array[3].tolist() == [[0, 0, 255, 255]] * 8
    opaque = data[:14 + 52] + bytes(4) + data[14 + 56:]  # X4 R4 G4 B4: no alpha mask
    array, _ = imageio.read_image(opaque)
    assert array.shape == (4, 8, 3) and array[0, 0].tolist() == [255, 0, 0] and array[0, 7].tolist() == [0, 255, 0]
    with pytest.raises(ImageFormatError, match="cut.bmp is truncated or damaged"):
        imageio.read_image(data[:-10], name="cut.bmp")


def test_a_32_bit_bmp_of_bit_fields_pillow_refuses_is_read():
    """32-bit BMPs of X8 B8 G8 R8 and A2 R10 G10 B10 bit fields, as DirectX texture tools write
    them: Pillow refuses those layouts, and the files had been refused ("Unsupported BMP bitfields
    layout"). Fields of 10 bits are read with 16 bits per channel, as other deep pictures are."""

    def bmp(masks: tuple[int, ...], words: list[int]) -> bytes:
        pixels = struct.pack(f"<{len(words)}I", *words)
        header = struct.pack("<IiiHHIIiiII", 108, 2, -2, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)  # top-down
        header += struct.pack("<IIII", *masks) + b"sRGB" + bytes(48)
        return b"BM" + struct.pack("<IHHI", 14 + len(header) + len(pixels), 0, 0, 14 + len(header)) + header + pixels

    array, meta = imageio.read_image(bmp((0xFF, 0xFF00, 0xFF0000, 0), [0xFF, 0xFF0000, 0xFF00, 0x123456]), name="xbgr.bmp")
    assert meta.format == "BMP" and array.dtype == np.uint8
    assert array.tolist() == [[[255, 0, 0], [0, 0, 255]], [[0, 255, 0], [0x56, 0x34, 0x12]]]
    deep = bmp((0x3FF00000, 0xFFC00, 0x3FF, 0xC0000000), [0xC0000000 | 0x3FF00000, 0x40000000 | 0x200] * 2)
    array, meta = imageio.read_image(deep, name="a2r10g10b10.bmp")
    assert array.dtype == np.uint16 and meta.mode == "uint16"
    assert array[0].tolist() == [[65535, 0, 0, 65535], [0, 0, 32800, 21845]]


def test_a_jpeg_that_states_no_density_gets_none():
    """Pillow gives a JPEG whose JFIF has no unit and whose EXIF has no resolution 72 dpi of its
    own: outputs claimed 288 dpi at x4. A density the file does state is kept."""
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Cam"  # orientation and make, no resolution
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 90, 90)).save(buffer, "JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(buffer.getvalue())).info.get("dpi") == (72, 72)  # Pillow's stand-in
    _, meta = imageio.read_image(buffer.getvalue())
    assert meta.dpi is None
    stated = io.BytesIO()
    Image.new("RGB", (8, 6)).save(stated, "JPEG", dpi=(300, 300), exif=exif.tobytes())
    assert imageio.read_image(stated.getvalue())[1].dpi == (300, 300)
    exif[0x011A], exif[0x011B], exif[0x0128] = 240.0, 240.0, 2  # in the EXIF only
    only_exif = io.BytesIO()
    Image.new("RGB", (8, 6)).save(only_exif, "JPEG", exif=exif.tobytes())
    assert imageio.read_image(only_exif.getvalue())[1].dpi == (240, 240)
    # an MPO (a camera's JPEG with its previews) the same, and a PIL picture handed to the API
    del exif[0x011A], exif[0x011B], exif[0x0128]
    mpo = io.BytesIO()
    Image.new("RGB", (8, 6)).save(mpo, "MPO", save_all=True, append_images=[Image.new("RGB", (8, 6))], exif=exif.tobytes())
    opened = Image.open(io.BytesIO(mpo.getvalue()))
    assert opened.format == "MPO" and imageio.read_image(mpo.getvalue())[1].dpi is None
    import sr_filter

    assert "dpi" not in sr_filter.upscale(Image.open(io.BytesIO(buffer.getvalue())), model="sr-cartoon-x4").info
    assert sr_filter.upscale(Image.open(io.BytesIO(stated.getvalue())), model="sr-cartoon-x4").info["dpi"] == pytest.approx((1200, 1200))


def test_sixteen_bit_cmyk_tiff_stays_sixteen_bit(caplog):
    """A 16-bit CMYK TIFF came out with 8 bits per channel without a word. Without a profile its
    inks are converted at 16 bits by the plain formula, (1 - ink)(1 - black); with one (the converter works
    in 8 bits) a line says so."""
    import tifffile

    ramp = (np.arange(64, dtype=np.uint32) * 1000).astype(np.uint16)
    cmyk = np.zeros((4, 64, 4), np.uint16)
    cmyk[..., 0] = ramp  # cyan over the width: red falls in 64 steps
    cmyk[1, :, 3] = 20000  # and one row with black
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, cmyk, photometric="separated")
    array, _ = imageio.read_image(buffer.getvalue(), name="cmyk16.tif")
    assert array.dtype == np.uint16 and array.shape == (4, 64, 3)
    assert (array[0, :, 0] == 65535 - ramp).all() and (array[0, :, 1:] == 65535).all()
    assert (array[1, :, 0] == ((65535 - ramp.astype(int)) * (65535 - 20000) + 32767) // 65535).all()
    with caplog.at_level("WARNING"):
        profiled = io.BytesIO()
        tifffile.imwrite(profiled, cmyk, photometric="separated", iccprofile=cmyk_profile())
        array, _ = imageio.read_image(profiled.getvalue(), name="profiled.tif")
    assert any("profiled.tif: 16-bit CMYK is converted to RGB through its ICC profile with 8 bits" in r.getMessage()
               for r in caplog.records)


def test_cmyk_without_a_profile_has_the_same_colours_at_every_depth_and_with_alpha(caplog):
    """16-bit CMYK had been converted by subtracting (as Pillow 11 converted 8-bit), 8-bit CMYK by
    Pillow's own formula, which Pillow 12 changed to multiplying: the same picture came out 20
    levels darker at 16 bits. 8-bit CMYK with an alpha sample (as Photoshop writes it) was refused
    ("a TIFF layout this program cannot decode"); with a profile its colours go through it."""
    import tifffile

    y, x = np.mgrid[0:24, 0:32]
    inks = np.stack([x / 31 * 0.6, y / 23 * 0.5, np.full(x.shape, 0.3), (x + y) / 54 * 0.5], -1)
    eight, sixteen = (inks * 255).round().astype(np.uint8), (inks * 65535).round().astype(np.uint16)
    read = {}
    for name, cmyk in (("c8", eight), ("c16", sixteen)):
        alpha = np.full(cmyk.shape[:2] + (1,), np.iinfo(cmyk.dtype).max // 2, cmyk.dtype)
        for extra in ("", "a"):
            buffer = io.BytesIO()
            pixels = np.concatenate([cmyk, alpha], -1) if extra else cmyk
            tifffile.imwrite(buffer, pixels, photometric="separated", extrasamples=["unassalpha"] if extra else None)
            array, meta = imageio.read_image(buffer.getvalue(), name=f"{name}{extra}.tif")
            assert array.dtype == cmyk.dtype and array.shape == (24, 32, 4 if extra else 3) and meta.icc_profile is None
            read[name + extra] = array[..., :3] / np.iinfo(cmyk.dtype).max * 255
            if extra:
                assert (array[..., 3] == alpha[..., 0]).all()
    expected = (255 - eight[..., :3].astype(float)) * (255 - eight[..., 3:].astype(float)) / 255
    for name, rgb in read.items():
        assert np.abs(rgb - expected).max() <= 1.0, name
    profiled = io.BytesIO()
    tifffile.imwrite(profiled, np.concatenate([eight, np.full((24, 32, 1), 200, np.uint8)], -1), photometric="separated",
                     extrasamples=["unassalpha"], iccprofile=cmyk_profile())
    array, meta = imageio.read_image(profiled.getvalue(), name="profiled.tif")
    from sr_filter.metadata import srgb_profile

    # the test profile's cyan prints red: through it, not by the formula
    assert array.shape == (24, 32, 4) and meta.icc_profile == srgb_profile() and (array[..., 3] == 200).all()
    assert array[..., 0].mean() > expected[..., 0].mean() + 40
    # associated (premultiplied) alpha: the inks are divided by it before they become RGB (black at
    # half alpha had come out white), chunky and planar; float CMYK stays one line (not a traceback)
    pixels = np.array([[[0, 0, 0, 128, 128], [128, 0, 0, 0, 128], [0, 0, 0, 0, 128]]], np.uint8)
    for layout in ("contig", "separate"):
        buffer = io.BytesIO()
        data = pixels if layout == "contig" else np.moveaxis(pixels, 2, 0)
        tifffile.imwrite(buffer, data, photometric="separated", extrasamples=[1], planarconfig=layout)
        array, _ = imageio.read_image(buffer.getvalue(), name="premultiplied.tif")
        assert array.reshape(-1, 4).tolist() == [[0, 0, 0, 128], [0, 255, 255, 128], [255, 255, 255, 128]], layout
    buffer = io.BytesIO()  # white-is-zero grey the same way: 128 stored at half alpha is black
    tifffile.imwrite(buffer, np.array([[[128, 128], [0, 128]]], np.uint8), photometric="miniswhite", extrasamples=[1])
    assert imageio.read_image(buffer.getvalue())[0].reshape(-1, 2).tolist() == [[0, 128], [255, 128]]
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.random.rand(4, 4, 5).astype(np.float32), photometric="separated", extrasamples=[2])
    with pytest.raises(ImageFormatError, match="^float.tif is a TIFF layout this program cannot decode$"):
        imageio.read_image(buffer.getvalue(), name="float.tif")
    # 16-bit CMYK whose profile cannot be used (an RGB one): the formula at 16 bits, and no line
    # saying it went through the profile
    rgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, sixteen, photometric="separated", iccprofile=rgb_profile)
    caplog.clear()
    with caplog.at_level("WARNING"):
        array, meta = imageio.read_image(buffer.getvalue(), name="wrong.tif")
    assert array.dtype == np.uint16 and meta.icc_profile is None and "with 8 bits per channel" not in caplog.text
    assert np.abs(array / 65535 * 255 - expected).max() <= 1.0


def test_no_empty_exif_directory_is_added_and_a_described_tiff_stays_compressed():
    """Updating the EXIF sizes asked Pillow for the Exif sub-directory, which then wrote an empty
    one: every output gained a pointer to nothing, and an 8-bit TIFF with only a description
    came out uncompressed (Pillow's compressing writer cannot store sub-directories)."""
    from sr_filter.metadata import exif_for_output

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, "TIFF", compression="tiff_lzw", description="hello")
    _, meta = imageio.read_image(buffer.getvalue())
    updated = Image.Exif()
    updated.load(exif_for_output(meta.exif, 32, 32, 4))
    assert 0x8769 not in updated and updated[270] == "hello"
    out = Image.open(io.BytesIO(imageio.encode_image(np.zeros((32, 32, 3), np.uint8), "TIFF", meta, scale=4)))
    assert out.info.get("compression") == "tiff_adobe_deflate" and out.getexif()[270] == "hello"


def test_a_pngs_xmp_is_not_said_to_be_lost_where_it_is_written(caplog):
    """A PNG's XMP packet is one of its text chunks: written as XMP into a JPEG, the notice still
    said "JPEG cannot hold the PNG text (XML:com.adobe.xmp)"."""
    xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>kept</x:xmpmeta>"
    chunks = PngImagePlugin.PngInfo()
    chunks.add_itxt("XML:com.adobe.xmp", xmp.decode())
    chunks.add_text("Author", "A")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=chunks)
    _, meta = imageio.read_image(buffer.getvalue())
    with caplog.at_level("WARNING"):
        out = imageio.encode_image(np.zeros((8, 8, 3), np.uint8), "JPEG", meta)
    assert b"kept" in out
    said = [r.getMessage() for r in caplog.records]
    assert "JPEG cannot hold the PNG text (Author); left out (PNG keeps it)" in said, said


def test_a_deep_picture_into_an_8_bit_format_names_what_keeps_it(caplog):
    """A float picture into JPEG had been told "PNG and TIFF keep it": PNG keeps 16 bits of it."""
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    for array, words in ((ramp, "the floating-point picture is written with 8 (TIFF keeps it; PNG keeps 16 bits)"),
                         ((ramp * 65535).astype(np.uint16), "the 16-bit picture is written with 8 (PNG and TIFF keep it)")):
        caplog.clear()
        with caplog.at_level("WARNING"):
            imageio.encode_image(array, "JPEG", ImageMeta())
        assert words in caplog.text, caplog.text


def test_a_pngs_gamma_and_chromaticity_are_kept_and_said_where_they_cannot_be(caplog):
    """gAMA and cHRM were dropped without a word: a picture stored with linear gamma showed with
    other tones after upscaling."""
    raw = io.BytesIO()
    Image.new("RGB", (8, 8), (60, 60, 60)).save(raw, "PNG")
    data = raw.getvalue()
    gama = struct.pack(">I", 100000)  # gamma 1.0: linear light
    chrm = struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    linear = data[:33] + chunk(b"gAMA", gama) + chunk(b"cHRM", chrm) + data[33:]
    array, meta = imageio.read_image(linear)
    out = Image.open(io.BytesIO(imageio.encode_image(array, "PNG", meta)))
    out.load()
    assert out.info["gamma"] == 1.0 and out.info["chromaticity"] == pytest.approx((0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06))
    with caplog.at_level("WARNING"):
        imageio.encode_image(array, "JPEG", meta)
    assert any("the PNG's gamma (gAMA), so its tones show as sRGB's" in r.getMessage() for r in caplog.records)
    caplog.clear()
    srgb_like = data[:33] + chunk(b"gAMA", struct.pack(">I", 45455)) + data[33:]  # what most PNGs state: no loss
    array, meta = imageio.read_image(srgb_like)
    with caplog.at_level("WARNING"):
        imageio.encode_image(array, "JPEG", meta)
    assert not [r for r in caplog.records if "gAMA" in r.getMessage()]
    # wide-gamut primaries (Adobe RGB's green) are said too; with the gamma, in one line (they had been left out without a word)
    wide = struct.pack(">8I", 31270, 32900, 64000, 33000, 21000, 71000, 15000, 6000)
    for extra, words in ((b"", "the PNG's chromaticities (cHRM), so its colours show as sRGB's"),
                         (chunk(b"gAMA", gama), "the PNG's gamma and chromaticities (gAMA, cHRM), so its tones and colours show as sRGB's")):
        array, meta = imageio.read_image(data[:33] + extra + chunk(b"cHRM", wide) + data[33:])
        caplog.clear()
        with caplog.at_level("WARNING"):
            imageio.encode_image(array, "JPEG", meta)
        assert words in caplog.text, caplog.text


def test_a_twelve_bit_jpeg_is_named_as_such():
    """A 12-bit JPEG (medical, some cameras' raw previews) was "not a readable image (unknown or
    damaged format)", as if it were no JPEG at all."""
    frame = struct.pack(">BHHB", 12, 48, 64, 3) + b"".join(bytes([c, 0x11, 0]) for c in (1, 2, 3))  # start of frame
    data = b"\xff\xd8\xff\xc1" + struct.pack(">H", len(frame) + 2) + frame + b"\xff\xd9"
    with pytest.raises(ImageFormatError, match="^x.jpg is a 12-bit JPEG, which this program cannot read; convert it"):
        imageio.read_image(data, name="x.jpg")


def test_a_png_comment_goes_back_into_jpeg_and_gif_as_their_comment(caplog):
    """A JPEG's comment is written into a PNG as its Comment text; from there it had not come back
    ("JPEG cannot hold the PNG text (Comment)"), so JPEG -> PNG -> JPEG lost it."""
    jpeg = _save(Image.new("RGB", (8, 6), "red"), "JPEG", comment=b"my comment")
    array, meta = imageio.read_image(jpeg)
    png_bytes = imageio.encode_image(array, "PNG", meta)
    array, meta = imageio.read_image(png_bytes)
    assert meta.comment is None and meta.text.get("Comment") == "my comment"
    for fmt in ("JPEG", "GIF"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            out = imageio.encode_image(array, fmt, meta)
        assert Image.open(io.BytesIO(out)).info.get("comment") == b"my comment", fmt
        assert "Comment" not in caplog.text, caplog.text
    # one too long for a JPEG marker segment is left out and said so (it had failed the output)
    meta.text["Comment"] = "x" * 70000
    caplog.clear()
    with caplog.at_level("WARNING"):
        out = imageio.encode_image(array, "JPEG", meta)
    assert "comment" not in Image.open(io.BytesIO(out)).info and "JPEG cannot hold the PNG text (Comment)" in caplog.text
    # an animated PNG's Comment goes into an animated GIF too (it had been dropped without a word)
    from sr_filter import animation
    from sr_filter.upscaler import Upscaler

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "only comment")
    frames = [Image.new("RGB", (8, 8), (v, 0, 0)) for v in (10, 200)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=100, pnginfo=info)
    _, gif = animation.upscale_to_bytes(buffer.getvalue(), Upscaler("sr-cartoon-x4", device="cpu"), "GIF")
    assert Image.open(io.BytesIO(gif)).info.get("comment") == b"only comment"


def test_output_format_messages_say_what_can_be_done():
    """A PNG too large for PNG had been offered PNG; an .mpo output "cannot tell the output format";
    int16 samples were told to be saved "with 8 or 16 bits" (they are 16 bits)."""
    import tifffile

    from sr_filter.encode import check_encodable

    with pytest.raises(ImageTooLargeError) as info:
        check_encodable("PNG", 4, 1_200_000)
    assert str(info.value).endswith("choose a smaller scale or another output format (TIFF)")
    with pytest.raises(ImageTooLargeError) as info:
        check_encodable("JPEG", 70000, 10)
    assert str(info.value).endswith("another output format (PNG or TIFF)")
    with pytest.raises(ImageFormatError, match="x.mpo names an MPO .* name the output .jpg"):
        imageio.format_for("x.mpo")
    # a format given against a name that says another: aliases and video names too (had been silent)
    assert imageio.suffix_conflict("o.jfif", "PNG").endswith("though its extension says JPEG")
    assert imageio.suffix_conflict("o.mp4", "PNG").endswith("though its extension says a video (.mp4)")
    for name in ("o.ts", "o.wmv", "o.flv", "o.mpg", "o.3gp", "o.y4m"):  # every video name the program reads
        assert imageio.suffix_conflict(name, "PNG").endswith(f"though its extension says a video ({name[1:]})"), name
    assert imageio.suffix_conflict("o.jpe", "JPEG") is None and imageio.suffix_conflict("o.xyz", "PNG") is None
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((8, 8), np.int16))
    with pytest.raises(ImageFormatError, match="save it with unsigned 8- or 16-bit or float samples"):
        imageio.read_image(buffer.getvalue(), name="i16.tif")


def test_an_avif_keeps_its_profile_exif_and_xmp_and_its_turn(bird):
    """A phone's AVIF: turned by its irot/imir boxes (Pillow reports them as EXIF orientation), with
    a profile, EXIF and XMP. The pixels come upright, and the output keeps the rest, unturned."""
    exif = Image.Exif()
    exif[0x0112] = 6  # 90 degrees clockwise: Pillow writes it as the AVIF's irot box
    exif[0x010F] = "Camera Co"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    wide = bird[:40, :64]
    source = _save(Image.fromarray(wide), "AVIF", quality=100, icc_profile=srgb_profile(), exif=exif.tobytes(), xmp=xmp)
    array, meta = imageio.read_image(source)
    assert meta.format == "AVIF" and array.shape == (64, 40, 3)  # upright: the turn applied
    assert np.abs(array.astype(int) - np.rot90(wide, -1)).mean() < 2.5
    out = Image.open(io.BytesIO(imageio.encode_image(array, "AVIF", meta)))
    assert out.size == (40, 64) and out.info["icc_profile"] == srgb_profile() and b"x:xmpmeta" in out.info["xmp"]
    assert out.getexif()[0x010F] == "Camera Co" and out.getexif().get(0x0112, 1) == 1


def _avif_by_ffmpeg(pix_fmt: str, frames: int = 1, cicp: tuple[int, int, int] | None = None) -> bytes:
    """An AVIF (a sequence for several frames) written by FFmpeg's libsvtav1, at pix_fmt's depth,
    its colours described by ``cicp`` (primaries, transfer, matrix: its nclx box) where given."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="avif") as out:
        stream = out.add_stream("libsvtav1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, pix_fmt
        stream.options = {"svtav1-params": "lp=1"}
        if cicp:
            context = stream.codec_context
            context.color_primaries, context.color_trc, context.colorspace = cicp
        for index in range(frames):
            rgb = np.zeros((24, 32, 3), np.uint8)
            rgb[..., 0], rgb[..., 1] = np.linspace(0, 255, 32).astype(np.uint8), 60 * index
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return buffer.getvalue()


def test_a_10_bit_avif_is_said_to_be_read_at_8_bits(caplog, tmp_path):
    """A 10-bit AVIF (phones write HDR pictures so): Pillow's libavif decodes it to 8 bits per
    channel, and the upscale and its output had lost the depth without a word."""
    from sr_filter.animation import read_animation

    with caplog.at_level("WARNING"):
        array, meta = imageio.read_image(_avif_by_ffmpeg("yuv420p10le"), name="deep.avif")
        assert meta.format == "AVIF" and array.dtype == np.uint8
        imageio.read_image(_avif_by_ffmpeg("yuv420p"), name="plain.avif")
        (tmp_path / "deep_seq.avif").write_bytes(_avif_by_ffmpeg("yuv420p10le", frames=2))
        assert len(read_animation(tmp_path / "deep_seq.avif").frames) == 2
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("deep.avif is a 10-bit AVIF, read with 8 bits per channel") for m in said), said
    assert any(m.startswith(f"{tmp_path / 'deep_seq.avif'} is a 10-bit AVIF") for m in said), said
    assert not any("plain.avif" in m for m in said), said


def test_a_damaged_avif_is_one_line_not_an_internal_error(tmp_path):
    """AV1 data that its decoder refuses: Pillow's AVIF module raises RuntimeError, which had come
    out as 'internal error (RuntimeError: Failed to decode frame 0: ...); ... report it', for a
    still picture, piped or not, and for a frame of a sequence."""
    from sr_filter.animation import read_animation
    from sr_filter.errors import VideoFormatError

    for frames in (1, 2):
        data = bytearray(_avif_by_ffmpeg("yuv420p", frames=frames))
        at = data.find(b"mdat") + 4
        data[at:] = b"\xff" * (len(data) - at)
        with pytest.raises(ImageFormatError, match="^bad.avif cannot be decoded \\(Failed to decode frame 0: "):
            imageio.read_image(bytes(data), name="bad.avif")
        (tmp_path / "bad.avif").write_bytes(data)
        with pytest.raises(VideoFormatError, match="bad.avif is truncated or damaged \\(Failed to decode frame 0: "):
            read_animation(tmp_path / "bad.avif")


def test_an_hdr_or_wide_gamut_avif_is_said_to_come_out_as_srgb(caplog, bird):
    """An AVIF whose colours its nclx box describes (an HDR photo: BT.2020 primaries, PQ transfer;
    a Display P3 one): Pillow reads the coded values as they are and reports no colour space, and
    the output, marked sRGB, had looked dull or washed out without a word."""
    with caplog.at_level("WARNING"):
        imageio.read_image(_avif_by_ffmpeg("yuv420p10le", cicp=(9, 16, 9)), name="hdr.avif")
        imageio.read_image(_avif_by_ffmpeg("yuv420p", cicp=(12, 13, 6)), name="p3.avif")
        imageio.read_image(_avif_by_ffmpeg("yuv420p", cicp=(1, 13, 6)), name="srgb.avif")
        imageio.read_image(_save(Image.fromarray(bird), "AVIF", icc_profile=srgb_profile()), name="icc.avif")
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("hdr.avif is coded as HDR (PQ) with BT.2020 colours, which Pillow's AVIF decoder does not "
                            "convert and no ICC profile describes: the output is written as sRGB") for m in said), said
    assert any(m.startswith("p3.avif is coded as Display P3 colours") for m in said), said
    assert not any(m.startswith(("srgb.avif", "icc.avif")) for m in said), said


@pytest.mark.skipif(tuple(int(n) for n in PIL.__version__.split(".")[:2]) < (13, 0),
                    reason="Pillow 11.3 (the floor) reads this back otherwise; checked with 13.0")
def test_a_grey_avif_stays_grey_with_its_grey_profile(bird):
    """docs/io.md: AVIF holds grey. At the default quality 90 the 4:4:4 chroma asked for colour had
    made Pillow write a grey picture as RGB (a grey AVIF in, an RGB one out, its grey profile
    beside RGB pixels); it is written monochrome (4:0:0), at every quality."""
    grey = np.asarray(Image.fromarray(bird).convert("L"))
    meta = ImageMeta(format="AVIF", icc_profile=grey_profile(1.8))
    for quality in (None, 95, 60):
        out = Image.open(io.BytesIO(imageio.encode_image(grey, "AVIF", meta, quality=quality)))
        assert out.mode == "L" and out.info["icc_profile"] == grey_profile(1.8), quality
        assert np.abs(np.asarray(out).astype(int) - grey).mean() < 2.5, quality


def test_avif_output_too_large_for_its_readers_is_refused_before_the_work():
    """libavif writes sides up to 65536, but its readers (Pillow's, browsers', GIMP's) refuse over
    32768 per side and 268 megapixels: such a file could not be opened again."""
    with pytest.raises(ImageTooLargeError, match="too large for AVIF, which holds at most 32768 pixels per side"):
        imageio.check_encodable("AVIF", 40000, 100)
    with pytest.raises(ImageTooLargeError, match="too large for AVIF, which its readers take up to 268 megapixels"):
        imageio.check_encodable("AVIF", 20000, 20000)
    imageio.check_encodable("AVIF", 16384, 16384)


def test_every_netpbm_variant_is_read_at_its_full_depth():
    """Pipelines speak Netpbm (ffmpeg's and ImageMagick's ppm:-). Pillow reads a 16-bit PPM at 8
    bits and no PAM; each variant is read here, comments in the header, odd maximum values scaled."""
    grey = np.array([[0, 5, 10], [15, 7, 1]], np.uint8)  # maximum value 15
    rgb16 = (np.arange(18).reshape(2, 3, 3) * 3000).astype(np.uint16)
    bits = np.array([[1, 0, 1], [0, 0, 1]], np.uint8)  # 1 is black
    cases = [
        (b"P1\n# a comment\n3 2\n1 0 1\n0 0 1\n", np.where(bits == 1, 0, 255).astype(np.uint8), "1"),
        (b"P4\n3 2\n" + bytes([0b10100000, 0b00100000]), np.where(bits == 1, 0, 255).astype(np.uint8), "1"),
        (b"P2 3 2 15\n" + b" ".join(str(v).encode() for v in grey.ravel()), ((grey.astype(int) * 255 + 7) // 15).astype(np.uint8), "L"),
        (b"P5 3 2\n# made here\n15\n" + grey.tobytes(), ((grey.astype(int) * 255 + 7) // 15).astype(np.uint8), "L"),
        (b"P3 3 2 65535\n" + b" ".join(str(v).encode() for v in rgb16.ravel()), rgb16, "RGB"),
        (b"P6 3 2 65535\n" + rgb16.astype(">u2").tobytes(), rgb16, "RGB"),
        (b"P7\nWIDTH 3\nHEIGHT 2\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n" + bytes(range(24)),
         np.arange(24, dtype=np.uint8).reshape(2, 3, 4), "RGBA"),
        (b"P7\nWIDTH 3\nHEIGHT 2\nDEPTH 1\nMAXVAL 1\nTUPLTYPE BLACKANDWHITE\nENDHDR\n" + bytes(bits.ravel()),
         np.where(bits == 1, 255, 0).astype(np.uint8), "1"),  # a PAM's 1 is white
    ]
    for data, expected, mode in cases:
        array, meta = imageio.read_image(data)
        assert np.array_equal(array, expected) and array.dtype == expected.dtype, data[:2]
        assert meta.mode in (mode, "uint16") and meta.format == ("PAM" if data[:2] == b"P7" else "PPM"), data[:2]


def test_netpbm_header_comments_anywhere_and_long_headers_read_right_pixels():
    """Netpbm's own reader takes a comment anywhere in the header, right after the magic number or
    the maximum value too (its line end is then the one whitespace byte before the pixels): the
    comment had been read as pixels ('255#c' gave a first pixel of 'c'), 'P6#c' was no picture,
    and a header of many comment lines past 4 KiB was called truncated. One past 64 KiB is refused
    in one line."""
    pixels = bytes(range(10, 22))
    expected = np.arange(10, 22, dtype=np.uint8).reshape(2, 2, 3)
    for header in (b"P6\n2 2\n255#made here\n", b"P6\n2 2\n255#crlf\r\n"[:-1], b"P6#by hand\n2 #w\n2\n#m\n255\n",
                   b"P6\n" + b"# a line of comment, as some scanners write them by the hundred\n" * 200 + b"2 2\n255\n"):
        array, meta = imageio.read_image(header + pixels)
        assert meta.format == "PPM" and np.array_equal(array, expected), header[:20]
    bits, _ = imageio.read_image(b"P4\n3 2#w\n" + bytes([0b10100000, 0b00100000]))
    assert bits.tolist() == [[0, 255, 0], [255, 255, 0]]
    with pytest.raises(ImageFormatError, match="^long.ppm: its Netpbm header runs past 64 KiB"):
        imageio.read_image(b"P6\n" + b"#" * 70000 + b"\n2 2\n255\n" + pixels, name="long.ppm")


def test_a_pam_comment_naming_endhdr_does_not_end_its_header():
    """A PAM's header ends at the line ENDHDR; a comment that named it ('# ... ENDHDR') had ended the
    header there: the lines after it were read as pixels, or its fields were missed."""
    expected = [[[1, 2, 3], [4, 5, 6]]]
    for header in (b"P7\nWIDTH 2\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\n# written before ENDHDR\nTUPLTYPE RGB\nENDHDR\n",
                   b"P7\n#ENDHDR ends it\nWIDTH 2\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n"):
        array, meta = imageio.read_image(header + bytes(range(1, 7)))
        assert meta.format == "PAM" and array.tolist() == expected, header


def test_a_colour_picture_named_pgm_is_written_grey_with_a_notice(bird, caplog):
    """A .pgm holds grey (Netpbm's PGM readers refuse a P6): a colour picture written to one had
    been a P6 inside the .pgm name. It is made grey (601 luma, as Pillow, ImageMagick and ppmtopgm
    make it) at its own depth, with a notice; a .ppm or .pnm keeps the colours."""
    assert imageio.format_for("out.pgm") == "PGM" and imageio.format_for("out", "pgm") == "PGM"
    assert imageio.format_for("out.ppm") == imageio.format_for("out.pnm") == "PPM"
    with caplog.at_level("WARNING"):
        data = imageio.encode_image(bird, imageio.format_for("bird.pgm"))
    assert data[:2] == b"P5" and "PGM holds grey only: the colour picture is written in grey tones" in caplog.text
    grey = np.asarray(Image.fromarray(bird).convert("L")).astype(int)
    assert np.abs(np.asarray(Image.open(io.BytesIO(data))).astype(int) - grey).max() <= 1
    deep = bird.astype(np.uint16) * 257
    array, _ = imageio.read_image(imageio.encode_image(np.dstack([deep, np.full(bird.shape[:2], 65535, np.uint16)]), "PGM"))
    assert array.dtype == np.uint16 and array.ndim == 2 and np.abs(array.astype(int) // 257 - grey).max() <= 1
    assert imageio.encode_image(bird, "PPM")[:2] == b"P6"


def test_a_piped_stream_of_many_netpbm_pictures_gives_its_first(caplog):
    """`ffmpeg -i clip.mp4 -f image2pipe -c:v ppm - | sr-filter - -o frame.ppm`: the stream (here an
    endless one) had been read up to 64 MiB past its first picture and refused as 'goes on past 65
    MiB ... (padded or endless input)' (at 1080p after 15 frames); its first picture is read, the
    rest left unread, and the others said."""
    picture = b"P6\n4 2\n255\n" + bytes(range(24))

    class Endless(io.RawIOBase):
        def __init__(self):
            self.given = 0

        def read(self, size=-1):
            part = bytes((picture * (size // len(picture) + 2))[self.given % len(picture):][:size])
            self.given += len(part)
            return part

    stream = Endless()
    with caplog.at_level("WARNING"):
        array, meta = imageio.read_image(stream)
    assert meta.format == "PPM" and np.array_equal(array, np.arange(24, dtype=np.uint8).reshape(2, 4, 3))
    assert "standard input holds more Netpbm pictures after the first; only the first is upscaled" in caplog.text
    assert stream.given < 1 << 20


def test_a_damaged_or_cut_netpbm_file_is_one_line_and_a_second_picture_is_said(caplog):
    whole = b"P6 4 2 255\n" + bytes(range(24))
    with pytest.raises(ImageFormatError, match="is truncated or damaged \\(its pixels end before the picture does\\)"):
        imageio.read_image(whole[:-5])
    with pytest.raises(ImageFormatError, match="a sample is above its maximum value 15"):
        imageio.read_image(b"P5 2 1 15\n" + bytes([3, 16]))
    for plain, word in ((b"P3 2 1 255\n1 2 x 4 5 6\n", "'x' is not a sample value"),
                        (b"P2 2 1 255\n-1 5\n", "'-1' is not a sample value"),  # had been read as 255
                        (b"P2 2 1 255\n1 99999999999999999999999\n", "'99999999999999999999' is not a sample value"),
                        (b"P1 2 1\n0 2\n", "'2' is not a bit \\(0 or 1\\)")):
        with pytest.raises(ImageFormatError, match=f"^plain.pgm is damaged: {word} of a plain Netpbm picture$"):
            imageio.read_image(plain, name="plain.pgm")  # a letter had been 'internal error (ValueError...)'
    with pytest.raises(ImageFormatError, match="a PAM of depth 2 \\(RGB\\) is not a picture"):
        imageio.read_image(b"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 2\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(2))
    with pytest.raises(ImageFormatError, match="a PAM of depth 4 \\(CMYK\\) is not a picture this program reads"):
        imageio.read_image(b"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE CMYK\nENDHDR\n" + bytes(4))  # had been RGBA
    array, _ = imageio.read_image(b"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nENDHDR\n" + bytes([1, 2, 3]))
    assert array.tolist() == [[[1, 2, 3]]]  # no TUPLTYPE: its depth tells
    with caplog.at_level("WARNING"):
        array, _ = imageio.read_image(whole + whole)  # ffmpeg -f image2pipe -c:v ppm writes them so
    assert array.shape == (2, 4, 3) and "holds more Netpbm pictures after the first" in caplog.text


def test_a_heic_photo_keeps_its_alpha_profile_exif_and_xmp_and_is_turned_once(bird):
    """A phone's HEIC (pillow-heif writes EXIF orientation 6 as the irot box, libheif turns the
    pixels by it): read upright, turned once (not again by the EXIF orientation), with its alpha,
    ICC profile, EXIF and XMP, which a PNG output keeps. It had been "not a readable image"."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Phone Co"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    wide = np.dstack([bird[:40, :64], np.full((40, 64), 200, np.uint8)])
    wide[:, :16, 3] = 60
    source = heic(wide, icc_profile=srgb_profile(), exif=exif.tobytes(), xmp=xmp)
    array, meta = imageio.read_image(source)
    assert meta.format == "HEIF" and array.shape == (64, 40, 4) and array.dtype == np.uint8  # upright
    assert np.abs(array.astype(int) - np.rot90(wide, -1)).mean() < 2.5  # turned once, clockwise
    assert meta.icc_profile == srgb_profile() and b"x:xmpmeta" in meta.xmp
    out = Image.open(io.BytesIO(imageio.encode_image(array, "PNG", meta)))
    assert out.size == (40, 64) and out.mode == "RGBA" and out.info["icc_profile"] == srgb_profile()
    assert out.getexif()[0x010F] == "Phone Co" and out.getexif().get(0x0112, 1) == 1 and b"x:xmpmeta" in out.info["xmp"]
    assert np.array_equal(np.asarray(out), array)


def test_a_ten_bit_heic_is_read_at_16_bits():
    """A 10-bit HEIC (pillow-heif's Pillow plugin gives 8 bits) is read at 16, white as 65535,
    and the header's sizing says 2 bytes a sample."""
    ramp = np.zeros((24, 64, 3), np.uint16)
    ramp[..., 0] = np.linspace(0, 65535, 64).astype(np.uint16)
    ramp[..., 1] = 65535
    source = heic(ramp)
    assert imageio.sniff.header_shape(source)[2:] == (3, 2)
    array, meta = imageio.read_image(source)
    assert array.dtype == np.uint16 and array.shape == (24, 64, 3) and meta.format == "HEIF"
    assert array.max() == 65535 and np.abs(array.astype(int) - ramp).max() < 1200  # white as 65535 (not 1023 << 6)
    assert (array % 257 != 0).any()  # not 8 bits stretched: every 8-bit level is a multiple of 257 at 16 bits
    assert png.decode_png16(imageio.encode_image(array, "PNG", meta), "out").dtype == np.uint16


def test_a_heic_of_several_pictures_gives_its_primary_one_and_says_so(caplog):
    """A HEIC holding two pictures whose second is the primary one (a burst, an edit kept beside its
    original): the primary picture is read, not the first, and the notice names it."""
    red, blue = np.zeros((24, 40, 3), np.uint8), np.zeros((30, 20, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    source = heic(red, blue, primary_index=1)
    with caplog.at_level(logging.WARNING):
        array, meta = imageio.read_image(source, name="burst.heic")
    assert array.shape == (30, 20, 3) and array[..., 2].min() > 240 and array[..., 0].max() < 15
    assert "burst.heic holds 2 pictures; only its primary picture is upscaled" in caplog.text


def test_heic_is_read_not_written():
    """A .heic output, or --format heic, is refused before the work, saying what is written instead."""
    with pytest.raises(ImageFormatError, match=r"a HEIC/HEIF picture .*which is read but not written; name the output \.png"):
        imageio.format_for("out.heic")
    with pytest.raises(ImageFormatError, match="unknown format 'heic' for output: HEIC/HEIF pictures are read, not written"):
        imageio.format_for("out.png", "heic")

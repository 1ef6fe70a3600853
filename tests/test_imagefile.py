"""The one-file core (sr_filter.imagefile): the CLI and the cluster's workers refuse an output too
large for its format before the upscale, and write the same bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sr_filter.cluster.worker import Settings, convert
from sr_filter.errors import ImageTooLargeError
from sr_filter.imagefile import upscale_image_file
from sr_filter.upscaler import Upscaler


class CountingUpscaler(Upscaler):
    """The real built-in model, counting the upscales it is asked for."""

    calls = 0

    def upscale_array(self, array, scale=None, progress=None):
        type(self).calls += 1
        return super().upscale_array(array, scale, progress=progress)


@pytest.fixture(scope="module")
def upscaler():
    return CountingUpscaler("sr-cartoon-x4", device="cpu", tile=32)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


TALL = np.random.default_rng(3).integers(0, 256, (4100, 2, 3), dtype=np.uint8)  # x4: 8x16400, over WebP's 16383


def test_cluster_convert_refuses_a_too_large_output_before_the_upscale(upscaler):
    CountingUpscaler.calls = 0
    with pytest.raises(ImageTooLargeError, match=r"8x16400 image is too large for WEBP") as info:
        convert(upscaler, png(TALL), "in/tall.png", "out/tall.webp", Settings(model="sr-cartoon-x4", tile=32))
    assert CountingUpscaler.calls == 0 and "\n" not in str(info.value)


def test_the_cli_and_the_cluster_write_the_same_bytes(upscaler, tmp_path):
    from sr_filter.cli.jobs import Job
    from sr_filter.cli.upscale import process

    data = png(np.random.default_rng(4).integers(0, 256, (12, 10, 3), dtype=np.uint8))
    (tmp_path / "a.png").write_bytes(data)
    job = Job(tmp_path / "a.png", tmp_path / "a.jpg")
    process(upscaler, job, scale=None, fmt=None, quality=80, overwrite=False, progress=None)
    clustered = convert(upscaler, data, "a.png", "b/a.jpg", Settings(quality=80))
    assert clustered == (tmp_path / "a.jpg").read_bytes() == upscale_image_file(upscaler, data, out_format="JPEG", quality=80)
    with Image.open(tmp_path / "a.jpg") as out:
        assert out.size == (40, 48)


def test_a_size_picks_the_scale_and_the_input_format_is_the_default(upscaler):
    data = png(np.random.default_rng(5).integers(0, 256, (10, 20, 3), dtype=np.uint8))
    with Image.open(io.BytesIO(upscale_image_file(upscaler, data, size=(50, None)))) as out:
        assert out.format == "PNG" and out.size == (50, 25)


def test_a_width_keeps_each_sides_printed_length(upscaler):
    """--width 10 on a 7x5 picture at 70 dpi gives 10x7: x10/7 across but x7/5 down. Both densities
    had been scaled by the width's factor, so the printed height grew by 2% (up to 5% on small
    pictures); each side's density follows its own factor, in the density, EXIF and XMP alike."""
    exif = Image.Exif()
    exif[0x011A], exif[0x011B], exif[0x0128] = 70, 70, 2
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:XResolution="70/1" tiff:YResolution="70/1"/>'
           b"</rdf:RDF></x:xmpmeta>")
    pixels = Image.fromarray(np.random.default_rng(8).integers(0, 256, (5, 7, 3), dtype=np.uint8))
    for fmt in ("PNG", "JPEG", "TIFF"):
        buffer = io.BytesIO()
        pixels.save(buffer, fmt, dpi=(70, 70), exif=exif, xmp=xmp)
        with Image.open(io.BytesIO(upscale_image_file(upscaler, buffer.getvalue(), size=(10, None)))) as out:
            assert out.size == (10, 7)
            assert out.info["dpi"] == pytest.approx((100, 98), abs=0.51), fmt  # 70 x 10/7 and 70 x 7/5
            if fmt != "PNG":
                stated = out.getexif()
                assert (float(stated[0x011A]), float(stated[0x011B])) == pytest.approx((100, 98)), fmt
            if fmt == "JPEG":
                assert b'tiff:XResolution="100/1"' in out.info["xmp"] and b'tiff:YResolution="98/1"' in out.info["xmp"]


def test_a_turned_pictures_xmp_density_turns_with_it(upscaler):
    """EXIF orientation 6 with 72 x 144 dpi: JFIF and EXIF came out turned (144 across, before the
    scale), the XMP's resolutions still the stored axes, so the file disagreed with itself."""
    exif = Image.Exif()
    exif[274], exif[0x011A], exif[0x011B], exif[0x0128] = 6, 72, 144, 2
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6" tiff:XResolution="72/1" '
           b'tiff:YResolution="144/1"/></rdf:RDF></x:xmpmeta>')
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (7, 5, 3), dtype=np.uint8)).save(
        buffer, "JPEG", dpi=(72, 144), exif=exif, xmp=xmp)
    with Image.open(io.BytesIO(upscale_image_file(upscaler, buffer.getvalue(), size=(10, None)))) as out:
        assert out.size == (10, 7) and out.info["dpi"] == pytest.approx((206, 101), abs=0.51)
        stated = out.getexif()
        assert (float(stated[0x011A]), float(stated[0x011B])) == pytest.approx((205.714, 100.8), abs=0.01)
        assert b'tiff:XResolution="102857/500"' in out.info["xmp"] and b'tiff:YResolution="504/5"' in out.info["xmp"]


def test_a_folder_on_the_cluster_fails_the_too_large_file_alone(cluster, tmp_path):
    from sr_filter.cluster import upscale_folder

    src = tmp_path / "in"
    src.mkdir()
    (src / "tall.png").write_bytes(png(TALL))
    rng = np.random.default_rng(6)
    for i in range(2):
        (src / f"small{i}.png").write_bytes(png(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)))
    summary = upscale_folder(str(src), str(tmp_path / "out"), model="sr-cartoon-x4", tile=32, device="cpu", fmt="webp")
    assert summary.done == 2 and [source for source, _ in summary.failed] == [str(src / "tall.png")]
    message = summary.failed[0][1]
    assert "too large for WEBP" in message and "\n" not in message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small0.webp", "small1.webp"]


def gif(frames: int = 3) -> bytes:
    rng = np.random.default_rng(7)
    images = [Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)) for _ in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=[40, 80, 120][:frames], loop=0)
    return buffer.getvalue()


def test_an_animation_keeps_every_frame_where_the_format_holds_one(upscaler):
    from sr_filter import animation

    out = upscale_image_file(upscaler, gif(), name="a.gif")  # the input's own format: GIF
    back = animation.read_animation(out)
    assert len(back.frames) == 3 and back.frames[0].shape == (40, 48, 4) and back.durations == [40, 80, 120]
    webp = animation.read_animation(upscale_image_file(upscaler, gif(), out_format="WEBP"))
    assert len(webp.frames) == 3 and webp.loop == 0
    with Image.open(io.BytesIO(upscale_image_file(upscaler, gif(), out_format="JPEG"))) as still:
        assert still.format == "JPEG" and still.size == (48, 40)


def test_an_animation_in_a_cluster_folder_keeps_every_frame(cluster, tmp_path):
    from sr_filter import animation
    from sr_filter.cluster import upscale_folder

    src = tmp_path / "in"
    src.mkdir()
    (src / "moving.gif").write_bytes(gif())
    (src / "still.png").write_bytes(png(np.zeros((8, 8, 3), np.uint8)))
    summary = upscale_folder(str(src), str(tmp_path / "out"), model="sr-cartoon-x4", tile=32, device="cpu")
    assert (summary.done, summary.failed) == (2, [])
    back = animation.read_animation(tmp_path / "out" / "moving.gif")
    assert len(back.frames) == 3 and back.durations == [40, 80, 120]

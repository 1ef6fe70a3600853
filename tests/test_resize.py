"""Resizing at scales the network does not give: streamed row band by row band (ResizeSink), equal
to a whole-image resize, and never holding the network-scale result."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from sr_filter import Upscaler, convert, softalpha
from sr_filter.resize import ResizeSink, resize
from sr_filter.tiling import ArraySink, run_tiled

BICUBIC, BILINEAR = Image.Resampling.BICUBIC, Image.Resampling.BILINEAR


def _pillow(image: np.ndarray, height: int, width: int, resample: Image.Resampling) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p)).resize((width, height), resample))
                     for p in image[0]])[None]


@pytest.mark.parametrize("resample", [BICUBIC, BILINEAR])
@pytest.mark.parametrize("size", [(400, 320, 200, 160), (101, 77, 151, 39), (64, 64, 64, 32), (64, 64, 32, 64),
                                  (300, 200, 225, 150), (17, 500, 5, 3), (8, 8, 80, 3), (48, 36, 12, 9), (3, 3, 1, 1)])
def test_a_whole_resize_gives_pillows_pixels(size, resample):
    """Where Pillow runs its horizontal pass first (as the streamed resize must), the very same floats."""
    h, w, out_h, out_w = size
    image = np.random.default_rng(0).random((1, 2, h, w), dtype=np.float32) * 1.4 - 0.2
    assert np.array_equal(resize(image, out_h, out_w, clamp=False, resample=resample), _pillow(image, out_h, out_w, resample))


def test_where_pillow_chooses_the_vertical_pass_first_the_difference_is_float_rounding():
    image = np.random.default_rng(1).random((1, 1, 1000, 40), dtype=np.float32)
    got, want = resize(image, 999, 41, clamp=False), _pillow(image, 999, 41, BICUBIC)
    assert np.abs(got - want).max() <= 2.5e-7


class _Rows:
    """A sink that keeps what it is given, with where."""

    def __init__(self, shape):
        self.array = np.full(shape, np.nan, np.float32)
        self.order = []

    def write(self, y, rows, x=0):
        self.order.append(y)
        self.array[:, :, y : y + rows.shape[2], x : x + rows.shape[3]] = rows


def _network(scale):
    """A stand-in network with no reach beyond its pixel (so tiles equal the whole exactly)."""
    return lambda batch: np.sin(3 * batch).repeat(scale, axis=2).repeat(scale, axis=3) * 0.7 + 0.3


@pytest.mark.parametrize("band", [8, 0])  # blended full-width bands, and one block per tile
@pytest.mark.parametrize("out", [(230, 173), (95, 61), (470, 350)])
def test_rows_resized_as_the_tiler_streams_them_equal_the_whole_result_resized(band, out):
    image = np.random.default_rng(2).random((1, 3, 117, 88), dtype=np.float32)
    whole = run_tiled(_network(4), image, 4, tile=32, context=0, band=band)  # the same tiles, kept whole
    sink = _Rows((1, 3) + out)
    resizer = ResizeSink(sink, 117 * 4, 88 * 4, *out)
    held = []
    original = resizer._band
    resizer._band = lambda y, rows: (original(y, rows), held.append(resizer.rows.shape[1]))
    run_tiled(_network(4), image, 4, tile=32, context=0, band=band, out=resizer)
    assert np.array_equal(sink.array, resize(whole, *out)), "streamed rows differ from the whole result resized"
    assert sink.order == sorted(sink.order) and sink.order[0] == 0
    # what is held between bands: at most one band of tiles (about 32 + 4 context px at x4) and
    # the filter's reach, never the whole x4 result (468 rows)
    assert max(held) <= (32 + 8) * 4 + 2 * 8 + 2, held


@pytest.mark.parametrize("tile, limit", [(128, 100), (0, 150), (0, 60)])
def test_tiles_split_after_out_of_memory_reach_the_resize_in_any_order(tile, limit):
    """After out-of-memory a tile is run as four quarters, which reach an unblended sink as blocks
    top-left, top-right, bottom-left, bottom-right: the resize had refused the third ("rows from
    200 came before the band from 0 was complete"). The out-of-memory error is simulated (a
    stand-in network raises CUDA's message above a window size): no device runs out here."""
    image = np.random.default_rng(1).random((1, 3, 200, 300), dtype=np.float32)

    def run(batch):
        if max(batch.shape[-2:]) > limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return _network(4)(batch)

    out = np.zeros((400, 600, 3), np.float32)
    run_tiled(run, image, 4, tile=tile, context=4, band=0, out=ResizeSink(ArraySink(out), 800, 1200, 400, 600))
    assert np.array_equal(out, resize(_network(4)(image), 400, 600)[0].transpose(1, 2, 0))


def test_padding_rows_and_columns_beyond_the_picture_are_dropped():
    sink = _Rows((1, 1, 10, 6))
    resizer = ResizeSink(sink, 20, 12, 10, 6)
    padded = np.zeros((1, 1, 24, 16), np.float32)
    padded[:, :, :20, :12] = 0.5
    padded[:, :, 20:] = padded[:, :, :, 12:] = 1e6  # padding the network saw; never part of a pixel
    resizer.write(0, padded)
    assert np.allclose(sink.array, 0.5)


def test_rows_already_passed_on_are_an_error_not_a_wrong_picture():
    resizer = ResizeSink(_Rows((1, 1, 10, 10)), 20, 20, 10, 10)
    resizer.write(0, np.zeros((1, 1, 8, 20), np.float32))
    with pytest.raises(ValueError, match="in order"):
        resizer.write(2, np.zeros((1, 1, 4, 20), np.float32))


@pytest.fixture(scope="module")
def cartoon():
    return Upscaler("realesr-animevideov3", tile=64)


@pytest.fixture(scope="module")
def baboon(set14):
    """96x112: 2x2 tiles of 64 px (seams across and down), a third of the network's work at 150x170."""
    return np.asarray(Image.open(set14 / "baboon.png").convert("RGB"))[:96, :112].copy()


@pytest.fixture(scope="module")
def baboon_x4(cartoon, baboon):
    """The network's x4 float result of the whole picture, once for every scale compared with it."""
    return cartoon.run(convert.split(baboon).rgb)


@pytest.mark.parametrize("scale", [2, 1.5, 3, 0.5, 4.2])
def test_other_scales_are_the_network_result_resized(cartoon, baboon, baboon_x4, scale):
    """Tiled, streamed and resized on the way: the same pixels as the x4 float result resized whole."""
    got = cartoon.upscale(baboon, scale=scale)
    x4 = baboon_x4
    want = convert.from_float(resize(x4, *got.shape[:2]).transpose(0, 2, 3, 1)[0], np.uint8)
    assert got.shape[2] == 3 and np.array_equal(got, want)


def test_grey_and_alpha_at_other_scales_match_the_whole_route(cartoon, baboon):
    alpha = np.tile(np.linspace(0, 255, baboon.shape[1]).astype(np.uint8), (baboon.shape[0], 1))
    alpha[:20] = 0
    rgba = np.dstack([baboon, alpha])
    got = cartoon.upscale(rgba, scale=2)
    planes = convert.split(rgba)
    colour = cartoon.run(convert.bleed_transparent(planes.rgb, planes.alpha))
    ramp = cartoon.run(np.repeat(planes.alpha, 3, axis=1))
    h, w = baboon.shape[0] * 2, baboon.shape[1] * 2
    want_rgb = convert.from_float(resize(colour, h, w).transpose(0, 2, 3, 1)[0], np.uint8)
    want_alpha = convert.from_float(np.clip(resize(ramp, h, w), 0, 1).mean(axis=1)[0], np.uint8)
    softalpha.blend(want_alpha, planes.alpha, softalpha.network_weight(planes.alpha))  # the ramp resized, the step the network's
    clear, solid = convert.settled_alpha(planes.alpha, h, w)
    want_alpha[clear], want_alpha[solid] = 0, 255
    assert got.shape == (h, w, 4) and np.array_equal(got[..., :3], want_rgb) and np.array_equal(got[..., 3], want_alpha)
    grey = cartoon.upscale(baboon[..., 1], scale=1.5)
    assert grey.shape == (144, 168) and grey.dtype == np.uint8


def test_a_lower_scale_never_holds_the_networks_result(cartoon, baboon):
    """-s 2 with a x4 model held the whole x4 result as float32 (10 GB for a 12000x8000 output);
    now about one band of tiles at a time."""
    # 960x112: fifteen rows of tiles, tall enough that what is held for a band (about 8 MB at this
    # width, most of it the same at any height) stays well under half of the x4 float result
    picture = np.ascontiguousarray(np.tile(baboon, (10, 1, 1)))
    x4_float = picture.shape[0] * 4 * picture.shape[1] * 4 * 3 * 4  # 20.6 MB
    cartoon.upscale(picture[:64, :64], scale=2)  # warm: the backend's own first-call memory
    tracemalloc.start()
    try:
        out = cartoon.upscale(picture, scale=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (1920, 224, 3)
    assert peak < x4_float / 2, f"peak {peak / 1e6:.1f} MB traced, the x4 float result is {x4_float / 1e6:.1f} MB"


def test_the_sink_writes_into_an_image_of_its_own_dtype():
    target = np.zeros((5, 7, 3), np.uint16)
    resizer = ResizeSink(ArraySink(target), 10, 14, 5, 7)
    resizer.write(0, np.full((1, 3, 10, 14), 0.5, np.float32))
    assert (target == 32768).all()

"""Tiling: pure planning maths, exactness against whole-image inference, OOM splitting, sinks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sr_filter import CancelledError, Upscaler
from sr_filter.archs.rrdbnet import RRDBNet
from sr_filter.archs.srvgg import SRVGGNetCompact
from sr_filter.errors import OutOfMemoryError
from sr_filter.tiling import MIN_TILE, ArraySink, plan_spans, plan_tiles, ramp, run_tiled, split_tile

from .conftest import UPSTREAM, require_shared

CASES = [
    (length, tile, pad, multiple)
    for length, tile, pad, multiple in itertools.product([1, 2, 7, 31, 32, 33, 64, 100, 257], [32, 48, 64, 100], [0, 3, 18], [1, 2, 4])
    if length % multiple == 0
]


# -- planning (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize("length,tile,pad,multiple", CASES)
@pytest.mark.parametrize("equal", [True, False])
def test_spans_partition_the_axis_with_context(length, tile, pad, multiple, equal):
    spans = plan_spans(length, tile, pad, multiple, equal)
    assert spans[0].lo == 0 and spans[-1].hi == length
    assert all(a.hi == b.lo for a, b in zip(spans, spans[1:]))  # cores partition, in order
    if equal:
        assert len({s.size for s in spans}) == 1  # one window shape: tiles batch together
    else:
        assert all(s.start == max(0, s.lo - pad - (-pad % multiple)) for s in spans)  # tight windows
    cores = [s.hi - s.lo for s in spans]
    assert min(cores) > 0 and max(cores) <= max(tile, multiple) and max(cores) - min(cores) <= multiple  # no slivers
    for s in spans:
        assert 0 <= s.start and s.start + s.size <= length  # window inside the image
        assert s.start <= max(0, s.lo - pad) and s.start + s.size >= min(length, s.hi + pad)  # context kept
        assert s.lo % multiple == 0 and s.start % multiple == 0 and s.size % multiple == 0


def test_plan_rejects_bad_lengths():
    with pytest.raises(ValueError):
        plan_spans(0, 32, 4)
    with pytest.raises(ValueError):
        plan_spans(33, 32, 4, multiple=2)


def test_image_smaller_than_a_tile_is_one_window():
    assert plan_tiles(20, 30, 64, 18) == [(t := plan_tiles(20, 30, 64, 18)[0])] and t.shape == (20, 30)


@pytest.mark.parametrize("length,tile,pad,multiple", CASES[::3])
@pytest.mark.parametrize("band,scale", [(0, 4), (8, 4), (8, 2), (5, 3), (16, 1)])
@pytest.mark.parametrize("equal", [True, False])
def test_ramps_sum_to_one_and_stay_inside_the_context(length, tile, pad, multiple, band, scale, equal):
    spans = plan_spans(length, tile, pad + (band + 1) // 2, multiple, equal)
    total = np.zeros(length * scale, dtype=np.float64)
    for s in spans:
        first, w = ramp(s, length, scale, band)
        # a trapezoid: exactly 1 on the core away from the blend bands, between 0 and 1
        # inside a band (a linear ramp band * scale output px wide), never outside [0, 1]
        half = band * scale / 2
        centres = np.arange(first, first + len(w), dtype=np.float64) + 0.5
        inner = (centres > s.lo * scale + (half if s.lo > 0 else 0)) & (centres < s.hi * scale - (half if s.hi < length else 0))
        assert (w[inner] == 1).all()
        assert (w[~inner] >= 0).all() and (w[~inner] <= 1).all()
        total[first : first + len(w)] += w
        # weights are non-zero only where the window saw `pad` px of context (or the image border)
        nonzero = np.flatnonzero(w) + first
        lo, hi = int(nonzero.min()), int(nonzero.max()) + 1
        assert lo >= (s.start + (pad if s.start > 0 else 0)) * scale
        assert hi <= (s.start + s.size - (pad if s.start + s.size < length else 0)) * scale
    assert np.allclose(total, 1, atol=1e-6)


@pytest.mark.parametrize("height,width", [(64, 64), (100, 37), (130, 200)])
def test_split_tile_partitions_its_core(height, width):
    tile = plan_tiles(height, width, 1000, 6)[0]
    parts = split_tile(tile, height, width, 6)
    covered = np.zeros((height, width), int)
    for p in parts:
        covered[p.y.lo : p.y.hi, p.x.lo : p.x.hi] += 1
        assert p.y.start + p.y.size <= height and p.x.start + p.x.size <= width
    assert (covered == 1).all()
    assert len(parts) == (2 if height >= 2 * MIN_TILE else 1) * (2 if width >= 2 * MIN_TILE else 1)


# -- execution against whole-image inference ---------------------------------------------------


class _Net:
    """A small SRVGGNetCompact as the tiler runs windows: float32 arrays in and out."""

    def __init__(self, scale=4, num_conv=3, seed=0):
        torch.manual_seed(seed)
        self.net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=num_conv, upscale=scale).eval()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.net(torch.from_numpy(batch)).numpy()


def _small_srvgg(scale=4, num_conv=3, seed=0):
    return _Net(scale, num_conv, seed)


def _rand(*shape):
    return np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)


@pytest.mark.parametrize("height,width,tile", [(37, 53, 16), (64, 64, 32), (5, 70, 32), (20, 20, 64), (1, 1, 32), (33, 97, 32)])
@pytest.mark.parametrize("band,batch", [(0, 1), (8, 1), (0, 3), (8, 3)])
def test_tiled_equals_whole_when_context_covers_the_field(height, width, tile, band, batch):
    net = _small_srvgg()
    x = _rand(1, 3, height, width)
    whole = net(x)
    tiled = run_tiled(net, x, 4, tile=tile, context=5, band=band, batch=batch)
    assert np.abs(tiled - whole).max() < 1e-5


def test_context_one_short_of_the_field_differs():
    """The check above has teeth: with one pixel less context, plain crops are no longer exact."""
    net = _small_srvgg()
    x = _rand(1, 3, 64, 64)
    diff = np.abs(run_tiled(net, x, 4, tile=16, context=4, band=0) - net(x)).max()
    assert diff > 1e-4


def test_batches_hold_equal_shapes_and_change_nothing():
    net = _small_srvgg()
    x = _rand(1, 3, 70, 90)
    shapes = []

    def run(batch):
        shapes.append(tuple(batch.shape))
        return net(batch)

    single = run_tiled(net, x, 4, tile=32, context=5, batch=1)
    batched = run_tiled(run, x, 4, tile=32, context=5, batch=2)
    assert max(s[0] for s in shapes) == 2 and all(s[1:] == shapes[0][1:] for s in shapes)
    assert np.abs(single - batched).max() < 1e-5


def test_constant_network_gives_exactly_one_everywhere():
    """Partition of unity end to end: blending a network that outputs 1 gives 1 on every pixel."""
    x = np.zeros((1, 3, 75, 101), np.float32)
    ones = run_tiled(lambda b: np.ones((b.shape[0], 3, b.shape[2] * 3, b.shape[3] * 3), np.float32), x, 3, tile=32, context=2, band=8)
    assert np.allclose(ones, 1, atol=1e-6)


class _OomAbove:
    """Stand-in for a CUDA device (none exists here): fails with a real allocation error above a
    window size. ``real=True`` makes the CPU allocator fail for real (an impossible request,
    nothing is actually reserved), ``real="numpy"`` numpy's (MemoryError, as a window's own
    arrays fail); otherwise it raises torch's own OutOfMemoryError type."""

    def __init__(self, net, max_pixels, real):
        self.net, self.max_pixels, self.real, self.calls = net, max_pixels, real, []

    def __call__(self, batch):
        if batch.shape[0] * batch.shape[2] * batch.shape[3] > self.max_pixels:
            if self.real == "numpy":
                np.empty(1 << 62, dtype=np.uint8)  # MemoryError: Unable to allocate
            if self.real:
                torch.empty(1 << 62, dtype=torch.uint8)  # RuntimeError: can't allocate memory
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        self.calls.append(tuple(batch.shape))
        return self.net(batch)


@pytest.mark.parametrize("real", [True, "numpy", False])
def test_out_of_memory_splits_tiles_and_keeps_finished_ones(real):
    net = _small_srvgg()
    x = _rand(1, 3, 150, 150)
    flaky = _OomAbove(net, 80 * 80, real)
    whole = net(x)
    tiled = run_tiled(flaky, x, 4, tile=128, context=5, batch=4)
    assert np.abs(tiled - whole).max() < 1e-5
    # every successful call was a distinct quarter-size tile: nothing was computed twice
    assert len(flaky.calls) == 16 and all(c[0] == 1 for c in flaky.calls)


def test_out_of_memory_at_the_smallest_tile_is_a_clear_error():
    net = _small_srvgg()
    with pytest.raises(OutOfMemoryError, match="out of memory"):
        run_tiled(_OomAbove(net, 10, real=False), _rand(1, 3, 64, 64), 4, tile=64, context=5)


def test_other_errors_propagate():
    def broken(batch):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_tiled(broken, _rand(1, 3, 64, 64), 4, tile=32, context=5)


def test_progress_per_tile_and_cancel():
    net = _small_srvgg()
    x = _rand(1, 3, 64, 96)
    seen = []
    run_tiled(net, x, 4, tile=32, context=5, progress=lambda d, t: seen.append((d, t)))
    assert [d for d, _ in seen] == [1024 * k for k in range(1, 7)] and seen[-1] == (6144, 6144)
    calls = []
    with pytest.raises(CancelledError):
        run_tiled(net, x, 4, tile=32, context=5, progress=lambda d, t: calls.append(d) or len(calls) < 2)
    assert len(calls) == 2


# -- sinks: streaming into the final dtype ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("band", [0, 8])
def test_array_sink_equals_the_float_result(dtype, band):
    net = _small_srvgg()
    x = _rand(1, 3, 70, 45)
    ref = np.clip(run_tiled(net, x, 4, tile=32, context=5, band=band), 0, 1)[0].transpose(1, 2, 0)
    out = np.zeros((280, 180, 4), dtype)
    run_tiled(net, x, 4, tile=32, context=5, band=band, out=ArraySink(out))
    grey = np.zeros((280, 180), dtype)
    run_tiled(net, x, 4, tile=32, context=5, band=band, out=ArraySink(grey, mean=True))
    cropped = np.zeros((277, 173, 3), dtype)  # padding rows and columns beyond the array are dropped
    run_tiled(net, x, 4, tile=32, context=5, band=band, out=ArraySink(cropped))
    top = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    assert np.abs(out[..., :3] / top - ref).max() <= 0.5 / top + 1e-6
    assert np.array_equal(cropped, out[:277, :173, :3])
    assert (out[..., 3] == 0).all()  # other channels untouched
    assert np.abs(grey / top - ref.mean(axis=2)).max() <= 0.5 / top + 1e-6


# -- through Upscaler, with the real weights -----------------------------------------------------


@pytest.mark.parametrize("name", ["realesr-animevideov3.pth", "RealESRGANv2-animevideo-xsx2.pth", "RealESRGANv2-animevideo-xsx4.pth"])
def test_shipped_models_tiled_within_one_level_of_whole(name):
    """Max |tiled - whole| over every pixel, borders included, odd size, several tile sizes."""
    path = str(require_shared(UPSTREAM / name))
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 45 * 59 * 3).reshape(45, 59, 3)
    image = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
    whole = Upscaler(path, tile=0).upscale(image).astype(int)
    for tile in (32,):
        tiled = Upscaler(path, tile=tile).upscale(image).astype(int)
        assert np.abs(tiled - whole).max() <= 1, (name, tile)


def test_pixel_unshuffle_models_pad_odd_sizes_and_tile_exactly(tmp_path):
    """RRDBNet x2 folds 2x2 pixels: odd sizes are padded and tiles stay aligned to the fold."""
    torch.manual_seed(0)
    net = RRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4)
    torch.save({"params_ema": net.state_dict()}, tmp_path / "tiny_x2.pth")
    image = np.random.default_rng(1).integers(0, 256, (41, 71, 3), dtype=np.uint8)
    whole = Upscaler(str(tmp_path / "tiny_x2.pth"), tile=0)
    assert whole.model.facts.multiple == 2
    expected = whole.upscale(image).astype(int)
    tiled = Upscaler(str(tmp_path / "tiny_x2.pth"), tile=32).upscale(image).astype(int)
    assert tiled.shape == (82, 142, 3) and np.abs(tiled - expected).max() <= 1
    x = _rand(1, 3, 41, 71)
    out = whole.run(x)
    assert out.shape == (1, 3, 82, 142) and isinstance(out, np.ndarray)
    direct = whole.model(torch.from_numpy(x))  # the loaded model's own contract: pad to the fold, clamp, crop back
    assert direct.shape == (1, 3, 82, 142) and np.abs(direct.numpy() - out).max() < 1e-5
    assert torch.equal(whole.run(torch.from_numpy(x)), torch.from_numpy(out))  # a tensor in, a tensor out


def _rdb_macs(nf: int, gc: int) -> int:
    return sum((nf + i * gc) * gc * 9 for i in range(4)) + (nf + 4 * gc) * nf * 9


@pytest.mark.parametrize("net, expected, written", [
    # SRVGGNetCompact: first conv, the body's 3x3 convs, the last conv to out x scale^2 channels
    (SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4), 3 * 64 * 9 + 16 * 64 * 64 * 9 + 64 * 48 * 9,
     64 + 16 * 64 + 48),
    # RRDBNet x4: the trunk at the input size, two x2 upsampling convs, the HR convs at 16x the pixels
    (RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=32, num_block=2, num_grow_ch=16),
     3 * 32 * 9 + 2 * 3 * _rdb_macs(32, 16) + 32 * 32 * 9 + 32 * 32 * 9 * (4 + 16 + 16) + 32 * 3 * 9 * 16,
     32 + 2 * 3 * (4 * 16 + 32) + 32 + 32 * (4 + 16 + 16) + 3 * 16),
])
def test_work_per_pixel_is_counted_on_the_network(net, expected, written):
    """Multiply-adds per input pixel, and per value the layers write (values per input pixel: each
    conv's output channels times its pixels per input pixel)."""
    from sr_filter.archs.base import count_work
    from sr_filter.archs.rrdbnet import ARCH as RRDB
    from sr_filter.archs.srvgg import ARCH as SRVGG

    arch = SRVGG if isinstance(net, SRVGGNetCompact) else RRDB
    facts = arch.facts(arch.infer_params(net.state_dict()))
    assert count_work(net, facts) == (expected, expected // written)
    assert count_work(torch.nn.Conv2d(4, 3, 3), facts) == (0, 0)  # does not run on 3 channels: not counted


def test_work_is_counted_alone_while_another_thread_runs_the_same_network():
    """The counting hooks sit on the shared network: a pass another thread made meanwhile (a
    program that loaded the model once for several threads) had been counted too, so the work
    looked larger and the tiles came out smaller."""
    import threading

    from sr_filter.archs.base import count_work
    from sr_filter.archs.srvgg import ARCH as SRVGG

    net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=4)
    facts = SRVGG.facts(SRVGG.infer_params(net.state_dict()))
    alone = count_work(net, facts)
    stop = threading.Event()

    def busy() -> None:
        with torch.no_grad():
            while not stop.is_set():
                net(torch.zeros(1, 3, 40, 40))

    others = [threading.Thread(target=busy) for _ in range(2)]
    for thread in others:
        thread.start()
    try:
        assert all(count_work(net, facts) == alone for _ in range(20))
    finally:
        stop.set()
        for thread in others:
            thread.join()


def test_tile_0_on_the_cpu_is_refused_before_the_work_when_the_estimate_passes_free_memory(monkeypatch):
    """--tile 0 was never checked against memory: a 5400x3600 picture grew past 19 GB of 22 free
    (a CPU process is killed by the system, not split as a GPU window is). Less free memory is
    simulated here; the automatic tile runs the same picture."""
    from sr_filter.errors import OutOfMemoryError
    from sr_filter.upscaler import Upscaler

    whole = Upscaler("sr-cartoon-x4", device="cpu", tile=0, backend="torch")
    monkeypatch.setattr(whole, "_free", lambda: 8 << 20)  # 8 MiB: a 70x50 window needs about 6.7
    image = np.zeros((50, 70, 3), np.uint8)
    assert whole.upscale_array(image).shape == (200, 280, 3)
    with pytest.raises(OutOfMemoryError, match=r"^a 90x60 picture in one window \(tile 0\) needs about 0.0 GiB by the estimate "
                                               r"for srvgg, but 0.0 GiB is free; leave the tile automatic, or give a tile size$"):
        whole.upscale_array(np.zeros((60, 90, 3), np.uint8))
    auto = Upscaler("sr-cartoon-x4", device="cpu", backend="torch")
    monkeypatch.setattr(auto, "_free", lambda: 8 << 20)
    assert auto.upscale_array(np.zeros((60, 90, 3), np.uint8)).shape == (240, 360, 3)
    from sr_filter.cli.messages import one_line
    from sr_filter.errors import WholeTooLargeError

    with pytest.raises(WholeTooLargeError) as info:
        whole.upscale_array(np.zeros((60, 90, 3), np.uint8))
    said = one_line(info.value, flags=frozenset({"--tile", "--scale", "--width", "--height"}))
    # the command line names the option, and adds no --scale advice (the window's size is the input's)
    assert said.endswith("leave out --tile (automatic), or give a --tile size") and "--scale" not in said, said


def test_a_tile_given_is_checked_against_memory_as_tile_0_is(monkeypatch):
    """A tile as large as the picture is the picture in one window, as tile 0 is, but it was never
    checked: ``tile 4000`` on a 2000x2000 picture ran whatever the memory. A tile smaller than the
    picture whose window still would not fit is refused too; a tile that fits runs. (32 MiB of
    free memory is simulated: about 16800 pixels of srvgg's window.)"""
    from sr_filter.cli.messages import one_line
    from sr_filter.errors import WholeTooLargeError
    from sr_filter.upscaler import Upscaler

    def with_free(tile):
        up = Upscaler("sr-cartoon-x4", device="cpu", tile=tile, backend="torch")
        monkeypatch.setattr(up, "_free", lambda: 32 << 20)
        return up

    image = np.zeros((200, 200, 3), np.uint8)
    with pytest.raises(WholeTooLargeError, match=r"^a 200x200 picture in one window \(tile 4000 covers it whole\) needs about "):
        with_free(4000).upscale_array(image)
    reach = 128 + 2 * with_free(128).model.facts.context
    with pytest.raises(WholeTooLargeError, match=rf"^128 px tiles \(windows of {reach}x{reach} with their margins\) need about "
                                                 r".* is free; leave the tile automatic, or give a smaller tile size$") as info:
        with_free(128).upscale_array(image)
    said = one_line(info.value, flags=frozenset({"--tile", "--scale"}))
    assert said.endswith("leave out --tile (automatic), or give a smaller --tile size") and "--scale" not in said, said
    assert with_free(64).upscale_array(image[:96, :96]).shape == (384, 384, 3)  # a tile that fits runs (2x2 of them here)


def test_cpu_tiles_are_sized_by_the_work_of_a_window(monkeypatch, tmp_path):
    """On the CPU, tile=auto gives a window about CPU_WINDOW_MACS multiply-adds: a cheap model
    gets larger tiles (less lost to their overlap), TTA's 8 passes and heavy models smaller ones,
    from CPU_TILE to CPU_TILE_MAX; a model that waits on memory, or whose work is not counted, keeps CPU_TILE."""
    from dataclasses import replace

    from sr_filter.upscaler import COMPUTE_BOUND, CPU_TILE, CPU_TILE_MAX, CPU_WINDOW_MACS

    monkeypatch.setattr("sr_filter.upscaler.free_memory", lambda device: 64 << 30)  # memory is not the limit here
    path = tmp_path / "compact.pth"  # 20 body convs: a window of CPU_WINDOW_MACS is a little under CPU_TILE_MAX
    torch.save(SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=20, upscale=4).state_dict(), path)
    up = Upscaler(str(path), device="cpu", backend="torch")
    facts = up.model.facts
    assert facts.macs_per_value >= COMPUTE_BOUND  # 64 features: arithmetic, not memory, limits it
    edge = up._cpu_edge(1)
    window = edge + 2 * facts.context
    assert window**2 * facts.macs_per_pixel <= CPU_WINDOW_MACS < (window + 16) ** 2 * facts.macs_per_pixel
    assert up._tile_for(720, 1280) == edge and CPU_TILE < edge < CPU_TILE_MAX
    assert up._tile_for(400, 450) == 0  # fits in one window: whole
    assert Upscaler(str(path), device="cpu", backend="torch", tta=True)._tile_for(720, 1280) == CPU_TILE
    assert CPU_TILE < up._cpu_edge(2) < edge  # two frames per call
    up.model._facts = replace(facts, macs_per_pixel=106_848)  # as cheap as sr-cartoon-x4: 1344 by its work
    assert up._tile_for(720, 1280) == CPU_TILE_MAX
    up.model._facts = replace(facts, macs_per_pixel=106_848, macs_per_value=267)  # sr-cartoon-x4: waits on memory
    assert up._tile_for(720, 1280) == CPU_TILE
    up.model._facts = replace(facts, macs_per_pixel=17_926_848)  # RRDBNet x4plus
    assert up._tile_for(720, 1280) == CPU_TILE
    up.model._facts = replace(facts, macs_per_pixel=0)  # not counted (a network the count could not run)
    assert up._tile_for(720, 1280) == CPU_TILE


def test_auto_tile_follows_free_memory(monkeypatch):
    up = Upscaler("cartoon")
    monkeypatch.setattr("sr_filter.upscaler.free_memory", lambda device: 64 << 30)
    assert up._tile_for(480, 500) in (0, *range(64, 2049))
    monkeypatch.setattr("sr_filter.upscaler.free_memory", lambda device: 200 << 20)
    small = up._tile_for(4000, 4000)
    assert 64 <= small <= 256

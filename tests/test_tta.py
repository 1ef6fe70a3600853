"""Test-time augmentation: 8 flips/rotations per window, mapped back and averaged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_filter.tta import TRANSFORMS, TTABackend, forward_transform, inverse_transform, tta_run
from sr_filter.upscaler import Upscaler


def _nearest_x2(x: np.ndarray) -> np.ndarray:
    return x.repeat(2, -2).repeat(2, -1)


def _rand(*shape):
    return np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)


def _numpy_runner(net):
    """A torch network as a window runner: float32 arrays in and out."""

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(batch)).numpy()

    return run


def test_transforms_are_the_eight_distinct_symmetries_and_invert():
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)
    seen = set()
    for k, flip in TRANSFORMS:
        t = forward_transform(x, k, flip)
        assert t.shape[-2:] == ((6, 4) if k % 2 else (4, 6))  # quarter turns swap height and width
        assert np.array_equal(inverse_transform(t, k, flip), x)
        seen.add(np.ascontiguousarray(t).tobytes() + bytes([k % 2]))
    assert len(seen) == 8


def test_equivariant_network_is_unchanged():
    # nearest-neighbour enlargement commutes with every flip and rotation: a wrong inverse
    # (pixels put back in the wrong place) would show on this non-symmetric input
    x = _rand(1, 3, 6, 10)
    np.testing.assert_allclose(tta_run(_nearest_x2, x), _nearest_x2(x), rtol=0, atol=1e-6)


def test_average_matches_numpy_reference():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)  # not symmetric: TTA changes its output
    x = torch.rand(1, 3, 8, 12).numpy()
    run = _numpy_runner(conv)
    got = tta_run(run, x)
    assert got.dtype == np.float32
    ref = np.zeros((3, 8, 12))
    xn = x[0]
    with torch.inference_mode():
        for k in range(4):
            for flip in (False, True):
                t = xn[:, :, ::-1] if flip else xn
                t = np.rot90(t, k, axes=(1, 2))
                y = conv(torch.from_numpy(t.copy())[None])[0].numpy()
                y = np.rot90(y, -k, axes=(1, 2))
                ref += y[:, :, ::-1] if flip else y
    np.testing.assert_allclose(got[0], ref / 8, atol=1e-6)
    assert not np.allclose(got, run(x), atol=1e-3)


class _NetBackend:
    """A minimal Backend (the seam's protocol) running a network on the CPU in fp32."""

    name, precision = "torch", "fp32"

    def __init__(self, net):
        self.net = net

    def run(self, batch):
        with torch.inference_mode():
            return self.net(torch.from_numpy(batch)).float().clamp(0, 1).numpy()


def test_backend_wrapper_names_itself_and_clamps():
    up = Upscaler("sr-cartoon-x4", device="cpu", precision="fp32", tile=0)
    backend = TTABackend(_NetBackend(up.model.network))
    assert backend.name == "torch+tta" and backend.precision == "fp32"
    x = _rand(2, 3, 12, 16)  # a batch of windows, one shape
    y = backend.run(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert y.shape == (2, 3, 48, 64) and y.min() >= 0 and y.max() <= 1
    clamped = _numpy_runner(lambda b: up.model.network(b).clamp(0, 1))  # views clamped, as backends give them
    # torch.testing.assert_close's float32 defaults
    np.testing.assert_allclose(y, tta_run(clamped, x), rtol=1.3e-6, atol=1e-5)


def test_tiled_equals_whole_with_tta():
    image = _rand(1, 3, 70, 90)
    whole = Upscaler("sr-cartoon-x4", device="cpu", precision="fp32", tile=0)
    tiled = Upscaler("sr-cartoon-x4", device="cpu", precision="fp32", tile=32)
    plain = whole.run(image)
    whole = Upscaler("sr-cartoon-x4", device="cpu", precision="fp32", tile=0, tta=True)
    tiled = Upscaler("sr-cartoon-x4", device="cpu", precision="fp32", tile=32, tta=True)
    assert whole.backend.name.endswith("+tta")
    a, b = whole.run(image), tiled.run(image)
    assert np.abs(a - b).max() < 1e-5  # srvgg's context covers its field: tiles stay exact with TTA
    assert np.abs(a - plain).max() > 1 / 255  # and TTA did change the result


def test_sixteen_bit_with_alpha():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 65535, (20, 28, 4), dtype=np.uint16)
    rgba[..., 3] = np.linspace(0, 65535, 28, dtype=np.uint16)[None, :]
    up = Upscaler("sr-cartoon-x4", device="cpu", precision="fp32", tile=32)
    plain = up.upscale_array(rgba)
    out = Upscaler("sr-cartoon-x4", device="cpu", precision="fp32", tile=32, tta=True).upscale_array(rgba)
    assert out.dtype == np.uint16 and out.shape == (80, 112, 4)
    diff = np.abs(out.astype(np.int64) - plain.astype(np.int64))
    assert 0 < diff[..., :3].mean() < 4000  # the same picture, averaged over 8 views
    assert np.abs(out[..., 3].astype(np.int64) - plain[..., 3]).max() < 1500  # a smooth ramp stays (within 2.3%)


@pytest.mark.parametrize("shape", [(1, 3, 16, 40)])
def test_rotation_keeps_size_multiple(shape):
    seen = []

    def run(x):
        seen.append(tuple(x.shape[-2:]))
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0
        return _nearest_x2(x)

    tta_run(run, _rand(*shape))
    assert set(seen) == {(16, 40), (40, 16)}

"""Our networks against spandrel's independent implementations, on real weights and real images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from sr_filter.archs import ARCHS, detect_arch, get_arch
from sr_filter.archs.rrdbnet import RRDBNet
from sr_filter.archs.srvgg import SRVGGNetCompact
from sr_filter.errors import WeightsFormatError
from sr_filter.weights import load_state_dict

from .conftest import UPSTREAM, require_shared
from .reference import spandrel


def _crop(path, size=96) -> torch.Tensor:
    img = np.asarray(Image.open(path).convert("RGB"))[:size, :size]
    return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("name", ["realesr-animevideov3", "RealESRGANv2-animevideo-xsx2", "RealESRGANv2-animevideo-xsx4"])
def test_srvgg_matches_reference_on_official_weights(name, set5):
    path = require_shared(UPSTREAM / f"{name}.pth")
    sp = spandrel()
    reference = sp.ModelLoader().load_from_file(str(path)).model.eval()
    state = load_state_dict(path)
    arch, params = detect_arch(state)
    assert arch.name == "srvgg"
    ours = arch.build(params).eval()
    ours.load_state_dict(state, strict=True)  # same keys and shapes as the official file
    for image in ("baby.png", "butterfly.png"):
        x = _crop(set5 / image)
        with torch.inference_mode():
            a, b = ours(x).clamp(0, 1), reference(x).clamp(0, 1)
        assert a.shape == (1, 3, 96 * params["upscale"], 96 * params["upscale"])
        assert (a - b).abs().max().item() * 255 < 1.0


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_state_dict_is_interchangeable_with_reference(scale, set5):
    """A BasicSR-format RRDBNet state dict (keys as in RealESRGAN_x4plus.pth) runs identically in both."""
    sp = spandrel()
    torch.manual_seed(scale)
    ours = RRDBNet(scale=scale, num_block=2).eval()  # RealESRGAN_x4plus settings, fewer blocks
    with torch.no_grad():  # realistic magnitudes: shrink the random init so activations stay bounded
        for p in ours.parameters():
            p.mul_(0.5)
    state = ours.state_dict()
    assert {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_up1.weight", "conv_up2.weight", "conv_hr.weight", "conv_last.weight"} <= set(state)
    reference = sp.ModelLoader().load_from_state_dict(state).model.eval()
    x = _crop(set5 / "bird.png", 64)
    with torch.inference_mode():
        a, b = ours(x), reference(x)
    assert a.shape == b.shape == (1, 3, 64 * scale, 64 * scale)
    assert (a - b).abs().max().item() < 1e-4
    arch, params = detect_arch(state)
    assert arch.name == "rrdbnet" and params["scale"] == scale and params["num_block"] == 2


def test_srvgg_settings_round_trip():
    for kwargs in ({"num_feat": 16, "num_conv": 4, "upscale": 2}, {"num_feat": 8, "num_conv": 6, "upscale": 3}):
        net = SRVGGNetCompact(**kwargs)
        arch, params = detect_arch(net.state_dict())
        assert arch.name == "srvgg"
        assert {k: params[k] for k in kwargs} == kwargs
        rebuilt = get_arch("srvgg").build(params).eval()
        result = rebuilt.load_state_dict(net.state_dict(), strict=False)
        assert result.missing_keys == [] and result.unexpected_keys == []
        x = torch.rand(1, 3, 12, 10)
        with torch.inference_mode():
            assert torch.equal(rebuilt(x), net.eval()(x))  # the same network, not just the same keys


def _random_nets():
    from sr_filter.archs.edsr import EDSR
    from sr_filter.archs.srresnet import SRResNet
    from sr_filter.archs.unet import UNetUpscaler

    yield "srvgg", SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2)
    yield "srvgg", SRVGGNetCompact(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=2, upscale=4, act_type="leakyrelu")
    yield "rrdbnet", RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4)
    yield "edsr", EDSR(num_feat=8, num_block=2, upscale=2)
    yield "edsr", EDSR(num_feat=8, num_block=1, upscale=4, upsampler="subpixel", skip="bicubic")
    yield "srresnet", SRResNet(num_feat=8, num_block=2, upscale=2)
    yield "unet", UNetUpscaler(num_feat=8, blocks=[1, 1], upscale=2)


@pytest.mark.parametrize("expected,net", list(_random_nets()), ids=lambda v: v if isinstance(v, str) else "")
def test_exactly_one_detector_claims_each_family(expected, net):
    """Detection asks every descriptor: exactly one claims the state dict, whatever the order."""
    state = net.state_dict()
    claims = [arch.name for arch in ARCHS.values() if arch.detect(state)]
    assert claims == [expected]
    for order in (list(ARCHS.values()), list(reversed(ARCHS.values()))):
        arch, params = detect_arch(state, order)
        assert arch.name == expected
        assert arch.build(params).load_state_dict(state, strict=True).missing_keys == []


def test_two_detectors_claiming_one_file_is_an_error():
    state = SRVGGNetCompact(num_feat=8, num_conv=2).state_dict()
    twin = dataclasses.replace(get_arch("srvgg"), name="twin")
    with pytest.raises(WeightsFormatError, match="ambiguous.*srvgg and twin"):
        detect_arch(state, [get_arch("srvgg"), twin])


def test_descriptor_facts_come_from_the_settings():
    facts = get_arch("srvgg").facts({"num_feat": 8, "num_conv": 5, "upscale": 2})
    assert (facts.scale, facts.context, facts.blend, facts.multiple, facts.in_channels) == (2, 7, 0, 1, 3)
    assert get_arch("rrdbnet").facts({"scale": 1}).multiple == 4
    assert get_arch("rrdbnet").facts({"scale": 2, "num_in_ch": 4, "num_out_ch": 4}).in_channels == 4


def test_unknown_state_dict_is_rejected():
    with pytest.raises(WeightsFormatError, match="not a known super-resolution architecture"):
        detect_arch({"fc.weight": torch.zeros(2, 2)})


def test_unknown_architecture_name():
    with pytest.raises(WeightsFormatError, match="unknown architecture 'nope'"):
        get_arch("nope")

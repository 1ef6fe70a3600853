"""Denoise strength: weight interpolation with a model's weak-denoise twin (Real-ESRGAN's -dn).

The real realesr-general files are not on this machine, so a test manifest names two real compact
files of one shape made here (the built-in cartoon model's weights, perturbed two ways), served by
the local weights server and fetched, verified and interpolated like the real pair.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_filter import denoise
from sr_filter.errors import DenoiseError, SrFilterError
from sr_filter.manifest import load_manifest
from sr_filter.models import load_entry
from sr_filter.weights import fetch, load_state_dict
from tests.conftest import WeightsServer

BUILTIN = Path(__file__).resolve().parents[1] / "sr_filter" / "builtin" / "sr-cartoon-x4.pth"
SETTINGS = {"num_feat": 32, "num_conv": 10, "act_type": "prelu", "upscale": 4}


def _entry(name: str, path: Path, **extra) -> dict:
    data = path.read_bytes()
    return {"name": name, "version": "1", "arch": "srvgg", "settings": SETTINGS, "scale": 4, "file": path.name,
            "urls": [f"http://example.invalid/{path.name}"], "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data), "license": "BSD-3-Clause", "state_key": "params", **extra}


@pytest.fixture
def pair(tmp_path, monkeypatch):
    """A manifest with a model 'strong' whose denoise pair is 'weak', both served locally."""
    served = tmp_path / "served"
    served.mkdir()
    base = load_state_dict(BUILTIN, "params")
    files = {}
    for seed, name in ((1, "strong"), (2, "weak")):
        g = torch.Generator().manual_seed(seed)
        state = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in base.items()}
        files[name] = served / f"{name}-x4.pth"
        torch.save({"params": state}, files[name])
    manifest_data = {
        "manifest_version": 1, "default_preset": "photo",
        "presets": {"photo": {"models": ["strong"]}, "plain": {"models": ["sr-cartoon-x4"]}},
        "models": [_entry("strong", files["strong"], denoise_pair="weak"), _entry("weak", files["weak"]),
                   _entry("sr-cartoon-x4", BUILTIN)],
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest_data))
    server = WeightsServer(served)
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", server.url)
    yield load_manifest(path), files
    server.stop()


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.network.state_dict().items()}


def test_strength_interpolates_as_real_esrgan(pair):
    manifest, files = pair
    strong = torch.load(files["strong"], weights_only=True)["params"]
    weak = torch.load(files["weak"], weights_only=True)["params"]
    model = denoise.load_denoised("photo", 0.3, manifest=manifest)  # the preset resolves to 'strong'
    got = _state(model)
    assert got.keys() == strong.keys()
    for key in strong:  # Real-ESRGAN: dni_weight = [S, 1 - S] over [x4v3, wdn-x4v3]
        torch.testing.assert_close(got[key], 0.3 * strong[key] + 0.7 * weak[key], rtol=0, atol=1e-7)
    assert model.scale == 4 and "0.3" in model.name


@pytest.mark.parametrize("strength, which", [(1.0, "strong"), (0.0, "weak")])
def test_ends_are_exactly_each_model(pair, strength, which):
    manifest, _files = pair
    model = denoise.load_denoised("strong", strength, manifest=manifest)
    entry = manifest.get(which)
    plain = load_entry(entry, fetch(entry))
    for key, value in _state(plain).items():
        assert torch.equal(_state(model)[key], value), key
    x = torch.rand(1, 3, 20, 24)
    with torch.inference_mode():
        assert torch.equal(model.network(x), plain.network(x))


@pytest.mark.parametrize("spec", ["sr-cartoon-x4", "plain", "weak"])
def test_models_without_a_pair_are_refused(pair, spec):
    manifest, _ = pair
    with pytest.raises(DenoiseError, match="no denoise strength") as info:
        denoise.load_denoised(spec, 0.5, manifest=manifest)
    assert "\n" not in str(info.value) and "strong" in str(info.value)  # names the models that have one


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_out_of_range_is_refused(pair, strength):
    manifest, _ = pair
    with pytest.raises(DenoiseError, match="between 0 and 1"):
        denoise.load_denoised("strong", strength, manifest=manifest)


def test_a_numpy_strength_is_a_strength_and_a_flag_is_refused(pair):
    """denoise=np.float32(0.3) (a slider's value) had been "must be between 0 and 1, not
    np.float32(0.3)"; denoise=False had run strength 0, the weak twin's pixels, not the model's own."""
    manifest, _files = pair
    got = _state(denoise.load_denoised("strong", np.float32(0.25), manifest=manifest))
    want = _state(denoise.load_denoised("strong", 0.25, manifest=manifest))
    assert all(torch.equal(got[k], want[k]) for k in want)
    for flag in (False, True, np.bool_(True)):
        with pytest.raises(DenoiseError, match=r"^denoise is a strength from 0 to 1 \(None: the model as published\), not "):
            denoise.load_denoised("strong", flag, manifest=manifest)


def test_local_file_is_refused(pair, tmp_path):
    manifest, files = pair
    with pytest.raises(SrFilterError, match="local file"):
        denoise.load_denoised(str(files["strong"]), 0.5, manifest=manifest)


def test_packaged_manifest_pairs_general_x4v3_with_its_wdn_twin():
    manifest = load_manifest()
    entry, twin = denoise.pair_of("realesr-general-x4v3", manifest)
    assert twin.name == "realesr-general-wdn-x4v3"
    assert twin.sha256 == "1641f8c4464b9f097c9fdda5589273713f67cf59f3d909e0bd688f0cee269dca"
    assert twin.urls == ("https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-wdn-x4v3.pth",)
    assert denoise.pair_of("photo", manifest)[0].name == "realesr-general-x4v3"
    with pytest.raises(DenoiseError):
        denoise.pair_of("cartoon", manifest)


def test_unreachable_pair_says_that_no_built_in_model_replaces_it(pair, monkeypatch):
    """A preset falls back to a built-in model when offline; a denoise strength cannot, and says so."""
    manifest, _ = pair
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", "http://127.0.0.1:9/closed/")
    for offline in (None, True):
        with pytest.raises(DenoiseError, match="none has a denoise pair") as info:
            denoise.load_denoised("strong", 0.5, manifest=manifest, offline=offline)
        # both files named, once, and where they go: naming only the first had led to a second error after placing it
        assert "needs strong-x4.pth and weak-x4.pth, which are not in " in str(info.value) and "\n" not in str(info.value)
        assert "are not there" not in str(info.value)
        # the way out, whole within the command line's cut at about 600 characters (it had been cut off)
        text = str(info.value)
        assert text.endswith("leave out the denoise strength (then a built-in model works offline; none has a denoise pair)")
        assert len(text) < 560 and ("allow downloads" if offline else "check that the mirror http://127.0.0.1:9/closed/ has them") in text, text
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", "notaurl")  # not the network: the setting's own words
    with pytest.raises(DenoiseError, match=r"could not be made \(SR_FILTER_WEIGHTS_URL='notaurl' is not an http") as info:
        denoise.load_denoised("strong", 0.5, manifest=manifest)
    assert "mend that" in str(info.value) and "network" not in str(info.value)


def test_a_denoised_conversion_is_never_taken_for_the_plain_model(pair, monkeypatch):
    """The OpenVINO cache finds converted models by the weights' digest, and a denoised model's
    record carried the plain model's: after one --denoise run, every plain run on the CPU got the
    denoised weights (and the start-up line did not say the strength)."""
    import numpy as np

    from sr_filter import manifest as manifest_module
    from sr_filter.upscaler import Upscaler

    manifest, _files = pair
    monkeypatch.setattr(manifest_module, "_packaged_manifest", lambda: manifest)
    image = np.random.default_rng(4).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    denoised = Upscaler("strong", device="cpu", denoise=0.5)
    assert denoised.backend.name == "openvino" and "strong-dn0.5" in denoised.describe()
    noisy = denoised.upscale(image)
    plain = Upscaler("strong", device="cpu")  # found in the conversion cache, without torch
    reference = Upscaler("strong", device="cpu", backend="torch").upscale(image)
    assert plain.backend.name == "openvino" and "dn" not in plain.describe()
    assert np.abs(plain.upscale(image).astype(int) - reference).max() <= 1
    assert np.abs(noisy.astype(int) - reference).max() > 2

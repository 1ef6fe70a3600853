"""The shipped manifest is consistent with the architectures and with the real weight files."""

from __future__ import annotations

import json
import re

import pytest

from sr_filter.archs import get_arch
from sr_filter.errors import ManifestError, UnknownModelError
from sr_filter.manifest import load_manifest, parse_manifest
from sr_filter.weights import cached_path, file_sha256

from .conftest import ROOT, UPSTREAM


def test_top_level_manifest_is_the_packaged_one():
    top = json.loads((ROOT / "weights_manifest.json").read_text())
    packaged = json.loads((ROOT / "sr_filter" / "weights_manifest.json").read_text())
    assert top == packaged


@pytest.mark.parametrize("entry", load_manifest().models, ids=lambda e: e.id)
def test_entry_builds_with_declared_parameter_count_and_scale(entry):
    arch = get_arch(entry.arch)
    net = arch.build(entry.settings)
    assert sum(p.numel() for p in net.parameters()) == entry.num_params
    assert arch.scale(entry.settings) == entry.scale
    assert entry.license and entry.sha256 and entry.size > 0
    assert entry.urls or entry.packaged
    assert all(u.startswith("https://") and u.endswith("/" + entry.file) for u in entry.urls)


def test_entries_match_the_real_files_we_have():
    manifest = load_manifest()
    checked = 0
    for path in UPSTREAM.glob("*.pth"):
        entry = manifest.get(path.stem)
        assert path.stat().st_size == entry.size
        assert file_sha256(path) == entry.sha256
        checked += 1
    if checked == 0:
        pytest.skip("no upstream weights available")
    for entry in manifest.models:
        if entry.packaged:
            assert file_sha256(cached_path(entry)) == entry.sha256


def test_every_preset_resolves_and_names_are_valid():
    manifest = load_manifest()
    assert set(manifest.presets) == {"photo", "cartoon", "face"}
    assert manifest.default_preset == "photo"
    for preset in manifest.presets:
        assert manifest.preset_models(preset)
    for entry in manifest.models:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", entry.name)
    # every preset works offline out of the box: its last choice ships with the package
    for preset in manifest.presets:
        assert manifest.preset_models(preset)[-1].packaged


def test_versions_and_lookup():
    manifest = load_manifest()
    assert manifest.get("realesr-animevideov3").id == "realesr-animevideov3@1"
    assert manifest.get("REALESR-animevideov3@1").name == "realesr-animevideov3"
    with pytest.raises(UnknownModelError, match="unknown model or preset 'realesr-animevideov3@9'"):
        manifest.get("realesr-animevideov3@9")
    with pytest.raises(UnknownModelError, match="presets: cartoon, face, photo") as info:
        manifest.get("nonsense")
    assert str(info.value).endswith("(or give a path to a weights file: .pth, .pt, .ckpt or .safetensors; "
                                    "`sr-filter models` lists them)")  # it had named .pth alone


def _minimal(**changes):
    entry = {"name": "m", "version": "1", "arch": "srvgg", "settings": {}, "scale": 4, "file": "m.pth",
             "sha256": "0" * 64, "size": 1, "license": "MIT", "urls": ["https://example.org/m.pth"]}
    entry.update(changes)
    return {"manifest_version": 1, "default_preset": "photo", "presets": {"photo": {"models": ["m"]}}, "models": [entry]}


def test_parse_rejects_bad_manifests():
    assert parse_manifest(_minimal()).get("m").scale == 4
    with pytest.raises(ManifestError, match="invalid sha256"):
        parse_manifest(_minimal(sha256="abc"))
    with pytest.raises(ManifestError, match="lacks license"):
        data = _minimal()
        del data["models"][0]["license"]
        parse_manifest(data)
    with pytest.raises(ManifestError, match="neither urls nor a packaged file"):
        parse_manifest(_minimal(urls=[]))
    with pytest.raises(UnknownModelError):
        data = _minimal()
        data["presets"]["photo"]["models"] = ["missing"]
        parse_manifest(data)
    with pytest.raises(ManifestError, match="manifest_version"):
        parse_manifest({**_minimal(), "manifest_version": 2})


def test_unknown_version_or_near_name_offers_what_exists():
    manifest = load_manifest()
    with pytest.raises(UnknownModelError, match=r"sr-cartoon-x4 has no version '2'; did you mean 'sr-cartoon-x4@1'\? Presets: "):
        manifest.get("sr-cartoon-x4@2")
    with pytest.raises(UnknownModelError, match=r"did you mean 'sr-cartoon-x4'"):
        manifest.get("sr-cartoon-x5")
    with pytest.raises(UnknownModelError, match=r"'photos'; did you mean 'photo'\?"):
        manifest.preset_models("photos")
    with pytest.raises(UnknownModelError) as info:
        manifest.get("nonsense")
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("file", ["../../escaped.pth", "/tmp/abs.pth", "sub/m.pth", "..", ".hidden.pth", "a\\b.pth"])
def test_file_names_must_be_plain_names(file):
    with pytest.raises(ManifestError, match="plain file name"):
        parse_manifest(_minimal(file=file))


@pytest.mark.parametrize("packaged", ["../outside.pth", "/etc/passwd", "builtin/../../x.pth"])
def test_packaged_paths_stay_inside_the_package(packaged):
    with pytest.raises(ManifestError, match="inside the package"):
        parse_manifest(_minimal(packaged=packaged))


def test_a_manifest_path_of_another_type_or_encoding_is_one_line(tmp_path):
    from sr_filter import load_manifest
    from sr_filter.errors import ManifestError

    with pytest.raises(ManifestError, match="must be a str or Path, not int"):
        load_manifest(5)
    (tmp_path / "m.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ManifestError, match="cannot read manifest"):
        load_manifest(tmp_path / "m.json")
    for text, kind in (("[]", "list"), ("5", "int"), ('"x"', "str")):  # "[]" had been an AttributeError
        (tmp_path / "m.json").write_text(text)
        with pytest.raises(ManifestError, match=f"holds a JSON {kind}, not an object"):
            load_manifest(tmp_path / "m.json")

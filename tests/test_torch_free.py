"""Runs that never import torch: OpenVINO on the CPU straight from the conversion cache.

The first run of a model converts it (torch loads for that); every later run on the CPU with the
OpenVINO backend finds the converted model from the weights' sha256 and runs it with numpy and
OpenVINO alone. Whether torch was imported can only be seen in a fresh process (this one has
loaded it), so those checks run the real CLI or API in a subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from .conftest import BENCHMARKS, UPSTREAM, require_shared

pytest.importorskip("openvino")
#: these tests are about what the first run converts and later runs find
pytestmark = pytest.mark.cold_conversion_cache

from sr_filter import Upscaler, device  # noqa: E402
from sr_filter.backends import ov_cache  # noqa: E402
from sr_filter.weights import file_sha256  # noqa: E402

#: runs the CLI as `sr-filter ARGS` and says on the last stderr line whether torch was imported
_CLI = """
import sys, runpy
sys.argv = ["sr-filter"] + sys.argv[1:]
try:
    runpy.run_module("sr_filter", run_name="__main__")
finally:
    print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
"""


def _cli(*args: str, env: dict | None = None) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stderr


@pytest.fixture()
def small_image(tmp_path) -> Path:
    path = tmp_path / "in.png"
    Image.open(require_shared(BENCHMARKS / "Set14" / "baboon.png")).crop((100, 100, 164, 148)).save(path)
    return path


def test_second_cli_run_imports_no_torch_and_writes_the_same_file(small_image, tmp_path):
    rc, err = _cli(str(small_image), "-q", "--preset", "cartoon", "-o", str(tmp_path / "first.png"))
    assert rc == 0 and err.splitlines()[-1] == "TORCH", err  # the first run converts
    rc, err = _cli(str(small_image), "-q", "--preset", "cartoon", "-o", str(tmp_path / "second.png"))
    assert rc == 0 and err.splitlines()[-1] == "NO-TORCH", err
    assert (tmp_path / "first.png").read_bytes() == (tmp_path / "second.png").read_bytes()
    rc, err = _cli(str(small_image), "-q", "--preset", "cartoon", "--backend", "torch", "-o", str(tmp_path / "torch.png"))
    assert rc == 0 and err.splitlines()[-1] == "TORCH", err
    ours = np.asarray(Image.open(tmp_path / "second.png")).astype(int)
    assert np.abs(ours - np.asarray(Image.open(tmp_path / "torch.png")).astype(int)).max() <= 1


def test_a_local_weights_file_also_runs_without_torch_the_second_time(small_image, tmp_path):
    weights = str(require_shared(UPSTREAM / "RealESRGANv2-animevideo-xsx2.pth"))
    for run, want in ((1, "TORCH"), (2, "NO-TORCH")):
        rc, err = _cli(str(small_image), "-q", "--model", weights, "-o", str(tmp_path / f"{run}.png"))
        assert rc == 0 and err.splitlines()[-1] == want, err
    assert Image.open(tmp_path / "2.png").size == (128, 96)
    assert (tmp_path / "1.png").read_bytes() == (tmp_path / "2.png").read_bytes()


def test_settings_that_need_torch_load_it(small_image, tmp_path):
    assert _cli(str(small_image), "-q", "-o", str(tmp_path / "warm.png"))[0] == 0
    rc, err = _cli(str(small_image), "-q", "--precision", "bf16", "-o", str(tmp_path / "bf16.png"))
    assert rc == 0 and err.splitlines()[-1] == "NO-TORCH", err  # the fp32 run's conversion serves bf16 too
    # a device that is not the CPU for sure asks torch, and its error is the usual one line
    rc, err = _cli(str(small_image), "-q", "-o", str(tmp_path / "gpu.png"), env={"SR_FILTER_DEVICE": "cuda"})
    assert rc != 0 and err.splitlines()[0].startswith("sr-filter: error: SR_FILTER_DEVICE=cuda")
    assert not (tmp_path / "gpu.png").exists()


def test_the_api_uses_the_thread_count_it_is_given(tmp_path):
    code = ("import sys; from sr_filter import Upscaler; up = Upscaler('cartoon'); "
            "print(up.model.loaded, up.backend._compiled.get_property('INFERENCE_NUM_THREADS'), 'torch' in sys.modules)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert first.stdout.split() == ["True", "1", "True"], first.stderr
    assert second.stdout.split() == ["False", "1", "False"], second.stderr


# -- in this process: the deferred model and the fallbacks -------------------------------------------


def _photo() -> np.ndarray:
    return np.asarray(Image.open(require_shared(BENCHMARKS / "Set14" / "baboon.png")).crop((0, 0, 70, 50)))


def test_deferred_model_builds_its_network_when_asked():
    image = _photo()
    first = Upscaler("cartoon")
    assert first.model.loaded  # converted here
    second = Upscaler("cartoon")
    assert not second.model.loaded and second.backend.name == "openvino"
    assert second.model.facts == first.model.facts and second.model.arch_name == first.model.arch_name
    assert second.model.facts.macs_per_pixel > 0  # the work the CPU tiles are sized by, counted at conversion
    assert second.describe() == first.describe()
    assert np.array_equal(second.upscale(image), first.upscale(image))
    x = torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    assert torch.equal(second.model(x), first.model(x))  # the network loads on first use
    assert second.model.loaded and second.model.arch is first.model.arch


def _entry(cache: Path) -> Path:
    (record,) = (cache / "openvino").glob("*.json")
    return record


def _rewrite(record: Path, data: dict, sealed: bool = True) -> None:
    """Write a changed record; ``sealed``: with the digest of its fields made anew, as sr-filter
    writes it (a record of another release or format), else as a damaged or hand-edited one."""
    data.pop(ov_cache.SEAL, None)
    if sealed:
        data[ov_cache.SEAL] = ov_cache._digest(data)
    record.write_text(json.dumps(data))


@pytest.mark.parametrize("damage", ["truncated bin", "record of an older cache", "facts of another version",
                                    "record of another release", "scale changed", "context changed", "seal removed"])
def test_a_damaged_or_older_entry_is_converted_again(isolated_cache, converted_built_ins, damage):
    """Changed facts (a scale of 2 for a x4 model, a context of 0) had been used as written: a
    half-size output, or seams of up to 98 levels, on every later run."""
    image = _photo()
    (isolated_cache / "openvino").mkdir()  # the session's conversion, copied: the damage below writes into it
    for path in converted_built_ins:
        if path.name.startswith("realesr-animevideov3-"):  # the cartoon preset's model
            shutil.copy2(path, isolated_cache / "openvino" / path.name)
    first = Upscaler("cartoon", tile=32)
    assert not first.model.loaded  # the entry as a first run writes it
    expected = first.upscale(image)
    record = _entry(isolated_cache)
    data = json.loads(record.read_text())
    if damage == "truncated bin":
        blob = record.with_suffix(".bin")
        blob.write_bytes(blob.read_bytes()[:1000])
    elif damage == "record of an older cache":
        del data["model"]
        _rewrite(record, {**data, "format": 1})
    elif damage == "facts of another version":
        data["model"]["facts"]["new_field"] = 1
        _rewrite(record, data)
    elif damage == "record of another release":  # same files, same facts, written by another sr-filter release
        data["model"]["sr_filter"] = "0.0.1"
        _rewrite(record, data)
    elif damage == "scale changed":
        data["model"]["scale"] = 2
        _rewrite(record, data, sealed=False)
    elif damage == "context changed":
        data["model"]["facts"]["context"] = 0
        _rewrite(record, data, sealed=False)
    else:
        _rewrite(record, data, sealed=False)
    again = Upscaler("cartoon", tile=32)
    assert again.model.loaded  # not taken from the damaged entry
    assert np.array_equal(again.upscale(image), expected)
    assert not Upscaler("cartoon").model.loaded  # the rebuilt entry serves the next run


def test_the_record_says_what_the_tiler_needs(isolated_cache):
    up = Upscaler("cartoon")
    record = json.loads(_entry(isolated_cache).read_text())
    assert record["model"] == ov_cache.about(up.model)
    assert record["model"]["facts"]["context"] == up.model.facts.context and record["model"]["scale"] == up.scale


def test_a_local_file_is_hashed_once_and_again_when_it_changes(isolated_cache, tmp_path, monkeypatch):
    """Hashed once per process for the manifest lookup (the file is a listed model's) and the
    conversion cache's key alike; these had hashed it once each."""
    from sr_filter import weights as weights_module

    hashed = []
    monkeypatch.setattr(weights_module, "_DIGESTS", {})
    monkeypatch.setattr(weights_module, "file_sha256", lambda path: hashed.append(path) or file_sha256(path))
    weights = tmp_path / "mine.pth"
    weights.write_bytes(require_shared(UPSTREAM / "RealESRGANv2-animevideo-xsx2.pth").read_bytes())
    first = Upscaler(str(weights))  # looked up, converted, recorded: one hash
    assert first.model.loaded and len(hashed) == 1
    assert not Upscaler(str(weights)).model.loaded and len(hashed) == 1  # from the cache, same file
    other = (UPSTREAM / "RealESRGANv2-animevideo-xsx4.pth").read_bytes()
    weights.write_bytes(other)
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    changed = Upscaler(str(weights))  # other bytes under the same name: hashed anew, converted anew
    assert changed.model.loaded and changed.scale == 4 and len(hashed) == 2
    assert len(list((isolated_cache / "openvino").glob("*.json"))) == 2


# -- deciding "the CPU for sure" without torch --------------------------------------------------------


@pytest.fixture
def fresh_build_answer():
    """cpu_only reads torch's version.py once a process: forget that answer before and after."""
    device._gpu_build_on_disk.cache_clear()
    yield
    device._gpu_build_on_disk.cache_clear()


def _fake_torch(monkeypatch, tmp_path, text: str) -> None:
    folder = tmp_path / "torch"
    folder.mkdir()
    (folder / "version.py").write_text(text)
    monkeypatch.delitem(sys.modules, "torch")  # as in a process that has not imported it
    spec = types.SimpleNamespace(submodule_search_locations=[str(folder)])
    monkeypatch.setattr(device.importlib.util, "find_spec", lambda name: spec if name == "torch" else importlib.util.find_spec(name))


@pytest.mark.parametrize("text,cpu", [
    ("__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\nhip: Optional[str] = None\n", True),
    ("__version__ = '2.13.0'\ncuda: Optional[str] = '12.8'\nhip: Optional[str] = None\n", False),
    ("__version__ = '2.13.0'\ncuda = None\nhip = '6.2.4'\n", False),
    ("something else entirely\n", False),
])
def test_cpu_only_reads_the_torch_build_without_importing_it(monkeypatch, tmp_path, text, cpu, fresh_build_answer):
    monkeypatch.delenv("SR_FILTER_DEVICE", raising=False)
    monkeypatch.setattr(device.sys, "platform", "linux")
    _fake_torch(monkeypatch, tmp_path, text)
    assert device.cpu_only("auto") is cpu
    assert device.cpu_only("cpu") is True and device.cpu_only("cuda") is False
    assert "torch" not in sys.modules
    (tmp_path / "torch" / "version.py").unlink()  # read once: the answer stands for the process
    assert device.cpu_only("auto") is cpu


def test_cpu_only_follows_the_environment_variable(monkeypatch):
    monkeypatch.setenv("SR_FILTER_DEVICE", "cpu")
    assert device.cpu_only("auto")
    monkeypatch.setenv("SR_FILTER_DEVICE", "cuda:1")
    assert not device.cpu_only("auto") and device.cpu_only("cpu")


@pytest.mark.parametrize("settings,message", [
    ({"device": "cuda"}, "no CUDA GPU"),  # asks torch (this machine has none)
    ({"precision": "fp16"}, "fp16 is not supported on the CPU"),  # the CPU for sure: no torch needed to refuse it
])
def test_device_and_precision_are_refused_before_any_download(weights_server, settings, message):
    from sr_filter.errors import DeviceError

    with pytest.raises(DeviceError, match=message):
        Upscaler("realesr-general-x4v3", **settings)
    assert sum(weights_server.hits.values()) == 0


def test_videos_and_frame_streams_run_without_torch_too(tmp_path):
    from .videos import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=6, size=(32, 24))
    rc, err = _cli(str(clip), "-q", "--preset", "cartoon", "-o", str(tmp_path / "first.mp4"))
    assert rc == 0 and err.splitlines()[-1] == "TORCH", err
    rc, err = _cli(str(clip), "-q", "--preset", "cartoon", "-o", str(tmp_path / "second.mp4"))
    assert rc == 0 and err.splitlines()[-1] == "NO-TORCH", err
    import av

    with av.open(str(tmp_path / "second.mp4")) as out:
        frames = [f.to_ndarray(format="rgb24") for f in out.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (96, 128, 3)


def test_threads_without_torch_are_one_per_physical_core(monkeypatch, tmp_path):
    """As torch's default: a hyperthreaded CPU (the layout is written here, none exists on these
    machines) gets one thread per core, OMP_NUM_THREADS wins, and torch's own setting once loaded."""
    for cpu, siblings in enumerate(["0,2", "1,3", "0,2", "1,3"]):
        (tmp_path / f"cpu{cpu}" / "topology").mkdir(parents=True)
        (tmp_path / f"cpu{cpu}" / "topology" / "thread_siblings_list").write_text(siblings + "\n")
    monkeypatch.setattr(device, "_SYS_CPU", tmp_path)
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delitem(sys.modules, "torch")
    assert device.physical_cores() == 2 and device.cpu_threads() == 2
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {1, 3}, raising=False)  # one core allowed
    assert device.cpu_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert device.cpu_threads() == 3
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert device.cpu_threads() == torch.get_num_threads()

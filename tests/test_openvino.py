"""The OpenVINO CPU backend: exactness on every shipped architecture, bf16, the conversion cache, bad input.

Conversions are shared through one session cache folder (each model converts once per run);
tests about the cache itself use their own folder.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sr_filter.archs.rrdbnet import RRDBNet
from sr_filter.archs.srresnet import SRResNet
from sr_filter.archs.srvgg import SRVGGNetCompact
from sr_filter.archs.unet import UNetUpscaler
from sr_filter.errors import BackendError
from sr_filter.models import LoadedModel, load_model
from sr_filter.tiling import run_tiled
from sr_filter.weights import file_sha256

from .conftest import SHARED, UPSTREAM, _link_conversions, require_shared

ov = pytest.importorskip("openvino")
from sr_filter.backends import ov_cache  # noqa: E402
from sr_filter.backends.openvino import OpenVinoBackend, native_bf16  # noqa: E402

BUILTIN = ["sr-cartoon-x4", "realesr-animevideov3", "sr-photo-x4", "sr-face-x4"]
UPSTREAM_FILES = ["RealESRGANv2-animevideo-xsx4.pth", "RealESRGANv2-animevideo-xsx2.pth"]
#: the shipped architectures without shipped weights, as small seeded networks in real .pth files
SMALL = {
    "rrdbnet-x2": lambda: RRDBNet(3, 3, scale=2, num_feat=16, num_block=1, num_grow_ch=8),
    "srresnet": lambda: SRResNet(num_feat=16, num_block=2),
    "unet": lambda: UNetUpscaler(num_feat=16),
}


@pytest.fixture(scope="session")
def ov_folder(tmp_path_factory, converted_built_ins):
    """The session's conversion cache: the built-in models come converted (by the same code, fp32,
    once per session for every test file), the others convert here once."""
    folder = tmp_path_factory.mktemp("openvino-cache") / "openvino"
    _link_conversions(converted_built_ins, folder)
    return folder


@pytest.fixture(scope="session")
def small_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small-archs")
    paths = {}
    for name, build in SMALL.items():
        torch.manual_seed(0)
        paths[name] = folder / f"{name}.pth"
        torch.save(build().state_dict(), paths[name])
    return paths


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> LoadedModel:
    """A small seeded compact network in a real weights file: cheap to convert again and again."""
    path = tmp_path_factory.mktemp("tiny") / "tiny-srvgg.pth"
    torch.manual_seed(0)
    torch.save(SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=2, act_type="prelu").state_dict(), path)
    return load_model(str(path))


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real 56x72 crop of Set14's baboon as a (1, 3, H, W) float32 array."""
    image = Image.open(require_shared(SHARED / "data" / "benchmarks" / "Set14" / "baboon.png")).convert("RGB")
    array = np.asarray(image)[200:256, 200:272]
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None], dtype=np.float32) / 255


def _model(spec: str, small_files) -> LoadedModel:
    if spec in SMALL:
        return load_model(str(small_files[spec]))
    if spec.endswith(".pth"):
        return load_model(str(require_shared(UPSTREAM / spec)))
    return load_model(spec)


def _tiled(backend, model: LoadedModel, x: np.ndarray, tile: int = 32) -> np.ndarray:
    arch, params = model.arch, model.params
    return run_tiled(backend.run, x, model.scale, tile=tile, context=arch.context(params), band=arch.blend,
                     multiple=arch.multiple(params))


def _torch_whole(model: LoadedModel, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.network(torch.from_numpy(x)).clamp(0, 1).numpy()


@pytest.mark.parametrize("spec", BUILTIN + UPSTREAM_FILES + list(SMALL))
def test_fp32_tiled_is_within_one_level_of_torch_whole_image(spec, small_files, ov_folder, photo):
    model = _model(spec, small_files)
    backend = OpenVinoBackend.from_model(model, precision="fp32", cache_dir=ov_folder)
    assert backend.name == "openvino" and backend.precision == "fp32"
    tiled = _tiled(backend, model, photo)  # full tiles and smaller border windows through one compiled model
    whole = _torch_whole(model, photo)
    assert tiled.shape == whole.shape
    assert float(np.abs(tiled - whole).max()) <= 1 / 255, spec


def test_fp32_is_really_fp32_even_where_openvino_defaults_to_bf16(small_files, ov_folder, photo):
    """On AMX CPUs OpenVINO's default precision is bf16 (levels off); the explicit hint keeps fp32 exact."""
    model = _model("sr-cartoon-x4", small_files)
    out = OpenVinoBackend.from_model(model, precision="fp32", cache_dir=ov_folder).run(photo)
    assert float(np.abs(out - _torch_whole(model, photo)).max()) < 0.02 / 255


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bf16 (AMX / AVX512-BF16)")
def test_bf16_runs_bf16_with_a_small_error(small_files, ov_folder, photo):
    model = _model("realesr-animevideov3", small_files)
    backend = OpenVinoBackend.from_model(model, precision="bf16", cache_dir=ov_folder)
    assert backend.precision == "bf16"
    diff = np.abs(backend.run(photo) - _torch_whole(model, photo))
    assert 0 < float(diff.mean()) < 2 / 255  # not fp32 in disguise, and close
    assert float(diff.max()) < 24 / 255


def test_bf16_asked_where_openvino_runs_fp32_is_said(caplog, monkeypatch, tmp_path):
    """On a CPU without native bf16, OpenVINO runs fp32 whatever is asked: an Upscaler asked for
    bf16 had run fp32 without a word (the CLI's "using" line shows it, the API said nothing). Where
    bf16 is native it runs, and nothing is said."""
    from sr_filter.upscaler import Upscaler

    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path))
    with caplog.at_level("WARNING", logger="sr_filter"):
        up = Upscaler("sr-cartoon-x4", device="cpu", precision="bf16", backend="openvino")
    said = "bf16 was asked, but this CPU runs it in OpenVINO only with native bf16" in caplog.text
    assert up.precision == ("bf16" if native_bf16() else "fp32") and said == (not native_bf16()), caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="sr_filter"):
        Upscaler("sr-cartoon-x4", device="cpu", precision="bf16", backend="openvino")  # from the conversion cache
    assert ("bf16 was asked" in caplog.text) == (not native_bf16())


def test_threads_follow_torch_unless_given(small_files, ov_folder):
    model = _model("sr-cartoon-x4", small_files)
    default = OpenVinoBackend.from_model(model, cache_dir=ov_folder)
    assert default._compiled.get_property("INFERENCE_NUM_THREADS") == torch.get_num_threads()
    one = OpenVinoBackend.from_model(model, threads=1, cache_dir=ov_folder)
    assert one._compiled.get_property("INFERENCE_NUM_THREADS") == 1


def test_run_returns_a_fresh_tensor_each_call(small_files, ov_folder):
    """The infer request reuses its output buffer; a returned window must not change under the caller."""
    backend = OpenVinoBackend.from_model(_model("sr-cartoon-x4", small_files), cache_dir=ov_folder)
    first = backend.run(np.zeros((1, 3, 16, 16), np.float32))
    kept = first.copy()
    backend.run(np.ones((1, 3, 16, 16), np.float32))
    assert np.array_equal(first, kept)


# -- the conversion cache -------------------------------------------------------------------------


def _entry(folder):
    (record,) = folder.glob("*.json")
    return record, record.with_suffix(".xml"), record.with_suffix(".bin")


def _converts(caplog) -> int:
    return sum(r.getMessage().startswith("converting ") for r in caplog.records)


def test_cache_is_written_once_and_reused(tmp_path, caplog, photo, tiny):
    caplog.set_level(logging.INFO)
    model = tiny
    first = OpenVinoBackend.from_model(model, cache_dir=tmp_path).run(photo)
    record, xml, bin_ = _entry(tmp_path)
    meta = json.loads(record.read_text())
    assert meta["weights_sha256"] == file_sha256(model.path) and meta["openvino"] == ov.get_version()
    assert "precision" not in meta and meta["bin_size"] == bin_.stat().st_size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]  # no temporary left
    assert _converts(caplog) == 1
    second = OpenVinoBackend.from_model(model, cache_dir=tmp_path).run(photo)
    assert _converts(caplog) == 1 and np.array_equal(first, second)


def test_both_precisions_share_one_converted_entry(tmp_path, caplog, photo, tiny):
    """The IR is fp32 whichever precision runs it (only compiling takes the hint): a bf16 run
    after an fp32 one had converted again and kept a second, identical copy."""
    caplog.set_level(logging.INFO)
    fp32 = OpenVinoBackend.from_model(tiny, precision="fp32", cache_dir=tmp_path)
    bf16 = OpenVinoBackend.from_model(tiny, precision="bf16", cache_dir=tmp_path)
    assert _converts(caplog) == 1 and len(list(tmp_path.glob("*.bin"))) == 1
    # (a CPU without native bf16 runs fp32 whatever is asked: the test had failed on one)
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16" if native_bf16() else "fp32")


def test_entries_of_an_older_openvino_are_removed_others_kept(tmp_path, tiny):
    meta = ov_cache.describe(tiny, ov.get_version())
    key = ov_cache.entry_key(tiny.name, meta)
    prefix = key.rsplit("-", 1)[0]
    for stem, record in ((f"{prefix}-old", {**meta, "openvino": "2024.0.0"}),
                         (f"{prefix}-fp32-format7", {**meta, "format": 7, "precision": "fp32"}),  # one per precision
                         (f"{prefix}-bf16-format7", {**meta, "format": 7, "precision": "bf16"}),
                         (f"{prefix}-other", {**meta, "weights_sha256": "0" * 64, "openvino": "2024.0.0"})):
        for part in ("xml", "bin"):
            (tmp_path / f"{stem}.{part}").write_bytes(b"x")
        (tmp_path / f"{stem}.json").write_text(json.dumps(record))
    OpenVinoBackend.from_model(tiny, cache_dir=tmp_path)
    stems = {p.stem for p in tmp_path.iterdir()}
    assert stems == {key, f"{prefix}-other"}  # the other weights' entry (same file name) stays


def test_weights_cache_env_sets_the_default_folder(tmp_path, monkeypatch, tiny):
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path))
    OpenVinoBackend.from_model(tiny)
    assert len(list((tmp_path / "openvino").glob("*.xml"))) == 1


@pytest.fixture(scope="module")
def tiny_entry(tmp_path_factory, photo, tiny):
    """``tiny`` converted once for the module, and what it gives on ``photo``: tests that damage a
    cache entry start from a copy of it (damage writes into the files, so never a link)."""
    folder = tmp_path_factory.mktemp("tiny-entry")
    expected = OpenVinoBackend.from_model(tiny, cache_dir=folder).run(photo)
    return folder, expected


@pytest.mark.parametrize("damage", ["truncated bin", "garbage bin", "stale version", "garbage xml", "bad record",
                                    "folder for record", "folder for bin", "pipe for bin", "unreadable bin"])
def test_damaged_cache_is_detected_and_rebuilt(damage, tmp_path, caplog, photo, tiny, tiny_entry):
    import shutil

    caplog.set_level(logging.INFO)
    model = tiny
    source, expected = tiny_entry
    for part in _entry(source):
        shutil.copy2(part, tmp_path / part.name)
    record, xml, bin_ = _entry(tmp_path)
    meta = json.loads(record.read_text())
    if damage == "truncated bin":
        bin_.write_bytes(bin_.read_bytes()[: bin_.stat().st_size // 2])
    elif damage == "garbage bin":  # same size, other bytes: only the hash can tell
        bin_.write_bytes(bytes(reversed(bin_.read_bytes())))
    elif damage == "stale version":
        record.write_text(json.dumps({**meta, "openvino": "2020.1.0"}))
    elif damage == "garbage xml":  # a consistent record around a model OpenVINO cannot read
        xml.write_bytes(b"<net>not a model")
        record.write_text(json.dumps({**meta, "xml_size": 16, "xml_sha256": __import__("hashlib").sha256(b"<net>not a model").hexdigest()}))
    elif damage == "folder for record":  # a folder where an entry's file goes: converted again on every run, said nowhere
        record.unlink()
        record.mkdir()
    elif damage == "folder for bin":
        bin_.unlink()
        bin_.mkdir()
    elif damage == "pipe for bin":  # reading it had waited for ever
        bin_.unlink()
        os.mkfifo(bin_)
    elif damage == "unreadable bin":  # mode 000: a replacement had kept it, unreadable again (root reads it anyway)
        bin_.write_bytes(b"x")
        bin_.chmod(0)
    else:
        record.write_text("{not json")
    again = OpenVinoBackend.from_model(model, cache_dir=tmp_path).run(photo)
    assert _converts(caplog) == 1  # (the entry damaged was converted in tiny_entry)
    assert float(np.abs(again - expected).max()) == 0  # the right picture, from a rebuilt model
    assert ov_cache.load(tmp_path, record.stem, ov_cache.describe(model, ov.get_version()))  # whole again
    assert all(p.is_file() and p.stat().st_mode & 0o444 == 0o444 for p in (record, xml, bin_))


def test_a_broken_openvino_install_falls_back_to_torch(tmp_path):
    """An openvino package whose libraries fail to load (OSError, RuntimeError) failed the default
    run ("error: bad ELF"); the torch path runs instead, and --backend openvino says what to do."""
    import subprocess

    from .conftest import ROOT

    fake = tmp_path / "fake" / "openvino"  # a real package that fails to import, first on the path
    fake.mkdir(parents=True)
    Image.new("RGB", (12, 10), (90, 120, 30)).save(tmp_path / "in.png")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path / 'fake'}{os.pathsep}{ROOT}")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "sr_filter", str(tmp_path / "in.png"), "-m", "sr-cartoon-x4", *args],
                              capture_output=True, env=env, timeout=300)

    # one run per error kind: both go through the same catches (ImportError, OSError, RuntimeError:
    # cli.startup.load_libraries and backends.openvino.import_openvino, the only import of openvino)
    (fake / "__init__.py").write_text("raise OSError('bad ELF')\n")
    done = run("-o", str(tmp_path / "out.png"), "--overwrite")
    assert done.returncode == 0 and b"with torch" in done.stderr, done.stderr
    (fake / "__init__.py").write_text("raise RuntimeError('Check failed: cpu')\n")
    asked = run("-o", str(tmp_path / "o2.png"), "--backend", "openvino")
    assert asked.returncode == 2 and b"needs the openvino package" in asked.stderr, asked.stderr


def test_unwritable_cache_folder_runs_without_caching(tmp_path, caplog, photo, tiny):
    """The cache folder cannot be created (a file is in the way; chmod does not stop root, which runs CI)."""
    caplog.set_level(logging.INFO)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    model = tiny
    out = OpenVinoBackend.from_model(model, cache_dir=blocker / "openvino").run(photo)
    assert float(np.abs(out - _torch_whole(model, photo)).max()) <= 1 / 255
    said = [r for r in caplog.records if "are not cached" in r.getMessage()]  # said at WARNING: had been -v only
    assert len(said) == 1 and said[0].levelno == logging.WARNING and "(Not a directory); each run converts" in said[0].getMessage()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


def test_a_full_disk_is_named_as_one_when_openvino_cannot_write(tmp_path):
    """OpenVINO words a failed write "basic_ios::clear: iostream error"; the notice gives the
    system's reason, found by a small write of its own (a file in the folder's place here, as a
    full disk cannot be made without privileges)."""
    from sr_filter.backends.ov_cache import _why_unwritable

    assert _why_unwritable(tmp_path, RuntimeError("basic_ios::clear: iostream error")) == "basic_ios::clear: iostream error"
    (tmp_path / "file").write_text("x")
    assert _why_unwritable(tmp_path / "file", RuntimeError("basic_ios::clear: iostream error")) == "Not a directory"
    assert _why_unwritable(tmp_path, OSError(28, "No space left on device")) == "No space left on device"
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # the probe is gone


def test_model_whose_weights_file_is_gone_runs_uncached(tmp_path, tiny, photo):
    gone = LoadedModel(tiny.network, tiny.arch, tiny.params, tiny.scale, tiny.name, tmp_path / "deleted.pth")
    out = OpenVinoBackend.from_model(gone, cache_dir=tmp_path / "c").run(photo)
    assert float(np.abs(out - _torch_whole(tiny, photo)).max()) <= 1 / 255
    assert not (tmp_path / "c").exists()


# -- what cannot run ------------------------------------------------------------------------------


class _Unsupported(torch.nn.Module):
    """An operation OpenVINO has no conversion rule for."""

    def forward(self, x):
        return torch.special.bessel_j0(x)


class _ShapeBranch(torch.nn.Module):
    """Python control flow on the input size: tracing bakes in one branch, so the converted model
    computes something else at other sizes (the probe must catch it)."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.up(x if x.shape[-1] == 64 else 1 - x)


def _fake(network: torch.nn.Module, tmp_path) -> LoadedModel:
    real = load_model("sr-cartoon-x4")  # for its architecture record
    path = tmp_path / "odd.pth"
    path.write_bytes(b"weights of a network OpenVINO cannot run")
    return LoadedModel(network.eval(), real.arch, {"upscale": 2}, 2, "odd", path)


def test_unconvertible_model_is_one_clear_line(tmp_path):
    with pytest.raises(BackendError) as info:
        OpenVinoBackend.from_model(_fake(_Unsupported(), tmp_path), cache_dir=tmp_path / "c")
    message = str(info.value)
    assert "\n" not in message and "odd" in message and "bessel_j0" in message
    assert not list(tmp_path.glob("c/*.xml"))


def test_conversion_that_computes_something_else_is_refused(tmp_path):
    with pytest.raises(BackendError, match="differs from the torch network"):
        OpenVinoBackend.from_model(_fake(_ShapeBranch(), tmp_path), cache_dir=tmp_path / "c")
    assert [p.suffix for p in (tmp_path / "c").iterdir()] == [".failed"]  # nothing wrong was cached, the failure was
    with pytest.raises(BackendError, match="differs from the torch network.*found by an earlier run"):
        OpenVinoBackend.from_model(_fake(_ShapeBranch(), tmp_path), cache_dir=tmp_path / "c")  # not converted again


def test_a_failure_that_may_be_the_moment_is_tried_again_before_it_is_remembered(tmp_path, monkeypatch, tiny):
    """A first conversion under a tight memory limit failed in OpenVINO's compiler; that was
    recorded as "does not convert" and every later run, with memory to spare, used torch (and
    --backend openvino refused). Now such a failure must happen in two runs to be remembered,
    and its message says what OpenVINO said after its "Exception from ...cpp:117:" line."""
    from sr_filter.backends import openvino as ov_backend

    core = ov_backend._core(__import__("openvino"))
    real = type(core).compile_model
    calls = []

    def short_of_memory(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:117:\n[ CPU ] std::bad_alloc while compiling\n")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(core), "compile_model", short_of_memory)
    with pytest.raises(BackendError, match=r"does not run: \[ CPU \] std::bad_alloc while compiling$") as info:
        OpenVinoBackend.from_model(tiny, cache_dir=tmp_path)
    assert ov_cache.failure(tmp_path, next(tmp_path.glob("*.failed")).stem) is None  # counted, not yet remembered
    assert info.value.remembered is False  # so "auto" does not say "later runs skip the conversion"
    backend = OpenVinoBackend.from_model(tiny, cache_dir=tmp_path)  # converts again: works
    assert backend.name == "openvino"
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".bin", ".json", ".xml"]  # the count went with the success


def test_openvino_telemetry_stays_off(tmp_path, tiny):
    """OpenVINO's converter sends usage telemetry to an analytics service unless told otherwise;
    sr-filter works offline and says so, so its process loads only OpenVINO's stub."""
    import subprocess

    from .conftest import ROOT

    script = ("import sys; from sr_filter.models import load_model; from sr_filter.backends.openvino import OpenVinoBackend; "
              f"OpenVinoBackend.from_model(load_model({str(tiny.path)!r}), cache_dir={str(tmp_path)!r}); "
              "print(sorted(p.suffix for p in __import__('pathlib').Path(" + repr(str(tmp_path)) + ").iterdir())); "
              "print(sys.modules.get('openvino_telemetry'))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines() == ["['.bin', '.json', '.xml']", "None"]  # converted, without telemetry


def test_the_command_lines_early_load_keeps_telemetry_off():
    """The CLI loads OpenVINO before the backend does: that import had already started the
    telemetry, one forked process per run, which printed tracebacks when Ctrl-C reached it."""
    import subprocess

    from .conftest import ROOT

    script = ("import sys; from sr_filter.cli.startup import load_libraries; load_libraries(openvino=True, torch=False); "
              "import openvino; print(sys.modules.get('openvino_telemetry'))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.strip() == "None", done.stderr[-2000:]


def test_sigterm_during_a_conversion_stops_the_run_and_records_no_failure(tmp_path, monkeypatch, tiny):
    """A SIGTERM raised inside the converter (Python code called from C++) came back as a failed
    conversion: the run went on with torch, exited 0, and the model was recorded as one that cannot
    be converted, so every later run used torch. Now the signal waits for the block's end."""
    import os
    import signal
    import time

    from sr_filter.backends import openvino as ov_backend
    from sr_filter.errors import BackendError
    from sr_filter.interrupts import Terminated

    real = ov_backend.convert

    def signalled(model, ov):  # the signal arrives mid-conversion, inside the C++ converter
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        except BaseException:  # noqa: BLE001 - as the converter does: any Python error is its own failure
            raise BackendError(f"{model.name} cannot be converted to OpenVINO: Check 'false' failed") from None
        return real(model, ov)

    def terminated(signum, frame):  # the CLI's handler
        raise Terminated(signum)

    monkeypatch.setattr(ov_backend, "convert", signalled)
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        with pytest.raises(Terminated):
            ov_backend.OpenVinoBackend.from_model(tiny, cache_dir=tmp_path)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".failed")]


def test_missing_openvino_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` fail as if not installed
    with pytest.raises(BackendError, match="pip install openvino") as info:
        OpenVinoBackend.from_model(load_model("sr-cartoon-x4"))
    assert "\n" not in str(info.value)


def test_a_failing_window_is_one_line_not_a_traceback(tiny, ov_folder):
    backend = OpenVinoBackend.from_model(tiny, cache_dir=ov_folder)
    from sr_filter.errors import ModelRunError  # at run time: exit 1, not the usage error a BackendError is

    with pytest.raises(ModelRunError, match=r"failed on a \(1, 2, 8, 8\) window") as info:
        backend.run(np.random.default_rng(0).random((1, 2, 8, 8), dtype=np.float32))  # two channels for a three-channel network
    assert "\n" not in str(info.value)


def test_fp16_is_refused_with_the_choices():
    with pytest.raises(BackendError, match="fp32 or bf16"):
        OpenVinoBackend.from_model(load_model("sr-cartoon-x4"), precision="fp16")


def test_a_failure_record_interrupted_before_its_rename_leaves_no_stray_file(tmp_path, monkeypatch):
    from sr_filter.backends import ov_cache

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ov_cache, "publish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ov_cache.remember_failure(tmp_path, "model-fp32-abc", "cannot be converted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("message", ["[CPU] Reorder node with name '__module.conv_first/aten::_convolution/Convolution' "
                                     "can't alloc", "std::bad_alloc", "Cannot allocate memory"])
def test_openvino_out_of_memory_words_make_the_tiler_split(message):
    """OpenVINO's failures when memory is short, as it words them (the first seen under `prlimit --as`
    on a 1024x768 picture): each is an out-of-memory error to the tiler, which halves the tiles,
    not a failed run. Real memory exhaustion is too machine-dependent for a test, hence the stand-in."""
    from sr_filter.backends.openvino import _infer
    from sr_filter.device import is_oom

    class ShortOfMemory:
        def infer(self, *args, **kwargs):
            raise RuntimeError(f"Exception from src/inference/src/cpp/infer_request.cpp:223:\n{message}\n")

    with pytest.raises(RuntimeError) as info:
        _infer(ShortOfMemory(), np.zeros((1, 3, 152, 152), np.float32))
    assert is_oom(info.value) and "152x152 window" in str(info.value)


def test_a_child_forked_while_another_thread_runs_a_window_runs(tmp_path):
    """A process forked while another thread of its parent was inside OpenVINO's CPU plugin
    inherited the plugin's locks held and hung on its first window (a fork-started process pool
    beside a running Upscaler). A fork now waits for the window; each child upscales at once."""
    import subprocess

    from .conftest import ROOT

    script = """
import os, signal, threading, numpy as np
from PIL import Image
from sr_filter import Upscaler
up = Upscaler("realesr-animevideov3", backend="openvino", device="cpu", tile=64)
assert up.backend.name == "openvino"
image = np.asarray(Image.open(%r).convert("RGB"))[:160, :160]
stop = threading.Event()
def busy():
    while not stop.is_set():
        up.upscale_array(image)
worker = threading.Thread(target=busy)
worker.start()
codes = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        signal.alarm(120)  # a hung child dies instead of hanging the test
        up.upscale_array(image[:40, :40])
        os._exit(0)
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
stop.set()
worker.join()
print(codes)
""" % str(require_shared(SHARED / "data" / "benchmarks" / "Set14" / "baboon.png"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[0, 0, 0]"

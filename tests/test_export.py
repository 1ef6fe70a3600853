"""ONNX export: the file onnxruntime runs computes what the torch network does, on every shipped model."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from sr_filter.archs.rrdbnet import RRDBNet
from sr_filter.errors import ExportError, OutputExistsError
from sr_filter.export import INPUT, OUTPUT, export_onnx
from sr_filter.models import LoadedModel, load_model

from .conftest import SHARED, UPSTREAM, require_shared
from .test_cli import run as run_process

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A real 40x52 crop of Set14's baboon as a (1, 3, H, W) float tensor."""
    image = Image.open(require_shared(SHARED / "data" / "benchmarks" / "Set14" / "baboon.png")).convert("RGB")
    return torch.from_numpy(np.asarray(image)[100:140, 300:352].copy()).permute(2, 0, 1)[None].float() / 255


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check_runs_like_torch(model: LoadedModel, path, x: torch.Tensor) -> None:
    session = _session(path)
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == (INPUT, OUTPUT) and inp.type == out.type == "tensor(float)"
    assert inp.shape[1] == 3 and all(isinstance(d, str) for d in (inp.shape[0], inp.shape[2], inp.shape[3]))  # dynamic
    with torch.inference_mode():
        want = model.network(x).clamp(0, 1)
    got = session.run(None, {INPUT: x.numpy()})[0]
    assert got.shape == tuple(want.shape)
    assert np.abs(got - want.numpy()).max() <= 1 / 255
    assert got.min() >= 0 and got.max() <= 1  # clamped in the graph, as documented


@pytest.mark.parametrize("spec", ["sr-cartoon-x4", "realesr-animevideov3", "sr-photo-x4", "sr-face-x4", "RealESRGANv2-animevideo-xsx2.pth"])
def test_shipped_models_export_and_match_torch_in_onnxruntime(spec, tmp_path, photo):
    model = load_model(str(require_shared(UPSTREAM / spec)) if spec.endswith(".pth") else spec)
    path = export_onnx(model, tmp_path / "m.onnx")
    _check_runs_like_torch(model, path, photo)
    _check_runs_like_torch(model, path, torch.cat([photo[..., :24, :32], photo[..., 16:, 20:]]))  # other size, batch 2


def test_pixel_unshuffle_model_exports(tmp_path):
    torch.manual_seed(0)
    torch.save({"params_ema": RRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4).state_dict()}, tmp_path / "x2.pth")
    model = load_model(str(tmp_path / "x2.pth"))
    _check_runs_like_torch(model, export_onnx(model, tmp_path / "x2.onnx"), torch.rand(1, 3, 24, 30))


def test_cli_export_writes_atomically_and_refuses_to_overwrite(tmp_path, cli):
    target = tmp_path / "cartoon.onnx"
    done = cli("export", "sr-cartoon-x4", "-o", target)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()  # an ordinary file, not a private temporary
    _check_runs_like_torch(load_model("sr-cartoon-x4"), target, torch.rand(1, 3, 20, 28))
    before = target.read_bytes()
    again = cli("export", "cartoon", "-o", target)
    assert again.returncode == 1 and b"--overwrite" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert target.read_bytes() == before
    assert b"colour fix" not in done.stderr  # a model by name: the network is all there is
    # (the file was checked in onnxruntime above: these two leave the check out, a minute on CI)
    loud = cli("export", "cartoon", "-o", target, "--overwrite", "--no-check")  # the preset adds a colour fix the graph lacks
    assert loud.returncode == 0 and b"preset also runs the colour fix after the network" in loud.stderr, loud.stderr
    quiet = cli("export", "cartoon", "-o", target, "--overwrite", "-q", "--no-check")
    assert quiet.returncode == 0 and quiet.stderr == b""  # -q: errors only (the "wrote" line had come)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoon.onnx"]  # no temporary left


def test_cli_errors_are_one_line(tmp_path, cli):
    for args, message in (
        (["no-such-model", "-o", tmp_path / "a.onnx"], "no-such-model"),
        (["no-such-model", "-o", tmp_path / "missing" / "a.onnx"], "no-such-model"),
    ):
        done = cli("export", *args)
        err = done.stderr.decode()
        assert done.returncode != 0 and message in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "missing").exists()  # made for the output, removed with none written
    made = cli("export", "sr-cartoon-x4", "-o", tmp_path / "new" / "folder" / "a.onnx", "--no-check")
    assert made.returncode == 0 and (tmp_path / "new" / "folder" / "a.onnx").is_file(), made.stderr  # as pictures' folders are


def test_library_refuses_existing_output_without_naming_a_flag(tmp_path):
    (tmp_path / "a.onnx").write_bytes(b"keep")
    with pytest.raises(OutputExistsError) as info:
        export_onnx(load_model("sr-cartoon-x4"), tmp_path / "a.onnx")
    assert "--" not in str(info.value) and (tmp_path / "a.onnx").read_bytes() == b"keep"


class _Unsupported(torch.nn.Module):
    def forward(self, x):
        return torch.special.bessel_j0(x)


class _ShapeBranch(torch.nn.Module):
    """Python control flow on the input size: the exported trace computes something else at other sizes."""

    def forward(self, x):
        return torch.nn.functional.interpolate(x if x.shape[-1] == 16 else 1 - x, scale_factor=2)


@pytest.mark.parametrize("network,message", [(_Unsupported(), "cannot be exported"), (_ShapeBranch(), "differs from the torch network")])
def test_bad_exports_are_refused_and_leave_nothing(network, message, tmp_path):
    real = load_model("sr-cartoon-x4")
    model = LoadedModel(network, real.arch, {"upscale": 2}, 2, "odd", tmp_path / "odd.pth")
    with pytest.raises(ExportError, match=message) as info:
        export_onnx(model, tmp_path / "odd.onnx")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    if "differs" in message:  # what happened to the file, and how to have it anyway (the CLI says --no-check)
        from sr_filter.cli.messages import one_line

        assert str(info.value).endswith("; nothing was written (check=False writes it unchecked)")
        flags = frozenset({"-o", "--output", "--overwrite", "--no-check", "--offline"})
        assert one_line(info.value, flags=flags).endswith("; nothing was written (--no-check writes it unchecked)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_file_says_its_scale_and_size_needs(tmp_path, cli):
    """metadata_props carry what a runtime must know; an unsupported network is one line, with no
    exporter graph dump on standard output."""
    onnx = pytest.importorskip("onnx")
    from .community_nets import save_random

    path = tmp_path / "cartoon.onnx"
    export_onnx(load_model("sr-cartoon-x4"), path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["scale"] == "4" and meta["size_multiple"] == "1" and meta["size_minimum"] == "0"
    swinir = save_random("SwinIR", tmp_path)
    done = cli("export", swinir, "-o", tmp_path / "swinir.onnx")
    assert done.returncode == 0, done.stderr
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "swinir.onnx")).metadata_props}
    assert meta["size_multiple"] == "8" and int(meta["size_minimum"]) >= 8 and b"at least" in done.stderr
    from sr_filter.export import size_minimum
    from sr_filter.models import load_file

    scunet = load_file(save_random("SCUNet", tmp_path))  # at least 40 px, multiples of 64: 40 does not run
    assert (scunet.facts.minimum, scunet.facts.multiple, size_minimum(scunet)) == (40, 64, 64)
    # in a process of its own: the exporter's graph dump had come on standard output
    refused = run_process("export", save_random("SAFMN", tmp_path), "-o", tmp_path / "safmn.onnx")
    assert refused.returncode == 1 and refused.stdout == b"" and refused.stderr.count(b"\n") == 1, refused.stderr[:300]
    assert b"cannot be exported to ONNX" in refused.stderr and b"Please feel free" not in refused.stderr
    assert not (tmp_path / "safmn.onnx").exists()


def test_dat_is_refused_with_one_line_even_without_the_check(tmp_path, cli):
    """Its traced graph runs at no size in onnxruntime: the check had said so in onnxruntime's
    words, and --no-check had written the useless file and exited 0."""
    from .community_nets import save_random

    dat = save_random("DAT", tmp_path)
    for extra in ((), ("--no-check",)):
        refused = cli("export", dat, "-o", tmp_path / "dat.onnx", *extra)
        assert refused.returncode == 1 and refused.stderr.count(b"\n") == 1, refused.stderr[:300]
        assert b"cannot be exported to ONNX: the exporter fixes its attention windows" in refused.stderr
        assert b"DAT (DAT)" not in refused.stderr  # the file's name and its architecture, said once where they are one word
        assert not (tmp_path / "dat.onnx").exists()


def test_cli_refuses_outputs_it_cannot_write_as_an_onnx_file_before_loading(tmp_path, cli):
    """Standard output, another suffix, a pipe (even with --overwrite), a dangling link, a file
    where a folder should be: each one line naming only export's own flags; nothing written."""
    os.mkfifo(tmp_path / "pipe.onnx")
    (tmp_path / "dangling.onnx").symlink_to(tmp_path / "gone.onnx")
    (tmp_path / "plain").write_bytes(b"keep")
    (tmp_path / "sub").mkdir()
    for args, message in (
        (["-o", "-"], "not standard output"),
        (["-o", tmp_path / "b.txt"], "b.txt does not end in .onnx"),
        (["-o", tmp_path / "pipe.onnx", "--overwrite"], "is a device or pipe"),
        (["-o", tmp_path / "dangling.onnx"], "a link to the missing"),
        (["-o", tmp_path / "plain" / "x.onnx"], "plain is a file, not a folder"),
        (["-o", ".onnx"], ".onnx is only a suffix; name the ONNX file to write, e.g. model.onnx"),
        (["-o", "outdir/"], "outdir names a folder; name the ONNX file to write in it, e.g. outdir/model.onnx"),  # was outdir.onnx
        (["-o", "sub"], "'sub' is a directory"),  # an existing folder: click's own check of -o, before ours
    ):
        done = cli("export", "sr-cartoon-x4", *args, cwd=tmp_path)
        err = done.stderr.decode()
        assert done.returncode != 0 and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1 and "--skip-existing" not in err, err
    assert (tmp_path / "dangling.onnx").is_symlink() and not (tmp_path / "gone.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.onnx", "pipe.onnx", "plain", "sub"]
    exists = cli("export", "sr-cartoon-x4", "-o", tmp_path / "plain.onnx", cwd=tmp_path)
    assert exists.returncode == 0
    again = cli("export", "sr-cartoon-x4", "-o", tmp_path / "plain.onnx", cwd=tmp_path).stderr.decode()
    assert again.strip().endswith("exists; use --overwrite to replace it"), again


def test_the_output_sizes_are_named_as_the_scaled_input_sizes(tmp_path):
    import onnx

    path = export_onnx(load_model("sr-cartoon-x4"), tmp_path / "c.onnx", check=False)
    graph = onnx.load(str(path)).graph
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*graph.input, *graph.output)}
    assert dims[INPUT] == ["batch", 3, "height", "width"]
    assert dims[OUTPUT] == ["batch", 3, "height_x4", "width_x4"]


def test_without_onnx_the_install_line_is_said_and_without_onnxruntime_a_warning(tmp_path, monkeypatch, caplog):
    """Both packages are in the test extra; a plain install lacks them (they cannot be uninstalled
    here for one test, so their import is blocked)."""
    import importlib.util
    import logging
    import sys

    model = load_model("sr-cartoon-x4")
    real = importlib.util.find_spec
    with monkeypatch.context() as m:
        m.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
        with pytest.raises(ExportError, match=r"pip install '\.\[export\]' in the sr-filter folder"):
            export_onnx(model, tmp_path / "a.onnx")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    with caplog.at_level(logging.WARNING, logger="sr_filter"):
        export_onnx(model, tmp_path / "b.onnx")
    assert (tmp_path / "b.onnx").is_file() and "onnxruntime is not installed" in caplog.text


def test_a_preset_whose_weights_cannot_be_had_is_refused_not_exported_as_its_fallback(tmp_path, cli):
    """Offline with an empty cache, `export photo` had written the built-in sr-photo-x4 (a warning
    and exit 0): an export writes the model asked for, or says in one line why it cannot."""
    target = tmp_path / "photo.onnx"
    for extra in ([], ["--offline"]):  # the mirror (a closed local port) refuses, or downloads are off
        done = cli("export", "photo", "-o", target, *extra)
        message = done.stderr.decode()
        assert done.returncode == 1 and len(message.strip().splitlines()) == 1, message
        assert "realesr-general-x4v3" in message and "SR_FILTER_WEIGHTS_URL" in message and "sr-photo-x4" in message
        assert not target.exists() and list(tmp_path.iterdir()) == []
    named = cli("export", "sr-photo-x4", "-o", target, "--offline", "--no-check")  # the built-in one, asked for by name
    assert named.returncode == 0 and b"(sr-photo-x4, x4" in named.stderr, named.stderr

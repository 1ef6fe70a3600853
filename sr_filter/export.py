"""Exporting a model to ONNX, so other runtimes (chaiNNer, onnxruntime, ncnn converters) can use it.

The exported graph has one input ``input`` and one output ``output``, both NCHW float32 RGB with
values in [0, 1] (the output is clamped inside the graph); batch, height and width are dynamic
(height and width must be multiples of the model's size multiple, 1 for most models), and the
output is ``scale`` times the input's height and width. Height and width must also be at least
the model's minimum size (0 for most; community models such as SwinIR or Real-CUGAN pad smaller
inputs in their own Python code, which the graph does not keep). The file's metadata
(``metadata_props``) says ``scale``, ``size_multiple``, ``size_minimum``, ``layout`` and
``range``. The file is written to a temporary name in the output folder, checked with onnxruntime
against the torch network when onnxruntime is installed, and only then renamed into place.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .atomic import new_folders, prepare_target, replacing
from .errors import ExportError, first_line
from .facts import trace_edge

if TYPE_CHECKING:
    from .models import LoadedModel

log = logging.getLogger(__name__)

OPSET = 17
#: the exported graph must match torch this closely on the check probe
TOLERANCE = 1 / 255
INPUT, OUTPUT = "input", "output"


def check_output(output: str | Path, *, overwrite: bool = False) -> None:
    """Before any work: ``output`` must be a .onnx file name that can be written (an existing file
    only with ``overwrite``; a device or pipe never: the file is checked before it takes its name)."""
    folder = os.fspath(output).endswith(("/", os.sep)) or Path(output).is_dir()
    output = Path(output)
    if importlib.util.find_spec("onnx") is None:  # torch's exporter writes through it
        raise ExportError("writing ONNX needs the onnx package; install it with "
                          "pip install '.[export]' in the sr-filter folder (onnx, and onnxruntime for the check)")
    if folder:  # "outdir/": Path drops the slash, and "outdir.onnx" had been suggested
        raise ExportError(f"{output} names a folder; name the ONNX file to write in it, e.g. {output / 'model.onnx'}")
    if output.name.lower() == ".onnx":  # a suffix alone: Path(".onnx").suffix is empty
        raise ExportError(f"{output} is only a suffix; name the ONNX file to write, e.g. {output.with_name('model.onnx')}")
    if output.suffix.lower() != ".onnx":
        raise ExportError(f"{output} does not end in .onnx; name the ONNX file to write, e.g. {output.stem or 'model'}.onnx")
    if prepare_target(output, overwrite=overwrite):  # missing folders are made, as for pictures (unused: removed)
        raise ExportError(f"{output} is a device or pipe; the ONNX file is written to a file of its own")


#: architectures whose traced graph does not run: DAT's attention split keeps the traced size, so
#: onnxruntime fails on the file at every size (a LayerNormalization over 0 elements; found with
#: spandrel 0.4.2 and torch 2.13's TorchScript exporter)
NOT_EXPORTED = {"DAT": "the exporter fixes its attention windows to the size it traced, so the file runs at no size "
                       "(sr-filter itself runs it with torch)"}


@new_folders()  # folders made for a file that is never written are removed
def export_onnx(model: LoadedModel, output: str | Path, *, overwrite: bool = False, check: bool = True) -> Path:
    """Write ``model`` as an ONNX file at ``output`` (layout in the module docstring); returns the path.

    ``check`` compares onnxruntime's output with torch's on a probe (skipped, with a notice, when
    onnxruntime is not installed); a difference over 1/255 raises :class:`ExportError`.
    """
    output = Path(output)
    check_output(output, overwrite=overwrite)
    reason = NOT_EXPORTED.get(model.arch_name)
    if reason:  # refused with --no-check too: the file would not run
        raise ExportError(f"{model.label} cannot be exported to ONNX: {reason}")
    c_in = int(model.params.get("num_in_ch", 3))
    multiple = int(model.arch.multiple(model.params))
    minimum = size_minimum(model)
    try:
        with replacing(output, overwrite=overwrite) as tmp:  # checked before it takes its name
            _export(model, c_in, multiple, tmp)
            _add_metadata(tmp, {"scale": str(model.scale), "size_multiple": str(multiple), "size_minimum": str(minimum),
                                "layout": f"NCHW float32, {c_in} channels in and out", "range": "0..1 (output clamped)",
                                "source": model.name})
            if check:
                verify(model, tmp, size=(max(40, minimum), max(56, minimum)))
    except OSError as exc:
        raise ExportError(f"cannot write {output}: {exc.strerror or first_line(exc)}") from None
    return output


def size_minimum(model: LoadedModel) -> int:
    """The smallest side the exported file takes: the network's minimum rounded up to its size
    multiple (SCUNet: at least 40 px, multiples of 64, so 64; 40 px does not run); 0 for none."""
    multiple = int(model.facts.multiple)
    return -(-int(model.facts.minimum) // multiple) * multiple if model.facts.minimum else 0


def _add_metadata(path: Path, items: dict[str, str]) -> None:
    """Append ``metadata_props`` entries to an ONNX file. Protobuf messages may hold their fields
    in any order and repeated fields accumulate, so appending ModelProto field 14 is valid and
    needs no onnx package."""

    def field(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    with open(path, "ab") as f:
        for key, value in items.items():
            f.write(field(14, field(1, key.encode()) + field(2, value.encode())))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@contextlib.contextmanager
def _native_output_held() -> Iterator[None]:
    """Hold back what native code prints while exporting (the exporter's graph dump on standard
    output, onnxruntime's warnings on standard error): the one-line error says what failed."""
    saved: list[tuple[int, int]] = []
    with tempfile.TemporaryFile() as held:
        _flush()
        try:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                    os.dup2(held.fileno(), fd)
                except OSError:  # no such stream: nothing to hold back
                    pass
            yield
        finally:
            _flush()  # what Python printed meanwhile (the exporter prints its graph) goes to the held file
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


@contextlib.contextmanager
def _exporter_log_on_stderr() -> Iterator[None]:
    """The TorchScript exporter logs its graph (on failure too) through C++'s buffered standard
    output, which is flushed only when the process ends, after the output is no longer held back;
    its unbuffered standard error is written at once, into the held file."""
    import torch

    set_stream = getattr(torch._C, "_jit_set_onnx_log_output_stream", None)
    if set_stream is not None:
        set_stream("stderr")
    try:
        yield
    finally:
        if set_stream is not None:
            set_stream("stdout")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _reason(exc: BaseException) -> str:
    """The exporter's complaint without its appeal for pull requests and its graph excerpt."""
    text = first_line(exc)
    for cut in (" Please feel free", " [Caused by"):
        text = text.split(cut)[0]
    return text.rstrip(". ")


def _clamped(network):
    """The network with its output clamped to [0, 1], as every sr_filter backend returns it."""
    from torch import nn

    class Clamped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, x):
            return self.network(x).clamp(0, 1)

    return Clamped()


def _export(model: LoadedModel, c_in: int, multiple: int, path: Path) -> None:
    import torch

    size = trace_edge(model.network, multiple, int(model.facts.minimum), 16 * multiple)
    example = torch.rand(1, c_in, size, size)
    axes = {0: "batch", 2: "height", 3: "width"}
    scaled = {0: "batch", 2: f"height_x{model.scale}", 3: f"width_x{model.scale}"}  # not the input's own sizes
    try:
        with warnings.catch_warnings(), torch.no_grad(), _native_output_held(), _exporter_log_on_stderr():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                _clamped(model.network).eval(), (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                dynamic_axes={INPUT: axes, OUTPUT: scaled if model.scale != 1 else axes}, opset_version=OPSET, dynamo=False,
            )
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exporter failure means this model cannot be exported
        raise ExportError(f"{model.label} cannot be exported to ONNX: {_reason(exc)}") from None


def verify(model: LoadedModel, path: str | Path, size: tuple[int, int] = (40, 56)) -> float:
    """Run the ONNX file with onnxruntime and torch on a seeded probe; the max difference in [0, 1] units.

    Raises :class:`ExportError` above 1/255; returns -1.0 when onnxruntime is not installed.
    """
    try:
        import onnxruntime
    except ImportError:
        log.warning("onnxruntime is not installed, so the exported file was not checked against torch "
                    "(pip install onnxruntime)")
        return -1.0
    import torch

    m = int(model.arch.multiple(model.params))
    h, w = (-(-edge // m) * m for edge in size)
    probe = torch.rand(1, int(model.params.get("num_in_ch", 3)), h, w, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = model.network(probe).clamp(0, 1)
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about the graph, not the user's doing
        with _native_output_held():
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            got = torch.from_numpy(session.run([OUTPUT], {INPUT: probe.numpy()})[0])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own unrelated exception types
        raise ExportError(f"the exported {model.name} does not run in onnxruntime: {_reason(exc)}") from None
    if got.shape != want.shape:
        raise ExportError(f"the exported {model.name} gives shape {tuple(got.shape)}, not {tuple(want.shape)}")
    diff = float((got - want).abs().max())
    if not diff <= TOLERANCE:
        raise ExportError(f"the exported {model.name} differs from the torch network by {diff * 255:.2f}/255; nothing "
                          "was written (check=False writes it unchecked)")
    return diff

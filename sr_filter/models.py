"""Turning a model spec (preset, manifest name, or file path) into a loaded network."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .archs import Arch, get_arch
from .errors import DownloadError, UnknownModelError, WeightsFormatError
from .manifest import Manifest, ModelEntry, load_manifest
from .weights import fetch, load_state_dict

log = logging.getLogger(__name__)
_WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")


@dataclass
class LoadedModel:
    """A network in fp32 on the CPU, with what is known about it."""

    network: nn.Module
    arch: Arch
    params: dict
    scale: int
    name: str
    path: Path
    entry: ModelEntry | None = None

    @property
    def license(self) -> str:
        return self.entry.license if self.entry else "unknown (local file)"


def is_path_spec(spec: str) -> bool:
    """Whether ``spec`` names a file rather than a preset or manifest name."""
    return spec.lower().endswith(_WEIGHT_SUFFIXES) or "/" in spec or "\\" in spec or Path(spec).is_file()


def candidates(spec: str, manifest: Manifest) -> list[ModelEntry]:
    """Manifest entries for a preset (in preference order) or for one model name."""
    if spec.lower() in manifest.presets:
        return manifest.preset_models(spec)
    return [manifest.get(spec)]


def load_model(spec: str | None = None, *, offline: bool | None = None, manifest: Manifest | None = None) -> LoadedModel:
    """Load a preset, ``name[@version]`` or weights file, downloading verified weights if needed.

    A preset's models are tried in order: the first one that is packaged, cached or can be
    downloaded runs. When the preferred model cannot be had (offline, no network, server error),
    the next one (in the end a built-in model) runs and a warning names it and says why.
    """
    manifest = manifest or load_manifest()
    spec = (spec or manifest.default_preset).strip()
    if not spec:
        raise UnknownModelError("empty model name")
    if is_path_spec(spec) and spec.lower() not in manifest.presets:
        return load_file(Path(spec).expanduser())
    entries = candidates(spec, manifest)
    first_error: DownloadError | None = None
    for entry in entries:
        try:
            path = fetch(entry, offline=offline)
        except DownloadError as exc:
            first_error = first_error or exc
            continue
        if first_error is not None:
            log.warning("using %s instead of %s, which could not be fetched: %s", entry.id, entries[0].id, first_error)
        return load_entry(entry, path)
    assert first_error is not None
    raise first_error


def load_entry(entry: ModelEntry, path: Path) -> LoadedModel:
    """Build the manifest's architecture and load the verified file into it (strictly)."""
    arch = get_arch(entry.arch)
    params = dict(entry.settings)
    network = arch.build(params)
    state = load_state_dict(path, entry.state_key)
    _load_strict(network, state, path)
    scale = arch.scale(params)
    return LoadedModel(network.eval(), arch, params, scale, entry.name, path, entry)


def load_file(path: Path) -> LoadedModel:
    """Load a local weights file, recognising its architecture from the tensor shapes."""
    if not path.is_file():
        raise WeightsFormatError(f"weights file {path} does not exist")
    from .community import detect_own, load_community, read_state  # other architectures: spandrel

    state = read_state(path)
    own = detect_own(state, path.name)
    if own is None:
        return load_community(state, path)
    arch, params = own
    network = arch.build(params)
    _load_strict(network, state, path)
    return LoadedModel(network.eval(), arch, params, arch.scale(params), path.stem, path)


def mismatch_detail(exc: RuntimeError) -> str:
    """The line of torch's ``load_state_dict`` error that says what differs (first missing key,
    unexpected key or shape), for one-line messages."""
    detail = str(exc).strip().splitlines()
    return detail[1].strip() if len(detail) > 1 else detail[0]


def _load_strict(network: nn.Module, state: dict, path: Path) -> None:
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsFormatError(f"{path.name} does not fit its architecture: {mismatch_detail(exc)}") from None
    for p in network.parameters():
        p.requires_grad_(False)

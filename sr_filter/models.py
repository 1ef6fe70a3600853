"""Turning a model spec (preset, manifest name, or file path) into a loaded network.

Resolving a spec to its verified weights file (:func:`resolve`) needs no torch; building the
network does. A :class:`LoadedModel` can be *deferred*: its facts are known (from a converted
model's cache record) and its network is built only if something asks for it, so a run that
never needs the torch network never imports torch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import DownloadError, DownloadSettingError, NetworkUnavailableError, OfflineError, UnknownModelError, WeightsFormatError, mismatch_detail
from .facts import Facts
from .manifest import Manifest, ModelEntry, load_manifest
from .weights import existing_file, fetch

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .archs import Arch

log = logging.getLogger(__name__)
_WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")


@dataclass(frozen=True)
class ModelRef:
    """A model spec resolved to its weights: a manifest entry and its verified file, or a local file."""

    name: str
    path: Path
    entry: ModelEntry | None = None


class LoadedModel:
    """A network in fp32 on the CPU, with what is known about it (see :meth:`deferred`)."""

    def __init__(self, network: nn.Module, arch: Arch, params: dict, scale: int, name: str, path: Path,
                 entry: ModelEntry | None = None) -> None:
        self._network: nn.Module | None = network
        self._arch: Arch | None = arch
        self._facts: Facts | None = None
        self._load: Callable[[], LoadedModel] | None = None
        self.arch_name: str = arch.name
        self.params, self.scale, self.name, self.path, self.entry = params, scale, name, path, entry

    @classmethod
    def deferred(cls, ref: ModelRef, *, arch_name: str, params: dict, scale: int, facts: Facts,
                 load: Callable[[], LoadedModel]) -> LoadedModel:
        """A model known by its facts whose network ``load`` builds on first use (torch then loads)."""
        model = cls.__new__(cls)
        model._network = model._arch = None
        model._facts, model._load = facts, load
        model.arch_name, model.params, model.scale = arch_name, params, scale
        model.name, model.path, model.entry = ref.name, ref.path, ref.entry
        return model

    @property
    def loaded(self) -> bool:
        """Whether the torch network exists (a deferred model's is built on first use)."""
        return self._network is not None

    @property
    def network(self) -> nn.Module:
        self._fill()
        assert self._network is not None
        return self._network

    @property
    def arch(self) -> Arch:
        self._fill()
        assert self._arch is not None
        return self._arch

    def _fill(self) -> None:
        if self._network is None and self._load is not None:
            full = self._load()
            self._network, self._arch, self._load = full.network, full.arch, None

    @property
    def label(self) -> str:
        """The model's name with its architecture, once where they are the same word ("DAT", not "DAT (DAT)")."""
        return self.name if self.name.lower() == self.arch_name.lower() else f"{self.name} ({self.arch_name})"

    @property
    def license(self) -> str:
        """The weights' licence: the manifest entry's, also for a local file that is byte for byte
        a manifest model (official weights downloaded by hand), else unknown."""
        if self.entry:
            return self.entry.license
        from .weights import same_file_in_manifest

        known = same_file_in_manifest(self.path)
        return f"{known.license} (the file is {known.name}@{known.version})" if known else "unknown (local file)"

    @property
    def facts(self) -> Facts:
        """Scale, channels, receptive field, blend, size multiple, half support, memory and work per pixel."""
        if self._facts is None:
            from .archs.base import count_work

            facts = self.arch.facts(self.params)
            per_pixel, per_value = count_work(self.network, facts)
            self._facts = replace(facts, macs_per_pixel=per_pixel, macs_per_value=per_value)
        return self._facts

    def pad(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, C, H, W) padded at the bottom and right to the size multiple (as upstream:
        mirrored without repeating the edge, or the edge repeated where the image is too small)."""
        m = self.facts.multiple
        height, width = x.shape[-2:]
        return pad_bottom_right(x, -height % m, -width % m, zeros=self.facts.pad == "zeros")

    def pad_to_minimum(self, x: np.ndarray) -> np.ndarray | None:
        """``x`` (N, C, H, W) padded to the network's minimum size (and its multiple) in one step, as
        spandrel pads it, where a side is below that minimum; None where none is. Padded first to
        the multiple and then to the minimum, the mirror had reflected the first padding: a 7x20
        picture came out up to 122/255 off spandrel's own call."""
        height, width = x.shape[-2:]
        if not self.below_minimum(height, width):
            return None
        m, low = self.facts.multiple, self.least_side
        return pad_bottom_right(x, max(-height % m, low - height), max(-width % m, low - width),
                                zeros=self.facts.pad == "zeros")

    def below_minimum(self, height: int, width: int) -> bool:
        """Whether a picture of that size has a side below the network's minimum (and multiple)."""
        return min(height, width) < self.least_side

    @property
    def least_side(self) -> int:
        """The smallest side a window may have: the network's minimum rounded up to its multiple (0: any)."""
        m, minimum = self.facts.multiple, self.facts.minimum
        return -(-minimum // m) * m if minimum else 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The forward contract every backend keeps: (N, C, H, W) float in [0, 1] -> (N, C,
        H*scale, W*scale) clamped to [0, 1], padded to the size multiple and cropped back, without
        autograd. Runs the CPU fp32 network whole; the Upscaler tiles and places it instead."""
        import torch

        height, width = x.shape[-2:]
        padded = torch.from_numpy(self.pad(x.detach().to("cpu", torch.float32).numpy()))
        with torch.inference_mode():
            out = self.network(padded).clamp_(0, 1)
        s = self.scale
        return out[:, :, : height * s, : width * s]


def pad_bottom_right(x: np.ndarray, bottom: int, right: int, *, zeros: bool = False) -> np.ndarray:
    """(N, C, H, W) ``x`` padded by ``bottom`` rows and ``right`` columns as upstream (spandrel)
    pads: mirrored without repeating the edge as far as each side allows, then the edge repeated
    for the rest; with zeros for a network whose own code pads so."""
    if not bottom and not right:
        return x
    if zeros:
        return np.pad(x, ((0, 0), (0, 0), (0, bottom), (0, right)))
    mirrored = min(bottom, x.shape[-2] - 1), min(right, x.shape[-1] - 1)
    x = np.pad(x, ((0, 0), (0, 0), (0, mirrored[0]), (0, mirrored[1])), mode="reflect")
    if (bottom, right) == mirrored:
        return x
    return np.pad(x, ((0, 0), (0, 0), (0, bottom - mirrored[0]), (0, right - mirrored[1])), mode="edge")


def refuse_folder(spec: str, manifest: Manifest) -> None:
    """An :class:`UnknownModelError` for a name that is no model or preset but a folder here ("more"),
    rather than the list of every name."""
    if not is_known_name(spec, manifest) and Path(os.path.expanduser(spec)).is_dir():
        raise UnknownModelError(f"{spec} is a folder here, and no model or preset has that name; give a weights file "
                                "inside it, or a name from `sr-filter models`")


def is_path_spec(spec: str) -> bool:
    """Whether ``spec`` names a file rather than a preset or manifest name."""
    return spec.lower().endswith(_WEIGHT_SUFFIXES) or "/" in spec or "\\" in spec or Path(spec).is_file()


def is_known_name(spec: str, manifest: Manifest) -> bool:
    """Whether ``spec`` is a preset or a manifest name: those win over a file or folder of the same
    bare name in the working folder (``./photo`` names the file)."""
    if spec.lower() in manifest.presets:
        return True
    try:
        manifest.get(spec)
    except UnknownModelError:
        return False
    return True


def candidates(spec: str, manifest: Manifest) -> list[ModelEntry]:
    """Manifest entries for a preset (in preference order) or for one model name."""
    if spec.lower() in manifest.presets:
        return manifest.preset_models(spec)
    return [manifest.get(spec)]


def expected_scale(spec: str | None, manifest: Manifest | None = None) -> int | None:
    """The scale a preset or model name runs at, known before its weights are fetched: the one all
    its candidates share (a fallback runs at it too); None for a weights file, an unknown name, or
    a preset whose models differ."""
    manifest = manifest or load_manifest()
    spec = (manifest.default_preset if spec is None else spec).strip()
    if not spec or not is_known_name(spec, manifest):
        return None
    scales = {entry.scale for entry in candidates(spec, manifest)}
    return scales.pop() if len(scales) == 1 else None


def load_model(spec: str | None = None, *, offline: bool | None = None, manifest: Manifest | None = None,
               fallback: bool = True) -> LoadedModel:
    """Load a preset, ``name[@version]`` or weights file, downloading verified weights if needed
    (:func:`resolve`, then :func:`load_ref`)."""
    return load_ref(resolve(spec, offline=offline, manifest=manifest, fallback=fallback))


def load_ref(ref: ModelRef) -> LoadedModel:
    """Build the network of a resolved model and load its weights (torch loads here)."""
    if ref.entry is not None:
        return load_entry(ref.entry, ref.path)
    return load_file(ref.path)


def file_label(path: Path) -> str:
    """The name a weights file goes by in messages and exports: its stem, or for the files of a
    training run (``RUN/model.pth``, ``RUN/latest.pt``, ``RUN/iter_N.pt`` beside ``config.json``)
    the run's name, since every run's file is called model.pth."""
    stem = path.stem
    if (stem == "model" or stem == "latest" or stem.startswith("iter_")) and (path.parent / "config.json").is_file():
        return path.parent.name if stem == "model" else f"{path.parent.name}-{stem}"
    return stem


def preset_colour_fix(spec: str | None, manifest: Manifest | None = None) -> bool:
    """Whether the preset ``spec`` names (None: the default preset) turns the colour fix on
    (``sr_filter.colourfix``); False for model names and weights files."""
    manifest = manifest or load_manifest()
    preset = manifest.presets.get((manifest.default_preset if spec is None else str(spec)).strip().lower())
    return bool(preset and preset.colour_fix)


def resolve(spec: str | None = None, *, offline: bool | None = None, manifest: Manifest | None = None,
            fallback: bool = True) -> ModelRef:
    """A preset, ``name[@version]`` or weights file as its verified weights file, downloading if
    needed; no torch.

    A preset's models are tried in order: the first one that is packaged, cached or can be
    downloaded runs. When the preferred model cannot be had (offline, no network, server error),
    the next one (in the end a built-in model) runs and a warning names it and says why.
    ``fallback=False`` (an export, which must write the model asked for) takes the preset's
    preferred model or raises the reason it cannot be had.
    """
    manifest = manifest or load_manifest()
    spec = (manifest.default_preset if spec is None else spec).strip()
    if not spec:
        raise UnknownModelError("the model name is empty; give a preset, a model name or a weights file (None: the default)")
    if is_path_spec(spec) and not is_known_name(spec, manifest):
        path = existing_file(Path(os.path.expanduser(spec)))
        return ModelRef(file_label(path), path)
    refuse_folder(spec, manifest)
    entries = candidates(spec, manifest)
    is_preset = spec.lower() in manifest.presets
    if not fallback and len(entries) > 1:  # the preferred model, tried as if named (no fallback to hurry to)
        try:
            return ModelRef(entries[0].name, fetch(entries[0], offline=offline), entries[0])
        except DownloadSettingError:
            raise
        except DownloadError as exc:
            raise type(exc)(_no_fallback_message(spec.lower(), entries, exc)) from None
    first_error: DownloadError | None = None
    for entry in entries:
        try:
            path = fetch(entry, offline=offline, retry_unreachable=not is_preset)
        except DownloadSettingError:
            raise  # a mistyped variable is the user's to fix, not a reason to run a smaller model
        except DownloadError as exc:
            first_error = first_error or exc
            continue
        if first_error is not None:
            log.warning("%s", _fallback_message(entry, entries[0], first_error))
        return ModelRef(entry.name, path, entry)
    assert first_error is not None
    raise first_error


def _no_fallback_message(preset: str, entries: list[ModelEntry], why: DownloadError) -> str:
    """Why a preset's own model cannot be had where no other may stand in for it (an export)."""
    stand_in = entries[-1].name
    return (f"the {preset} preset's model {entries[0].name} cannot be had, and {stand_in}, which the preset runs "
            f"without it, is another model, taken only when named: {str(why).rstrip('. ')}")


def _fallback_message(used: ModelEntry, wanted: ModelEntry, why: DownloadError) -> str:
    """The one warning line that says which model runs instead of the preferred one, and why."""
    kind = "the built-in model" if used.packaged else "the cached model"
    if isinstance(why, NetworkUnavailableError):
        return f"no network: using {kind} {used.name} instead of {wanted.name} ({why.reason or why})"
    if isinstance(why, OfflineError):  # chosen by the user: said in one short line, as for no network
        return f"offline: using {kind} {used.name} instead of {wanted.name} ({getattr(why, 'reason', None) or 'not downloaded yet'})"
    return f"using {used.id} instead of {wanted.id}, which could not be fetched: {why}"


def load_entry(entry: ModelEntry, path: Path) -> LoadedModel:
    """Build the manifest's architecture and load the verified file into it (strictly)."""
    from .archs import get_arch
    from .weights import load_state_dict

    arch = get_arch(entry.arch)
    params = dict(entry.settings)
    network = arch.build(params)
    state = load_state_dict(path, entry.state_key)
    _load_strict(network, state, path)
    scale = arch.scale(params)
    return LoadedModel(network.eval(), arch, params, scale, entry.name, path, entry)


def load_file(path: Path) -> LoadedModel:
    """Load a local weights file, recognising its architecture from the tensor shapes."""
    existing_file(path)
    from .community import check_channels, detect_own, load_community, read_state, recorded_settings  # other architectures: spandrel

    state, record = read_state(path, with_record=True)
    own = detect_own(state, path.name)
    if own is None:
        network, arch, params, scale = load_community(state, path)
        return LoadedModel(network, arch, params, scale, file_label(path), path)
    arch, params = own
    params = recorded_settings(arch, params, record)
    check_channels(arch, params, path)
    network = arch.build(params)
    _load_strict(network, state, path)
    return LoadedModel(network.eval(), arch, params, arch.scale(params), file_label(path), path)


def _load_strict(network: nn.Module, state: dict[str, Any], path: Path) -> None:
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsFormatError(f"{path.name} does not fit its architecture: {mismatch_detail(exc)}") from None
    for p in network.parameters():
        p.requires_grad_(False)



"""The weights manifest: which model files exist, where to get them, and which preset uses which.

``weights_manifest.json`` is data, parsed once into frozen :class:`ModelEntry` objects.
A model is named ``name`` (newest version) or ``name@version``; a preset names an ordered list
of models, the first usable one wins (see :mod:`sr_filter.models`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from .errors import ManifestError, UnknownModelError

MANIFEST_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = ("name", "version", "arch", "settings", "scale", "file", "sha256", "size", "license")
#: the end of the unknown-name message, where a weights file may be given instead (`models --download` takes none)
PATH_ADVICE = " (or give a path to a weights file: .pth, .pt, .ckpt or .safetensors; `sr-filter models` lists them)"


@dataclass(frozen=True)
class ModelEntry:
    """One model file: identity, network settings, where it comes from and its checksum."""

    name: str
    version: str
    arch: str
    settings: Mapping[str, Any]
    scale: int
    file: str
    sha256: str
    size: int
    license: str
    urls: tuple[str, ...] = ()
    #: path inside the package for weights that ship with sr_filter (no download)
    packaged: str | None = None
    description: str = ""
    source: str = ""
    #: key of the state dict inside the checkpoint ("params", "params_ema", ...); None = top level
    state_key: str | None = None
    num_params: int | None = None
    presets: tuple[str, ...] = field(default=())
    #: the weak-denoise twin whose weights ``--denoise`` interpolates with (sr_filter.denoise)
    denoise_pair: str | None = None

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Preset:
    """A user-facing name mapped to an ordered list of model names (first usable wins)."""

    name: str
    models: tuple[str, ...]
    description: str = ""
    #: the colour fix (sr_filter.colourfix) is on unless the user turns it off: for models that
    #: shift flat colours, chosen for the kind of picture
    colour_fix: bool = False


@dataclass(frozen=True)
class Manifest:
    models: tuple[ModelEntry, ...]
    presets: Mapping[str, Preset]
    default_preset: str

    def versions(self, name: str) -> list[ModelEntry]:
        """All entries of one model name, newest first."""
        found = [m for m in self.models if m.name.lower() == name.lower()]
        return sorted(found, key=lambda m: _version_key(m.version), reverse=True)

    def get(self, spec: str) -> ModelEntry:
        """Resolve ``name`` or ``name@version`` to an entry."""
        name, _, version = spec.partition("@")
        entries = self.versions(name)
        if version:
            entries = [m for m in entries if m.version == version]
        if not entries:
            raise UnknownModelError(self._unknown_message(spec))
        return entries[0]

    def preset_models(self, preset: str) -> list[ModelEntry]:
        """The entries a preset may use, in order of preference."""
        try:
            p = self.presets[preset.lower()]
        except KeyError:
            raise UnknownModelError(self._unknown_message(preset)) from None
        return [self.get(m) for m in p.models]

    def _unknown_message(self, spec: str) -> str:
        names = sorted({m.name for m in self.models})
        asked = self._suggestion(spec)  # a question ends its sentence ("?; presets" had followed it)
        return (
            f"unknown model or preset {spec!r}{asked}{' Presets' if asked else '; presets'}: "
            f"{', '.join(sorted(self.presets))}; models: {', '.join(names)}{PATH_ADVICE}"
        )

    def _suggestion(self, spec: str) -> str:
        """ "; did you mean ..." for a version that does not exist or a name close to a known one."""
        name, _, version = spec.partition("@")
        known = self.versions(name)
        if known and version:
            offered = " or ".join(repr(f"{m.name}@{m.version}") for m in known)
            return f": {known[0].name} has no version {version!r}; did you mean {offered}?"
        choices = {m.name.lower(): m.name for m in self.models} | {p: p for p in self.presets}
        close = difflib.get_close_matches(name.lower(), list(choices), n=3, cutoff=0.6)
        return f"; did you mean {' or '.join(repr(choices[c]) for c in close)}?" if close else ""


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-]", version))


def _parse_entry(raw: Mapping[str, Any], presets: Mapping[str, Preset]) -> ModelEntry:
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ManifestError(f"manifest entry {raw.get('name', '?')!r} lacks {', '.join(missing)}")
    name = str(raw["name"])
    if not _NAME_RE.match(name) or "@" in name:
        raise ManifestError(f"manifest entry has an invalid name {name!r}")
    file = str(raw["file"])
    if not _NAME_RE.match(file) or ".." in file:
        raise ManifestError(f"manifest entry {name!r} has file {file!r}; it must be a plain file name (no folders)")
    packaged = raw.get("packaged")
    if packaged is not None and (not isinstance(packaged, str) or any(p in ("", ".", "..") for p in packaged.split("/"))
                                 or packaged.startswith("/") or "\\" in packaged):
        raise ManifestError(f"manifest entry {name!r} has packaged path {packaged!r}; it must be a path inside the package")
    sha = str(raw["sha256"]).lower()
    if not _SHA_RE.match(sha):
        raise ManifestError(f"manifest entry {name!r} has an invalid sha256 {sha!r}")
    urls = tuple(raw.get("urls", ()))
    if not urls and not packaged:
        raise ManifestError(f"manifest entry {name!r} has neither urls nor a packaged file")
    return ModelEntry(
        name=name,
        version=str(raw["version"]),
        arch=str(raw["arch"]),
        settings=dict(raw["settings"]),
        scale=int(raw["scale"]),
        file=file,
        sha256=sha,
        size=int(raw["size"]),
        license=str(raw["license"]),
        urls=urls,
        packaged=packaged,
        description=str(raw.get("description", "")),
        source=str(raw.get("source", "")),
        state_key=raw.get("state_key"),
        num_params=raw.get("num_params"),
        presets=tuple(p.name for p in presets.values() if name in p.models),
        denoise_pair=raw.get("denoise_pair"),
    )


def parse_manifest(data: Mapping[str, Any]) -> Manifest:
    """Validate the manifest's JSON structure and build the frozen objects."""
    if data.get("manifest_version") != MANIFEST_VERSION:
        raise ManifestError(
            f"manifest_version {data.get('manifest_version')!r} is not supported (expected {MANIFEST_VERSION})"
        )
    presets = {
        key.lower(): Preset(key.lower(), tuple(p["models"]), str(p.get("description", "")), p.get("colour_fix") is True)
        for key, p in data.get("presets", {}).items()
    }
    models = tuple(_parse_entry(raw, presets) for raw in data.get("models", []))
    ids = [m.id.lower() for m in models]
    if len(set(ids)) != len(ids):
        raise ManifestError("manifest lists a model version twice")
    files = [m.file for m in models]
    if len(set(files)) != len(files):
        raise ManifestError("two manifest entries share one file name")
    manifest = Manifest(models, presets, str(data.get("default_preset", "photo")))
    for preset in presets.values():
        for spec in preset.models:
            manifest.get(spec)  # raises if a preset names an unknown model
    if manifest.default_preset not in presets:
        raise ManifestError(f"default preset {manifest.default_preset!r} is not defined")
    return manifest


def load_manifest(path: str | Path | None = None) -> Manifest:
    """The packaged manifest, or one from ``path``."""
    if path is None:
        return _packaged_manifest()
    if not isinstance(path, (str, os.PathLike)):
        raise ManifestError(f"the manifest path must be a str or Path, not {type(path).__name__}")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(data, dict):  # "[]" had been an AttributeError
        raise ManifestError(f"manifest {path} holds a JSON {type(data).__name__}, not an object with \"models\"")
    return parse_manifest(data)


@lru_cache(maxsize=1)
def _packaged_manifest() -> Manifest:
    text = resources.files(__package__).joinpath("weights_manifest.json").read_text(encoding="utf-8")
    return parse_manifest(json.loads(text))

"""Denoise strength: interpolating a model's weights with its weak-denoise twin, as Real-ESRGAN's
``-dn`` does for ``realesr-general-x4v3`` (network interpolation, "DNI").

Real-ESRGAN (inference_realesrgan.py) loads ``[x4v3, wdn-x4v3]`` with
``dni_weight = [S, 1 - S]`` and sets every tensor to ``S * x4v3 + (1 - S) * wdn``: S = 1 is the
full model (strong denoising), S = 0 the weak-denoise twin that keeps grain and noise. The
manifest names the twin in the model's ``denoise_pair`` field; models without one refuse.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
from typing import Mapping

import numpy as np
import torch

from .errors import CacheError, ChecksumError, DenoiseError, DownloadError, DownloadSettingError, OfflineError, first_line
from .manifest import Manifest, ModelEntry, load_manifest
from .archs import get_arch
from .models import LoadedModel, _load_strict, candidates, is_path_spec
from .weights import cached_path, fetch, load_state_dict, mirror_url


def interpolate(strong: Mapping[str, torch.Tensor], weak: Mapping[str, torch.Tensor], strength: float) -> dict[str, torch.Tensor]:
    """``strength * strong + (1 - strength) * weak`` tensor by tensor (same keys and shapes)."""
    check_strength(strength)
    if strong.keys() != weak.keys():
        raise DenoiseError("the two denoise models have different tensors; they cannot be interpolated")
    out = {}
    for key, a in strong.items():
        b = weak[key]
        if a.shape != b.shape:
            raise DenoiseError(f"the two denoise models differ in {key} ({tuple(a.shape)} vs {tuple(b.shape)})")
        out[key] = strength * a + (1 - strength) * b if a.is_floating_point() else a.clone()
    return out


def check_strength(strength: float) -> float:
    """A denoise strength in [0, 1] (0: keep noise, 1: the model's full denoising)."""
    if isinstance(strength, (bool, np.bool_)):  # False had been strength 0 (the twin's pixels), True 1
        raise DenoiseError(f"denoise is a strength from 0 to 1 (None: the model as published), not {strength}")
    # numpy's numbers too: np.float32(0.5) had been "must be between 0 and 1, not np.float32(0.5)"
    if not (isinstance(strength, numbers.Real) and math.isfinite(strength) and 0 <= strength <= 1):
        raise DenoiseError(f"denoise strength must be between 0 and 1, not {strength!r}")
    return float(strength)


def pair_of(spec: str, manifest: Manifest) -> tuple[ModelEntry, ModelEntry]:
    """The entry a preset or model name resolves to and its weak-denoise twin, or a refusal."""
    if is_path_spec(spec) and spec.lower() not in manifest.presets:
        raise DenoiseError(f"a denoise strength needs a model with a denoise pair; {spec} is a local file")
    with_pair = [e for e in candidates(spec, manifest) if e.denoise_pair]
    if not with_pair:
        names = ", ".join(sorted(e.name for e in manifest.models if e.denoise_pair)) or "none"
        raise DenoiseError(f"{spec} has no denoise strength setting (models that have one: {names})")
    entry = with_pair[0]
    twin = manifest.get(entry.denoise_pair or "")
    if twin.arch != entry.arch or dict(twin.settings) != dict(entry.settings):
        raise DenoiseError(f"{entry.name} and its denoise pair {twin.name} are different networks")
    return entry, twin


def load_denoised(spec: str, strength: float, *, offline: bool | None = None, manifest: Manifest | None = None) -> LoadedModel:
    """``spec`` (e.g. ``realesr-general-x4v3`` or the ``photo`` preset) with its weights
    interpolated towards its weak-denoise twin at ``strength``; both files verified as usual."""
    strength = check_strength(strength)
    manifest = manifest or load_manifest()
    entry, twin = pair_of(spec.strip(), manifest)
    try:
        path, twin_path = fetch(entry, offline=offline), fetch(twin, offline=offline)
    except DownloadError as exc:  # a preset would fall back to a built-in model; no built-in model has a pair
        missing = [e.file for e in (entry, twin) if not cached_path(e).is_file()]
        where = cached_path(entry).parent
        if len(missing) == 2:  # (it had named both twice: "needs both A and B in F (A and B are not there)")
            needed = f"{entry.file} and {twin.file}, which are not in {where}"
        else:
            needed = f"both {entry.file} and {twin.file} in {where}" + (f" ({missing[0]} is not there)" if missing else "")
        # the reason first and short: the download's own advice had pushed the way out past the
        # message's cut ("... or choose a built-in model (see `sr-filter ... (see --denoise)")
        said = first_line(exc).split(". ")[0].split("; ")[0]
        if isinstance(exc, OfflineError):
            why, fix = "downloads are off (SR_FILTER_OFFLINE=1 or offline mode)", "allow downloads (or name a mirror with SR_FILTER_WEIGHTS_URL)"
        elif isinstance(exc, (DownloadSettingError, ChecksumError, CacheError)):  # not the network: its own words
            why, fix = f"the download could not be made ({said})", "mend that"
        elif mirror_url():  # a mirror named already: it is what failed ("name a mirror" had been the advice)
            why, fix = f"the download failed ({said})", f"check that the mirror {mirror_url()} has them"
        else:
            why, fix = f"the download failed ({said})", "check the network (or name a mirror with SR_FILTER_WEIGHTS_URL)"
        raise DenoiseError(f"a denoise strength needs {needed}, and {why}: {fix}, put the files there, or leave out "
                           "the denoise strength (then a built-in model works offline; none has a denoise pair)") from exc
    strong = load_state_dict(path, entry.state_key)
    weak = load_state_dict(twin_path, twin.state_key)
    arch = get_arch(entry.arch)
    params = dict(entry.settings)
    network = arch.build(params)
    _load_strict(network, interpolate(strong, weak, strength), path)
    name = f"{entry.name}-dn{strength:g}"
    # the interpolated weights are other weights: their own name and digest, so that a converted
    # copy (the OpenVINO cache finds records by digest) is never taken for the plain model's
    digest = hashlib.sha256(f"{entry.sha256}:{twin.sha256}:{strength!r}".encode()).hexdigest()
    mixed = dataclasses.replace(entry, name=name, sha256=digest)
    return LoadedModel(network.eval(), arch, params, arch.scale(params), name, path, mixed)

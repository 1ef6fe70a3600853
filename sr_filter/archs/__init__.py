"""Network architectures and the registry that builds them from manifest settings or state dicts.

Each architecture module holds its network class and, beside it, its descriptor ``ARCH`` (an
:class:`~sr_filter.archs.base.Arch`: settings, detection, receptive field, blend band, size
multiple, half support, memory per pixel). ``ARCHS`` maps the manifest's ``arch`` id to it.
Detection asks every descriptor; each detector is exact, so the order of registration does not
matter and a state dict that two of them claim is an error, not a guess.
"""

from __future__ import annotations

from typing import Iterable

from ..errors import WeightsFormatError
from . import edsr, rrdbnet, srresnet, srvgg, unet
from .base import Arch, Facts, StateDict

ARCHS: dict[str, Arch] = {}


def register(arch: Arch) -> Arch:
    """Add an architecture; a second one with the same name is a programming error."""
    if arch.name in ARCHS:
        raise ValueError(f"architecture {arch.name!r} registered twice")
    ARCHS[arch.name] = arch
    return arch


for _module in (srvgg, rrdbnet, edsr, srresnet, unet):
    register(_module.ARCH)


def get_arch(name: str) -> Arch:
    """The architecture registered under ``name``."""
    try:
        return ARCHS[name]
    except KeyError:
        known = ", ".join(sorted(ARCHS))
        raise WeightsFormatError(f"unknown architecture {name!r} (known: {known})") from None


def detect_arch(state_dict: StateDict, archs: Iterable[Arch] | None = None) -> tuple[Arch, dict]:
    """Recognise a state dict's architecture and read its settings from the tensor shapes."""
    pool = list(ARCHS.values() if archs is None else archs)
    found = [arch for arch in pool if arch.detect(state_dict)]
    if not found:
        raise WeightsFormatError(
            "not a known super-resolution architecture (supported: " + ", ".join(sorted(a.name for a in pool)) + ")"
        )
    if len(found) > 1:
        names = " and ".join(sorted(a.name for a in found))
        raise WeightsFormatError(f"ambiguous weights: they fit both {names}; name the architecture in a manifest entry")
    arch = found[0]
    try:
        return arch, arch.infer_params(state_dict)
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as exc:
        raise WeightsFormatError(f"looks like {arch.name} but its tensors do not fit: {exc}") from None


__all__ = ["ARCHS", "Arch", "Facts", "StateDict", "detect_arch", "get_arch", "register"]

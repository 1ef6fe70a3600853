"""Community model files: any architecture spandrel supports, loaded without running pickled code.

Our own networks (:mod:`sr_filter.archs`) stay the first choice; a file they do not recognise
comes here. Its tensors are read safely (``torch.load(weights_only=True)`` or safetensors), then
spandrel recognises the architecture from them and builds the network. What spandrel's descriptor
says (scale, channels, size requirements, fp16/bf16 support) becomes an :class:`~sr_filter.archs.Arch`
so the Upscaler tiles and places the network like one of ours.

spandrel imports torchvision for two architectures that are not super-resolution (LaMa
inpainting, RestoreFormer faces). When torchvision is missing, or installed for another torch
build (it then fails on import), those two names are satisfied by placeholders during spandrel's
import only, so every other architecture works without it; the two are refused.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .archs import Arch, StateDict
from .errors import CommunityModelError, WeightsFormatError, first_line, mismatch_detail
from .facts import probe_edge
from .weights import canonicalize, file_kind, load_state_dict

log = logging.getLogger(__name__)

#: LR pixels of context for tiled == whole image within 1/255, per spandrel architecture id,
#: measured by crop-and-compare on randomly initialised networks (benchmarks/bench_context.py,
#: docs/models/README.md "Community model files"); trained weights may reach further, so
#: each value carries a margin and tiles also blend over ``_BLEND`` px
CONTEXT: dict[str, int] = {
    "Compact": 40, "SPAN": 24, "ESRGAN": 40, "OmniSR": 48, "RealCUGAN": 64, "SwinIR": 48,
    "HAT": 48, "DAT": 48, "RCAN": 64, "SAFMN": 48, "PLKSR": 48,
    # 1x restoration networks: DnCNN's 17 convolutions see 17 px; the U-Nets reach further
    "DnCNN": 24, "DRUNet": 64, "SCUNet": 64,
}
DEFAULT_CONTEXT = 64
_BLEND = 8
#: architectures that mix the whole image (OmniSR's grid attention; the channel attention of
#: HAT, DAT, RCAN, Real-CUGAN and NAFNet, which averages each feature over the whole picture;
#: FBCNN's quality estimate): tiles cannot equal the whole image at any context (OmniSR: 7-9/255
#: on a random network, RCAN up to 17/255 with strong attention); whole-image inference is exact
GLOBAL = {"OmniSR", "NAFNet", "FBCNN", "HAT", "DAT", "RCAN", "RealCUGAN"}
#: networks that pad the picture to their windows with zeros themselves (OmniSR): padded so here
#: too, the network's own padding finds nothing left to do and the picture is upstream's
ZERO_PADDED = {"OmniSR"}
#: networks that pad inside their attention, not the picture (DAT): the picture goes in at its own
#: size, as upstream runs it (a picture mirrored out to the window grid had differed by up to 33/255)
SELF_PADDED = {"DAT"}
#: size multiples spandrel does not state: Real-CUGAN's U-Net halves the image twice, SCUNet's
#: three times before its 8 px attention windows
GRID = {"RealCUGAN": 4, "SCUNet": 64}
#: architectures that need torchvision, which only the placeholders stand in for
_NEEDS_TORCHVISION = {"LaMa", "RestoreFormer"}
#: fp32 activation bytes per input pixel assumed for unmeasured (often attention) networks
_BYTES_PER_PIXEL = 40_000


def import_spandrel() -> types.ModuleType:
    """spandrel, imported with placeholders for a missing or broken torchvision."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    try:
        import torchvision.transforms.functional  # noqa: F401  (the real one, when it works)
    except Exception:  # ImportError, or RuntimeError from a torchvision built for another torch
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return _import_with_placeholders()
    return _import_spandrel_plain()


def _import_spandrel_plain() -> types.ModuleType:
    try:
        import spandrel
    except ImportError as exc:
        raise CommunityModelError(
            f"reading community model files needs the spandrel package ({first_line(exc)}); "
            "install it with: pip install --no-deps spandrel==0.4.2 safetensors einops"
        ) from None
    return spandrel


def _import_with_placeholders() -> types.ModuleType:
    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise CommunityModelError("this architecture needs a working torchvision, which is not installed")

    names = ["torchvision", "torchvision.transforms", "torchvision.transforms.functional"]
    fakes = {name: types.ModuleType(name) for name in names}
    functional = fakes["torchvision.transforms.functional"]
    functional.rotate = functional.normalize = unavailable  # type: ignore[attr-defined]
    functional.InterpolationMode = types.SimpleNamespace(BILINEAR="bilinear", NEAREST="nearest")  # type: ignore[attr-defined]
    sys.modules.update(fakes)
    try:
        return _import_spandrel_plain()
    finally:  # later imports of torchvision see the real package (or its real error) again
        for name in names:
            if sys.modules.get(name) is fakes[name]:
                del sys.modules[name]


def read_state(path: Path, *, with_record: bool = False) -> Any:
    """A weights file's tensors, read without running pickled code (.pth/.pt/.ckpt/.safetensors;
    the format is told by the file's first bytes, not its name). With ``with_record``: (tensors,
    the trainer's record of the same read, None for a safetensors file)."""
    kind = file_kind(path)
    if kind != "safetensors" and (kind != "unknown" or path.suffix.lower() != ".safetensors"):
        if not with_record:
            return unwrap_prefix(load_state_dict(path))
        state, record = load_state_dict(path, with_record=True)
        return unwrap_prefix(state), record
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CommunityModelError("reading .safetensors files needs the safetensors package (pip install safetensors)") from None
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # SafetensorError: truncated file, bad header, not safetensors at all
        raise WeightsFormatError(
            f"{path.name} is not a complete safetensors file ({first_line(exc)[:120]}); download it again"
        ) from None
    state = unwrap_prefix(canonicalize(state, None, path.name))
    return (state, None) if with_record else state


#: names that training frameworks put before every key (Lightning's ``model.``, GAN trainers'
#: ``generator.`` / ``net_g.``, EMA wrappers'), tried when the keys as they are match no architecture
_WRAPPER_PREFIXES = ("model.", "generator.", "net_g.", "netG.", "net.", "network.", "ema.", "model_ema.", "module.")


def unwrap_prefix(state: StateDict) -> StateDict:
    """``state`` without a wrapper name that starts every key, where the keys match no
    architecture with it and do without it (a Lightning checkpoint had been "not a known
    architecture"); else ``state`` as it is (ESRGAN's own keys all start with ``model.``)."""
    prefix = next((p for p in _WRAPPER_PREFIXES if state and all(k.startswith(p) for k in state)), None)
    if prefix is None or _recognised(state):
        return state
    stripped = {k[len(prefix):]: v for k, v in state.items()}
    return stripped if _recognised(stripped) else state


def _recognised(state: StateDict) -> bool:
    """Whether one of our architectures or spandrel's claims the state dict (no network is built)."""
    from .archs import ARCHS

    def claims(detect: Callable[[StateDict], bool]) -> bool:
        try:
            return bool(detect(state))
        except Exception:  # noqa: BLE001 - a detector meeting keys it does not expect
            return False

    if any(claims(arch.detect) for arch in ARCHS.values()):
        return True
    try:
        spandrel = import_spandrel()
    except CommunityModelError:
        return False
    return any(claims(support.detect) for support in spandrel.MAIN_REGISTRY.architectures())


@dataclass(frozen=True)
class Info:
    """What a community file is, from spandrel's descriptor (printed by ``models --inspect``)."""

    arch: str
    purpose: str
    scale: int
    input_channels: int
    output_channels: int
    params: int
    multiple: int
    minimum: int
    supports_half: bool
    supports_bfloat16: bool
    tags: tuple[str, ...]


class SpandrelNet(nn.Module):
    """One spandrel network behind our ``forward(x) -> y`` contract: pads small inputs to the
    architecture's minimum (as spandrel does: mirrored, then the edge repeated) and crops the
    output back. An architecture with a call function of its own gets one picture per call:
    DRUNet's builds its noise map for a batch of one, and a video's batch of frames had failed
    ("Sizes of tensors must match")."""

    def __init__(self, model: nn.Module, call: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None, scale: int,
                 minimum: int) -> None:
        super().__init__()
        self.model = model
        self._call = call
        self.scale = scale
        self.minimum = minimum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        bottom, right = max(0, self.minimum - h), max(0, self.minimum - w)
        if bottom or right:  # as spandrel pads: mirrored as far as each side allows, then the edge repeated
            mirrored = min(bottom, h - 1), min(right, w - 1)
            x = nn.functional.pad(x, (0, mirrored[1], 0, mirrored[0]), mode="reflect")
            if (bottom, right) != mirrored:
                x = nn.functional.pad(x, (0, right - mirrored[1], 0, bottom - mirrored[0]), mode="replicate")
        if self._call is None:
            y = self.model(x)
        elif x.shape[0] == 1:
            y = self._call(self.model, x)
        else:
            y = torch.cat([self._call(self.model, x[i : i + 1]) for i in range(x.shape[0])])
        return y[..., : h * self.scale, : w * self.scale]


def describe(state: StateDict, name: str) -> tuple[Any, Info]:
    """spandrel's descriptor for a state dict, and the facts we use; one-line errors otherwise."""
    spandrel = import_spandrel()
    try:
        with warnings.catch_warnings():  # third-party construction warnings (torch.meshgrid) are not the user's
            warnings.simplefilter("ignore", UserWarning)
            desc = spandrel.ModelLoader().load_from_state_dict(dict(state))
    except spandrel.UnsupportedModelError:
        raise CommunityModelError(
            f"{name}: not a known super-resolution architecture (neither sr_filter's nor one of "
            f"spandrel {spandrel.__version__}'s: an image classifier, a model for another task, or a newer architecture)"
        ) from None
    except CommunityModelError:
        raise
    except Exception as exc:  # an architecture detected but its tensors do not fit it
        detail = mismatch_detail(exc) if isinstance(exc, RuntimeError) else first_line(exc)
        raise CommunityModelError(f"{name}: recognised as a model but it does not load ({detail[:200]})") from None
    model = desc.model
    req = desc.size_requirements
    info = Info(
        arch=desc.architecture.id, purpose=desc.purpose, scale=int(desc.scale),
        input_channels=int(desc.input_channels), output_channels=int(desc.output_channels),
        params=sum(p.numel() for p in model.parameters()),
        # window attention: tiles start on the window grid, so each one partitions as the whole image
        multiple=math.lcm(int(req.multiple_of), 1 if desc.architecture.id in SELF_PADDED else _window_grid(model),
                          GRID.get(desc.architecture.id, 1)),
        minimum=int(req.minimum),
        supports_half=bool(desc.supports_half), supports_bfloat16=bool(desc.supports_bfloat16),
        tags=tuple(desc.tags),
    )
    return desc, info


def _window_grid(model: nn.Module) -> int:
    """The grid window attention partitions the image on (lcm of every ``window_size`` and
    ``split_size`` in the network; 1 for convolutional ones). Tiles that start on it, with the
    image padded to it, see the same windows as the whole image."""
    grid = 1
    for module in model.modules():
        for attr in ("window_size", "split_size"):
            value = getattr(module, attr, None)
            values = value if isinstance(value, (list, tuple)) else [value]
            for v in values:
                if isinstance(v, int) and 0 < v <= 64:
                    grid = math.lcm(grid, v)
    return grid


#: input channel counts the upscaler can feed: grey (run per colour plane), RGB, RGBA
SUPPORTED_CHANNELS = (1, 3, 4)


def check_channels(arch: Arch, params: dict, path: Path) -> None:
    """Refuse at load what cannot run on images later: the upscaler feeds 1 (grey, one plane at a
    time), 3 (RGB) or 4 (RGBA) channels and expects as many back, at a scale of at least 1."""
    facts = arch.facts(params)
    if facts.in_channels not in SUPPORTED_CHANNELS or facts.out_channels != facts.in_channels:
        raise WeightsFormatError(
            f"{path.name}: a model with {facts.in_channels} input and {facts.out_channels} output channels "
            "cannot upscale images; supported are 1 (grey), 3 (RGB) or 4 (RGBA) channels, as many out as in"
        )
    if facts.scale < 1:
        raise WeightsFormatError(f"{path.name}: the network's scale reads as {facts.scale}; it is not a super-resolution model")


def check_usable(info: Info, name: str) -> None:
    """Refuse what the upscaler cannot run: inpainting, other channel layouts, non-square needs."""
    if info.purpose == "Inpainting" or info.arch in _NEEDS_TORCHVISION and "torchvision" not in sys.modules:
        raise CommunityModelError(f"{name} is a {info.arch} model for {info.purpose.lower()}, not super-resolution")
    if info.input_channels != info.output_channels or info.input_channels not in (1, 3, 4):
        raise CommunityModelError(
            f"{name} takes {info.input_channels} and gives {info.output_channels} channels; supported are "
            "grey (1 in, 1 out: each channel of a picture in turn), RGB (3 in, 3 out) and RGBA (4 in, 4 out) models"
        )
    if info.purpose == "FaceSR":
        raise CommunityModelError(
            f"{name} is a {info.arch} face restoration model: it works on aligned face crops, not on whole images"
        )


def detect_own(state: StateDict, name: str) -> tuple[Arch, dict] | None:
    """Our own architecture and settings for a state dict, or None when none of ours claims it
    (then spandrel is asked); a file one of ours claims but does not fit is an error."""
    from .archs import ARCHS, detect_arch

    if not any(arch.detect(state) for arch in ARCHS.values()):
        return None
    try:
        return detect_arch(state)
    except WeightsFormatError as exc:
        raise WeightsFormatError(f"{name}: {exc}") from None


def _network_of(desc: Any, info: Info) -> nn.Module:
    call = getattr(desc, "_call_fn", None)
    if getattr(call, "__qualname__", "").startswith(type(desc).__name__ + "."):  # spandrel's default, model(image)
        call = None
    return SpandrelNet(desc.model, call, info.scale, info.minimum).eval()


def _probe_size(info: Info) -> int:
    """The edge of the small picture a network is tried on (:func:`~sr_filter.facts.probe_edge`)."""
    return probe_edge(info.minimum, info.multiple)


def _runs_in_bf16(desc: Any, info: Info) -> bool:
    """Whether the network runs in bfloat16 on a small picture (a copy of it, on the CPU)."""
    import copy

    size = _probe_size(info)
    network = copy.deepcopy(_network_of(desc, info)).to(torch.bfloat16)
    try:
        with torch.inference_mode():
            network(torch.rand(1, info.input_channels, size, size, dtype=torch.bfloat16))
    except Exception:  # noqa: BLE001 - whatever a third-party network raises
        return False
    return True


def load_community(state: StateDict, path: Path) -> tuple[nn.Module, Arch, dict, int]:
    """Network, descriptor, settings and scale for a file our own architectures do not detect
    (:func:`sr_filter.models.load_file` makes the loaded model of them)."""
    desc, info = describe(state, path.name)
    check_usable(info, path.name)
    network = _network_of(desc, info)
    for p in network.parameters():
        p.requires_grad_(False)
    arch = Arch(
        name=info.arch,
        network=lambda **_: network,
        detect=lambda _s: False,
        infer_params=lambda _s: {},
        scale_param="scale",
        context=lambda p: CONTEXT.get(info.arch, DEFAULT_CONTEXT),
        supports_half=info.supports_half,
        multiple=lambda p: info.multiple,
        blend=_BLEND,
        bytes_per_pixel=lambda p: _BYTES_PER_PIXEL,
        minimum=lambda p: info.minimum,
        whole_image=info.arch in GLOBAL,
        pad="zeros" if info.arch in ZERO_PADDED else "reflect",
    )
    params = {"scale": info.scale, "via": "spandrel", "supports_bfloat16": info.supports_bfloat16}
    if info.input_channels != 3:  # grey manga models (1 channel) run plane by plane, as our own grey ones do
        params.update(num_in_ch=info.input_channels, num_out_ch=info.output_channels)
        _probe(network, info, path.name)
    return network, arch, params, info.scale


def _probe(network: nn.Module, info: Info, name: str) -> None:
    """Run a small picture through a network of a rarer channel count: some architectures take
    the count but keep RGB code inside (SPAN subtracts an RGB mean), which would fail on every
    window later."""
    size = _probe_size(info)
    try:
        with torch.inference_mode():
            out = network(torch.rand(1, info.input_channels, size, size))
    except Exception as exc:  # noqa: BLE001 - whatever a third-party network raises
        raise CommunityModelError(f"{name} is a {info.input_channels}-channel {info.arch} model whose network does not run on "
                                  f"{info.input_channels}-channel pictures ({first_line(exc)[:160]})") from None
    if out.shape[1] != info.output_channels:
        raise CommunityModelError(f"{name} is a {info.input_channels}-channel {info.arch} model whose network gives "
                                  f"{out.shape[1]} channels, not {info.output_channels}")


def recorded_settings(arch: Any, params: dict, record: dict | None) -> dict:
    """Settings the tensors cannot show, from the record our trainer writes into its files: an
    activation without weights (ReLU or LeakyReLU) read the same from the shapes, so a network
    trained with ReLU was loaded with LeakyReLU and gave other pixels. Only settings the shapes
    also gave are taken, and only from a record of this architecture."""
    if record and record.get("arch") == arch.name:
        return {**params, **{k: v for k, v in record["settings"].items() if k in params}}
    return params


def inspect_file(path: Path) -> dict[str, Any]:
    """What a weights file is: architecture, scale, channels, parameters, size needs, precisions,
    and whether sr_filter's own network or spandrel's runs it (``sr-filter models --inspect``)."""
    state, record = read_state(path, with_record=True)
    own = detect_own(state, path.name)
    if own is None:
        desc, info = describe(state, path.name)
        usable = "yes"
        try:
            check_usable(info, path.name)
            if info.input_channels != 3:
                _probe(_network_of(desc, info), info, path.name)
        except CommunityModelError as exc:
            usable = f"no: {exc}"
        if info.supports_bfloat16 and not _runs_in_bf16(desc, info):  # spandrel's claim, tried (SwinIR's fp32 mask)
            info = dataclasses.replace(info, supports_bfloat16=False)
        return {
            "file": str(path), "arch": info.arch, "via": f"spandrel {import_spandrel().__version__}",
            "purpose": info.purpose, "scale": info.scale, "input_channels": info.input_channels,
            "output_channels": info.output_channels, "params": info.params, "size_multiple": info.multiple,
            "size_minimum": info.minimum, "fp16": info.supports_half, "bf16": info.supports_bfloat16,
            "tile_context": CONTEXT.get(info.arch, DEFAULT_CONTEXT), "tags": list(info.tags), "usable": usable,
        }
    from .weights import same_file_in_manifest

    arch, params = own
    params = recorded_settings(arch, params, record)  # as loading takes them: a ReLU run had read as LeakyReLU

    usable = "yes"
    try:  # the shapes as read must be the network's: a 3-in, 1-out x2 Compact read as x1 had been "yes"
        arch.build(dict(params)).load_state_dict(state, strict=True)
        check_channels(arch, dict(params), path)  # what loading it to upscale refuses (it had said "yes" to it)
    except WeightsFormatError as exc:
        usable = f"no: {exc}"
    except (RuntimeError, ValueError, TypeError) as exc:
        usable = f"no: its weights do not fit {arch.name} as their shapes read ({mismatch_detail(exc)})"

    known = same_file_in_manifest(path)  # official weights downloaded by hand: which model, whose licence
    return {
        "file": str(path), **({"manifest": f"{known.name}@{known.version}, licence {known.license}"} if known else {}),
        "arch": arch.name, "via": "sr_filter (own network)", "purpose": "SR",
        "scale": arch.scale(params), "input_channels": int(params.get("num_in_ch", 3)),
        "output_channels": int(params.get("num_out_ch", 3)), "params": sum(int(v.numel()) for v in state.values()),
        "size_multiple": int(arch.multiple(params)), "size_minimum": 0, "fp16": arch.supports_half, "bf16": True,
        "tile_context": int(arch.context(params)), "tags": [f"{k}={v}" for k, v in params.items()], "usable": usable,
    }

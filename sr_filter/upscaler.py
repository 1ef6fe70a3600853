"""``Upscaler``: a model loaded once, placed on a device, and run on images of any size.

On the CPU with the OpenVINO backend, a model converted by an earlier run is taken straight from
the conversion cache and torch is never imported (it costs about a second and 220 MB at every
start); torch loads only when something needs it: another device, the torch backend, a first
conversion, weights interpolation (``denoise``).
"""

from __future__ import annotations

import copy
import errno
import functools
import logging
import math
import numbers
from collections.abc import Iterable, Sequence
from os import PathLike, fsdecode, fsencode, fspath, sep
from os.path import expanduser, samefile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import convert, limits, softalpha
from .atomic import refuse_writing_input
from .backends import Backend
from .lazymodule import LazyModule
from .device import check_precision, cpu_only, cpu_precision, free_memory
from .errors import BackendError, ImageFormatError, OutputIsInputError, SrFilterError, WeightsFormatError, first_line
from .facts import Facts
from .interrupts import interrupts_held
from .models import LoadedModel, ModelRef, load_ref, pad_bottom_right, preset_colour_fix, resolve
from .resize import ResizeSink, resize
from .sizing import check_scale_request, scaled_length
from .tiling import ArraySink, Progress, Sink, check_out, check_tile, round_up, run_tiled

if TYPE_CHECKING:
    import torch
else:  # annotations name torch's types: typing.get_type_hints imports torch for them, not this import
    torch = LazyModule("torch")

log = logging.getLogger(__name__)

_MAX_AUTO_TILE = 1024
#: the CPU never plans more than this for one forward pass (RAM is shared with the output)
_CPU_BUDGET = 2 << 30
#: the smallest automatic tile edge on the CPU, and the edge for a model whose work is not
#: counted: below it the overlap and the per-window cost grow fast (docs/performance.md, "CPU tile size")
CPU_TILE = 256
#: multiply-adds one automatic CPU window may take: about a second on the 2-core servers measured,
#: two on a 4-core laptop in fp32, so progress and cancelling stay responsive; a cheaper model
#: gets larger tiles and loses less to their overlap (docs/performance.md, "CPU tile size")
CPU_WINDOW_MACS = 2e11
#: the largest automatic tile edge on the CPU: larger windows were no faster (their activations
#: leave the caches) and held far more memory (sr-cartoon-x4 at 1024 px tiles: 1343 MB peak on a
#: 2000x1500 picture, 400 MB at 256, the same time)
CPU_TILE_MAX = 512
#: below this many multiply-adds per value written a network is limited by memory traffic, and
#: tiles above CPU_TILE were slower: sr-cartoon-x4 (267) 10% slower at 512 px than at 256, where
#: sr-photo-x4 (403) and realesr-animevideov3 (545) were 5-10% faster (docs/performance.md)
COMPUTE_BOUND = 320

__all__ = ["CPU_TILE", "Upscaler", "check_tile"]


class Upscaler:
    """A loaded super-resolution model bound to a device, a precision and an inference backend.

    ``model`` is a preset (``photo``, ``cartoon``, ``face``), a manifest name (``name`` or
    ``name@version``) or a path to a weights file (``str`` or ``pathlib.Path``). ``tile`` is the
    tile edge in input pixels, ``0`` for whole-image inference or ``"auto"``. ``backend`` is
    ``auto``, ``torch`` or ``openvino`` (see :mod:`sr_filter.backends`). ``tta`` averages the 8
    flips/rotations of every window (about 8x the time, sharper and cleaner); ``denoise`` in [0, 1]
    interpolates a model with its weak-denoise twin (``realesr-general-x4v3``: 1 = full denoising).
    ``colour_fix`` keeps the input's colour over areas, where networks shift flat colours by a few
    levels (:mod:`sr_filter.colourfix`); None: the preset's choice (on for ``cartoon``), off for a
    model name or file, so that a published model gives its own pixels.
    """

    #: the loaded network and what it is (facts, scale, padding rules)
    model: LoadedModel
    #: what runs the windows (torch, OpenVINO, or test-time augmentation around either)
    backend: Backend

    def __init__(
        self,
        model: str | PathLike | None = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | str = "auto",
        batch: int = 1,
        offline: bool | None = None,
        backend: str = "auto",
        tta: bool = False,
        denoise: float | None = None,
        colour_fix: bool | None = None,
    ) -> None:
        if isinstance(model, PathLike):  # a file by its type: Path("photo") had run the photo preset
            model = str(model)
            if "/" not in model and sep not in model:
                model = f".{sep}{model}"
        elif model is not None and not isinstance(model, str):
            # upscale(image, 2) reads 2 as the preset: say where a scale goes
            number = isinstance(model, numbers.Real) and not isinstance(model, bool)
            hint = f"; for a scale, write scale={float(model):g}" if number else ""
            if isinstance(model, Upscaler):  # upscale(image, up), upscale_file(src, dst, up): the preset's place
                hint = "; a loaded Upscaler is given as upscaler=up (or used as up.upscale(image))"
            raise SrFilterError(f"the model must be a preset, a model name or a file path, not {type(model).__name__}{hint}")
        precision = check_precision(precision)  # " FP32" as " CPU" is taken
        #: how it was made, for pickling: another process builds its own from these
        self._made_with = {"model": model, "device": device if isinstance(device, str) else str(device),
                           "precision": precision, "tile": tile, "batch": batch, "offline": offline, "backend": backend,
                           "tta": tta, "denoise": denoise, "colour_fix": colour_fix}
        self.tile = tile
        if offline is not None:  # offline="no" was taken as offline
            offline = check_flag("offline", offline)
        tta = check_flag("tta", tta)
        #: what colour_fix = None means: the preset's choice (a copy keeps the original's)
        self._preset_colour_fix = preset_colour_fix(model if denoise is None else model or "photo")
        self.colour_fix = colour_fix
        self.batch = batch
        self._tta = tta
        self._said_whole = False  # the whole-image architecture notice, once
        self._said_tile: tuple[int, int, int] | None = None  # the automatic tile last logged (at -v)
        # the device and precision are checked before any weights are fetched
        quick = may_skip_torch(device, backend, denoise)
        self._device: torch.device | None = None
        self._device_name = "cpu"
        if quick:
            wanted = cpu_precision(precision)
        else:
            self._place(device)
        ref = None if denoise is not None else resolve(model, offline=offline)
        converted = self._converted(ref, wanted) if quick and ref is not None else None
        if converted is not None:
            self.model, self.backend = converted
        else:
            if self._device is None:
                self._place(device)
            from .backends import make_backend
            from .device import pick_dtype

            if ref is not None:
                self.model = load_ref(ref)
            else:
                from .denoise import load_denoised

                self.model = load_denoised(model or "photo", denoise, offline=offline)
            dtype = pick_dtype(self.device, precision, supports_half=self.model.facts.supports_half)
            self.backend = make_backend(backend, self.model, self.device, dtype)
        if precision == "bf16" and self.backend.name == "openvino" and self.backend.precision != "bf16":
            # it had run fp32 without a word (the torch backend runs bf16 as asked)
            log.warning("bf16 was asked, but this CPU runs it in OpenVINO only with native bf16 (AMX or AVX512-BF16), "
                        "which it lacks: %s runs in %s; the torch backend emulates bf16, slowly", Path(self.name).name,
                        self.backend.precision)
        if tta:
            from .tta import TTABackend

            self.backend = TTABackend(self.backend)

    def _place(self, device: object) -> None:
        """Resolve the device through torch (loaded here, Ctrl-C held back while its C++ starts)."""
        with interrupts_held():
            import torch  # noqa: F401
        from .device import pick_device

        self._device = pick_device(device)
        self._device_name = str(self._device)

    @staticmethod
    def _converted(ref: ModelRef, precision: str) -> tuple[LoadedModel, Backend] | None:
        """The model and an OpenVINO backend from the conversion cache, without torch; None when
        that cannot be (not converted yet, a damaged entry, OpenVINO missing): the caller loads
        the torch network, which also reports any bad setting."""
        try:
            from .backends.openvino import OpenVinoBackend

            found = OpenVinoBackend.from_cache(ref, precision=precision)
        except (ImportError, BackendError) as exc:
            log.debug("not running from the conversion cache: %s", first_line(exc))
            return None
        if found is None:
            return None
        ov_backend, about = found
        try:
            facts = Facts(**about["facts"])
            model = LoadedModel.deferred(ref, arch_name=str(about["arch"]), params=dict(about["params"]),
                                         scale=int(about["scale"]), facts=facts, load=lambda: load_ref(ref))
        except (KeyError, TypeError, ValueError) as exc:
            log.debug("the conversion cache record does not describe the model (%s)", first_line(exc))
            return None
        return model, ov_backend

    # -- settings that may be changed between calls (checked as the constructor checks them) --
    @property
    def tile(self) -> int | str:
        """The tile edge in input pixels, 0 for whole-image inference, or ``"auto"``."""
        return self._tile

    @tile.setter
    def tile(self, value: int | str) -> None:  # up.tile = True had run 1-pixel tiles, "Auto" failed inside upscale
        self._tile = check_tile(value)

    @property
    def colour_fix(self) -> bool:
        """Whether the input's colour is kept over areas; set None for the preset's choice."""
        return self._colour_fix

    @colour_fix.setter
    def colour_fix(self, value: bool | None) -> None:  # up.colour_fix = "no" had turned the fix on
        self._colour_fix = check_flag("colour_fix", value) if value is not None else self._preset_colour_fix

    @property
    def batch(self) -> int:
        """How many pictures of ``upscale_batch`` (or video frames) go through the network together."""
        return self._batch

    @batch.setter
    def batch(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise SrFilterError(f"the batch size must be a whole number of at least 1, not {value!r}")
        self._batch = int(value)

    # -- facts -----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The torch device the model runs on (``cpu`` for OpenVINO; asking loads torch)."""
        if self._device is None:
            import torch

            self._device = torch.device(self._device_name)
        return self._device

    @property
    def precision(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``: what actually runs."""
        return self.backend.precision

    @property
    def scale(self) -> int:
        """The network's own scale factor."""
        return self.model.scale

    @property
    def name(self) -> str:
        """The model's manifest id (``name@version``), or its file's path."""
        return self.model.entry.id if self.model.entry else str(self.model.path)

    @property
    def denoise(self) -> float | None:
        """The denoising strength asked for (None: the model as it is)."""
        return self._made_with["denoise"]

    @property
    def fallbacks(self) -> int:
        """Windows re-run in fp32 because reduced precision gave NaN/Inf."""
        return int(getattr(self.backend, "fallbacks", 0))

    def __reduce__(self) -> tuple:
        """Pickled as the settings it was made with: a process pool's worker (spawn, forkserver)
        builds its own Upscaler from them, loading the model once per process (a loaded network,
        OpenVINO's compiled model included, cannot travel; pickling had failed with Python's own
        AttributeError)."""
        settings = self._settings()
        changeable = {name: settings.pop(name) for name in _CHANGEABLE}
        changeable["preset_colour_fix"] = self._preset_colour_fix
        return (_rebuilt, (type(self), tuple(sorted(settings.items())), tuple(sorted(changeable.items()))))

    def __copy__(self) -> Upscaler:
        """A second handle on the same loaded model (as copying any object shares what it holds)."""
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    def __deepcopy__(self, memo: dict) -> Upscaler:
        """An independent Upscaler of the same settings, with its own loaded model."""
        twin = type(self)(**self._settings())
        twin._preset_colour_fix = self._preset_colour_fix
        return twin

    def _settings(self) -> dict:
        """The constructor's arguments, with the settings that may be changed later as they are
        now, and the model it runs in place of the preset that chose it: a preset resolved
        offline to a built-in model could otherwise become another model in a copy made online."""
        settings = {**self._made_with, "tile": self.tile, "batch": self.batch, "colour_fix": self.colour_fix}
        if settings["denoise"] is None:  # (a denoised model is made from the preset's, not named)
            settings["model"] = self.model.entry.id if self.model.entry else str(Path(self.model.path).absolute())
        return settings

    def describe(self) -> str:
        """One line for messages: the model, its scale and architecture, device, precision and backend."""
        return (f"{self.name} (x{self.scale}, {self.model.arch_name}) on {self._device_name} "
                f"in {self.backend.precision} with {self.backend.name}" + (", colour fix" if self.colour_fix else ""))

    # -- running -----------------------------------------------------------------------------
    def run(self, x: Any, progress: Progress | None = None) -> Any:
        """Upscale a (1, C, H, W) float array (or CPU tensor) in [0, 1] at the native scale,
        tiled; the same kind (array or tensor) comes back, in float32 whatever the input's float type."""
        check_callback("progress", progress)
        tensor = not isinstance(x, np.ndarray)
        x = self._check_input(x)
        height, width = x.shape[-2:]
        m, s = self.model.facts.multiple, self.scale
        padded = np.empty((1, x.shape[1], round_up(height, m) * s, round_up(width, m) * s), dtype=np.float32)
        self.run_into(x, padded, progress)
        out = padded if m == 1 else np.ascontiguousarray(padded[:, :, : height * s, : width * s])
        if tensor:
            import torch

            return torch.from_numpy(out)
        return out

    def run_into(self, x: np.ndarray, out: np.ndarray | Sink, progress: Progress | None = None) -> None:
        """Like :meth:`run`, but stream finished rows into ``out`` (a float32 array of the padded
        output size, or a :class:`~sr_filter.tiling.Sink` such as an ``ArraySink`` over a
        uint8/uint16 image), so no float32 copy of the whole output is ever held."""
        given = self._check_input(x)
        x = self.model.pad(given)
        facts = self.model.facts
        small = self.model.pad_to_minimum(given)
        if small is not None:  # below the network's minimum: run padded to it, passing on the part out takes
            check_out(out, (1, x.shape[1], x.shape[-2] * self.scale, x.shape[-1] * self.scale))
            out, x = _Cropped(out, x.shape[-2] * self.scale, x.shape[-1] * self.scale), small
        run_tiled(
            self._window,
            x,
            self.scale,
            tile=self._tile_for(*x.shape[-2:], shown=given.shape[-2:]),
            context=facts.context,
            band=facts.blend,
            batch=self.batch,
            multiple=facts.multiple,
            progress=progress,
            out=out,
        )

    def _window(self, batch: np.ndarray) -> np.ndarray:
        """One batch of windows through the backend, adapting the channel count to the model's:
        a grey model runs each colour plane as its own image, an RGBA model gets opaque alpha.
        NaN in the result (after any fp32 re-run) means broken weights: an error, not a picture."""
        want, have = self.model.facts.in_channels, batch.shape[1]
        n, _, h, w = batch.shape
        if self.model.below_minimum(h, w):  # a thin strip or a tiny image: padded as the network's own code would
            s, low = self.scale, self.model.least_side
            return self._window(pad_bottom_right(batch, max(0, low - h), max(0, low - w)))[..., : h * s, : w * s]
        if want == have:
            out = self.backend.run(batch)
        elif want == 1:
            out = self.backend.run(batch.reshape(n * have, 1, h, w))
            out = out.reshape(n, have, *out.shape[-2:])
        elif want == 4 and have == 3:
            out = self.backend.run(np.concatenate([batch, np.ones_like(batch[:, :1])], 1))[:, :3]
        else:
            raise SrFilterError(f"the model takes {want} channels and cannot run on {have}")
        if bool(np.isnan(out).any()):
            raise WeightsFormatError(f"{self.name} gives NaN (not-a-number) pixels even in fp32: its weights are damaged")
        return out

    @staticmethod
    def _check_input(x: Any) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            if not hasattr(x, "detach"):
                raise ImageFormatError(f"expected a (1, C, H, W) float array or tensor in [0, 1], got {type(x).__name__}")
            x = x.detach().cpu()
            if x.is_floating_point():
                x = x.float()
            x = x.numpy()
        if x.ndim != 4 or x.shape[0] != 1:
            raise ImageFormatError(f"expected a (1, C, H, W) array, got {tuple(x.shape)}")
        if x.dtype.kind != "f":  # 0..255 integers would come back saturated
            raise ImageFormatError(f"expected float values in [0, 1], got {x.dtype}; divide integer pixels by their "
                                   "maximum, or use upscale() for uint8/uint16 images")
        if 0 in x.shape[-2:]:
            raise ImageFormatError(f"the image is empty (width {x.shape[-1]}, height {x.shape[-2]})")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not bool(np.isfinite(x).all()):  # it had come out as "the weights are damaged"
            raise ImageFormatError(f"the input holds {int(np.isnan(x).sum())} NaN and {int(np.isinf(x).sum())} infinite "
                                   "value(s); replace them first (numpy.nan_to_num), or use upscale(), which takes them as 0..1")
        return x

    def upscale(self, image: Any, scale: float | None = None, progress: Progress | None = None) -> Any:
        """Upscale a PIL image or numpy array by ``scale`` (default: the model's); same kind out.

        A PIL image's colour key (``info["transparency"]``) becomes an alpha channel. A 16-bit grey
        one with a key (a 16-bit grey PNG with tRNS, opened by Pillow as I;16) comes back as an
        8-bit "LA" image, with a warning: Pillow has no 16-bit grey + alpha mode, and keying the
        upscaled 16-bit picture would not hold (resampled pixels near the key value are not the
        key). :func:`sr_filter.upscale_file` keeps the 16 bits and the alpha."""
        from PIL import Image

        if isinstance(image, Image.Image):
            from .convert import array_to_pil, pil_to_array
            from .metadata import ImageMeta

            frames = getattr(image, "n_frames", 1) if getattr(image, "is_animated", False) else 1
            if frames > 1:  # here, so that a reused Upscaler says it too (it had been said by sr_filter.upscale only)
                log.warning("the image has %d frames; only the current one is upscaled (sr_filter.upscale_animation "
                            "keeps every frame)", frames)

            meta = ImageMeta(icc_profile=image.info.get("icc_profile"))
            # sized before a lazily opened file is decoded (a 6000x6000 picture at x16 had been
            # decoded, 0.9 s and 200 MB, before the refusal); the check on the array follows
            keyed = "transparency" in image.info
            bands = {"P": 4 if keyed else 3, "PA": 4, "CMYK": 3}.get(image.mode, len(image.getbands()))
            bands += keyed and image.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "RGB")  # the key becomes alpha
            deep = 2 if image.mode.startswith("I") else 4 if image.mode == "F" else 1
            limits.check_fits("the image", image.width, image.height, bands, self.check_scale(scale), deep,
                              model_scale=self.scale)
            try:
                array, mode = pil_to_array(image, meta)  # CMYK goes through its ICC profile
            except (OSError, ValueError, SyntaxError) as exc:  # a lazily opened file that is damaged
                raise ImageFormatError(f"cannot read the image: {first_line(exc)}") from None
            if array.dtype == np.uint16 and array.ndim == 3 and array.shape[2] == 2:
                log.warning("the 16-bit grey image has a colour key (transparency %s): it comes back as an 8-bit grey + "
                            "alpha (LA) image, as Pillow has no 16-bit grey + alpha mode; sr_filter.upscale_file "
                            "keeps the 16 bits and the alpha", image.info.get("transparency"), extra=convert.PER_FILE)
            out = array_to_pil(self.upscale_array(array, scale, progress), mode)
            _carry_info(image, out, meta)
            return out
        return self.upscale_array(image, scale, progress)

    def upscale_array(self, array: np.ndarray, scale: float | None = None, progress: Progress | None = None) -> np.ndarray:
        """Upscale an HxW / HxWxC uint8, uint16 or float array; returns the same layout and dtype.

        Float colour beyond 0..1 (HDR, out of gamut) is kept: the network sees it clipped, and
        the part beyond is resized and added back."""
        check_callback("progress", progress)
        beyond = convert.beyond_unit(array)
        if beyond is None:
            return self._fixed(array, self._upscale_array(array, scale, progress))
        inside, rest = beyond
        return convert.add_beyond(self._fixed(inside, self._upscale_array(inside, scale, progress)), rest)

    def _fixed(self, source: np.ndarray, result: np.ndarray) -> np.ndarray:
        """``result`` with ``source``'s colour over areas when the colour fix is on; its alpha too,
        which runs through the same network (``realesr-animevideov3`` lifted a smooth alpha ramp by
        4 levels on average, so a half-transparent layer came out more opaque). Alpha that came out
        exactly transparent or opaque stays so."""
        if not self.colour_fix:
            return result
        from .colourfix import alpha_fixed, colour_fixed

        result = colour_fixed(source, result)
        if source.ndim == 3 and source.shape[2] in (2, 4) and not (source[..., -1] == source[0, 0, -1]).all():
            result[..., -1] = alpha_fixed(source[..., -1], result[..., -1])
        return result

    def _check_job(self, array: object, scale: float | None) -> float:
        """The output scale, after refusing an image whose result cannot fit in memory (with the
        numbers, before any copy, as a file is: it was numpy's MemoryError after the work). A
        scale below the model's is said once per upscaler, not once per image or video frame."""
        scale = self.check_scale(scale)
        said = self.__dict__.setdefault("_scales_said", set())
        if scale < self.scale and scale not in said:
            said.add(scale)
            level = logging.WARNING if scale < 1 else logging.INFO
            log.log(level, "scale %g is below the model's x%d: the x%d result is resized down", scale, self.scale, self.scale)
        if isinstance(array, np.ndarray) and array.ndim in (2, 3) and array.size:
            limits.check_fits("the image", array.shape[1], array.shape[0], 0 if array.ndim == 2 else array.shape[2], scale,
                              array.dtype.itemsize, model_scale=self.scale, decoded=True)
        return scale

    def _upscale_array(self, array: np.ndarray, scale: float | None, progress: Progress | None) -> np.ndarray:
        scale = self._check_job(array, scale)
        planes = convert.split(array)
        height, width = planes.rgb.shape[-2:]
        out_h, out_w = scaled_length(height, scale), scaled_length(width, scale)
        passes = self._passes(scale)
        facts = self.model.facts
        rgb, alpha = planes.rgb, planes.alpha
        if facts.in_channels == 1 and planes.grey:
            rgb = rgb[:, :1]  # one plane is enough for a grey model on a grey image
        uniform_alpha = alpha is not None and bool((alpha == alpha.flatten()[0]).all())
        if alpha is not None and not uniform_alpha:
            rgb = convert.bleed_transparent(rgb, alpha)
        with_alpha = facts.in_channels == 4 and alpha is not None
        separate = alpha is not None and not uniform_alpha
        weight = softalpha.network_weight(alpha) if separate else None  # soft transparency stays soft
        by_network = weight is not None and bool(weight.any())  # else soft all over: resized only
        if with_alpha:  # an RGBA model upscales colour and alpha together
            jobs = [np.concatenate([np.broadcast_to(rgb, (1, 3) + rgb.shape[2:]), alpha], 1)]
        else:
            alpha_planes = 1 if facts.in_channels == 1 else 3  # alpha runs as a grey (or RGB) image
            jobs = [rgb] + ([np.repeat(alpha, alpha_planes, axis=1)] if by_network else [])
        tracker = _ProgressSum(progress, [height * width * (self.scale**2) ** k for k in range(passes)] * len(jobs))
        if not with_alpha:
            # stream rows straight into the result in its own dtype (no float copy of it), resized
            # on their way at scales the network does not give
            shape = (out_h, out_w) + ((planes.channels,) if planes.channels else ())
            result = np.empty(shape, dtype=planes.dtype)
            self._stream(jobs[0], passes, ArraySink(result, 0, mean=planes.grey, copies=planes.colour_copies), tracker)
            if separate:
                if by_network:
                    self._stream(jobs[1], passes, ArraySink(result, planes.channels - 1, mean=True), tracker)
                    softalpha.blend(result[..., -1], alpha, weight)
                else:
                    softalpha.fill(result[..., -1], alpha)
                clear, solid = convert.settled_alpha(alpha, out_h, out_w)
                result[..., -1][clear] = 0
                result[..., -1][solid] = convert.from_float(np.ones(1, np.float32), planes.dtype)[0]
            elif alpha is not None:
                result[..., -1] = convert.from_float(alpha.reshape(-1)[:1], planes.dtype)[0]
            return result
        # an RGBA model gives colour and alpha together: put back together from a float result
        job = jobs[0]
        for _ in range(passes):
            job = self.run(job, tracker.next_part())
        out = resize(job, out_h, out_w)
        alpha_out = out[:, 3:]
        if not uniform_alpha:
            alpha_out = softalpha.blend_float(alpha_out, alpha, weight)
            clear, solid = convert.settled_alpha(alpha, out_h, out_w)
            alpha_out[0, 0][clear], alpha_out[0, 0][solid] = 0.0, 1.0
        return convert.merge(planes, out[:, :3], alpha_out)

    def _stream(self, job: np.ndarray, passes: int, sink: ArraySink, tracker: _ProgressSum) -> None:
        """Run ``job`` through the network ``passes`` times, the last pass streaming into ``sink``,
        through a :class:`~sr_filter.resize.ResizeSink` where the sink's size is not the network's."""
        for _ in range(passes - 1):
            job = self.run(job, tracker.next_part())
        height, width = (self.scale * n for n in job.shape[-2:])
        out_h, out_w = sink.array.shape[:2]
        self.run_into(job, sink if (out_h, out_w) == (height, width) else ResizeSink(sink, height, width, out_h, out_w),
                      tracker.next_part())

    def upscale_batch(self, arrays: Sequence[np.ndarray], scale: float | None = None,
                      progress: Progress | None = None) -> list[np.ndarray]:
        """Upscale several images (video frames); returns them in order, each as :meth:`upscale_array` would.

        Same-size, same-dtype images without alpha at the model's own scale run through the network
        together, as one (N, C, h, w) batch per window, which can cost less per frame than N passes
        (measured in docs/video.md); anything else runs one image at a time. ``progress`` gets
        (input pixels done, total) over all the images."""
        check_callback("progress", progress)
        if isinstance(arrays, np.ndarray) or not isinstance(arrays, Iterable):
            raise ImageFormatError(f"expected a list of image arrays, got {type(arrays).__name__}")
        arrays = list(arrays)
        for index, array in enumerate(arrays):  # a bad one had been refused after the work on those before it
            convert.check_array(array, f"arrays[{index}]")
        check_scale_request(scale)
        native = scale is None or (isinstance(scale, numbers.Real) and not isinstance(scale, bool) and scale == self.scale)
        if (len(arrays) < 2 or not _same_plain(arrays) or not native  # upscale_array checks and logs the scale
                or self.model.below_minimum(*arrays[0].shape[:2])):  # padded as upscale_array pads
            sizes = [a.shape[0] * a.shape[1] if isinstance(a, np.ndarray) and a.ndim >= 2 else 1 for a in arrays]
            tracker = _ProgressSum(progress, sizes)
            return [self.upscale_array(a, scale, tracker.next_part()) for a in arrays]
        self._check_job(arrays[0], scale)  # the frames share one size and dtype
        planes = [convert.split(a) for a in arrays]
        grey_net = self.model.facts.in_channels == 1 and all(p.grey for p in planes)  # grey stored as RGB: some frames
        x = np.concatenate([p.rgb[:, :1] if grey_net else p.rgb for p in planes], 1)  # frames side by side as channels
        height, width = x.shape[-2:]
        shape = (height * self.scale, width * self.scale) + ((planes[0].channels,) if planes[0].channels else ())
        results = [np.empty(shape, dtype=planes[0].dtype) for _ in arrays]
        per_frame = x.shape[1] // len(arrays)
        sink = _FramesSink([ArraySink(r, 0, mean=p.grey, copies=p.colour_copies) for r, p in zip(results, planes)], per_frame)
        x = self.model.pad(x)
        facts = self.model.facts

        def window(batch: np.ndarray) -> np.ndarray:  # (k, N*C, h, w) -> (k*N, C, h, w) and back
            k, nc, h, w = batch.shape
            out = self._window(batch.reshape(k * nc // per_frame, per_frame, h, w))
            return out.reshape(k, nc, *out.shape[-2:])

        frames = len(arrays)
        # the tiler counts one plane's pixels; the frames go through side by side, so each counts N times
        counted = None if progress is None else (lambda done, total: progress(done * frames, total * frames))
        run_tiled(window, x, self.scale, tile=self._tile_for(*x.shape[-2:], frames=frames, shown=(height, width)), context=facts.context,
                  band=facts.blend, batch=self.batch, multiple=facts.multiple, progress=counted, out=sink)
        return [self._fixed(a, r) for a, r in zip(arrays, results)]

    def check_scale(self, scale: object) -> float:
        """The output scale for a requested one (None: the model's own); SrFilterError for a
        scale that is not a number in (0, 16] or that a 1x model cannot give."""
        value = check_scale_request(scale)
        if value is None:
            return float(self.scale)
        if self.scale == 1 and value != 1:  # a restoration model: resizing its result is another tool's job
            raise SrFilterError(f"{Path(self.name).name} is a 1x model: it restores images at their own size and does not "
                                f"give x{value:g}; ask for no other size, or choose an upscaling model")
        return value

    def _passes(self, scale: float) -> int:
        """How many times the network runs to reach ``scale`` (then the result is resized)."""
        from .sizing import network_passes

        return network_passes(scale, self.scale)

    # -- internals ---------------------------------------------------------------------------
    def _tile_for(self, height: int, width: int, frames: int = 1, shown: tuple[int, int] | None = None) -> int:
        """The tile edge for a (padded) ``height`` x ``width`` input; ``shown`` is the picture's own
        size, for messages."""
        shown_h, shown_w = shown or (height, width)
        if self.tile != "auto" and self._device_name == "cpu":  # a GPU splits the window on out-of-memory; a CPU process is killed
            self._check_window(int(self.tile), height, width, frames, shown_h, shown_w)
        tile = self._planned_tile(height, width, frames)
        if self.tile == "auto" and (tile, height, width) != self._said_tile:
            self._said_tile = (tile, height, width)
            if tile and max(height, width) > tile:
                log.info("automatic tiles: %d px for a %dx%d picture", tile, shown_w, shown_h)
            else:
                log.info("automatic tiles: the whole %dx%d picture in one window", shown_w, shown_h)
        if tile and max(height, width) > tile and self.model.facts.whole_image and not self._said_whole:
            self._said_whole = True  # once per model: a batch or a video would say it every time
            if self.tile != "auto":  # (it had read as if sr-filter had chosen to tile)
                why = f" in {tile} px tiles, as asked; tile 0 runs it whole"
            else:
                need = self._whole_bytes(height, width, frames)
                why = (f" to fit in memory (whole, it would need about {need / (1 << 30):.1f} GiB by the estimate for "
                       f"this architecture, more than half of the {self._free() / (1 << 30):.1f} GiB free); "
                       "tile 0 runs it whole anyway")
            log.warning("%s (%s) mixes the whole picture (its attention averages over all of it), so tiles differ "
                        "slightly from whole-image inference; a %dx%d picture is tiled here%s", Path(self.name).name,
                        self.model.arch_name, shown_w, shown_h, why)
        return tile

    def _check_window(self, tile: int, height: int, width: int, frames: int, shown_h: int, shown_w: int) -> None:
        """Refuse a tile asked for whose window would not fit in free memory: tile 0, and a tile as
        large as the picture, is the whole picture in one window (a 5400x3600 picture had grown
        past 19 GB of 22 without a word, and ``tile 4000`` on a 2000x2000 one was not checked at all)."""
        from .errors import WholeTooLargeError

        reach = tile + 2 * self.model.facts.context
        window_h, window_w = (height, width) if tile == 0 else (min(height, reach), min(width, reach))
        need, free = window_h * window_w * self._bytes_per_pixel(frames), self._free()
        if need <= free:
            return
        sizes = f"about {need / (1 << 30):.1f} GiB by the estimate for {self.model.arch_name}, but {free / (1 << 30):.1f} GiB is free"
        if (window_h, window_w) == (height, width):
            how = "tile 0" if tile == 0 else f"tile {tile} covers it whole"
            raise WholeTooLargeError(f"a {shown_w}x{shown_h} picture in one window ({how}) needs {sizes}; leave the tile "
                                     "automatic, or give a tile size")
        raise WholeTooLargeError(f"{tile} px tiles (windows of {window_w}x{window_h} with their margins) need {sizes}; "
                                 "leave the tile automatic, or give a smaller tile size")

    def _bytes_per_pixel(self, frames: int) -> int:
        """Peak activation bytes per input pixel of one backend call: measured per architecture
        (benchmarks/bench_memory.py, with margin), halved in reduced precision."""
        per_pixel = self.model.facts.bytes_per_pixel
        if self.precision != "fp32":
            per_pixel //= 2
        return per_pixel * self.batch * frames

    def _whole_bytes(self, height: int, width: int, frames: int) -> int:
        """Peak activation bytes of a ``height`` x ``width`` input run as one window."""
        return height * width * self._bytes_per_pixel(frames)

    def _free(self) -> int:
        """Free memory where the model runs (the CPU's without importing torch)."""
        return free_memory("cpu" if self._device_name == "cpu" else self.device)

    def _cpu_edge(self, frames: int) -> int:
        """The CPU tile edge whose window (context included) takes about :data:`CPU_WINDOW_MACS`,
        for one call of the backend (a batch of windows, 8 passes with TTA); from :data:`CPU_TILE`
        to :data:`CPU_TILE_MAX`, and CPU_TILE for a network that waits on memory more than on
        arithmetic (:data:`COMPUTE_BOUND`) or whose work was not counted."""
        facts = self.model.facts
        if facts.macs_per_pixel <= 0 or facts.macs_per_value < COMPUTE_BOUND:
            return CPU_TILE
        passes = self.batch * frames * (8 if self._tta else 1)
        window = math.sqrt(CPU_WINDOW_MACS / (facts.macs_per_pixel * passes))
        return max(CPU_TILE, min(CPU_TILE_MAX, int(window - 2 * facts.context) // 16 * 16))

    def _planned_tile(self, height: int, width: int, frames: int) -> int:
        if self.tile != "auto":
            return int(self.tile)
        per_pixel = self._bytes_per_pixel(frames)
        on_cpu = self._device_name == "cpu"
        if on_cpu and self.model.facts.whole_image:  # tiles change its picture: as much as memory allows
            budget = self._free() // 2
        elif on_cpu:
            budget = min(self._free() // 4, _CPU_BUDGET)
        else:  # CUDA: mem_get_info's free bytes; half of it leaves room for cuDNN workspaces
            budget = int(self._free() * 0.5)
        edge = int(max(64, min(_MAX_AUTO_TILE, int(math.sqrt(budget / per_pixel)) // 16 * 16)))
        if on_cpu and not self.model.facts.whole_image:  # responsive progress beats the last few percent of speed
            edge = min(edge, self._cpu_edge(frames))  # (not where tiles change the picture: exact beats responsive)
        fits = self._whole_bytes(height, width, frames) <= budget
        if fits and max(height, width) <= edge:
            return 0  # whole image fits (and, on the CPU, is quick)
        if (not on_cpu or self.model.facts.whole_image) and fits:
            return 0
        return edge


#: the settings an Upscaler's handles may each change: applied to a handle, not part of what is loaded
_CHANGEABLE = ("tile", "batch", "colour_fix")


def _rebuilt(kind: type, loading: tuple, changeable: tuple) -> Upscaler | _Unloaded:
    """The Upscaler an unpickled one stands for: a handle of its own (changing one's tile or
    colour fix leaves the others as they were) on a model loaded once per process and loading
    settings (the last 4 are kept): a process pool sends it with every task, and loading the
    model for each would cost more than the task. Where the model cannot be loaded, an
    :class:`_Unloaded` that raises why at its first use (tried again for the next task)."""
    try:
        twin = copy.copy(_loaded_for(kind, loading))
    except Exception as exc:  # noqa: BLE001 - raised again where the task uses it
        return _Unloaded(exc)
    values = dict(changeable)
    twin._preset_colour_fix = values.pop("preset_colour_fix")
    for name, value in values.items():
        setattr(twin, name, value)
    return twin


class _Unloaded:
    """An unpickled Upscaler whose model this process could not load (its weights file gone, a
    download refused): every method raises that error. Raised while a task was unpickled, it
    had killed the process-pool worker, and every pending task failed with BrokenProcessPool;
    now the task that uses it fails with the error, and the pool goes on."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        import inspect

        found = None if name.startswith("__") else inspect.getattr_static(Upscaler, name, None)
        if found is None:
            raise AttributeError(name)
        error = self._error
        if not callable(found) and not isinstance(found, (staticmethod, classmethod)):  # a property: its value
            raise error.with_traceback(None)

        def fail(*args: Any, **kwargs: Any) -> Any:  # a method: found when the task is unpickled, raised when called
            raise error.with_traceback(None)

        return fail

    def __reduce__(self) -> tuple:
        return (_Unloaded, (self._error,))


@functools.lru_cache(maxsize=4)
def _loaded_for(kind: type, loading: tuple) -> Upscaler:
    """The Upscaler loaded for these loading settings in this process, shared by its unpickled handles."""
    return kind(**dict(loading))


def _carry_info(image: Any, out: Any, meta: Any) -> None:
    """What a PIL image says about itself, for the upscaled one: the ICC profile; the EXIF with
    its orientation kept (the pixels are not turned: ``ImageOps.exif_transpose`` and viewers still
    show it upright), pixel dimensions and resolution updated; DPI scaled; XMP, sizes updated too."""
    from .metadata import exif_for_output, scaled_dpi, sized_xmp, stated_dpi

    factor = (out.width / max(1, image.width), out.height / max(1, image.height))
    if meta.icc_profile:
        out.info["icc_profile"] = meta.icc_profile
    exif = image.info.get("exif")
    if isinstance(exif, (bytes, bytearray)) and exif:
        updated = exif_for_output(bytes(exif), out.width, out.height, factor, upright=False)
        if updated:
            out.info["exif"] = updated
    dpi = scaled_dpi(stated_dpi(image), factor)
    if dpi:
        out.info["dpi"] = dpi
    xmp = image.info.get("xmp")
    if xmp:  # its pixel sizes and resolutions the output's, as the EXIF's (they had stayed the input's)
        raw = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
        out.info["xmp"] = sized_xmp(raw, out.width, out.height, factor)


#: the callbacks whose calls are known: the arguments they get, and those in words
_CALLBACK_ARGUMENTS = {"progress": ((0, 0), "two arguments, (done, total)"), "notice": (("",), "one argument, the message")}


def check_callback(name: str, value: object) -> None:
    """A callback argument must be callable (or None), said before any work rather than as a
    TypeError from deep inside once the first frame is done."""
    if value is not None and not callable(value):
        raise SrFilterError(f"{name} must be a function (or None), not {type(value).__name__}")
    takes = _CALLBACK_ARGUMENTS.get(name)
    if value is not None and takes:  # progress: a lambda: None had failed after a tile; notice: a TypeError from
        import inspect  # inside, on the video's encoding thread, at the first notice (the last one: after all the work)

        try:
            inspect.signature(value).bind(*takes[0])
        except TypeError:
            raise SrFilterError(f"{name} must take {takes[1]}; {getattr(value, '__name__', value)!r} does not") from None
        except ValueError:  # no signature to read (some builtins): called as it is
            pass


def check_path(name: str, value: object) -> Path:
    """A file path argument as a Path: a str, bytes (as os.fsdecode reads them) or os.PathLike (a
    file object or an array had failed deep inside pathlib or the reader); a name longer than the
    file system allows is a one-line error (it had been a raw OSError from the first look at it).
    A leading ``~`` is the user's home folder, as in a model's file path (:class:`Upscaler`): a
    literal ``~`` folder had been made in the current folder."""
    if isinstance(value, bytes) and b"\0" in value:  # a file's contents (open(f, "rb").read()): all of them had been
        raise SrFilterError(f"{name} is {len(value)} bytes of data, not a file name (it holds NUL bytes); pass the "  # quoted
                            "file's path, or for an image held in memory, sr_filter.upscale(PIL.Image.open(io.BytesIO(data)))")
    if isinstance(value, bytes) or (isinstance(value, PathLike) and isinstance(fspath(value), bytes)):
        value = fsdecode(value)
    if not (isinstance(value, (str, PathLike)) and isinstance(fspath(value), str)):
        raise SrFilterError(f"{name} must be a file path (str, bytes or pathlib.Path), not {type(value).__name__}")
    if not fspath(value):  # an unset setting ("" from os.environ.get): it had been "." (the current folder)
        raise SrFilterError(f"{name} is an empty string; name the file")
    path = Path(expanduser(fspath(value)))
    try:
        path.lstat()
    except (ValueError, UnicodeError):  # a NUL byte, or a lone surrogate no file name can hold
        text = str(path)
        shown = repr(text) if len(text) <= 60 else f"{text[:30]!r}...{text[-25:]!r} ({len(text)} characters)"
        raise SrFilterError(f"{name} {shown} holds a character no file name can (a NUL byte or a lone surrogate)") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # one name too long (most file systems: 255 bytes), or the whole path
            part = max(path.parts, key=lambda p: len(fsencode(p)))
            text, what = (part, "a name") if len(fsencode(part)) > 255 else (str(path), "a path")
            shown = text if len(text) <= 60 else f"{text[:30]}...{text[-25:]}"
            raise SrFilterError(f"{name} {shown} is {len(fsencode(text))} bytes, {what} longer than the "
                                "file system allows; choose a shorter one") from None
    return path


def check_flag(name: str, value: object) -> bool:
    """A yes/no argument must be a bool: ``overwrite="no"`` would otherwise replace a file."""
    if not isinstance(value, (bool, np.bool_)):
        raise SrFilterError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def check_quality(quality: object) -> int | None:
    """JPEG/WebP/AVIF quality: a whole number from 1 to 100, or None (the format's default). One rule
    for pictures and animations (animations had taken 0 and said so as a video error)."""
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, numbers.Integral)
                                or not 1 <= quality <= 100):
        raise SrFilterError(f"quality must be a whole number from 1 to 100 (or None), not {quality!r}")
    return None if quality is None else int(quality)


def check_dst_file(dst: str | PathLike, src: Path, *, overwrite: bool = False) -> None:
    """An output argument that names a folder (existing, or ending in a slash: the argument as
    given, since a Path drops the slash) is refused with the file name it likely meant; one that
    is the input, without ``overwrite``, is said to be the input (not merely an existing file).
    A leading ``~`` is expanded, as :func:`check_path` expands it."""
    text = expanduser(fsdecode(dst))
    refuse_writing_input(text, src)  # /dev/stdout opened onto the input by the shell: overwrite cannot help
    bare = Path(text)  # without the trailing slash
    if text.endswith(("/", sep)) and not bare.is_dir():  # it had been "is a folder", which it is not
        slash = f"dst {text} ends with '{text[-1]}', which names a folder"
        if bare.exists() and src.exists() and samefile(bare, src):
            raise SrFilterError(f"{slash}, but {bare} is the input file; name the output file, e.g. "
                                f"{bare.with_name(f'{src.stem}_upscaled{src.suffix}')}")
        if bare.exists():
            raise SrFilterError(f"{slash}, but {bare} is a file; leave out the '{text[-1]}' to replace that file (overwrite=True)")
        hint = f"for the file {bare}, leave out the '{text[-1]}'" if bare.suffix else f"name the output file, e.g. {bare / src.name}"
        raise SrFilterError(f"{slash}, and there is no folder {bare}; {hint}")
    if bare.is_dir():
        named = Path(text) / src.name
        if named.exists() and src.exists() and samefile(named, src):  # the input's own folder: not the input's name
            named = named.with_name(f"{src.stem}_upscaled{src.suffix}")
        raise SrFilterError(f"dst {text} is a folder; name the output file, e.g. {named}")
    if not overwrite and Path(text).exists() and src.exists() and samefile(text, src):
        raise OutputIsInputError(f"{text} is the input file; pass overwrite=True to replace it, or choose another dst")


def as_upscaler(upscaler: object) -> Any:
    """An :class:`Upscaler` for an ``upscaler`` argument: one as it is, or a preset, model name or
    weights path made into one (with the defaults)."""
    if isinstance(upscaler, (str, PathLike)):
        return Upscaler(upscaler)
    if not all(hasattr(upscaler, name) for name in ("check_scale", "upscale_array", "scale")):
        raise SrFilterError(f"upscaler must be an sr_filter.Upscaler or a model name, not {type(upscaler).__name__}")
    return upscaler


#: the loading settings of :class:`Upscaler` and their defaults: a function that takes a ready
#: upscaler refuses any other value, which that upscaler would silently not use
LOADING_DEFAULTS = {"device": "auto", "precision": "auto", "tile": "auto", "offline": None, "backend": "auto",
                    "tta": False, "denoise": None, "colour_fix": None}


def given_or_loaded(upscaler: object, name: str | PathLike | None, **options: Any) -> Any:
    """The ready ``upscaler`` (see :func:`as_upscaler`), else an :class:`Upscaler` loaded from
    ``name`` (a preset, model name or weights path) with ``options``. A name or a loading setting
    given beside a ready upscaler is an error: it had been ignored without a word."""
    if upscaler is None:
        return Upscaler(name, **options)
    if name is not None:
        raise SrFilterError("give either a ready upscaler or a preset/model, not both")
    given = sorted(k for k, v in options.items() if v != LOADING_DEFAULTS.get(k))
    if given:
        raise SrFilterError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} set on the Upscaler "
                            f"(sr_filter.Upscaler(..., {given[0]}=...)); the ready upscaler given here has its own")
    return as_upscaler(upscaler)


def may_skip_torch(device: object, backend: object, denoise: float | None = None) -> bool:
    """Whether an Upscaler with these settings may run without importing torch: the CPU for sure,
    the OpenVINO backend (``auto`` or ``openvino``), no weights interpolation. It then does when
    the model was converted by an earlier run."""
    return (denoise is None and isinstance(backend, str) and backend.strip().lower() in ("auto", "openvino")
            and isinstance(device, str) and cpu_only(device))


class _Cropped:
    """A sink passing on only the top-left ``height`` x ``width`` of what it gets, to ``target`` (a
    sink, or a (1, C, H, W) float32 array): the output of a picture run larger than its size."""

    def __init__(self, target: np.ndarray | Sink, height: int, width: int) -> None:
        self.target, self.height, self.width = target, height, width

    def write(self, y: int, rows: np.ndarray, x: int = 0) -> None:
        rows = rows[..., : max(0, self.height - y), : max(0, self.width - x)]
        if not rows.size:
            return
        if isinstance(self.target, np.ndarray):
            self.target[0, :, y : y + rows.shape[2], x : x + rows.shape[3]] = rows[0]
        else:
            self.target.write(y, rows, x)


class _ProgressSum:
    """Folds the progress of several runs into one monotone (done, total) stream."""

    def __init__(self, callback: Progress | None, totals: list[int]) -> None:
        self.callback, self.totals, self.index, self.base = callback, totals, -1, 0

    def next_part(self) -> Progress | None:
        if self.callback is None:
            return None
        if self.index >= 0:
            self.base += self.totals[self.index]
        self.index += 1
        grand, base, part_total = sum(self.totals), self.base, self.totals[self.index]

        def report(done: int, total: int) -> bool | None:
            return self.callback(base + round(done / total * part_total), grand)

        return report


def _same_plain(arrays: list[np.ndarray]) -> bool:
    """Whether the images can share a batch: one shape, one integer dtype (float may hold HDR, which
    :meth:`Upscaler.upscale_array` keeps), no alpha channel."""
    first = arrays[0]
    plain = isinstance(first, np.ndarray) and first.dtype.kind != "f" and (first.ndim == 2 or (first.ndim == 3 and first.shape[2] in (1, 3)))
    return plain and all(isinstance(a, np.ndarray) and a.shape == first.shape and a.dtype == first.dtype for a in arrays)


class _FramesSink:
    """Hands the channels of N frames stacked side by side (N*C) to one sink per frame."""

    def __init__(self, sinks: list[Sink], channels: int) -> None:
        self.sinks, self.channels = sinks, channels

    def write(self, y: int, rows: np.ndarray, x: int = 0) -> None:
        for i, sink in enumerate(self.sinks):
            sink.write(y, rows[:, i * self.channels : (i + 1) * self.channels], x)

"""``Upscaler``: a model loaded once, placed on a device, and run on images of any size."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import numpy as np
import torch

from . import convert
from .device import free_memory, pick_device, pick_dtype
from .errors import SrFilterError
from .models import LoadedModel, load_model
from .resize import resize
from .tiling import ArraySink, Progress, Sink, round_up, run_tiled

log = logging.getLogger(__name__)

_MAX_AUTO_TILE = 1024
#: the CPU never plans more than this for one forward pass (RAM is shared with the output)
_CPU_BUDGET = 2 << 30


class Upscaler:
    """A loaded super-resolution model bound to a device and precision.

    ``model`` is a preset (``photo``, ``cartoon``, ``face``), a manifest name (``name`` or
    ``name@version``) or a path to a weights file. ``tile`` is the tile edge in input pixels,
    ``0`` for whole-image inference or ``"auto"`` to size tiles from free memory.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | str = "auto",
        batch: int = 1,
        offline: bool | None = None,
    ) -> None:
        self.device = pick_device(device)
        self.model: LoadedModel = load_model(model, offline=offline)
        self.dtype = pick_dtype(self.device, precision, supports_half=self.model.arch.supports_half)
        self.tile = check_tile(tile)
        self.batch = max(1, int(batch))
        self._net = self._place(self.dtype)
        self._net_fp32: torch.nn.Module | None = self._net if self.dtype == torch.float32 else None
        self.fallbacks = 0  # tiles re-run in fp32 because reduced precision gave NaN/Inf

    # -- facts -----------------------------------------------------------------------------
    @property
    def scale(self) -> int:
        """The network's own scale factor."""
        return self.model.scale

    @property
    def name(self) -> str:
        return self.model.entry.id if self.model.entry else str(self.model.path)

    def describe(self) -> str:
        precision = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}[self.dtype]
        return f"{self.name} (x{self.scale}, {self.model.arch.name}) on {self.device} in {precision}"

    # -- running -----------------------------------------------------------------------------
    def run(self, x: torch.Tensor, progress: Progress | None = None) -> torch.Tensor:
        """Upscale a (1, C, H, W) float32 CPU tensor in [0, 1] at the native scale, tiled."""
        x = self._check_input(x)
        height, width = x.shape[-2:]
        m = self._multiple()
        padded = torch.empty((1, x.shape[1], round_up(height, m) * self.scale, round_up(width, m) * self.scale))
        self.run_into(x, padded, progress)
        if m == 1:
            return padded
        return padded[:, :, : height * self.scale, : width * self.scale].contiguous()

    def run_into(self, x: torch.Tensor, out: torch.Tensor | Sink, progress: Progress | None = None) -> None:
        """Like :meth:`run`, but stream finished rows into ``out`` (a float32 tensor of the padded
        output size, or a :class:`~sr_filter.tiling.Sink` such as an ``ArraySink`` over a
        uint8/uint16 numpy image), so no float32 copy of the whole output is ever held."""
        x = self._check_input(x)
        m = self._multiple()
        height, width = x.shape[-2:]
        if height % m or width % m:  # networks that fold pixels need divisible sizes (as upstream)
            bottom, right = round_up(height, m) - height, round_up(width, m) - width
            mode = "reflect" if bottom < height and right < width else "replicate"
            x = torch.nn.functional.pad(x, (0, right, 0, bottom), mode=mode)
        tile = self._tile_for(*x.shape[-2:])
        with torch.inference_mode():
            run_tiled(
                self._run_batch,
                x,
                self.scale,
                tile=tile,
                context=self.model.arch.context(self.model.params),
                band=self.model.arch.blend,
                batch=self.batch,
                multiple=m,
                progress=progress,
                out=out,
            )

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"expected a (1, C, H, W) tensor, got {tuple(x.shape)}")
        return x.detach().to("cpu", torch.float32)

    def _multiple(self) -> int:
        return int(self.model.arch.multiple(self.model.params))

    def upscale(self, image: Any, scale: float | None = None, progress: Progress | None = None) -> Any:
        """Upscale a PIL image or numpy array by ``scale`` (default: the model's); same kind out."""
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is a dependency
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            from .imageio import ImageMeta, array_to_pil, pil_to_array

            meta = ImageMeta(icc_profile=image.info.get("icc_profile"))
            array, mode = pil_to_array(image, meta)  # CMYK goes through its ICC profile
            out = array_to_pil(self.upscale_array(array, scale, progress), mode)
            if meta.icc_profile:
                out.info["icc_profile"] = meta.icc_profile
            return out
        return self.upscale_array(image, scale, progress)

    def upscale_array(self, array: np.ndarray, scale: float | None = None, progress: Progress | None = None) -> np.ndarray:
        """Upscale an HxW / HxWxC uint8, uint16 or float array; returns the same layout and dtype."""
        planes = convert.split(array)
        height, width = planes.rgb.shape[-2:]
        scale = float(scale or self.scale)
        if not (0 < scale <= 16) or not math.isfinite(scale):
            raise SrFilterError(f"scale must be between 0 and 16, not {scale}")
        out_h, out_w = max(1, round(height * scale)), max(1, round(width * scale))
        passes = max(1, math.ceil(math.log(scale, self.scale) - 1e-9)) if scale > 1 else 1
        rgb = planes.rgb
        alpha = planes.alpha
        uniform_alpha = alpha is not None and bool((alpha == alpha.flatten()[0]).all())
        if alpha is not None and not uniform_alpha:
            rgb = convert.bleed_transparent(rgb, alpha)
        jobs = [rgb] + ([alpha.expand(-1, 3, -1, -1)] if alpha is not None and not uniform_alpha else [])
        tracker = _ProgressSum(progress, [height * width * (self.scale**2) ** k for k in range(passes)] * len(jobs))
        if (out_h, out_w) == (height * self.scale, width * self.scale):
            # native scale: stream rows straight into the result in its own dtype (no float copy)
            shape = (out_h, out_w) + ((planes.channels,) if planes.channels else ())
            result = np.empty(shape, dtype=planes.dtype)
            self.run_into(jobs[0], ArraySink(result, 0, mean=planes.grey), tracker.next_part())
            if len(jobs) > 1:
                self.run_into(jobs[1], ArraySink(result, planes.channels - 1, mean=True), tracker.next_part())
            elif alpha is not None:
                result[..., -1] = convert.from_float(alpha.flatten()[:1].numpy(), planes.dtype)[0]
            return result
        results = []
        for job in jobs:
            for _ in range(passes):
                job = self.run(job, tracker.next_part())
            results.append(resize(job, out_h, out_w))
        rgb_out = results[0]
        if alpha is None:
            alpha_out = None
        elif uniform_alpha:
            alpha_out = torch.full((1, 1, out_h, out_w), float(alpha.flatten()[0]))
        else:
            alpha_out = results[1].mean(dim=1, keepdim=True)
        return convert.merge(planes, rgb_out, alpha_out)

    # -- internals ---------------------------------------------------------------------------
    def _place(self, dtype: torch.dtype) -> torch.nn.Module:
        # channels_last: 1.5-1.9x faster convolutions on CPU (oneDNN) as on CUDA (tensor cores);
        # measured in docs/performance.md. A copy keeps the shared CPU fp32 network untouched.
        net = copy.deepcopy(self.model.network)
        return net.to(self.device, dtype).to(memory_format=torch.channels_last).eval()

    def _run_batch(self, x: torch.Tensor) -> torch.Tensor:
        inp = x.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
        out = self._net(inp)
        if self.dtype != torch.float32 and not bool(torch.isfinite(out).all()):
            self.fallbacks += 1
            log.info("reduced precision gave NaN/Inf on a tile; re-running it in fp32")
            if self._net_fp32 is None:
                self._net_fp32 = self._place(torch.float32)
            del out
            out = self._net_fp32(x.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last))
        return out.float().clamp_(0, 1).cpu()

    def _tile_for(self, height: int, width: int) -> int:
        if self.tile != "auto":
            return int(self.tile)
        # measured peak activation bytes per input pixel (benchmarks/bench_memory.py), with margin
        per_pixel = int(self.model.arch.bytes_per_pixel(self.model.params))
        if self.dtype != torch.float32:
            per_pixel //= 2
        per_pixel *= self.batch
        if self.device.type == "cpu":
            budget = min(free_memory(self.device) // 4, _CPU_BUDGET)
        else:  # CUDA: mem_get_info's free bytes; half of it leaves room for cuDNN workspaces
            budget = int(free_memory(self.device) * 0.5)
        if height * width * per_pixel <= budget:
            return 0  # whole image fits
        edge = int(math.sqrt(budget / per_pixel))
        return int(max(64, min(_MAX_AUTO_TILE, edge // 16 * 16)))


def check_tile(tile: int | str) -> int | str:
    """A tile setting as the Upscaler takes it: ``"auto"``, 0 (whole image) or 32 and more."""
    if isinstance(tile, str):
        if tile.strip().lower() == "auto":
            return "auto"
        try:
            tile = int(tile)
        except ValueError:
            raise SrFilterError(f"tile must be a number of pixels or 'auto', not {tile!r}") from None
    if tile < 0 or (0 < tile < 32):
        raise SrFilterError(f"tile must be 0 (whole image), at least 32, or 'auto'; got {tile}")
    return tile


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

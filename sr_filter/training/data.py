"""Training batches: random HR patches from folders, flips and 90-degree rotations, LR made by a
configurable degradation.

Every batch is drawn from a generator seeded by ``(seed, iteration, rank)``, so a resumed run (or
any DDP rank) draws exactly the batches it would have drawn without the interruption; nothing
about the sampler has to be saved in checkpoints.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, SrFilterError, first_line
from ..datasets import exclude_pattern, list_images, read_rgb, select_images, unmatched
from ..imageops import imresize, modcrop
from .config import DataConfig, DegradationConfig

log = logging.getLogger(__name__)


def is_plain_bicubic(d: DegradationConfig) -> bool:
    """Whether LR images are exactly the benchmark's MATLAB bicubic downscale (precomputable)."""
    return d.resize == "matlab_bicubic" and d.blur_prob == d.noise_prob == d.jpeg_prob == d.video_prob == 0


@dataclass
class _Image:
    hr: np.ndarray  # HxWx3 uint8, modcropped
    lr: np.ndarray | None  # precomputed LR for the plain bicubic degradation


def _augment(arrays: list[np.ndarray], rng: np.random.Generator, flips: bool, rot90: bool) -> list[np.ndarray]:
    k = int(rng.integers(4)) if rot90 else 0
    fh = flips and bool(rng.integers(2))
    fv = flips and bool(rng.integers(2))
    out = []
    for a in arrays:
        if fh:
            a = a[:, ::-1]
        if fv:
            a = a[::-1]
        if k:
            a = np.rot90(a, k)
        out.append(np.ascontiguousarray(a))
    return out


def _leave_out(path: Path) -> str:
    """The way to train without one unreadable file: its name as a [data] exclude pattern (a
    JSON string is a TOML one)."""
    return f"leave it out with [data] exclude = [{json.dumps(exclude_pattern(path.name), ensure_ascii=False)}]"


class PatchSampler:
    """Holds the training images in memory and draws (LR, HR) batches."""

    def __init__(self, cfg: DataConfig, seed: int = 0, rank: int = 0) -> None:
        self.cfg, self.seed, self.rank = cfg, seed, rank
        self.plain = is_plain_bicubic(cfg.degradation)
        s, hr_patch = cfg.scale, cfg.patch * cfg.scale
        self.images: list[_Image] = []
        files: list[Path] = []
        everything: list[Path] = []
        for folder in cfg.train_dirs:
            try:
                files += select_images(Path(folder), exclude=cfg.exclude)
                everything += list_images(Path(folder))
            except SrFilterError as exc:
                raise DataError(f"training data: {exc}") from None
        unused = unmatched(cfg.exclude, everything)
        if unused:  # a typo in a held-out pattern would train on the held-out images
            raise DataError(f"[data] exclude {unused[0]!r} matches no training image; check the pattern "
                            "(it matches whole file names, e.g. 'src_*')")
        # on-the-fly degradations blur before downscaling: keep a margin so the patch has context
        self.margin = 0 if self.plain else 2 * s
        too_small = []
        # per rescale factor, the copies too small of images that are trained on (at another factor)
        small_copies = {float(factor): 0 for factor in cfg.rescale}
        for path in files:
            try:
                base = read_rgb(path)
            except SrFilterError as exc:  # as [val] and eval say it, with the way to leave it out
                raise DataError(f"{first_line(exc)}; {_leave_out(path)}") from None
            except OSError as exc:
                raise DataError(f"{path} cannot be read ({exc.strerror or first_line(exc)}); {_leave_out(path)}") from None
            kept = len(self.images)
            dropped = []
            for factor in cfg.rescale:
                hr = base if factor == 1.0 else imresize(base, float(factor))
                hr = modcrop(hr, s)
                if min(hr.shape[:2]) < hr_patch + 2 * self.margin:
                    dropped.append(float(factor))
                    continue
                self.images.append(_Image(hr, imresize(hr, 1.0 / s) if self.plain else None))
            if len(self.images) == kept:
                too_small.append(path.name)
            else:
                for factor in dropped:
                    small_copies[factor] += 1
        if too_small and self.images and rank == 0:  # left out without a word, even with -v
            log.warning("%d training image(s) smaller than %d px on a side are left out: %s%s", len(too_small),
                        hr_patch + 2 * self.margin, ", ".join(too_small[:5]), ", ..." if len(too_small) > 5 else "")
        copies = sum(small_copies.values())
        if copies and rank == 0:  # the shipped photo config had lost 75 copies of T91 this way, unsaid
            used = len(files) - len(too_small)
            log.warning("%d rescaled cop%s of training images smaller than %d px on a side %s left out: %s",
                        copies, "y" if copies == 1 else "ies", hr_patch + 2 * self.margin,
                        "is" if copies == 1 else "are",
                        ", ".join(f"{n} of {used} at [data] rescale {f:g}" for f, n in small_copies.items() if n))
        if not self.images:
            # measured after rescaling: where every factor shrinks them, rescale may be the cause
            shrunk = list(cfg.rescale) if all(f < 1 for f in cfg.rescale) else []
            after = f" after [data] rescale {', '.join(f'{f:g}' for f in shrunk)}" if shrunk else ""
            raise DataError(f"no training image is at least {hr_patch + 2 * self.margin} px on each side{after} in "
                            f"{', '.join(cfg.train_dirs)}; use a smaller [data] patch"
                            + (" or larger rescale factors" if shrunk else ""))
        areas = np.array([im.hr.shape[0] * im.hr.shape[1] for im in self.images], dtype=np.float64)
        self.weights = areas / areas.sum()

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``iteration``: LR (N,3,p,p) and HR (N,3,p*s,p*s) float32 in [0, 1]."""
        rng = np.random.default_rng([self.seed, iteration, self.rank])
        cfg, s, p = self.cfg, self.cfg.scale, self.cfg.patch
        lrs, hrs = [], []
        for _ in range(cfg.batch):
            if cfg.lineart > 0 and rng.random() < cfg.lineart:
                lr, hr = self._lineart_pair(rng)
                lr, hr = _augment([lr, hr], rng, cfg.flips, cfg.rot90)
                lrs.append(lr)
                hrs.append(hr)
                continue
            im = self.images[int(rng.choice(len(self.images), p=self.weights))]
            if self.plain:
                assert im.lr is not None
                y = int(rng.integers(im.lr.shape[0] - p + 1))
                x = int(rng.integers(im.lr.shape[1] - p + 1))
                lr = im.lr[y : y + p, x : x + p]
                hr = im.hr[y * s : (y + p) * s, x * s : (x + p) * s]
            else:
                from .degradations import degrade

                m, hp = self.margin, p * s
                y = int(rng.integers(im.hr.shape[0] - hp - 2 * m + 1))
                x = int(rng.integers(im.hr.shape[1] - hp - 2 * m + 1))
                big = im.hr[y : y + hp + 2 * m, x : x + hp + 2 * m]
                lr_big = degrade(big, s, cfg.degradation, rng)
                lr = lr_big[m // s : m // s + p, m // s : m // s + p]
                hr = big[m : m + hp, m : m + hp]
            lr, hr = _augment([lr, hr], rng, cfg.flips, cfg.rot90)
            lrs.append(lr)
            hrs.append(hr)
        to_t = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().div_(255.0)  # noqa: E731
        return to_t(lrs), to_t(hrs)

    def _lineart_pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """An (LR, HR) pair from a freshly synthesised line-art patch, with the same degradation
        (and the same context margin) as the training images."""
        from .lineart import make_lineart

        s, p, m = self.cfg.scale, self.cfg.patch, self.margin
        big = make_lineart(p * s + 2 * m, rng)
        if self.plain:
            return imresize(big, 1.0 / s), big
        from .degradations import degrade

        lr_big = degrade(big, s, self.cfg.degradation, rng)
        return lr_big[m // s : m // s + p, m // s : m // s + p], big[m : m + p * s, m : m + p * s]

"""Folders of ground-truth images: listing, selecting by name pattern, reading as uint8 RGB.
Evaluation and the training sampler read their images through here."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import EvaluationError, ImageFormatError
from .imageio import IMAGE_SUFFIXES


def read_image(path: Path) -> tuple[np.ndarray, bool]:
    """An image file as HxWx3 uint8 RGB, and whether it was a grayscale image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            gray = im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L")
            return np.asarray(im.convert("RGB")), gray
    except (OSError, ValueError) as exc:
        raise ImageFormatError(f"cannot read {path}: {exc}") from None


def read_rgb(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB (gray and palette images are converted)."""
    return read_image(path)[0]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise EvaluationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def select_images(folder: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[Path]:
    """The images of ``folder`` whose names match one of ``include`` (all when empty) and none of
    ``exclude`` (fnmatch patterns such as ``src_*``): held-out splits without copying files."""
    files = [p for p in list_images(folder)
             if (not include or any(fnmatch.fnmatch(p.name, pat) for pat in include))
             and not any(fnmatch.fnmatch(p.name, pat) for pat in exclude)]
    if not files:
        raise EvaluationError(f"no image in {folder} matches include {list(include)} / exclude {list(exclude)}")
    return files

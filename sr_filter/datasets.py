"""Folders of ground-truth images: listing, selecting by name pattern, reading as uint8 RGB.
Evaluation and the training sampler read their images through here."""

from __future__ import annotations

import fnmatch
import glob
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import EvaluationError
from .imageio import IMAGE_SUFFIXES


#: what listing a folder passes over, by kind: (one, several), for the "left out: ..." line that
#: the command line and the cluster both say before the work
LEFT_OUT = {
    "video": ("video (name it to upscale it)", "videos (name them to upscale them)"),
    "heic": ('HEIC/HEIF picture (reading it needs pillow-heif: pip install "sr-filter[heic]")',
             'HEIC/HEIF pictures (reading them needs pillow-heif: pip install "sr-filter[heic]")'),
    "hidden": ("hidden file or folder", "hidden files and folders"),
    "link": ("symbolic link to a folder", "symbolic links to folders"),
    "folder": ("folder a pattern matched (name it to upscale its images)", "folders a pattern matched (name them to upscale their images)"),
    "dead link": ("symbolic link to nothing", "symbolic links to nothing"),
    "in output": ("file already in the output folder", "files already in the output folder"),
    "earlier": ("output of an earlier run", "outputs of an earlier run"),
    "other": ("other file", "other files"),
}


def unreadable_folder(exc: OSError) -> str:
    """The line for a folder a walk could not read, in the same words on one machine and on a cluster."""
    return f"cannot read folder {exc.filename}: {exc.strerror or exc}"


def no_match(pattern: str, others: bool = False) -> str:
    """The one wording, on one machine and on the cluster, for a glob pattern that finds no input;
    ``others``: it found files, none of a kind the run takes."""
    return f"no {'image or video ' if others else ''}files match {pattern}"


def left_out_text(counts: Mapping[str, int]) -> str | None:
    """"left out: 2 hidden files and folders, 1 other file" for counts by :data:`LEFT_OUT` kind; None for none."""
    parts = [f"{counts[kind]} {names[counts[kind] > 1]}" for kind, names in LEFT_OUT.items() if counts.get(kind)]
    return f"left out: {', '.join(parts)}" if parts else None


def read_image(path: Path) -> tuple[np.ndarray, bool]:
    """An image file as HxWx3 uint8 RGB, and whether it was a grayscale image. 16-bit and float
    images are brought to 8 bits by value (not clipped, as Pillow's conversion does); alpha is
    left out; EXIF orientation is applied."""
    from .imageio import read_image as decode

    array, _meta = decode(Path(path), use="used", model_scale=1)  # read, not upscaled: no advice about upscaling
    if array.ndim == 2:
        array = array[..., None]
    gray = array.shape[2] <= 2
    rgb = np.repeat(array[..., :1], 3, axis=2) if gray else array[..., :3]
    if rgb.dtype == np.uint16:
        rgb = np.rint(rgb / 257.0)
    elif rgb.dtype.kind == "f":
        rgb = np.rint(np.clip(np.nan_to_num(rgb), 0.0, 1.0) * 255.0)
    return np.ascontiguousarray(rgb, dtype=np.uint8), gray


def read_rgb(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB (gray and palette images are converted)."""
    return read_image(path)[0]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; hidden ones (macOS's ``._photo.png``
    beside each picture copied from a Mac) are left out, as ``upscale`` leaves them out of a folder."""
    folder = Path(folder)
    if not folder.is_dir():  # a missing folder had read as one without images in it
        raise EvaluationError(f"{folder} does not exist" if not folder.exists() else f"{folder} is a file, not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not files:
        inner = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        below = (f"; it holds folders ({', '.join(inner[:4])}{', ...' if len(inner) > 4 else ''}): give those, each a set"
                 if inner else "")  # the benchmarks folder given for its sets had said only "no images"
        raise EvaluationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}{below}")
    return files


def matches(path: Path, pattern: str) -> bool:
    """Whether a file's name, or its name without the extension (as results name images), matches
    the fnmatch ``pattern``."""
    return fnmatch.fnmatch(path.name, pattern) or fnmatch.fnmatch(path.stem, pattern)


def exclude_pattern(name: str) -> str:
    """A pattern that matches the file ``name`` and can be pasted into a shell or a TOML file:
    glob.escape keeps a '[' in the name from reading as a pattern, and a byte that is no text in
    the file system's encoding (Python's U+DC80..U+DCFF stand-ins, which no shell or TOML file can
    hold) becomes '?', so only a name differing in just that byte matches too."""
    return re.sub("[\udc80-\udcff]", "?", glob.escape(name))


def unmatched(patterns: Sequence[str], files: Sequence[Path]) -> list[str]:
    """The ``patterns`` that match none of ``files``: a typo, which would otherwise measure (or
    train on) images the user meant to leave out."""
    return [pattern for pattern in patterns if not any(matches(path, pattern) for path in files)]


def select_images(folder: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[Path]:
    """The images of ``folder`` whose names match one of ``include`` (all when empty) and none of
    ``exclude`` (fnmatch patterns such as ``src_*``): held-out splits without copying files."""
    files = [p for p in list_images(folder)
             if (not include or any(matches(p, pat) for pat in include))
             and not any(matches(p, pat) for pat in exclude)]
    if not files:
        wanted = " or ".join(repr(p) for p in include)
        unwanted = " or ".join(repr(p) for p in exclude)
        if wanted and unwanted:
            what = f"matches {wanted} and not {unwanted}"
        elif unwanted:  # "matches anything, except '*'" had read as if nothing matched at all
            what = f"is left once {unwanted} is left out"
        else:
            what = f"matches {wanted or 'anything'}"
        raise EvaluationError(f"no image in {folder} {what}; patterns match file names or "
                              "names without the extension, e.g. 'baby*' or 'baby'")
    return files

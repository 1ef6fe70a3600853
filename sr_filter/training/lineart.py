"""Procedural line art: ink strokes, hatching, halftone dots, line screens, speech bubbles with
lettering and flat colour fills with ink outlines, deterministic from a seed and of any size.

No licensed black-and-white line art exists in this project, and cartoon models trained only on
painted art blur thin ink lines and screentones. These pictures stand in for it, both in training
(drawn on the fly, see :mod:`sr_filter.training.data`) and as a held-out evaluation set
(:data:`HELD_OUT`, written by ``scripts/make_lineart.py``). Shapes are drawn at twice the size and
box-averaged down, so edges are anti-aliased like digital or scanned ink; all sizes (stroke widths,
screen periods, letter heights) are in output pixels, so a 128 px training patch and a 512 px
held-out page show strokes of the same widths.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: the kinds of picture, one drawing function each
KINDS: tuple[str, ...] = ("ink", "hatching", "halftone", "screentone", "bubbles", "flat")

#: the held-out evaluation set: (file stem, kind, seed), two 512x512 pages of each kind
HELD_OUT: tuple[tuple[str, str, int], ...] = tuple(
    (f"lineart_{kind}_{i}", kind, 9000 + 10 * k + i) for k, kind in enumerate(KINDS) for i in range(2))

_SS = 2  # supersampling factor
_INK = (0, 0, 0)
_PAPER = (255, 255, 255)
_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
          "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
          "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf")
_WORDS = ("WHAT", "NO", "WAIT", "HEY", "RUN", "THIS IS", "IT'S", "OVER", "HERE", "NOW", "WHY", "GO", "REALLY",
          "I KNEW IT", "BOOM", "STOP", "LOOK", "THE", "CAT", "DOOR", "SKY", "OK", "HUH?", "YES!", "DON'T", "COME")


# --------------------------------------------------------------------------- geometry helpers


def _point(rng: np.random.Generator, w: int, h: int, pad: float = 0.1) -> tuple[float, float]:
    return float(rng.uniform(-pad * w, (1 + pad) * w)), float(rng.uniform(-pad * h, (1 + pad) * h))


def _bezier(rng: np.random.Generator, w: int, h: int, reach: float) -> np.ndarray:
    """Points along a random cubic Bezier curve of roughly ``reach`` pixels."""
    p0 = np.array(_point(rng, w, h))
    ctrl = [p0] + [p0 + rng.normal(0, reach / 2, 2) for _ in range(3)]
    n = max(8, int(reach / 2))
    t = np.linspace(0, 1, n)[:, None]
    b = ((1 - t) ** 3 * ctrl[0] + 3 * (1 - t) ** 2 * t * ctrl[1] + 3 * (1 - t) * t**2 * ctrl[2] + t**3 * ctrl[3])
    return b


def _stroke(draw: ImageDraw.ImageDraw, pts: np.ndarray, width: float, fill: tuple, taper: bool = True) -> None:
    """A pen stroke along ``pts`` (supersampled pixels) whose width swells in the middle when ``taper``."""
    n = len(pts)
    for i in range(n):
        t = i / max(1, n - 1)
        w = width * (0.25 + 0.75 * math.sin(math.pi * t) ** 0.6) if taper else width
        x, y = pts[i]
        r = max(0.5, w / 2)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        if i:
            draw.line([tuple(pts[i - 1]), (x, y)], fill=fill, width=max(1, int(round(w))))


def _shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, fill, outline=None,
           width: int = 0) -> None:
    """A random ellipse, rectangle or polygon, at least a fifth of the page."""
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    rx, ry = rng.uniform(0.1, 0.35) * w, rng.uniform(0.1, 0.35) * h
    kind = int(rng.integers(3))
    if kind == 0:
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill, outline=outline, width=width)
    elif kind == 1:
        draw.rectangle((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill, outline=outline, width=width)
    else:
        k = int(rng.integers(3, 8))
        ang = np.sort(rng.uniform(0, 2 * math.pi, k))
        rad = rng.uniform(0.5, 1.0, k)
        pts = [(cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)) for a, r in zip(ang, rad)]
        draw.polygon(pts, fill=fill, outline=outline, width=width)


def _region(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A boolean mask of one random shape (supersampled size ``w`` x ``h``)."""
    mask = Image.new("L", (w, h), 0)
    _shape(ImageDraw.Draw(mask), rng, w, h, fill=255)
    return np.asarray(mask) > 127


def _rotated(w: int, h: int, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a = math.radians(angle_deg)
    return xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)


def _tone(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth ink coverage in [0.05, 0.8]: constant or a linear gradient in a random direction."""
    t0, t1 = rng.uniform(0.05, 0.8, 2)
    if rng.random() < 0.4:
        return np.full((h, w), t0)
    u, _ = _rotated(w, h, float(rng.uniform(0, 360)))
    u = (u - u.min()) / max(1e-9, np.ptp(u))
    return t0 + (t1 - t0) * u


def dot_screen(w: int, h: int, period: float, angle: float, tone: np.ndarray | float) -> np.ndarray:
    """Halftone: round dots on a grid of ``period`` pixels rotated by ``angle`` degrees, each dot's
    area the local ink coverage ``tone`` (0..1). Returns a boolean ink mask."""
    u, v = _rotated(w, h, angle)
    fu, fv = (u / period) % 1.0 - 0.5, (v / period) % 1.0 - 0.5
    return np.hypot(fu, fv) < np.sqrt(np.asarray(tone) / math.pi)


def line_screen(w: int, h: int, period: float, angle: float, tone: np.ndarray | float) -> np.ndarray:
    """Screentone / hatching: parallel lines ``period`` pixels apart at ``angle`` degrees, line width
    ``tone`` times the period. Returns a boolean ink mask."""
    u, _ = _rotated(w, h, angle)
    return np.abs((u / period) % 1.0 - 0.5) < np.asarray(tone) / 2


def _ink_mask(canvas: Image.Image, mask: np.ndarray, colour=_INK) -> Image.Image:
    arr = np.array(canvas)
    arr[mask] = colour
    return Image.fromarray(arr)


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for path in _FONTS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)  # Pillow's bundled font


# --------------------------------------------------------------------------- the kinds


def _draw_ink(canvas: Image.Image, rng: np.random.Generator, s: int) -> Image.Image:
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    for _ in range(max(3, int(w * h / (s * s) / 6000))):
        _stroke(draw, _bezier(rng, w, h, rng.uniform(30, 200) * s), rng.uniform(1.0, 7.0) * s, _INK)
    for _ in range(int(rng.integers(1, 4))):
        _shape(draw, rng, w, h, fill=None, outline=_INK, width=int(rng.uniform(1, 4) * s))
    return canvas


def _draw_hatching(canvas: Image.Image, rng: np.random.Generator, s: int) -> Image.Image:
    w, h = canvas.size
    for _ in range(int(rng.integers(2, 5))):
        region = _region(rng, w, h)
        angle, period = rng.uniform(0, 180), rng.uniform(3, 10) * s
        lines = line_screen(w, h, period, angle, rng.uniform(1.0, 2.5) * s / period)
        if rng.random() < 0.5:  # cross-hatching
            lines |= line_screen(w, h, period, angle + rng.uniform(45, 90), rng.uniform(1.0, 2.5) * s / period)
        canvas = _ink_mask(canvas, region & lines)
    return _draw_ink(canvas, rng, s)


def _draw_halftone(canvas: Image.Image, rng: np.random.Generator, s: int) -> Image.Image:
    w, h = canvas.size
    for _ in range(int(rng.integers(2, 5))):
        region = _region(rng, w, h)
        angle = float(rng.choice([0.0, 15.0, 45.0, 75.0]))
        dots = dot_screen(w, h, rng.uniform(3, 12) * s, angle, _tone(rng, w, h))
        canvas = _ink_mask(canvas, region & dots)
    return _draw_ink(canvas, rng, s)


def _draw_screentone(canvas: Image.Image, rng: np.random.Generator, s: int) -> Image.Image:
    w, h = canvas.size
    for _ in range(int(rng.integers(2, 5))):
        region = _region(rng, w, h)
        lines = line_screen(w, h, rng.uniform(2.5, 8) * s, float(rng.choice([0.0, 30.0, 45.0, 60.0, 90.0, 135.0])),
                            _tone(rng, w, h))
        canvas = _ink_mask(canvas, region & lines)
    return _draw_ink(canvas, rng, s)


def _draw_bubbles(canvas: Image.Image, rng: np.random.Generator, s: int) -> Image.Image:
    w, h = canvas.size
    canvas = _draw_ink(canvas, rng, s)
    draw = ImageDraw.Draw(canvas)
    for _ in range(max(1, int(w * h / (s * s) / 40000))):
        size = int(rng.uniform(9, 22))
        font = _font(size * s)
        text = "\n".join(" ".join(rng.choice(_WORDS, int(rng.integers(1, 4)))) for _ in range(int(rng.integers(1, 4))))
        box = draw.multiline_textbbox((0, 0), text, font=font, align="center")
        tw, th = box[2] - box[0], box[3] - box[1]
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        rx, ry = tw * 0.5 + 8 * s, th * 0.5 + 8 * s
        tail = (cx + rng.uniform(-2, 2) * rx, cy + ry + rng.uniform(0.5, 1.5) * ry)
        outline = max(1, int(rng.uniform(1, 3) * s))
        draw.polygon([(cx - rx * 0.3, cy + ry * 0.6), (cx + rx * 0.1, cy + ry * 0.6), tail], fill=_PAPER, outline=_INK,
                     width=outline)
        draw.ellipse((cx - rx * 1.2, cy - ry * 1.2, cx + rx * 1.2, cy + ry * 1.2), fill=_PAPER, outline=_INK,
                     width=outline)
        draw.multiline_text((cx - tw / 2 - box[0], cy - th / 2 - box[1]), text, font=font, fill=_INK, align="center")
    return canvas


def _draw_flat(canvas: Image.Image, rng: np.random.Generator, s: int) -> Image.Image:
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, w, h), fill=tuple(int(c) for c in rng.integers(150, 256, 3)))
    for _ in range(int(rng.integers(3, 8))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        _shape(draw, rng, w, h, fill=colour, outline=_INK, width=int(rng.uniform(1, 5) * s))
    for _ in range(int(rng.integers(1, 4))):
        _stroke(draw, _bezier(rng, w, h, rng.uniform(30, 150) * s), rng.uniform(1.0, 5.0) * s, _INK)
    return canvas


_DRAW: dict[str, Callable[[Image.Image, np.random.Generator, int], Image.Image]] = {
    "ink": _draw_ink, "hatching": _draw_hatching, "halftone": _draw_halftone, "screentone": _draw_screentone,
    "bubbles": _draw_bubbles, "flat": _draw_flat,
}


def make_lineart(size: int | tuple[int, int], seed: int | np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A line-art picture, HxWx3 uint8 (``size`` = side or (width, height)).

    ``seed``: an integer (the same picture every time) or a generator to draw from (training);
    ``kind``: one of :data:`KINDS`, or None to draw one at random.
    """
    w, h = (size, size) if isinstance(size, int) else size
    if w < 1 or h < 1:
        raise ValueError(f"line art needs a positive size, not {w}x{h}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if kind is None:
        kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind not in _DRAW:
        raise ValueError(f"unknown line-art kind {kind!r}; known: {', '.join(KINDS)}")
    canvas = Image.new("RGB", (w * _SS, h * _SS), _PAPER)
    canvas = _DRAW[kind](canvas, rng, _SS)
    return np.asarray(canvas.reduce(_SS))


def write_held_out(folder: Path, size: int = 512) -> list[Path]:
    """Write the :data:`HELD_OUT` pages as PNG files into ``folder`` (created if needed)."""
    import io

    from ..atomic import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, kind, seed in HELD_OUT:
        buf = io.BytesIO()
        Image.fromarray(make_lineart(size, seed, kind)).save(buf, format="PNG")
        path = folder / f"{stem}.png"
        write_atomic(buf.getvalue(), path, overwrite=True)
        paths.append(path)
    return paths

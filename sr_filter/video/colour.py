"""Colour tags of a video and the YUV <-> RGB conversions that honour them.

A 10-bit BT.2020 or full-range source that is converted with the default (BT.601, limited
range) matrix comes out with shifted, muted colours; here the source's matrix and range are used
both ways and written back as tags. A source without a matrix tag is converted as players show it
(BT.601 below 720 lines, BT.709 from there), and the output is tagged with that matrix, because
players would otherwise pick BT.709 for the now high-definition frames and shift the colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

# AVColorSpace numbers -> swscale's matrix names
_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_UNSPECIFIED = 2
_BT709, _SMPTE170M = 1, 6
_MPEG, _JPEG = 1, 2  # AVColorRange: limited, full
#: encoder and decoder names of codecs whose pictures are limited range only (ProRes has no full-range flag)
_LIMITED_ONLY = frozenset({"prores", "prores_ks"})


@dataclass(frozen=True)
class Colour:
    """AVColorRange / AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic numbers."""

    range: int = 0
    matrix: int = _UNSPECIFIED
    primaries: int = _UNSPECIFIED
    trc: int = _UNSPECIFIED
    full: bool = False  # a yuvj* pixel format: full range whatever the tag says
    #: a grey pixel format (gray, gray10le, ya8, ...): swscale passes its samples through whatever
    #: the range says, so the range is applied here; untagged grey is full range (FFmpeg's reading)
    grey: bool = False

    @classmethod
    def of(cls, context) -> Colour:
        """The tags of a decoder context."""
        return cls(
            range=int(context.color_range or 0),
            matrix=int(context.colorspace if context.colorspace is not None else _UNSPECIFIED),
            primaries=int(context.color_primaries or _UNSPECIFIED),
            trc=int(context.color_trc or _UNSPECIFIED),
            full=(context.pix_fmt or "").startswith("yuvj"),
            grey=_is_grey(context.pix_fmt or ""),
        )

    def for_codec(self, codec: str) -> Colour:
        """The tags, and so the conversion, for pictures of ``codec``: the source's, but limited
        range where the codec stores no other (a full-range source written as ProRes came out
        brighter and clipped, its full-range samples read as limited)."""
        if codec in _LIMITED_ONLY and (self.full or self.range == _JPEG or (self.grey and self.range != _MPEG)):
            return Colour(_MPEG, self.matrix, self.primaries, self.trc, False, self.grey)
        return self

    def settled(self, height: int) -> Colour:
        """These tags with the matrix and range that the conversion will actually use filled in."""
        matrix = self.matrix if self.matrix in _MATRIX else (_SMPTE170M if height < 720 else _BT709)
        rng = _JPEG if self.full or self.range == _JPEG or (self.grey and self.range != _MPEG) else _MPEG
        return Colour(rng, matrix, self.primaries, self.trc, self.full, self.grey)

    def to_rgb(self, frame: av.VideoFrame, deep: bool, alpha: bool = False) -> np.ndarray:
        """A decoded frame as HxWx3 RGB, or HxWx4 RGBA with ``alpha`` (uint16 when ``deep``), full range.
        Without ``alpha``, a frame that has transparency is flattened onto white, as a still image is
        for a format without alpha: taken as RGB, the colour hidden under its transparent pixels had
        shown (an APNG's transparent background came out red in an .mp4)."""
        if not alpha and any(c.is_alpha for c in frame.format.components):
            from ..encode import flatten_on_white

            return flatten_on_white(self.to_rgb(frame, deep, alpha=True))
        wanted = ("rgba64le" if deep else "rgba") if alpha else ("rgb48le" if deep else "rgb24")
        if frame.format.name == wanted and not self.full:
            return frame.to_ndarray()
        tags = self.settled(frame.height)
        if _is_grey(frame.format.name):  # swscale keeps the samples: a limited-range grey is expanded here
            rgb = frame.reformat(format=wanted, interpolation="BICUBIC").to_ndarray()
            return _grey_range(rgb, expand=True) if tags.range == _MPEG else rgb
        exact = _rgb_array(frame, tags.matrix, full=tags.range == _JPEG, deep=deep, alpha=alpha)
        if exact is not None:
            return exact
        if _subsampled(frame):  # swscale's direct 8-bit 4:2:0/4:2:2 -> RGB conversion rounds down: every frame
            # had come out 1.2-1.5 levels darker in each channel; its chroma upsampled first, in 16 bits, the mean
            # is within 0.2 of the picture's (deeper planar formats are read by _rgb_array above)
            frame = frame.reformat(
                format="yuva444p16le" if any(c.is_alpha for c in frame.format.components) else "yuv444p16le",
                src_colorspace=_MATRIX[tags.matrix],
                dst_colorspace=_MATRIX[tags.matrix],
                src_color_range=tags.range,
                dst_color_range=tags.range,
                interpolation="BICUBIC",
            )
        rgb = frame.reformat(
            format=wanted,
            src_colorspace=_MATRIX[tags.matrix],
            src_color_range=tags.range,
            dst_color_range=_JPEG,
            interpolation="BICUBIC",
        )
        return rgb.to_ndarray()

    def from_rgb(self, array: np.ndarray, pix_fmt: str, source_height: int) -> av.VideoFrame:
        """An upscaled RGB (or RGBA) array as a frame in ``pix_fmt``, converted and tagged like the source."""
        deep = array.dtype == np.uint16
        alpha = array.ndim == 3 and array.shape[2] == 4
        layout = ("rgba64le" if deep else "rgba") if alpha else ("rgb48le" if deep else "rgb24")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=layout)
        if pix_fmt.startswith(("rgb", "bgr", "gbr", "argb", "abgr")):
            out = frame.reformat(format=pix_fmt)
        elif _is_grey(pix_fmt):  # swscale keeps the samples: limited range is made here (it had been tagged only)
            if self.settled(source_height).range == _MPEG:
                frame = av.VideoFrame.from_ndarray(_grey_range(np.ascontiguousarray(array), expand=False), format=layout)
            out = frame.reformat(format=pix_fmt, interpolation="BICUBIC")
        else:
            tags = self.settled(source_height)
            # full range by swscale: every Cb and Cr sample half a level low, the picture tinted green
            # (a full-range clip came out 0.6 levels greener on average); computed here instead
            out = _yuv_frame(array, pix_fmt, tags.matrix, full=True) if tags.range == _JPEG else None
            if out is None:
                out = frame.reformat(
                    format=pix_fmt,
                    src_color_range=_JPEG,
                    dst_colorspace=_MATRIX[tags.matrix],
                    dst_color_range=tags.range,
                    interpolation="BICUBIC",
                )
        self.tag(out, source_height)
        return out

    def tag(self, target, source_height: int) -> None:
        """Write the tags onto a frame or an encoder context."""
        tags = self.settled(source_height)
        target.color_range = tags.range
        target.colorspace = tags.matrix
        target.color_primaries = tags.primaries
        target.color_trc = tags.trc


#: Kr and Kb of each matrix (AVColorSpace numbers), as swscale takes them
_WEIGHTS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
            9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
#: planar YUV layouts (with alpha or not, 8 bits or more) :func:`_yuv_frame` writes: chroma steps in x and y
_PLANAR = {"420": (2, 2), "422": (2, 1), "444": (1, 1)}


def _planar(pix_fmt: str) -> tuple[str, int] | None:
    """(chroma layout "420"/"422"/"444", bits per sample) of a planar YUV format with or without
    alpha, little-endian where deeper than 8 bits (yuv420p, yuva444p10le, ...); None for others."""
    name = pix_fmt[4:] if pix_fmt.startswith("yuva") else pix_fmt[3:] if pix_fmt.startswith("yuv") else ""
    layout, _, depth = name.partition("p")
    if layout not in _PLANAR or depth not in ("", "9le", "10le", "12le", "14le", "16le"):
        return None
    return layout, int(depth[:-2]) if depth else 8


def _yuv_frame(array: np.ndarray, pix_fmt: str, matrix: int, *, full: bool) -> av.VideoFrame | None:
    """An RGB(A) array (uint8 or uint16, full range) as a planar YUV frame in ``pix_fmt``, by the
    matrix's own equations, each chroma sample the mean of the pixels it covers; None for a
    layout this does not write (swscale does those)."""
    planar = _planar(pix_fmt.replace("yuvj", "yuv"))
    if planar is None or planar[1] not in (8, 10, 12, 16) or matrix not in _WEIGHTS:
        return None
    layout, bits = planar
    height, width = array.shape[:2]
    top, unit = 2**bits - 1, 2 ** (bits - 8)
    scale = np.float32(1 / (65535 if array.dtype == np.uint16 else 255))
    kr, kb = _WEIGHTS[matrix]
    weights = np.array([kr, 1 - kr - kb, kb], np.float32)
    rgb = array[..., :3]
    y = (rgb @ (weights * scale * (top if full else 219 * unit))) + np.float32(0 if full else 16 * unit)
    planes = [y]
    sx, sy = _PLANAR[layout]
    if sx > 1 or sy > 1:  # chroma is linear in R, G and B: the mean colour of each block, converted
        rgb = np.pad(rgb, ((0, -height % sy), (0, -width % sx), (0, 0)), mode="edge")
        rgb = sum(rgb[dy::sy, dx::sx].astype(np.float32) for dy in range(sy) for dx in range(sx)) * np.float32(1 / (sx * sy))
    span = np.float32(scale * (top if full else 224 * unit))
    for row in ((-kr / (2 * (1 - kb)), -(1 - kr - kb) / (2 * (1 - kb)), 0.5), (0.5, -(1 - kr - kb) / (2 * (1 - kr)), -kb / (2 * (1 - kr)))):
        planes.append(rgb @ (np.array(row, np.float32) * span) + np.float32(128 * unit))
    if pix_fmt.startswith("yuva"):
        planes.append(array[..., 3] * np.float32(scale * top) if array.shape[2] == 4 else np.full(y.shape, top, np.float32))
    frame = av.VideoFrame(width, height, pix_fmt)
    dtype = np.dtype("<u2" if bits > 8 else np.uint8)
    for plane, values in zip(frame.planes, planes):
        rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        rows[:, : plane.width] = np.clip(np.rint(values), 0, top)
    return frame


def _rgb_array(frame: av.VideoFrame, matrix: int, *, full: bool, deep: bool, alpha: bool) -> np.ndarray | None:
    """A planar YUV frame deeper than 8 bits as an RGB(A) array (uint16 when ``deep``, full range),
    by the matrix's own equations; None for a layout this does not read (swscale does those).
    swscale's conversion of such frames to RGB reads them dark: a 10-bit full-range picture by
    0.16 levels (in 8-bit terms) in each channel on average, a limited-range one by 0.4-0.65.
    Subsampled chroma is upsampled by swscale first, at the frame's own depth, which keeps the
    samples' mean (within 0.02 of a sample)."""
    name = frame.format.name
    planar = _planar(name)
    rng = _JPEG if full else _MPEG
    if planar is None and (twin := _planar_twin(frame.format)) is not None:  # semi-planar (p010le, as hardware decoders
        # give 10-bit video) or big-endian: swscale read a p010le picture 0.5-0.66 levels dark; its samples, moved
        # unchanged into the planar format of the same depth and layout, are read below
        frame = frame.reformat(format=twin, src_colorspace=_MATRIX.get(matrix), dst_colorspace=_MATRIX.get(matrix),
                               src_color_range=rng, dst_color_range=rng)
        name, planar = twin, _planar(twin)
    if planar is None or planar[1] == 8 or matrix not in _WEIGHTS:
        return None
    layout, bits = planar
    if layout != "444":
        frame = frame.reformat(format=name.replace(layout, "444", 1), src_colorspace=_MATRIX[matrix], dst_colorspace=_MATRIX[matrix],
                               src_color_range=rng, dst_color_range=rng, interpolation="BICUBIC")
    top, unit = 2**bits - 1, 2 ** (bits - 8)
    width, height = frame.width, frame.height
    luma, cb, cr, *opacity = (np.frombuffer(plane, "<u2").reshape(plane.height, plane.line_size // 2)[:, :width]
                              for plane in frame.planes)
    kr, kb = _WEIGHTS[matrix]
    peak = 65535 if deep else 255
    # sample -> [0, 1] (luma) or [-0.5, 0.5] (chroma), then times the output's peak, in one step
    gain = np.float32(peak / top if full else peak / (219 * unit))
    span = np.float32(peak / top if full else peak / (224 * unit))
    y = luma.astype(np.float32)
    y -= np.float32(0 if full else 16 * unit)
    y *= gain
    u = cb.astype(np.float32)
    u -= np.float32(128 * unit)
    u *= span
    v = cr.astype(np.float32)
    v -= np.float32(128 * unit)
    v *= span
    out = np.empty((height, width, 4 if alpha else 3), np.float32)
    np.add(y, v * np.float32(2 * (1 - kr)), out=out[..., 0])
    np.add(y, u * np.float32(2 * (1 - kb)), out=out[..., 2])
    u *= np.float32(-2 * (1 - kb) * kb / (1 - kr - kb))
    v *= np.float32(-2 * (1 - kr) * kr / (1 - kr - kb))
    y += u
    y += v
    out[..., 1] = y
    if alpha:
        out[..., 3] = opacity[0] * np.float32(peak / top) if opacity else peak
    np.rint(out, out=out)
    np.clip(out, 0, peak, out=out)
    return out.astype(np.uint16 if deep else np.uint8)


def _planar_twin(fmt: av.VideoFormat) -> str | None:
    """The planar little-endian YUV format (yuv420p10le, yuva444p16le, ...) with the same depth,
    chroma layout and alpha as ``fmt``, a YUV format deeper than 8 bits that :func:`_planar` does
    not name (p010le, p216le, yuv420p10be, ...); None for others (RGB, grey, packed, 8-bit)."""
    components = fmt.components  # luma, Cb, Cr (and alpha), whatever the planes that hold them
    if fmt.is_rgb or not fmt.is_planar or len(components) < 3 or not 8 < components[0].bits <= 16:
        return None
    luma, cb = components[0], components[1]
    steps = (round(luma.width / max(1, cb.width)), round(luma.height / max(1, cb.height)))
    layout = next((name for name, step in _PLANAR.items() if step == steps), None)
    twin = f"yuv{'a' if any(c.is_alpha for c in components) else ''}{layout}p{components[0].bits}le"
    return twin if layout is not None and _planar(twin) is not None and twin != fmt.name else None


def _subsampled(frame: av.VideoFrame) -> bool:
    """Whether an 8-bit frame's chroma planes are smaller than its picture (4:2:0, 4:2:2, NV12, ...)."""
    components = frame.format.components
    return (max(c.bits for c in components) <= 8
            and any(c.is_chroma and (c.width, c.height) != (frame.width, frame.height) for c in components))


def _is_grey(pix_fmt: str) -> bool:
    return pix_fmt.startswith(("gray", "ya"))


def _grey_range(rgb: np.ndarray, *, expand: bool) -> np.ndarray:
    """Limited-range grey samples (16-235 in 8-bit terms) to full range (``expand``) or back, on
    the colour channels of an RGB(A) array of uint8 or uint16; alpha stays as it is."""
    top = 65535.0 if rgb.dtype == np.uint16 else 255.0
    low, span = 16 / 255 * top, 219 / 255 * top
    colour = rgb[..., :3].astype(np.float32)
    colour = (colour - low) * (top / span) if expand else colour * (span / top) + low
    out = rgb.copy()
    out[..., :3] = np.clip(np.rint(colour), 0, top).astype(rgb.dtype)
    return out


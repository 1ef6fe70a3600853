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

    @classmethod
    def of(cls, context) -> Colour:
        """The tags of a decoder context."""
        return cls(
            range=int(context.color_range or 0),
            matrix=int(context.colorspace if context.colorspace is not None else _UNSPECIFIED),
            primaries=int(context.color_primaries or _UNSPECIFIED),
            trc=int(context.color_trc or _UNSPECIFIED),
            full=(context.pix_fmt or "").startswith("yuvj"),
        )

    def for_codec(self, codec: str) -> Colour:
        """The tags, and so the conversion, for pictures of ``codec``: the source's, but limited
        range where the codec stores no other (a full-range source written as ProRes came out
        brighter and clipped, its full-range samples read as limited)."""
        if codec in _LIMITED_ONLY and (self.full or self.range == _JPEG):
            return Colour(_MPEG, self.matrix, self.primaries, self.trc, False)
        return self

    def settled(self, height: int) -> Colour:
        """These tags with the matrix and range that the conversion will actually use filled in."""
        matrix = self.matrix if self.matrix in _MATRIX else (_SMPTE170M if height < 720 else _BT709)
        rng = _JPEG if self.full or self.range == _JPEG else _MPEG
        return Colour(rng, matrix, self.primaries, self.trc, self.full)

    def to_rgb(self, frame: av.VideoFrame, deep: bool, alpha: bool = False) -> np.ndarray:
        """A decoded frame as HxWx3 RGB, or HxWx4 RGBA with ``alpha`` (uint16 when ``deep``), full range."""
        wanted = ("rgba64le" if deep else "rgba") if alpha else ("rgb48le" if deep else "rgb24")
        if frame.format.name == wanted and not self.full:
            return frame.to_ndarray()
        tags = self.settled(frame.height)
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
        else:
            tags = self.settled(source_height)
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

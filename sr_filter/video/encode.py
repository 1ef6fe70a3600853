"""Writing a video: codec and pixel-format choice, the output container, copied streams.

The encoder is named by family (``h264``, ``hevc``, ``vp9``, ``av1``, ``ffv1``, ``prores``); the
default is the source's family when this build can encode it into the chosen container, else the
first family the container takes. Audio, subtitle and attachment streams are copied without
re-encoding where the container can hold them, text subtitles converted where it holds another
text codec; the rest is listed in :attr:`Output.dropped`.
"""

from __future__ import annotations

import functools
import io
import logging
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import VideoFormatError, first_line
from . import CONTAINERS, interlace_line, source, subtitles
from .source import Frame, VideoInfo, is_cover, video_stream

log = logging.getLogger("sr_filter")

#: family -> (FFmpeg encoder, codec name the containers know, default quality (CRF) or None)
ENCODERS = {
    "h264": ("libx264", "h264", 18),
    "hevc": ("libx265", "hevc", 20),
    "vp9": ("libvpx-vp9", "vp9", 30),
    "av1": ("libsvtav1", "av1", 30),
    "ffv1": ("ffv1", "ffv1", None),
    "prores": ("prores_ks", "prores", None),
}
CODECS = tuple(ENCODERS)
#: family -> the quality numbers (CRF) its encoder takes; SVT-AV1 reads 0 as "not set"
CRF_RANGE = {"h264": (0, 51), "hevc": (0, 51), "vp9": (0, 63), "av1": (1, 63)}
_NO_CRF = {"ffv1": "ffv1 is lossless", "prores": "prores is written as ProRes HQ (4444 for 4:4:4 sources), whose quality is fixed"}
#: muxers whose video has one constant frame rate and no timestamps of its own: frame n is tick n
#: of 1/rate (FFmpeg's avi muxer fills every skipped tick with an empty frame)
CONSTANT_RATE = frozenset({"avi"})
_SOURCE_FAMILY = {"h264": "h264", "hevc": "hevc", "vp9": "vp9", "av1": "av1", "libdav1d": "av1", "ffv1": "ffv1", "prores": "prores"}


def container_for(path: str | Path) -> str:
    """The muxer for an output name, or a one-line refusal."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        raise VideoFormatError(f"{path}: unknown video container {suffix or '(none)'}; use one of {', '.join(CONTAINERS)}")
    return CONTAINERS[suffix]


def open_output(path: str, muxer: str, time_base: Fraction | None = None) -> av.container.OutputContainer:
    """An output container; mp4 and mov write their colour box even where the primaries are not
    known (FFmpeg leaves it out then, and an FFV1 stream, which carries no tags of its own, lost
    its matrix and range), and count their edit lists in the video's ``time_base`` rather than
    milliseconds: rounded to the millisecond, the B-frame delay moved every frame of a segment
    written for --resume by up to 0.65 ms."""
    options = {"movflags": "write_colr"} if muxer in ("mp4", "mov") else {}
    if options and time_base is not None and time_base.numerator == 1 and 1000 < time_base.denominator < 1 << 31:
        options["movie_timescale"] = str(time_base.denominator)
    return av.open(source.ffmpeg_name(path), "w", format=muxer, options=options)


def keeps_sar(muxer: str, codec: str) -> bool:
    """Whether ``codec`` (an encoder name) in ``muxer`` keeps a non-square sample aspect ratio:
    .mkv, .webm and .avi read it from a stream field PyAV cannot set, so there only H.264/HEVC,
    which carry it in their own stream, keep it; mp4/mov write their own box."""
    return muxer not in ("matroska", "webm", "avi") or codec in ("libx264", "libx265")


def lost_in(muxer: str, codec: str, info: VideoInfo) -> list[str]:
    """What an output container cannot keep of the upscaled video itself, each said as a dropped
    stream is: an AVI stores no display rotation, and no colour tags, which FFV1 does not carry
    (YUV frames only: RGB ones have no matrix or range to lose);
    a non-square sample aspect ratio survives in .mkv, .webm and .avi only inside an H.264/HEVC
    stream (those muxers read it from a stream field PyAV cannot set; mp4/mov write their own box)."""
    lost = []
    if info.sar and info.sar != 1 and not keeps_sar(muxer, codec):
        family = next((f for f, e in ENCODERS.items() if e[0] == codec), codec)
        where = "cannot keep it" if muxer == "webm" else "keeps it only in h264 or hevc video"
        keepers = [name for name, box in ((".mp4", "mp4"), (".mov", "mov")) if _probe_holds(box, ENCODERS.get(family, ("", family))[1])]
        hint = f" ({' and '.join(keepers)} {'keeps' if len(keepers) == 1 else 'keep'} it with {family})" if keepers else ""
        lost.append(f"the sample aspect ratio ({info.sar.numerator}:{info.sar.denominator}): {_a_file(muxer)} written "
                    f"here {where}, so the {family} video shows with square pixels{hint}")
    if muxer != "avi":
        return lost
    if info.rotation:
        lost.append(f"the display rotation ({info.rotation} degrees): an .avi file cannot store it, so the video "
                    "shows unrotated (.mkv, .mp4 and .mov keep it)")
    if codec == "ffv1" and choose_pix_fmt(info.pix_fmt, codec, alpha=info.alpha).startswith("yuv"):  # RGB has no matrix
        lost.append("the colour tags (matrix and range): neither an .avi file nor FFV1 stores them, so players "
                    "guess, BT.709 for HD frames (.mkv keeps them)")
    return lost


def even_dimension(value: float) -> int:
    """The even frame width or height nearest ``value`` (at least 2): 4:2:0 and 4:2:2 encoders
    need even sizes, and every upscaled frame of a video (or of its segments) is sized so. Half
    way between two, the larger, as ``sizing.scaled_length`` rounds halves up."""
    from ..sizing import nearest_multiple

    return max(2, nearest_multiple(value, 2))


#: codecs FFmpeg's mov muxer lists as supported but refuses when it writes the header ("vp9 only
#: supported in MP4"); copied streams are checked by writing a small file (:func:`_header_takes`)
_MOV_REFUSES = {"vp9", "av1"}


@functools.lru_cache(maxsize=None)
def _probe_holds(muxer: str, codec: str) -> bool:
    if muxer == "mov" and codec in _MOV_REFUSES:
        return False
    container = av.open(io.BytesIO(), "w", format=muxer)
    try:
        return codec in container.supported_codecs
    finally:
        container.close()


def _header_takes(muxer: str, stream: av.stream.Stream, packet: av.Packet | None) -> bool:
    """Whether ``muxer`` writes a whole file with a copy of ``stream``: its header, the stream's
    first packet and the trailer. Some muxers list a codec and refuse it only in the header (mov
    with Opus or FLAC audio), others only in the trailer (mp4 with PCM audio: "Invalid argument"),
    which would fail a job at its end, after all the upscaling."""
    probe = av.open(io.BytesIO(), "w", format=muxer)
    try:
        copied = probe.add_stream_from_template(stream)
        headers_off = _as_raw_aac(stream, copied, packet)  # as copy_streams writes it
        if headers_off is not None:
            packet = strip_adts(headers_off, _copy_of(packet))[0]
        probe.start_encoding()
        if packet is not None:
            packet.stream = copied
            probe.mux(packet)
        probe.close()
        return True
    except (av.error.FFmpegError, ValueError):
        return False
    finally:
        try:
            probe.close()
        except (av.error.FFmpegError, ValueError):
            pass


def adts_config(stream: av.stream.Stream, packet: av.Packet | None) -> bytes | None:
    """For an AAC stream whose packets carry ADTS headers and no setup data beside them (as an
    MPEG-TS holds it): the setup data (AudioSpecificConfig) that raw AAC needs, read from its
    first packet ``packet`` by FFmpeg's aac_adtstoasc; None for any other stream. The mp4, mov
    and mkv muxers take the headers off themselves, the avi muxer does not, and refused the
    header ("Invalid argument"): such sound had been dropped from every .avi output."""
    context = stream.codec_context
    if stream.type != "audio" or context is None or context.name != "aac" or context.extradata or packet is None:
        return None
    data = bytes(packet)
    if len(data) < 7 or data[0] != 0xFF or data[1] & 0xF0 != 0xF0:  # no ADTS sync word
        return None
    try:
        raw = av.bitstream.BitStreamFilterContext("aac_adtstoasc", stream).filter(_copy_of(packet))
    except (av.error.FFmpegError, ValueError):
        return None
    if not raw or not raw[0].has_sidedata("new_extradata"):
        return None
    return bytes(raw[0].get_sidedata("new_extradata"))


def _as_raw_aac(stream: av.stream.Stream, copied: av.stream.Stream, first: av.Packet | None) -> av.bitstream.BitStreamFilterContext | None:
    """Set up ``copied`` for raw AAC where ``stream`` is ADTS AAC (:func:`adts_config`): its setup
    data into the header, and the filter that takes the packets' headers off returned; None for
    any other stream, copied as it is."""
    config = adts_config(stream, first)
    if config is None:
        return None
    copied.codec_context.extradata = config
    return av.bitstream.BitStreamFilterContext("aac_adtstoasc", stream)


def strip_adts(headers_off: av.bitstream.BitStreamFilterContext, packet: av.Packet) -> list[av.Packet]:
    """``packet`` with its ADTS header taken off by ``headers_off`` (aac_adtstoasc), without the
    setup data the filter also attaches to the first one: given it again, the matroska muxer
    wrote the track twice, one copy with a wrong profile."""
    return [_copy_of(raw) for raw in headers_off.filter(packet)]


def _copy_of(packet: av.Packet) -> av.Packet:
    """A packet with ``packet``'s data and times (a filter takes what it is given)."""
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.duration, copy.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
    return copy


def _holds(muxer: str, stream: av.stream.Stream, packet: av.Packet | None) -> bool:
    """Whether a copy of ``stream`` (first packet ``packet``) goes into ``muxer``'s files: the one
    test both for dropping a stream and for the containers a dropped one's line offers."""
    codec = stream.codec_context.name if stream.codec_context else None
    return codec is not None and _probe_holds(muxer, codec) and _header_takes(muxer, stream, packet)


def _keepers_hint(muxer: str, stream: av.stream.Stream, packet: av.Packet | None) -> str:
    """The end of a dropped stream's line: the outputs that keep it (mov_text into .mkv: no .mkv
    to offer; Opus or FLAC into .avi: no .mov, whose header refuses them)."""
    keepers = [_suffix(other) for other in ("matroska", "mp4", "mov") if other != muxer and _holds(other, stream, packet)]
    return f"; a {' or '.join(keepers)} output keeps it" if keepers else ""


def _first_packets(source: av.container.InputContainer, indices: set[int]) -> dict[int, av.Packet]:
    """The first packet of each stream in ``indices``, from one pass over the source opened again
    (the caller's reading position stays as it is); those that cannot be read are left out."""
    found: dict[int, av.Packet] = {}
    if not indices:
        return found
    try:
        with av.open(source.name) as again:
            for packet in again.demux([again.streams[i] for i in sorted(indices)]):
                if packet.size and packet.stream.index not in found:
                    found[packet.stream.index] = packet
                    if len(found) == len(indices):
                        break
    except (av.error.FFmpegError, OSError, ValueError, IndexError):
        pass
    return found


def _suffix(muxer: str) -> str:
    """The first output suffix written by ``muxer`` (".mkv" for Matroska, ".mp4", ".mov", ...)."""
    return next(suffix for suffix, name in CONTAINERS.items() if name == muxer)


def _a_file(muxer: str) -> str:
    """How messages name a file written by ``muxer``: "an .avi file", "a .mov file" (FFmpeg's
    muxer names made "a avi file" and "a matroska file")."""
    return {"mp4": "an .mp4 or .m4v file", "mov": "a .mov file", "matroska": "an .mkv file",
            "webm": "a .webm file", "avi": "an .avi file"}.get(muxer, f"a {muxer} file")


def choose_codec(requested: str | None, source_codec: str, muxer: str) -> str:
    """The encoder family to use; refuses a family the container cannot hold."""
    if requested is not None and not isinstance(requested, str):  # codec=5 had raised AttributeError ('int' ... 'lower')
        raise VideoFormatError(f"codec must be a name, one of {', '.join(CODECS)} (or None), not {requested!r}")
    if requested:
        family = requested.strip().lower()  # " H264" (from a settings file), as " cpu" and " png" are taken
        if family not in ENCODERS:
            alias = {"h265": "hevc", "x265": "hevc", "libx265": "hevc", "x264": "h264", "libx264": "h264", "avc": "h264",
                     "vp09": "vp9", "libvpx-vp9": "vp9", "aom": "av1", "svt-av1": "av1"}.get(family)
            hint = f"did you mean {alias}? " if alias else ""
            raise VideoFormatError(f"unknown video codec {requested!r}; {hint}choose one of {', '.join(CODECS)}")
        if not _probe_holds(muxer, ENCODERS[family][1]):
            able = [f for f in CODECS if _probe_holds(muxer, ENCODERS[f][1])]
            raise VideoFormatError(f"{_a_file(muxer)} cannot hold {family} video; choose {' or '.join(able)}, or another container")
        return family
    family = _SOURCE_FAMILY.get(source_codec)
    if family and _probe_holds(muxer, ENCODERS[family][1]):
        return family
    for family in ("h264", "vp9", "av1", "ffv1"):
        if _probe_holds(muxer, ENCODERS[family][1]):
            return family
    raise VideoFormatError(f"{_a_file(muxer)} cannot hold any video codec this build encodes")


def check_crf(family: str, crf: object) -> str | None:
    """Refuse a quality number the family's encoder does not take (one line naming its range);
    returns a notice when the family has no quality number and ``crf`` would be ignored."""
    if crf is None:
        return None
    if isinstance(crf, bool) or not isinstance(crf, numbers.Integral):
        raise VideoFormatError(f"crf must be a whole number, not {crf!r}")
    if family in _NO_CRF:
        return f"crf {crf} is ignored: {_NO_CRF[family]}"
    low, high = CRF_RANGE[family]
    if not low <= crf <= high:
        raise VideoFormatError(f"crf {crf} is out of range for {family} ({ENCODERS[family][0]} takes {low}-{high}; lower is better)")
    return None


#: encoders that list pixel formats with alpha but refuse them in this build (x265 needs its
#: multi-layer build for alpha: "Operation not supported")
_ALPHA_REFUSED = frozenset({"libx265"})
#: the only alpha formats an encoder opens with, where it lists more: libvpx-vp9 codes alpha as a
#: second 4:2:0 stream, and gbrap (which an RGBA animation had been given) failed to open, "Invalid argument"
_ALPHA_ONLY = {"libvpx-vp9": frozenset({"yuva420p"})}


def has_alpha(pix_fmt: str) -> bool:
    """Whether a pixel format has an alpha channel."""
    try:
        return any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.error.FFmpegError):
        return False


#: encoder families whose alpha plane travels beside the pictures (Matroska's BlockAdditional),
#: so only these containers keep it: VP9 with alpha in an .mp4 came out opaque without a word
_ALPHA_BESIDE = {"vp9": ("webm", "matroska")}


def keeps_alpha(info: VideoInfo, family: str, muxer: str) -> bool:
    """Whether ``family``'s encoder, written by ``muxer``, keeps the source's alpha channel."""
    if muxer not in _ALPHA_BESIDE.get(family, (muxer,)):
        return False
    return has_alpha(choose_pix_fmt(info.pix_fmt, ENCODERS[family][0], alpha=True))


def settle_alpha(info: VideoInfo, family: str, muxer: str) -> None:
    """Read the frames with their alpha channel when the source has one that means something
    (not a GIF's: its decoder gives every picture one) and ``family`` in ``muxer`` keeps it."""
    info.alpha = info.codec not in _ALWAYS_ALPHA and has_alpha(info.pix_fmt) and keeps_alpha(info, family, muxer)


def choose_pix_fmt(source: str, encoder: str, alpha: bool | None = None) -> str:
    """The source's pixel format when the encoder takes it, else the closest one it does take
    (with alpha first, where the source has it; then the same bit depth and chroma layout, then
    the same chroma at another depth, then more chroma, then less). ``alpha``: whether the frames
    carry alpha (default: whether the source format has it; a GIF's decoder gives one unused)."""
    formats = [f.name for f in av.Codec(encoder, "w").video_formats or []
               if not has_alpha(f.name) or (encoder not in _ALPHA_REFUSED and f.name in _ALPHA_ONLY.get(encoder, {f.name}))]
    plain = source.replace("yuvj", "yuv")
    if alpha is False and plain.startswith("yuva"):  # alpha not kept: no plane of it (the summary had named yuva420p)
        plain = "yuv" + plain[4:]
    if plain in formats:
        return plain
    bits = _bits(plain)  # by the format's own bits: "nv12" had read as 12-bit
    depth = f"{bits}le" if bits > 8 else ""  # 12- and 16-bit kept where the encoder can (FFV1), else 10 below
    chroma = _layout(plain) or "420"  # RGB and grey are written as 4:2:0, like any video
    if has_alpha(plain) if alpha is None else alpha:  # transparency kept where the encoder can: RGB-like layouts, then YUV with alpha
        rgb_like = not plain.startswith("yuv")
        alphas = ((["bgra", "argb", "rgba", "gbrap"] if rgb_like else [])
                  + [f"yuva{chroma}p{depth}", f"yuva{chroma}p", "yuva444p10le", "yuva444p", "yuva422p", "yuva420p"])
        found = next((f for f in alphas if f in formats), None)
        if found:
            return found
    # the source's chroma before its depth: 10-bit 4:2:2 into 8-bit-only VP9 is 8-bit 4:2:2, not 4:2:0
    layouts = ("420", "422", "444")
    richer = [c for c in layouts if c > chroma]  # the nearest richer layout first (ProRes: 4:2:0 as 4:2:2, not 4:4:4)
    poorer = [c for c in reversed(layouts) if c < chroma]
    deep = (depth, "10le") if depth else ("",)  # 16-bit 4:2:2 into SVT-AV1 is 10-bit 4:2:0, not 8-bit
    for candidate in (f"yuv{chroma}p{depth}", f"yuv{chroma}p10le", f"yuv{chroma}p", *(f"yuv{c}p{d}" for d in deep for c in richer + poorer),
                      *(f"yuv{c}p" for c in richer + poorer), "yuv420p", "yuv422p10le"):
        if candidate in formats:
            return candidate
    return formats[0]


def _bits(pix_fmt: str) -> int:
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.error.FFmpegError):
        return 8


_HDR_TRANSFERS = {16, 18}  # SMPTE ST 2084 (PQ), ARIB STD-B67 (HLG)


def _layout(pix_fmt: str) -> str | None:
    """A YUV pixel format's chroma layout by the size of its colour planes: "444", "422" (and
    4:4:0) or "420" (and 4:1:1, 4:1:0); None for RGB and grey. Names say it only for some formats:
    nv16 and p210le are 4:2:2, nv24 and p410le 4:4:4, which had been taken for 4:2:0."""
    try:
        found = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return None
    if found.is_rgb or len(found.components) < 3:
        return None
    share = found.chroma_width(16) * found.chroma_height(16)  # of a 16x16 picture's 256 samples
    return "444" if share >= 256 else "422" if share >= 128 else "420"


def _chroma(pix_fmt: str) -> int:
    """How much colour detail a pixel format keeps: 3 for 4:4:4 (and RGB, grey), 2 for 4:2:2, 1 for 4:2:0."""
    return {"422": 2, "420": 1}.get(_layout(pix_fmt) or "444", 3)


def notices(info: VideoInfo, family: str, muxer: str) -> list[str]:
    """What the written video will not keep of the source's picture, one line each: its alpha
    channel, its bit depth or its colour detail."""
    return [line for line in (alpha_notice(info, family, muxer), depth_notice(info, family, muxer), interlace_notice(info))
            if line]


def interlace_notice(info: VideoInfo) -> str | None:
    """One line for interlaced source pictures: their two fields, half a frame time apart, go
    through the network as one picture and come out as a progressive frame, so moving edges keep
    their comb teeth, enlarged (it had happened without a word)."""
    if not info.interlaced:
        return None
    first = "top" if info.interlaced in (2, 4) else "bottom"
    return interlace_line("the source", f"{first} field first")


#: decoders that give every picture an alpha channel, used or not (FFmpeg's GIF decoder: bgra)
_ALWAYS_ALPHA = frozenset({"gif"})


def alpha_notice(info: VideoInfo, family: str, muxer: str) -> str | None:
    """One line when the source has an alpha channel (ProRes 4444, QuickTime Animation, VP9 or
    FFV1 with alpha) that the chosen encoder or container cannot keep (``info`` settled by
    :func:`settle_alpha`): it had been dropped without a word. Names what would keep it."""
    if info.alpha or info.codec in _ALWAYS_ALPHA or not has_alpha(info.pix_fmt):  # kept (settle_alpha), or none
        return None
    encoder = ENCODERS[family][0]
    if family in _ALPHA_BESIDE and has_alpha(choose_pix_fmt(info.pix_fmt, encoder, alpha=True)):
        which = f"which {encoder} keeps only in {' and '.join(_suffix(m) for m in _ALPHA_BESIDE[family])} files"
    else:
        which = f"which {encoder} cannot keep"
    keep = [f for f in CODECS if f != family and _probe_holds(muxer, ENCODERS[f][1]) and keeps_alpha(info, f, muxer)]
    if keep:
        hint = f"; {_codecs(keep)} {'keeps' if len(keep) == 1 else 'keep'} it"
    else:
        keep = [f for f in CODECS if keeps_alpha(info, f, "matroska")]
        hint = f"; an .mkv file with {_codecs(keep)} keeps it" if keep else ""
    return (f"the source's {info.pix_fmt} video has an alpha channel (transparency), {which}: "
            f"every frame is written opaque, on white{hint}")


def _codecs(families: list[str]) -> str:
    """Codec choices as a notice names them, in the API's words (``codec="ffv1" or "av1"``); the
    command line says ``--codec ffv1 or av1`` (cli.messages)."""
    return "codec=" + " or ".join(f'"{f}"' for f in families)


def depth_notice(info: VideoInfo, family: str, muxer: str) -> str | None:
    """One line when the chosen encoder cannot keep the source's bit depth (this build's
    libvpx-vp9 writes 8 bits only) or its colour detail (SVT-AV1 writes 4:2:0 only), naming the
    families that would keep both in this container."""
    encoder = ENCODERS[family][0]
    chosen = choose_pix_fmt(info.pix_fmt, encoder, alpha=info.alpha)
    source_bits, written_bits = _bits(info.pix_fmt), _bits(chosen)
    # chroma: only a YUV source's (an RGB one, a GIF's say, is written as 4:2:0 like any video)
    fewer_bits = written_bits < source_bits
    less_colour = _layout(info.pix_fmt) is not None and _chroma(chosen) < _chroma(info.pix_fmt)
    if not fewer_bits and not less_colour:
        return None

    def keeps(other: str) -> bool:
        written = choose_pix_fmt(info.pix_fmt, ENCODERS[other][0], alpha=info.alpha)
        return (_bits(written) >= source_bits and (not less_colour or _chroma(written) >= _chroma(info.pix_fmt))
                and (not info.alpha or has_alpha(written)))  # HEVC keeps 12 bits, not ProRes 4444's alpha

    keep = [f for f in CODECS if f != family and _probe_holds(muxer, ENCODERS[f][1]) and keeps(f)]
    verb = "keeps" if len(keep) == 1 else "keep"
    if fewer_bits:
        hdr = ", and more so with the source's HDR transfer" if info.colour.trc in _HDR_TRANSFERS else ""
        hint = f"; {_codecs(keep)} {verb} {source_bits} bits" if keep else ""
        halved = ", with half its colour detail" if less_colour else ""
        # at 10 bits written the steps are a quarter of 8-bit's: "banding is likely" had been said for
        # every ProRes 4444 source, which FFmpeg's decoder always gives as 12-bit
        risk = f"banding is likely{hdr}" if written_bits <= 8 else f"steps in smooth gradients are rarely visible at {written_bits} bits"
        return (f"the source has {source_bits}-bit {info.pix_fmt} video but {encoder} in this build writes {written_bits} bits: "
                f"written as {chosen}{halved} ({risk}){hint}")
    hint = f"; {_codecs(keep)} {verb} it" if keep else ""
    return f"{encoder} writes {chosen}: the colour detail of the source's {info.pix_fmt} is halved{hint}"


def steady_time_base(src: str | Path, muxer: str, notice) -> Fraction | None:
    """The output's time base when ``muxer`` holds one constant frame rate (AVI): 1/rate of the
    source's rate (its average when variable, said in one ``notice`` line), so each frame is one
    tick and the file reads back with the source's frame count and rate; None for the others."""
    if muxer not in CONSTANT_RATE:
        return None
    rate, variable = source.steady_rate(src)
    if variable:
        notice(f"{_a_file(muxer)} keeps a constant frame rate: this variable-rate video is written at its average "
               f"{float(rate):.4g} fps, its frames evenly spaced, so they drift from their own times, and the picture from the sound; "
               f"a .mkv or .mp4 output keeps the source's timing")
    return 1 / rate


#: a decode time this far before its packet's presentation time is no reordering delay but
#: memory the encoder left unset (x265 on flushing a two-frame encode: -9e13, 7e18)
_DTS_GARBAGE = 1 << 32


def _sane_dts(packet: av.Packet) -> None:
    """Mend a decode time the encoder left unset. libx265, flushed with two frames queued, now
    and then returns them with a random DTS (a two-frame clip, or a resumable job's two-frame
    segment, failed "cannot write ...: Invalid argument", the muxer refusing pts < dts); such
    packets come in presentation order, so their presentation time serves."""
    if packet.pts is not None and packet.dts is not None and (packet.dts > packet.pts or packet.pts - packet.dts > _DTS_GARBAGE):
        packet.dts = packet.pts


class Output:
    """An output container being written: one upscaled video stream plus the copied ones."""

    def __init__(self, path: str, muxer: str, family: str, info: VideoInfo, source: av.container.InputContainer,
                 *, width: int, height: int, crf: int | None, copy: set[int],
                 notice: Callable[[str], None] | None = None) -> None:
        encoder, _, default_crf = ENCODERS[family]
        if family == "av1":  # SVT-AV1 prints a banner of ~20 lines unless told errors only (read when it opens)
            os.environ.setdefault("SVT_LOG", "1")
        self.container = open_output(path, muxer, info.steady or info.time_base)
        self.info = info
        self.colour = info.colour.for_codec(encoder)
        try:
            self.container.metadata.update({k: v for k, v in source.metadata.items() if k.lower() != "encoder"})
            stream = self.container.add_stream(encoder, rate=1 / info.steady if info.steady else info.rate or Fraction(25))
            stream.width, stream.height = width, height
            stream.pix_fmt = self.pix_fmt = choose_pix_fmt(info.pix_fmt, encoder, alpha=info.alpha)
            context = stream.codec_context
            context.time_base = stream.time_base = info.steady or info.time_base
            if info.sar:
                context.sample_aspect_ratio = info.sar
            self.colour.tag(context, info.height)
            context.thread_type = "AUTO"
            context.options = _quality_options(family, crf if crf is not None else default_crf)
            tag_for_apple(context, family, muxer)
            if family == "prores" and _chroma(self.pix_fmt) == 3:
                context.options = {**context.options, "profile": "4"}  # ProRes 4444: HQ is 4:2:2 only
            if info.rotation:
                stream.set_display_rotation(info.rotation)
            video_lost = keep_video_tags(video_stream(source), stream, muxer)
            self.video = stream
            self._chapters = source.chapters()
            self._last: av.Packet | None = None  # held back until the next one (see _mux_last)
            self._end: Fraction | None = None  # where the last shown frame so far ends, in seconds
            self._ends_track = muxer in ("mp4", "mov")
            self._delay: int | None = None
            self._length: Fraction | None = None  # a frame range's length, which copied subtitles keep within
            self._pending: tuple[av.VideoFrame, int | None] | None = None
            self._durations: dict[Fraction, Fraction] = {}  # frame time -> display time, in seconds
            self.copies = copy_streams(self.container, source, muxer, copy, notice)
            self.dropped = lost_in(muxer, encoder, info) + video_lost + self.copies.dropped + chapters_lost(muxer, self._chapters)
            self.converted = self.copies.converted
        except (av.error.FFmpegError, ValueError) as exc:
            self.container.close()
            raise VideoFormatError(f"cannot set up the {family} encoder ({first_line(exc)})") from None

    def keep_chapters(self, shift: Fraction, end: Fraction | None = None) -> None:
        """The source's chapters, moved ``shift`` seconds earlier and cut at the source time ``end``
        (a frame range's); set before the header is written: the muxers take no later change."""
        self._length = None if end is None else end - shift
        self.container.set_chapters(chapters_from(self._chapters, shift, self._length))

    def add(self, item: Frame, *, first: int = 0, shift: Fraction = Fraction(0)) -> None:
        """Encode the upscaled ``item`` at its source time moved ``shift`` seconds earlier, or, on a
        constant-rate output (:attr:`VideoInfo.steady`), as tick ``item.index - first``: one
        frame per tick, each lasting one."""
        frame = self.colour.from_rgb(item.array, self.pix_fmt, self.info.height)
        duration = item.duration
        if self.info.steady:
            frame.pts, frame.time_base, duration = item.index - first, self.info.steady, 1
        elif item.pts is not None:
            frame.pts = item.pts - round(shift / item.time_base) if shift else item.pts
            frame.time_base = item.time_base
        self.write_frame(frame, duration)

    def write_frame(self, frame: av.VideoFrame | None, duration: int | None = None) -> None:
        """Encode ``frame`` (None flushes the encoder); ``duration`` is its display time in the
        frame's time base, as the source gives it.

        The encoders drop frame durations, and the muxers then guess the last frame's display
        time (a GIF's 2 s pause became a few ms). So each frame waits for the next one: its
        packet lasts until the next frame's timestamp, and the last one as long as the source
        says."""
        if self._pending is not None:
            held, held_duration = self._pending
            if frame is not None and frame.pts is not None and held.pts is not None and frame.pts > held.pts:
                held_duration = frame.pts - held.pts
            self._encode(held, held_duration)
        self._pending = (frame, duration) if frame is not None else None
        if frame is None:
            self._encode(None, None)

    def _encode(self, frame: av.VideoFrame | None, duration: int | None) -> None:
        if frame is not None and frame.pts is not None and duration:
            # by time, not number: the packets come back in the stream's time base, which the
            # muxer may have changed (mp4: 1/12800 for a GIF's 1/100), and a lookup by number had
            # given frames other frames' durations (a GIF's length came out 0.1 s short)
            self._durations[frame.pts * frame.time_base] = duration * frame.time_base
        for packet in self.video.encode(frame):
            _sane_dts(packet)
            if packet.pts is not None and packet.time_base:
                shown = self._shown_at(packet.pts, packet.time_base)
                if shown is not None:
                    packet.duration = max(1, round(self._durations.pop(shown) / packet.time_base))
                    self._end = max(self._end or Fraction(0), (packet.pts + packet.duration) * packet.time_base)
            if self._delay is None and packet.pts is not None and packet.dts is not None:
                self._delay = packet.pts - packet.dts  # B-frames: the first decode time is before the first shown
            if self._last is not None:
                self.container.mux(self._last)
            self._last = packet
        if frame is None and self._last is not None:
            self._mux_last()

    def _mux_last(self) -> None:
        """The last packet in decode order, lasting to where the last shown frame ends: mp4 and mov
        take a track's length from it, and with B-frames it is not the last shown one (a GIF's
        final 2 s pause came out 1.9 s, the file 0.1 s short)."""
        packet, self._last = self._last, None
        if self._ends_track and self._end is not None and packet.dts is not None and packet.time_base:
            # the track runs from the first decode time; its shown part starts self._delay later
            packet.duration = max(packet.duration or 0, round(self._end / packet.time_base) - packet.dts - (self._delay or 0))
        self.container.mux(packet)

    def _shown_at(self, pts: int, time_base: Fraction) -> Fraction | None:
        """The frame time (seconds) of a packet's ``pts``, among the frames waiting for theirs."""
        for start in self._durations:
            if round(start / time_base) == pts:
                return start
        return None

    def write_packet(self, packet: av.Packet, shift: Fraction) -> None:
        """Mux a copied packet, moved ``shift`` seconds earlier (a frame range's start)."""
        if packet.stream.index in self.copies.streams and moved(packet, shift, self._length, from_zero=bool(self.info.steady)):
            self.copies.mux(self.container, packet)

    def finish(self) -> None:
        """Flush the encoder and write the container's trailer."""
        self.write_frame(None)
        self.copies.flush(self.container)
        container, self.container = self.container, None
        container.close()

    def abandon(self) -> None:
        """Close without caring about errors (the caller deletes the file)."""
        if self.container is None:
            return
        container, self.container = self.container, None
        try:
            container.close()
        except Exception:  # noqa: BLE001 - the file is deleted anyway
            pass


def moved(packet: av.Packet, shift: Fraction, end: Fraction | None = None, *, from_zero: bool = False) -> bool:
    """Move a copied packet ``shift`` seconds earlier; False when it then falls before the start.
    A subtitle cue is cut to the range instead (``end``: the range's length): one shown across the
    start was dropped, and one running past the end kept its whole time, lengthening the file.
    ``from_zero``: the output holds no time before zero (AVI)."""
    cue = packet.stream is not None and packet.stream.type == "subtitle" and packet.pts is not None and packet.duration
    if shift:
        ticks = round(shift / packet.time_base)
        if packet.pts is not None:
            packet.pts -= ticks
        if packet.dts is not None:
            packet.dts -= ticks
        if cue and packet.pts < 0 < packet.pts + packet.duration:
            packet.duration, packet.pts = packet.pts + packet.duration, 0
            packet.dts = 0 if packet.dts is not None else None
        if (packet.dts if packet.dts is not None else packet.pts or 0) < 0 and not from_zero:
            # an audio packet still sounding at the start (or priming the decoder for it) stays,
            # before zero, as a whole run keeps it; it had been dropped, the sound starting late
            return bool(packet.stream is not None and packet.stream.type == "audio" and packet.pts is not None
                        and packet.pts + (packet.duration or 0) >= 0)
    start = packet.pts if packet.pts is not None else packet.dts
    if from_zero and start is not None and start < 0:
        # a container without times before zero (AVI): its muxer had moved every stream later to
        # make room, a fraction of a frame that its constant-rate video can only take as an empty
        # slot (frame 0 shown twice as long, the rest late: 25 frames read back for 24). There the
        # packets' order places the sound, so such a packet is dropped (AAC's priming, which an
        # AVI cannot trim anyway; the next one then sounds from zero) or starts at zero, whichever
        # moves the sound less
        stop = start + (packet.duration or 0)
        if stop <= -start:
            return False
        packet.pts = 0 if packet.pts is not None else None
        packet.dts = 0 if packet.dts is not None else None
        if cue:  # a cue keeps its end
            packet.duration = stop
    if cue and end is not None:
        last = round(end / packet.time_base)
        if packet.pts >= last:
            return False
        packet.duration = min(packet.duration, last - packet.pts)
    return True


@dataclass
class Copies:
    """The source's streams that go into an output besides the upscaled video."""

    #: source stream index -> its output stream
    streams: dict[int, av.stream.Stream] = field(default_factory=dict)
    #: one line per stream left out, saying why
    dropped: list[str] = field(default_factory=list)
    #: one line per text subtitle stream converted to a codec the container holds
    converted: list[str] = field(default_factory=list)
    #: source indices of the converted streams (their packets are encoded anew, the others copied)
    texts: set[int] = field(default_factory=set)
    #: converted streams with a cue that could not be converted (said once each)
    refused: set[int] = field(default_factory=set)
    #: converted streams whose codec shows one cue at a time (mov_text): their overlapping cues merged
    timelines: dict[int, subtitles.Timeline] = field(default_factory=dict)
    #: where a cue that could not be converted is said (None: the log)
    notice: Callable[[str], None] | None = None
    #: copied streams whose packets go through a bitstream filter (ADTS headers off AAC: :func:`adts_config`)
    filters: dict[int, av.bitstream.BitStreamFilterContext] = field(default_factory=dict)
    #: cover pictures for mp4 (output stream, its one packet), written as the file closes
    covers: list[tuple[av.stream.Stream, av.Packet]] = field(default_factory=list)

    def mux(self, container: av.container.OutputContainer, packet: av.Packet) -> None:
        """Mux ``packet`` of a source stream into its output stream (none: it is left out)."""
        index = packet.stream.index
        target = self.streams.get(index)
        if target is None:
            return
        if index in self.texts:
            at = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else 0.0
            try:
                if index in self.timelines:
                    self._mux_all(container, target, self.timelines[index].add(packet))
                    self._say_refused(index, target)
                    return
                packet = subtitles.convert(packet, target)
            except subtitles.Refused as exc:
                self._refused(index, at, target, exc)
                return
            if packet is None:
                return
        if index in self.filters:
            self._mux_all(container, target, strip_adts(self.filters[index], packet))
            return
        packet.stream = target
        container.mux(packet)

    def flush(self, container: av.container.OutputContainer) -> None:
        """Write the cues the timelines still hold, and the cover pictures; before the container is closed."""
        for index, timeline in self.timelines.items():
            self._mux_all(container, self.streams[index], timeline.flush())
            self._say_refused(index, self.streams[index])
        for target, picture in self.covers:
            picture.pts = picture.dts = None
            self._mux_all(container, target, [picture])
        self.covers.clear()

    def _say_refused(self, index: int, target) -> None:
        timeline = self.timelines[index]
        for exc in timeline.refused:
            self._refused(index, 0.0, target, exc)
        timeline.refused.clear()

    @staticmethod
    def _mux_all(container, target, packets) -> None:
        for packet in packets:
            packet.stream = target
            container.mux(packet)

    def _refused(self, index: int, at: float, target, exc: Exception) -> None:
        at = exc.at if getattr(exc, "at", None) is not None else at  # a held cue's own time, not the one that let it out
        if index not in self.refused:
            self.refused.add(index)
            line = f"subtitle stream {index}: a cue at {at:.3f} s could not be converted to {target.codec_context.name} ({exc}); left out"
            if self.notice is not None:
                self.notice(line)
            else:
                log.warning("%s", line)


def copy_streams(container: av.container.OutputContainer, source: av.container.InputContainer, muxer: str,
                 copy: set[int], notice: Callable[[str], None] | None = None) -> Copies:
    """Add copies of the source streams in ``copy`` that ``muxer`` can hold, and conversions of text
    subtitles it cannot hold (:mod:`.subtitles`); the lines of :class:`Copies` say what was not kept as it was,
    and a cue that cannot be converted is said through ``notice`` (default: the log)."""
    copies = Copies(notice=notice)
    streams, dropped = copies.streams, copies.dropped
    upscaled = video_stream(source).index
    covers = {s.index for s in source.streams.video if s.index != upscaled and is_cover(s)}
    firsts = _first_packets(source, {s.index for s in source.streams if s.index in copy and s.type != "attachment"} | covers)
    for stream in source.streams:
        if stream.index in covers:
            _copy_cover(container, stream, firsts.get(stream.index), muxer, copies)
            continue
        if stream.type == "video" and stream.index != upscaled:
            context = stream.codec_context
            what = f"{context.name}, {context.width}x{context.height}" if context is not None else "unknown codec"
            dropped.append(f"video stream {stream.index} ({what}): only the first video stream is upscaled")
            continue
        if stream.index not in copy:
            continue
        what = f"{stream.type} stream {stream.index}"
        if (stream.type == "data" and stream.codec_context is None and "timecode" in stream.metadata
                and "timecode" in video_stream(source).metadata):  # the timecode track: written anew from the video's tag
            continue
        if stream.type == "attachment":
            if muxer != "matroska":
                dropped.append(f"{what} ({stream.name}): {_a_file(muxer)} cannot hold attachments; a .mkv output keeps it")
                continue
            container.add_attachment(stream.name or f"attachment{stream.index}", stream.mimetype or "application/octet-stream", bytes(stream.data))
            continue
        codec = stream.codec_context.name if stream.codec_context else None
        if codec is None:  # KLV and other data FFmpeg has no codec for ("cannot hold unknown" had been said)
            dropped.append(f"{what} (data FFmpeg names no codec for, such as KLV): {_a_file(muxer)} cannot hold it")
            continue
        first = firsts.get(stream.index)
        if not _holds(muxer, stream, first):
            into = subtitles.target(muxer, codec) if stream.type == "subtitle" else None
            if into is not None:
                _convert(container, stream, codec, into, muxer, copies)
                continue
            dropped.append(f"{what} ({codec}): {_a_file(muxer)} cannot hold {codec}{_keepers_hint(muxer, stream, first)}")
            continue
        try:
            streams[stream.index] = copied = _sized_copy(container, stream, muxer) or container.add_stream_from_template(stream)
            headers_off = _as_raw_aac(stream, copied, first)  # for every muxer alike
            if headers_off is not None:
                copies.filters[stream.index] = headers_off
        except (av.error.FFmpegError, ValueError) as exc:
            dropped.append(f"{what} ({codec}): {first_line(exc)}")
            continue
        dropped += copy_tags(stream, copied, muxer, what)
    return copies


def foreseen_changes(src: str | Path, muxer: str, family: str, info: VideoInfo, crf: int | None) -> tuple[list[str], list[str]]:
    """The lines of what an output of ``muxer`` will drop and convert (:class:`Output`'s), before
    any frame is upscaled: a run that joins segments at the end (resume=True, the cluster) had
    said them only then, after the long upscale, where one run writing the file says them at its
    first frame. Worked out by setting up that output in a scratch folder and abandoning it before
    its header; the source's display rotation is read from its first frame, as a run reads it."""
    import dataclasses
    import shutil
    import tempfile

    container = source.open_video(src)
    scratch = tempfile.mkdtemp(prefix="sr-filter-streams-")
    try:
        first = source.first_frame(container)
        shown = dataclasses.replace(info, rotation=source.rotation(first))
        output = Output(os.path.join(scratch, "streams"), muxer, family, shown, container, width=even_dimension(info.width),
                        height=even_dimension(info.height), crf=crf, copy=copyable(container))
        output.abandon()
        return output.dropped, output.converted
    except (av.error.FFmpegError, OSError, VideoFormatError):  # not foreseen: said after the join, as before
        return [], []
    finally:
        container.close()
        shutil.rmtree(scratch, ignore_errors=True)


def say_new_changes(dropped: list[str], converted: list[str], said: tuple[list[str], list[str]], notice) -> None:
    """:func:`say_changes` for the lines not in ``said`` (those said before the upscale)."""
    say_changes([line for line in dropped if line not in said[0]], [line for line in converted if line not in said[1]], notice)


#: the picture codecs FFmpeg's mp4 writer takes as cover art
_COVER_CODECS = frozenset({"mjpeg", "png", "bmp"})


def _copy_cover(container: av.container.OutputContainer, stream: av.stream.Stream, picture: av.Packet | None,
                muxer: str, copies: Copies) -> None:
    """Keep the cover picture ``stream`` (its one packet ``picture``): as an image attachment in
    .mkv, as cover art (covr) in .mp4; elsewhere its dropped line. It had been "dropped video
    stream 1 (mjpeg, 600x600): only the first video stream is upscaled", from .mkv into .mkv too."""
    context = stream.codec_context
    codec = context.name if context is not None else "unknown"
    what = f"the cover picture (video stream {stream.index}, {codec}"
    what += f", {context.width}x{context.height})" if context is not None else ")"
    if picture is None:
        copies.dropped.append(f"{what}: it could not be read")
        return
    if muxer == "matroska":
        mimetype = stream.metadata.get("mimetype") or {"png": "image/png", "bmp": "image/bmp"}.get(codec, "image/jpeg")
        name = stream.metadata.get("filename") or f"cover.{mimetype.rpartition('/')[2]}"
        container.add_attachment(name, mimetype, bytes(picture))
        return
    if muxer == "mp4" and codec in _COVER_CODECS:  # FFmpeg's mov writer keeps cover art in its mp4 flavour only
        copied = container.add_stream_from_template(stream)
        copied.disposition = stream.disposition
        copies.covers.append((copied, picture))
        return
    copies.dropped.append(f"{what}: {_a_file(muxer)} cannot hold it; a .mkv or .mp4 output keeps it")


def say_changes(dropped: list[str], converted: list[str], notice) -> None:
    """One notice per stream the output leaves out or converts."""
    for what in dropped:
        notice(f"dropped {what}")
    for what in converted:
        notice(f"converted {what}")


def _convert(container: av.container.OutputContainer, stream: av.stream.Stream, codec: str, into: str, muxer: str, copies: Copies) -> None:
    """Add a ``into`` conversion of the text subtitle ``stream`` to ``copies``, or its dropped line."""
    what = f"subtitle stream {stream.index} ({codec})"
    try:
        copies.streams[stream.index] = converted = subtitles.add(container, stream, into)
    except (av.error.FFmpegError, ValueError) as exc:
        copies.dropped.append(f"{what}: {_a_file(muxer)} cannot hold {codec}, and converting it to {into} failed ({first_line(exc)})")
        return
    copies.texts.add(stream.index)
    if into == "mov_text":  # one cue at a time: FFmpeg's mov writer delayed overlapping ones
        copies.timelines[stream.index] = subtitles.Timeline(converted)
    copies.dropped += copy_tags(stream, converted, muxer, what)
    styles = "; its styles (fonts, colours, places) are lost, which a .mkv output keeps" if codec in subtitles.STYLED else ""
    copies.converted.append(f"{what} to {into}: {_a_file(muxer)} cannot hold {codec}{styles}")


#: audio whose packets an AVI times by the samples per packet, which the reader of an AVI source
#: leaves unknown (0): copied so, AC3's timestamps came out 5x short (1.98 s of sound ending at
#: 0.38 s) and players that trust them lost sync
_SIZED_IN_AVI = frozenset({"ac3"})


def _sized_copy(container: av.container.OutputContainer, stream: av.stream.Stream, muxer: str) -> av.stream.Stream | None:
    """For AC3 into AVI with that size unknown: an output stream made by the codec's own encoder
    (same rate, channels and bit rate; AC3 carries no extra setup data), which knows it, for the
    copied packets to go into unchanged; None otherwise. (E-AC3 so made is timed wrongly too.)"""
    context = stream.codec_context
    if muxer != "avi" or stream.type != "audio" or context is None or context.name not in _SIZED_IN_AVI or context.frame_size:
        return None
    copied = container.add_stream(context.name, rate=context.sample_rate, layout=context.layout.name)
    if context.bit_rate:
        copied.codec_context.bit_rate = context.bit_rate
    return copied


#: stream tags the muxer writes itself (Matroska's per-track DURATION): not copied
_OWN_TAGS = {"duration"}


def copy_tags(source: av.stream.Stream, target: av.stream.Stream, muxer: str, what: str) -> list[str]:
    """The stream's tags (language, title, ...) and its flags (default, forced, ...) onto its copy.
    In mp4/mov the title also names the track's handler, which is what many players list. Returns
    a line for each language tag or flag ``muxer``'s files cannot hold (``what``: the stream as
    messages name it): a .mov keeps only languages with a Macintosh code (a language with another
    ISO 639-2 spelling takes it: fre as fra, deu as ger) and only the default flag; .webm drops
    hearing and visual impaired; they had all been lost without a word."""
    tags = _named_handler(_titled({k: v for k, v in source.metadata.items() if k.lower() not in _OWN_TAGS}), muxer)
    lost = _fit_language(tags, muxer, what)
    target.metadata.update(tags)
    target.disposition = source.disposition
    flags = int(source.disposition) & _NOTED_FLAGS
    missing = flags & ~_kept_as(muxer, None, flags)[1] if flags and muxer in CONTAINERS.values() else 0
    if missing:
        names = [name.replace("_", " ") for name, bit in _FLAG_NAMES.items() if missing & bit]
        keepers = [_suffix(m) for m in ("matroska", "mp4") if m != muxer and not missing & ~_kept_as(m, None, missing)[1]]
        lost.append(f"the {' and '.join(names)} flag{'s' if len(names) > 1 else ''} of {what}: {_a_file(muxer)} cannot hold "
                    f"{'them' if len(names) > 1 else 'it'}" + (f"; a {' or '.join(keepers)} output keeps {'them' if len(names) > 1 else 'it'}" if keepers else ""))
    return lost


def _fit_language(tags: dict[str, str], muxer: str, what: str) -> list[str]:
    """In ``tags``, the language as ``muxer``'s files keep it: a .mov keeps only languages FFmpeg has
    a Macintosh code for, so one with two ISO 639-2 spellings takes the kept one (fre as fra, deu
    as ger), and one without is taken out, as is any language from an .avi, which holds none;
    returns the line that says so."""
    key = next((k for k in tags if k.lower() == "language"), None)
    if key is None or muxer not in CONTAINERS.values() or tags[key].lower() == "und":  # undetermined: no language to lose
        return []
    spellings = (tags[key], *_ISO639_OTHER.get(tags[key].lower(), ())) if muxer == "mov" else (tags[key],)
    kept = next((code for code in spellings if _kept_as(muxer, code, 0)[0] == code), None)
    if kept is not None:
        tags[key] = kept
        return []
    if muxer == "mov":
        line = (f"the language tag ({tags[key]}) of {what}: {_a_file(muxer)} keeps only languages FFmpeg has a "
                "Macintosh code for; an .mp4 or .mkv output keeps it")
    else:  # an .avi holds no language at all: a film's dubs had lost theirs without a word
        line = f"the language tag ({tags[key]}) of {what}: {_a_file(muxer)} cannot hold it; a .mkv or .mp4 output keeps it"
    del tags[key]
    return [line]


#: ISO 639-2 languages with two codes (bibliographic and terminological): the other spelling of each
_ISO639_PAIRS = (("alb", "sqi"), ("arm", "hye"), ("baq", "eus"), ("bur", "mya"), ("chi", "zho"), ("cze", "ces"),
                 ("dut", "nld"), ("fre", "fra"), ("geo", "kat"), ("ger", "deu"), ("gre", "ell"), ("ice", "isl"),
                 ("mac", "mkd"), ("mao", "mri"), ("may", "msa"), ("per", "fas"), ("rum", "ron"), ("slo", "slk"),
                 ("tib", "bod"), ("wel", "cym"))
_ISO639_OTHER = {a: (b,) for a, b in _ISO639_PAIRS} | {b: (a,) for a, b in _ISO639_PAIRS}
#: the flags said when a container drops them (not "default": players pick a track themselves where
#: none is marked, and an .avi, which holds no flags, would be told so for every file)
_FLAG_NAMES = {"dub": 2, "original": 4, "comment": 8, "lyrics": 16, "karaoke": 32, "forced": 64,
               "hearing_impaired": 128, "visual_impaired": 256}
_NOTED_FLAGS = sum(_FLAG_NAMES.values())


@functools.lru_cache(maxsize=None)
def _kept_as(muxer: str, language: str | None, flags: int) -> tuple[str | None, int]:
    """(language, flags) as a ``muxer`` file written by FFmpeg reads them back: a tiny audio track
    written in memory, once per question."""
    buffer = io.BytesIO()
    try:
        with av.open(buffer, "w", format=muxer) as out:
            stream = out.add_stream("libopus" if muxer == "webm" else "aac", rate=48000, layout="mono")
            if language:
                stream.metadata["language"] = language
            stream.disposition = flags
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, 0
            for packet in [*stream.encode(frame), *stream.encode()]:
                out.mux(packet)
        with av.open(io.BytesIO(buffer.getvalue())) as back:
            read = back.streams.audio[0]
            return read.metadata.get("language"), int(read.disposition)
    except (av.error.FFmpegError, ValueError, IndexError):
        return language, flags  # cannot tell: nothing is said


def copyable(source: av.container.InputContainer) -> set[int]:
    """Indices of the streams to try to copy: everything but the upscaled video stream."""
    video = video_stream(source).index
    return {s.index for s in source.streams if s.index != video and s.type in ("audio", "subtitle", "attachment", "data")
            and not (s.type == "data" and s.discard == _DISCARD_ALL)}


#: how FFmpeg's mov reader marks the text track that holds an mp4's chapters (read as chapters
#: instead, and copied as such: it was "dropped data stream 2 (unknown)")
_DISCARD_ALL = 48


def chapters_lost(muxer: str, chapters: list[dict]) -> list[str]:
    """The line for chapters an .avi cannot hold (they had been dropped without a word)."""
    if muxer != "avi" or not chapters:
        return []
    return [f"the chapters ({len(chapters)}): an .avi file cannot hold them; an .mkv, .mp4 or .mov output keeps them"]


def chapters_from(chapters: list[dict], shift: Fraction, end: Fraction | None = None) -> list[dict]:
    """``chapters`` (PyAV's dicts) moved ``shift`` seconds earlier and cut to [0, ``end``]; those
    wholly outside go."""
    kept = []
    for chapter in chapters:
        base = chapter["time_base"] or Fraction(1, 1000)
        start, stop = chapter["start"] * base - shift, chapter["end"] * base - shift
        if end is not None:
            stop = min(stop, end)
        if stop <= 0 or (end is not None and start >= end):
            continue
        kept.append({**chapter, "id": len(kept) + 1, "start": round(max(start, Fraction(0)) / base), "end": round(stop / base)})
    return kept


def tag_for_apple(context: av.codec.context.CodecContext, family: str, muxer: str) -> None:
    """HEVC in mp4/mov is tagged 'hvc1' (parameter sets in the sample description), which Apple's
    players require; FFmpeg's default 'hev1' plays everywhere but there."""
    if family == "hevc" and muxer in ("mp4", "mov"):
        context.codec_tag = "hvc1"


def mark_alpha_beside(target: av.stream.Stream, codec: str, info: VideoInfo) -> None:
    """Mark a stream joined from segments as carrying VP9's alpha plane beside the pictures (in
    the packets' side data), as its encoder does: the muxer writes Matroska's AlphaMode, without
    which decoders leave the plane out, from the pixel format, which the segments' own stream
    gives as their decoder reads it (without alpha)."""
    if info.alpha and codec in _ALPHA_BESIDE:
        target.codec_context.pix_fmt = choose_pix_fmt(info.pix_fmt, ENCODERS[codec][0], alpha=True)


def keep_video_tags(source: av.stream.Stream, target: av.stream.Stream, muxer: str) -> list[str]:
    """The upscaled stream keeps the source video's language, title, timecode and flags (default,
    ...); its other tags describe the old encoding (encoder, bit rate, Matroska's statistics).
    From the timecode the mov and mp4 writers build the timecode track anew (it had been lost).
    In mp4/mov its title names the track's handler, as a copied track's does. Returns the line for
    a language ``muxer``'s files cannot hold (:func:`_fit_language`)."""
    tags = _named_handler({k: v for k, v in _titled({k.lower(): v for k, v in source.metadata.items()}).items()
                           if k in ("language", "title", "timecode")}, muxer)
    lost = _fit_language(tags, muxer, "the video stream")
    target.metadata.update(tags)
    target.disposition = source.disposition
    return lost


def _named_handler(tags: dict[str, str], muxer: str) -> dict[str, str]:
    """In mp4/mov, the track's title also as its handler name, which many players list (the
    muxer's own is 'VideoHandler', 'SoundHandler', ...)."""
    if muxer in ("mp4", "mov") and tags.get("title") and "handler_name" not in tags:
        tags["handler_name"] = tags["title"]
    return tags


def _titled(tags: dict[str, str]) -> dict[str, str]:
    """Stream tags with a track title that mp4/mov read as 'name' given as 'title'."""
    if "name" in tags and not any(k.lower() == "title" for k in tags):
        tags["title"] = tags.pop("name")
    return tags


def _quality_options(family: str, crf: int | None) -> dict[str, str]:
    if family in ("h264", "hevc"):
        options = {"crf": str(crf), "preset": "medium"}
        if family == "hevc":
            options["x265-params"] = "log-level=error"
        return options
    if family == "vp9":
        return {"crf": str(crf), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
    if family == "av1":
        return {"crf": str(crf), "preset": "8"}
    if family == "ffv1":
        return {"level": "3", "slicecrc": "1"}
    return {"profile": "3"}  # prores: HQ (4444 for a 4:4:4 picture: set where the pixel format is known)

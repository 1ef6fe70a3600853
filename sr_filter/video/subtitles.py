"""Text subtitles converted for an output container that cannot hold their codec.

A copy keeps subtitle packets as they are; but .mp4 and .mov hold only mov_text, .webm only WebVTT
and .mkv everything but mov_text, so SubRip or ASS from an .mkv going into an .mp4 (the most common
case) had been dropped, with a line saying so. FFmpeg's subtitle decoders all produce ASS events,
which its text encoders take: each cue is decoded and encoded again, keeping its time.
"""

from __future__ import annotations

import av

#: FFmpeg's text subtitle codecs (bitmap ones, DVD or PGS, cannot be turned into text here)
TEXT = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})

#: the text codec each container holds, for a source codec it does not
_INTO = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt", "matroska": "subrip"}

#: source codecs whose styles (fonts, colours, positions) the target codecs do not keep
STYLED = frozenset({"ass", "ssa"})


def target(muxer: str, codec: str) -> str | None:
    """The text codec a ``codec`` subtitle stream becomes in ``muxer``'s files, or None."""
    return _INTO.get(muxer) if codec in TEXT else None


def add(container: av.container.OutputContainer, stream: av.stream.Stream, codec: str) -> av.stream.Stream:
    """An output stream encoding ``codec`` for the text of ``stream``; its encoder is opened here,
    so a refusal comes before the first frame is upscaled, not at the first cue."""
    decoder = stream.codec_context
    if not decoder.is_open:
        decoder.open()
    converted = container.add_stream(codec)
    # the encoders want an ASS header; a source without one (an ASS track whose file left it out)
    # gets FFmpeg's default, which every text decoder starts from
    converted.codec_context.subtitle_header = decoder.subtitle_header or _default_header()
    converted.codec_context.time_base = converted.time_base = stream.time_base
    converted.codec_context.open()
    return converted


class Refused(Exception):
    """A cue that the source's decoder or the target's encoder refuses (said once per stream)."""


def convert(packet: av.Packet, converted: av.stream.Stream) -> av.Packet | None:
    """``packet`` (a cue of its own stream) encoded for ``converted``, at the same time and for as
    long; None for a packet that holds no cue (mov_text's gap fillers); :class:`Refused` for one the
    decoder or the encoder refuses."""
    try:
        cues = packet.stream.decode2(packet)
        if cues is None or not len(cues):
            return None
        encoded = converted.codec_context.encode_subtitle(cues)
    except (av.error.FFmpegError, ValueError) as exc:
        raise Refused(str(exc)) from None
    encoded.pts, encoded.dts, encoded.duration = packet.pts, packet.dts, packet.duration
    encoded.time_base = packet.time_base
    return encoded


def _default_header() -> bytes:
    decoder = av.CodecContext.create("subrip", "r")
    decoder.open()
    return decoder.subtitle_header

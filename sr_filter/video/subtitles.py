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

#: source codecs whose styles (fonts, colours, positions; WebVTT's cue settings) the target codecs do not keep
STYLED = frozenset({"ass", "ssa", "webvtt"})


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
    """A cue that the source's decoder or the target's encoder refuses (said once per stream);
    ``at``: where it starts, in seconds, when known."""

    def __init__(self, message: str, at: float | None = None) -> None:
        super().__init__(message)
        self.at = at


def convert(packet: av.Packet, converted: av.stream.Stream) -> av.Packet | None:
    """``packet`` (a cue of its own stream) encoded for ``converted``, at the same time and for as
    long; None for a packet that holds no cue (mov_text's gap fillers); :class:`Refused` for one the
    decoder or the encoder refuses."""
    cues = _shown(packet)
    if cues is None:
        return None
    try:
        encoded = converted.codec_context.encode_subtitle(cues)
    except (av.error.FFmpegError, ValueError) as exc:
        raise Refused(str(exc)) from None
    encoded.pts, encoded.dts, encoded.duration = packet.pts, packet.dts, packet.duration
    encoded.time_base = packet.time_base
    return encoded


class Timeline:
    """Cues for a codec that shows one at a time (mov_text): overlapping cues become a run of
    cues that do not overlap, each showing the text of every cue on screen then, one line each.
    FFmpeg's mov writer had moved each overlapping cue to where the one before ended, so they
    drifted later and later (eight cues 0.25 s apart and 0.5 s long: the last 1.75 s late).

    A cue is written once the next one's start is known (or at :meth:`flush`): times are kept in
    the source packets' time base, ``(start, end, prefix, text)`` per cue on screen."""

    def __init__(self, converted: av.stream.Stream) -> None:
        self.converted = converted
        self.time_base = None
        self.cues: list[list] = []  # [start, end or None, ASS fields before the text, text]
        self.refused: list[Refused] = []  # cues the encoder refused since last asked (the rest go on)

    def add(self, packet: av.Packet) -> list[av.Packet]:
        """The cues that can be written now that ``packet``'s has come (:class:`Refused` if it cannot be read)."""
        shown = _shown(packet)
        if shown is None or packet.pts is None:
            return []
        if self.time_base is None:
            self.time_base = packet.time_base
        start = round(packet.pts * packet.time_base / self.time_base)
        end = start + round(packet.duration * packet.time_base / self.time_base) if packet.duration else None
        written = self._until(start)
        for rect in shown:  # ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, Text
            fields = bytes(getattr(rect, "ass", b"") or b"").split(b",", 8)
            prefix, text = (b",".join(fields[:8]), fields[8]) if len(fields) == 9 else (b"0,0,Default,,0,0,0,", fields[-1])
            self.cues.append([start, end, prefix, text])
        return written

    def flush(self) -> list[av.Packet]:
        """The cues still held, to the end of the last."""
        ends = [c[1] for c in self.cues if c[1] is not None]
        return self._until(max(ends)) if ends else []

    def _until(self, limit: int) -> list[av.Packet]:
        """Packets for the time before ``limit``: cut where a cue begins or ends."""
        for cue in self.cues:  # a cue without a duration lasts until the next one begins
            if cue[1] is None and cue[0] < limit:
                cue[1] = limit
        points = sorted({limit, *(c[0] for c in self.cues), *(c[1] for c in self.cues if c[1] is not None)})
        out = []
        for a, b in zip(points, points[1:]):
            if b > limit:
                break
            on = [c for c in self.cues if c[0] <= a and c[1] is not None and c[1] > a]
            if on and b > a:
                try:
                    out.append(self._packet(a, b - a, on))
                except Refused as exc:
                    self.refused.append(exc)
        self.cues = [c for c in self.cues if c[1] is None or c[1] > limit]
        for cue in self.cues:
            cue[0] = max(cue[0], limit)  # what is left of a cue still on screen starts here
        return out

    def _packet(self, start: int, length: int, cues: list[list]) -> av.Packet:
        from av.subtitles.subtitle import SubtitleSet

        text = b"\\N".join(c[3] for c in cues)
        try:
            encoded = self.converted.codec_context.encode_subtitle(SubtitleSet.create(cues[0][2] + b"," + text, 0, 0, 0))
        except (av.error.FFmpegError, ValueError) as exc:
            raise Refused(str(exc), float(start * self.time_base)) from None
        encoded.pts = encoded.dts = start
        encoded.duration = length
        encoded.time_base = self.time_base
        return encoded


def _shown(packet: av.Packet):
    """The cues a subtitle packet holds (a SubtitleSet), None for one that holds none (mov_text's
    gap fillers); :class:`Refused` where the decoder cannot read it."""
    try:
        cues = packet.stream.decode2(packet)
    except (av.error.FFmpegError, ValueError) as exc:
        raise Refused(str(exc)) from None
    return cues if cues is not None and len(cues) else None


def _default_header() -> bytes:
    decoder = av.CodecContext.create("subrip", "r")
    decoder.open()
    return decoder.subtitle_header

"""What an image file is and how large it claims to be, from its first bytes, before any decoding.

Used to refuse bad input early: a stream that is no image at all after its first few kilobytes
(``cat /dev/zero | sr-filter -``), and a PNG or JPEG whose header claims more pixels than memory
holds. Standard input is read in a bounded way: a prefix first, the rest only up to what the
claimed image (or, without a header size, half the available memory) can plausibly need. GIF,
BMP, WebP and TIFF had no header size here, so ``cat a.tif /dev/zero | sr-filter -`` read 11 GB.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Callable, Iterator

from .errors import ImageFormatError, InputTooLargeError
from .pnm import is_pnm, pnm_header, raw_length

#: (width, height, channels, bytes per sample)
Shape = tuple[int, int, int, int]

#: video output suffix -> FFmpeg container written for it (here, below both the image reader,
#: which refuses these names for an image, and the video package, which writes them)
VIDEO_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
#: video suffixes read but not written (an output of one is written as .mkv)
VIDEO_READ_ONLY = frozenset({".ts", ".m2ts", ".mts", ".flv", ".mpg", ".mpeg", ".vob", ".wmv", ".asf", ".3gp", ".ogv"})
#: every suffix read as a video (or a YUV4MPEG2 frame stream)
VIDEO_NAMES = frozenset({*VIDEO_CONTAINERS, ".y4m", *VIDEO_READ_ONLY})
_PREFIX = 64 << 10  # enough for any PNG IHDR and nearly every JPEG start-of-frame
_CHUNK = 1 << 20
#: first bytes of the picture formats read (WebP, RIFF....WEBP, is told apart below), with their names
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP",
    b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"II+\x00": "TIFF", b"MM\x00+": "TIFF",
}
#: formats whose files hold many pictures (frames, pages) as a matter of course
MANY_PICTURES = frozenset({"GIF", "WebP", "TIFF", "AVIF", "HEIF"})
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def is_image_prefix(data: bytes) -> bool:
    """Whether the bytes start like one of the formats this program reads."""
    return image_format(data) is not None


def image_format(data: bytes) -> str | None:
    """The name of the picture format the bytes start like (PNG, JPEG, ...), else None: for
    saying what a file given as something else is."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp" and _brands(data) & _AVIF_BRANDS:
        return "AVIF"
    if data[4:8] == b"ftyp" and _brands(data) & HEIF_BRANDS:
        return "HEIF"
    if is_pnm(data):
        return "PAM" if data[1:2] == b"7" else "Netpbm"
    return next((name for prefix, name in _SIGNATURES.items() if data.startswith(prefix)), None)


#: ISO base media brands of still pictures (AVIF, HEIF and their sequences), not videos
_STILL_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                           b"mif2", b"j2ki", b"j2is", b"crx ", b"avci", b"MA1B", b"MA1A"})
#: major brands of ISO base media videos (MP4, QuickTime, 3GP, cameras' own): other brands are
#: not called a video (a Canon CR3 raw picture shares the box format)
_VIDEO_BRANDS = frozenset({b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41",
                           b"mp42", b"mp71", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"qt  ", b"3gp4", b"3gp5", b"3gp6",
                           b"3gp7", b"3ge6", b"3gg6", b"3g2a", b"3g2b", b"3g2c", b"dash", b"mmp4", b"f4v ", b"MSNV",
                           b"XAVC", b"CAEP", b"NDAS", b"NDSC", b"NDSH", b"NDSM", b"NDSP", b"NDSS", b"NDXC", b"NDXH",
                           b"NDXM", b"NDXP", b"NDXS", b"kddi", b"mqt "})


#: ISO base media brands of AVIF pictures and sequences
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
#: ISO base media brands of HEIF pictures coded with HEVC (a phone's HEIC), as pillow-heif knows them
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})


def _brands(data: bytes) -> set[bytes]:
    """The major and compatible brands of an ISO base media file's ftyp box (as far as ``data`` holds it)."""
    data = bytes(data[:256])  # a stream's bytearray cannot go into a set
    end = min(len(data), max(16, int.from_bytes(data[:4], "big")))
    return {data[8:12], *(data[i:i + 4] for i in range(16, end - 3, 4))}


def _iso_video(data: bytes) -> bool:
    """Whether the bytes start an ISO base media file whose brands say video: a video major brand
    and no still-picture brand among the compatible ones (an AVIF may carry mp41 beside avif)."""
    if data[4:8] != b"ftyp":
        return False
    return data[8:12] in _VIDEO_BRANDS and not _brands(data) & _STILL_BRANDS


def video_kind(data: bytes) -> tuple[str, str] | None:
    """What video the bytes start like, with an article, and the suffix it is read by
    (("an MP4", ".mp4"), ("a YUV4MPEG2", ".y4m"), ...); None for anything else."""
    data = bytes(data[:64])  # a stream's bytearray cannot be looked up in a set (a piped MP4 had been a TypeError)
    if data.startswith(b"YUV4MPEG2 "):
        return "a YUV4MPEG2", ".y4m"
    if _iso_video(data):  # AVIF and HEIF pictures, and camera raws, share MP4's box format
        return ("a QuickTime", ".mov") if data[8:12] == b"qt  " else ("an MP4", ".mp4")
    if data.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: its DocType comes within the first bytes
        return ("a WebM", ".webm") if b"webm" in data else ("a Matroska", ".mkv")
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "an AVI", ".avi"
    return None


def video_named_as_image(data: bytes, name: str) -> str | None:
    """The message for a video file with an image's name (``data``: its first bytes), as the video
    reader words a picture with a video's name; None when the bytes are no video."""
    kind = video_kind(data)
    if kind is None:
        return None
    if kind[1] == ".y4m":
        return f"{name} is a YUV4MPEG2 frame stream, not an image; give it a .y4m name to upscale it as one"
    return f"{name} is {kind[0]} video, not an image; give it a video name (such as {kind[1]}) to upscale it as one"


def _what_instead(data: bytes) -> str:
    """What a stream that is no image is, where it says so in its first bytes, and what to do."""
    kind = video_kind(data)
    if kind is not None and kind[1] == ".y4m":
        return "it is a YUV4MPEG2 frame stream: use --format y4m"
    if kind is not None:
        return ("it is a video: give its file name instead, or pipe frames "
                "(ffmpeg -i clip -f yuv4mpegpipe - | sr-filter - --format y4m)")
    if _tga_like(data):  # (it had been "unknown or damaged format", as for any other bytes)
        return "it looks like a TGA, which has no signature to know it by on a stream: give it as a file"
    return "unknown or damaged format"


def _tga_like(data: bytes) -> bool:
    """Whether ``data`` starts with a plausible TGA header (TGA has no signature): a colour map
    flag of 0 or 1, a known image type and depth, a size, and a valid origin corner's bits."""
    if len(data) < 18:
        return False
    colour_map, kind, depth, flags = data[1], data[2], data[16], data[17]
    width, height = struct.unpack("<HH", bytes(data[12:16]))
    return (colour_map in (0, 1) and kind in (1, 2, 3, 9, 10, 11) and (kind & 7 != 1) == (colour_map == 0)
            and depth in (8, 15, 16, 24, 32) and width > 0 and height > 0 and not flags & 0xC0)


def webp_lossless(stream: BinaryIO) -> bool:
    """Whether a WebP file (a seekable stream at its start) holds only lossless (VP8L) pictures,
    still or animated: such a file is written back lossless. Reads the chunk headers alone."""
    head = stream.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return False
    kinds: set[bytes] = set()
    while True:
        chunk = stream.read(8)
        if len(chunk) < 8:
            break
        kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if kind == b"ANMF":  # a frame: 16 bytes of placement, then its own chunks
            stream.seek(16, 1)
            continue
        kinds.add(kind)
        stream.seek(size + (size & 1), 1)
    return b"VP8L" in kinds and b"VP8 " not in kinds


def png_header(data: bytes) -> Shape | None:
    """(width, height, channels, bytes per sample) from a PNG's IHDR chunk (a colour key counts as alpha)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 26:
        return None
    width, height, depth, colour = struct.unpack(">IIBB", bytes(data[16:26]))
    channels = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}.get(colour, 4)
    idat = data.find(b"IDAT")
    if channels in (1, 3) and data.find(b"tRNS", 0, idat if idat > 0 else len(data)) > 0:
        channels += 1  # a colour key becomes an alpha channel
    return width, height, channels, 2 if depth == 16 else 1


def jpeg_header(data: bytes) -> Shape | None:
    """(width, height, channels, 1) from a JPEG's start-of-frame segment."""
    frame = _jpeg_frame(data)
    return None if frame is None else frame[1]


def jpeg_frame_marker(data: bytes) -> int | None:
    """The start-of-frame marker of a JPEG (0xC0 baseline, 0xC2 progressive, ...); None for none."""
    frame = _jpeg_frame(data)
    return None if frame is None else frame[0]


def jpeg_unreadable_kind(data: bytes) -> str | None:
    """What kind of JPEG Pillow's decoder cannot read ("a 12-bit JPEG", "a lossless JPEG"), from
    its start-of-frame segment; None for the kinds it reads (or no JPEG)."""
    frame = _jpeg_frame(data)
    if frame is None:
        return None
    marker, _, precision = frame
    if marker in (0xC3, 0xC7, 0xCB, 0xCF):
        return f"a lossless {precision}-bit JPEG"
    return f"a {precision}-bit JPEG" if precision != 8 else None


def _jpeg_frame(data: bytes) -> tuple[int, Shape, int] | None:
    """(start-of-frame marker, shape, sample precision in bits) of a JPEG, from its header."""
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack(">H", bytes(data[pos + 2 : pos + 4]))[0]
        if marker in _SOF:
            if pos + 10 > len(data):
                return None
            precision, height, width, components = struct.unpack(">BHHB", bytes(data[pos + 4 : pos + 10]))
            return marker, (width, height, min(max(components, 1), 4), 1), precision
        pos += 2 + length
    return None


def gif_header(data: bytes) -> Shape | None:
    """(width, height, 4, 1) from a GIF's logical screen (a palette with transparency becomes RGBA);
    None for a screen of 0 px. A frame may reach past the screen, and Pillow then reads the picture
    larger: the reader checks Pillow's size of a GIF as well."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 10:
        return None
    width, height = struct.unpack("<HH", bytes(data[6:10]))
    return (width, height, 4, 1) if width and height else None


def gif_ends_whole(tail: bytes) -> bool:
    """Whether a GIF's last bytes (padding of zeros aside) end in its trailer, 0x3B: one cut just
    after a frame reads without an error, a frame or more short (it had passed without a word)."""
    return bytes(tail).rstrip(b"\0").endswith(b";")


def bmp_header(data: bytes) -> Shape | None:
    """(width, height, channels, 1) from a BMP's info header (OS/2's short one too)."""
    if data[:2] != b"BM" or len(data) < 26:
        return None
    size = struct.unpack("<I", bytes(data[14:18]))[0]
    if size == 12:
        width, height, _planes, bits = struct.unpack("<HHHH", bytes(data[18:26]))
    elif size >= 40 and len(data) >= 30:
        width, height, _planes, bits = struct.unpack("<iiHH", bytes(data[18:30]))
    else:
        return None
    return abs(width), abs(height), 4 if bits == 32 else 3, 1


def webp_header(data: bytes) -> Shape | None:
    """(width, height, 4, 1) from a WebP's first chunk (VP8X canvas, VP8L or VP8 frame)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    kind = bytes(data[12:16])
    if kind == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little"), 4, 1
    if kind == b"VP8L" and data[20] == 0x2F:
        bits = struct.unpack("<I", bytes(data[21:25]))[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4, 1
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", bytes(data[26:30]))
        return width & 0x3FFF, height & 0x3FFF, 4, 1
    return None


def tiff_header(data: bytes) -> Shape | None:
    """(width, height, samples, bytes per sample) from a classic TIFF's first directory, when it
    lies within ``data`` (None for BigTIFF or a directory further on)."""
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(bytes(data[:4]))
    if order is None or len(data) < 8:
        return None
    at = struct.unpack(order + "I", bytes(data[4:8]))[0]
    if at + 2 > len(data):
        return None
    count = struct.unpack(order + "H", bytes(data[at : at + 2]))[0]
    if at + 2 + 12 * count > len(data):
        return None
    tags = {}
    for k in range(count):
        tag, kind, n = struct.unpack(order + "HHI", bytes(data[at + 2 + 12 * k : at + 10 + 12 * k]))
        field = bytes(data[at + 10 + 12 * k : at + 14 + 12 * k])
        if kind == 3:  # SHORT: in the field, or (more than two) where it points; the first is enough
            where = None if n <= 2 else struct.unpack(order + "I", field)[0]
            raw = field[:2] if where is None else bytes(data[where : where + 2])
            value = struct.unpack(order + "H", raw)[0] if len(raw) == 2 else None
        elif kind == 4 and n == 1:  # LONG
            value = struct.unpack(order + "I", field)[0]
        else:
            value = None
        tags[tag] = value
    width, height = tags.get(256), tags.get(257)
    if not width or not height:
        return None
    bits = tags.get(258) or 8
    return width, height, tags.get(277) or 1, max(1, -(-bits // 8))


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISO base media boxes in ``data[start:end]``,
    as far as ``data`` holds them."""
    while start + 8 <= end:
        size, kind = int.from_bytes(data[start:start + 4], "big"), bytes(data[start + 4:start + 8])
        head = 8
        if size == 1 and start + 16 <= end:  # a 64-bit size follows the type
            size, head = int.from_bytes(data[start + 8:start + 16], "big"), 16
        elif size == 0:  # to the end of the file
            size = end - start
        if size < head:
            return
        yield kind, start + head, min(start + size, end)
        start += size


def _item_properties(data: bytes) -> tuple[bytes, tuple[int, int]] | None:
    """(the file's first bytes, where its item property boxes (ipco) lie in them) of an AVIF or a
    HEIF picture, or None."""
    if image_format(data) not in ("AVIF", "HEIF"):
        return None
    data = bytes(data[:_PREFIX])
    meta = next(((s, e) for kind, s, e in _boxes(data, 0, len(data)) if kind == b"meta"), None)
    iprp = meta and next(((s, e) for kind, s, e in _boxes(data, meta[0] + 4, meta[1]) if kind == b"iprp"), None)
    ipco = iprp and next(((s, e) for kind, s, e in _boxes(data, *iprp) if kind == b"ipco"), None)
    return (data, ipco) if ipco else None


def avif_depth(data: bytes) -> int:
    """The bits per sample an AVIF's or a HEIF's pictures are coded with (8, 10 or 12: an AV1
    configuration box's high_bitdepth and twelve_bit flags, an HEVC one's luma bit depth), 8 where
    the header does not say."""
    properties = _item_properties(data)
    if properties is None:
        return 8
    data, ipco = properties
    depths = []
    for kind, s, e in _boxes(data, *ipco):
        if kind == b"av1C" and e - s >= 3:
            flag = data[s + 2]
            depths.append((12 if flag & 0x20 else 10) if flag & 0x40 else 8)
        elif kind == b"hvcC" and e - s >= 19:  # bitDepthLumaMinus8, after the profile, level and chroma fields
            depths.append(8 + (data[s + 17] & 0x07))
    return max(depths, default=8)


def avif_nclx(data: bytes) -> tuple[int, int] | None:
    """(colour primaries, transfer characteristics) of an AVIF whose colours are described by code
    points (an nclx colour box: 1 and 13 are sRGB's, 9 BT.2020, 12 Display P3; 16 PQ, 18 HLG), or
    None where it has an ICC profile or no such box."""
    properties = _item_properties(data)
    if properties is None:
        return None
    data, ipco = properties
    colours = [(data[s:s + 4], s) for kind, s, e in _boxes(data, *ipco) if kind == b"colr" and e - s >= 4]
    if any(kind in (b"prof", b"rICC") for kind, _ in colours):
        return None
    return next(((int.from_bytes(data[s + 4:s + 6], "big"), int.from_bytes(data[s + 6:s + 8], "big"))
                 for kind, s in colours if kind == b"nclx" and s + 8 <= len(data)), None)


def avif_header(data: bytes) -> Shape | None:
    """(width, height, channels, bytes per sample) of an AVIF's or a HEIF's largest picture (its
    image spatial extents, in the meta box's item properties), 4 channels when it has an alpha
    plane; Pillow decodes an AVIF to 8 bits, a HEIF deeper than 8 is read at 16 (imageio)."""
    properties = _item_properties(data)
    if properties is None:
        return None
    data, ipco = properties
    sides, alpha = [], False
    for kind, s, e in _boxes(data, *ipco):
        if kind == b"ispe" and e - s >= 12:
            sides.append((int.from_bytes(data[s + 4:s + 8], "big"), int.from_bytes(data[s + 8:s + 12], "big")))
        elif kind == b"auxC" and (b"auxiliary:alpha" in data[s:e] or b"hevc:2015:auxid:1\0" in data[s:e]):
            alpha = True
    if not sides:
        return None
    width, height = max(sides, key=lambda side: side[0] * side[1])
    deep = image_format(data) == "HEIF" and avif_depth(data) > 8
    return width, height, 4 if alpha else 3, 2 if deep else 1


def header_shape(data: bytes) -> Shape | None:
    """The claimed shape of a picture from its header alone: PNG, JPEG, GIF, BMP, WebP, AVIF, HEIF,
    Netpbm, and a TIFF whose first directory is in ``data`` (else None)."""
    for header in (png_header, jpeg_header, gif_header, bmp_header, webp_header, avif_header, pnm_header, tiff_header):
        shape = header(data)
        if shape is not None:
            return shape
    return None


def read_stream(stream: BinaryIO, name: str, check: Callable[[Shape], None], available: int) -> bytes:
    """Read an image from a stream without ever holding more than it can plausibly need.

    The first 64 KiB must look like an image; a header found there (:func:`header_shape`) is passed
    to ``check`` (which refuses sizes that would not fit) before the rest is read. The rest is read
    up to four times the claimed raw pixel bytes plus 64 MiB (metadata, APNG frames, camera
    previews; 64 times for GIF, WebP and TIFF, which hold frames and pages), and never more than half of
    ``available`` memory; beyond that the input is refused. A raw Netpbm picture is read to its end
    and 3 bytes more (whether another follows: a stream of them is read no further).
    """
    data = bytearray(_read_some(stream, _PREFIX))
    if data and not is_image_prefix(data):
        raise ImageFormatError(f"{name} is not a readable image ({_what_instead(data)})")
    limit = max(available // 2, _PREFIX)
    shape = header_shape(data)
    if shape is not None:
        check(shape)
        width, height, channels, itemsize = shape
        # pages and frames: an 86-page TIFF of 76 MB is a picture too (only the first is upscaled)
        pictures = 64 if image_format(data) in MANY_PICTURES else 4
        limit = min(limit, pictures * width * height * channels * itemsize + (64 << 20))
        first = raw_length(data)
        if first is not None:  # a stream of Netpbm pictures (ffmpeg's image2pipe) had been refused as endless
            return _read_first(stream, data, first + 3)  # 3 more: whether another picture follows is said
    while len(data) <= limit:
        block = _read_some(stream, _CHUNK)
        if not block:
            return bytes(data)
        data += block
    raise InputTooLargeError(
        f"{name} goes on past {limit / (1 << 20):,.0f} MiB, more than an image of its kind can need; "
        "refusing to read further (padded or endless input)"
    )


def _read_first(stream: BinaryIO, data: bytearray, length: int) -> bytes:
    """``data`` and what follows it in ``stream``, up to ``length`` bytes in all (fewer at its end);
    the rest of the stream is left unread."""
    if len(data) < length:
        data += _read_some(stream, length - len(data))
    return bytes(data[:length])


def _read_some(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes (fewer only at the end of the stream)."""
    parts, got = [], 0
    while got < size:
        block = stream.read(size - got)
        if not block:
            break
        parts.append(block)
        got += len(block)
    return b"".join(parts)

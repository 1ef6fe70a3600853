"""Hostile and unusual image files, conversion rules and platform facts at the I/O layer.

Every case here was a traceback, a wrong result or a stray stderr line before its fix; each test
builds its own small file (or substitutes the platform fact) and checks the real code path.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import warnings
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from sr_filter import convert, imageio, limits, png, sniff
from sr_filter.errors import ImageFormatError, ImageTooLargeError
from sr_filter.tiling import ArraySink

from .conftest import ROOT
from .imagefiles import png16_filtered, raw_exif


def test_one_rounding_rule_for_tiles_and_whole_images():
    """Tile rows and whole arrays round float -> integer the same way; NaN is 0 without a warning."""
    values = np.array([0.0, 0.5 / 255, 1.5 / 255, 0.2, 0.9999, 1.7, -0.3, float("nan")], dtype=np.float32).reshape(1, 1, 1, 8)
    for dtype in (np.uint8, np.uint16):
        array = np.full((1, 8), 7, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy's "invalid value encountered in cast" would fail here
            ArraySink(array).write(0, values)
        expected = convert.from_float(values[0, 0], dtype)
        assert np.array_equal(array, expected), (array, expected)
        assert array[0, -1] == 0 and array[0, 5] == np.iinfo(dtype).max and array[0, 6] == 0


def _with_chunk(png: bytes, tag: bytes, body: bytes) -> bytes:
    """The PNG with one more chunk inserted just before its first IDAT."""
    at = png.index(b"IDAT") - 4
    return png[:at] + struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF) + png[at:]


@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_png_colour_key_becomes_alpha(channels):
    """A grey or RGB tRNS colour key in a 16-bit PNG hides exactly the keyed pixels (docs/io.md)."""
    rng = np.random.default_rng(channels)
    array = (rng.random((7, 9, channels)) * 65535).astype(np.uint16)
    key = array[2, 3].copy()
    array[5, 1] = key
    data = _with_chunk(png16_filtered(array, interlaced=False), b"tRNS", struct.pack(f">{channels}H", *key))
    back, meta = imageio.read_image(data)
    assert back.dtype == np.uint16 and back.shape == (7, 9, channels + 1)
    assert np.array_equal(back[..., :channels], array)
    hidden = np.all(array == key, axis=-1)
    assert hidden.sum() >= 2 and np.array_equal(back[..., -1] == 0, hidden) and np.all(back[..., -1][~hidden] == 65535)
    assert limits.estimate_bytes(9, 7, channels + 1, 1, 2) == limits.estimate_bytes(*sniff.png_header(data)[:3], 1, 2)


def _low_grey_png(values: np.ndarray, bits: int, key: int) -> bytes:
    """A grey PNG of 1, 2 or 4 bits (samples 0 .. 2**bits - 1) with the colour key ``key`` (tRNS),
    as PNG optimisers write line art on transparency; packed by hand (Pillow writes no 2- or 4-bit key)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    height, width = values.shape
    rows = b"".join(b"\0" + np.packbits(np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, 8 - bits:]).tobytes()
                    for row in values)
    return (png.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, 0, 0, 0, 0))
            + chunk(b"tRNS", struct.pack(">H", key)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_depth_grey_png_colour_key_becomes_alpha(bits):
    """A 1-, 2- or 4-bit grey PNG's colour key hides exactly the pixels libpng hides, read from a file
    and from a PIL image (lazy, loaded or copied). Pillow reads a 1-bit one as plain grey, and keeps a
    2- or 4-bit one's key unscaled (3) while it scales the pixels (51): the transparency had been lost."""
    top = (1 << bits) - 1
    values = (np.arange(7 * 11).reshape(7, 11) % (top + 1)).astype(np.uint8)
    key = min(3, top)
    data = _low_grey_png(values, bits, key)
    reference = imagecodecs.png_decode(data)  # libpng
    assert reference.shape == (7, 11, 2) and 0 < (reference[..., 1] == 0).sum() < values.size
    assert np.array_equal(reference[..., 1] == 0, values == key)
    back, meta = imageio.read_image(data, name="art.png")
    assert back.dtype == np.uint8 and np.array_equal(back, reference)
    image = Image.open(io.BytesIO(data))
    assert np.array_equal(convert.pil_to_array(image)[0], reference)  # lazy: Pillow still knows the depth
    image.load()
    assert np.array_equal(convert.pil_to_array(image)[0], reference)
    assert np.array_equal(convert.pil_to_array(image.copy())[0], reference)


def test_one_bit_png_colour_key_as_pillow_writes_it():
    """Black-and-white line art on transparency as Pillow (and oxipng) write it: 1 bit, tRNS 0."""
    art = np.zeros((12, 12), bool)
    art[:, 6:] = True
    buffer = io.BytesIO()
    Image.fromarray(art).save(buffer, "PNG", transparency=0)
    back, _ = imageio.read_image(buffer.getvalue())
    assert back.shape == (12, 12, 2) and np.array_equal(back[..., 1] == 0, ~art) and np.all(back[..., 1][art] == 255)
    assert np.array_equal(convert.pil_to_array(Image.open(buffer))[0], back)


def test_an_8bit_grey_png_key_is_not_scaled():
    """The key of an 8-bit grey PNG is a value of its pixels: one that matches none hides nothing,
    even when every pixel lies on the 4-bit grid (Pillow still knows the file's depth)."""
    grid = (np.arange(64).reshape(8, 8) % 16 * 17).astype(np.uint8)
    for key in (2, 34):
        array = convert.pil_to_array(Image.open(io.BytesIO(_save_png(grid, transparency=key))))[0]
        assert array.shape == (8, 8, 2) and np.array_equal(array[..., 1] == 0, grid == key)


def _save_png(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", **options)
    return buffer.getvalue()


def test_16bit_png_is_written_with_real_filters():
    """A smooth 16-bit ramp compresses better with libpng's filters than as unfiltered rows."""
    ramp = (np.add.outer(np.arange(64), np.arange(96))[..., None] * np.array([300, 200, 100])).astype(np.uint16)
    data = png.encode_png(ramp)
    unfiltered = zlib.compress(b"".join(b"\0" + row.astype(">u2").tobytes() for row in ramp), 6)
    assert len(data) < 0.7 * len(unfiltered), (len(data), len(unfiltered))
    back, _ = imageio.read_image(data)
    assert np.array_equal(back, ramp)


def _photo_like(scale: int) -> np.ndarray:
    from .conftest import BENCHMARKS, require_shared

    image = Image.open(require_shared(BENCHMARKS / "Set14" / "baboon.png")).convert("RGB")
    return np.asarray(image.resize((image.width * scale, image.height * scale), Image.BICUBIC))


def _flat_art(scale: int) -> np.ndarray:
    from sr_filter.training.lineart import make_lineart

    art = Image.fromarray(make_lineart((600, 450), 2, "flat"))
    return np.asarray(art.resize((600 * scale, 450 * scale), Image.NEAREST))


@pytest.mark.parametrize("make,chosen", [(_photo_like, "FAST"), (_flat_art, "THOROUGH")])
def test_png_compression_is_chosen_per_image_and_never_much_larger(make, chosen):
    """Photographic content gets run-length deflate (4-9x faster, as small); flat fills keep the
    full search, which makes them far smaller; small images always get the full search."""
    large = make(3)
    assert png.compression(large) is getattr(png, chosen)
    data = png.encode_png(large)
    assert np.array_equal(imageio.read_image(data)[0], large)
    assert len(data) <= len(imagecodecs.png_encode(large, **png.THOROUGH)) * 1.03
    if chosen == "THOROUGH":  # the sample saw it right: run-length deflate is much larger here
        assert len(imagecodecs.png_encode(large, **png.FAST)) > 1.2 * len(data)
    assert png.compression(make(1)[:200, :300]) is png.THOROUGH  # small: no sampling


def test_each_tiff_is_parsed_once(monkeypatch):
    """One tifffile pass sizes, decodes and reads the tags of a TIFF."""
    opened = []
    real = tifffile.TiffFile

    class Counting(real):  # the real reader, counted
        def __init__(self, *args, **kwargs):
            opened.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tifffile, "TiffFile", Counting)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.random.default_rng(1).random((6, 10, 3)).astype(np.float32), photometric="rgb")
    array, meta = imageio.read_image(buffer.getvalue())
    assert array.shape == (6, 10, 3) and meta.format == "TIFF" and len(opened) == 1


def test_image_suffixes_are_what_format_for_accepts():
    assert set(imageio.IMAGE_SUFFIXES) >= {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
    for suffix in imageio.IMAGE_SUFFIXES:
        if suffix in imageio.READ_ONLY:  # read, then written as another suffix (.mpo -> .jpg, .pbm -> .pgm)
            written = imageio.SUFFIX_OF[imageio.READ_ONLY[suffix]]
            with pytest.raises(ImageFormatError, match=f"which is read but not written; name the output \\{written}"):
                imageio.format_for("x" + suffix.upper())
            continue
        assert imageio.format_for("x" + suffix.upper()) == {**imageio.FORMATS, **imageio.ALIASES}[suffix]


class _Endless(io.RawIOBase):
    """A stream that never ends (``cat /dev/zero``, or a file followed by zeros); counts what is read."""

    def __init__(self, start: bytes = b"") -> None:
        self.start, self.served = start, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = len(buffer)
        head = self.start[self.served : self.served + n]
        buffer[: len(head)] = head
        buffer[len(head) : n] = bytes(n - len(head))
        self.served += n
        return n


def test_endless_stdin_is_refused_after_a_bounded_prefix(set5):
    zeros = _Endless()
    with pytest.raises(ImageFormatError, match="standard input is not a readable image"):
        imageio.read_image(zeros)
    assert zeros.served <= 1 << 20
    padded = _Endless((set5 / "bird.png").read_bytes())  # a valid small PNG, then zeros forever
    with pytest.raises(ImageTooLargeError, match="refusing to read further"):
        imageio.read_image(padded)
    assert padded.served < 80 << 20
    array, meta = imageio.read_image(io.BytesIO((set5 / "bird.png").read_bytes()))
    assert meta.format == "PNG" and array.shape[:2] == (288, 288)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP", "TIFF", "TIFF16", "AVIF", "PPM"])
def test_every_format_on_stdin_is_bounded_by_its_header(set5, fmt):
    """Only PNG and JPEG had a header size: `cat a.tif /dev/zero | sr-filter -` read 11 GB (half the
    free memory) before its refusal, and ran out of memory with less; a GIF followed by 300 MB of
    zeros was upscaled."""
    picture = Image.open(set5 / "bird.png").crop((0, 0, 50, 40))
    buffer = io.BytesIO()
    if fmt == "TIFF16":
        tifffile.imwrite(buffer, np.asarray(picture).astype(np.uint16) * 257)
    else:
        picture.save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    data = buffer.getvalue()
    assert sniff.header_shape(data)[:2] == (50, 40)
    padded = _Endless(data)
    if fmt == "PPM":  # read to its picture's end and no further (a stream of pictures gives its first)
        array, _ = imageio.read_image(padded)
        assert array.shape[:2] == (40, 50) and padded.served < 1 << 20
    else:
        with pytest.raises(ImageTooLargeError, match=r"goes on past 6[45] MiB"):
            imageio.read_image(padded)
        assert padded.served < 70 << 20
    array, _ = imageio.read_image(io.BytesIO(data))
    assert array.shape[:2] == (40, 50)


def test_a_gif_is_sized_by_its_frames_as_well_as_its_screen(monkeypatch):
    """A frame may reach past a GIF's logical screen (Pillow then reads the picture larger), and a
    screen of 0x0 is read by Pillow as its frame's size: the header alone had let a 1x1 screen with
    a 3000x2000 frame past the memory check, and refused the 0x0 one as "has no pixels"."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buffer, "GIF")
    whole = buffer.getvalue()
    sizes = []
    real = limits.check_fits
    monkeypatch.setattr(limits, "check_fits", lambda name, w, h, *a, **k: sizes.append((w, h)) or real(name, w, h, *a, **k))
    small_screen = whole[:6] + struct.pack("<HH", 1, 1) + whole[10:]
    assert imageio.read_image(small_screen)[0].shape[:2] == (30, 40) and (40, 30) in sizes
    no_screen = whole[:6] + struct.pack("<HH", 0, 0) + whole[10:]
    assert imageio.read_image(no_screen)[0].shape[:2] == (30, 40)


def test_a_tiff_of_many_pages_on_a_stream_is_read():
    """Bounded by its first page alone (four times its pixels plus 64 MiB), an 86-page 640x480
    TIFF of 76 MB on standard input had been refused as padded."""
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        for page in range(86):
            tiff.write(np.full((480, 640, 3), page, np.uint8), photometric="rgb")
    assert len(buffer.getvalue()) > 75 << 20
    array, meta = imageio.read_image(io.BytesIO(buffer.getvalue()))
    assert array.shape == (480, 640, 3) and meta.format == "TIFF"


def test_stream_headers_claiming_too_much_are_refused_before_the_rest():
    """GIF, BMP and WebP claiming 60000x60000 on a stream: refused from the header, as PNG is."""
    heads = {
        "GIF": b"GIF89a" + struct.pack("<HH", 60000, 60000) + b"\0" * 3,
        "BMP": b"BM" + b"\0" * 12 + struct.pack("<IiiHH", 40, 60000, -60000, 1, 24) + b"\0" * 24,
        "WEBP": b"RIFF\0\0\0\0WEBPVP8X" + struct.pack("<I", 10) + b"\0" * 4 + (59999).to_bytes(3, "little") * 2,
    }
    for fmt, head in heads.items():
        assert sniff.header_shape(head)[:2] == (60000, 60000), fmt
        stream = _Endless(head)
        with pytest.raises(ImageTooLargeError, match="60000x60000"):
            imageio.read_image(stream, scale=4)
        assert stream.served <= 1 << 20, fmt


def _palette_png(trns: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(range(8)) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 3, 0, 0, 0)) + chunk(b"PLTE", bytes(768))
            + chunk(b"tRNS", bytes(trns)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_a_palette_png_with_more_alpha_entries_than_colours_is_read():
    """Pillow's ValueError ("palette index out of range") had been a traceback, and ended a batch, then
    a refusal: the entries past 256 belong to no colour, and are left out as other readers do."""
    for entries in (257, 300, 256):
        array = imageio.read_image(_palette_png(entries), name="x.png")[0]
        assert array.shape == (8, 8, 4) and not array[..., 3].any()


def test_a_long_compressed_xmp_is_read_and_a_text_bomb_is_said_in_our_words():
    """A 1.7 MB edit history in a compressed iTXt XMP had refused the whole picture with Pillow's
    "Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK" (stored uncompressed, it passed)."""
    from PIL import PngImagePlugin

    history = "".join(f"<rdf:li>step {i}: levels, curves, crop, sharpen</rdf:li>" for i in range(34000))
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Seq>{history}</rdf:Seq></rdf:RDF></x:xmpmeta>'
    assert len(xmp) > 1_600_000
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp, zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 20, 30)).save(buffer, "PNG", pnginfo=info)
    array, meta = imageio.read_image(buffer.getvalue())
    assert array.shape == (12, 16, 3) and meta.xmp and b"step 33999" in (meta.xmp if isinstance(meta.xmp, bytes) else meta.xmp.encode())
    bomb = PngImagePlugin.PngInfo()
    bomb.add_text("Comment", "\0" * (imageio.TEXT_CHUNK_LIMIT + 1), zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12)).save(buffer, "PNG", pnginfo=bomb)
    with pytest.raises(ImageTooLargeError, match=r"^x.png holds compressed text \(metadata\) that inflates past 16 MiB"):
        imageio.read_image(buffer.getvalue(), name="x.png")
    data = buffer.getvalue()  # the same chunk after the pixels, found while decoding
    text_at, end_at = data.index(b"zTXt") - 4, data.index(b"IEND") - 4
    idat_at = data.index(b"IDAT") - 4
    moved = data[:text_at] + data[idat_at:end_at] + data[text_at:idat_at] + data[end_at:]
    with pytest.raises(ImageTooLargeError, match=r"^y.png holds compressed text \(metadata\) that inflates past 16 MiB"):
        imageio.read_image(moved, name="y.png")


def test_a_picture_past_pillows_limit_that_fits_in_memory_is_read(monkeypatch):
    """A genuine 20000x20000 PNG was told to use a smaller --scale by the memory check, then at any
    smaller scale refused by Pillow's 179-megapixel bomb limit. Where the memory check has sized
    the header, that limit is lifted (lowered here to 1000 pixels to test it cheaply); a header
    nobody sized keeps it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    buffer = io.BytesIO()
    Image.new("L", (100, 60), 77).save(buffer, "PNG")
    array, _ = imageio.read_image(buffer.getvalue(), scale=0.5)
    assert array.shape == (60, 100) and int(array[0, 0]) == 77 and Image.MAX_IMAGE_PIXELS == 1000
    tiff = io.BytesIO()  # a TIFF too: tifffile sizes it against memory (it had kept Pillow's limit)
    Image.new("L", (100, 60), 77).save(tiff, "TIFF")
    assert imageio.read_image(tiff.getvalue(), scale=0.5)[0].shape == (60, 100)
    with pytest.raises(ImageTooLargeError, match="safety limit .a decompression bomb or a damaged header"):
        imageio._open(buffer.getvalue(), "x.png")


def test_a_tiff_cut_after_its_header_is_one_line(caplog):
    """It printed tifffile's complaint as a warning ("reading what can be read") and then the error
    in other words ("index 0 out of range(0)"): two lines for one unreadable file."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6)).save(buffer, "TIFF")
    with pytest.raises(ImageFormatError, match=r"^cut.tif is not a readable TIFF \(damaged structure: .*invalid offset"):
        imageio.read_image(buffer.getvalue()[:8], name="cut.tif")
    assert "reading what can be read" not in caplog.text


def test_stdin_too_large_is_refused_from_its_header_before_the_rest():
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    stream = _Endless(head)
    with pytest.raises(ImageTooLargeError, match="100000x100000"):
        imageio.read_image(stream, scale=4)
    assert stream.served <= 1 << 20


_DAMAGED_EXIF = {
    "orientation as text": raw_exif((0x0112, 2, 4, b"six\0")),
    "orientation 6/0": raw_exif((0x0112, 5, 1, struct.pack("<II", 6, 0))),
    "negative resolution": raw_exif((0x011A, 10, 1, struct.pack("<ii", -72, 1)), (0x011B, 10, 1, struct.pack("<ii", -72, 1))),
    "orientation 9": raw_exif((0x0112, 3, 1, struct.pack("<H", 9))),
}


@pytest.mark.parametrize("case", sorted(_DAMAGED_EXIF))
@pytest.mark.parametrize("source", ["JPEG", "PNG", "WEBP"])  # PNG: an eXIf chunk
def test_damaged_exif_is_dropped_with_a_warning(case, source, caplog):
    pixels = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, source, exif=_DAMAGED_EXIF[case], **({"lossless": True} if source == "WEBP" else {}))
    array, meta = imageio.read_image(buffer.getvalue())
    assert array.shape == pixels.shape and meta.exif is None  # not rotated, EXIF left out
    assert "damaged EXIF" in caplog.text
    for fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        assert Image.open(io.BytesIO(imageio.encode_image(array, fmt, meta, scale=2))).size == (8, 6)


def test_orientation_zero_means_upright_and_keeps_the_exif(caplog):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6)).save(buffer, "JPEG", exif=raw_exif((0x0112, 3, 1, struct.pack("<H", 0))))
    array, meta = imageio.read_image(buffer.getvalue())
    assert array.shape == (6, 8, 3) and meta.exif is not None and "damaged" not in caplog.text


def _chunk(kind: bytes, body: bytes, *, crc_off: int = 0) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) ^ crc_off)


#: a damaged ancillary chunk (as written, where it goes) -> what the warning names; Pillow had
#: refused the whole picture for each ("not a readable image", "Truncated pHYs chunk")
_DAMAGED_CHUNKS = {
    "tEXt, CRC wrong": (_chunk(b"tEXt", b"Title\x00hello", crc_off=1), "before", "tEXt: CRC error"),
    "pHYs of 2 bytes": (_chunk(b"pHYs", b"\x00\x00"), "before", "pHYs: 2 bytes, 9 needed"),
    "gAMA of 2 bytes": (_chunk(b"gAMA", b"\x00\x01"), "before", "gAMA: 2 bytes, 4 needed"),
    "pHYs of 2 bytes after the picture": (_chunk(b"pHYs", b"\x00\x00"), "after", "pHYs: 2 bytes, 9 needed"),
}


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("case", sorted(_DAMAGED_CHUNKS))
def test_a_damaged_png_metadata_chunk_is_left_out_with_one_warning(case, depth, caplog):
    """libpng reads these with a warning; the pixels and the intact metadata beside the damaged
    chunk (ICC profile, EXIF) are read, the chunk is left out, and one line says so (docs/io.md)."""
    from sr_filter.metadata import srgb_profile

    damaged, where, what = _DAMAGED_CHUNKS[case]
    pixels = np.random.default_rng(depth).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    if depth == 16:
        pixels = pixels.astype(np.uint16) * 257 + 3
    icc, exif = srgb_profile(), raw_exif((0x010F, 2, 6, b"Maker\0"))
    data = imageio.encode_image(pixels, "PNG", imageio.ImageMeta(icc_profile=icc, exif=exif))
    at = data.index(b"IDAT") - 4 if where == "before" else data.index(b"IEND") - 4
    array, meta = imageio.read_image(data[:at] + damaged + data[at:], name="in.png")
    assert array.dtype == pixels.dtype and np.array_equal(array, pixels)
    assert meta.icc_profile == icc and b"Maker" in meta.exif
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [f"in.png: damaged metadata left out ({what}); the picture is read without it"], said
    written = Image.open(io.BytesIO(imageio.encode_image(array, "PNG", meta, scale=2)))
    assert written.info["icc_profile"] == icc and b"Maker" in written.info["exif"]


_DAMAGED_SEGMENTS = {  # Pillow's APP parser had failed on each: "not a readable image"
    "JFIF of 6 bytes": (b"\xff\xe0\x00\x08JFIF\x00\x01", "JFIF APP0: 6 bytes, 7 needed"),
    "Adobe of 6 bytes": (b"\xff\xee\x00\x08Adobe\x00", "Adobe APP14: 6 bytes, 7 needed"),
    "ICC piece without its numbering": (b"\xff\xe2\x00\x0eICC_PROFILE\x00", "ICC profile APP2: 12 bytes, 14 needed"),
    "Photoshop resource cut after its code": (b"\xff\xed\x00\x16Photoshop 3.0\x008BIM\x04\x04",
                                              "Photoshop APP13: a resource cut short"),
}


@pytest.mark.parametrize("case", sorted(_DAMAGED_SEGMENTS))
def test_a_damaged_jpeg_metadata_segment_is_left_out_with_one_warning(case, caplog):
    """libjpeg-turbo reads these; the picture and its intact ICC profile and EXIF are read, and one line says what was left out."""
    from sr_filter.metadata import srgb_profile

    segment, what = _DAMAGED_SEGMENTS[case]
    icc, exif = srgb_profile(), raw_exif((0x010F, 2, 6, b"Maker\0"))
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(
        buffer, "JPEG", icc_profile=icc, exif=exif, quality=95)
    whole = buffer.getvalue()
    expected, _ = imageio.read_image(whole)
    array, meta = imageio.read_image(whole[:2] + segment + whole[2:], name="in.jpg")
    assert np.array_equal(array, expected) and meta.icc_profile == icc and b"Maker" in meta.exif
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [f"in.jpg: damaged metadata left out ({what}); the picture is read without it"], said


@pytest.mark.parametrize("depth", [8, 16])
def test_a_png_whose_picture_data_fails_its_crc_is_refused_at_any_depth(depth):
    """IDAT is the picture: a CRC error there is damaged pixels, refused as libpng refuses it
    (the 8-bit reader, Pillow, does not check it, and had upscaled such a file)."""
    pixels = np.random.default_rng(2).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    data = imageio.encode_image(pixels.astype(np.uint16) * 257 if depth == 16 else pixels, "PNG", imageio.ImageMeta())
    start = data.index(b"IDAT")
    end = start + 4 + struct.unpack(">I", data[start - 4:start])[0]
    with pytest.raises(ImageFormatError, match=r"^in.png is truncated or damaged \(IDAT: CRC error\)$"):
        imageio.read_image(data[:end] + bytes([data[end] ^ 1]) + data[end + 1:], name="in.png")


def test_a_damaged_critical_chunk_is_still_refused_in_the_same_words():
    """Only ancillary chunks are left out: a header whose CRC is wrong is the picture's damage."""
    data = imageio.encode_image(np.zeros((6, 8, 3), np.uint8), "PNG", imageio.ImageMeta())
    with pytest.raises(ImageFormatError, match=r"^in.png is not a readable image \(unknown or damaged format\)$"):
        imageio.read_image(data[:29] + bytes([data[29] ^ 1]) + data[30:], name="in.png")  # IHDR's CRC


def test_an_apng_with_a_damaged_metadata_chunk_keeps_every_frame(tmp_path, caplog):
    """The animation path reads the same repaired bytes: every frame, not the first alone."""
    from sr_filter import animation

    frames = [Image.fromarray(np.full((8, 10, 3), 40 * i, dtype=np.uint8)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=50)
    data = buffer.getvalue()
    data = data[:33] + _chunk(b"tEXt", b"Title\x00hello", crc_off=1) + data[33:]  # after IHDR
    (tmp_path / "in.png").write_bytes(data)
    for source in (data, tmp_path / "in.png"):
        caplog.clear()
        assert animation.animated_format(source) == "PNG"
        read = animation.read_animation(source, "in.png")
        assert len(read.frames) == 3 and [int(f[0, 0, 0]) for f in read.frames] == [0, 40, 80]
        said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert said == ["in.png: damaged metadata left out (tEXt: CRC error); the picture is read without it"], said


def test_an_apng_frame_whose_data_fails_its_crc_is_named_so(tmp_path):
    """A damaged byte in a later frame's data (fdAT) had been "APNG contains frame sequence
    errors", which says nothing of damage; the still path says "(IDAT: CRC error)" of the same."""
    from sr_filter import animation
    from sr_filter.errors import VideoFormatError

    frames = [Image.fromarray(np.full((8, 10, 3), 40 * i, dtype=np.uint8)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=50)
    data = bytearray(buffer.getvalue())
    at = data.index(b"fdAT") + 8  # past the type and the sequence number: the frame's compressed data
    data[at] ^= 0xFF
    (tmp_path / "in.png").write_bytes(data)
    for source in (bytes(data), tmp_path / "in.png"):
        with pytest.raises(VideoFormatError, match=r"^in\.png is truncated or damaged \(fdAT: CRC error\)$"):
            animation.read_animation(source, "in.png")
    done = subprocess.run([sys.executable, "-m", "sr_filter", "in.png", "-m", "sr-cartoon-x4", "-o", "out.png"], cwd=tmp_path,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert done.returncode != 0 and done.stderr.splitlines()[-1] == "sr-filter: error: in.png is truncated or damaged (fdAT: CRC error)", done.stderr
    assert not (tmp_path / "out.png").exists()


def test_the_command_upscales_pictures_with_damaged_metadata(tmp_path):
    """The files of the report, through the command (its check before the model loads, the read, the write)."""
    from sr_filter.metadata import srgb_profile

    Image.new("RGB", (32, 32), (200, 60, 30)).save(tmp_path / "ok.png", icc_profile=srgb_profile())
    Image.new("RGB", (32, 32), (200, 60, 30)).save(tmp_path / "ok.jpg")
    plain, deep = (tmp_path / "ok.png").read_bytes(), imageio.encode_image(np.full((32, 32, 3), 40000, np.uint16), "PNG", imageio.ImageMeta())
    jpeg = (tmp_path / "ok.jpg").read_bytes()
    files = {
        "badcrc.png": _insert_before_idat(plain, _chunk(b"tEXt", b"Title\x00hello", crc_off=1)),
        "shortphys.png": _insert_before_idat(plain, _chunk(b"pHYs", b"\x00\x00")),
        "shortjfif.jpg": jpeg[:2] + b"\xff\xe0\x00\x08JFIF\x00\x01" + jpeg[2:],
        "deep.png": _insert_before_idat(deep, _chunk(b"gAMA", b"\x00\x01")),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "sr_filter", *files, "-m", "sr-cartoon-x4", "-o", "out/"], cwd=tmp_path,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("damaged metadata left out") == 4, result.stderr
    for name in files:
        assert Image.open(tmp_path / "out" / name).size == (128, 128)
    assert Image.open(tmp_path / "out" / "badcrc.png").info["icc_profile"] == srgb_profile()
    assert imagecodecs.png_decode((tmp_path / "out" / "deep.png").read_bytes()).dtype == np.uint16  # still 16 bits


def _insert_before_idat(data: bytes, chunk: bytes) -> bytes:
    at = data.index(b"IDAT") - 4
    return data[:at] + chunk + data[at:]


def test_pillow_warnings_become_one_log_line(capfd, caplog):
    """A damaged TIFF tag: Pillow's UserWarning (with its source line) is one warning of ours."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6)).save(buffer, "JPEG", exif=raw_exif((0x0112, 3, 1_000_000, struct.pack("<I", 999))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imageio.read_image(buffer.getvalue(), name="camera.jpg")
    assert capfd.readouterr().err == ""
    lines = [r.getMessage() for r in caplog.records if "camera.jpg" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("camera.jpg: ") and "\n" not in lines[0], lines  # Pillow's words vary


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "JPEG", "TIFF"])
def test_absurd_dpi_is_left_out_not_a_crash(fmt, caplog):
    """A pHYs of 4294967295 px/m (109 million DPI) scaled x2 fits no format: left out with a warning."""
    png = _with_chunk(imageio.encode_image(np.zeros((4, 4, 3), np.uint8), "PNG"), b"pHYs", struct.pack(">IIB", 0xFFFFFFFF, 0xFFFFFFFF, 1))
    array, meta = imageio.read_image(png)
    assert meta.dpi is not None and meta.dpi[0] > 1e8
    data = imageio.encode_image(array, fmt, meta, scale=2)
    assert Image.open(io.BytesIO(data)).info.get("dpi", (0, 0))[0] < 1000 and "cannot be stored" in caplog.text  # BMP: Pillow's 96
    deep = imageio.encode_image(array.astype(np.uint16) * 257, "PNG", meta, scale=2)
    assert "dpi" not in Image.open(io.BytesIO(deep)).info
    # an ordinary DPI is still scaled
    meta.dpi = (300.0, 300.0)
    assert Image.open(io.BytesIO(imageio.encode_image(array, fmt, meta, scale=2))).info["dpi"] == pytest.approx((600, 600), abs=0.5)


def test_available_ram_asks_the_os_where_there_is_no_proc_meminfo(monkeypatch, tmp_path):
    """macOS and Windows: no /proc/meminfo and no SC_AVPHYS_PAGES; the OS's own figure, not 4 GiB."""
    import psutil

    from sr_filter import device

    def no_sysconf(name):
        raise ValueError(f"unrecognized configuration name {name!r}")

    monkeypatch.setattr(device, "_MEMINFO", str(tmp_path / "no-meminfo"))
    monkeypatch.setattr(device.os, "sysconf", no_sysconf)
    have = device.available_ram()
    assert have == pytest.approx(psutil.virtual_memory().available, rel=0.1) and have != 4 << 30


@pytest.mark.parametrize("size, scale, measured_kb", [
    ((2400, 1800, 3), 4, 1094720), ((1200, 900, 3), 4, 509912),
    ((2400, 1800, 3), 2, 1023392), ((1200, 900, 3), 2, 628380), ((2400, 1800, 3), 3, 1152276),
    ((2400, 1800, 3), 1.5, 939780), ((2400, 1800, 4), 2, 1170892), ((1200, 900, 4), 2, 702008),
])
def test_memory_estimate_covers_measured_runs_with_a_margin(size, scale, measured_kb):
    """Peak RSS of `/usr/bin/time -f %M sr-filter IN.png -o out.png -p cartoon -s S` (OpenVINO, 512 px
    tiles, 2026-11-30), Set14's baboon resized to the size; RGBA with a horizontal alpha ramp. At
    scales the x4 network does not give, its result streams through the resize a row of tiles at a
    time (2400x1800 at x2: 2.14 GB before, 1.02 GB since)."""
    estimate = limits.estimate_bytes(*size, scale)
    assert measured_kb << 10 <= estimate <= 1.75 * (measured_kb << 10), estimate / (measured_kb << 10)


def test_memory_estimate_below_scale_one_counts_the_network_output():
    """1200x1200 RGB at x1 and x0.5 run the x4 network, then shrink: 419 and 399 MB peak RSS with
    `/usr/bin/time -f %M sr-filter big.png -o out.png --model sr-cartoon-x4 --scale S` (256 px tiles,
    where the estimate assumes rows of 512 px tiles)."""
    for scale, measured in ((1, 418552 << 10), (0.5, 399460 << 10)):
        estimate = limits.estimate_bytes(1200, 1200, 3, scale)
        assert measured <= estimate <= 2.3 * measured, (scale, estimate / 1e6)


def test_output_format_limits_are_checked_before_the_work():
    imageio.check_encodable("JPEG", 65500, 100)
    with pytest.raises(ImageTooLargeError, match="too large for JPEG, which holds at most 65500 pixels per side"):
        imageio.check_encodable("JPEG", 65501, 100)
    with pytest.raises(ImageTooLargeError, match="WEBP"):
        imageio.check_encodable("WEBP", 100, 16384)
    with pytest.raises(ImageTooLargeError, match="GIF"):
        imageio.check_encodable("GIF", 70000, 10)
    imageio.check_encodable("PNG", 70000, 70000)
    # from the header, before any pixel is decoded: 17000 px wide x4 is 68000, too wide for JPEG
    png = imageio.encode_image(np.zeros((2, 17000), np.uint8), "PNG")
    with pytest.raises(ImageTooLargeError, match="68000x8 image is too large for JPEG"):
        imageio.read_image(png, scale=4, out_format="JPEG")
    assert imageio.read_image(png, scale=4, out_format="PNG")[0].shape == (2, 17000)
    with pytest.raises(ImageTooLargeError, match="JPEG") as error:  # and in the encoder, instead of libjpeg's message
        imageio.encode_image(np.zeros((1, 65501), np.uint8), "JPEG")
    assert "--" not in str(error.value)  # neutral words: GIMP and API users see it too


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "GIF", "WEBP"])
def test_size_is_checked_once_per_file(fmt, monkeypatch):
    """One header, one memory check (the real check, counted), whichever reader sizes the file."""
    calls = []
    real = limits.check_fits

    def counted(*args, **kwargs):
        calls.append(args[1:3])
        return real(*args, **kwargs)

    monkeypatch.setattr(limits, "check_fits", counted)
    imageio.read_image(imageio.encode_image(np.zeros((6, 10, 3), np.uint8), fmt))
    assert calls == [(10, 6)]


def test_bmp_file_size_limit_and_bigtiff_beyond_classic_tiff(monkeypatch):
    imageio.check_encodable("PNG", 1, 1_000_000)
    with pytest.raises(ImageTooLargeError, match="PNG, which holds at most 1000000 pixels per side"):
        imageio.check_encodable("PNG", 1, 1_000_001)  # libpng's writer failed with "Invalid IHDR data"
    imageio.check_encodable("BMP", 30000, 30000)  # 2.7 GB
    with pytest.raises(ImageTooLargeError, match="too large for BMP, whose files hold at most 4 GiB"):
        imageio.check_encodable("BMP", 40000, 40000)  # 4.8 GB: Pillow would fail after the work
    # an 8-bit TIFF over the classic 4 GiB limit becomes a BigTIFF (the limit lowered to test it cheaply)
    from sr_filter import encode

    rgb = np.random.default_rng(4).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    monkeypatch.setattr(encode, "CLASSIC_TIFF_BYTES", rgb.nbytes - 1)
    data = imageio.encode_image(rgb, "TIFF", imageio.ImageMeta(dpi=(72.0, 72.0)), scale=2)
    assert data[:4] == b"II+\0"
    back, meta = imageio.read_image(data)
    assert np.array_equal(back, rgb) and meta.dpi == pytest.approx((144, 144))


def test_interlaced_16bit_png_decodes_without_codec_chatter(tmp_path):
    """imagecodecs logs libpng's "Interlace handling should be turned on" for each Adam7 PNG (the
    pixels are exact), which the command printed as "sr-filter: PNG warning: ..." about the user's
    file. Checked in a process of its own: pytest catches log records before they reach stderr."""
    array = (np.random.default_rng(9).random((9, 11, 3)) * 65535).astype(np.uint16)
    back, _ = imageio.read_image(png16_filtered(array, interlaced=True))
    assert np.array_equal(back, array)
    (tmp_path / "in.png").write_bytes(png16_filtered(array, interlaced=True))
    result = subprocess.run([sys.executable, "-m", "sr_filter", "in.png", "-m", "sr-cartoon-x4", "-o", "out.png"], cwd=tmp_path,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert result.returncode == 0 and "PNG warning" not in result.stderr and "Interlace" not in result.stderr, result.stderr


@pytest.mark.parametrize("fmt", ["TIFF", "GIF", "PNG"])
def test_damaged_later_pages_still_give_the_first(fmt):
    """A multi-page file cut short: counting its frames must not stop the first from being upscaled."""
    frames = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (20, 30, 3), dtype=np.uint8)) for i in range(4)]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
    data = buffer.getvalue()
    for cut in (0.5, 0.7, 0.9):
        array, meta = imageio.read_image(data[: int(len(data) * cut)])
        assert array.shape == (20, 30, 3) and meta.frames >= 1


@pytest.mark.parametrize("seed", [1, 3, 7])
@pytest.mark.parametrize("kind", ["PNG16", "TIFF", "TIFF16", "TIFFfloat"])  # the readers of our own (libpng, tifffile)
def test_damaged_files_give_one_clear_error_or_pixels(kind, seed):
    """Seeded mutations (cut short, bytes changed) of small files: pixels or an SrFilterError, nothing else.

    Before the fix some of these raised IndexError (ExtraSamples shorter than the extra samples)
    or AxisError (a damaged header whose axes do not match the data) from tiffio.
    """
    from sr_filter.errors import SrFilterError

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    array = {"PNG16": rgb.astype(np.uint16) * 257, "TIFF16": rgb.astype(np.uint16) * 257, "TIFFfloat": rgb / np.float32(255)}.get(kind, rgb)
    data = imageio.encode_image(array, kind[:4] if kind != "PNG16" else "PNG", imageio.ImageMeta(dpi=(72.0, 72.0)))
    for i in range(300):
        damaged = bytearray(data)
        if i % 3 == 0:
            damaged = damaged[: rng.integers(1, len(damaged))]
        else:
            for _ in range(rng.integers(1, 4)):
                damaged[rng.integers(0, len(damaged))] = rng.integers(0, 256)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pixels, meta = imageio.read_image(bytes(damaged))
            imageio.encode_image(pixels, "PNG", meta, scale=2)
        except SrFilterError as exc:
            assert "\n" not in str(exc)


def test_a_jpeg_cut_short_with_an_end_marker_is_refused_and_a_flat_bottom_is_not(monkeypatch):
    """libjpeg decodes a JPEG whose data stops early but ends in EOI without a word, filling the
    rest with flat grey: that grey had been upscaled as the picture."""
    import av

    asked = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: asked.append(1) or real_open(*a, **k))  # counts, runs the real one
    rng = np.random.default_rng(4)
    picture = (rng.random((96, 120, 3)) * 255).astype(np.uint8)
    picture[-24:] = (40, 160, 90)  # a flat bottom edge of its own: read as it is
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=90)
    whole = buffer.getvalue()
    array, _ = imageio.read_image(whole)
    assert array.shape == (96, 120, 3) and asked == [1]  # the flat colour bottom was judged by FFmpeg, and passed
    cut = whole[: len(whole) // 3] + b"\xff\xd9"
    with pytest.raises(ImageFormatError, match="is truncated or damaged .its picture data ends before the picture does"):
        imageio.read_image(cut)


def test_a_jpeg_cut_inside_its_last_row_of_blocks_is_refused(set5):
    """Cut at 99%, only the right part of the last row of blocks was grey: the check, which wanted
    the last rows flat all across, let the file through (452 grey pixels, upscaled)."""
    buffer = io.BytesIO()
    Image.open(set5 / "baby.png").convert("RGB").crop((100, 100, 300, 300)).save(buffer, "JPEG", quality=90)
    whole = buffer.getvalue()
    for share in (0.99, 0.98):
        cut = whole[: int(len(whole) * share)] + b"\xff\xd9"
        with pytest.raises(ImageFormatError, match="its picture data ends before the picture does"):
            imageio.read_image(cut)
    assert imageio.read_image(whole)[0].shape == (200, 200, 3)


def test_a_stream_is_called_a_video_only_when_it_is_one():
    """AVIF and HEIF pictures share MP4's ftyp box: a piped AVIF had been told it was a video (AVIF
    and HEIF are now read: a piped HEIF is taken in, for the reader to decode)."""
    from sr_filter.sniff import _what_instead

    assert _what_instead(b"\0\0\0\x18ftypheic\0\0\0\0") == "unknown or damaged format"
    assert _what_instead(b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2").startswith("it is a video")
    assert _what_instead(b"YUV4MPEG2 W8 H8\n") == "it is a YUV4MPEG2 frame stream: use --format y4m"
    # as standard input gives them: `cat clip.mp4 | sr-filter - -o -` had been "unexpected TypeError"
    from sr_filter.sniff import read_stream

    with pytest.raises(ImageFormatError, match="- is not a readable image \\(it is a video"):
        read_stream(io.BytesIO(b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2" + bytes(1000)), "-", lambda shape: None, 1 << 30)
    heif = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(1000)
    assert read_stream(io.BytesIO(heif), "-", lambda shape: None, 1 << 30) == heif


def test_a_piped_tga_is_told_to_be_given_as_a_file():
    """TGA has no signature, so standard input cannot take it (docs/io.md); `cat a.tga | sr-filter -`
    had said 'not a readable image (unknown or damaged format)', as for any bytes, of a good file."""
    from sr_filter.sniff import read_stream

    for mode, options in (("RGB", {}), ("RGBA", {"compression": "tga_rle"}), ("L", {}), ("P", {})):
        buffer = io.BytesIO()
        Image.new(mode, (9, 7)).save(buffer, "TGA", **options)
        with pytest.raises(ImageFormatError, match="^- is not a readable image \\(it looks like a TGA, which has no "
                                                   "signature to know it by on a stream: give it as a file\\)$"):
            read_stream(io.BytesIO(buffer.getvalue()), "-", lambda shape: None, 1 << 30)
    for other in (b"hello, this is text and no picture at all\n", bytes(64)):
        with pytest.raises(ImageFormatError, match="\\(unknown or damaged format\\)$"):
            read_stream(io.BytesIO(other), "-", lambda shape: None, 1 << 30)


def test_an_encoder_out_of_memory_is_said_as_the_write_not_the_tiles(tmp_path):
    """A PNG encoder that runs out of memory after the upscaling had been "use a smaller --scale
    or --tile": the tiles were done, and no tile size changes the write. Real exhaustion, in a
    child process whose address space is capped just above what it holds."""
    code = textwrap.dedent("""
        import resource, numpy as np
        from sr_filter.encode import encode_image
        from sr_filter.errors import OutOfMemoryError
        from sr_filter.cli.messages import hint_for
        picture = np.random.default_rng(0).integers(0, 256, (3000, 3000, 3), np.uint8)
        encode_image(picture[:8, :8], "PNG")  # the encoder's libraries loaded first
        held = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize")][0] * 1024
        resource.setrlimit(resource.RLIMIT_AS, (held + (8 << 20), resource.RLIM_INFINITY))
        try:
            encode_image(picture, "PNG")
        except OutOfMemoryError as exc:
            print(exc, "|", hint_for(exc))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.stdout.strip() == ("writing the 3000x3000 picture as PNG ran out of memory; close other programs, "
                                   "or choose a smaller output | use a smaller --scale"), done.stderr


def test_a_pillow_without_avif_says_so_for_an_avif_input_and_output(tmp_path):
    """A Pillow built without libavif (distribution builds, older wheels): an AVIF is then "not a
    readable image (unknown or damaged format)" to Pillow. Here Pillow's AVIF module is made
    unimportable in a child process, as it is in such a build."""
    source = tmp_path / "photo.avif"
    Image.new("RGB", (8, 6), (20, 120, 220)).save(source)
    code = textwrap.dedent(f"""
        import sys
        sys.modules["PIL._avif"] = None  # as in a Pillow built without libavif
        from sr_filter import imageio
        from sr_filter.errors import ImageFormatError
        for attempt in (lambda: imageio.read_image({str(source)!r}), lambda: imageio.format_for("out.avif")):
            try:
                attempt()
            except ImageFormatError as exc:
                print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.stdout.splitlines() == [
        f"{source} is an AVIF picture: this installation's Pillow has no AVIF support; upgrade it (pip install -U pillow)",
        "cannot write AVIF: this installation's Pillow has no AVIF support; upgrade it (pip install -U pillow)",
    ], done.stderr

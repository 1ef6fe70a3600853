"""Frame streams in shell pipelines: YUV4MPEG2 and concatenated PNG on stdin/stdout."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sr_filter.errors import VideoFormatError
from sr_filter.upscaler import Upscaler
from sr_filter.video import stream

from .conftest import ROOT
from .videos import describe, frame_arrays, make_y4m, pattern

MODEL = "sr-cartoon-x4"


@pytest.fixture(scope="module")
def upscaler():
    return Upscaler(MODEL, device="cpu", tile=32)


def run(*args, stdin: bytes):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sr_filter", *map(str, args)], input=stdin, capture_output=True, env=env, timeout=120)


def test_y4m_pipe_stdin_to_stdout_is_read_back_by_ffmpeg(tmp_path):
    source = make_y4m(tmp_path / "in.y4m", frames=6)
    result = run("-", "-o", "-", "--format", "y4m", "-m", MODEL, "-t", "32", stdin=source.read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.startswith(b"YUV4MPEG2 W128 H96 F12:1 Ip A0:0 C420jpeg")
    (tmp_path / "out.y4m").write_bytes(result.stdout)
    before, after = frame_arrays(source), frame_arrays(tmp_path / "out.y4m")  # FFmpeg's own y4m reader
    assert len(after) == 6 and after[0].shape == (96, 128, 3)
    for a, b in zip(before, after):
        assert np.abs(a.mean((0, 1)) - b.mean((0, 1))).max() < 3


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv422p10le"])
def test_y4m_layouts_and_10_bit_round_trip(tmp_path, upscaler, pix_fmt):
    source = make_y4m(tmp_path / "in.y4m", frames=3, pix_fmt=pix_fmt)
    out = io.BytesIO()
    assert stream.upscale_y4m(io.BytesIO(source.read_bytes()), out, upscaler) == 3
    (tmp_path / "out.y4m").write_bytes(out.getvalue())
    assert describe(tmp_path / "out.y4m")["pix_fmt"] == pix_fmt
    for a, b in zip(frame_arrays(source), frame_arrays(tmp_path / "out.y4m")):
        small = np.asarray(Image.fromarray(b).resize((32, 24), Image.BOX)).astype(float)
        assert np.abs(small - a).mean() < 8


def test_y4m_damage_is_one_clear_error(tmp_path, upscaler):
    data = make_y4m(tmp_path / "in.y4m", frames=3).read_bytes()
    for broken, words in ((data[:-100], "middle of frame 2"), (b"YUV4MPEG2 W100000 H100000 C420\nFRAME\n", "not a usable size"),
                          (b"RIFF....", "not a YUV4MPEG2 stream"), (data.replace(b"C420jpeg", b"C411"), "C411"),
                          (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "the input is an image, and --format y4m upscales a YUV4MPEG2")):
        with pytest.raises(VideoFormatError, match=words):
            stream.upscale_y4m(io.BytesIO(broken), io.BytesIO(), upscaler)
    five = make_y4m(tmp_path / "five.y4m", frames=5).read_bytes()
    fourth = [i for i in range(len(five)) if five.startswith(b"FRAME\n", i)][3]
    out = io.BytesIO()  # a stream cut in its fourth frame: the three whole ones still come out, then the error
    with pytest.raises(VideoFormatError, match="middle of frame 3"):  # counted from 0
        stream.upscale_y4m(io.BytesIO(five[:fourth + 100]), out, upscaler)
    assert out.getvalue().startswith(b"YUV4MPEG2 ") and out.getvalue().count(b"FRAME\n") == 3  # it had written none


def test_y4m_without_frames_or_cut_in_its_header_is_one_clear_error(tmp_path, upscaler):
    """A header alone had exited 0 with a header written; an empty input and a header with no end
    had been told they do not start with 'YUV4MPEG2 '."""
    header = make_y4m(tmp_path / "in.y4m", frames=1).read_bytes().split(b"\n")[0] + b"\n"
    for data, words in ((header, "a header and no frame came in"), (b"", "the input is empty"),
                        (header[:-1], "header has no end of line before the input ends")):
        with pytest.raises(VideoFormatError, match=words):
            stream.upscale_y4m(io.BytesIO(data), io.BytesIO(), upscaler)
    result = run("-", "-o", "-", "--format", "y4m", "-m", MODEL, stdin=header)
    assert result.returncode == 1 and b"no frame came in" in result.stderr and b"Traceback" not in result.stderr


def test_interlaced_y4m_is_said_and_written_progressive(tmp_path, upscaler, caplog):
    """Both fields go through the network as one picture, so the output is no longer interlaced:
    the header had kept It (players would weave it again) and no word was said."""
    data = make_y4m(tmp_path / "in.y4m", frames=2).read_bytes().replace(b" Ip ", b" It ", 1)
    out = io.BytesIO()
    with caplog.at_level("WARNING"):
        assert stream.upscale_y4m(io.BytesIO(data), out, upscaler) == 2
    assert out.getvalue().split(b"\n")[0].split()[4] == b"Ip"  # in the place the source's I was
    assert "interlaced (top field first)" in caplog.text and "deinterlace" in caplog.text


def test_a_y4m_stream_given_as_an_image_or_png_stream_is_named(tmp_path):
    data = make_y4m(tmp_path / "in.y4m", frames=1).read_bytes()
    for extra, words in (((), b"it is a YUV4MPEG2 frame stream: use --format y4m"),
                         (("--format", "png-stream"), b"not a PNG stream; use --format y4m")):
        result = run("-", "-o", "-", *extra, "-m", MODEL, stdin=data)
        assert result.returncode == 1 and words in result.stderr, result.stderr
    image = tmp_path / "a.png"
    Image.fromarray(pattern(0, 16, 16)).save(image)
    for kind in ("TIFF", "JPEG", "WebP"):  # one picture piped in as a PNG stream had been "damaged at image 0"
        buffer = io.BytesIO()
        Image.fromarray(pattern(0, 16, 16)).save(buffer, kind)
        result = run("-", "-o", "-", "--format", "png-stream", "-m", MODEL, stdin=buffer.getvalue())
        assert result.returncode == 1 and f"the input is a {kind} image, and --format png-stream".encode() in result.stderr
    result = run(image, "-o", tmp_path / "a.y4m", "-m", MODEL, stdin=b"")
    assert result.returncode == 1 and b"names a YUV4MPEG2 frame stream, but the input is an image" in result.stderr
    assert not (tmp_path / "a.y4m").exists()


def test_png_stream_pipe(tmp_path):
    data = b""
    for i in range(3):
        buffer = io.BytesIO()
        Image.fromarray(pattern(i, 32, 24)).save(buffer, "PNG")
        data += buffer.getvalue()
    result = run("-", "-o", "-", "--format", "png-stream", "-m", MODEL, "-t", "32", stdin=data)
    assert result.returncode == 0, result.stderr.decode()
    images = list(stream.read_pngs(io.BytesIO(result.stdout)))
    assert len(images) == 3
    for i, png in enumerate(images):
        image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        assert image.shape == (96, 128, 3)
        small = np.asarray(Image.fromarray(image).resize((32, 24), Image.BOX)).astype(float)
        assert np.abs(small - pattern(i, 32, 24)).mean() < 8
    result = run("-", "-o", "-", "--format", "png-stream", "-m", MODEL, stdin=data[:-30])
    assert result.returncode != 0 and b"middle of image 2" in result.stderr and b"Traceback" not in result.stderr
    result = run("-", "-o", "-", "--format", "png-stream", "-m", MODEL, stdin=b"")  # exit 0 with nothing, had been
    assert result.returncode == 1 and result.stderr.strip().endswith(b"the PNG stream is empty: no image came in")


def test_a_reader_that_stops_early_gets_one_line_and_exit_1(tmp_path):
    """`... | head -c 10`: click exited 1 without a word."""
    data = make_y4m(tmp_path / "in.y4m", frames=6).read_bytes()
    process = subprocess.Popen([sys.executable, "-m", "sr_filter", "-", "-o", "-", "--format", "y4m", "-m", MODEL, "-q"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
    process.stdin.write(data)
    process.stdin.close()
    assert process.stdout.read(10).startswith(b"YUV4MPEG2")
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert err == "sr-filter: error: standard output was closed by the program reading it; the output was cut short\n", err


def test_header_parameters_pass_through_byte_for_byte(tmp_path, upscaler):
    """An X parameter holding UTF-8 text (XTITLE=café) had ended in a UnicodeEncodeError traceback."""
    source = make_y4m(tmp_path / "in.y4m", frames=2)
    data = source.read_bytes()
    head, rest = data.split(b"\n", 1)
    titled = head + " XTITLE=café XA=voilà XB=Åsa".encode() + b"\n" + rest  # à and Å hold bytes latin-1 calls spaces
    out = io.BytesIO()
    assert stream.upscale_y4m(io.BytesIO(titled), out, upscaler, None) == 2
    assert out.getvalue().split(b"\n", 1)[0].endswith(" XTITLE=café XA=voilà XB=Åsa".encode())


@pytest.mark.parametrize("fmt", ["y4m", "png-stream"])
@pytest.mark.parametrize("closed", ["<&-", ">&-"])
def test_a_closed_standard_stream_is_one_line(tmp_path, fmt, closed):
    """`<&-` or `>&-` with a frame stream had been an AttributeError traceback ('NoneType' ... isatty)."""
    source = make_y4m(tmp_path / "in.y4m", frames=2)
    feed = "" if closed == "<&-" else f"< {source}"
    done = subprocess.run(["bash", "-c", f"{sys.executable} -m sr_filter - -o - --format {fmt} -m {MODEL} {feed} {closed}"],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    which = "standard input, which is closed" if closed == "<&-" else "standard output is closed"
    assert done.returncode == 2 and which in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_frame_range_on_a_frame_stream_is_refused_not_ignored(tmp_path):
    """--frames 1:2 on a YUV4MPEG2 stream had upscaled every frame without a word."""
    source = make_y4m(tmp_path / "in.y4m", frames=3)
    for fmt in ("y4m", "png-stream"):
        done = run("-", "-o", "-", "--format", fmt, "--frames", "1:2", "-m", MODEL, stdin=source.read_bytes())
        assert done.returncode == 2 and done.stdout == b"" and b"--frames needs a video file" in done.stderr, done.stderr


def test_video_options_on_a_frame_stream_are_refused_not_ignored(tmp_path):
    """--codec, --crf, --resume and --skip-damaged on a frame stream had changed nothing without a word."""
    source = make_y4m(tmp_path / "in.y4m", frames=2)
    for extra in (("--codec", "ffv1", "--crf", "40"), ("--resume",), ("--skip-damaged",)):
        done = run("-", "-o", "-", "--format", "y4m", *extra, "-m", MODEL, stdin=source.read_bytes())
        err = done.stderr.decode().strip()
        assert done.returncode == 2 and done.stdout == b"" and err.count("\n") == 0, err
        assert f"{', '.join(flag for flag in extra if flag.startswith('--'))} appl" in err and "to video files" in err, err


@pytest.mark.parametrize("fmt, name, refused", [("y4m", "out.mp4", True), ("y4m", "out.png", True), ("png-stream", "x.mkv", True),
                                                ("png-stream", "x.y4m", True), ("png-stream", "x.jpg", True),
                                                ("y4m", "out.jfif", True), ("y4m", "out.mpo", True),  # (had been written)
                                                ("y4m", "out.y4m", False), ("y4m", "plain", False), ("png-stream", "one.png", False)])
def test_a_frame_stream_named_as_another_format_is_refused(tmp_path, fmt, name, refused):
    """out.mp4 had been written as raw YUV4MPEG2 (x.mkv as concatenated PNGs) with exit 0."""
    frames = make_y4m(tmp_path / "in.y4m", frames=1).read_bytes()
    if fmt == "png-stream":
        frames = stream_of_pngs(1)
    done = run("-", "-o", tmp_path / name, "--format", fmt, "-m", MODEL, stdin=frames)
    err = done.stderr.decode().strip()
    if refused:
        assert done.returncode == 2 and f"{name} names" in err and f"--format {fmt} writes" in err, err
        assert not (tmp_path / name).exists()
    else:
        assert done.returncode == 0 and (tmp_path / name).stat().st_size > 0, err


def stream_of_pngs(count: int) -> bytes:
    """``count`` small PNG files one after another (``ffmpeg -f image2pipe -c:v png``)."""
    data = b""
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(pattern(i, 16, 12)).save(buffer, "PNG")
        data += buffer.getvalue()
    return data


def test_a_png_stream_read_as_one_image_says_so(tmp_path):
    """Concatenated PNGs on standard input without --format png-stream: the first was upscaled and
    the rest dropped without a word."""
    data = b""
    for i in range(3):
        buffer = io.BytesIO()
        Image.new("RGB", (16, 12), (50 * i, 90, 200)).save(buffer, "PNG")
        data += buffer.getvalue()
    done = run("-", "-o", tmp_path / "one.png", "-m", MODEL, stdin=data)
    assert done.returncode == 0 and b"holds more PNG images after the first (a PNG stream); only the first is upscaled" in done.stderr


def test_an_sd_stream_upscaled_to_hd_is_written_with_hds_matrix(tmp_path, upscaler):
    """A YUV4MPEG2 stream names no matrix: readers take BT.601 below 720 lines and BT.709 from 720.
    An SD stream upscaled to HD had kept BT.601 values, so its colours shifted as read there
    (a flat orange by 13 levels of green)."""
    header = stream.Y4mHeader(240, 180, "444", ["W240", "H180", "F25:1", "C444"])
    flat = np.zeros((180, 240, 3), np.uint8)
    flat[:] = (200, 110, 40)
    data = header.encode() + b"FRAME\n" + stream.rgb_to_yuv(flat, header, 180)
    out = io.BytesIO()
    assert stream.upscale_y4m(io.BytesIO(data), out, upscaler, 4.0) == 1
    out.seek(0)
    written = stream.read_header(out)
    frame = next(stream.read_frames(out, written))
    assert (written.width, written.height) == (960, 720)
    assert np.abs(frame[200:520, 200:760].reshape(-1, 3).mean(0) - (200, 110, 40)).max() < 4  # the network: 3; BT.601 values: 12


def test_a_y4m_file_to_standard_output_is_a_frame_stream(tmp_path):
    """`sr-filter clip.y4m -o -` had been refused, "a video cannot be written to standard output",
    though standard output takes the input's format, as an image's does."""
    source = make_y4m(tmp_path / "in.y4m", frames=2)
    done = subprocess.run([sys.executable, "-m", "sr_filter", source, "-o", "-", "-m", MODEL], capture_output=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 0 and done.stdout.startswith(b"YUV4MPEG2 W128 H96 "), done.stderr
    assert done.stdout.count(b"FRAME\n") == 2

"""Files, folders, pipes and bad input through the real `sr-filter` command: subprocesses where the process
is the point (descriptors, terminals, signals, shell redirections, memory limits), the entry point
in-process (``run_in_process``) for what a run reads, writes and says.

A subprocess costs a few seconds of torch import, so one run checks many files at once:
a folder of every kind of image goes through a single command.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from sr_filter.metadata import srgb_profile

from .conftest import ROOT, interruptible, run_in_process, signal_when
from .imagefiles import cmyk_profile, heic, png16_filtered
from .test_cli import run


def _save(image: Image.Image, path, **options) -> None:
    image.save(path, **options)


@pytest.fixture(scope="module")
def crop(set5):
    return np.asarray(Image.open(set5 / "bird.png").convert("RGB"))[60:84, 40:72].copy()  # 24x32


def _meaningful_stderr(err: bytes) -> list[str]:
    return [line for line in err.decode().splitlines() if line.strip()]


def test_stdin_to_stdout_keeps_format_and_stdout_clean(crop, tmp_path):
    jpeg = io.BytesIO()
    Image.fromarray(crop).save(jpeg, "JPEG", quality=95)
    done = run("-", "--preset", "cartoon", stdin=jpeg.getvalue())
    assert done.returncode == 0, done.stderr
    out = Image.open(io.BytesIO(done.stdout))
    assert out.format == "JPEG" and out.size == (128, 96)  # no --format: the input's format
    assert done.stdout.endswith(b"\xff\xd9")  # nothing but the image on stdout
    assert b"realesr-animevideov3" in done.stderr  # messages went to stderr
    path = tmp_path / "in.png"
    Image.fromarray(crop).save(path)
    piped = run(path, "-o", "-", "--format", "webp", "--quality", "80", "--preset", "cartoon", "-q")
    assert piped.returncode == 0 and piped.stderr == b"", piped.stderr
    assert Image.open(io.BytesIO(piped.stdout)).format == "WEBP"


def test_a_descriptor_output_is_written_through_not_replaced(crop, tmp_path):
    """`-o /dev/stdout` into a file the shell opened for appending had been refused ("cannot tell
    the output format", then "exists"), and --overwrite replaced the file by rename, dropping what
    was in it; `/dev/fd/3` likewise. Both now write through the descriptor, in the input's format,
    as `-o -` does; a descriptor that is not open is refused before any work."""
    path = tmp_path / "in.png"
    Image.fromarray(crop).save(path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "sr_filter", "-q", "-p", "cartoon", str(path)]
    log = tmp_path / "log.bin"
    for output, extra in (("/dev/stdout", []), ("/dev/stdout", ["--overwrite"]), ("/dev/fd/3", [])):
        log.write_bytes(b"HEADER\n")
        # as a shell runs it: `sr-filter ... -o /dev/stdout >> log`, `sr-filter ... -o /dev/fd/3 3>> log`
        shell = f'exec {"1" if output == "/dev/stdout" else "3"}>>"$0"; exec "$@"'
        done = subprocess.run(["sh", "-c", shell, str(log), *command, "-o", output, *extra], stderr=subprocess.PIPE,
                              env=env, timeout=600)
        assert done.returncode == 0 and done.stderr == b"", (output, done.stderr)
        data = log.read_bytes()
        assert data.startswith(b"HEADER\n\x89PNG") and Image.open(io.BytesIO(data[7:])).size == (128, 96), output
    closed = subprocess.run(command + ["-o", "/dev/fd/9"], capture_output=True, env=env, timeout=600)
    assert closed.returncode != 0 and closed.stderr.decode().splitlines() == [
        "sr-filter: error: /dev/fd/9 names file descriptor 9, which is not open; open it for writing (in a shell: "
        "3> FILE) or name a file"]
    # open for reading only: refused before the work (it had been "Bad file descriptor" after it)
    reading = subprocess.run(["sh", "-c", 'exec 3<"$0"; exec "$@"', str(log), *command, "-o", "/dev/fd/3"],
                             capture_output=True, env=env, timeout=600)
    assert reading.returncode != 0 and reading.stderr.decode().splitlines() == [
        "sr-filter: error: /dev/fd/3 names file descriptor 3, which is open for reading only; open it for writing "
        "(in a shell: 3> FILE) or name a file"]
    import pty

    master, terminal = pty.openpty()  # a descriptor on a terminal: refused as -o - is (it had written the PNG there)
    try:
        shown = subprocess.run(command + ["-o", f"/dev/fd/{terminal}"], capture_output=True, env=env, timeout=600,
                               pass_fds=(terminal,))
    finally:
        os.close(master)
        os.close(terminal)
    assert shown.returncode != 0 and shown.stderr.decode().splitlines() == [
        f"sr-filter: error: refusing to write image data to a terminal (/dev/fd/{terminal} is one); redirect it or name a file"]
    # an animation to a descriptor: the input's own format, as a still picture (it had been "not (none)")
    frames = [Image.fromarray(np.full((24, 32, 3), i * 80, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    log.write_bytes(b"")
    animated = subprocess.run(["sh", "-c", 'exec 3>>"$0"; exec "$@"', str(log), *command[:-1], str(tmp_path / "anim.gif"),
                               "-o", "/dev/fd/3"], stderr=subprocess.PIPE, env=env, timeout=600)
    assert animated.returncode == 0, animated.stderr
    with Image.open(log) as gif:
        assert (gif.format, gif.n_frames, gif.size) == ("GIF", 3, (128, 96))
    api = subprocess.run([sys.executable, "-c", f"import sr_filter; sr_filter.upscale_file({str(path)!r}, '/dev/stdout', "
                          "model='sr-cartoon-x4')"], capture_output=True, env=env, timeout=600)  # no format=: the input's
    assert api.returncode == 0 and api.stdout.startswith(b"\x89PNG"), api.stderr


def test_folder_of_every_kind_of_image(crop, tmp_path):
    """One command, one model load: modes, bit depths and metadata all come out right."""
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "nested" / "deeper").mkdir(parents=True)
    rgb = Image.fromarray(crop)
    # transparent background, palette with transparency, grey + alpha
    rgba = np.dstack([crop, np.zeros(crop.shape[:2], np.uint8)])
    rgba[4:20, 6:26, 3] = 255
    _save(Image.fromarray(rgba), src / "cutout.png")
    pal = rgb.quantize(8)
    _save(pal, src / "palette.gif", transparency=0)
    _save(Image.fromarray(np.dstack([crop[..., 0], rgba[..., 3]]), "LA"), src / "nested" / "grey_alpha.png")
    # 16-bit colour PNG (filtered, as libpng writes it) and 16-bit grey TIFF
    deep = crop.astype(np.uint16) * 257 + np.arange(32, dtype=np.uint16)[None, :, None]
    (src / "deep.png").write_bytes(png16_filtered(deep, interlaced=False))
    import tifffile

    tifffile.imwrite(src / "nested" / "grey16.tif", deep[..., 1], photometric="minisblack")
    # CMYK JPEG with a profile, and a camera-like JPEG: rotated, ICC, EXIF, DPI
    cmyk = np.zeros((24, 32, 4), np.uint8)
    cmyk[:, :16, 0] = 255
    _save(Image.fromarray(cmyk, "CMYK"), src / "nested" / "deeper" / "cmyk.jpg", icc_profile=cmyk_profile(), quality=95)
    exif = rgb.getexif()
    exif[0x0112] = 6
    exif[0x010F] = "Maker"
    exif[0x8769] = {0xA002: 32, 0xA003: 24}
    _save(rgb, src / "camera.jpg", exif=exif.tobytes(), icc_profile=srgb_profile(), dpi=(72, 72), quality=95)
    (src / "nested" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "notes.txt").write_text("not an image and not picked up")

    done = run_in_process(src, "-o", out, "--preset", "cartoon")
    err = done.stderr.decode()
    assert done.returncode == 1, err  # one file failed, the rest were written
    assert "Traceback" not in err and "7 upscaled, 0 skipped, 1 failed" in err
    assert "broken.png" in err and err.count("[") >= 7  # per-file progress lines
    assert err.count("realesr-animevideov3") == 1  # the model was loaded once
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["camera.jpg", "cutout.png", "deep.png", "nested/deeper/cmyk.jpg", "nested/grey16.tif",
                       "nested/grey_alpha.png", "palette.gif"]

    cutout = np.asarray(Image.open(out / "cutout.png"))
    assert cutout.shape == (96, 128, 4) and cutout[..., 3].max() == 255 and cutout[0, 0, 3] == 0
    assert Image.open(out / "nested" / "grey_alpha.png").mode == "LA"
    gif = Image.open(out / "palette.gif")
    assert gif.size == (128, 96)
    deep_out = tifffile.imread(out / "nested" / "grey16.tif")
    assert deep_out.dtype == np.uint16 and deep_out.shape == (96, 128) and len(np.unique(deep_out)) > 300
    from sr_filter.imageio import read_image

    deep_png, _ = read_image(out / "deep.png")
    assert deep_png.dtype == np.uint16 and deep_png.shape == (96, 128, 3) and len(np.unique(deep_png)) > 1000
    cmyk_out = Image.open(out / "nested" / "deeper" / "cmyk.jpg")
    assert cmyk_out.mode == "RGB" and np.asarray(cmyk_out)[48, 20, 0] > 200  # red through the profile
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(cmyk_out.info["icc_profile"]))).startswith("sRGB")
    camera = Image.open(out / "camera.jpg")
    assert camera.size == (96, 128)  # turned upright, then x4
    assert camera.info["icc_profile"] == Image.open(src / "camera.jpg").info["icc_profile"] and camera.info["dpi"] == pytest.approx((288, 288), abs=0.5)
    got = camera.getexif()
    assert got[0x0112] == 1 and got[0x010F] == "Maker" and got.get_ifd(0x8769)[0xA002] == 96

    # again, through a glob the shell did not expand: everything exists, so all are skipped
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    (src / "nested" / "broken.png").unlink()
    again = run_in_process(str(src / "*.png"), "-o", out, "--preset", "cartoon", "--skip-existing")
    assert again.returncode == 0, again.stderr
    assert b"skipping 2 existing" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    refused = run_in_process(src, "-o", out, "--preset", "cartoon")
    assert refused.returncode == 1 and b"--overwrite" in refused.stderr and b"Traceback" not in refused.stderr


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "case,message",
    [
        ("truncated.png", "is truncated or damaged"),
        ("truncated.jpg", "is truncated or damaged"),
        ("zero.png", "has no pixels (0x16)"),
        ("bomb.png", "60000x60000 (3,600 megapixels): for a 240000x240000 output, or any other size"),
        ("unwritable", "cannot write to output folder"),
        ("input as output", "is the input file; use --overwrite"),
        # through folders that do not exist yet: it had been called "exists"
        ("input through new folders", "newdir/deeper/../../good.png is the input file; use --overwrite"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(crop, tmp_path, case, message):
    """(Missing, empty, text-as-.png and unknown-extension cases are in test_cli.py.)"""
    good = tmp_path / "good.png"
    Image.fromarray(crop).save(good)
    jpeg = io.BytesIO()
    Image.fromarray(crop).save(jpeg, "JPEG")
    files = {
        "truncated.png": _truncated(good.read_bytes()),
        "truncated.jpg": _truncated(jpeg.getvalue()),
        "zero.png": _png_claiming(0, 16),
        "bomb.png": _png_claiming(60000, 60000),
    }
    args: list = []
    if case in files:
        (tmp_path / case).write_bytes(files[case])
        args = [tmp_path / case, "-o", tmp_path / "out.png"]
    elif case == "unwritable":
        if os.geteuid() == 0:
            folder = "/sys/kernel"  # read-only even for root
        else:
            folder = tmp_path / "locked"
            folder.mkdir(mode=0o500)
        args = [good, "-o", f"{folder}/out.png"]
    elif case == "input through new folders":
        args = [good, "-o", f"{tmp_path}/newdir/deeper/../../good.png"]
    else:
        args = [good, "-o", tmp_path / "." / "good.png"]
    before = good.read_bytes()
    done = run_in_process(*args, "--preset", "cartoon")
    err = done.stderr.decode()
    assert done.returncode == 1, err
    lines = _meaningful_stderr(done.stderr)
    assert len(lines) == 1 and lines[0].startswith("sr-filter: error: ") and message in lines[0], err
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"good.png", *([case] if case in files else [])})
    if case == "input as output":
        replaced = run_in_process(*args, "--preset", "cartoon", "--overwrite")
        assert replaced.returncode == 0, replaced.stderr
        assert Image.open(good).size == (128, 96)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_leaves_no_partial_file(tmp_path, set14, signum):
    """A real SIGINT (or SIGTERM) to a real run: the finished file stays, the interrupted one never appears."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    big = Image.open(set14 / "baboon.png").convert("RGB").resize((400, 400))
    big.crop((0, 0, 24, 24)).save(src / "a_small.png")
    big.save(src / "b_big.png")
    # --tta: 8x the network's work, so the big image takes seconds and the signal lands inside it (0.3 s into its tiles)
    status, stdout, stderr = signal_when([src, "-o", out, "--preset", "cartoon", "--tile", "128", "--tta"], out / "a_small.png",
                                         signum, after=0.3)
    err = stderr.decode()
    assert status == 128 + signum, err
    assert "Traceback" not in err and stdout == b"" and "\n\n" not in err, err  # click's own empty line is gone
    # one line with how far the batch came (Ctrl-C had given two: the count, then "interrupted"; SIGTERM no count)
    said = "interrupted" if signum == signal.SIGINT else "error: stopped by SIGTERM"
    assert err.endswith(f"sr-filter: {said} after 1 of 2 file(s); the one in progress was not written\n"), err
    assert err.count("after 1 of 2") == 1, err
    assert sorted(p.name for p in out.iterdir()) == ["a_small.png"]  # no partial, no temporary file
    assert Image.open(out / "a_small.png").size == (96, 96)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_removes_the_output_folders_it_made(tmp_path, set14, signum):
    """Ctrl-C and SIGTERM end with os._exit, which skipped the command's removal of the empty
    folders it had made for its output (kept by every interrupted run)."""
    Image.open(set14 / "baboon.png").convert("RGB").resize((400, 400)).save(tmp_path / "big.png")
    made = tmp_path / "new" / "deep"
    status, _, stderr = signal_when([tmp_path / "big.png", "-o", made / "out.png", "--preset", "cartoon", "--tile", "128", "--tta"],
                                    made, signum, after=1.0)  # the folder is made before the model loads
    assert status == 128 + signum, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"], stderr


def test_batch_guards(crop, tmp_path):
    """Outputs nested in the input folder are not read back; clashing outputs and in-place runs are refused."""
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    Image.fromarray(crop).save(src / "a" / "x.png")
    Image.fromarray(crop).save(src / "b" / "x.png")
    clash = run_in_process(src / "a" / "x.png", src / "b" / "x.png", "-o", tmp_path / "flat", "--preset", "cartoon")
    assert clash.returncode == 2 and b"would both be written to" in clash.stderr and b"Traceback" not in clash.stderr
    assert not (tmp_path / "flat").exists()
    for sub in ("a", "b"):  # outputs of an earlier run, in a folder inside the input folder
        (src / "up" / sub).mkdir(parents=True)
        Image.fromarray(crop).resize((128, 96)).save(src / "up" / sub / "x.png")
    second = run_in_process(src, "-o", src / "up", "--preset", "cartoon", "--skip-existing")
    assert second.returncode == 0 and b"skipping 2 existing" in second.stderr, second.stderr
    assert second.stderr.decode().splitlines()[-1] == "sr-filter: 0 upscaled, 2 skipped, 0 failed"  # the summary, as always
    (src / "b" / "y.png").write_text("not a picture")  # one left to do, and it fails: still a batch's summary
    third = run_in_process(src, "-o", src / "up", "--preset", "cartoon", "--skip-existing")
    assert third.returncode == 1 and third.stderr.decode().splitlines()[-2:] == [
        f"sr-filter: failed: {src / 'b' / 'y.png'}", "sr-filter: 0 upscaled, 2 skipped, 1 failed"], third.stderr
    (src / "b" / "y.png").unlink()
    assert sorted(str(p.relative_to(src)) for p in src.rglob("*.png")) == ["a/x.png", "b/x.png", "up/a/x.png", "up/b/x.png"]
    in_place = run_in_process(src, "-o", src, "--preset", "cartoon")
    assert in_place.returncode == 1 and b"is the input file; use --overwrite" in in_place.stderr
    assert Image.open(src / "a" / "x.png").size == (32, 24)


def test_progress_bar_on_a_terminal_only(set5, tmp_path):
    """On a terminal, stderr shows a bar per file and one over the batch; with a pipe (the tests above) none."""
    import pty

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        Image.open(set5 / "head.png").crop((0, 0, 224, 224)).save(src / name)  # 49 windows of 32 px: the bar redraws between them
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", src, "-o", tmp_path / "out", "--preset", "cartoon", "--tile", "32"],
                            stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text
    frames = text.replace("\r\n", "\n").replace("\n", "\r").split("\r")
    for name in ("a.png", "b.png"):  # a bar per file that moves per tile window, with elapsed<remaining
        shown = {line.split("%")[0].split()[-1] for line in frames if line.startswith(name) and "%|" in line}
        assert "100" in shown and any(0 < int(p) < 100 for p in shown), (name, shown)
        # at 100% the file is being written (a large PNG: a third of the run), and the bar says so
        assert any(line.startswith(f"{name} (writing) 100%") for line in frames), [f for f in frames if f.startswith(name)]
    batch = [line for line in frames if line.startswith("all") and "files [" in line]
    assert any("1/2 files [00:0" in line and "<00:0" in line and ("s/file]" in line or "file/s]" in line) for line in batch), batch  # rate, ETA
    assert any(line.startswith("all 100%") and "2/2 files" in line for line in batch)
    assert "sr-filter: 2 upscaled, 0 skipped, 0 failed" in text


def test_no_image_data_from_or_to_a_terminal():
    import pty

    leader, follower = pty.openpty()
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-m", "sr_filter", "-", "--preset", "cartoon"], stdin=follower,
                              capture_output=True, env=env, timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2 and b"standard input, which is a terminal" in done.stderr and done.stdout == b""


def test_a_folder_batch_takes_apng_jfif_and_mpo_files(tmp_path):
    """A folder's .apng, .jfif and .mpo files were skipped without a word ('1 upscaled'), though
    each one alone was upscaled; -o NAME.apng is a PNG output."""
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [Image.new("RGB", (12, 8), (60 * i, 90, 30)) for i in range(3)]
    frames[0].save(folder / "moving.apng", format="PNG", save_all=True, append_images=frames[1:], duration=100)
    Image.new("RGB", (12, 8), (10, 200, 30)).save(folder / "old.jfif", format="JPEG")
    Image.new("RGB", (12, 8), (10, 20, 230)).save(folder / "camera.mpo", format="JPEG")
    Image.new("RGB", (12, 8), (200, 20, 30)).save(folder / "plain.png")
    result = run_in_process(folder, "-m", "sr-cartoon-x4", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert b"4 upscaled" in result.stderr
    with Image.open(tmp_path / "out" / "moving.apng") as moving:
        assert moving.format == "PNG" and moving.n_frames == 3 and moving.size == (48, 32)
    with Image.open(tmp_path / "out" / "old.jfif") as old, Image.open(tmp_path / "out" / "camera.jpg") as camera:
        assert old.format == camera.format == "JPEG"
    assert run_in_process(tmp_path / "out" / "plain.png", "-m", "sr-cartoon-x4", "-o", tmp_path / "still.apng").returncode == 0
    with Image.open(tmp_path / "still.apng") as still:
        assert still.format == "PNG"


def test_a_batch_names_the_file_each_content_warning_is_about(tmp_path):
    """A batch flattening two transparent pictures printed one unnamed line for both."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGBA", (8, 6), (200, 10, 10, 100)).save(folder / "one.png")
    Image.new("LA", (8, 6), (90, 100)).save(folder / "two.png")
    Image.new("RGB", (8, 6), (1, 2, 3)).save(folder / "three.png")
    result = run_in_process(folder, "-m", "sr-cartoon-x4", "-o", tmp_path / "out", "--format", "jpg")
    lines = [line for line in result.stderr.decode().splitlines() if "flattening" in line]
    assert result.returncode == 0 and sorted(lines) == [
        f"sr-filter: {folder / name}: JPEG has no transparency; flattening the alpha channel onto white" for name in ("one.png", "two.png")]


def test_a_video_named_as_an_image_with_a_video_output_is_told_why(tmp_path):
    """'cannot tell the output format from x.mkv; use an extension such as .png' misled: the
    input, a video named .png, was read as an image because of its name."""
    from .videos import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=0)
    named = tmp_path / "clip.png"
    named.write_bytes(clip.read_bytes())
    result = run_in_process(named, "-m", "sr-cartoon-x4", "-o", tmp_path / "x.mkv")
    err = result.stderr.decode()
    assert result.returncode == 1 and err.count("\n") == 1 and "x.mkv names a video, but the input is read as an image" in err, err


def test_a_newline_in_a_file_name_keeps_every_batch_message_on_one_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (8, 6), (1, 2, 3)).save(folder / "tr\nunc.png")
    (folder / "da\nmaged.png").write_bytes(b"not an image")
    result = run_in_process(folder, "-m", "sr-cartoon-x4", "-o", tmp_path / "out")
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 1 and all(line.startswith("sr-filter: ") for line in lines), lines
    assert any(line.endswith("tr\\nunc.png -> " + str(tmp_path / "out" / "tr") + "\\nunc.png (0.0 s)") or "tr\\nunc.png ->" in line
               for line in lines)
    assert f"sr-filter: failed: {folder}/da\\nmaged.png" in lines
    error = next(line for line in lines if line.startswith("sr-filter: error: "))
    assert f"{folder}/da\\nmaged.png" in error, error  # as the failed line names it (it had read "da maged.png")
    (folder / "da\\nmaged.png").write_bytes(b"not an image either")  # a backslash and an n: shown doubled, unlike the newline
    result = run_in_process(folder / "da\\nmaged.png", "-m", "sr-cartoon-x4", "-o", tmp_path / "out2.png")
    assert "da\\\\nmaged.png" in result.stderr.decode(), result.stderr
    # a backslash and u202e: shown doubled, unlike U+202E (escaped \u202e); C:\Users reads as no escape and stays
    from sr_filter.errors import shown_path

    assert (shown_path("a\\u202e.png"), shown_path("a\u202e.png")) == ("a\\\\u202e.png", "a\\u202e.png")
    assert shown_path("C:\\Users\\me.png") == "C:\\Users\\me.png"


def test_hdr_float_tiff_keeps_light_above_white_and_a_png_says_it_clips(tmp_path):
    import tifffile

    data = np.full((12, 12, 3), 0.5, np.float32)
    data[3:9, 3:9] = 6.0  # a linear-light highlight, six times white
    tifffile.imwrite(tmp_path / "hdr.tif", data, photometric="rgb")
    out = run_in_process(tmp_path / "hdr.tif", "-o", tmp_path / "up.tif", "-m", "sr-cartoon-x4", "-d", "cpu")
    assert out.returncode == 0, out.stderr
    assert b"clipped" not in out.stderr
    up = tifffile.imread(tmp_path / "up.tif")
    assert up.dtype == np.float32 and up.shape == (48, 48, 3) and up[20:28, 20:28].min() > 5.5  # was 1.0
    out = run_in_process(tmp_path / "hdr.tif", "-o", tmp_path / "up.png", "-m", "sr-cartoon-x4", "-d", "cpu")
    assert out.returncode == 0, out.stderr
    assert "PNG holds 0..1 (black to white): the picture's values up to 6 (HDR or out of gamut) are clipped to it " \
           "(a float TIFF keeps them)" in out.stderr.decode()


def test_padded_input_on_stdin_is_refused_without_a_hint_about_the_output_size(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, "PNG")
    out = run_in_process("-", "-o", "-", "--format", "png", "-m", "sr-cartoon-x4", "-d", "cpu", stdin=buffer.getvalue() + bytes(80 << 20))
    err = out.stderr.decode().strip().splitlines()
    assert out.returncode == 1 and out.stdout == b""
    assert err[-1].endswith("refusing to read further (padded or endless input)"), err  # no "--scale" advice


def test_an_empty_input_or_output_name_is_refused_not_taken_for_the_current_folder(tmp_path):
    # `sr-filter "$IN" -o result.png` with IN unset had upscaled every image below the current
    # folder into a new folder named result.png; `-o ''` wrote next to the current folder.
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / "photos" / "a.png")
    out = run_in_process("", "-o", "result.png", "-m", "sr-cartoon-x4", "-d", "cpu", cwd=tmp_path)
    assert out.returncode == 2 and b"an input name is empty" in out.stderr, out.stderr  # misuse of the command line: 2
    out = run_in_process("photos/a.png", "-o", "", "-m", "sr-cartoon-x4", "-d", "cpu", cwd=tmp_path)
    assert out.returncode == 2 and b"the output name (-o) is empty" in out.stderr, out.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "photos"]


def test_standard_input_into_a_folder_is_named_like_a_file(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 60, 30)).save(buffer, "PNG")
    for extra in ([], ["--suffix", "_z"], ["-s", "2"]):
        out = run_in_process("-", "-o", f"{tmp_path}/", "-m", "sr-cartoon-x4", "-d", "cpu", *extra, stdin=buffer.getvalue())
        assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdin_x2.png", "stdin_x4.png", "stdin_z.png"]


def test_quality_with_only_lossless_outputs_is_said_to_change_nothing(tmp_path):
    Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / "a.png")
    out = run_in_process(tmp_path / "a.png", "-o", tmp_path / "b.png", "--quality", "80", "-m", "sr-cartoon-x4", "-d", "cpu")
    assert out.returncode == 0 and b"--quality is for JPEG, WebP and AVIF output; PNG has no quality setting" in out.stderr
    out = run_in_process(tmp_path / "a.png", "-o", tmp_path / "b.jpg", "--quality", "80", "-m", "sr-cartoon-x4", "-d", "cpu")
    assert out.returncode == 0 and b"--quality" not in out.stderr
    skipped = run_in_process(tmp_path / "a.png", "-o", tmp_path / "b.png", "--quality", "80", "--skip-existing", "-m", "sr-cartoon-x4")
    assert skipped.returncode == 0 and skipped.stderr.decode() == f"sr-filter: skipping existing output {tmp_path / 'b.png'}\n"  # had named " has no quality setting"
    refused = run_in_process(tmp_path / "a.png", "-o", tmp_path / "b.png", "--quality", "80", "-m", "sr-cartoon-x4")
    assert refused.returncode == 1 and refused.stderr.decode().count("\n") == 1 and b"exists" in refused.stderr  # no note before it
    frames = [Image.new("RGB", (8, 8), (40 * i, 60, 30)) for i in range(2)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    animated = run(tmp_path / "a.gif", "-o", tmp_path / "b.gif", "--quality", "80", "-m", "sr-cartoon-x4").stderr.decode()
    assert animated.count("--quality is for JPEG, WebP and AVIF output; GIF has no quality setting") == 1, animated  # had been nothing


def test_skip_existing_counts_an_output_another_run_wrote_meanwhile_as_skipped(tmp_path, monkeypatch):
    # Parallel batches into one folder with --skip-existing: an output that appeared while this
    # run worked on it was a failure (exit 1) that suggested the --skip-existing already given.
    from click.testing import CliRunner

    from sr_filter import atomic, imageio
    from sr_filter.cli import cli

    for name in ("a", "b"):
        Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / f"{name}.png")
    real = atomic.write_atomic

    def raced(data, path, *, overwrite=False):
        if Path(path).name == "a.png":
            Path(path).write_bytes(b"the other run's output")
        return real(data, path, overwrite=overwrite)

    monkeypatch.setattr(imageio, "write_atomic", raced)
    result = CliRunner().invoke(cli, [str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "out") + "/",
                                      "--skip-existing", "-m", "sr-cartoon-x4", "-d", "cpu"])
    assert result.exit_code == 0, result.output
    assert "another process wrote it meanwhile" in result.output and "1 upscaled, 1 skipped, 0 failed" in result.output
    assert (tmp_path / "out" / "a.png").read_bytes() == b"the other run's output"


@pytest.mark.skipif(sys.platform != "linux", reason="address-space limits as Linux applies them")
def test_a_memory_limit_too_tight_to_load_the_libraries_is_one_line(tmp_path):
    # Under `ulimit -v` a compiled library fails to map (ImportError) or a thread fails to start
    # (RuntimeError): these came as tracebacks.
    import resource

    Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / "a.png")
    refused = 0
    for megabytes in (300, 330, 450):  # 300: torch's libgomp fails to map through ctypes (an OSError, said raw)
        def limit(megabytes=megabytes):
            resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))

        out = subprocess.run([sys.executable, "-m", "sr_filter", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"),
                              "--overwrite", "-m", "sr-cartoon-x4", "-d", "cpu", "--backend", "torch"],
                             capture_output=True, text=True, timeout=300, preexec_fn=limit,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        if out.returncode == 0:
            continue  # enough for this machine's libraries at this limit
        refused += 1
        lines = [line for line in out.stderr.splitlines() if line.startswith("sr-filter: error:")]
        assert "Traceback" not in out.stderr and len(lines) == 1, (megabytes, out.stderr[-3000:])
        assert "for lack of memory" in lines[0] or "out of memory" in lines[0], lines
    from sr_filter.errors import resource_failure

    said = resource_failure(OSError("libgomp.so.1: failed to map segment from shared object"))
    assert said.startswith("cannot load a compiled library for lack of memory (libgomp.so.1: failed"), said
    if not refused:
        pytest.skip("no limit tried keeps this machine's libraries from loading")


def test_a_new_users_slips_get_what_was_meant(tmp_path):
    # A mistyped command was taken for a missing input file (exit 1, "modles does not exist"); a
    # quoted '~' made a folder named ~; several inputs with -o NAME.png made a folder NAME.png.
    Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / "b.png")
    (tmp_path / "dir1").mkdir()
    Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / "dir1" / "c.png")
    cases = [
        (["modles"], 2, "no file or command 'modles'; did you mean: sr-filter models ...?"),
        (["help"], 2, "for help run: sr-filter --help"),
        (["a.png", "models"], 2, "'models' is a command: put it first"),
        (["a.png", "b.png", "-o", "one.png"], 2, "2 inputs need an output folder, but one.png names a file; use -o one/"),
        (["dir1", "-o", "one.png"], 2, "a folder input needs an output folder, but one.png names a file"),  # "1 inputs need" had been said
        (["a.png", "-o", "~/q.png"], 2, "'~' in -o ~/q.png was not expanded (quoted?)"),
        (["dir1\\c.png"], 1, "dir1\\c.png does not exist (folders are separated by /: did you mean dir1/c.png?)"),
        (["train", "a.png"], 1, "a.png is not a TOML text file"),
    ]
    for args, code, words in cases:
        out = run_in_process(*args, cwd=tmp_path)
        err = out.stderr.decode()
        assert out.returncode == code and words in err and "Traceback" not in err, (args, out.returncode, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "dir1"]


def test_suffix_with_an_output_file_named_is_refused_not_ignored(tmp_path):
    Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / "a.png")
    out = run_in_process(tmp_path / "a.png", "-o", tmp_path / "q.png", "--suffix", "_big", "-m", "sr-cartoon-x4", "-d", "cpu")
    assert out.returncode == 2 and b"names the output file, so --suffix changes nothing" in out.stderr, out.stderr
    assert not (tmp_path / "q.png").exists()


def test_an_output_that_links_to_another_input_is_refused(crop, tmp_path):
    """out/a.png, a link to b.png (an input too), had made b.png "an output of an earlier run": it
    was left out without a word, and with --overwrite, a.png's picture replaced it through the link."""
    Image.fromarray(crop).save(tmp_path / "a.png")
    Image.fromarray(np.ascontiguousarray(crop[::-1])).save(tmp_path / "b.png")
    original = (tmp_path / "b.png").read_bytes()
    for kind in ("symlink", "hard link"):
        out = tmp_path / kind.replace(" ", "")
        out.mkdir()
        if kind == "symlink":
            (out / "a.png").symlink_to(tmp_path / "b.png")
        else:
            os.link(tmp_path / "b.png", out / "a.png")
        done = run_in_process(tmp_path / "a.png", tmp_path / "b.png", "-o", out, "--overwrite", "-m", "sr-photo-x4")
        assert done.returncode == 2 and (tmp_path / "b.png").read_bytes() == original, (kind, done.stderr)
        assert f"{out / 'a.png'}, the output of {tmp_path / 'a.png'}, is {tmp_path / 'b.png'}, another input".encode() \
            in done.stderr, done.stderr
        assert sorted(p.name for p in out.iterdir()) == ["a.png"]
        # --skip-existing: a.png's output is there; b.png is upscaled as any other input
        done = run_in_process(tmp_path / "a.png", tmp_path / "b.png", "-o", out, "--skip-existing", "-m", "sr-photo-x4")
        assert done.returncode == 0 and b"left out" not in done.stderr, done.stderr
        assert (tmp_path / "b.png").read_bytes() == original
        with Image.open(out / "b.png") as image:
            assert image.size == (crop.shape[1] * 4, crop.shape[0] * 4)


def test_a_batch_says_what_it_leaves_out_and_never_redoes_its_own_outputs(crop, tmp_path, monkeypatch):
    """Folders and patterns in a batch: a `**` pattern with links back up the tree searched for
    ever; hidden files (macOS's ._x.png) failed the batch; an unreadable subfolder, videos and the
    images already in an output folder named inside the input were passed over without a word;
    a rerun upscaled the outputs written beside the inputs again (a_x4_x4.png); --skip-existing
    took a folder in the output's place for a finished output; a pattern's files lost their
    subfolders; a pipe or a dead link "did not exist"."""
    from .videos import make_clip

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png", ".hidden.png"):
        Image.fromarray(crop).save(src / name)
    (src / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (src / "notes.txt").write_text("x")
    make_clip(src / "clip.mp4", frames=2, audio=0)
    (src / "loop").symlink_to(".")
    (src / "up").symlink_to("sub")
    done = run_in_process(src, "-o", tmp_path / "out", "-m", "sr-photo-x4")
    lines = _meaningful_stderr(done.stderr)
    assert done.returncode == 0, done.stderr
    assert lines[0] == ("sr-filter: left out: 1 video (name it to upscale it), 2 hidden files and folders, "
                        "2 symbolic links to folders, 1 other file")
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")) == ["a.png", "sub", "sub/b.png"]

    pattern = run_in_process(str(src) + "/**/*.png", "-o", tmp_path / "globbed", "-m", "sr-photo-x4")  # the links are not entered
    assert pattern.returncode == 0, pattern.stderr
    assert sorted(str(p.relative_to(tmp_path / "globbed")) for p in (tmp_path / "globbed").rglob("*.png")) == ["a.png", "sub/b.png"]

    beside = tmp_path / "beside"
    beside.mkdir()
    Image.fromarray(crop).save(beside / "a.png")
    assert run_in_process(str(beside) + "/*.png", "-m", "sr-photo-x4", "-q").returncode == 0
    again = run_in_process(str(beside) + "/*.png", "-m", "sr-photo-x4", "--skip-existing")
    assert again.returncode == 0 and b"left out: 1 output of an earlier run" in again.stderr, again.stderr
    assert sorted(p.name for p in beside.iterdir()) == ["a.png", "a_x4.png"]

    inside = tmp_path / "photos"
    (inside / "kept").mkdir(parents=True)
    Image.fromarray(crop).save(inside / "a.png")
    Image.fromarray(crop).save(inside / "kept" / "b.png")
    (inside / "kept" / "sub").mkdir()
    Image.fromarray(crop).save(inside / "kept" / "sub" / "c.png")  # below it too (only its top level had been counted)
    nested = run_in_process(inside, "-o", inside / "kept", "-m", "sr-photo-x4")
    assert b"left out: 2 files already in the output folder" in nested.stderr, nested.stderr

    (tmp_path / "taken" / "a.png").mkdir(parents=True)  # a folder where an output goes: not a finished output
    taken = run_in_process(beside / "a.png", beside / "a_x4.png", "-o", tmp_path / "taken", "-m", "sr-photo-x4", "--skip-existing")
    assert taken.returncode == 1 and b"taken/a.png is a folder" in taken.stderr, taken.stderr

    import socket

    os.mkfifo(tmp_path / "pipe")  # no picture's name to write it under (a named pipe with one is read)
    server = socket.socket(socket.AF_UNIX)  # a socket is never read
    server.bind(str(tmp_path / "sock.png"))
    (tmp_path / "dead.png").symlink_to(tmp_path / "nothing.png")
    for name, words in (("pipe", b"is a pipe with no picture's name to name its output after"),
                        ("sock.png", b"is not a regular file (a pipe, socket or device)"),
                        ("dead.png", b"is a symbolic link to nothing that exists")):
        odd = run_in_process(tmp_path / name, beside / "a.png", "-o", tmp_path / f"odd-{Path(name).stem}", "-m", "sr-photo-x4")
        assert odd.returncode == 1 and words in odd.stderr, odd.stderr
        # one failure of the batch, in its turn: the other input is done (it had stopped the whole batch)
        assert (tmp_path / f"odd-{Path(name).stem}" / "a.png").is_file() and b"1 upscaled, 0 skipped, 1 failed" in odd.stderr
    server.close()


def test_a_file_or_folder_with_no_picture_among_several_fails_alone(crop, tmp_path):
    """`sr-filter *` in a folder with a README, a file with no extension, a folder with no pictures:
    each had stopped the whole batch before any work; now each is one failure of the batch, the
    pictures are done, and the advice fits a batch (it had said "(or noext/ for a folder)")."""
    Image.fromarray(crop).save(tmp_path / "a.png")
    shutil.copy(tmp_path / "a.png", tmp_path / "b.png")
    (tmp_path / "README").write_text("notes")
    (tmp_path / "empty").mkdir()
    advice = "to read it anyway, give --format (or give it alone, naming the output with -o)"
    beside = run_in_process(tmp_path / "a.png", tmp_path / "README", tmp_path / "b.png", "-q", "-m", "sr-photo-x4")
    lines = _meaningful_stderr(beside.stderr)
    assert beside.returncode == 1 and (tmp_path / "a_x4.png").is_file() and (tmp_path / "b_x4.png").is_file(), lines
    assert lines[0].startswith(f"sr-filter: error: {tmp_path / 'README'} is not a supported image (") and lines[0].endswith(advice)
    assert lines[-1] == "sr-filter: 2 upscaled, 0 skipped, 1 failed"
    into = run_in_process(tmp_path / "a.png", tmp_path / "README", tmp_path / "empty", tmp_path / "b.png", "-o", tmp_path / "out", "-q",
               "-m", "sr-photo-x4")
    lines = _meaningful_stderr(into.stderr)
    assert into.returncode == 1 and {p.name for p in (tmp_path / "out").iterdir()} == {"a.png", "b.png"}, lines
    assert lines[0].endswith(advice) and lines[1].startswith(f"sr-filter: error: no image files (") and lines[1].endswith(
        f"in {tmp_path / 'empty'}")
    assert lines[-1] == "sr-filter: 2 upscaled, 0 skipped, 2 failed"
    alone = run_in_process(tmp_path / "README", "-o", f"{tmp_path / 'out2'}/", "-m", "sr-photo-x4")  # -o names a folder: not "name it with -o"
    assert alone.returncode == 1 and alone.stderr.decode().strip().endswith(
        "to read it anyway, name the output file with -o (not a folder), or give --format"), alone.stderr


def test_a_missing_input_among_several_fails_alone(crop, tmp_path):
    """`sr-filter a.png typo.png -o out/`: the missing one is an error line and a failure in the
    summary, the others are done, the exit status 1 (as cp does); a single missing input is still
    refused before any model loads."""
    Image.fromarray(crop).save(tmp_path / "a.png")
    both = run_in_process(tmp_path / "a.png", tmp_path / "typo.png", "-o", tmp_path / "out", "-m", "sr-photo-x4")
    lines = _meaningful_stderr(both.stderr)
    assert both.returncode == 1 and (tmp_path / "out" / "a.png").is_file(), lines
    assert f"sr-filter: error: {tmp_path / 'typo.png'} does not exist" in lines and lines[-1] == "sr-filter: 1 upscaled, 0 skipped, 1 failed"
    beside = run_in_process(tmp_path / "typo.png", tmp_path / "a.png", "-m", "sr-photo-x4")  # no -o: written beside it
    assert beside.returncode == 1 and (tmp_path / "a_x4.png").is_file() and b"typo.png does not exist" in beside.stderr
    alone = run_in_process(tmp_path / "typo.png", "-m", "sr-photo-x4")
    assert alone.returncode == 1 and _meaningful_stderr(alone.stderr) == [f"sr-filter: error: {tmp_path / 'typo.png'} does not exist"]


def test_a_folder_that_cannot_be_read_fails_the_batch(crop, tmp_path, monkeypatch):
    """A subfolder without read permission was skipped with exit 0. (Root reads every folder, so
    there the refusal is made by the walk's own directory listing, patched to refuse as the OS
    would for another user.)"""
    from click.testing import CliRunner

    from sr_filter.cli import cli, jobs

    src = tmp_path / "in"
    (src / "locked").mkdir(parents=True)
    Image.fromarray(crop).save(src / "a.png")
    Image.fromarray(crop).save(src / "locked" / "z.png")
    if os.geteuid() == 0:
        real = os.scandir

        def scandir(path="."):
            if Path(path) == src / "locked":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    else:
        (src / "locked").chmod(0)
    try:
        found, unreadable = jobs._images_in(src, tmp_path / "out", jobs.Counter())
        batch = CliRunner().invoke(cli, [str(src), "-o", str(tmp_path / "out"), "-m", "sr-photo-x4", "--offline"])
    finally:
        (src / "locked").chmod(0o755)
    assert found == [src / "a.png"] and unreadable == [(src / "locked", f"cannot read folder {src / 'locked'}: Permission denied")]
    assert batch.exit_code == 1, batch.output
    assert f"sr-filter: error: cannot read folder {src / 'locked'}: Permission denied" in batch.output
    assert f"sr-filter: failed: {src / 'locked'}" in batch.output  # the folder that failed (it had named the input folder)
    assert batch.output.splitlines()[-1] == "sr-filter: 1 upscaled, 0 skipped, 1 failed"


def test_a_name_that_is_not_utf8_is_shown_with_its_bytes(tmp_path):
    """Bytes that are not UTF-8 showed as Python's stand-ins (bad\\udcff.png)."""
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"bad\xff.png")
    Image.new("RGB", (8, 6), (1, 2, 3)).save(folder / name)
    result = run_in_process(folder, "-m", "sr-cartoon-x4", "-o", tmp_path / "out")
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0 and "bad\\xff.png ->" in err and "udcff" not in err, err
    assert (tmp_path / "out" / name).is_file()


def test_a_picture_past_pillows_bomb_warning_gets_only_our_own_line(tmp_path):
    """10000x9500 is past the size at which Pillow warns of a decompression bomb (and short of the
    one where it refuses): its warning had been printed raw, with its source line, before the
    error, with -q too. The memory check says in its own words what is too large."""
    from .test_imageio import _png_header_only

    (tmp_path / "big.png").write_bytes(_png_header_only(10000, 9500))
    out = run_in_process("-q", tmp_path / "big.png", "-o", tmp_path / "out.png")
    lines = _meaningful_stderr(out.stderr)
    assert out.returncode == 1 and len(lines) == 1 and lines[0].startswith("sr-filter: error: "), lines
    assert not (tmp_path / "out.png").exists()


def test_a_pipe_named_as_input_is_read_as_standard_input_is(crop, tmp_path):
    """`sr-filter <(curl ...) -o out.png`: bash passes /dev/fd/63, a pipe, which had been refused
    as "not a regular file". It is read with standard input's bounds, its format from its bytes;
    without -o there is no name to make an output name from, and that is said."""
    Image.fromarray(crop).save(tmp_path / "a.png")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = f"{sys.executable} -m sr_filter <(cat a.png) -m sr-cartoon-x4"
    done = subprocess.run(["bash", "-c", command + " -o out.png"], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0 and Image.open(tmp_path / "out.png").size == (128, 96), done.stderr
    nameless = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, timeout=300, text=True)
    assert nameless.returncode == 2 and nameless.stderr.strip().endswith("is a pipe (as <(...) in a shell gives): name the output file with -o")
    endless = subprocess.run(["bash", "-c", f"{sys.executable} -m sr_filter <(cat /dev/zero) -m sr-cartoon-x4 -o zero.png"],
                             cwd=tmp_path, env=env, capture_output=True, timeout=300, text=True)
    assert endless.returncode == 1 and "is not a readable image" in endless.stderr and not (tmp_path / "zero.png").exists()
    # a character device is not read as a pipe: /dev/tty would wait for typing
    from sr_filter.cli.jobs import is_pipe

    os.mkfifo(tmp_path / "fifo")
    assert is_pipe(tmp_path / "fifo") and not is_pipe(Path("/dev/null")) and not is_pipe(tmp_path / "a.png")
    device = run_in_process("/dev/null", "-o", tmp_path / "null.png", "-m", "sr-cartoon-x4")
    assert device.returncode == 1 and b"/dev/null is not a regular file" in device.stderr, device.stderr


@pytest.mark.parametrize("name", ["fifo.png", "fifo.gif"])
def test_a_named_pipe_with_an_animation_suffix_is_read_once(crop, tmp_path, name):
    """A named pipe called *.png, *.gif or *.webp was drained by the animation check and opened a
    second time for the picture: that open waited for a writer for ever (one named .jpg worked)."""
    import threading

    data = io.BytesIO()
    Image.fromarray(crop).save(data, "PNG")
    os.mkfifo(tmp_path / name)

    def write() -> None:
        with open(tmp_path / name, "wb") as pipe:
            pipe.write(data.getvalue())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    done = subprocess.run([sys.executable, "-m", "sr_filter", str(tmp_path / name), "-o", str(tmp_path / "out.png"),
                           "-m", "sr-cartoon-x4"], capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 0 and Image.open(tmp_path / "out.png").size == (128, 96), done.stderr


def test_a_named_pipe_in_a_batch_is_read_under_its_name(crop, tmp_path):
    """Among several inputs with -o FOLDER a named pipe had failed as "not a regular file" (alone,
    and in a batch without -o, it is read); given alone with a folder, it was asked for -o, which
    had been given."""
    import threading

    data = io.BytesIO()
    Image.fromarray(crop).save(data, "PNG")
    Image.fromarray(crop).save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "f1.png")

    def write() -> None:
        with open(tmp_path / "f1.png", "wb") as pipe:
            pipe.write(data.getvalue())

    threading.Thread(target=write, daemon=True).start()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "sr_filter", str(tmp_path / "a.png"), str(tmp_path / "f1.png"), "-o",
                           str(tmp_path / "out") + "/", "-m", "sr-cartoon-x4"], capture_output=True, env=env, timeout=120)
    assert done.returncode == 0 and Image.open(tmp_path / "out" / "f1.png").size == (128, 96), done.stderr
    os.mkfifo(tmp_path / "f2.png")
    alone = subprocess.run([sys.executable, "-m", "sr_filter", str(tmp_path / "f2.png"), "-o", str(tmp_path / "out") + "/",
                            "-m", "sr-cartoon-x4"], capture_output=True, env=env, timeout=120, text=True)
    assert alone.returncode == 2 and "names a folder; name the output file instead" in alone.stderr, alone.stderr


def test_an_error_no_check_foresaw_fails_one_file_of_a_batch_in_one_line(crop, tmp_path, monkeypatch, capsys):
    """A bug (here a ValueError from the reader, simulated: the case that raised one is mended)
    had been a traceback that ended the batch before the files after it, with no summary."""
    from click.testing import CliRunner

    from sr_filter import imagefile
    from sr_filter.cli import cli

    for name in ("0bad.png", "1good.png"):
        Image.fromarray(crop).save(tmp_path / name)
    real = imagefile.upscale_image_file

    def flawed(upscaler, source, **kwargs):
        if str(source).endswith("0bad.png"):
            raise ValueError("palette index out of range")
        return real(upscaler, source, **kwargs)

    monkeypatch.setattr(imagefile, "upscale_image_file", flawed)
    done = CliRunner().invoke(cli, [str(tmp_path / "0bad.png"), str(tmp_path / "1good.png"), "-o", str(tmp_path / "out"),
                                    "-m", "sr-cartoon-x4"])
    assert done.exit_code == 1 and (tmp_path / "out" / "1good.png").is_file(), done.output
    assert ("0bad.png: unexpected ValueError: palette index out of range; this is a bug in sr-filter: please report "
            "it with the command (-vv shows the traceback)") in done.output
    assert "1 upscaled, 0 skipped, 1 failed" in done.output and "Traceback" not in done.output
    def starved(upscaler, source, **kwargs):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(imagefile, "upscale_image_file", starved)  # the machine, not a bug: said once, for the command
    short = CliRunner().invoke(cli, [str(tmp_path / "0bad.png"), str(tmp_path / "1good.png"), "-o", str(tmp_path / "o2"),
                                     "-m", "sr-cartoon-x4"])
    assert short.exit_code != 0 and "this is a bug" not in short.output
    monkeypatch.setattr(imagefile, "upscale_image_file", flawed)
    from sr_filter.cli import main

    with pytest.raises(SystemExit) as alone:  # one file: the command's own last line
        main([str(tmp_path / "0bad.png"), "-o", str(tmp_path / "alone.png"), "-m", "sr-cartoon-x4"])
    assert alone.value.code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "sr-filter: error: unexpected ValueError: palette index out of range; this is a bug in sr-filter: please "
        "report it with the command (-vv shows the traceback)")


def test_a_quoted_pattern_says_what_it_matched_and_left_out(crop, tmp_path):
    """A pattern that matched a folder, a link to nothing and a hidden file passed over them
    without a word, though the docs say a pattern's leave-outs are said."""
    folder = tmp_path / "mixed"
    (folder / "dir.png").mkdir(parents=True)
    Image.fromarray(crop).save(folder / "a.png")
    Image.fromarray(crop).save(folder / ".hidden.png")
    (folder / "broken.png").symlink_to(tmp_path / "gone.png")
    done = run_in_process(str(folder) + "/*.png", "-o", str(tmp_path / "out"), "-m", "sr-cartoon-x4")
    # one match, named as a batch's (a_x4.png had become a.png once the pattern found a second
    # file), and -o a folder without its slash, as for several matches
    assert done.returncode == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"], done.stderr
    assert ("sr-filter: left out: 1 hidden file or folder, 1 folder a pattern matched (name it to upscale its images), "
            "1 symbolic link to nothing") in done.stderr.decode()


def test_an_unreadable_input_is_the_readers_one_line_alone_and_in_a_batch(crop, tmp_path, monkeypatch):
    """Alone, click refused an unreadable file in its own words ("Invalid value for 'INPUTS...':
    Path ... is not readable.", exit 2), while a batch said "cannot read ...: Permission denied"
    for it, one failure. Both now say the latter. (Root reads every file, so the refusal is
    simulated by making os.access and the reader refuse as the OS would for another user.)"""
    from click.testing import CliRunner

    from sr_filter.cli import cli

    Image.fromarray(crop).save(tmp_path / "locked.png")
    Image.fromarray(crop).save(tmp_path / "ok.png")
    real_access, real_read = os.access, Path.read_bytes

    def access(path, mode, *args, **kwargs):
        return False if Path(path).name == "locked.png" and mode & os.R_OK else real_access(path, mode, *args, **kwargs)

    def read_bytes(self):
        if self.name == "locked.png":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    alone = CliRunner().invoke(cli, [str(tmp_path / "locked.png"), "-o", str(tmp_path / "out.png"), "-m", "sr-cartoon-x4"])
    assert alone.exit_code == 1 and str(alone.exception) == f"cannot read {tmp_path / 'locked.png'}: Permission denied", alone.output
    batch = CliRunner().invoke(cli, [str(tmp_path / "locked.png"), str(tmp_path / "ok.png"), "-o", str(tmp_path / "out"),
                                     "-m", "sr-cartoon-x4"])
    assert batch.exit_code == 1 and (tmp_path / "out" / "ok.png").is_file(), batch.output
    assert f"cannot read {tmp_path / 'locked.png'}: Permission denied" in batch.output


def test_odd_missing_inputs_among_several_are_each_one_failure(crop, tmp_path):
    """A link loop among several inputs ended in "internal error (RuntimeError: Symlink loop ...)";
    `./typo a.png` and `typo/ a.png` stopped the batch with "is not a supported image"; a name with a
    newline broke its error line in two."""
    Image.fromarray(crop).save(tmp_path / "a.png")
    (tmp_path / "loop").symlink_to("loop")
    for odd, said in (("loop", "loop is a symbolic link to nothing that exists"), ("./typo", "./typo does not exist"),
                      ("typo/", "typo/ does not exist"), ("x\ny.png", "x\\ny.png does not exist")):
        (tmp_path / "a_x4.png").unlink(missing_ok=True)
        done = run_in_process(odd, "a.png", "-m", "sr-cartoon-x4", cwd=tmp_path)
        lines = _meaningful_stderr(done.stderr)
        assert done.returncode == 1 and (tmp_path / "a_x4.png").is_file(), lines
        assert any(line.startswith(f"sr-filter: error: {said}") for line in lines), lines
        assert lines[-1] == "sr-filter: 1 upscaled, 0 skipped, 1 failed", lines


def test_outputs_are_checked_before_the_model_is_fetched(tmp_path):
    """An existing output had been refused only after the weights were downloaded and the model
    converted, and --skip-existing with nothing left to do had needed the weights: offline, a
    download error. The model here is not in the (empty) cache, and the run may not download."""
    Image.new("RGB", (8, 8), (90, 60, 30)).save(tmp_path / "a.png")
    (tmp_path / "a_x4.png").write_bytes(b"done before")
    env = {"SR_FILTER_CACHE_DIR": str(tmp_path / "cache"), "SR_FILTER_OFFLINE": "1"}
    named = ("-m", "RealESRGANv2-animevideo-xsx4")
    refused = run_in_process(tmp_path / "a.png", *named, env=env)
    assert refused.returncode == 1 and refused.stderr.decode() == (
        f"sr-filter: error: {tmp_path / 'a_x4.png'} exists; use --overwrite to replace it, or --skip-existing\n")
    skipped = run_in_process(tmp_path / "a.png", *named, "--skip-existing", env=env)
    # one picture's output is named, as a video's is (it had been "skipping 1 existing output(s)")
    assert skipped.returncode == 0 and skipped.stderr.decode() == f"sr-filter: skipping existing output {tmp_path / 'a_x4.png'}\n"
    offline = run_in_process(tmp_path / "a.png", *named, "-o", tmp_path / "new.png", env=env)  # work to do: the model is needed
    assert offline.returncode == 1 and "offline" in offline.stderr.decode() and not (tmp_path / "new.png").exists()
    # an animation and a video given alone, and a damaged picture, are settled before the model too
    from .videos import make_clip

    frames = [Image.new("RGB", (20, 16), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    make_clip(tmp_path / "v.mp4", frames=4)
    for name in ("anim_x4.gif", "v_x4.mp4"):
        (tmp_path / name).write_bytes(b"done before")
        source = tmp_path / ("anim.gif" if name.endswith(".gif") else "v.mp4")
        refused = run_in_process(source, *named, env=env)
        assert refused.returncode == 1 and refused.stderr.decode() == (
            f"sr-filter: error: {tmp_path / name} exists; use --overwrite to replace it, or --skip-existing\n")
        skipped = run_in_process(source, *named, "--skip-existing", env=env)
        assert skipped.returncode == 0 and skipped.stderr.decode() == f"sr-filter: skipping existing output {tmp_path / name}\n"
        odd = tmp_path / name.replace("_x4", "\nx4")  # named with an escape, as for a picture (it had split the line)
        odd.write_bytes(b"done before")
        skipped = run_in_process(source, *named, "-o", odd, "--skip-existing", env=env)
        assert skipped.stderr.decode() == f"sr-filter: skipping existing output {tmp_path}/{name.replace('_x4', chr(92) + 'nx4')}\n"
    (tmp_path / "bad.png").write_text("not a picture")
    damaged = run_in_process(tmp_path / "bad.png", *named, "-o", tmp_path / "b.png", env=env)
    assert damaged.returncode == 1 and damaged.stderr.decode() == (
        f"sr-filter: error: {tmp_path / 'bad.png'} is not a readable image (unknown or damaged format)\n")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pth"))


def test_output_folders_made_for_a_run_that_writes_nothing_are_removed(tmp_path):
    """A run refused after its output folders were made (a damaged input here; for memory in the
    report) had left them behind, empty; a folder that was there before stays."""
    (tmp_path / "bad.png").write_text("not a picture")
    (tmp_path / "kept").mkdir()
    for target in (tmp_path / "new" / "a" / "b" / "out.png", tmp_path / "kept" / "sub" / "out.png"):
        done = run_in_process(tmp_path / "bad.png", "-o", target, "-m", "sr-cartoon-x4", "-d", "cpu")
        assert done.returncode == 1 and b"not a readable image" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "kept"] and list((tmp_path / "kept").iterdir()) == []
    Image.new("RGB", (8, 8)).save(tmp_path / "good.png")
    assert run_in_process(tmp_path / "good.png", "-o", tmp_path / "new" / "out.png", "-m", "sr-cartoon-x4", "-d", "cpu").returncode == 0
    assert (tmp_path / "new" / "out.png").is_file()  # a folder that holds the output stays


def _small_disk(tmp_path: Path, kib: int, options: str = "", first: str = "") -> tuple[Path, list[str]]:
    """A folder ``out`` and the start of a command line that runs what follows with a real
    ``kib``-KiB file system (tmpfs, with ``options``) mounted there, in a user and mount namespace
    of its own, after the shell command ``first`` ($0 is the folder); the test is skipped where
    this machine allows no such namespace."""
    out = tmp_path / "out"
    out.mkdir()
    mount = f"mount -t tmpfs -o size={kib}k{options} tmpfs"
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-Urm", "sh", "-c", f"{mount} {out}"],
                                                         capture_output=True).returncode != 0:
        pytest.skip("this machine allows no user and mount namespace to make a small real disk in")
    return out, ["unshare", "-Urm", "sh", "-c", f'{mount} "$0" && {{ {first or ":"}; exec "$@"; }}', str(out)]


def test_a_batch_stops_writing_to_a_disk_that_is_full(tmp_path):
    """A batch whose output disk filled up upscaled every later file only to fail it with the same
    "No space left on device", minutes each. The first failure says that later outputs there are
    not tried; they fail at once, and the batch's count says so. A small picture whose output
    surely fits in what is left is still upscaled and written."""
    out, start = _small_disk(tmp_path, 300)
    rng = np.random.default_rng(5)
    for i in range(5):  # noise compresses badly: each x4 output is about 135 KiB, so two fit in 300 KiB
        Image.fromarray((rng.random((56, 56, 3)) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(tmp_path / "5.png")  # 24x24 out: fits
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([*start, sys.executable, "-m", "sr_filter", *(str(tmp_path / f"{i}.png") for i in range(6)),
                           "-m", "realesr-animevideov3", "-o", str(out), "-q"], capture_output=True, text=True,
                          env=env, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("sr-filter: error:")]
    assert done.returncode == 1 and done.stderr.splitlines()[-1] == "sr-filter: 3 upscaled, 0 skipped, 3 failed", done.stderr
    assert len(errors) == 3 and "No space left on device" in errors[0], errors
    assert errors[0].endswith("later outputs on that disk are not tried unless they surely fit (free space there, "
                              "then run the command again with --skip-existing)")
    assert errors[1:] == [f"sr-filter: error: {tmp_path / f'{i}.png'}: not tried: the disk of {out / f'{i}.png'} is full"
                          for i in (3, 4)]


def test_a_batch_counts_a_disk_without_free_inodes_as_full(tmp_path):
    """A file system with bytes free but no inode left takes no new file, however small: later
    pictures are not tried (free bytes alone had said that a small one surely fits)."""
    out, start = _small_disk(tmp_path, 300, ",nr_inodes=4")  # the folder and 3 files
    for i in range(5):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    done = subprocess.run([*start, sys.executable, "-m", "sr_filter", *(str(tmp_path / f"{i}.png") for i in range(5)),
                           "-m", "realesr-animevideov3", "-o", str(out), "-q"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("sr-filter: error:")]
    assert done.stderr.splitlines()[-1] == "sr-filter: 3 upscaled, 0 skipped, 2 failed", done.stderr
    assert "No space left on device (no inode left for a new file, though" in errors[0]  # df -h shows room
    assert "KiB are free: df -i shows it)" in errors[0]
    assert errors[1] == f"sr-filter: error: {tmp_path / '4.png'}: not tried: the disk of {out / '4.png'} is full"


def test_a_disk_full_before_the_run_is_refused_before_any_work(tmp_path):
    """An output disk already full passed the checks before the work (their empty probe file fits)
    and was found only when the first upscaled picture was written."""
    out, start = _small_disk(tmp_path, 64, first='head -c 1M /dev/zero > "$0/fill"')
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    done = subprocess.run([*start, sys.executable, "-m", "sr_filter", str(tmp_path / "a.png"), "-m", "realesr-animevideov3",
                           "-o", str(out / "b.png"), "-v"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (f"sr-filter: error: cannot write {out / 'b.png'}: the disk of {out} is full; "
                                            "free space there or choose another output folder")
    assert "using " not in done.stderr  # refused before the model was loaded


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_in_the_first_moment_leaves_no_folder_or_temporary_file(tmp_path, signum):
    """A Ctrl-C or SIGTERM just after a run had made its output folders left them, often with the
    empty .srf-*.tmp probe that checks the folder takes new files (about 5 runs in 12). Stopped
    the moment the folder appears, ten runs leave nothing."""
    pictures = tmp_path / "in"
    pictures.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(pictures / f"{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    left = []
    for attempt in range(10):
        target = out / "p" / "q"
        proc = subprocess.Popen([sys.executable, "-m", "sr_filter", str(pictures), "-m", "realesr-animevideov3",
                                 "-o", f"{target}/", "-q"], env=env, stderr=subprocess.DEVNULL, preexec_fn=interruptible)
        deadline = time.monotonic() + 60
        while not target.is_dir() and proc.poll() is None and time.monotonic() < deadline:
            pass
        proc.send_signal(signum)
        proc.wait(timeout=60)
        left += [str(p.relative_to(out)) for p in out.rglob("*") if not (p.is_file() and p.suffix == ".png")]
        for made in sorted(out.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # a finished run's outputs
            made.unlink() if made.is_file() else made.rmdir()
    assert left == []


def test_an_output_the_shell_opened_on_the_input_is_refused_overwrite_or_not(crop, tmp_path):
    """`sr-filter s.png -o - >> s.png` (and -o /dev/stdout, `-o /dev/fd/3 3>> s.png` with
    --overwrite, `sr-filter - < s.png >> s.png`, an animation) had added the upscaled picture to
    the end of its own input, exit 0: refused as cat's "input file is output file", in one line,
    the input untouched. Replacing the input by name from standard input stays allowed."""
    picture = tmp_path / "s.png"
    Image.fromarray(crop).save(picture)
    frames = [Image.fromarray(np.full((24, 32, 3), i * 80, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "g.gif", save_all=True, append_images=frames[1:], duration=100)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "sr_filter", "-q", "-m", "sr-cartoon-x4", "-d", "cpu"]
    cases = (  # (shell redirections, input, arguments, what the output is called)
        ('1>>"$0"', picture, ["-o", "-"], f"standard output is the input file {picture}"),
        ('1>>"$0"', picture, ["-o", "/dev/stdout", "--overwrite"], f"standard output is the input file {picture}"),
        ('3>>"$0"', picture, ["-o", "/dev/fd/3"], f"/dev/fd/3 is the input file {picture}"),
        ('3>>"$0"', picture, ["-o", "/dev/fd/3", "--overwrite"], f"/dev/fd/3 is the input file {picture}"),
        ('0<"$0" 1>>"$0"', picture, ["-"], "standard output is the file standard input reads"),
        ('1>>"$0"', tmp_path / "g.gif", ["-o", "-"], f"standard output is the input file {tmp_path / 'g.gif'}"),
    )
    for redirections, source, args, said in cases:
        before = source.read_bytes()
        arguments = [str(source), *args] if args != ["-"] else args
        done = subprocess.run(["sh", "-c", f'exec {redirections}; exec "$@"', str(source), *command, *arguments],
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, timeout=600)
        lines = done.stderr.decode().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"sr-filter: error: {said};"), (args, lines)
        assert source.read_bytes() == before, args
    with open(picture, "rb") as stdin:  # read whole before the output is written: still allowed
        done = subprocess.run([*command, "-", "-o", str(picture), "--overwrite"], stdin=stdin, stderr=subprocess.PIPE,
                              env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    with Image.open(picture) as image:
        assert image.size == (128, 96)


def test_skip_existing_skips_an_output_that_is_a_link_to_nothing(tmp_path):
    """A link to nothing is a taken name, as for videos: --skip-existing had refused it, stopping
    the batch before its other files."""
    (tmp_path / "dl").mkdir()
    (tmp_path / "dlo").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (8, 6), (90, 60, 30)).save(tmp_path / "dl" / f"{name}.png")
    (tmp_path / "dlo" / "a.png").symlink_to("/nonexistent/zz.png")
    done = run_in_process(tmp_path / "dl", "-o", f"{tmp_path / 'dlo'}/", "--skip-existing", "-m", "sr-cartoon-x4", "-d", "cpu")
    err = done.stderr.decode()
    assert done.returncode == 0 and "skipping 1 existing output(s)" in err and "1 upscaled, 1 skipped, 0 failed" in err, err
    assert os.readlink(tmp_path / "dlo" / "a.png") == "/nonexistent/zz.png"
    with Image.open(tmp_path / "dlo" / "b.png") as image:
        assert image.size == (32, 24)
    # --resume among videos skips by the same rule, for the pictures and the videos of a batch
    from .videos import make_clip

    make_clip(tmp_path / "clip.mp4", frames=3, audio=0)
    (tmp_path / "dlo" / "clip.mp4").symlink_to("/nonexistent/zz.mp4")
    (tmp_path / "dlo" / "b.png").unlink()
    done = run_in_process(tmp_path / "dl" / "a.png", tmp_path / "dl" / "b.png", tmp_path / "clip.mp4", "-o", f"{tmp_path / 'dlo'}/",
               "--resume", "-m", "sr-cartoon-x4", "-d", "cpu")
    err = done.stderr.decode()
    assert done.returncode == 0 and "skipping 2 existing output(s)" in err and "1 upscaled, 2 skipped, 0 failed" in err, err
    for name in ("a.png", "clip.mp4"):
        assert os.readlink(tmp_path / "dlo" / name).startswith("/nonexistent/")
    with Image.open(tmp_path / "dlo" / "b.png") as image:
        assert image.size == (32, 24)


def test_an_output_named_by_a_terminals_path_is_refused(tmp_path):
    """`-o /dev/tty` or `-o $(tty)` had written the picture's bytes to the terminal, where -o - and
    a descriptor on a terminal are refused."""
    import pty

    Image.new("RGB", (8, 6), (90, 60, 30)).save(tmp_path / "a.png")
    leader, follower = pty.openpty()
    name = os.ttyname(follower)
    try:
        done = run_in_process(tmp_path / "a.png", "-o", name, "-m", "sr-cartoon-x4", "-d", "cpu")
        os.set_blocking(leader, False)
        try:
            shown = os.read(leader, 1 << 16)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 1 and done.stderr.decode().splitlines() == [
        f"sr-filter: error: refusing to write image data to a terminal ({name} is one); name a file instead"], done.stderr
    assert shown == b""


def test_suffix_with_standard_output_is_refused_not_ignored(tmp_path):
    """--suffix names no file written to standard output: it had been ignored without a word, where
    -o FILE --suffix is refused. A file input without -o still takes it."""
    Image.new("RGB", (8, 6), (90, 60, 30)).save(tmp_path / "a.png")
    picture = (tmp_path / "a.png").read_bytes()
    for args, stdin, said in (([tmp_path / "a.png", "-o", "-"], None, "-o - writes standard output"),
                              (["-"], picture, "standard input is written to standard output")):
        done = run_in_process(*args, "--suffix", "_big", "-m", "sr-cartoon-x4", "-d", "cpu", stdin=stdin)
        assert done.returncode == 2 and done.stdout == b"" and done.stderr.decode().splitlines() == [
            f"sr-filter: error: {said}, so --suffix changes nothing; leave out --suffix or name an output file"], done.stderr
    done = run_in_process(tmp_path / "a.png", "--suffix", "_big", "-m", "sr-cartoon-x4", "-d", "cpu", "-q")
    assert done.returncode == 0 and (tmp_path / "a_big.png").is_file(), done.stderr


def test_a_usage_error_naming_a_file_with_a_newline_stays_one_line(tmp_path):
    """Two inputs written to one output, named with a newline: the message had spanned four lines."""
    folder = tmp_path / "nl"
    folder.mkdir()
    for suffix in ("png", "jpg"):
        Image.new("RGB", (8, 6), (90, 60, 30)).save(folder / f"x\ny.{suffix}")
    done = run_in_process(folder / "x\ny.png", folder / "x\ny.jpg", "-f", "png", "-m", "sr-cartoon-x4", "-d", "cpu")
    assert done.returncode == 2 and done.stderr.decode().splitlines() == [
        f"sr-filter: error: {folder}/x\\ny.png and {folder}/x\\ny.jpg would both be written to {folder}/x\\ny_x4.png"], \
        done.stderr


def test_avif_and_tga_files_are_read_and_written_in_their_own_format(tmp_path):
    """AVIF (phones, browsers) and TGA (game textures) had been refused by name: "not a supported
    image", and a folder batch passed them over. Each keeps its format, and its transparency; a
    piped AVIF is read and written back as AVIF."""
    folder = tmp_path / "in"
    folder.mkdir()
    rgba = np.zeros((8, 12, 4), np.uint8)
    rgba[..., :3] = (30, 160, 220)
    rgba[:, 6:, 3] = 255  # the left half transparent
    Image.fromarray(rgba).save(folder / "sticker.avif", quality=100)
    Image.fromarray(rgba).save(folder / "texture.tga")
    result = run_in_process(folder, "-m", "sr-cartoon-x4", "-o", tmp_path / "out")
    assert result.returncode == 0 and b"2 upscaled" in result.stderr, result.stderr
    for name, fmt in (("sticker.avif", "AVIF"), ("texture.tga", "TGA")):
        with Image.open(tmp_path / "out" / name) as out:
            alpha = np.asarray(out.convert("RGBA"))[..., 3]
            assert out.format == fmt and out.size == (48, 32), name
            assert alpha[:, :20].max() <= 8 and alpha[:, 28:].min() >= 247, name
    piped = run_in_process("-", "-m", "sr-cartoon-x4", "-o", "-", stdin=(folder / "sticker.avif").read_bytes())
    assert piped.returncode == 0, piped.stderr
    with Image.open(io.BytesIO(piped.stdout)) as out:
        assert out.format == "AVIF" and out.size == (48, 32)


def test_netpbm_pictures_go_through_a_pipeline_at_their_own_depth(tmp_path):
    """`ffmpeg ... -c:v ppm - | sr-filter - -o - | pnmtopng`: a piped PPM had been "not a readable
    image", and Pillow reads a 16-bit one at 8 bits. A 16-bit PPM comes out a 16-bit PPM, a bitmap
    (.pbm, black and white only) is written as a grey .pgm, and a .pbm output is refused for that."""
    deep = (np.arange(8 * 12 * 3).reshape(8, 12, 3) * 181 % 65536).astype(np.uint16)
    piped = run_in_process("-", "-m", "sr-cartoon-x4", "-o", "-", stdin=b"P6\n12 8\n65535\n" + deep.astype(">u2").tobytes())
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith(b"P6\n48 32\n65535\n") and len(piped.stdout) == 15 + 48 * 32 * 3 * 2
    bitmap = tmp_path / "scan.pbm"
    Image.fromarray(np.tile(np.array([[0, 255]], np.uint8), (8, 6))).convert("1").save(bitmap)
    done = run_in_process(bitmap, "-m", "sr-cartoon-x4")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "scan_x4.pgm").read_bytes().startswith(b"P5\n48 32\n255\n")
    refused = run_in_process(bitmap, "-m", "sr-cartoon-x4", "-o", tmp_path / "big.pbm")
    assert refused.returncode == 1 and b"big.pbm names a PBM (a Netpbm bitmap of black and white only" in refused.stderr


def test_heic_photos_are_upscaled_into_png_keeping_alpha_depth_and_metadata(tmp_path):
    """HEIC phone photos had been "not a supported image", and a folder batch passed them over.
    A folder of them (one with alpha and EXIF orientation 6, one of 10 bits, one named .HEIC) is
    written as PNG, with a notice that says why: upright, alpha and EXIF kept, 16 bits for the
    10-bit one; a piped HEIC is recognised by its content and comes out as PNG too."""
    folder = tmp_path / "in"
    folder.mkdir()
    rgba = np.zeros((8, 12, 4), np.uint8)
    rgba[..., :3] = (30, 160, 220)
    rgba[:, 6:, 3] = 255  # the left half transparent
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Phone Co"
    (folder / "sticker.heic").write_bytes(heic(rgba, exif=exif.tobytes()))
    deep = np.full((8, 12, 3), 40000, np.uint16)
    (folder / "DEEP.HEIC").write_bytes(heic(deep))
    result = run_in_process(folder, "-m", "sr-cartoon-x4", "-o", tmp_path / "out")
    assert result.returncode == 0 and b"2 upscaled" in result.stderr, result.stderr
    assert b"HEIC/HEIF pictures are written as PNG" in result.stderr, result.stderr
    with Image.open(tmp_path / "out" / "sticker.png") as out:
        alpha = np.asarray(out.convert("RGBA"))[..., 3]
        assert out.format == "PNG" and out.size == (32, 48)  # turned once: 8x12 stood up by its irot box
        assert alpha[:20].max() <= 8 and alpha[28:].min() >= 247  # the transparent half is now the top
        assert out.getexif()[0x010F] == "Phone Co" and out.getexif().get(0x0112, 1) == 1
    written = (tmp_path / "out" / "DEEP.png").read_bytes()
    assert written[24] == 16  # the PNG's bit depth: 16, from 10
    piped = run_in_process("-", "-m", "sr-cartoon-x4", "-o", "-", stdin=(folder / "sticker.heic").read_bytes())
    assert piped.returncode == 0, piped.stderr
    with Image.open(io.BytesIO(piped.stdout)) as out:
        assert out.format == "PNG" and out.size == (32, 48) and out.mode == "RGBA"


#: the command line where pillow-heif is not installed (its import fails, as it does then)
_WITHOUT_HEIF = ("import sys; sys.modules['pillow_heif'] = None; sys.argv[0] = 'sr-filter'; "
                 "from sr_filter.__main__ import run; run()")


def test_without_pillow_heif_a_heic_is_refused_in_one_line_and_a_folder_says_it_passed_them_over(tmp_path):
    """Without the heic extra: a HEIC input is one line naming the install command, exit code 1, no
    traceback; a folder batch upscales the rest and says how many HEIC pictures it left out."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "photo.heic").write_bytes(heic(np.full((8, 12, 3), 90, np.uint8)))
    Image.new("RGB", (12, 8), (90, 60, 30)).save(folder / "flat.png")
    environment = dict(os.environ, PYTHONPATH=str(ROOT))

    def without(*args):
        return subprocess.run([sys.executable, "-c", _WITHOUT_HEIF, *map(str, args)], capture_output=True, env=environment,
                              timeout=600)

    alone = without(folder / "photo.heic", "-m", "sr-cartoon-x4", "-o", tmp_path / "photo.png")
    assert alone.returncode == 1 and alone.stderr.decode().splitlines()[-1] == (
        f'sr-filter: error: {folder / "photo.heic"} is a HEIC/HEIF picture, and reading one needs the optional '
        'pillow-heif: pip install "sr-filter[heic]"'), alone.stderr
    assert b"Traceback" not in alone.stderr and not (tmp_path / "photo.png").exists()
    batch = without(folder, "-m", "sr-cartoon-x4", "-o", tmp_path / "out")
    assert batch.returncode == 0 and b"1 upscaled, 0 skipped, 0 failed" in batch.stderr, batch.stderr
    assert b'left out: 1 HEIC/HEIF picture (reading it needs pillow-heif: pip install "sr-filter[heic]")' in batch.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["flat.png"]

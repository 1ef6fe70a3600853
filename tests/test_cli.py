"""The sr-filter command as a user runs it: real files, real exit codes; a real subprocess where the process
is the point (streams, pipes, signals), the entry point in-process (``run_in_process``) for what a run says and writes."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import sr_filter

from .conftest import ROOT, run_in_process


def run(*args, stdin: bytes | None = None, cwd=None, env=None):
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "sr_filter", *map(str, args)], input=stdin, capture_output=True,
                          cwd=cwd, env=environment, timeout=600)


@pytest.fixture
def small_png(tmp_path, set5):
    path = tmp_path / "bird.png"
    Image.open(set5 / "bird.png").crop((40, 40, 104, 88)).save(path)
    return path


def test_version_and_help():
    out = run_in_process("--version")
    assert out.returncode == 0 and out.stdout.decode().strip() == f"sr-filter {sr_filter.__version__}"
    helped = run_in_process("--help")
    assert helped.returncode == 0 and b"upscale" in helped.stdout and b"models" in helped.stdout
    sub = run_in_process("upscale", "--help")
    assert sub.returncode == 0 and b"--preset" in sub.stdout and b"--tile" in sub.stdout


def test_upscale_file_default_name_and_scale(small_png):
    done = run_in_process(small_png, "--preset", "cartoon")
    assert done.returncode == 0, done.stderr
    out = small_png.with_name("bird_x4.png")
    assert Image.open(out).size == (256, 192)
    assert b"realesr-animevideov3@1" in done.stderr and done.stdout == b""
    again = run_in_process("--preset", "cartoon", small_png, "-s", "1.5", "-o", small_png.with_name("b.jpg"), "--quality", "80")
    assert again.returncode == 0, again.stderr
    assert Image.open(small_png.with_name("b.jpg")).size == (96, 72)


def test_cli_and_api_agree(small_png):
    done = run_in_process("upscale", small_png, "--preset", "cartoon", "-o", small_png.with_name("cli.png"), "--tile", "32")
    assert done.returncode == 0, done.stderr
    cli = np.asarray(Image.open(small_png.with_name("cli.png")))
    api = np.asarray(sr_filter.upscale(Image.open(small_png), preset="cartoon"))
    assert np.abs(cli.astype(int) - api.astype(int)).max() <= 1


def test_refuses_to_overwrite(small_png):
    target = small_png.with_name("exists.png")
    target.write_bytes(b"keep me")
    refused = run_in_process(small_png, "--preset", "cartoon", "-o", target)
    assert refused.returncode == 1 and target.read_bytes() == b"keep me"
    assert refused.stderr.decode().count("\n") == 1  # refused before any work: one error line
    assert b"--overwrite" in refused.stderr and b"Traceback" not in refused.stderr
    assert run_in_process(small_png, "--preset", "cartoon", "-o", target, "--overwrite").returncode == 0
    assert Image.open(target).size == (256, 192)


def test_stdin_to_stdout(small_png):
    done = run_in_process("-", "--preset", "cartoon", "--format", "png", "-q", stdin=small_png.read_bytes())
    assert done.returncode == 0, done.stderr
    assert Image.open(io.BytesIO(done.stdout)).size == (256, 192)
    assert done.stderr == b""


def test_offline_photo_preset_uses_the_built_in_model_and_says_so(small_png):
    done = run_in_process(small_png, "--offline", "-o", small_png.with_name("offline.png"))
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    notice = "sr-filter: offline: using the built-in model sr-photo-x4 instead of realesr-general-x4v3 (not downloaded yet)"
    assert err.splitlines()[0] == notice and len(err.splitlines()[0]) < 120, err  # one short line, as for no network
    assert Image.open(small_png.with_name("offline.png")).size == (256, 192)


def test_models_listing():
    listed = run_in_process("models")
    assert listed.returncode == 0
    text = listed.stdout.decode()
    for word in ("photo", "cartoon", "face", "realesr-animevideov3", "RealESRGAN_x4plus", "BSD-3-Clause", "built-in", "download"):
        assert word in text
    data = json.loads(run_in_process("models", "--json").stdout)
    by_name = {m["name"]: m for m in data["models"]}
    assert by_name["realesr-animevideov3"]["weights"] == "built-in"
    assert by_name["RealESRGAN_x4plus"]["scale"] == 4 and by_name["RealESRGAN_x4plus"]["arch"] == "rrdbnet"


def test_models_listing_shows_cached(weights_server, tmp_path):
    data = json.loads(run_in_process("models", "--json").stdout)
    assert {m["name"]: m["weights"] for m in data["models"]}["RealESRGANv2-animevideo-xsx2"] == "download"
    from sr_filter.manifest import load_manifest
    from sr_filter.weights import fetch

    fetch(load_manifest().get("RealESRGANv2-animevideo-xsx2"))
    data = json.loads(run_in_process("models", "--json").stdout)
    assert {m["name"]: m["weights"] for m in data["models"]}["RealESRGANv2-animevideo-xsx2"] == "cached"


def test_download_on_first_use_through_cli(weights_server, small_png):
    done = run_in_process(small_png, "--model", "RealESRGANv2-animevideo-xsx2", "-o", small_png.with_name("x2.png"))
    assert done.returncode == 0, done.stderr
    assert Image.open(small_png.with_name("x2.png")).size == (128, 96)
    assert weights_server.hits["RealESRGANv2-animevideo-xsx2.pth"] == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.png"], "missing.png does not exist"),
        (["{png}", "--model", "nope"], "unknown model or preset 'nope'"),
        (["{png}", "--offline", "--model", "realesr-general-x4v3", "-o", "{dir}/o.png"], "downloads are off"),
        (["{png}", "--device", "cuda"], "no CUDA GPU"),
        (["{png}", "-o", "{dir}/out.xyz", "--preset", "cartoon"], "'out.xyz'; use an extension such as .png or give --format\n"),
        (["{png}", "-o", "{dir}/newdir", "--preset", "cartoon"], "such as .png (or newdir/ for a folder) or give --format\n"),
        (["{txt}", "--preset", "cartoon", "-o", "{dir}/t.png"], "is not a readable image"),
        (["{empty}", "--preset", "cartoon", "-o", "{dir}/e.png"], "is empty"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(tmp_path, small_png, args, message):
    (tmp_path / "text.png").write_text("this is not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    fill = {"png": small_png, "dir": tmp_path, "txt": tmp_path / "text.png", "empty": tmp_path / "empty.png"}
    done = run_in_process(*[a.format(**fill) for a in args])
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("sr-filter: error: ")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary file left


def test_bad_option_values_exit_2(small_png):
    for args in (["--tile", "7"], ["--scale", "0"], ["--precision", "fp8"], ["--preset", "anime"]):
        done = run_in_process(small_png, *args)
        assert done.returncode == 2 and b"Traceback" not in done.stderr, done.stderr


def test_folder_in_folder_out(tmp_path, small_png):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(small_png, src / "a.png")
    shutil.copy(small_png, src / "sub" / "b.png")
    (src / "sub" / "broken.png").write_text("nope")
    done = run_in_process(src, "-o", tmp_path / "out", "--preset", "cartoon")
    assert done.returncode == 1  # one file failed
    assert (tmp_path / "out" / "a.png").is_file() and (tmp_path / "out" / "sub" / "b.png").is_file()
    assert b"2 upscaled, 0 skipped, 1 failed" in done.stderr
    assert done.stderr.decode().splitlines()[-1] == "sr-filter: 2 upscaled, 0 skipped, 1 failed"  # the batch ends with its summary
    skipped = run_in_process(src, "-o", tmp_path / "out", "--preset", "cartoon", "--skip-existing")
    assert b"skipping 2 existing" in skipped.stderr
    again = run_in_process(src, "-o", tmp_path / "out", "--preset", "cartoon")  # a rerun names every output in the way, not the first
    assert again.returncode == 1 and again.stderr.decode().splitlines()[-1] == (
        f"sr-filter: error: 2 of the 3 outputs exist ({tmp_path / 'out' / 'a.png'}, {tmp_path / 'out' / 'sub' / 'b.png'}); "
        "use --overwrite to replace them, or --skip-existing to upscale only the others")
    (src / "sub" / "broken.png").unlink()
    every = run_in_process(src, "-o", tmp_path / "out", "--preset", "cartoon")  # no others to upscale: --skip-existing not offered
    assert every.returncode == 1 and every.stderr.decode().splitlines()[-1] == (
        f"sr-filter: error: all 2 outputs exist ({tmp_path / 'out' / 'a.png'}, {tmp_path / 'out' / 'sub' / 'b.png'}); "
        "use --overwrite to replace them")


def test_an_image_cut_off_by_its_reader_is_an_error_not_exit_0(tmp_path):
    """`sr-filter in.png -o - | head -c 10`: a reader that leaves while the write is under way made
    that write return short (Python ignores SIGPIPE), and the cut-off image exited 0 without a word.
    The picture is larger than a pipe's 64 KiB buffer, so the write is waiting when the reader leaves."""
    source = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(source)
    process = subprocess.Popen([sys.executable, "-m", "sr_filter", str(source), "-o", "-", "--format", "bmp",
                                "-m", "sr-cartoon-x4", "-d", "cpu", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert process.stdout.read(10).startswith(b"BM")
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert err == f"sr-filter: error: {source}: standard output was closed by the program reading it; the output was cut short\n"


def test_a_signal_inside_an_import_is_delivered_after_it(tmp_path, monkeypatch):
    """SIGHUP raised as an exception inside importlib's lock callback was swallowed there with the
    import lock held, and the next import waited for ever (a hung process). The handlers see the
    import machinery in the interrupted frames and send the signal again a moment later."""
    import signal
    import time

    from sr_filter.interrupts import deliver_later, in_import

    (tmp_path / "frame_at_import.py").write_text("import sys\nFRAME = sys._getframe()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import frame_at_import

    assert in_import(frame_at_import.FRAME) and not in_import(sys._getframe())
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        deliver_later(signal.SIGUSR1, delay=0.01)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [signal.SIGUSR1]


def test_running_the_command_line_in_process_leaves_the_callers_signals_usable(capsys):
    """A finished run ignores stop signals for its own exit; called in-process (main([...])) it had
    left SIGTERM and SIGHUP ignored in the caller, and so in every child it started afterwards, and
    then its own handlers (SIGTERM raising the CLI's Terminated into the caller's code)."""
    import signal

    from sr_filter.cli import main

    saved = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        try:
            main(["models"])
        except SystemExit as exc:
            assert exc.code in (0, None)
        assert all(signal.getsignal(n) is saved[n] for n in saved)  # the caller's own handlers, not the CLI's
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def test_messages_that_cannot_be_written_do_not_stop_the_work(small_png, tmp_path):
    """Standard error is for messages: into a full disk (``2>/dev/full``) or a reader that has gone
    (``2>&1 | head -1``), the upscale had been abandoned with status 1, without its output."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "sr_filter", small_png, "-m", "sr-cartoon-x4", "-o"]
    with open("/dev/full", "w") as full:
        done = subprocess.run([*command, tmp_path / "full.png"], stderr=full, env=environment, timeout=300)
    assert done.returncode == 0 and Image.open(tmp_path / "full.png").size == (256, 192)
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads what it says
    try:
        done = subprocess.run([*command, tmp_path / "gone.png"], stderr=writer, env=environment, timeout=300)
    finally:
        os.close(writer)
    assert done.returncode == 0 and Image.open(tmp_path / "gone.png").size == (256, 192)
    with open("/dev/full", "w") as full:  # an error still ends with its status
        assert subprocess.run([*command, tmp_path / "full.png"], stderr=full, env=environment, timeout=300).returncode == 1


def test_standard_output_on_a_full_disk_says_it_was_standard_output(small_png, tmp_path):
    """`-o - > /dev/full` said only "No space left on device" (or "in/a.png: No space ..."). Standard
    output buffered, as it is without PYTHONUNBUFFERED: what stayed in the buffer failed again at
    exit, "Exception ignored ..." and status 120."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"PYTHONPATH": str(ROOT)}
    y4m = b"YUV4MPEG2 W16 H8 F25:1 Ip A1:1 C420jpeg\n" + (b"FRAME\n" + bytes(16 * 8 * 3 // 2)) * 2
    for args, stdin in (([small_png, "-o", "-"], None), (["-", "-o", "-", "--format", "y4m"], y4m)):
        with open("/dev/full", "wb") as full:
            done = subprocess.run([sys.executable, "-m", "sr_filter", *map(str, args), "-m", "sr-cartoon-x4"], input=stdin,
                                  stdout=full, stderr=subprocess.PIPE, env=environment, timeout=300)
        assert done.returncode == 1, done.stderr
        assert done.stderr.decode().strip().endswith("cannot write to standard output (No space left on device)"), done.stderr


def test_debug_messages_are_ours_not_pillows(small_png, tmp_path):
    """-vv printed Pillow's chunk-by-chunk PNG debug lines ("STREAM b'IHDR' 16 13")."""
    done = run_in_process("-vv", small_png, "-m", "sr-cartoon-x4", "-o", tmp_path / "out.png")
    assert done.returncode == 0 and b"STREAM" not in done.stderr and b"sr-filter:" in done.stderr, done.stderr


def test_a_failure_line_names_its_input_even_when_an_output_path_holds_its_name():
    """Whether the input was named had been a substring test: "cannot write outc/m.png: No space
    left on device" holds "m.png", so a batch's line for m.png left its input out (and "data.png"
    holds "a.png"), while the same failure beside the inputs named it."""
    from pathlib import Path

    from sr_filter.cli.jobs import Job
    from sr_filter.cli.upscale import _describe_failure
    from sr_filter.errors import ImageFormatError

    cases = {("m.png", "cannot write outc/m.png: No space left on device"): "m.png: cannot write outc/m.png: No space left on device",
             ("a.png", "cannot write data.png: No space left on device"): "a.png: cannot write data.png: No space left on device",
             ("m.png", "m.png is truncated or damaged (image file is truncated)"): "m.png is truncated or damaged (image file is truncated)",
             ("in/m.png", "cannot decode in/m.png (broken data)"): "cannot decode in/m.png (broken data)"}
    for (source, text), line in cases.items():
        assert _describe_failure(Job(Path(source), Path("outc/x.png")), ImageFormatError(text)) == line

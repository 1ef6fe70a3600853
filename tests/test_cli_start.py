"""The command's first second and its edges: instant help, one-line errors, signals, closed streams,
output folders and names. Real subprocesses, real signals, real files."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image

from sr_filter.cli.messages import hint_for, one_line
from sr_filter.cli.options import configure_logging
from sr_filter.errors import CommunityModelError, DeviceError, ImageFormatError, OutputExistsError, shorten

from .conftest import ROOT, interruptible, run_in_process, signal_when
from .test_cli import run

#: runs the CLI once for each command line given (words split by "|"), then reports on stderr whether
#: torch, openvino or PyAV had been imported by then (PyAV had come with every image run through a
#: video module's top-level import): one process for all of them, each checked in its turn
_PROBE = ("import sys\nfrom sr_filter.cli import main\nfor args in sys.argv[1:]:\n    try:\n        main(args.split('|'))\n"
          "    except SystemExit:\n        pass\n"
          "    print('HEAVY', args, sorted(m for m in ('torch', 'openvino', 'av') if m in sys.modules), file=sys.stderr)")

#: command lines that must answer without importing torch: help, version and option errors
_LIGHT = [["--help"], ["--version"], ["upscale", "--help"], ["x.png", "--scale", "0"], ["x.png", "--device", "gpu"],
          ["x.png", "--precision", "fp8"], ["export", "sr-cartoon-x4", "-o", "-"], ["export", "sr-cartoon-x4", "-o", "x.txt"]]


def test_help_version_and_option_errors_import_no_torch():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _PROBE, *("|".join(args) for args in _LIGHT)], capture_output=True, env=env,
                          timeout=120)
    said = [line for line in done.stderr.decode().splitlines() if line.startswith("HEAVY ")]
    assert said == [f"HEAVY {'|'.join(args)} []" for args in _LIGHT], done.stderr.decode()


def test_top_level_help_shows_upscale_options_and_the_default_command():
    text = run_in_process("--help").stdout.decode()
    assert "upscale is the default command" in text and "--scale" in text and "--tile" in text and "--width" in text
    sub = run_in_process("upscale", "--help").stdout.decode()
    assert "GIF" in sub and "needed for stdout" not in sub and "the input's format" in sub
    summary = " ".join(sub.split("Examples:")[0].split())  # every input format is named (AVIF, TGA, Netpbm had not been)
    assert all(name in summary for name in ("AVIF", "TGA", "Netpbm (PPM/PGM/PAM)", "GIF/WebP/PNG/AVIF keep every frame")), summary


@pytest.mark.parametrize("args,words", [
    (["--scale", "0"], "--scale"), (["--tile", "8"], "tile"), (["--quality", "0"], "--quality"),
    (["--device", "gpu"], "'gpu' is not a device"), (["-g", "0", "--device", "cpu"], "-g 0"),
    (["--scale", "2", "--width", "100"], "not both"), (["--format", "xyz"], "xyz"),
])
def test_bad_option_values_are_one_line_exit_2(tmp_path, args, words):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    done = run_in_process(image, *args)
    err = done.stderr.decode()
    assert done.returncode == 2 and err.count("\n") == 1 and err.startswith("sr-filter: error: ") and words in err, err
    assert "Usage:" not in err and "Traceback" not in err


def test_the_device_names_the_library_takes_are_taken(tmp_path):
    """--device cpu:0 (torch's name for the CPU, which sr_filter.Upscaler(device="cpu:0") takes) had
    been "'cpu:0' is not a device", exit 2; and -g 0 --device CUDA:0 "cannot be combined"."""
    Image.new("RGB", (8, 6), (200, 30, 90)).save(tmp_path / "a.png")
    for n, device in enumerate(("cpu:0", " CPU:1")):
        done = run_in_process("a.png", "-o", f"o{n}.png", "-m", "sr-cartoon-x4", "--device", device, "-q", cwd=tmp_path)
        assert done.returncode == 0 and Image.open(tmp_path / f"o{n}.png").size == (32, 24), done.stderr
    err = run_in_process("a.png", "-o", "g.png", "-g", "0", "--device", "CUDA:0", "-q", cwd=tmp_path).stderr.decode()
    assert "cannot be combined" not in err, err


def test_a_bad_device_is_an_option_error_in_every_command(tmp_path):
    """`sr-filter eval FOLDER --device gpu` had been taken without a word (the default, bicubic, runs
    no model), or exit 1 once a model was loaded, where `sr-filter a.png --device gpu` is a bad
    option value, exit 2."""
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    for args in (["a.png"], ["eval", "."]):
        done = run_in_process(*args, "--device", "gpu", cwd=tmp_path)
        err = done.stderr.decode()
        assert done.returncode == 2 and err.count("\n") == 1 and "'gpu' is not a device; use auto, cpu" in err, err


def test_a_format_with_spaces_is_the_format(tmp_path):
    """-f " PNG" (a value from a script's variable) had been "' PNG' is not one of png, ...", exit 2,
    where --precision " fp32" was taken."""
    Image.new("RGB", (8, 6), (200, 30, 90)).save(tmp_path / "a.png")
    done = run_in_process("a.png", "-o", "o", "-f", " PNG ", "-m", "sr-cartoon-x4", "-q", cwd=tmp_path)
    assert done.returncode == 0 and Image.open(tmp_path / "o").format == "PNG", done.stderr


def test_a_file_named_with_a_leading_dash_gets_a_way_to_name_it(tmp_path):
    """`sr-filter -dash.png` had said only "Missing argument 'INPUTS...'" (click reads it as
    `-d ash.png`) and `sr-filter -x.png` "No such option '-x'": the line now says how to name it."""
    for name in ("-dash.png", "-x.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
        done = run_in_process(name, "-o", "out.png", cwd=tmp_path)
        err = done.stderr.decode()
        assert done.returncode == 2 and err.count("\n") == 1 and f"write ./{name}" in err, err
        # after an option that takes no value (or carries its own: --scale=2) the name is no option's value
        for before in (["--tta"], ["-q"], ["--scale=2"]):
            err = run_in_process(*before, name, "-o", "out.png", cwd=tmp_path, stdin=b"").stderr.decode()
            assert f"write ./{name}" in err and err.count("\n") == 1, (before, err)
    assert "write ./" not in run_in_process("-y.png", cwd=tmp_path).stderr.decode()  # no such file: click's own line
    # an option's value that begins with '-', in an error about something else: no hint
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    err = run_in_process("in.png", "-o", "-dash.png", "--scale", "99", cwd=tmp_path).stderr.decode()
    assert "--scale" in err and "write ./" not in err, err
    err = run_in_process("-qo", "-dash.png", cwd=tmp_path, stdin=b"").stderr.decode()  # -o's value, in a bundle of short options
    assert "write ./" not in err, err
    err = run_in_process("in.png", "-dash.png", cwd=tmp_path).stderr.decode()  # after an input: read as -d ash.png, "not a device"
    assert "write ./-dash.png" in err and err.count("\n") == 1, err
    done = run_in_process("-o", "out.png", "-q", "--", "-x.png", cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "out.png").exists(), done.stderr


def test_a_picture_piped_in_without_a_dash_is_told_how_to_name_it(tmp_path):
    """`cat a.png | sr-filter > b.png` had written the help text into b.png, with status 0, and
    `cat a.png | sr-filter -o - > b.png` had said only "Missing argument 'INPUTS...'"."""
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    for args, first in (((), "no input named"), (("-o", "-"), "Missing argument 'INPUTS...'"),
                        (("-q",), "no input named"), (("-v",), "no input named")):  # had been "Missing command."
        done = run_in_process(*args, stdin=data)
        assert done.returncode == 2 and done.stdout == b"", done.stdout[:80]
        assert done.stderr.decode() == (f"sr-filter: error: {first}; name a file, or give - to read the picture from "
                                        "standard input (cat in.png | sr-filter - > out.png)\n")


def test_folder_without_output_is_one_line(tmp_path):
    (tmp_path / "in").mkdir()
    done = run_in_process(tmp_path / "in")
    err = done.stderr.decode()
    assert done.returncode == 2 and err == "sr-filter: error: a folder input needs -o OUTPUT_FOLDER\n"
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    to_stdout = run_in_process(image, image, "-o", "-")
    assert to_stdout.returncode == 2 and to_stdout.stderr.decode() == ("sr-filter: error: standard output (-o -) takes one image; "
                                                                  "several inputs, a folder or a pattern need -o OUTPUT_FOLDER\n")


def test_several_files_without_output_are_written_beside_their_inputs(tmp_path):
    """`sr-filter *.png`: each NAME_x4.png beside its input, as for one file."""
    for name, size in (("a.png", (8, 8)), ("b.jpg", (6, 4))):
        Image.new("RGB", size, (120, 40, 200)).save(tmp_path / name)
    done = run_in_process(tmp_path / "a.png", tmp_path / "b.jpg", "-n", "sr-cartoon-x4", "-q")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "a_x4.png").size == (32, 32) and Image.open(tmp_path / "b_x4.jpg").size == (24, 16)
    again = run_in_process(tmp_path / "a.png", tmp_path / "b.jpg", "-n", "sr-cartoon-x4", "-q", "--suffix", "_big", "--ext", "webp")
    assert again.returncode == 0 and sorted(p.name for p in tmp_path.glob("*_big.webp")) == ["a_big.webp", "b_big.webp"]


def test_suffix_applies_to_batches_and_is_part_of_a_name(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    plain = run_in_process(tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "same", "-n", "sr-cartoon-x4", "-q")
    assert plain.returncode == 0 and sorted(p.name for p in (tmp_path / "same").iterdir()) == ["a.png", "b.png"]
    named = run_in_process(tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "big", "-n", "sr-cartoon-x4", "-q", "--suffix", "_big")
    assert named.returncode == 0 and sorted(p.name for p in (tmp_path / "big").iterdir()) == ["a_big.png", "b_big.png"]
    slash = run_in_process(tmp_path / "a.png", "--suffix", "/x", "-n", "sr-cartoon-x4")
    err = slash.stderr.decode()
    assert slash.returncode == 2 and err.count("\n") == 1 and "no '/' in a suffix" in err and "Traceback" not in err


def test_unsupported_input_names_the_supported_suffixes(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    done = run_in_process(notes, "--preset", "cartoon")
    err = done.stderr.decode()
    assert done.returncode == 1 and "notes.txt is not a supported image (apng, avif, bmp, gif, heic, heif, hif, jfif, jpe, jpeg, jpg, mpo, pam, pbm, pgm, png, pnm, ppm, tga, tif, tiff, webp)" in err
    assert "cannot tell the output format" not in err and err.count("\n") == 1


def test_trailing_slash_width_and_suffix(tmp_path):
    image = tmp_path / "bird.png"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(image)
    done = run_in_process(image, "-o", f"{tmp_path}/results/", "--width", "100", "--suffix", "", "-n", "sr-cartoon-x4", "--fp32", "-q")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "results" / "bird.png"
    assert out.is_file() and Image.open(out).size == (100, 75)
    named = run_in_process(image, "-o", tmp_path / "new_folder", "--height", "96", "--ext", "jpg", "-n", "sr-cartoon-x4", "-q")
    assert named.returncode == 0, named.stderr  # no slash, not a folder: a file name (with its own extension)
    assert Image.open(tmp_path / "new_folder").size == (128, 96)
    boxed = run_in_process(image, "--width", "101", "--height", "51", "-n", "sr-cartoon-x4", "-q")  # fits inside: 68x51
    assert boxed.returncode == 0 and Image.open(tmp_path / "bird_fit101x51.png").size == (68, 51)  # was _101x51
    mixed = run_in_process(image, "-o", tmp_path / "c.png", "--format", "jpg", "-n", "sr-cartoon-x4")  # JPEG bytes in a .png (a warning: -q hides it)
    assert mixed.returncode == 0 and "c.png is written as JPEG" in mixed.stderr.decode() and "says PNG" in mixed.stderr.decode()


def test_a_folder_of_one_image_reports_as_a_batch(tmp_path):
    """A folder holding one image printed neither its [1/1] line nor the summary line."""
    (tmp_path / "one").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "one" / "a.png")
    done = run_in_process(tmp_path / "one", "-o", tmp_path / "out", "-n", "sr-cartoon-x4")
    err = done.stderr.decode()
    assert done.returncode == 0 and "[1/1]" in err and err.rstrip().endswith("1 upscaled, 0 skipped, 0 failed"), err


def test_output_names_up_to_255_bytes_and_existing_folders(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (16, 16)).save(image)
    long_name = tmp_path / ("n" * 251 + ".png")
    done = run_in_process(image, "-o", long_name, "-n", "sr-cartoon-x4", "-q")
    assert done.returncode == 0 and Image.open(long_name).size == (64, 64), done.stderr
    refused = run_in_process(image, "-o", tmp_path / ("m" * 256 + ".png"), "-n", "sr-cartoon-x4")
    assert refused.returncode == 1 and b"bytes long" in refused.stderr and refused.stderr.count(b"\n") == 1
    into = run_in_process(image, "-o", tmp_path, "-n", "sr-cartoon-x4", "--suffix", "_big")
    assert into.returncode == 0 and Image.open(tmp_path / "a_big.png").size == (64, 64)  # an existing folder
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_closed_standard_streams_are_one_line(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for redirect, words in ((">&-", "standard output is closed"), ("<&-", "standard input, which is closed")):
        args = f"{image} -o -" if redirect == ">&-" else "-"
        done = subprocess.run(f"{sys.executable} -m sr_filter {args} --preset cartoon {redirect}", shell=True,
                              capture_output=redirect == "<&-", stderr=subprocess.PIPE if redirect == ">&-" else None,
                              env=env, timeout=120)
        err = done.stderr.decode()
        assert done.returncode == 2 and words in err and "Traceback" not in err, err
    # commands whose whole result goes to standard output: it was lost, with exit 0
    Image.new("RGB", (48, 48), (10, 20, 30)).save(tmp_path / "b.png")
    for args in ("models", f"eval {tmp_path} --include b.png", "--version", "--help"):
        done = subprocess.run(f"{sys.executable} -m sr_filter {args} >&-", shell=True, stderr=subprocess.PIPE, env=env, timeout=120)
        err = done.stderr.decode()
        assert done.returncode == 2 and "standard output is closed" in err and err.count("\n") == 1, (args, err)
    Image.new("RGB", (8, 8)).save(tmp_path / "--help", "PNG")  # a file of that name, after --: upscaled, not refused
    done = subprocess.run(f"{sys.executable} -m sr_filter -m sr-cartoon-x4 -q -o {tmp_path}/h.png -- --help >&-", shell=True,
                          stderr=subprocess.PIPE, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "h.png").exists(), done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
def test_a_full_standard_output_is_named(tmp_path):
    """Text for standard output on a full disk (``> /dev/full``): "No space left on device" alone had
    not said which file; a picture written to ``-o -`` already named standard output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args in ("models", "--help", "--version"):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "sr_filter", *args.split()], stdout=full, stderr=subprocess.PIPE,
                                  env=env, timeout=120, text=True)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr == "sr-filter: error: cannot write to standard output (No space left on device)\n", (args, done.stderr)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_no_temporary_file(tmp_path, set14, signum):
    """A real signal while the batch works: exit 128+N, one line, no partial or temporary file."""
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
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err and stdout == b""
    assert sorted(p.name for p in out.iterdir()) == ["a_small.png"]


def test_shell_completion_script():
    done = subprocess.run(["bash", "-c", f"{sys.executable} -m sr_filter"], capture_output=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), _SR_FILTER_COMPLETE="bash_source"))
    script = done.stdout.decode()
    assert done.returncode == 0 and "complete -o nosort -F" in script and "_SR_FILTER_COMPLETE=bash_complete" in script


def test_completion_before_any_argument_offers_the_default_commands_options():
    """`sr-filter --pre<TAB>` runs upscale, so it completes upscale's options (it had offered nothing)."""
    def complete(words: str, kinds: bool = False) -> list[str]:
        done = run_in_process(env={"_SR_FILTER_COMPLETE": "bash_complete", "COMP_WORDS": words,
                                   "COMP_CWORD": str(len(words.split(" ")) - 1)})  # as bash asks: the command alone
        return [line if kinds else line.split(",", 1)[1] for line in done.stdout.decode().splitlines()]

    assert complete("sr-filter --pre") == ["--preset", "--precision"]
    assert complete("sr-filter --v") == ["--version", "--verbose"]
    # a word may be a command or, as `sr-filter photo.jpg` upscales it, a file: bash lists the files
    # (only command names had been offered, so `sr-filter phot<TAB>` completed nothing)
    assert complete("sr-filter mod", kinds=True) == ["file,mod", "plain,models"]
    assert complete("sr-filter phot", kinds=True) == ["file,phot"]
    assert complete("sr-filter a.png --format ") == ["png", "jpg", "webp", "avif", "bmp", "tiff", "gif", "tga", "ppm", "pam", "y4m", "png-stream"]
    assert complete("sr-filter a.png -f w") == ["webp"]
    # model names and files for --model, device words for --device (both had offered nothing)
    assert complete("sr-filter a.png --model sr-c", kinds=True) == ["plain,sr-cartoon-x4", "file,sr-c"]
    assert complete("sr-filter a.png -d c") == ["cpu", "cuda"]
    assert complete("sr-filter a.png -m car") == ["cartoon", "car"]  # presets too
    assert complete("sr-filter export sr-c") == ["sr-cartoon-x4", "sr-c"]  # export's MODEL, eval's -m (with bicubic)
    assert complete("sr-filter eval shared -m bic") == ["bicubic", "bic"]


def test_messages_are_cut_at_a_word_and_get_the_flag_by_class():
    long = "decoder says: " + " ".join(f"word{i}" for i in range(300))
    cut = shorten(long, 600)
    assert len(cut) <= 600 and cut.endswith(" ...") and cut[:-4].split()[-1].startswith("word")
    assert cut[:-4] == long[: len(cut) - 4]  # a prefix that ends at a whole word
    assert one_line(OutputExistsError("out.png exists; allow overwriting (overwrite=True) to replace it")) == \
        "out.png exists; use --overwrite to replace it, or --skip-existing"  # said once, with the flag
    assert one_line(OutputExistsError("out.png is busy")).endswith("(use --overwrite to replace it, or --skip-existing)")
    assert hint_for(OutputExistsError("x exists; use --overwrite")) is None  # not twice
    from sr_filter.errors import ImageTooLargeError

    big = ImageTooLargeError("a.png is 9x9; upscaled x4 it would need 9 GiB; use a smaller scale or cut the image into parts")
    assert one_line(big) == "a.png is 9x9; upscaled x4 it would need 9 GiB; use a smaller --scale, --width or --height"
    assert "--device" in one_line(DeviceError("no CUDA GPU")) and hint_for(ImageFormatError("bad")) is None
    # advice the library gives in neutral words is said with the flags, once (it had come twice)
    wide = ImageTooLargeError("a 70000x10 image is too large for JPEG; choose a smaller scale or another output format (PNG or TIFF)")
    assert one_line(wide) == ("a 70000x10 image is too large for JPEG; use a smaller --scale, --width or --height, "
                              "or another output format (PNG or TIFF)")
    # tiles split down by themselves: the hint does not say --tile after "even with 62x62 tiles" (it had)
    from sr_filter.errors import OutOfMemoryError

    assert one_line(OutOfMemoryError("out of memory even with 62x62 tiles")).endswith("(use a smaller --scale)")
    # a control character or a byte that is not UTF-8 in a name is an escape: a newline had read as a
    # space, and U+202E turned the rest of the line around on a terminal
    said = one_line(ImageFormatError("new\nline \u202egnp.png, b\udcff.png and C:\\x.png  do not exist"))
    assert said == "new\\nline \\u202egnp.png, b\\xff.png and C:\\x.png do not exist", said


def test_hints_name_only_the_flags_the_running_command_has(tmp_path):
    from sr_filter.errors import OfflineError

    export = frozenset({"-o", "--output", "--overwrite", "--no-check", "--offline"})
    assert one_line(OutputExistsError("a.onnx exists; allow overwriting (overwrite=True) to replace it"), flags=export) == \
        "a.onnx exists; use --overwrite to replace it"
    assert one_line(OfflineError("x.pth is not in the cache"), flags=export).endswith(
        "(leave out --offline and unset SR_FILTER_OFFLINE to allow downloads, or choose a built-in model)")
    assert one_line(OfflineError("x.pth is not in the cache"), flags=frozenset({"--json"})).endswith("(choose a built-in model)")
    from sr_filter.errors import NetworkUnavailableError

    # a named model without the network (a preset falls back by itself): --offline would not help it
    assert one_line(NetworkUnavailableError("could not download x.pth")).endswith("(a built-in model (`sr-filter models`) runs without the network)")
    assert "`sr-filter models --inspect FILE`" in one_line(CommunityModelError("odd.pth: odd"), flags=frozenset({"-m"}))
    # the real command: export has neither --skip-existing nor --model
    done = run_in_process("export", "realesr-general-x4v3", "-o", tmp_path / "g.onnx", env={"SR_FILTER_OFFLINE": "1"})
    err = done.stderr.decode()
    assert done.returncode != 0 and "downloads are off" in err, err
    assert "--model" not in err and "run without --offline" not in err, err


def test_a_warning_is_shown_once_and_not_with_quiet(capsys):
    configure_logging(0, False)
    for _ in range(3):
        logging.getLogger("sr_filter").warning("scale 0.5 is below the model's x4")
    configure_logging(0, True)
    logging.getLogger("sr_filter").warning("another")
    assert capsys.readouterr().err.count("scale 0.5") == 1
    configure_logging(0, False)


def test_a_log_line_goes_above_a_progress_bar_that_is_shown(capsys):
    """With a bar on the terminal, "-v" lines had been written after the bar's text on its line
    ("big.png   0%|...| [00:00<?]sr-filter: automatic tiles: ...")."""
    import io

    from tqdm import tqdm

    from sr_filter.progress import FILE_FORMAT

    configure_logging(1, False)
    try:
        screen = io.StringIO()
        bar = tqdm(total=4, desc="big.png", bar_format=FILE_FORMAT, file=screen, ncols=80)
        written = []
        real = tqdm.write
        tqdm.write = classmethod(lambda cls, text, file=None, **kw: written.append(text))
        try:
            logging.getLogger("sr_filter").info("automatic tiles: 512 px")
        finally:
            tqdm.write = real
            bar.close()
        assert written == ["sr-filter: automatic tiles: 512 px"] and "automatic" not in capsys.readouterr().err
        logging.getLogger("sr_filter").info("no bar now")  # without a bar, straight to stderr
        assert capsys.readouterr().err == "sr-filter: no bar now\n"
    finally:
        configure_logging(0, False)


def test_without_a_bar_verbose_runs_say_how_far_they_are_now_and_then(monkeypatch, capsys):
    """With stderr not a terminal (a log file), -v had said nothing between "automatic tiles" and
    the end of a run of minutes; now a line every LOG_EVERY seconds, and none without -v."""
    from sr_filter import progress

    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    for verbose, expected in ((1, ["sr-filter: big.png: 25% after 12 s", "sr-filter: big.png: 75% after 24 s"]), (0, [])):
        configure_logging(verbose, False)
        try:
            bars = progress.Bars(1, enabled=False)
            bars.start("big.png")
            for done, now in ((1, 112.0), (2, 115.0), (3, 124.0), (4, 140.0)):  # 50% within 10 s of the last line; 100% is the end
                clock[0] = now
                bars(done, 4)
            assert capsys.readouterr().err.splitlines() == expected
        finally:
            configure_logging(0, False)


@pytest.mark.parametrize("delay", [0.4, 0.8, 1.2])
def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path, delay):
    """SIGINT while torch and the model load: no traceback, exit status 130, and never ignored (a
    Ctrl-C that lands in numpy's import inside torch's C start-up used to be swallowed: the run went on)."""
    image = tmp_path / "a.png"
    Image.new("RGB", (768, 768)).save(image)  # big enough that the upscale cannot finish before the signal
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", image, "--preset", "cartoon"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, preexec_fn=interruptible)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    err = stderr.decode()
    assert proc.returncode == 130 and "sr-filter: interrupted" in err and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    # on a fast machine the model may be loaded (and announced) before the signal lands
    assert lines[-1] == "sr-filter: interrupted" and all(line.startswith("sr-filter: using ") for line in lines[:-1]), err
    assert len(lines) <= 2, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_ctrl_c_while_the_installed_command_imports_is_one_line_and_130(tmp_path):
    """The installed ``sr-filter`` (the wrapper pip writes for pyproject's entry point) imported
    the CLI before any guard: a Ctrl-C in its first tenth of a second was a traceback ending in
    ``import click``. The Ctrl-C is made to land there for sure by a ``click`` that raises it."""
    import tomllib

    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["sr-filter"]
    module, function = entry.split(":")
    script = tmp_path / "sr-filter"  # what pip's console-script wrapper says
    script.write_text(f"import re\nimport sys\nfrom {module} import {function}\nif __name__ == '__main__':\n"
                      f"    sys.exit({function}())\n")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "click.py").write_text("raise KeyboardInterrupt\n")  # as Ctrl-C lands mid-import
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), str(ROOT)]))
    done = subprocess.run([sys.executable, script, "--version"], capture_output=True, env=env, timeout=60)
    assert done.returncode == 130 and done.stderr.decode() == "sr-filter: interrupted\n", done.stderr.decode()
    env["PYTHONPATH"] = str(ROOT)  # and the real one runs
    done = subprocess.run([sys.executable, script, "--version"], capture_output=True, env=env, timeout=60)
    assert done.returncode == 0 and b"sr-filter" in done.stdout, done.stderr.decode()


@pytest.mark.parametrize("after", [0.0, 0.3, 0.6])
def test_ctrl_c_while_the_model_converts_to_openvino_stops_the_run(tmp_path, after):
    """A Ctrl-C while the model is traced and converted for OpenVINO (first use, empty cache) stops
    the run with one line and 130: never taken for a failed conversion (the automatic backend would
    fall back to torch and go on), never a half-written cache entry."""
    image = tmp_path / "a.png"
    Image.new("RGB", (512, 512)).save(image)
    env = dict(os.environ, PYTHONPATH=str(ROOT), SR_FILTER_CACHE_DIR=str(tmp_path / "cache"))  # nothing converted yet
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", image, "--preset", "cartoon", "-v"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, preexec_fn=interruptible, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "to OpenVINO" in line:  # "converting ... to OpenVINO (once; ...)": the conversion has begun
            time.sleep(after)
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    err = "".join(seen) + rest
    assert any("to OpenVINO" in line for line in seen), err
    assert proc.returncode == 130 and "with torch" not in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "sr-filter: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["a.png"]


def test_a_run_started_with_ctrl_c_ignored_keeps_ignoring_it(tmp_path):
    """nohup, or a shell script's background job, starts a run with SIGINT ignored: a Ctrl-C that
    lands while the libraries load must not be turned into an interrupt by the hold-back there."""
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64)).save(image)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def ignoring() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", image, "-m", "sr-cartoon-x4", "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, preexec_fn=ignoring)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:  # Ctrl-C all the way through, start-up included
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    assert (tmp_path / "a_x4.png").exists()


def test_torch_free_spellings_match_the_library():
    """The CLI spells the formats and precisions for --help without importing torch; they must agree."""
    from sr_filter import imageio
    from sr_filter.cli.options import PRECISION_METAVAR
    from sr_filter.cli.upscale import FORMAT_NAMES, _format_keys
    from sr_filter.device import PRECISIONS

    assert tuple(PRECISION_METAVAR.split("|")) == PRECISIONS
    assert _format_keys() == {suffix[1:] for suffix in imageio.FORMATS}
    assert set(FORMAT_NAMES.split("|")) <= _format_keys()


def test_devices_and_fifos_are_written_through_never_replaced(tmp_path):
    """`-o` naming /dev/null (through a symlink, with --overwrite) or a named pipe: written through, in the
    input's format when the name has no image extension; the special file stays what it was."""
    import stat
    import threading

    image = tmp_path / "a.png"
    Image.new("RGB", (16, 16), (0, 90, 200)).save(image)
    null = tmp_path / "null"
    null.symlink_to(os.devnull)
    done = run_in_process(image, "-o", null, "--overwrite", "-n", "sr-cartoon-x4", "-q")
    assert done.returncode == 0, done.stderr
    kept = run_in_process(image, "-o", null, "--skip-existing", "-n", "sr-cartoon-x4")  # a stream is never "existing"
    assert kept.returncode == 0 and b"skipping" not in kept.stderr and b"using" in kept.stderr, kept.stderr
    assert null.is_symlink() and os.readlink(null) == os.devnull and stat.S_ISCHR(os.stat(os.devnull).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    done = run_in_process(image, "-o", fifo, "-n", "sr-cartoon-x4", "-q")  # no --overwrite needed, none suggested
    reader.join(60)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and received and received[0].startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "null", "pipe"]


def test_a_bare_command_prints_the_help_as_help_does():
    """Typed at a terminal (a pseudo-terminal as standard input here); piped input is told how to
    name it instead (test_a_picture_piped_in_without_a_dash_is_told_how_to_name_it)."""
    leader, follower = os.openpty()
    try:
        bare = subprocess.run([sys.executable, "-m", "sr_filter"], capture_output=True, text=True, stdin=follower,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    helped = subprocess.run([sys.executable, "-m", "sr_filter", "--help"], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert bare.returncode == 0 and bare.stderr == "" and bare.stdout.startswith("Usage: sr-filter")
    assert bare.stdout.strip() == helped.stdout.strip()


def test_every_command_takes_quiet_and_verbose_after_its_name(tmp_path):
    """`sr-filter eval DIR -q` and `sr-filter models -q` were "No such option" (exit 2), where
    upscale and export take them after the command's name too."""
    from click.testing import CliRunner

    from sr_filter.cli import cli

    Image.new("RGB", (48, 48), (10, 20, 30)).save(tmp_path / "a.png")
    for args in (["models", "-q"], ["models", "-v", "--json"], ["eval", str(tmp_path), "-q"]):
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 0, (args, done.output)
    for flag, said in (([], True), (["-q"], False)):  # the "wrote" line is a message: -q leaves only errors
        done = CliRunner().invoke(cli, ["eval", str(tmp_path), "--json", str(tmp_path / "r.json"), "--overwrite", *flag])
        assert done.exit_code == 0 and ("sr-filter: wrote" in done.output) == said, done.output
    assert "--quiet" in CliRunner().invoke(cli, ["train", "--help"]).output


def test_a_command_that_ends_with_its_own_status_ignores_signals_while_the_process_exits(tmp_path):
    """`sr-filter train` stopped by Ctrl-C exits with 130 from inside the command: that exit had
    passed by the step that ignores signals once the work is done, so a second Ctrl-C during the
    interpreter's exit printed a traceback from an atexit handler."""
    config = tmp_path / "x.toml"
    config.write_text("")
    # the training package stands in for itself without torch (its import is seconds of the test's
    # time): train_cmd takes train, load_config and TrainingStopped from it, and exits with 128 + N
    script = textwrap.dedent("""
        import atexit, signal, sys, types

        class TrainingStopped(Exception):
            def __init__(self, signum, iteration):
                super().__init__(f"stopped at iteration {iteration}")
                self.exit_code = 128 + signum

        def stopped(*args, **kwargs):
            raise TrainingStopped(signal.SIGINT, 5)

        training = sys.modules["sr_filter.training"] = types.ModuleType("sr_filter.training")
        trainer = sys.modules["sr_filter.training.trainer"] = types.ModuleType("sr_filter.training.trainer")
        training.trainer, trainer.TrainingStopped = trainer, TrainingStopped
        training.train, training.load_config = stopped, lambda path: None
        atexit.register(lambda: print("at exit:", signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True))
        sys.argv = ["sr-filter", "train", sys.argv[1]]
        from sr_filter.cli import main
        main()
    """)
    done = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 130 and done.stdout.strip() == "at exit: True", (done.returncode, done.stdout, done.stderr)

"""The cluster path on a real local Ray cluster (2 CPUs, started once for the module): the same
bytes as one machine, a worker killed mid-job, a bad file, resume, file:// URIs, Ctrl-C, and the
one-line errors (no Ray, unreachable address, unwritable output)."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from .conftest import ROOT, KillFirstWorker, interruptible, one_thread
from .imagefiles import png16_filtered

ray = pytest.importorskip("ray")

from sr_filter.cluster import storage, upscale_folder  # noqa: E402
from sr_filter.cluster.worker import Settings, UpscaleWorker  # noqa: E402

MODEL = ["-m", "sr-cartoon-x4", "-t", "32", "-d", "cpu"]
SETTINGS = {"model": "sr-cartoon-x4", "tile": 32, "device": "cpu"}


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """A small folder of faithful-I/O cases and its single-machine outputs (the reference)."""
    root = tmp_path_factory.mktemp("collection")
    src = root / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(18)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(src / f"rgb{i}.png")
    Image.fromarray(rng.integers(0, 256, (20, 24, 4), dtype=np.uint8)).save(src / "sub" / "alpha.png")
    (src / "sub" / "deep16.png").write_bytes(png16_filtered(rng.integers(0, 65536, (16, 20, 3), dtype=np.uint16), interlaced=False))
    exif = Image.Exif()
    exif[0x010F] = "sr-filter test camera"
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(src / "photo.jpg", quality=90, exif=exif, dpi=(300, 300))
    ref = root / "ref"
    with one_thread():  # as the workers run: the tests compare bytes
        result = CliRunner().invoke(_cli(), ["-q", str(src), "-o", str(ref), *MODEL])
    assert result.exit_code == 0, result.output
    return src, ref


def _cli():
    from sr_filter.cli import cli

    return cli


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(*args, **popen):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, **popen)


def test_same_bytes_as_one_machine_and_a_bad_file_fails_alone(cluster, collection, tmp_path):
    src, ref = collection
    mixed = tmp_path / "in"
    mixed.mkdir()
    for name, data in _files(src).items():
        (mixed / name).parent.mkdir(parents=True, exist_ok=True)
        (mixed / name).write_bytes(data)
    (mixed / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    events = []
    summary = upscale_folder(str(mixed), str(tmp_path / "out"), **SETTINGS, on_event=events.append)
    assert summary.done == 9 and summary.skipped == 0 and summary.workers == 2
    assert [source for source, _ in summary.failed] == [str(mixed / "broken.png")]
    message = summary.failed[0][1]
    assert "broken.png" in message and "\n" not in message
    assert _files(tmp_path / "out") == _files(ref)  # byte for byte: alpha, 16-bit, EXIF/DPI JPEG
    assert sorted(e.kind for e in events) == ["done"] * 9 + ["failed"]
    quiet = CliRunner().invoke(_cli(), ["-q", str(mixed), "-o", str(tmp_path / "out"), *MODEL, "--cluster", cluster])
    lines = quiet.stderr.strip().splitlines()  # -q still names what failed, then the summary, as on one machine
    assert quiet.exit_code == 1 and lines[-2] == f"sr-filter: failed: {mixed / 'broken.png'}", quiet.stderr
    assert lines[-1].startswith("sr-filter: 0 upscaled, 9 skipped, 1 failed"), quiet.stderr


def test_a_workers_warning_about_a_file_is_said_on_the_driver_as_on_one_machine(cluster, tmp_path):
    """One machine says "a.png: JPEG has no transparency; flattening the alpha channel onto white";
    on the cluster the worker's warning reached no one, API or command line."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((12, 16, 4), 128, np.uint8)).save(src / "a.png")
    Image.fromarray(np.full((12, 16, 3), 128, np.uint8)).save(src / "b.png")
    events = []
    upscale_folder(str(src), str(tmp_path / "api"), **SETTINGS, fmt="jpg", address=cluster, on_event=events.append)
    said = "JPEG has no transparency; flattening the alpha channel onto white"
    assert {PurePosixPath(e.task.source).name: e.notices for e in events} == {"a.png": (f"{src / 'a.png'}: {said}",), "b.png": ()}
    run = CliRunner().invoke(_cli(), [str(src), "-o", str(tmp_path / "cli"), "-f", "jpg", *MODEL, "--cluster", cluster])
    assert run.exit_code == 0 and f"sr-filter: {src / 'a.png'}: {said}\n" in run.stderr, run.stderr


def test_killed_worker_files_are_redone_exactly_once(cluster, collection, tmp_path):
    src, ref = collection
    killer = KillFirstWorker()
    summary = upscale_folder(str(src), str(tmp_path / "out"), **SETTINGS, on_event=killer)
    assert killer.killed and summary.workers_lost == 1 and summary.retried >= 1
    finished = [e.task.target for e in killer.events if e.kind in ("done", "skipped")]
    assert sorted(finished) == sorted(set(finished)) and len(finished) == 9  # every file once
    assert not summary.failed
    assert _files(tmp_path / "out") == _files(ref)  # no temporary file left, nothing partial


def test_file_uris_then_resume_with_a_glob_skips_finished_files(cluster, collection, tmp_path):
    src, ref = collection
    out = tmp_path / "out"
    # "local://" goes through the object-store branch: a temporary key, then a move
    first = upscale_folder(f"file://{src}", f"local://{out}", **SETTINGS)
    assert first.done == 9 and _files(out) == _files(ref)
    (out / "rgb3.png").unlink()
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = upscale_folder(str(src / "rgb*.png"), str(out), **SETTINGS)  # a glob pattern this time
    assert (again.done, again.skipped, again.failed) == (1, 5, [])
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert _files(out) == _files(ref)


def test_ctrl_c_leaves_nothing_half_written(cluster, collection, tmp_path):
    src, ref = collection
    big = tmp_path / "in"
    big.mkdir()
    rng = np.random.default_rng(1)
    for i in range(24):  # enough work that a starved poll loop under load still interrupts mid-job
        Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(big / f"f{i:02d}.png")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", str(big), "-o", str(out), *MODEL, "--cluster", cluster],
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True, preexec_fn=interruptible)
    deadline = time.monotonic() + 120
    while not any(out.glob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the driver's whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted after" in err
    written = sorted(out.glob("*"))
    assert written and len(written) < 24 and all(p.suffix == ".png" for p in written)  # no .tmp left
    finished = tmp_path / "finished"
    finished.mkdir()
    for p in written:
        (finished / p.name).write_bytes((big / p.name).read_bytes())
    with one_thread():
        single = CliRunner().invoke(_cli(), ["-q", str(finished), "-o", str(tmp_path / "ref"), *MODEL])
    assert single.exit_code == 0 and _files(out) == _files(tmp_path / "ref")  # every file whole


ERRORS = """
import sys
from sr_filter.cli import main
if sys.argv[1] == "HIDE":  # Ray not installed, as far as the import system can tell
    sys.modules["ray"] = None
for args in sys.argv[2:]:
    try:
        main(args.split("|"))
    except SystemExit as exc:
        print(f"rc={exc.code}", file=sys.stderr)
"""


def test_one_line_errors(tmp_path, collection):
    """No Ray, an unreachable address, an unwritable output: each one line, exit 1, nothing made."""
    src, _ = collection
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should go")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = [subprocess.Popen([sys.executable, "-c", ERRORS, *args], stderr=subprocess.PIPE, text=True, env=env) for args in (
        ["HIDE", f"{src}|-o|{tmp_path / 'a'}|--cluster|auto"],
        ["", f"{src}|-o|{tmp_path / 'b'}|--cluster|127.0.0.1:1", f"{src}|-o|{blocker / 'out'}|--cluster|auto"],
    )]
    lines = [line for run in runs for line in run.communicate(timeout=300)[1].strip().splitlines()]
    assert len(lines) == 6 and lines[1::2] == ["rc=1"] * 3, lines
    assert lines[0].startswith("sr-filter: error: running on a cluster needs Ray, which is not installed")
    assert lines[0].endswith("install it with pip install '.[cluster]' in the sr-filter folder (or 'WHEEL[cluster]' with its .whl file)")
    assert lines[2] == "sr-filter: error: cannot reach the Ray cluster at 127.0.0.1:1 (Connection refused); check the address and that the head node runs `ray start --head`"
    assert lines[4] == f"sr-filter: error: {blocker} is a file, not a folder; choose another output path"  # one machine's words
    assert not any(tmp_path.glob("[ab]"))


def test_a_model_the_workers_cannot_load_is_one_line(cluster, collection, tmp_path):
    src, _ = collection
    from sr_filter.errors import ClusterError

    with pytest.raises(ClusterError, match=r"^unknown model or preset 'no-such-model'") as caught:
        upscale_folder(str(src), str(tmp_path / "new" / "out"), model="no-such-model", device="cpu")
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # the folders it made for the outputs are gone again (they stayed, empty)
    (tmp_path / "kept").mkdir()
    with pytest.raises(ClusterError):
        upscale_folder(str(src), str(tmp_path / "kept"), model="no-such-model", device="cpu")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # a folder that was there stays


def test_a_scale_the_model_cannot_give_is_one_line_before_the_job(cluster, collection, tmp_path):
    """x4 of a 1x (restoration) model had failed on every file, one by one, with the same line;
    the workers now refuse it once they have loaded the model, before any file is given out."""
    import torch

    from sr_filter.archs.srvgg import SRVGGNetCompact
    from sr_filter.errors import ClusterError

    src, _ = collection
    own = tmp_path / "restore_1x.pth"
    torch.manual_seed(0)
    torch.save({"params": SRVGGNetCompact(num_feat=8, num_conv=2, upscale=1).state_dict()}, own)
    events = []
    with pytest.raises(ClusterError, match=r"^restore_1x\.pth is a 1x model: .* does not give x4;") as caught:
        upscale_folder(str(src), str(tmp_path / "out"), model=str(own), scale=4, device="cpu", on_event=events.append)
    assert "\n" not in str(caught.value) and events == [] and not (tmp_path / "out").exists()


def test_the_model_the_workers_loaded_and_its_fallback_are_said(cluster, collection, tmp_path):
    """The workers (offline, an empty cache) use the photo preset's built-in model instead of its
    downloadable one: the driver had said neither that nor which model ran."""
    src, _ = collection
    result = CliRunner().invoke(_cli(), [str(src), "-o", str(tmp_path / "out"), "--preset", "photo", "-t", "32", "-d", "cpu",
                                         "--cluster", cluster])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    fallback = [n for n, line in enumerate(lines) if "using the built-in model sr-photo-x4 instead of" in line]
    using = [n for n, line in enumerate(lines) if line.startswith("sr-filter: using sr-photo-x4@1 (x4, edsr) on cpu")]
    assert len(fallback) == 1 and len(using) == 1 and fallback[0] < using[0], result.stderr  # once, not once per worker
    assert "licence BSD-3-Clause" in lines[using[0]]
    quiet = CliRunner().invoke(_cli(), ["-q", str(src), "-o", str(tmp_path / "quiet"), *MODEL, "--cluster", cluster])
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    # run again with other settings: the outputs are kept as the first run made them, and the line says so
    again = CliRunner().invoke(_cli(), [str(src), "-o", str(tmp_path / "out"), *MODEL, "--cluster", cluster])
    assert again.exit_code == 0 and "existing output(s), kept as an earlier run made them (remove them or choose another " \
        "-o to redo them)" in again.stderr, again.stderr


def test_what_the_listing_passes_over_is_said_and_hidden_files_are_left_out(cluster, tmp_path):
    """As on one machine: the cluster had upscaled hidden files and said nothing of the rest."""
    src = tmp_path / "in"
    (src / ".cache").mkdir(parents=True)
    for name in ("a.png", ".hidden.png", ".cache/b.png"):
        Image.new("RGB", (8, 8), "red").save(src / name)
    (src / "notes.txt").write_text("not a picture")
    (src / "clip.mp4").write_bytes(b"")
    result = CliRunner().invoke(_cli(), [str(src), "-o", str(tmp_path / "out"), *MODEL, "--cluster", cluster])
    assert result.exit_code == 0, result.output
    assert ("left out: 1 video (name it to upscale it), 2 hidden files and folders, 1 other file") in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["a.png"]
    (src / "sub").mkdir()
    (src / "sub" / "back").symlink_to("..")  # a link back up: listed again and again until the paths grew too long
    tasks = storage.list_tasks([str(src)], str(tmp_path / "out2"))
    assert [Path(t.source).name for t in tasks] == ["a.png"]


def test_a_read_only_input_is_named_as_on_one_machine(tmp_path):
    """A .pbm bitmap (written as .pgm) or a camera's .mpo (written as .jpg) in a folder: the cluster
    kept the input's suffix, and each worker failed 'a.pbm names a PBM ..., which is read but not
    written; name the output .pgm' where one machine upscales them."""
    from sr_filter.errors import OutputCollisionError

    src = tmp_path / "in"
    src.mkdir()
    Image.new("1", (8, 8)).save(src / "scan.pbm")
    Image.new("RGB", (8, 8)).save(src / "cam.mpo", "JPEG")
    tasks = storage.list_tasks([str(src)], str(tmp_path / "out"))
    assert sorted(Path(t.target).name for t in tasks) == ["cam.jpg", "scan.pgm"]
    Image.new("L", (8, 8)).save(src / "scan.pgm")
    with pytest.raises(OutputCollisionError):  # as one machine refuses it
        storage.list_tasks([str(src)], str(tmp_path / "out"))


@pytest.mark.parametrize("pattern", ["*.png", "**/*.png", "*/*.png", "s*", ".*.png", ".*/*.png", "**/.*.png", "sub/**/*.png"])
def test_a_pattern_finds_what_it_finds_on_one_machine(tmp_path, pattern):
    """``*`` had crossed folders on the cluster (``in/*.png`` upscaled every subfolder's pictures
    too), and a pattern that names hidden files found nothing; the same files and the same count
    of hidden ones are found now, in the same folders of the output."""
    from collections import Counter

    from sr_filter.cli.jobs import expand_inputs

    src = tmp_path / "in"
    for name in ("a.png", "s.png", ".b.png", "sub/c.png", "sub/deeper/d.png", "sub/.e.png", ".hid/f.png", ".hid/deep/g.png"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(src / name)
    mine = expand_inputs([str(src / pattern)])
    left_out: Counter = Counter()
    tasks = storage.list_tasks([str(src / pattern)], str(tmp_path / "out"), left_out=left_out)
    assert sorted(Path(t.source).relative_to(src) for t in tasks) == sorted(Path(p).relative_to(src) for p in mine)
    assert {Path(t.target).relative_to(tmp_path / "out") for t in tasks} == {
        Path(p).relative_to(mine.roots[p]) for p in mine}
    assert left_out["hidden"] == mine.left_out["hidden"]


def test_a_folder_that_cannot_be_listed_is_one_line(tmp_path, monkeypatch):
    """Its images had been passed over without a word. A folder root can read is made
    unreadable here by failing os.scandir on it (permission bits do not stop root)."""
    from sr_filter.errors import ImageFormatError

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(src / "a.png")
    Image.new("RGB", (8, 8)).save(src / "sub" / "b.png")
    real = os.scandir

    def scandir(path="."):
        if str(path) == str(src / "sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ImageFormatError, match=r"cannot list .*in: .*Permission denied"):
        storage.list_tasks([str(src)], str(tmp_path / "out"))
    # as the job lists it: that folder fails alone and the rest goes on, as on one machine (a
    # locked subfolder had stopped the whole job before any work)
    unreadable: list = []
    tasks = storage.list_tasks([str(src)], str(tmp_path / "out"), unreadable=unreadable)
    assert [os.path.basename(t.source) for t in tasks] == ["a.png"]
    assert unreadable == [(str(src / "sub"), f"cannot read folder {src / 'sub'}: Permission denied")]

    def locked_root(path="."):
        if str(path) == str(src):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", locked_root)
    with pytest.raises(ImageFormatError, match=r"cannot list .*in: .*Permission denied"):  # the folder given: still one line
        storage.list_tasks([str(src)], str(tmp_path / "out"), unreadable=[])


def test_a_folder_of_videos_only_gets_the_one_machine_hint(tmp_path):
    from sr_filter.errors import ImageFormatError

    (tmp_path / "vd").mkdir()
    (tmp_path / "vd" / "v.mp4").write_bytes(b"a video by its name")
    with pytest.raises(ImageFormatError, match=r"in .*vd; folders are searched for images only: give a video by name, "
                                               r"e\.g\. .*vd/v\.mp4 \(--cluster takes one video at a time\)$"):
        storage.list_tasks([str(tmp_path / "vd")], str(tmp_path / "out"))
    # a video named beside other inputs: it had been "no image files ... in v.mp4; folders are searched ..."
    (tmp_path / "im").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "im" / "a.png")
    with pytest.raises(ImageFormatError, match=r"v\.mp4 is a video; --cluster upscales a video given alone .*not beside other inputs"):
        storage.list_tasks([str(tmp_path / "im"), str(tmp_path / "vd" / "v.mp4")], str(tmp_path / "out"))


def test_a_file_or_folder_with_no_picture_among_several_fails_alone(tmp_path):
    """As on one machine: README among the inputs and an empty folder had stopped the whole job
    ("no image files ... in README", a file called a folder); now each is a failure of its own
    and the pictures are listed. Alone, either still stops the listing."""
    from sr_filter.errors import ImageFormatError

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "README").write_text("notes")
    (tmp_path / "empty").mkdir()
    unreadable: list = []
    tasks = storage.list_tasks([str(tmp_path / n) for n in ("a.png", "README", "empty")], str(tmp_path / "out"),
                               unreadable=unreadable)
    assert [PurePosixPath(t.source).name for t in tasks] == ["a.png"]
    assert [(PurePosixPath(name).name, why.split(" (")[0]) for name, why in unreadable] == [
        ("README", f"{tmp_path / 'README'} is not a supported image"), ("empty", "no image files")]
    assert unreadable[1][1].endswith(f") in {tmp_path / 'empty'}")
    with pytest.raises(ImageFormatError, match="README is not a supported image"):
        storage.list_tasks([str(tmp_path / "README")], str(tmp_path / "out"), unreadable=[])


@dataclasses.dataclass(frozen=True)
class _Numbered(Settings):
    """Worker settings with a file that numbers the workers as they start, and which of them
    load another model, as a node that cannot download the weights falls back to a built-in one."""

    marker: str = ""
    other: tuple[int, int] = (0, 0)  # the first and last worker (1-based) that load sr-photo-x4
    dies: int = 0  # the worker (1-based) whose process is killed while it loads the model


class _NumberedWorker(UpscaleWorker):
    def __init__(self, settings):
        number = 1  # claimed with an exclusive create: two workers starting at once had read the same count
        while True:
            try:
                os.close(os.open(f"{settings.marker}.{number}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                break
            except FileExistsError:
                number += 1
        first, last = settings.other
        if number == settings.dies:
            os.kill(os.getpid(), signal.SIGKILL)
        if first <= number <= last:
            settings = dataclasses.replace(settings, model="sr-photo-x4")
        super().__init__(settings)


def _numbered(tmp_path, collection, other, dies=0):
    from sr_filter.cluster import scheduler

    src, _ = collection
    tasks = storage.list_tasks([str(src)], str(tmp_path / "out"), None)
    return lambda **run: scheduler.run(tasks, _Numbered(**SETTINGS, marker=str(tmp_path / "count"), other=other,
                                                                 dies=dies),
                                       workers=2, worker_class=_NumberedWorker, **run)


def test_workers_that_load_different_models_stop_the_job(cluster, collection, tmp_path):
    from sr_filter.errors import ClusterError

    with pytest.raises(ClusterError, match=r"^the workers loaded different models \(sr-(photo|cartoon)-x4@1 .* on 1 "
                                           r"worker\(s\); sr-(cartoon|photo)-x4@1 .* on 1 worker\(s\)\)"):
        _numbered(tmp_path, collection, (1, 1))()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))  # nothing written


def test_a_replacement_worker_of_another_model_stops_the_job(cluster, collection, tmp_path):
    """The model check had covered the first workers only: a replacement was given files unchecked."""
    from sr_filter.errors import ClusterError

    with pytest.raises(ClusterError, match=r"^a worker started in place of a lost one loaded sr-photo-x4@1 \(x4, edsr\), not "
                                           r"sr-cartoon-x4@1 \(x4, srvgg\)"):
        _numbered(tmp_path, collection, (3, 99))(on_event=KillFirstWorker())


def test_a_worker_lost_while_loading_the_model_is_replaced(cluster, collection, tmp_path):
    """A worker killed while it loads the model (a lost node, a killed process) costs nothing but
    its start, as one lost later does: it had ended the whole job ("a worker stopped while loading
    the model"), the other worker's model loaded and no file done."""
    summary = _numbered(tmp_path, collection, (0, 0), dies=1)()
    assert summary.done == 9 and not summary.failed and summary.workers_lost == 1
    assert len(list(tmp_path.glob("count.*"))) == 3  # two started, one in place of the lost one


def test_every_worker_setting_is_a_keyword_of_the_public_functions():
    """``Settings.from_keywords`` takes the fields by name from the functions' keywords: a field
    with no keyword of that name would silently keep its default on every worker."""
    import dataclasses
    import inspect

    from sr_filter.cluster import upscale_video
    from sr_filter.cluster.segments import VideoSettings

    driver_chosen = {"threads", "codec", "steady", "alpha"}  # set by the scheduler / from the container, not passed through
    for function, settings, not_for_videos in ((upscale_folder, Settings, set()), (upscale_video, VideoSettings, {"fmt", "quality", "size"})):
        keywords = set(inspect.signature(function).parameters)
        fields = {f.name for f in dataclasses.fields(settings)} - driver_chosen - not_for_videos
        assert fields <= keywords, f"{function.__name__} lacks {fields - keywords}"
    made = VideoSettings.from_keywords({"preset": "photo", "model": None, "tile": 32, "crf": 20, "src": "a.mkv"}, codec="ffv1")
    assert (made.model, made.tile, made.crf, made.codec, made.device) == ("photo", 32, 20, "ffv1", "cpu")


class _OutlivingWorker(UpscaleWorker):
    """A worker whose process seems to outlive its kill: ``ready()`` names a process of its own
    that the kill does not end (as a loaded machine's slow kill looks to the driver)."""

    def ready(self):
        error, described, _, node, notices, tag = super().ready()
        shell = subprocess.run(["sh", "-c", "sleep 20 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True)
        return error, described, int(shell.stdout), node, notices, tag


def test_a_worker_that_outlives_the_stop_keeps_its_files_and_is_reported(cluster, collection, tmp_path, monkeypatch, caplog):
    from sr_filter.cluster import Interrupted, scheduler
    from sr_filter.cluster import stop as stopping

    src, _ = collection
    monkeypatch.setattr(stopping, "STOP_WAIT_S", 1.0)
    tasks = storage.list_tasks([str(src)], str(tmp_path / "out"), None)
    for target in (Path(t.target) for t in tasks):  # as the temporary files of writers still at work
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / f".{target.name}.half.tmp").write_bytes(b"half")

    def interrupt(event):
        raise KeyboardInterrupt

    with caplog.at_level(logging.INFO, logger="sr_filter.cluster.stop"), pytest.raises(Interrupted) as caught:
        scheduler.run(tasks, Settings(**SETTINGS), workers=2, on_event=interrupt, worker_class=_OutlivingWorker)
    busy = caught.value.busy
    assert busy and set(busy) <= {t.target for t in tasks}
    for target in map(Path, busy):  # not swept: their writers may still be at work
        assert (target.parent / f".{target.name}.half.tmp").exists()
    assert "still running after 1 s" in caplog.text
    pids = [int(p) for p in caplog.text.split("process ids ")[1].split(")")[0].split(", ")]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)


def test_tta_denoise_and_size_reach_the_workers(cluster, tmp_path):
    """The CLI hands --tta and --width/--height to the cluster's workers (they were once dropped
    silently): the files equal a single-machine run with the same options."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(12)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(src / f"p{i}.png")
    options = ["--tta", "--width", "25"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    with one_thread():
        assert CliRunner().invoke(_cli(), ["-q", str(src), "-o", str(ref), *MODEL, *options]).exit_code == 0
    result = CliRunner().invoke(_cli(), ["-q", str(src), "-o", str(out), *MODEL, *options, "--cluster", cluster])
    assert result.exit_code == 0, result.output
    assert _files(out) == _files(ref)
    with Image.open(out / "p0.png") as image:
        assert image.size == (25, 30)
    plain = tmp_path / "plain"
    assert CliRunner().invoke(_cli(), ["-q", str(src), "-o", str(plain), *MODEL, "--width", "25"]).exit_code == 0
    assert _files(plain) != _files(ref)  # TTA changes the pixels, so the comparison above can fail
    from sr_filter.errors import ClusterError

    with pytest.raises(ClusterError, match="sr-cartoon-x4 has no denoise strength setting"):  # the workers got it
        upscale_folder(str(src), str(tmp_path / "dn"), model="sr-cartoon-x4", device="cpu", tile=32, denoise=0.5)


def test_the_sweep_removes_only_stopped_workers_temporaries(tmp_path):
    """A worker killed mid-write leaves its atomic write's temporary file (.srf-PID-*.tmp, named by
    its process id); the sweep removes those of the stopped workers and nothing a live writer holds."""
    from sr_filter import atomic
    from sr_filter.cluster import storage

    dead, live = 4_000_001, os.getpid()
    tag = atomic.HOST_TAG
    # what a worker writes (first: making it sweeps this machine's dead writers' files by itself)
    assert atomic.temp_beside(tmp_path / "c.png").name.startswith(atomic.temp_prefix() + tag)
    (tmp_path / f"{atomic.temp_prefix(dead)}{tag}-abc.tmp").write_bytes(b"partial")
    (tmp_path / f"{atomic.temp_prefix(live)}{tag}-def.tmp").write_bytes(b"being written")
    (tmp_path / f"{atomic.temp_prefix(dead)}0f0f0f-ghi.tmp").write_bytes(b"another machine's live writer, same id")
    (tmp_path / ".a.png.0123.tmp").write_bytes(b"object-store style")
    (tmp_path / "b.png").write_bytes(b"finished")
    removed = storage.sweep_temporaries([str(tmp_path / "a.png")], [(dead, tag)])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert removed == 2 and f"{atomic.temp_prefix(dead)}{tag}-abc.tmp" not in left and ".a.png.0123.tmp" not in left
    assert f"{atomic.temp_prefix(live)}{tag}-def.tmp" in left and "b.png" in left
    assert f"{atomic.temp_prefix(dead)}0f0f0f-ghi.tmp" in left  # (it had been removed: the id alone was matched)


def _driver_at_work(tmp_path: Path, seed: int, *options: str) -> tuple[subprocess.Popen, Path]:
    """A CLI cluster job over 24 images of 160x160, in its own process group, once its first
    output is written; and its output folder."""
    big = tmp_path / "in"
    big.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(big / f"f{i:02d}.png")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", str(big), "-o", str(out), *MODEL, *options],
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(out.glob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, out


def test_sigterm_stops_the_driver_as_on_one_machine_and_a_rerun_finishes(cluster, tmp_path):
    """Ray's own SIGTERM handler would end the driver without its clean-up (exit 15, no line)."""
    proc, out = _driver_at_work(tmp_path, 2, "--cluster", cluster)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    assert all(p.suffix == ".png" for p in out.iterdir())  # no temporary file left


def test_sigterm_to_the_whole_process_group_is_one_line(tmp_path):
    """timeout(1), systemd and a closed terminal signal the whole process group, a local cluster's
    Ray processes too: the signal came out of Ray's wait wrapped in a SystemError (a traceback,
    exit 1)."""
    proc, _ = _driver_at_work(tmp_path, 3, "--tta", "--cluster", "local")
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "sr-filter: error: stopped by SIGTERM; unfinished outputs were removed", err


def _folder() -> str:
    return os.getcwd()


def test_a_relative_weights_file_suffix_and_a_file_name_as_output(cluster, collection, tmp_path, monkeypatch, cli):
    """The workers run in another folder: a weights file named relative to this one must still be
    found. Options the cluster cannot honour are refused instead of ignored. (The command runs in
    this process, in tmp_path; the workers are the module cluster's, in their own folder.)"""
    src, _ = collection
    (tmp_path / "my.pth").write_bytes((ROOT / "sr_filter" / "builtin" / "sr-cartoon-x4.pth").read_bytes())
    monkeypatch.chdir(tmp_path)

    def run(*args):
        done = cli(*args)
        return subprocess.CompletedProcess(args, done.returncode, done.stdout.decode(), done.stderr.decode())

    done = run(src, "-o", "out", "-m", "my.pth", "-t", "32", "-d", "cpu", "--cluster", cluster)
    assert done.returncode == 0, done.stderr
    assert os.getcwd() != ray.get(ray.remote(_folder).remote())  # the point: the workers' folder is another
    for args, message in ((("--suffix", "_big"), "leave out --suffix"), (("-o", "one.png"), "names a file; give -o FOLDER/")):
        refused = run(src, *(args if args[0] == "-o" else ("-o", "out2", *args)), "-m", "my.pth", "--cluster", cluster)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert not (tmp_path / "one.png").exists() and not (tmp_path / "out2").exists()


def test_two_inputs_for_one_output_are_a_usage_error_worded_as_on_one_machine(tmp_path, monkeypatch, cli):
    """Two inputs mapping to one output name exit 2 on one machine (a usage error) but had exited 1
    with --cluster, their names absolute where one machine names them as given; a pattern that
    finds nothing was worded differently too. (The command's own main, in this process, in tmp_path.)"""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / folder / "x.png")
    monkeypatch.chdir(tmp_path)

    def _run(*args):
        done = cli(*args[2:])  # (without "-m sr_filter")
        return subprocess.CompletedProcess(args, done.returncode, done.stdout.decode(), done.stderr.decode())

    args = ["-m", "sr_filter", "a/x.png", "b/x.png", "-o", "out", *MODEL]
    here, there = _run(*args), _run(*args, "--cluster", "auto")
    said = "sr-filter: error: a/x.png and b/x.png would both be written to out/x.png\n"
    assert (here.returncode, here.stderr) == (there.returncode, there.stderr) == (2, said), (here.stderr, there.stderr)
    assert not (tmp_path / "out").exists()
    for pattern in ("a/*.gif", "none/*.png"):  # a pattern that finds nothing: "no image files (apng, ...) in a/*.gif" had been said
        args = ["-m", "sr_filter", pattern, "-o", "out", *MODEL]
        here, there = _run(*args), _run(*args, "--cluster", "auto")
        said = f"sr-filter: error: no files match {pattern}\n"
        assert (here.returncode, here.stderr) == (there.returncode, there.stderr) == (1, said), (here.stderr, there.stderr)


def test_inputs_are_listed_as_one_machine_names_them(tmp_path):
    """A folder whose name holds brackets is that folder, not a pattern (it found nothing); an
    output folder above the input one takes all of it (it found nothing); the input folder as
    the output, or a file written over itself, is refused (it was skipped as if finished)."""
    src = tmp_path / "shots [2024]"
    (src / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / name)

    def pairs(inputs, output, fmt=None):
        return [(os.path.relpath(t.source, tmp_path), os.path.relpath(t.target, tmp_path))
                for t in storage.list_tasks([str(i) for i in inputs], str(output), fmt)]

    assert pairs([src], tmp_path / "out") == [("shots [2024]/a.png", "out/a.png"), ("shots [2024]/sub/b.png", "out/sub/b.png")]
    assert pairs([src / "a.png"], tmp_path / "out") == [("shots [2024]/a.png", "out/a.png")]
    assert pairs([src / "sub", src / "sub" / "b.png"], tmp_path / "out") == [("shots [2024]/sub/b.png", "out/b.png")]  # named twice
    assert pairs([src], tmp_path) == [("shots [2024]/a.png", "a.png"), ("shots [2024]/sub/b.png", "sub/b.png")]
    assert pairs([src / "sub"], src) == [("shots [2024]/sub/b.png", "shots [2024]/b.png")]
    assert pairs([src / "a.png"], src, "webp") == [("shots [2024]/a.png", "shots [2024]/a.webp")]
    (src / "out").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / "out" / "a.png")  # an earlier run's output
    assert pairs([src], src / "out") == [("shots [2024]/a.png", "shots [2024]/out/a.png"),
                                         ("shots [2024]/sub/b.png", "shots [2024]/out/sub/b.png")]
    with pytest.raises(storage.ImageFormatError, match="both the input and the output folder"):
        pairs([src], src)
    (tmp_path / "link").symlink_to(src)  # the input folder by another name: its files counted as done
    with pytest.raises(storage.ImageFormatError, match="both the input and the output folder"):
        pairs([src], tmp_path / "link")
    with pytest.raises(storage.ImageFormatError, match="would be written over itself"):
        pairs([src / "a.png"], tmp_path / "link")
    (tmp_path / "link").unlink()
    with pytest.raises(storage.ImageFormatError, match="would be written over itself"):
        pairs([src / "a.png"], src)
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(plain / "c.png")
    assert pairs([str(plain) + "/[c]*.png"], tmp_path / "out") == [("plain/c.png", "out/c.png")]
    with pytest.raises(storage.ImageFormatError, match="would be written over itself"):
        pairs([str(plain) + "/*.png"], plain)
    # `**/` stands for no folder too, as on one machine: the pictures directly in the folder had
    # been left out without a word
    (plain / "sub").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(plain / "sub" / "d.png")
    assert pairs([str(plain) + "/**/*.png"], tmp_path / "out") == [("plain/c.png", "out/c.png"), ("plain/sub/d.png", "out/sub/d.png")]


def test_uris_keep_encoded_names_hosts_and_options(tmp_path):
    """A file:// URI names its files percent-encoded (``my%20shots``): the folder was found, but
    every task's URI was rebuilt with the raw name, which pyarrow refused (a space) or cut at '#';
    an s3:// output with ``?endpoint_override=`` lost the option in every task's URI."""
    src = tmp_path / "my shots"
    src.mkdir()
    Image.fromarray(np.full((4, 4, 3), 7, np.uint8)).save(src / "take #1 100%.png")
    out = tmp_path / "out dir"
    tasks = storage.list_tasks([(src.as_uri())], out.as_uri())
    assert [(t.source, t.target) for t in tasks] == [((src / "take #1 100%.png").as_uri(), (out / "take #1 100%.png").as_uri())]
    data = storage.read_bytes(tasks[0].source)
    storage.write_once(data, tasks[0].target)
    assert (out / "take #1 100%.png").read_bytes() == (src / "take #1 100%.png").read_bytes()
    assert storage.finished(tasks, out.as_uri()) == {tasks[0].target}
    assert storage.local_path("file://localhost/a%20b/c.png") == "/a b/c.png"
    options = "?endpoint_override=127.0.0.1:9000&scheme=http"
    assert storage._relocate("s3://bkt/in" + options, "bkt/in/a b.png") == "s3://bkt/in/a%20b.png" + options
    assert storage._join("s3://bkt/out/" + options, "sub/a b.png") == "s3://bkt/out/sub/a%20b.png" + options
    assert storage._relocate("hdfs://nn:8020/in", "/in/a.png") == "hdfs://nn:8020/in/a.png"


@pytest.mark.parametrize("bad", [{"workers": 0}, {"workers": "2"}, {"cpus_per_worker": 0}, {"cpus_per_worker": 1.5},
                                 {"num_cpus": 0}, {"num_cpus": True}, {"on_event": "print"}, {"on_plan": 3}, {"tta": "no"},
                                 {"scale": "x"}, {"scale": 0}, {"address": 6379}])
def test_job_arguments_are_checked_before_any_cluster(tmp_path, collection, bad):
    """Said in one line before the address is even tried (127.0.0.1:1 would refuse)."""
    from sr_filter.cluster import upscale_video
    from sr_filter.errors import SrFilterError

    src, _ = collection
    name = next(iter(bad))
    settings = {"model": "sr-cartoon-x4", "address": "127.0.0.1:1", **bad}
    with pytest.raises(SrFilterError, match=f"^(the )?{name} must be"):  # the scale in one machine's words
        upscale_folder(str(src), str(tmp_path / "out"), **settings)
    with pytest.raises(SrFilterError, match=f"^(the )?{name} must be"):
        upscale_video(str(tmp_path / "any.mkv"), str(tmp_path / "out.mkv"), **settings)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad, message", [
    ({"fmt": "xyz"}, "unknown format 'xyz'; use one of "),
    ({"fmt": 5}, "fmt must be a format name such as 'png' (or None), not 5"),  # had been AttributeError
    ({"scale": 100}, "the scale must be greater than 0 and at most 16, not 100"),
    ({"scale": float("inf")}, "the scale must be greater than 0 and at most 16, not inf"),
    ({"scale": 2, "size": (100, None)}, "give either scale or width/height, not both"),
    ({"size": (0, None)}, "width must be a whole number from 1 to 1,000,000"),
    ({"quality": 0}, "quality must be a whole number from 1 to 100"),
    ({"dst": ""}, "dst holds an empty name (''): name the output folder"),
    ({"src": ""}, "src holds an empty name (''): name a folder, a file or a pattern"),
    ({"src": ["in", ""]}, "src holds an empty name"),
])
def test_folder_jobs_take_one_machines_checks_before_any_work(tmp_path, monkeypatch, bad, message):
    """Each of these had reached the workers, where every file failed and an empty output folder
    was left (or had been dropped without a word: a scale beside a size; or, for an empty name,
    taken the current folder as input or output); one machine refuses them at once, in these words."""
    from sr_filter.errors import SrFilterError

    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a.png")
    monkeypatch.chdir(tmp_path)  # an empty name is the current folder
    arguments = {"src": "in", "dst": "out", "model": "sr-cartoon-x4", "address": "127.0.0.1:1", **bad}
    with pytest.raises(SrFilterError) as raised:
        upscale_folder(**arguments)
    assert str(raised.value).startswith(message) and type(raised.value).__module__ == "sr_filter.errors", raised.value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_a_scale_out_of_range_is_refused_before_a_video_job(tmp_path):
    """Every segment had failed and the segment folder with its job.json was left behind."""
    from sr_filter.cluster import upscale_video
    from sr_filter.errors import SrFilterError

    with pytest.raises(SrFilterError, match="^the scale must be greater than 0 and at most 16, not 100$"):
        upscale_video(tmp_path / "clip.mkv", tmp_path / "out.mkv", model="sr-cartoon-x4", scale=100, address="127.0.0.1:1")
    assert list(tmp_path.iterdir()) == []


def test_frames_is_refused_with_a_folder_as_with_a_video(tmp_path, capsys, monkeypatch):
    """A folder's animations had been upscaled whole (4 frames where one machine writes 2), exit 0."""
    from sr_filter import cli

    (tmp_path / "in").mkdir()
    frames = [Image.new("RGB", (8, 8), (60 * i, 0, 0)) for i in range(4)]
    frames[0].save(tmp_path / "in" / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "still.png")
    monkeypatch.setattr(cli, "_install_signal_handlers", lambda: None)
    with pytest.raises(SystemExit) as ended:
        cli.main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--frames", "0:2", *MODEL, "--cluster", "127.0.0.1:1"])
    assert ended.value.code == 2
    assert capsys.readouterr().err.strip() == "sr-filter: error: --cluster upscales whole videos and animations; leave out --frames"
    assert not (tmp_path / "out").exists()


def test_codec_and_crf_are_refused_with_a_folder_of_pictures(tmp_path, capsys, monkeypatch):
    """One machine refuses them for pictures; the cluster had upscaled the folder with neither, exit 0."""
    from sr_filter import cli

    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "still.png")
    monkeypatch.setattr(cli, "_install_signal_handlers", lambda: None)
    for flags, said in ((["--crf", "20"], "--crf applies"), (["--codec", "vp9", "--crf", "20"], "--codec, --crf apply")):
        with pytest.raises(SystemExit) as ended:
            cli.main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), *flags, *MODEL, "--cluster", "127.0.0.1:1"])
        assert ended.value.code == 2
        assert capsys.readouterr().err.strip() == (f"sr-filter: error: {said} to videos; a --cluster job of folders, files or "
                                                   "patterns upscales their pictures only (a video is given alone: sr-filter "
                                                   "VIDEO -o OUT.mkv --cluster ...)")
    assert not (tmp_path / "out").exists()


def test_a_job_that_writes_nothing_leaves_no_output_folder(cluster, tmp_path):
    """Only damaged images: every file fails, and the output folders the job made are removed, as
    one machine removes them (an empty out/ and out/deep/ had been left); an existing one stays."""
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.jpg"):
        (tmp_path / "in" / name).write_bytes(b"\x89PNG\r\n\x1a\n not really" if name.endswith("png") else b"\xff\xd8 not really")
    summary = upscale_folder(str(tmp_path / "in"), str(tmp_path / "out" / "deep"), **SETTINGS, address=cluster)
    assert summary.done == 0 and len(summary.failed) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    (tmp_path / "kept").mkdir()
    summary = upscale_folder(str(tmp_path / "in"), str(tmp_path / "kept"), **SETTINGS, address=cluster)
    assert len(summary.failed) == 2 and (tmp_path / "kept").is_dir()


def test_a_folder_where_an_output_goes_fails_that_file(cluster, collection, tmp_path):
    """A folder named as a file's output (out/rgb0.png/) fails that file with one line, as one
    machine does ("is a folder"): it had been taken for an earlier run's output, the file counted
    as skipped, and the job ended with 0 without writing it."""
    src, _ = collection
    (tmp_path / "out" / "rgb0.png").mkdir(parents=True)
    summary = upscale_folder([str(src / "rgb0.png"), str(src / "rgb1.png")], str(tmp_path / "out"), **SETTINGS,
                             address=cluster)
    assert summary.done == 1 and summary.skipped == 0
    assert [source for source, _ in summary.failed] == [str(src / "rgb0.png")]
    assert "rgb0.png is a folder, where this file's output goes" in summary.failed[0][1]
    assert (tmp_path / "out" / "rgb0.png").is_dir() and (tmp_path / "out" / "rgb1.png").is_file()


def test_a_failed_files_lines_name_it_as_one_machine_does(cluster, tmp_path, monkeypatch):
    """The error and "failed:" lines name a file as given (in/broken.png), as the progress lines and
    one machine do: they had shown the workers' absolute paths."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "good.png")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(_cli(), ["in", "-o", "out", *MODEL, "--cluster", "auto"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "sr-filter: error: in/broken.png is not a readable image (unknown or damaged format)" in lines, lines
    assert "sr-filter: failed: in/broken.png" in lines and str(tmp_path) not in result.output


def test_an_output_that_is_a_file_is_said_as_on_one_machine(tmp_path, monkeypatch):
    """-o naming an existing file: one machine's usage line (exit 2), and the API's one line; it had
    been "cannot list OUT: [Errno 20] Cannot list directory '...'. Detail: [errno 20] Not a directory"."""
    from sr_filter.errors import ImageFormatError

    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a.png")
    (tmp_path / "taken").write_text("notes")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(_cli(), ["in", "-o", "taken", *MODEL, "--cluster", "auto"])
    assert result.exit_code == 2 and result.output.splitlines()[-1].endswith(" taken exists and is not a folder")
    for dst in ("taken", (tmp_path / "taken").as_uri()):
        with pytest.raises(ImageFormatError, match=r"taken exists and is not a folder; choose another output folder$"):
            upscale_folder("in", dst, **SETTINGS, address="local")
    assert (tmp_path / "taken").read_text() == "notes"


def test_a_port_where_another_service_listens_is_one_line_at_once(cluster):
    """Ray retried a web server's port, or one that accepts and says nothing, for minutes with a
    warning every few seconds; the probe asks for the HTTP/2 answer of the head's gRPC servers."""
    import http.server
    import socket
    import threading

    from sr_filter.cluster.connect import probe
    from sr_filter.errors import ClusterError

    probe(cluster)  # the real head answers
    from sr_filter.cluster.connect import resolve

    assert resolve(cluster + "/") == cluster  # a trailing slash had passed the probe and then failed in Ray's words
    with pytest.raises(ClusterError, match=r"starts with http:// \(a dashboard's address\?\); join with HOST:PORT"):
        probe("http://" + cluster)  # Ray's own line about it had been cut off after "To fix this, either:"
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the backlog), never answers
    try:
        for port in (web.server_address[1], silent.getsockname()[1]):
            started = time.monotonic()
            with pytest.raises(ClusterError, match=rf"^127.0.0.1:{port} answers, but not as a Ray cluster; check the port"):
                probe(f"127.0.0.1:{port}", timeout=1.0)
            assert time.monotonic() - started < 10
    finally:
        web.shutdown()
        silent.close()


def test_a_head_that_wants_a_token_the_driver_lacks_is_one_line_at_once(cluster, tmp_path):
    """`ray start --head` turns token authentication on where ~/.ray/auth_token exists, and a driver
    given an address sends no token unless RAY_AUTH_MODE=token: Ray had retried for 20 s, a warning
    a second, then said "Failed to connect to Ray cluster at ..." without a word of the token."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        pytest.skip("the test cluster runs without token authentication")
    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a.png")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    for extra, said in (({}, "got none (RAY_AUTH_MODE is not 'token')"),
                        ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 32}, "rejected this command's token")):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "sr_filter", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *MODEL,
                               "--cluster", cluster], capture_output=True, text=True, timeout=120,
                              env={**env, "PYTHONPATH": str(ROOT), **extra})
        assert done.returncode == 1, done.stderr[-2000:]
        assert done.stderr.splitlines()[-1] == (f"sr-filter: error: the Ray cluster at {cluster} wants token authentication and "
                                                f"{said}; set RAY_AUTH_MODE=token with the cluster's token in ~/.ray/auth_token, "
                                                "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN (Ray's token authentication documentation)")
        assert time.monotonic() - started < 15 and not (tmp_path / "out").exists()


HEAD_LOST = """
import os, sys, time
import psutil
from PIL import Image
from sr_filter.cluster import scheduler, upscale_folder
from sr_filter.errors import ClusterError

if hasattr(scheduler, "_Head"):  # (10 s by default: a remote head's short silence is not a loss)
    scheduler._Head.GRACE_S = 1.0
root = sys.argv[1]
os.makedirs(f"{root}/in")
for i in range(8):
    Image.new("RGB", (16, 16), (30 * i, 0, 0)).save(f"{root}/in/{i}.png")
killed = []

def kill_cluster(event):  # as `ray stop --force` does: the head, the raylet and the workers
    if event.kind == "done" and not killed:
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
                killed.append(child.pid)
            except psutil.Error:
                pass

try:
    upscale_folder(f"{root}/in", f"{root}/out", model="sr-cartoon-x4", tile=32, device="cpu", address="local", num_cpus=1,
                   on_event=kill_cluster)
except ClusterError as exc:
    print(f"ERROR {exc}")
"""


def test_a_head_that_stops_mid_job_is_one_line_with_what_was_finished(tmp_path):
    """`ray stop` (or a lost head node) during a job: a replacement worker's start had waited for
    ever, the rest 60 s, until Ray ended the program with its own line (exit 1, no summary)."""
    pytest.importorskip("psutil")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", HEAD_LOST, str(tmp_path)], capture_output=True, text=True, timeout=50,
                          env={**env, "PYTHONPATH": str(ROOT), "SR_FILTER_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    finished = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert done.stdout.strip() == (f"ERROR the Ray cluster's head stopped answering (`ray stop`, or its node was lost) after "
                                   f"{len(finished)} of 8 task(s) were finished; nothing was left half-written: run again to resume")
    assert 1 <= len(finished) < 8 and all(name.endswith(".png") and not name.startswith(".") for name in finished)


LOST = """
import logging, os, signal, sys, threading, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="LOG %(name)s %(message)s")
seen = threading.Event()

class Seen(logging.Handler):
    def emit(self, record):
        if "A worker died" in record.getMessage():
            seen.set()

logging.getLogger().addHandler(Seen())
from sr_filter.cluster.connect import connect, disconnect
import ray
started = connect(sys.argv[1], num_cpus=1)

@ray.remote
class Sleeper:
    def pid(self):
        return os.getpid()
    def nap(self):
        time.sleep(30)

actor = Sleeper.remote()
pid = ray.get(actor.pid.remote())
ref = actor.nap.remote()
time.sleep(1)
os.kill(pid, signal.SIGKILL)
try:
    ray.get(ref, timeout=20)
except Exception as exc:
    print("task failed:", type(exc).__name__, file=sys.stderr)
seen.wait(20)  # Ray's paragraph arrives a moment after the failure
disconnect(started)
from ray._private import worker
print("restored:", not hasattr(worker.print_to_stdstream, "sr_filter"), file=sys.stderr)
"""


def test_a_lost_workers_paragraph_goes_to_the_log_not_standard_output(cluster):
    """Ray's driver printed "(raylet) A worker died or was killed ..." (a paragraph) on standard
    output; the progress lines already say a worker was lost, so the paragraph goes to the log
    (-v), and Ray's own printing is back once the connection is closed."""
    done = _run("-c", LOST, cluster)  # a driver joining the module's cluster
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == ""
    assert "LOG sr_filter.cluster.connect A worker died or was killed" in done.stderr
    assert "task failed: ActorDiedError" in done.stderr and "restored: True" in done.stderr



JOB_ENV = """
import os, sys
from sr_filter.cluster.connect import connect, disconnect
import ray
started = connect(sys.argv[1], num_cpus=1)

@ray.remote
def settings():
    return os.environ.get("SR_FILTER_WEIGHTS_URL"), os.environ.get("SR_FILTER_DOWNLOAD_RETRIES")

print(ray.get(settings.remote()))
disconnect(started)
"""


def test_a_joined_clusters_workers_take_the_commands_download_settings(cluster):
    """The workers of a cluster started elsewhere run with their node's environment: given
    SR_FILTER_WEIGHTS_URL, the command's downloads had gone to the official address and failed,
    telling the user to set that very variable."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), SR_FILTER_DOWNLOAD_RETRIES="2", SR_FILTER_WEIGHTS_URL="http://127.0.0.1:9/mirror/")
    done = subprocess.run([sys.executable, "-c", JOB_ENV, cluster], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "('http://127.0.0.1:9/mirror/', '2')", done.stdout


@pytest.mark.parametrize("bad", [{"size": (50,)}, {"size": 50}, {"quality": 500}, {"src": None}, {"src": []}, {"dst": 123}])
def test_folder_job_settings_and_paths_are_checked_before_any_cluster(tmp_path, collection, bad):
    """These reached the workers, where every file failed ("tuple index out of range"), or were
    raw TypeErrors; a pathlib.Path is taken as a path."""
    from sr_filter.errors import SrFilterError

    src, _ = collection
    arguments = {"src": str(src), "dst": str(tmp_path / "out"), **bad}
    with pytest.raises(SrFilterError, match=f"^{next(iter(bad))} must be"):
        upscale_folder(model="sr-cartoon-x4", address="127.0.0.1:1", **arguments)
    assert list(tmp_path.iterdir()) == []
    from sr_filter.cluster import plan

    todo, skipped = plan(src, tmp_path / "out")  # Path objects, as upscale_video takes them
    assert len(todo) == 9 and skipped == 0


def test_progress_lines_rate_leaves_out_start_up(monkeypatch, capsys, tmp_path):
    """The rate and ETA count from when the first finished task began, not from the command's start
    (the cluster's and workers' start-up had made the first ETA far too long), and the first line,
    one task's time alone, gives none: it cannot tell how many run at once."""
    from sr_filter.cluster import command
    from sr_filter.cluster.scheduler import Event
    from sr_filter.cluster.storage import Task

    clock = [100.0]
    monkeypatch.setattr(command.time, "monotonic", lambda: clock[0])
    report = command._Report(quiet=False, unit="files")
    report.on_plan(5, 0)
    clock[0] = 160.0  # a minute of start-up, then tasks of 2 s on two workers
    for name, now in (("a", 162.0), ("b", 162.0), ("c", 164.0)):
        clock[0] = now
        report.on_event(Event("done", Task(f"in/{name}.png", f"out/{name}.png"), "", 2.0, 0))
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["sr-filter: [1/5] in/a.png -> out/a.png (2.0 s)",
                     "sr-filter: [2/5] in/b.png -> out/b.png (2.0 s; 1.00 files/s, ETA 3 s)",
                     "sr-filter: [3/5] in/c.png -> out/c.png (2.0 s; 0.75 files/s, ETA 3 s)"]
    # the workers' absolute paths are shown as the plain command shows them: from the current folder
    monkeypatch.chdir(tmp_path)
    report.on_event(Event("done", Task(str(tmp_path / "in" / "g.png"), str(tmp_path / "out" / "g.png")), "", 2.0, 0))
    report.on_event(Event("done", Task("s3://bucket/in/h.png", "s3://bucket/out/h.png"), "", 2.0, 0))
    assert [line.split(" (")[0] for line in capsys.readouterr().err.splitlines()] == [
        "sr-filter: [4/5] in/g.png -> out/g.png", "sr-filter: [5/5] s3://bucket/in/h.png -> s3://bucket/out/h.png"]
    # a file another job wrote since the listing is said as skipped, not as upscaled
    skipping = command._Report(quiet=False, unit="files")
    skipping.on_plan(1, 0)
    skipping.on_event(Event("skipped", Task("in/s.png", "out/s.png"), "", 0.0, 0))
    assert capsys.readouterr().err.splitlines() == [
        "sr-filter: [1/1] in/s.png: skipping existing output out/s.png"]
    # a lost worker is one line, not one per file it held (two had been said for one kill)
    for name, worker in (("d", 1), ("e", 1), ("f", 2)):
        report.on_event(Event("retry", Task(f"in/{name}.png", f"out/{name}.png"), "RayActorError", worker=worker))
    assert capsys.readouterr().err.splitlines() == [
        "sr-filter: a worker was lost; in/d.png and any other file it held go to another",
        "sr-filter: a worker was lost; in/f.png and any other file it held go to another"]

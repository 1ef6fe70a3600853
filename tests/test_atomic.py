"""atomic.py on real files, FIFOs, sockets and long names: complete or absent, never a stray file."""

from __future__ import annotations

import os
import subprocess
import textwrap
import sys
import time
import socket
import stat
import threading
from pathlib import Path

import pytest

from sr_filter.atomic import check_target, replacing, write_atomic
from sr_filter.errors import ImageFormatError, OutputExistsError

from .conftest import ROOT


def test_write_atomic_never_clobbers_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.png"
    write_atomic(b"first", target)
    with pytest.raises(OutputExistsError) as refused:
        write_atomic(b"second", target)
    assert "--" not in str(refused.value)  # a library message names no CLI flag
    write_atomic(b"second", target, overwrite=True)
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_names_up_to_the_file_system_limit_are_written(tmp_path):
    """The temporary name is short, so an output name of 242-255 bytes still works."""
    for length in (242, 255):
        target = tmp_path / ("a" * (length - 4) + ".png")
        assert check_target(target, overwrite=False) is False
        write_atomic(b"data", target)
        assert target.read_bytes() == b"data"
    too_long = tmp_path / ("b" * 252 + ".png")
    with pytest.raises(ImageFormatError, match="256 bytes long; this file system allows at most 255"):
        check_target(too_long, overwrite=False)


def test_fifo_and_links_to_devices_are_written_through_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    assert check_target(fifo, overwrite=False) is True  # no "exists" refusal for a stream
    write_atomic(b"through the pipe", fifo, overwrite=True)
    reader.join(10)
    assert received == [b"through the pipe"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    assert check_target(link, overwrite=False) is True
    write_atomic(b"discarded", link, overwrite=True)
    assert link.is_symlink() and os.readlink(link) == os.devnull
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "pipe"]


def test_other_special_files_and_folders_are_refused(tmp_path):
    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        with pytest.raises(ImageFormatError, match="not a regular file") as refused:
            check_target(sock_path, overwrite=True)
        assert "overwrit" not in str(refused.value)
    finally:
        server.close()
    with pytest.raises(ImageFormatError, match="is a folder"):
        check_target(tmp_path, overwrite=True)
    with pytest.raises(ImageFormatError, match="does not exist"):
        check_target(tmp_path / "nowhere" / "x.png", overwrite=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only folder")
def test_unwritable_folder_is_refused_before_the_work(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ImageFormatError, match="cannot write to output folder"):
            check_target(folder / "x.png", overwrite=False)
    finally:
        folder.chmod(0o755)


def test_replacing_removes_the_temporary_file_on_any_exception(tmp_path):
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"old")
    for error in (RuntimeError, KeyboardInterrupt, SystemExit):
        with pytest.raises(error), replacing(target) as tmp:
            tmp.write_bytes(b"partial")
            raise error()
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
    with replacing(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_video_atomic_file_is_the_same_writer(tmp_path):
    """video.job.atomic_file (frame streams to files) goes through atomic.open_atomic: short
    temporary names, devices and FIFOs written through, existing files refused, nothing partial."""
    from sr_filter.errors import VideoFormatError
    from sr_filter.video.job import atomic_file

    long_name = tmp_path / ("v" * 251 + ".y4m")  # 255 bytes: no room for a temporary name built from it
    with atomic_file(long_name) as out:
        out.write(b"YUV4MPEG2 ")
    assert long_name.read_bytes() == b"YUV4MPEG2 "
    with pytest.raises(OutputExistsError, match="allow overwriting"):
        atomic_file(long_name).__enter__()
    with pytest.raises(RuntimeError), atomic_file(long_name, overwrite=True) as out:
        out.write(b"partial")
        raise RuntimeError("stopped")
    assert long_name.read_bytes() == b"YUV4MPEG2 "
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    with atomic_file(link) as out:  # no "exists" refusal, and the link is not replaced
        out.write(b"discarded")
    assert link.is_symlink() and os.readlink(link) == os.devnull
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([long_name.name, "null"])
    with pytest.raises(VideoFormatError, match="does not exist"), atomic_file(tmp_path / "nowhere" / "a.y4m"):
        pass


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, a folder no one can create files in")
def test_check_target_and_replacing_word_an_unwritable_folder_alike():
    messages = []
    for attempt in (lambda: check_target("/proc/x.png", overwrite=False), lambda: replacing("/proc/x.png").__enter__()):
        with pytest.raises(ImageFormatError) as info:
            attempt()
        messages.append(str(info.value))
    assert messages[0] == messages[1] and messages[0].startswith("cannot write to output folder /proc: ")


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    """Overwriting a private file (0600) must not make it readable by everyone."""
    target = tmp_path / "private.png"
    target.write_bytes(b"mine")
    target.chmod(0o600)
    write_atomic(b"upscaled", target, overwrite=True)
    assert target.read_bytes() == b"upscaled" and stat.S_IMODE(target.stat().st_mode) == 0o600
    target.chmod(0o640)
    with replacing(target) as tmp:
        tmp.write_bytes(b"again")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    if os.geteuid() == 0:  # root replacing a user's file leaves it the user's (it had become root's), as cp does
        os.chown(target, 65534, 65534)
        write_atomic(b"third", target, overwrite=True)
        info = target.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)


def test_a_link_or_fifo_put_in_the_temporary_files_place_is_not_followed(tmp_path):
    """Whoever may write to the output folder can swap the temporary file for a link while a long
    encode runs; its permissions (and, for root, owner) had been set by name, so a root run of
    --overwrite handed the link's target (any file) to the folder's owner with the old output's mode."""
    from sr_filter.atomic import publish

    victim, out = tmp_path / "victim", tmp_path / "d" / "out.png"
    victim.write_bytes(b"secret")
    victim.chmod(0o600)
    out.parent.mkdir()
    out.write_bytes(b"old output")
    out.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(out, 65534, 65534)
    link = out.parent / ".srf-1-x-abc.tmp"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="replaced by a link"):
        publish(link, out, overwrite=True)
    info = victim.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (os.geteuid(), os.getegid(), 0o600)
    assert out.read_bytes() == b"old output" and not out.is_symlink()
    link.unlink()
    os.mkfifo(link)  # opened for reading by name, a FIFO had made the run wait forever
    with pytest.raises(OSError, match="not a file"):
        publish(link, out, overwrite=True)
    assert out.read_bytes() == b"old output"


def test_a_killed_writers_temporary_files_are_removed_by_the_next_write_there(tmp_path):
    """SIGKILL (or a power cut) leaves a hidden .tmp / .part that no cleanup handler could remove;
    the next write into that folder removes those of this machine's dead processes, and never a
    live writer's or another machine's (a shared folder)."""
    from sr_filter import atomic

    dead, live = 4_000_001, os.getpid()
    mine_dead = [f"{atomic.temp_prefix(dead)}{atomic.HOST_TAG}-a1b2c3d4.tmp", f"{atomic.temp_prefix(dead)}{atomic.HOST_TAG}-e5f6.part"]
    kept = [f"{atomic.temp_prefix(live)}{atomic.HOST_TAG}-00000000.tmp",  # a live writer
            f"{atomic.temp_prefix(dead)}ffffff-11111111.part",  # another machine's
            ".srf-notes.txt", "photo.png"]
    if atomic.HOST_TAG == "ffffff":
        kept.remove(f"{atomic.temp_prefix(dead)}ffffff-11111111.part")
    for name in mine_dead + kept:
        (tmp_path / name).write_bytes(b"x")
    atomic.write_atomic(b"new", tmp_path / "out.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["out.png"])


def test_an_output_folder_that_is_a_link_to_nothing_is_said_to_be_one(tmp_path):
    """-o dang/ where dang links to a missing folder said "cannot create output folder dang: File exists"."""
    from sr_filter import atomic
    from sr_filter.errors import ImageFormatError

    (tmp_path / "dang").symlink_to("gone")
    with pytest.raises(ImageFormatError, match=r"output folder \S+dang is a link to the missing gone; make that folder "
                                               r"or choose another output path$"):
        atomic.prepare_target(tmp_path / "dang" / "out.png", overwrite=False)


def test_anyones_temporary_file_untouched_for_a_week_is_removed(tmp_path):
    """What a killed run left in a container since restarted stayed for good: its tag (machine name
    and process-id namespace) belongs to no running process, so it was never taken for dead. A
    temporary file of ours untouched for a week is a dead writer's whoever wrote it; a recent one
    of another tag, and files of names we never give, stay."""
    from sr_filter import atomic

    other = "ffffff" if atomic.HOST_TAG != "ffffff" else "eeeeee"
    week = time.time() - atomic.STALE_AFTER - 60
    old = [f".srf-77-{other}-a1b2c3d4.tmp", f".srf-78-{other}-e5f6.part",
           f".srf-{os.getpid()}-{atomic.HOST_TAG}-0000.tmp"]  # a running process id: a dead writer's, reused
    kept = {f".srf-79-{other}-11111111.tmp": time.time() - 3600,  # another writer's, an hour old: may be alive
            ".srf-notes.tmp": week, "photo.png": week}
    for name in old:
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (week, week))
    (tmp_path / f".srf-80-{other}-folder.tmp").mkdir()  # a converted model's parts
    (tmp_path / f".srf-80-{other}-folder.tmp" / "model.bin").write_bytes(b"x")
    os.utime(tmp_path / f".srf-80-{other}-folder.tmp", (week, week))
    for name, when in kept.items():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (when, when))
    atomic.write_atomic(b"new", tmp_path / "out.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "out.png"])


def test_a_video_run_killed_with_sigkill_leaves_nothing_after_the_next_run(tmp_path):
    from .videos import make_clip

    clip = make_clip(tmp_path / "clip.mkv", frames=120, size=(64, 48), audio=0)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "sr_filter", str(clip), "-m", "sr-cartoon-x4", "-d", "cpu", "-q"]
    proc = subprocess.Popen([*command, "-o", str(out / "a.mkv")], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(p.suffix == ".part" for p in out.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    if not any(p.suffix == ".part" for p in out.iterdir()):
        pytest.skip("the run ended before its temporary file could be seen")
    result = subprocess.run([*command, "-o", str(out / "b.mkv"), "--frames", "0:2"], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(p.name for p in out.iterdir()) == ["b.mkv"]


def test_overwriting_through_a_symlink_keeps_the_link(tmp_path):
    """--overwrite onto a link replaced the link with a plain file and left its target as it was."""
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(real.name)
    write_atomic(b"new", link, overwrite=True)
    assert link.is_symlink() and real.read_bytes() == b"new"
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to("missing.png")
    write_atomic(b"fresh", dangling, overwrite=True)  # a link to nothing is replaced itself
    assert not dangling.is_symlink() and dangling.read_bytes() == b"fresh"


def test_a_folder_that_takes_no_new_files_is_not_called_missing():
    """/proc exists but refuses new files with ENOENT: "cannot write to output folder /proc: No such
    file or directory" had said the folder was not there."""
    from sr_filter.atomic import temp_beside
    from sr_filter.errors import ImageFormatError

    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    with pytest.raises(ImageFormatError, match=r"^cannot write to output folder /proc: it takes no new files$"):
        temp_beside("/proc/x.png")


def test_writers_in_another_process_id_namespace_have_their_own_tag():
    """A run in another container with the same host name (docker --network host) took a live
    writer's temporary file for a dead one's (its process id meant nothing there) and swept it:
    the writer's whole video encode failed. The tag now names the process-id namespace too."""
    import shutil

    from sr_filter import atomic

    from .conftest import ROOT

    if not os.path.exists("/proc/self/ns/pid") or shutil.which("unshare") is None:
        pytest.skip("no Linux process-id namespaces here")
    script = "import sr_filter.atomic as a; print(a.HOST_TAG)"
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        pytest.skip(f"cannot make a process-id namespace here ({done.stderr.strip()[-200:]})")
    same = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert same.stdout.strip() == atomic.HOST_TAG  # the same namespace: the same tag, run after run
    assert done.stdout.strip() != atomic.HOST_TAG and len(done.stdout.strip()) == 6


def test_overwrite_keeps_the_replaced_files_extended_attributes_and_acl(tmp_path):
    """--overwrite dropped the old output's ACL and extended attributes (a desktop's origin URL,
    its rating); with the mode copied without the ACL, its group, which had no access, could read it."""
    import struct

    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    try:
        os.setxattr(target, "user.xdg.origin.url", b"https://example.org/a.png")
        everyone = 0xFFFFFFFF  # user 1234 may read; the owning group nothing (mask r)
        entries = [(1, 6, everyone), (2, 4, 1234), (4, 0, everyone), (0x10, 4, everyone), (0x20, 0, everyone)]
        os.setxattr(target, "system.posix_acl_access", struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries))
    except OSError as exc:
        pytest.skip(f"extended attributes or ACLs are not kept on this file system ({exc.strerror})")
    acl = os.getxattr(target, "system.posix_acl_access")
    mode = stat.S_IMODE(os.stat(target).st_mode)
    write_atomic(b"new", target, overwrite=True)
    assert target.read_bytes() == b"new"
    assert os.getxattr(target, "user.xdg.origin.url") == b"https://example.org/a.png"
    assert os.getxattr(target, "system.posix_acl_access") == acl and stat.S_IMODE(os.stat(target).st_mode) == mode


def test_a_write_protected_output_is_not_replaced(tmp_path):
    """--overwrite replaced a file its owner had made read-only (0444) without a word, as a rename
    may; cp, ffmpeg -y and ImageMagick refuse. (Root may write anything: as cp does, it replaces.)
    Run as an unprivileged user where the tests run as root."""
    import shutil
    import tempfile

    script = textwrap.dedent("""
        import os, sys
        from sr_filter.atomic import check_target
        from sr_filter.errors import ImageFormatError
        target = os.path.join(sys.argv[1], "out.png")
        with open(target, "wb") as f:
            f.write(b"old")
        os.chmod(target, 0o444)
        try:
            check_target(target, overwrite=True)
        except ImageFormatError as exc:
            print(exc)
        theirs = os.path.join(sys.argv[1], "theirs.png")
        if os.path.exists(theirs):
            try:
                check_target(theirs, overwrite=True)
            except ImageFormatError as exc:
                print(exc)
    """)
    command = [sys.executable, "-c", script]
    folder = tmp_path
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root, and no setpriv to run as another user")
        folder = Path(tempfile.mkdtemp(dir="/tmp"))
        os.chmod(folder, 0o777)
        (folder / "theirs.png").write_bytes(b"root's")  # another user's file, 0644, in a folder open to all
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    try:
        done = subprocess.run([*command, str(folder)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode != 0 and "Permission denied" in done.stderr:
            pytest.skip(f"the unprivileged user cannot run the tests' Python here ({done.stderr.strip()[-200:]})")
        assert done.returncode == 0, done.stderr
        said = done.stdout.strip().splitlines()
        assert said[0].endswith("out.png is write-protected (mode 444); make it writable (chmod u+w) to replace it"), said
        if folder != tmp_path:  # as cp refuses it: not replaced, and not told to chmod
            assert said[1].endswith("theirs.png is another user's file, which you may not write; ask its owner, or "
                                    "choose another output name"), said
    finally:
        if folder != tmp_path:
            shutil.rmtree(folder, ignore_errors=True)


def test_a_new_output_takes_the_folders_default_acl_as_open_gives_it(tmp_path):
    """In a folder with a default ACL (user 1234 may read and write), a file made with open() lets
    user 1234 write; sr-filter's output had the umask narrow the inherited ACL mask to read only."""
    import struct

    folder = tmp_path / "shared"
    folder.mkdir()
    everyone = 0xFFFFFFFF
    entries = [(1, 7, everyone), (2, 6, 1234), (4, 5, everyone), (0x10, 7, everyone), (0x20, 5, everyone)]
    try:
        os.setxattr(folder, "system.posix_acl_default", struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries))
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs on this file system ({exc.strerror})")
    with open(folder / "by_open.png", "wb") as f:
        f.write(b"x")
    write_atomic(b"x", folder / "by_sr_filter.png")
    opened, ours = folder / "by_open.png", folder / "by_sr_filter.png"
    assert stat.S_IMODE(os.stat(ours).st_mode) == stat.S_IMODE(os.stat(opened).st_mode)
    assert os.getxattr(ours, "system.posix_acl_access") == os.getxattr(opened, "system.posix_acl_access")

"""Writing files so that no reader ever sees a partial one, and checking a target before the work.

A file is written under a short temporary name in its own folder (``.srf-PID-XXXXXXXX.tmp``, so a
target name of up to the file system's limit still has room for it), flushed, then renamed into
place. Without ``overwrite`` the final step is a hard link, which fails if the name appeared in the
meantime. Any exception, including KeyboardInterrupt and the CLI's SIGTERM/SIGHUP exception,
removes the temporary file. Character devices and FIFOs (``/dev/null``, a named pipe) are written
through, never replaced.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import errno
import hashlib
import os
import re
import shutil
import socket
import stat
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import OVERWRITE_ADVICE, ImageFormatError, OutputExistsError, OutputIsInputError, SrFilterError, first_line, shown_path
from .interrupts import interrupts_held
from .stdio import discard

TEMP_PREFIX = ".srf-"
TEMP_SUFFIX = ".tmp"


def prepare_target(path: str | Path, *, overwrite: bool) -> bool:
    """Before any work: make ``path``'s missing folders, then :func:`check_target` it (the command
    line's outputs and ``sr_filter.upscale_file``'s alike). In a :func:`new_folders` block, the
    folder counts as in use until the block ends, so another block's cleanup leaves it."""
    make_folder(Path(path).parent)
    return check_target(path, overwrite=overwrite)


def make_folder(folder: str | Path) -> None:
    """Make the output folder ``folder`` and its missing parents (a file there is left to
    :func:`check_target` to name), claimed by the current :func:`new_folders` block, which removes
    them again if nothing is written in them (``-o new_folder/`` for a video refused after it was
    made had left the folder behind)."""
    folder = Path(folder)
    block = _BLOCK.get()
    if folder.is_symlink() and not folder.exists():  # mkdir had said "File exists"
        raise ImageFormatError(f"output folder {folder} is a link to the missing {os.readlink(folder)}; "
                               "make that folder or choose another output path")
    # made and claimed at once: another call's cleanup cannot remove it between, and a Ctrl-C or
    # SIGTERM in the first moment of a run waits until the folders it made are on the list
    with interrupts_held(), _FOLDERS_LOCK:
        if not folder.is_dir() and not folder.exists():  # a file there: check_target says so
            missing = refuse_file_above(folder)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ImageFormatError(f"cannot create output folder {folder}: {exc.strerror}") from None
            if block is not None:
                block.made.extend(_key(p) for p in reversed(missing))
        if block is not None:
            key = _key(folder)
            block.uses.append(key)
            _IN_USE[key] += 1


def refuse_file_above(folder: Path) -> list[Path]:
    """A file where ``folder`` or one of its missing parents would be made is said as
    :func:`check_target` says a file in the output's folder's place (a.png/sub/x.png had been
    "cannot create output folder a.png/sub: Not a directory"). Returns the missing folders,
    ``folder`` first."""
    missing, above = [], folder
    while not above.exists() and above != above.parent:
        missing.append(above)
        above = above.parent
    if above.exists() and not above.is_dir():
        raise ImageFormatError(f"{above} is a file, not a folder; choose another output path")
    return missing


class _Block:
    """One :func:`new_folders` block's folders: those it made (outermost first) and those its outputs go to."""

    def __init__(self) -> None:
        self.made: list[Path] = []
        self.uses: list[Path] = []


_BLOCK: contextvars.ContextVar[_Block | None] = contextvars.ContextVar("sr_filter_folder_block", default=None)
_FOLDERS_LOCK = threading.Lock()
#: output folders of the blocks running now (threads sharing an Upscaler, a server's requests)
_IN_USE: collections.Counter[Path] = collections.Counter()
#: folders a block made and left because another block's outputs were going there: tried again
_LEFT: set[Path] = set()


def _key(folder: Path) -> Path:
    """One name for a folder however it is spelled (relative, through a symlink, with ``..``)."""
    return Path(os.path.realpath(folder))


def _forget_blocks_in_child() -> None:
    """A forked child starts with no blocks of its own: a fresh lock (one held by another thread of
    the parent at the fork would never be released) and no folders in use."""
    global _FOLDERS_LOCK
    _FOLDERS_LOCK = threading.Lock()
    _IN_USE.clear()
    _LEFT.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_blocks_in_child)


@contextlib.contextmanager
def new_folders() -> Iterator[None]:
    """A block (one command, one API call) whose output folders, made by :func:`prepare_target`
    and still empty at its end, are removed: a run refused after its folders were made, for
    memory say, had left them behind (and an API caller's list of them grew for the process's
    life). Blocks nest and run in threads side by side; a folder another running block writes
    into is left to that block (a cancelled call had removed the folder another thread was about
    to write its picture in)."""
    token = _BLOCK.set(_Block())
    try:
        yield
    finally:
        remove_unused_folders()
        _BLOCK.reset(token)


def remove_unused_folders() -> None:
    """Remove the current block's output folders that are still empty and that no other running
    block writes into, innermost first (also called on the way out of an interrupted command,
    whose blocks never end)."""
    block = _BLOCK.get()
    if block is None:
        return
    with _FOLDERS_LOCK:
        while block.uses:
            folder = block.uses.pop()
            _IN_USE[folder] -= 1
            if _IN_USE[folder] <= 0:
                del _IN_USE[folder]
        _LEFT.update(block.made)  # each is taken out as it is handled: a Ctrl-C here loses none
        block.made.clear()
        for folder in sorted(_LEFT, key=lambda p: len(p.parts), reverse=True):
            if any(used == folder or folder in used.parents for used in _IN_USE):
                continue
            _LEFT.discard(folder)
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty one


def check_target(path: str | Path, *, overwrite: bool) -> bool:
    """Before any work: can ``path`` be written? Returns True for a stream target (a character
    device or FIFO, written through), False for a regular file (written atomically).

    Raises :class:`OutputExistsError` for an existing file without ``overwrite``, and
    :class:`ImageFormatError` for a folder or another kind of special file, a name longer than the
    file system allows, or a folder that is missing or not writable.
    """
    path = Path(path)
    fd = descriptor(path)
    if fd is not None:  # whatever it points at (a file the shell opened): written through
        import fcntl  # descriptor paths exist where fcntl does

        try:
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            raise ImageFormatError(f"{path} names file descriptor {fd}, which is not open; "
                                   "open it for writing (in a shell: 3> FILE) or name a file") from None
        if mode == os.O_RDONLY:  # found out after the work, as "Bad file descriptor"
            raise ImageFormatError(f"{path} names file descriptor {fd}, which is open for reading only; "
                                   "open it for writing (in a shell: 3> FILE) or name a file")
        if os.isatty(fd):  # as -o - is refused there
            raise ImageFormatError(f"refusing to write image data to a terminal ({path} is one); redirect it or name a file")
        return True
    folder = _folder(path)
    if not folder.is_dir():
        if folder.exists():
            raise ImageFormatError(f"{folder} is a file, not a folder; choose another output path")
        raise ImageFormatError(f"output folder {folder} does not exist")
    limit = _name_max(folder)
    size = len(os.fsencode(path.name))
    if size > limit:
        raise ImageFormatError(f"the output name {path.name[:40]}... is {size} bytes long; this file system allows "
                               f"at most {limit}: choose a shorter name")
    try:
        info = path.stat()  # follows symlinks: a link to /dev/null is a stream target
    except FileNotFoundError:
        info = None
        if path.is_symlink() and not overwrite:  # a link to a missing file: the name is taken
            raise OutputExistsError(f"{path} exists (a link to the missing {os.readlink(path)}); "
                                    f"{OVERWRITE_ADVICE}") from None
    except OSError as exc:
        raise ImageFormatError(f"cannot use {path} as output: {exc.strerror}") from None
    if info is not None:
        if stat.S_ISCHR(info.st_mode) and _is_terminal(path):  # -o /dev/tty, -o $(tty): refused as -o - is there
            raise ImageFormatError(f"refusing to write image data to a terminal ({path} is one); name a file instead")
        if stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
            return True
        if stat.S_ISDIR(info.st_mode):
            raise ImageFormatError(f"{path} is a folder; name an output file inside it")
        if not stat.S_ISREG(info.st_mode):
            raise ImageFormatError(f"{path} is not a regular file (a device or socket); choose another output name")
        if not overwrite:
            raise OutputExistsError(f"{path} exists; {OVERWRITE_ADVICE}")
        refused = _not_to_replace(path, info)
        if refused:  # replaced without a word, where cp refuses
            raise ImageFormatError(refused)
    with interrupts_held():  # a stop signal between the two had left the probe behind
        os.unlink(temp_beside(path))  # the folder takes new files
    if free_space(path) == 0:  # an empty probe fits on a full disk: found out after the work, before
        raise _no_room(ImageFormatError, f"cannot write {path}", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                       path, f"the disk of {folder} is full; free space there or choose another output folder")
    return False


def _is_terminal(path: Path) -> bool:
    """Whether the character device ``path`` is a terminal (a descriptor's is told by isatty; a
    name has to be opened to ask): without waiting (O_NONBLOCK) or becoming this process's
    controlling terminal (O_NOCTTY). One that cannot be opened is left to the write to refuse."""
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _not_to_replace(path: Path, info: os.stat_result) -> str | None:
    """Why an existing output that cp would not write is not replaced, else None: this user's own
    file made read-only (chmod u+w undoes it), or another user's file this one may not write. Not
    a read-only file system or an immutable file (the write says those); never for root, which cp
    lets write anything."""
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    if uid in (None, 0):
        return None
    if info.st_uid == uid and not info.st_mode & stat.S_IWUSR:
        return f"{path} is write-protected (mode {stat.S_IMODE(info.st_mode):o}); make it writable (chmod u+w) to replace it"
    if info.st_uid != uid and not os.access(path, os.W_OK):  # (chmod is not this user's to run)
        return f"{path} is another user's file, which you may not write; ask its owner, or choose another output name"
    return None


def write_atomic(data: bytes, path: str | Path, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (see the module docstring).

    Without ``overwrite`` an existing file is never replaced, even one that appears while writing.
    """
    with open_atomic(path, overwrite=overwrite) as out:
        write_all(out, data)


def write_all(out: BinaryIO, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data`` to ``out`` or raise. A pipe whose reader leaves mid-write
    (``| head -c 10``) makes the write return short instead of failing (Python ignores SIGPIPE):
    a cut-off image had exited 0; writing the rest raises BrokenPipeError. Standard output is
    flushed here, and a refusal there says so ("No space left on device" alone had not told
    which file)."""
    view = memoryview(data).cast("B")
    stdout = _is_stdout(out)
    try:
        while view:
            written = out.write(view)
            view = view[len(view) if written is None else written:]
        if stdout:
            out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        if not stdout:
            raise
        # what is still buffered would fail again when Python flushes at exit ("Exception ignored
        # ... No space left on device", status 120): it goes nowhere instead
        with contextlib.suppress(OSError):
            discard(1)
        raise SrFilterError(f"cannot write to standard output ({exc.strerror or first_line(exc)})") from None


def _is_stdout(out: BinaryIO) -> bool:
    try:
        return out.fileno() == 1
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def open_atomic(path: str | Path, *, overwrite: bool = False, error: type[SrFilterError] = ImageFormatError) -> Iterator[BinaryIO]:
    """A binary file that appears as ``path`` only when the block finishes without an exception.

    A character device or FIFO is opened and written through; an existing file is refused
    (:class:`OutputExistsError`) without ``overwrite``, before the block runs and again if one
    appears meanwhile. OSErrors become one-line ``error`` exceptions; the temporary file is
    removed on any exception.
    """
    path = Path(path)
    if is_stream(path):
        try:
            with open_stream(path) as out:
                yield out
        except OSError as exc:
            raise error(f"cannot write {path}: {_reason(exc)}") from None
        return
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; {OVERWRITE_ADVICE}")
    with replacing(path, overwrite=overwrite, error=error) as tmp, open(tmp, "wb") as out:
        yield out
        out.flush()
        os.fsync(out.fileno())


@contextlib.contextmanager
def replacing(path: str | Path, *, overwrite: bool = True, error: type[SrFilterError] = ImageFormatError,
              suffix: str = TEMP_SUFFIX, failures: tuple[type[BaseException], ...] = (OSError,)) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it becomes ``path``.

    For writers that need a file name (``torch.save``, encoders): the temporary file is removed on
    any exception, so an interrupted write leaves neither a partial ``path`` nor a stray file.
    ``failures`` (OSError; a video writer adds FFmpeg's errors) become one-line ``error``
    exceptions; ``suffix`` ends the temporary name.
    """
    path = through_link(Path(path))
    tmp: Path | None = None
    try:
        tmp = temp_beside(path, error=error, suffix=suffix)  # inside: a stop signal just after leaves no file
        yield tmp
        commit(tmp, path, overwrite=overwrite)
    except failures as exc:
        raise _no_room(error, f"cannot write {path}", exc, path) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


#: the errors that say a file system has no room (blocks, inodes or the user's quota)
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT}


def _no_room(error: type[SrFilterError], what: str, exc: BaseException, path: str | Path,
             reason: str | None = None) -> SrFilterError:
    """``error("WHAT: REASON")``, marked with ``full_disk`` (:func:`file_system`'s id) when ``exc``
    says the file system ``path`` is written on is full, and ``quota`` when it is the user's quota
    that is used up (no write of theirs can fit there): a batch then stops writing there instead
    of upscaling every later file only to fail it the same way. A file system out of inodes is
    said to be (df -h shows it with room to spare)."""
    number = getattr(exc, "errno", None)
    reason = reason or _reason(exc)
    info = _statvfs(path) if number == errno.ENOSPC else None
    if info is not None and info.f_files and not info.f_favail and _blocks_free(info):
        reason += (f" (no inode left for a new file, though {_blocks_free(info) * info.f_frsize >> 10} KiB are free: "
                   "df -i shows it)")
    made = error(f"{what}: {reason}")
    if number in _NO_ROOM:
        made.full_disk = file_system(path)
        made.quota = number == errno.EDQUOT
    return made


def file_system(path: str | Path) -> int | None:
    """An id of the file system ``path`` is (or would be) written on: its nearest existing folder's
    device; None when none can be looked at."""
    try:
        return os.stat(_existing_folder(path)).st_dev
    except OSError:
        return None


def free_space(path: str | Path) -> int | None:
    """The bytes a new file may take on the file system ``path`` is (or would be) written on, as
    the file system counts them (the user's quota is not seen here); 0 where no file can be made
    (no inode left); None when it cannot be looked at."""
    info = _statvfs(path)
    if info is None:
        return None
    if info.f_files and not info.f_favail:  # (btrfs counts no inodes: f_files 0)
        return 0
    return _blocks_free(info) * info.f_frsize


def _statvfs(path: str | Path) -> os.statvfs_result | None:
    """What the file system ``path`` is (or would be) written on says of its room; None when it
    cannot be looked at."""
    try:
        return os.statvfs(_existing_folder(path))
    except (OSError, AttributeError):  # no statvfs (Windows)
        return None


def _blocks_free(info: os.statvfs_result) -> int:
    """The blocks this process may still fill: root may also use those reserved for it."""
    return info.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else info.f_bavail


def _existing_folder(path: str | Path) -> Path:
    """``path``'s folder, or the nearest one above it that exists (outputs' folders are made later)."""
    folder = _folder(Path(path))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def through_link(path: Path) -> Path:
    """The file a symlink names, where it names an existing one: a replaced output is written
    there, as ``cp`` writes through a link, and the link stays (it had become a plain file). A
    link to nothing is replaced itself."""
    if path.is_symlink() and path.exists():
        return Path(os.path.realpath(path))
    return path


def temp_beside(path: str | Path, *, error: type[SrFilterError] = ImageFormatError, suffix: str = TEMP_SUFFIX) -> Path:
    """A new empty temporary file in ``path``'s folder (so the final rename is atomic), with a short
    name (``.srf-PID-HOST-XXXXXXXX.tmp``: the writer's process id and a tag of its machine's name,
    so what a killed process left can be told from what a live one is writing; see
    :func:`temp_prefix` and :func:`sweep_orphans`) that fits beside any target name. The one temporary-file maker:
    a folder that is missing or takes no new files is an ``error`` exception."""
    folder = _folder(Path(path))
    if not folder.exists():
        raise error(f"output folder {folder} does not exist")
    sweep_orphans(folder)
    name = None
    try:  # a file where the folder should be: "Not a directory"
        with interrupts_held():  # made and named at once: a stop signal between had left the file
            fd, name = tempfile.mkstemp(prefix=temp_prefix() + HOST_TAG + "-", suffix=suffix, dir=folder)
            os.close(fd)
    except OSError as exc:
        why = "it takes no new files" if exc.errno == errno.ENOENT and folder.is_dir() else None  # (/proc)
        raise _no_room(error, f"cannot write to output folder {folder}", exc, path, why) from None
    except BaseException:  # the signal held back, raised as the block ends: the caller never gets the name
        if name is not None:
            with contextlib.suppress(OSError):
                os.unlink(name)
        raise
    return Path(name)


def temp_prefix(pid: int | None = None) -> str:
    """How the temporary files of process ``pid`` (default: this one) begin."""
    return f"{TEMP_PREFIX}{os.getpid() if pid is None else int(pid)}-"


def _pid_space() -> str:
    """This machine's name and, on Linux, its process-id namespace: containers often share a
    host name (docker --network host) while each counts its own process ids, so a writer alive in
    another had been taken for dead and its file swept from a shared folder."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # no /proc (macOS, Windows): the name alone
        namespace = ""
    return socket.gethostname() + ("\0" + namespace if namespace else "")


#: six hex digits of this machine's name and process-id namespace, in every temporary name: a
#: folder shared between machines or containers (NFS, a cluster's storage, a mounted volume)
#: holds other writers, whose process ids mean nothing here
HOST_TAG = hashlib.sha1(_pid_space().encode("utf-8", "replace")).hexdigest()[:6]
_SWEPT: set[str] = set()


def temp_folder(folder: str | Path) -> Path:
    """A new hidden folder in ``folder`` for files that are published one by one (a converted
    model's parts), named so that :func:`sweep_orphans` removes it once its writer has died."""
    sweep_orphans(folder)
    return Path(tempfile.mkdtemp(prefix=temp_prefix() + HOST_TAG + "-", suffix=TEMP_SUFFIX, dir=folder))


#: a temporary file or folder of ours untouched this long is a dead writer's, whoever wrote it: a
#: live one writes its picture at once and renames it, and a video's muxer writes all the time
STALE_AFTER = 7 * 24 * 3600


def sweep_orphans(folder: str | Path, *, again: bool = False) -> int:
    """Remove the temporary files and folders (``.tmp``, a video's ``.part``) that writers left in
    ``folder`` when they were killed (SIGKILL, a power cut): this machine's whose process no longer
    runs, and anyone's untouched for :data:`STALE_AFTER` (another machine's, or a container's since
    restarted, whose tag no running process has). Done once per folder and process (``again``:
    once more), when a write there begins, so a hidden, possibly large, file does not stay for
    good. Returns how many were removed."""
    key = os.fspath(folder)
    if key in _SWEPT and not again:
        return 0
    _SWEPT.add(key)
    removed = 0
    try:
        leftovers = [e for e in os.scandir(folder) if e.name.startswith(TEMP_PREFIX) and e.name.endswith((TEMP_SUFFIX, ".part"))]
    except OSError:
        return 0
    for entry in leftovers:
        pid, _, rest = entry.name[len(TEMP_PREFIX):].partition("-")
        if not pid.isdigit() or not re.match(r"[0-9a-f]{6}-", rest):  # not a name we give
            continue
        if (rest.startswith(HOST_TAG + "-") and not _running(int(pid))) or _untouched(entry):
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed += 1
    return removed


def _untouched(entry: os.DirEntry) -> bool:
    """Whether a leftover has not been written for :data:`STALE_AFTER`."""
    try:
        return entry.stat(follow_symlinks=False).st_mtime < time.time() - STALE_AFTER
    except OSError:
        return False


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def commit(tmp: str | Path, path: str | Path, *, overwrite: bool) -> None:
    """:func:`publish` ``tmp`` as ``path``; a file that appeared meanwhile is an
    :class:`OutputExistsError` without ``overwrite`` (other OSErrors are the caller's)."""
    try:
        publish(tmp, path, overwrite=overwrite)
    except FileExistsError:
        raise OutputExistsError(f"{path} appeared while writing; {OVERWRITE_ADVICE}") from None


def publish(tmp: str | Path, path: str | Path, *, overwrite: bool) -> None:
    """Give the finished temporary file ``tmp`` (in ``path``'s folder) its final name: mode 0666
    minus the umask, like any file the user writes, or the permissions (and, where this process
    may give them, owner and group) of the file it replaces (a private file stays private, and a
    user's file replaced by root stays the user's); without ``overwrite`` a hard link that fails with
    FileExistsError if the name exists. The one way every writer here (images, videos,
    downloads, checkpoints) publishes a file; OSError is the caller's to word."""
    mode, owner, attributes = _new_file_mode(Path(path).parent), None, {}
    if overwrite:
        with contextlib.suppress(OSError):
            old = os.stat(path)
            if stat.S_ISREG(old.st_mode):
                mode, owner, attributes = stat.S_IMODE(old.st_mode), (old.st_uid, old.st_gid), _attributes(path)
    _settle(tmp, mode, owner, attributes)
    if overwrite:
        os.replace(tmp, path)
    else:
        _link_no_clobber(str(tmp), Path(path))


def _attributes(path: str | Path) -> dict[str, bytes]:
    """The extended attributes of the file ``path`` names (its access ACL, a desktop's tags and
    origin URL), to go with its permissions onto the file that replaces it: they had been dropped,
    and the mode copied without the ACL had opened the file to its group."""
    if not hasattr(os, "listxattr"):
        return {}
    found = {}
    with contextlib.suppress(OSError):
        for name in os.listxattr(path):
            with contextlib.suppress(OSError):
                found[name] = os.getxattr(path, name)
    return found


def _settle(tmp: str | Path, mode: int, owner: tuple[int, int] | None, attributes: dict[str, bytes] | None = None) -> None:
    """Give the temporary file ``mode``, ``attributes`` (extended attributes, an ACL among them)
    and, where this process may, ``owner`` (uid, gid), through a descriptor of the file itself. Changed by name, a link put in the temporary file's place (by
    anyone who may write to the output folder, during a long encode) had had its target handed to
    the folder's owner by a root run of --overwrite, with the old output's mode."""
    if not hasattr(os, "fchmod"):  # no descriptor calls on this system (Windows before Python 3.13)
        os.chmod(tmp, mode)
        return
    # O_NOFOLLOW: a link fails (ELOOP) rather than be followed; O_NONBLOCK: a FIFO put there does not hang the open
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags)
    except OSError as exc:
        if os.path.islink(tmp):
            raise OSError(exc.errno, "the temporary file was replaced by a link while it was written; nothing was published",
                          str(tmp)) from None
        if isinstance(exc, PermissionError):  # a umask that leaves the owner no read permission: never root
            os.chmod(tmp, mode)
            return
        raise
    try:
        mine = os.fstat(fd)
        if not stat.S_ISREG(mine.st_mode):
            raise OSError(0, "the temporary file was replaced by something that is not a file while it was written; "
                             "nothing was published", str(tmp))
        if owner is not None and owner != (mine.st_uid, mine.st_gid):
            with contextlib.suppress(OSError):  # not allowed (not root, nor a group of ours): ours, as cp makes it
                os.fchown(fd, *owner)  # before chmod: a chown clears set-id bits
        os.fchmod(fd, mode)
        for name, value in (attributes or {}).items():  # after the mode: an ACL sets the group bits its own way
            with contextlib.suppress(OSError):  # one this file system or process may not set (security.*) stays off
                os.setxattr(fd, name, value)
    finally:
        os.close(fd)


def is_stream(path: str | Path) -> bool:
    """Whether ``path`` is (or links to) a character device or FIFO, or names an open descriptor
    (:func:`descriptor`): written through, not replaced."""
    if descriptor(path) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


#: paths that name one of this process's open file descriptors
_DESCRIPTOR = re.compile(r"/dev/std(?:in|out|err)|/dev/fd/\d+|/proc/(?:self|thread-self)/fd/\d+")


def descriptor(path: str | Path) -> int | None:
    """The file descriptor ``path`` names (``/dev/stdout``, ``/dev/fd/3``, ``/proc/self/fd/3``), or
    None. Such an output is written through the descriptor, whatever it points at: opening the
    name again had truncated a file the shell opened for appending (``>> log``), and replacing it
    by rename, under --overwrite, had dropped what was in it."""
    text = os.fspath(path)
    if not _DESCRIPTOR.fullmatch(text):
        return None
    named = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
    return named[text] if text in named else int(text.rsplit("/", 1)[1])


def refuse_writing_input(target: str | Path | None, source: str | Path | None) -> None:
    """Refuse an output written through a descriptor (``target`` None: standard output; or a
    :func:`descriptor` path) that is the input file itself (``source``; None: standard input), as
    cat refuses "input file is output file". The shell opened it (``>> in.png``, ``3>> in.png``),
    so the picture had been added to the input's end, --overwrite or not: a descriptor cannot be
    replaced by rename. Only a regular file can be an input file (a pipe or /dev/null never is);
    a descriptor that is not open is refused elsewhere."""
    fd = 1 if target is None else descriptor(target)
    if fd is None:
        return
    try:
        out = os.fstat(fd)
        read = os.fstat(0) if source is None else os.stat(source)
    except (OSError, ValueError):
        return
    if not stat.S_ISREG(out.st_mode) or (out.st_dev, out.st_ino) != (read.st_dev, read.st_ino):
        return
    written = "standard output" if target is None else shown_path(target)
    what = "the file standard input reads" if source is None else f"the input file {shown_path(source)}"
    raise OutputIsInputError(f"{written} is {what}; the output would be added to its end (a file opened by the shell "
                             "cannot be replaced): write it to another file")


def open_stream(path: str | Path) -> BinaryIO:
    """A stream target (:func:`is_stream`) opened for writing: its descriptor duplicated (written
    where it stands, appending if it appends), or a device or FIFO opened by name."""
    fd = descriptor(path)
    return os.fdopen(os.dup(fd), "wb") if fd is not None else open(path, "wb")


def _reason(exc: BaseException) -> str:
    """Why a write failed, without the temporary file's name (``No space left on device``)."""
    return getattr(exc, "strerror", None) or first_line(exc)


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no answer
        return 255


def _link_no_clobber(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.replace(tmp, path)


def _new_file_mode(folder: Path) -> int:
    """The mode a new file takes in ``folder``, as open() gives it: 0666 minus the umask or, where
    the folder has a default ACL (which the umask does not apply to), 0666 within that ACL's owner,
    mask and other entries (its group bits are the ACL mask). The umask had narrowed the mask the
    file inherits, so a user the folder's ACL lets write could only read sr-filter's outputs."""
    try:
        acl = os.getxattr(folder, "system.posix_acl_default") if hasattr(os, "getxattr") else b""
    except OSError:  # none, or no ACLs on this file system
        acl = b""
    perms: dict[int, int] = {}
    for start in range(4, len(acl) - 7, 8):  # version (4 bytes), then entries: tag (2), permissions (2), id (4)
        tag, perm = struct.unpack_from("<HH", acl, start)
        perms.setdefault(tag, perm & 7)
    if not {_ACL_USER_OBJ, _ACL_OTHER} <= perms.keys():
        return 0o666 & ~_umask()
    group = perms.get(_ACL_MASK, perms.get(_ACL_GROUP_OBJ, 0))
    return 0o666 & (perms[_ACL_USER_OBJ] << 6 | group << 3 | perms[_ACL_OTHER])


#: POSIX ACL entry tags (linux/posix_acl_xattr.h)
_ACL_USER_OBJ, _ACL_GROUP_OBJ, _ACL_MASK, _ACL_OTHER = 0x01, 0x04, 0x10, 0x20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

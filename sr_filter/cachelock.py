"""An exclusive lock between processes that leaves no file behind.

One process downloads a given weights file at a time. The lock is ``fcntl.flock`` on a
``NAME.lock`` file next to it; the holder deletes that file before unlocking, and a process that
locked a file which was deleted meanwhile (or replaced) simply tries again, so no lock file
stays in the cache and two holders can never exist. Where ``fcntl`` does not exist (Windows),
filelock's Windows lock is used; it removes its file on release too.

:class:`SharedHold` is the shared counterpart, held by every process waiting on a download, so the
process whose download failed knows whether anyone has yet to read why.
"""

from __future__ import annotations

import errno
import os
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


_NO_FLOCK = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP}


class LockTimeout(Exception):
    """The lock was not acquired within the time given."""


class CacheLock:
    """``with CacheLock(path, timeout):`` holds the lock for ``path`` (``path`` + ``.lock``)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = Path(str(path) + ".lock")
        self.timeout = timeout
        self._fd: int | None = None
        self._fallback = None

    def acquire(self) -> None:
        """Wait up to ``timeout`` seconds (0: one try) for the lock; :class:`LockTimeout` if not."""
        if fcntl is None:
            from filelock import FileLock, Timeout

            self._fallback = FileLock(str(self.path))
            try:
                self._fallback.acquire(timeout=self.timeout)
            except Timeout:
                raise LockTimeout(str(self.path)) from None
            return
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise LockTimeout(str(self.path)) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
                continue
            except OSError as exc:
                os.close(fd)
                if exc.errno not in _NO_FLOCK:
                    raise
                # a file system without flock: go on unlocked; the download itself stays atomic
                # (part file + rename), only two processes may then download the same file
                self.path.unlink(missing_ok=True)
                return
            except BaseException:
                os.close(fd)
                raise
            if self._still_named(fd):
                self._fd = fd
                with suppress(OSError):  # who holds it, for the messages of those who wait
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return
            os.close(fd)  # the previous holder deleted this file after we opened it: try the new one

    def _still_named(self, fd: int) -> bool:
        return _same_file(fd, self.path)

    def holder(self) -> int | None:
        """The process id of the lock's holder, as it wrote it (None: unknown)."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        """Delete the lock file, then unlock: waiters then lock a fresh file."""
        if self._fallback is not None:
            self._fallback.release()
            self._fallback = None
            return
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> CacheLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


class SharedHold:
    """A shared ``flock`` on ``path`` that many processes hold at once, and that the last one to
    let go deletes. Processes that may wait for another's download hold it, so the process whose
    download failed can tell whether anyone is still to read why (:meth:`vacant`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self.supported = fcntl is not None

    def hold(self) -> None:
        """Take a shared hold (one whose file was just deleted by the last holder is taken anew)."""
        if not self.supported:
            return
        for _ in range(400):  # an exclusive holder only checks and deletes: moments
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError:
                self.supported = False  # a read-only cache: the download itself says so
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                time.sleep(0.005)
                continue
            except OSError:
                os.close(fd)
                self.supported = False  # a file system without flock
                return
            if _same_file(fd, self.path):
                self._fd = fd
                return
            os.close(fd)
        self.supported = False

    def release(self) -> bool:
        """Let go; True when no other process held it then (its file is deleted)."""
        if self._fd is None:
            return False
        fd, self._fd = self._fd, None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only when no one else holds it
            except OSError:
                return False
            if _same_file(fd, self.path):
                self.path.unlink(missing_ok=True)
            return True
        finally:
            with suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def vacant(self) -> bool | None:
        """Whether no process holds it now (None: unknown, without ``flock``). A file left by a
        process that ended holding it is deleted."""
        if not self.supported:
            return None
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return True
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            except OSError:
                return None
            if _same_file(fd, self.path):
                self.path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        finally:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False

"""Downloading one pinned file into the weights cache: bounded in time, verified, atomic.

The file streams into a hidden ``.NAME.XXXXXXXX.part`` next to its final name, is checked
against the expected size and sha256 and only then renamed into place; the part file is deleted
on any error or interruption (``finally``), and parts left by a killed process are swept later.
Time limits (seconds, from the environment): ``SR_FILTER_CONNECT_TIMEOUT`` (10) to connect,
``SR_FILTER_STALL_TIMEOUT`` (30) without any data, ``SR_FILTER_DOWNLOAD_TIMEOUT`` for the whole
file with all its attempts (default 60 s plus 20 s per MB, i.e. a 50 kB/s floor). A broken
transfer (cut, or silent after some data) or a server error is tried ``SR_FILTER_DOWNLOAD_RETRIES`` (3) times in all; a host that cannot
be reached or does not answer is not asked again, and is remembered (:mod:`sr_filter.netmemory`).
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import logging
import math
import os
import secrets
import socket
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import netmemory
from .cachelock import CacheLock, LockTimeout, SharedHold
from .atomic import publish
from .envvars import env_int, env_seconds, env_text
from .errors import CacheError, ChecksumError, DownloadError, DownloadSettingError, NetworkUnavailableError, first_line

log = logging.getLogger(__name__)

ENV_MIRROR = "SR_FILTER_WEIGHTS_URL"
ENV_CACHE = "SR_FILTER_CACHE_DIR"
ENV_RETRIES = "SR_FILTER_DOWNLOAD_RETRIES"
ENV_CONNECT = "SR_FILTER_CONNECT_TIMEOUT"
ENV_STALL = "SR_FILTER_STALL_TIMEOUT"
ENV_DEADLINE = "SR_FILTER_DOWNLOAD_TIMEOUT"
_CHUNK = 1 << 16
_FLOOR_RATE = 50_000  # bytes/s: the slowest transfer the default deadline allows
_UNKNOWN_SIZE = 100_000_000  # bytes assumed for the default deadline when the size is unknown
STALE_PART_S = 3600.0
#: age after which a failed download's note (see :func:`note_failure`) is swept
FAILURE_NOTE_S = 60.0


@dataclass(frozen=True)
class Limits:
    """Retries and time limits of one download, read from the environment."""

    retries: int
    connect: float
    stall: float
    deadline: float | None

    @classmethod
    def from_env(cls) -> Limits:
        err = DownloadSettingError
        deadline = env_seconds(ENV_DEADLINE, 600.0, error=err) if env_text(ENV_DEADLINE) else None  # 600: only the example a bad value is told
        return cls(
            env_int(ENV_RETRIES, 3, minimum=1, error=err),
            env_seconds(ENV_CONNECT, 10.0, error=err),
            env_seconds(ENV_STALL, 30.0, error=err),
            deadline,
        )

    def overall(self, size: int | None) -> float:
        """Seconds the whole download of a file of ``size`` bytes may take."""
        return self.deadline or 60.0 + (size or _UNKNOWN_SIZE) / _FLOOR_RATE


class _Retryable(Exception):
    """A failure worth another attempt at the same URL (broken transfer, server error)."""


class _NextUrl(Exception):
    """A failure that another attempt at the same URL would repeat (silence, HTTP 404)."""


class _Unreachable(_NextUrl):
    """The host could not be reached at all (no network, name lookup, refused)."""


class _OutOfTime(Exception):
    """The download's overall deadline passed."""


def download(urls: list[str], path: Path, sha256: str, size: int | None) -> None:
    """Download ``path.name`` from the first of ``urls`` that delivers the right bytes."""
    if not urls:
        raise DownloadError(f"no URL is known for {path.name}; set {ENV_MIRROR} or put the file at {path}")
    limits = Limits.from_env()
    overall = limits.overall(size)
    deadline = time.monotonic() + overall
    errors: list[str] = []
    unreachable: list[str] = []
    try:
        for url in urls:
            for attempt in range(limits.retries):
                if time.monotonic() > deadline:
                    raise _OutOfTime(f"not done within {round(overall, 1):g} s ({ENV_DEADLINE})")
                try:
                    _stream(url, path, sha256, size, limits, deadline)
                    netmemory.remember(path.parent, [url], reachable=True)
                    return
                except _Unreachable as exc:
                    errors.append(f"{url}: {exc}")
                    unreachable.append(url)
                    break
                except _NextUrl as exc:
                    errors.append(f"{url}: {exc}")
                    break
                except _Retryable as exc:
                    errors.append(f"{url}: {exc}")
                    log.info("download of %s failed (%s), attempt %d of %d", url, exc, attempt + 1, limits.retries)
                    pause = min(2**attempt, 10) * 0.5
                    if attempt + 1 < limits.retries and time.monotonic() + pause < deadline:
                        time.sleep(pause)
    except _OutOfTime as exc:
        errors.append(str(exc))
    if unreachable:
        netmemory.remember(path.parent, unreachable, reachable=False)
    kind = NetworkUnavailableError if len(unreachable) == len(urls) else DownloadError
    error = kind(
        f"could not download {path.name} ({errors[-1]}). Check the network, set {ENV_MIRROR} to a mirror "
        f"that serves {path.name}, or put the file at {path}"
    )
    if isinstance(error, NetworkUnavailableError):
        error.reason = errors[-1].split(": ", 1)[-1]
    raise error


#: seconds without an answer after which the wait is said (a silent server had said nothing for
#: the whole stall timeout, 30 s by default, before its error)
SAY_WAITING_AFTER = 3.0


def _stream(url: str, path: Path, sha256: str, size: int | None, limits: Limits, deadline: float) -> None:
    import threading

    overall = limits.overall(size)
    left = deadline - time.monotonic()
    gives_up = (limits.stall, ENV_STALL) if limits.stall <= left else (round(max(left, 0), 1), ENV_DEADLINE)
    waiting = threading.Timer(SAY_WAITING_AFTER, log.warning, ("waiting for %s to answer (%s; gives up after %g s "
                                                               "without an answer, %s)", _host(url), path.name,
                                                               *gives_up))
    waiting.daemon = True
    waiting.start()
    try:
        response = _open(url, limits, deadline, overall)
    finally:
        waiting.cancel()
    with response:
        if response.status_code != 200:
            message = f"HTTP {response.status_code}"
            raise (_Retryable if response.status_code >= 500 or response.status_code == 429 else _NextUrl)(message)
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind in ("text/html", "application/xhtml+xml"):  # a login, proxy or error page answered with 200
            raise _NextUrl(f"the server sent a web page ({kind}) instead of {path.name}; a login or proxy page in the way?")
        # a compressed transfer despite "Accept-Encoding: identity" (a mirror's proxy): unpacked, and
        # its Content-Length counts the packed bytes (it had been "the server holds a different file")
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        packed = encoding not in ("", "identity")
        layers = {e.strip() for e in encoding.split(",")} - {""}  # "gzip, gzip": packed twice, unpacked so
        if packed and not layers <= _unpackable():  # (brotli, zstd without their modules: raw bytes had been
            # "the server holds a different file")
            raise _NextUrl(f"the server sent {path.name} {encoding}-compressed (Content-Encoding), which cannot be "
                           "unpacked here; have the mirror or proxy serve it as it is (identity)")
        total = size or (None if packed else int(response.headers.get("Content-Length") or 0) or None)
        with _PartFile(path) as part, _bar(path.name, total, url) as bar:
            part.create()
            digest = hashlib.sha256()
            received = 0
            while chunk := _read(response, limits, received, packed, deadline, overall):
                received += len(chunk)
                if size is not None and received > size:
                    raise ChecksumError(
                        f"{url} sent more than the expected {size} bytes for {path.name}; the server holds a different file"
                    )
                digest.update(chunk)
                part.write(chunk)
                bar.update(len(chunk))
                if time.monotonic() > deadline:
                    raise _OutOfTime(f"{url}: not done within {round(overall, 1):g} s ({ENV_DEADLINE})")
            if size is not None and received != size:
                if not packed and received == int(response.headers.get("Content-Length") or -1):  # all it has: another file
                    raise ChecksumError(f"{url} holds {received} bytes for {path.name}, not the expected {size}; "
                                        "the server holds a different file")
                raise _Retryable(f"got {received} of {size} bytes")
            actual = digest.hexdigest()
            if actual != sha256:
                raise ChecksumError(
                    f"sha256 mismatch for {path.name} from {url}: expected {sha256}, got {actual}; the download was deleted"
                )
            part.commit()


def _open(url: str, limits: Limits, deadline: float = math.inf, overall: float = math.inf):  # -> requests.Response
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    # no wait outlasts the overall deadline: a 3 s limit had taken the 30 s stall timeout, then said "3 s"
    left = max(0.1, deadline - time.monotonic())
    try:
        return requests.get(
            url, stream=True, timeout=(min(limits.connect, left), min(limits.stall, left)),
            headers={"Accept-Encoding": "identity"},
        )
    except requests.ConnectTimeout:
        _past(deadline, overall)
        raise _Unreachable(f"no connection to {_host(url)} within {limits.connect:g} s ({ENV_CONNECT})") from None
    except requests.ReadTimeout:
        _past(deadline, overall)
        raise _NextUrl(f"no answer for {limits.stall:g} s ({ENV_STALL})") from None
    except requests.exceptions.SSLError as exc:  # before ConnectionError, its base: the same every attempt
        raise _NextUrl(_tls_trouble(exc, url)) from None
    except requests.ConnectionError as exc:
        reason = getattr(exc.args[0] if exc.args else None, "reason", None)
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
            cause = reason.__cause__ if isinstance(reason.__cause__, OSError) else None
            why = f" ({cause.strerror})" if cause is not None and cause.strerror else ""
            verb = "resolve" if isinstance(cause, socket.gaierror) else "connect to"
            raise _Unreachable(f"cannot {verb} {_host(url)}{why}") from None
        raise _Retryable(_short(exc)) from None
    except requests.RequestException as exc:
        raise _NextUrl(_short(exc)) from None


def _socket_of(response) -> Any:
    """The socket a streamed response reads from (http.client keeps it inside its file object once
    the answer began), or None where that is not to be found."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None:
        sock = getattr(getattr(getattr(getattr(response.raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    return sock if hasattr(sock, "settimeout") else None


def _unpackable() -> set[str]:
    """The transfer encodings urllib3 unpacks here (gzip and deflate; brotli and zstd where their modules are)."""
    from urllib3.response import HTTPResponse

    return {e.lower() for e in HTTPResponse.CONTENT_DECODERS}


def _past(deadline: float, overall: float) -> None:
    """Raise the overall time limit's error where a wait, cut short to it, ran out."""
    if time.monotonic() >= deadline - 0.05:
        raise _OutOfTime(f"not done within {round(overall, 1):g} s ({ENV_DEADLINE})") from None


def _read(response, limits: Limits, received: int, packed: bool = False, deadline: float = math.inf,
          overall: float = math.inf) -> bytes:
    """The next bytes of the body (b"" at its end), unpacked where the server compressed the
    transfer, waiting at most the stall timeout."""
    from urllib3.exceptions import DecodeError, HTTPError, ReadTimeoutError

    left = deadline - time.monotonic()
    sock = _socket_of(response)
    if sock is not None and left < limits.stall:  # each wait cut to what is left of the overall limit
        with suppress(OSError):
            sock.settimeout(max(0.05, left))
    try:
        return response.raw.read1(_CHUNK, decode_content=packed)
    except DecodeError as exc:
        encoding = response.headers.get("Content-Encoding", "").strip()
        raise _NextUrl(f"the server's {encoding!r} transfer encoding does not unpack ({_short(exc)})") from None
    except (ReadTimeoutError, TimeoutError):
        _past(deadline, overall)  # the wait had been cut to the overall deadline
        # silent from the start: the server does not answer; silent after some data: a transfer
        # that broke (tried again: the only try there was had ended the download of a mirror's file)
        kind = _Retryable if received else _NextUrl
        raise kind(f"no data for {limits.stall:g} s after {received} bytes ({ENV_STALL})") from None
    except (HTTPError, OSError) as exc:
        raise _Retryable(f"connection broke after {received} bytes ({_broken(exc)})") from None


class _PartFile:
    """The hidden file a download streams into; renamed to the final name by :meth:`commit`,
    deleted on any error or interruption. Created with mode 0666 minus the umask, like any file
    the user writes, so a shared cache can be read by others."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.parent / f".{path.name}.{secrets.token_hex(4)}.part"
        self.fd = -1

    def __enter__(self) -> _PartFile:
        return self

    def create(self) -> None:
        """Create the part file: inside the ``with`` block, so that a signal arriving just after it
        exists still reaches :meth:`__exit__`, which deletes it."""
        try:
            self.fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise cache_error(exc, self.path) from None

    def write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            raise cache_error(exc, self.path) from None

    def commit(self) -> None:
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            publish(self.part, self.path, overwrite=True)
        except OSError as exc:
            raise cache_error(exc, self.path) from None

    def __exit__(self, *exc_info: object) -> None:
        if self.fd >= 0:
            with suppress(OSError):
                os.close(self.fd)
        with suppress(OSError):
            self.part.unlink(missing_ok=True)


def cache_error(exc: OSError, path: Path) -> CacheError:
    """One line for a fault of the cache folder while a download is written into it."""
    what = exc.strerror or first_line(exc)
    if path.is_dir():
        return CacheError(f"cannot save {path.name}: {path} is a folder; remove it or set {ENV_CACHE} to another folder")
    fix = {errno.EFBIG: "raise the file size limit (ulimit -f)", errno.ENOSPC: "free some space there",
           errno.EDQUOT: "free some of your quota there"}.get(exc.errno or 0, "make it writable")
    return CacheError(
        f"cannot write {path.name} into the weights cache {path.parent} ({what}); {fix} or set {ENV_CACHE} to another folder"
    )


def wait_for_lock(lock: CacheLock, path: Path, *, limit: float) -> None:
    """Take ``lock`` once the process downloading ``path`` lets it go. That download must show
    progress: with its part file unchanged for :func:`quiet_limit` seconds the wait ends in a
    :class:`DownloadError` naming the process (one stopped with Ctrl-Z had made every other run
    wait for an hour without a word); ``limit`` bounds the whole wait."""
    started = last_change = time.monotonic()
    seen = None
    patience = quiet_limit()
    while True:
        lock.timeout = 1.0
        try:
            lock.acquire()
            return
        except LockTimeout:
            pass
        now, state = time.monotonic(), _parts(path)
        if state != seen:
            seen, last_change = state, now
        holder = lock.holder()
        who = f"process {holder}" if holder else "another process"
        if now - last_change > patience:
            raise DownloadError(f"{who} has been downloading {path.name} into {path.parent} with no progress for "
                                f"{int(now - last_change)} s (stopped, or its connection hangs); stop it, or wait for it "
                                "and try again")
        if now - started > limit:
            raise DownloadError(f"{who} has been downloading {path.name} into {path.parent} for "
                                f"{int(now - started) // 60} min; stop it and try again")


def quiet_limit() -> float:
    """Seconds a waiting process lets another one's download go without progress: all of its
    attempts at a server that connects slowly and then says nothing, with the pauses between
    them, and a minute more (each attempt that gets data starts a fresh part file)."""
    limits = Limits.from_env()
    pauses = sum(min(2**attempt, 10) * 0.5 for attempt in range(limits.retries))
    return limits.retries * (limits.connect + limits.stall) + pauses + 60.0


def _parts(path: Path) -> tuple:
    """The part files of ``path`` now: (name, size, modification time) each."""
    try:
        found = [(p.name, p.stat()) for p in path.parent.glob(f".{glob.escape(path.name)}.*.part")]
    except OSError:
        return ()
    return tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in found))


#: a failed download's one-line reason, kept beside the file for the processes that waited on it
def _failure_note(path: Path) -> Path:
    return path.with_name(f".{path.name}.failed")


def note_failure(path: Path, urls: list[str], exc: DownloadError) -> None:
    """Leave why the download of ``path`` from ``urls`` failed, for the processes waiting to try
    the same themselves (each had made its own full set of attempts, one after another: minutes on
    a bad mirror)."""
    note = _failure_note(path)
    record = {"urls": list(urls), "kind": type(exc).__name__, "message": str(exc), "reason": getattr(exc, "reason", None)}
    with suppress(OSError):
        note.write_text(json.dumps(record), encoding="utf-8")


def note_state(path: Path) -> tuple | None:
    """What the failure note of ``path`` is now (None: there is none): a note that differs after a
    wait was written during it. Compared as it is, not by clocks (a shared cache on another host)."""
    with suppress(OSError):
        st = _failure_note(path).stat()
        return st.st_ino, st.st_size, st.st_mtime_ns
    return None


def failure_since(path: Path, before: tuple | None, urls: list[str]) -> DownloadError | None:
    """The error of a download of ``path`` from the same ``urls`` that failed while this process
    waited (its note differs from ``before``), as the class it was; None when there was none."""
    from . import errors

    now = note_state(path)
    if now is None or now == before:
        return None
    with suppress(OSError, ValueError):
        record = json.loads(_failure_note(path).read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("urls") != list(urls) or not record.get("message"):
            return None  # another mirror or settings: this process tries its own
        kind = getattr(errors, str(record.get("kind")), DownloadError)
        if not (isinstance(kind, type) and issubclass(kind, DownloadError)):
            kind = DownloadError
        error = kind(f"the process this one waited for found: {record['message']}")  # a parenthesis had met the CLI's hint
        if record.get("reason"):
            error.reason = record["reason"]
        return error
    return None


def forget_failure(path: Path) -> None:
    with suppress(OSError):
        _failure_note(path).unlink(missing_ok=True)


def waiting_hold(path: Path) -> SharedHold:
    """The shared hold of the processes that may wait for the download of ``path``: the note of a
    failure stays while any of them is still to read it."""
    return SharedHold(path.with_name(f".{path.name}.waiting"))


def leave_waiting(hold: SharedHold, path: Path) -> None:
    """Let go of ``hold`` (its holder holds the download lock of ``path``); the last process out
    removes the failure note, which all who waited have read by then."""
    if hold.release():
        forget_failure(path)


def pass_on_failure(path: Path) -> None:
    """After a failed download's lock is let go: the processes that waited read its note as each
    takes the lock in turn, and the last of them removes it (:func:`leave_waiting`); with none
    waiting it goes now, so a failure leaves no file behind. (It had been removed 0.3 s after the
    failure: a waiter that had not taken the lock by then, on a loaded machine, found no note and
    made a full set of attempts of its own.) A note that stays (a new download holds the lock) is
    removed by that download's end or by a later sweep."""
    vacant = waiting_hold(path).vacant()
    if vacant is False:
        return
    if vacant is None:  # no flock (Windows, some network file systems): a moment for the waiters
        time.sleep(0.3)
    deadline = time.monotonic() + (2.0 if vacant is None else 0.0)
    while True:
        try:
            with CacheLock(path, timeout=0):
                forget_failure(path)
            return
        except LockTimeout:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)
        except OSError:
            forget_failure(path)
            return


def sweep_parts(folder: Path, name: str | None = None, *, any_age: bool = False) -> tuple[int, int]:
    """Delete what killed downloads left: the part files of ``name`` (its lock is held by the
    caller, so no one is writing them), any older than :data:`STALE_PART_S` (``any_age``: any)
    whose file is not being downloaded now, and lock files no process holds. Returns the files
    removed and their bytes."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0, 0
    now = time.time()
    removed, size = 0, 0

    def remove(path: Path) -> None:
        nonlocal removed, size
        length = path.lstat().st_size
        path.unlink()
        removed, size = removed + 1, size + length

    for part in (p for p in entries if p.name.startswith(".") and p.name.endswith(".part")):
        target = part.name[1:].rsplit(".", 2)[0]
        with suppress(OSError, LockTimeout):
            if target == name:
                remove(part)
            elif any_age or now - part.stat().st_mtime > STALE_PART_S:
                with CacheLock(folder / target, timeout=0):
                    remove(part)
    for note in (p for p in entries if p.name.startswith(".") and p.name.endswith(".failed")):
        with suppress(OSError):  # read by the processes waiting at the time only
            if any_age or now - note.stat().st_mtime > FAILURE_NOTE_S:
                remove(note)
    for hold in (p for p in entries if p.name.startswith(".") and p.name.endswith(".waiting")):
        with suppress(OSError):
            if SharedHold(hold).vacant():  # left by a process that ended waiting: deleted
                removed += 1
    for lock in (p for p in entries if p.name.endswith(".lock") and p.name[:-5] != name):
        with suppress(OSError, LockTimeout):
            with CacheLock(folder / lock.name[:-5], timeout=0):
                pass  # taken and given back: the holder deletes the file, so a dead one's goes
            removed += 1
    return removed, size


def _broken(exc: BaseException) -> str:
    """Why a transfer broke, in words (urllib3's text is a tuple of exception reprs)."""
    text = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else _short(exc)
    if "IncompleteRead" in text or "Connection broken" in text:
        return "the server closed the connection"
    return text.split(": IncompleteRead")[0][:200]


def _bar(name: str, total: int | None, url: str):  # -> tqdm
    from tqdm import tqdm

    quiet = not log.isEnabledFor(logging.WARNING)
    hidden = sys.stderr is None or not sys.stderr.isatty() or quiet
    if hidden and not quiet:  # a log or a script: one line, so a long pause is explained
        size = f" ({total / 1e6:.1f} MB)" if total else ""
        log.warning("downloading %s%s from %s", name, size, _host(url))
    return tqdm(
        total=total, desc=f"downloading {name}", unit="B", unit_scale=True, unit_divisor=1024,
        file=sys.stderr, disable=hidden, leave=False, dynamic_ncols=True,
    )


def _tls_trouble(exc: BaseException, url: str) -> str:
    """Why a TLS handshake failed, with the way on (requests' own text is a chain of reprs that
    the 200-character cut ended mid-word, before the reason)."""
    import ssl

    inner = _innermost(exc, ssl.SSLError)
    if isinstance(inner, ssl.SSLCertVerificationError):
        why = inner.verify_message or "not trusted"
        return (f"the certificate of {_host(url)} is not trusted ({why}); where a proxy or mirror on your network "
                "has a certificate authority of its own, set REQUESTS_CA_BUNDLE to that authority's certificate "
                "(a PEM file)")
    why = (inner.reason or "").replace("_", " ").lower() if isinstance(inner, ssl.SSLError) else ""
    return (f"no TLS connection with {_host(url)}" + (f" ({why})" if why else "")
            + "; if that server speaks plain HTTP, give its address with http://")


def _innermost(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` among the exceptions ``exc`` wraps (urllib3 keeps them in args and
    ``reason``, Python in ``__cause__`` and ``__context__``)."""
    todo, seen = [exc], set()
    while todo:
        item = todo.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return item
        todo += [x for x in (*item.args, getattr(item, "reason", None), item.__cause__, item.__context__)
                 if isinstance(x, BaseException)]
    return None


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _short(exc: BaseException) -> str:
    return first_line(exc)[:200]

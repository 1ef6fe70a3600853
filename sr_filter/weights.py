"""Getting weight files onto disk safely, and reading them without running pickled code.

Downloads go to a per-user cache (``SR_FILTER_CACHE_DIR`` or the platformdirs cache folder) through
:mod:`sr_filter.download` (time limits, sha256, atomic rename); a lock without a lock file
(:mod:`sr_filter.cachelock`) makes concurrent first uses download once. ``SR_FILTER_WEIGHTS_URL``
replaces the official URLs with a mirror (base URL + file name); ``SR_FILTER_OFFLINE=1`` forbids
network access. Files are read with ``torch.load(weights_only=True)`` after a check of their
unpacked size, so neither pickled code nor a zip bomb gets to run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import tempfile
import threading
import time
import zipfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Mapping, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

from . import netmemory, repickle, sniff
from .cachelock import CacheLock, LockTimeout
from .download import (
    ENV_CACHE, ENV_MIRROR, cache_error, download, failure_since, forget_failure, leave_waiting, note_failure, note_state,
    pass_on_failure, sweep_parts, wait_for_lock, waiting_hold,
)
from .envvars import env_flag, env_text
from .errors import (
    CacheError,
    ChecksumError,
    DownloadError,
    DownloadSettingError,
    NetworkUnavailableError,
    OfflineError,
    WeightsFormatError,
    first_line,
)
from .manifest import Manifest, ModelEntry, load_manifest

if TYPE_CHECKING:  # torch is imported where weights are read, so `sr-filter models` starts fast
    import torch

log = logging.getLogger(__name__)

ENV_OFFLINE = "SR_FILTER_OFFLINE"
_LOCK_WAIT_S = 3600
#: a weights file may unpack to at most min(MAX_UNPACKED, max(MIN_UNPACKED_LIMIT, UNPACK_RATIO x its size))
MAX_UNPACKED = 4 << 30
MIN_UNPACKED_LIMIT = 64 << 20
UNPACK_RATIO = 200


def cache_dir() -> Path:
    """Where downloaded weights live; not created here (only when a download starts)."""
    env = env_text(ENV_CACHE)
    if env:  # absolute: a relative folder would be another cache in every working directory
        expanded = os.path.expanduser(env)
        if expanded.startswith("~"):  # ~user of no such user (pathlib raised RuntimeError: a traceback)
            raise DownloadSettingError(f"{ENV_CACHE}={env!r}: {expanded.split(os.sep)[0]} names no user here; set a folder")
        return Path(os.path.abspath(expanded))
    import platformdirs

    return Path(platformdirs.user_cache_dir("sr-filter", appauthor=False)) / "weights"


def mirror_url() -> str | None:
    """The mirror's base URL from ``SR_FILTER_WEIGHTS_URL``, or None; checked whole here, so a
    bad one is named as the setting it is (``http://`` had become a request for ``http:/x.pth``,
    a bad port a parser's message)."""
    url = env_text(ENV_MIRROR)
    if not url:
        return None
    fix = "set it to a mirror's base URL (e.g. https://mirror.example.org/sr-filter/) or unset it"
    if not url.lower().startswith(("http://", "https://")):
        raise DownloadSettingError(f"{ENV_MIRROR}={url!r} is not an http:// or https:// address; {fix}")
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1/x": a bracket left open
        raise DownloadSettingError(f"{ENV_MIRROR}={url!r} is not a valid address; {fix}") from None
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.rsplit("]", 1)[-1].endswith(":")):
        raise DownloadSettingError(f"{ENV_MIRROR}={url!r} has a port that is not a number from 1 to 65535; {fix}")
    if not parts.hostname:
        raise DownloadSettingError(f"{ENV_MIRROR}={url!r} names no host; {fix}")
    return url


def source_urls(file: str, official: Sequence[str]) -> list[str]:
    """The URLs to try for a file: the mirror alone when one is set (the file name goes at the
    end of its path, before any query such as an access token), else the official ones."""
    mirror = mirror_url()
    if mirror:
        parts = urlsplit(mirror)
        return [urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + quote(file), fragment=""))]
    return list(official)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def local_file_sha256(path: Path) -> str:
    """A user's own weights file's sha256, remembered for as long as the file keeps its identity,
    size and modification time: the manifest lookup before loading and the OpenVINO cache's key
    hash a large file once per process, not once each."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _DIGESTS_LOCK:
        known = _DIGESTS.get(key)
    if known is None:
        known = file_sha256(Path(path))
        with _DIGESTS_LOCK:
            if len(_DIGESTS) >= 16:
                _DIGESTS.clear()
            _DIGESTS[key] = known
    return known


#: local weights files' digests, by (path, device, inode, size, mtime)
_DIGESTS: dict[tuple, str] = {}
_DIGESTS_LOCK = threading.Lock()


def cached_path(entry: ModelEntry) -> Path:
    """The final path of an entry's file: inside the package if it ships with it, else in the cache."""
    if entry.packaged:
        return Path(str(resources.files(__package__).joinpath(entry.packaged)))
    return cache_dir() / entry.file


def cache_state(entry: ModelEntry) -> str:
    """``built-in``, ``cached`` (size and sha256 checked), ``corrupt`` (a wrong file, removed on
    next use) or ``download`` (not on this machine yet)."""
    if entry.packaged:
        return "built-in"
    path = cached_path(entry)
    if not path.exists():
        return "download"
    try:
        return "cached" if _good(path, entry.sha256, entry.size) else "corrupt"
    except CacheError:
        return "corrupt"


def fetch(entry: ModelEntry, *, offline: bool | None = None, retry_unreachable: bool = True) -> Path:
    """Path to the entry's verified file, downloading it first if needed.

    ``retry_unreachable=False`` (presets, which have a fallback) fails at once with
    :class:`NetworkUnavailableError` when the file's hosts were found unreachable in the last
    minutes, unless ``offline=False`` or ``SR_FILTER_OFFLINE=0`` asks to try anyway.
    """
    path = cached_path(entry)
    if entry.packaged:
        _verify(path, entry.sha256, entry.size, source="the sr_filter package")
        return path
    urls = source_urls(entry.file, entry.urls)
    return _fetch_to(path, urls, entry.sha256, entry.size, offline=offline, retry_unreachable=retry_unreachable)


_INSTEAD = "choose a built-in model (see `sr-filter models`)"


def fetch_url(
    url: str, sha256: str, filename: str, size: int | None = None, *, offline: bool | None = None, instead: str = _INSTEAD
) -> Path:
    """Download any pinned file (e.g. perceptual-loss backbones) through the same checked path.

    ``instead``: the way round a download that is off, as the caller's user would take it.
    """
    return _fetch_to(cache_dir() / filename, source_urls(filename, [url]), sha256.lower(), size, offline=offline,
                     instead=instead)


def _fetch_to(
    path: Path, urls: list[str], sha256: str, size: int | None, *, offline: bool | None, retry_unreachable: bool = True,
    instead: str = _INSTEAD,
) -> Path:
    sweep_parts(path.parent)
    if _good(path, sha256, size):
        return path
    state, reason = "is not in the cache", "not downloaded yet"
    if path.is_file():  # a wrong file is never left for the next run to trip over
        outcome = _drop_if_still_corrupt(path, sha256, size)
        if outcome == "good":  # another process had just fetched it
            return path
        if outcome == "removed":
            state, reason = "was corrupt (removed)", "its cached file was corrupt and is removed"
        else:
            state = reason = f"is corrupt and could not be removed ({outcome})"
    env_offline = env_flag(ENV_OFFLINE, DownloadSettingError)
    if offline if offline is not None else env_offline:
        error = OfflineError(
            f"{path.name} {state} and downloads are off ({ENV_OFFLINE}=1 or offline mode). "
            f"Put the file at {path}, allow downloads (from the official address, or a mirror named by {ENV_MIRROR}), "
            f"or {instead}."
        )
        error.reason = reason
        raise error
    if not retry_unreachable and offline is None and env_offline is None:
        _refuse_if_remembered(path, urls)
    try:
        _make_dir(path.parent)
    except CacheError as exc:
        if path.is_file():  # the corrupt file that stays is the news (it had been left unsaid)
            raise CacheError(f"{path} {state}, and {exc}") from None
        raise
    if path.is_dir():
        raise CacheError(f"cannot save {path.name}: {path} is a folder; remove it or set {ENV_CACHE} to another folder")
    lock = CacheLock(path, timeout=0)
    waiting = waiting_hold(path)
    waiting.hold()  # before the lock: a failure's note stays until this process has read it
    waited, before = False, None
    try:
        try:
            lock.acquire()
        except LockTimeout:  # it had waited without a word
            holder = lock.holder()
            log.warning("waiting for %s, which is downloading %s", f"process {holder}" if holder else "another process", path.name)
            waited, before = True, note_state(path)
            wait_for_lock(lock, path, limit=_LOCK_WAIT_S)
    except OSError as exc:
        waiting.release()
        raise cache_error(exc, path) from None
    except BaseException:
        waiting.release()
        raise
    try:
        # another process may have finished the download while we waited for the lock
        good = _good(path, sha256, size)
        failed = failure_since(path, before, urls) if waited and not good else None
        leave_waiting(waiting, path)
        if good:
            return path
        if failed is not None:  # the same addresses, moments ago: their attempts are not made again
            raise failed
        sweep_parts(path.parent, path.name)  # we hold the lock: any part of this file is orphaned
        if path.is_file():
            _drop_corrupt(path)
        try:
            download(urls, path, sha256, size)
        except DownloadError as exc:
            note_failure(path, urls, exc)
            lock.release()
            pass_on_failure(path)
            raise
        forget_failure(path)
        return path
    finally:
        lock.release()


def _drop_if_still_corrupt(path: Path, sha256: str, size: int | None) -> str:
    """Remove a cached file that fails its check, deciding again under the download lock: another
    process may have just put the right file there (it had been deleted from under it). Returns
    "removed", "good" (it is right now, or gone), or why it stays."""
    try:
        with CacheLock(path, timeout=0):
            if not path.is_file() or _good(path, sha256, size):
                return "good" if path.is_file() else "removed"
            _drop_corrupt(path)
            return "removed" if not path.exists() else "the cache folder does not allow deleting it"
    except LockTimeout:
        return "another process is downloading it now"
    except OSError as exc:
        return exc.strerror or first_line(exc)


def _refuse_if_remembered(path: Path, urls: list[str]) -> None:
    since = netmemory.unreachable_since(path.parent, urls)
    if since is None:
        return
    import time

    minutes = int((time.time() - since) // 60)
    when = f"{minutes} min ago" if minutes else "in the last minute"
    hosts = ", ".join(sorted({netmemory.host_of(u) for u in urls}))
    error = NetworkUnavailableError(
        f"{path.name} is not in the cache and {hosts} could not be reached {when}; not trying again for "
        f"{netmemory.REMEMBER_S / 60:.0f} min (set {ENV_OFFLINE}=0 to try now)"
    )
    error.reason = f"{hosts} could not be reached {when}; set {ENV_OFFLINE}=0 to try now"
    raise error


def _drop_corrupt(path: Path) -> None:
    log.warning("%s is corrupt (wrong size or sha256); removed it", path)
    try:
        path.unlink()
    except OSError:
        pass  # a read-only cache: the download, or the offline error, says what to do


def _good(path: Path, sha256: str, size: int | None) -> bool:
    try:
        if not path.is_file():
            return False
        if size is not None and path.stat().st_size != size:
            return False
        return file_sha256(path) == sha256
    except OSError as exc:
        raise CacheError(f"cannot read {path} ({exc.strerror or first_line(exc)}); fix its permissions or set {ENV_CACHE} to another folder") from None


def _verify(path: Path, sha256: str, size: int | None, source: str) -> None:
    if not path.is_file():
        raise WeightsFormatError(f"{path} is missing from {source}; reinstall sr-filter")
    actual = file_sha256(path)
    if actual != sha256:
        raise ChecksumError(f"{path} has sha256 {actual}, expected {sha256} ({source}); reinstall sr-filter")


def cache_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be the weights cache, found without creating it (a file in its place
    or above it), else None."""
    for part in (folder, *folder.parents):
        with contextlib.suppress(OSError):
            if part.exists():
                return None if part.is_dir() else _NOT_A_FOLDER.format(folder=folder, env=ENV_CACHE)
    return None


_NOT_A_FOLDER = "the weights cache {folder} is a file (or inside one), not a folder; set {env} to a folder"


def cache_write_problem(folder: Path) -> str | None:
    """Why no file can be written into ``folder``, or where it does not exist yet into the nearest
    folder above it that does (a read-only mount, /proc, a folder without permission), else None.

    Found by creating and removing a probe file: permission bits say nothing of a read-only
    mount's or /proc's refusal to root, for whom every access() check passes."""
    for part in (folder, *folder.parents):
        try:
            if not part.exists():
                continue
            if not part.is_dir():
                return None  # cache_problem names this
        except OSError:
            continue
        try:
            handle, probe = tempfile.mkstemp(prefix=".sr-filter-probe-", dir=part)
        except OSError as exc:
            return f"no file can be created in {part} ({exc.strerror or exc})"
        os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(probe)
        return None
    return None


def _make_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        link = _broken_link(folder)
        if link == folder:  # a link in a loop or to nothing had been "a file (or inside one)"
            raise CacheError(f"the weights cache {folder} is a link that leads to no folder (a loop or a missing "
                             f"target); set {ENV_CACHE} to a folder") from None
        if link is not None:  # one above it: the same had been said only of the cache folder itself
            raise CacheError(f"the weights cache {folder} is inside {link}, a link that leads to no folder (a loop or "
                             f"a missing target); set {ENV_CACHE} to a folder") from None
        raise CacheError(_NOT_A_FOLDER.format(folder=folder, env=ENV_CACHE)) from None
    except OSError as exc:
        raise CacheError(f"cannot create the weights cache {folder} ({exc.strerror}); set {ENV_CACHE} to a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise CacheError(f"the weights cache {folder} is not writable; set {ENV_CACHE} to a writable folder")


def _broken_link(folder: Path) -> Path | None:
    """The first of ``folder`` and the folders above it that is a link leading to no folder, if any."""
    for part in (*reversed(folder.parents), folder):
        with contextlib.suppress(OSError):
            if part.is_symlink() and not part.is_dir():
                return part
    return None


def _check_unpacked_size(path: Path) -> None:
    """Refuse a zip checkpoint whose entries unpack to far more than a weights file of its size
    could hold, before torch.load reserves memory for them."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # torch.load reports an unreadable file in its own words
    size = path.stat().st_size
    limit = min(MAX_UNPACKED, max(MIN_UNPACKED_LIMIT, UNPACK_RATIO * size))
    if unpacked > limit:
        raise WeightsFormatError(
            f"{path.name} would unpack to {unpacked / 2**20:.0f} MiB from {size / 2**20:.1f} MiB (at most "
            f"{limit / 2**20:.0f} MiB is allowed); it is not a weights file that can be loaded safely"
        )


def same_file_in_manifest(path: Path, manifest: Manifest | None = None) -> ModelEntry | None:
    """The manifest entry whose file ``path`` is, by size and then sha256 (only files of a listed
    size are hashed), else None."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return None
    manifest = manifest or load_manifest()
    same_size = [e for e in manifest.models if e.size == size]
    if not same_size:
        return None
    digest = local_file_sha256(Path(path))
    return next((e for e in same_size if e.sha256 == digest), None)


class _PickledDtype:
    """``numpy.dtype`` as a checkpoint's pickle calls it, kept inert: it only records what the file
    says, and :func:`_pickled_scalar` makes plain numbers of it. numpy's own dtype would take the
    file's state through ``__setstate__``, which can describe an object field, and its scalar
    function would then turn the file's bytes into a pointer (a crafted file crashed on reading)."""

    def __init__(self, spec: object = None, align: object = False, copy: object = True) -> None:
        self.spec, self.state = spec, None

    def __setstate__(self, state: object) -> None:
        self.state = state


#: numpy type codes a checkpoint's numbers use: bool, signed and unsigned integers, floats, complex
_NUMBER_SPEC = re.compile(r"[biufc]\d{1,2}|\?")


def _pickled_scalar(dtype: object, data: object = None) -> int | float | complex | bool:
    """``numpy.core.multiarray.scalar`` for plain numbers only, as a Python number."""
    import pickle

    import numpy as np

    state = getattr(dtype, "state", None)
    plain = (isinstance(dtype, _PickledDtype) and isinstance(dtype.spec, str) and _NUMBER_SPEC.fullmatch(dtype.spec)
             and isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|", "=")
             and state[2] is None and state[3] is None and state[4] is None)  # no sub-array, names or fields
    if not plain or not isinstance(data, bytes):
        raise pickle.UnpicklingError("a numpy value that is not a plain number")
    kind = np.dtype(dtype.spec).newbyteorder(state[1] if state[1] in "<>" else "=")
    if len(data) != kind.itemsize:
        raise pickle.UnpicklingError("a numpy number whose bytes do not fit its type")
    return np.frombuffer(data, kind)[0].item()


#: held while the stand-ins are allowed: torch keeps its allowed globals in one set for the whole
#: process, so the first of several loads in threads to finish had taken them away from the others
#: (a checkpoint with numpy numbers was refused at random)
_STAND_INS_LOCK = threading.RLock()


@contextlib.contextmanager
def _numpy_numbers() -> Iterator[None]:
    """weights_only loading that also reads numpy numbers: training checkpoints keep their epoch or
    best score as numpy scalars beside the weights (such files had been refused as "pickled Python
    objects"). Through the inert stand-ins above, under both numpy 1's and numpy 2's names; torch
    before 2.6 names no stand-ins, and such files stay refused there. One load at a time."""
    import torch

    safe = getattr(torch.serialization, "safe_globals", None)
    if safe is None or tuple(int(p) for p in re.findall(r"\d+", torch.__version__)[:2]) < (2, 6):
        yield
        return
    with _STAND_INS_LOCK, safe([(_PickledDtype, "numpy.dtype"), (_pickled_scalar, "numpy.core.multiarray.scalar"),
                                (_pickled_scalar, "numpy._core.multiarray.scalar")]):
        yield


def existing_file(path: Path) -> Path:
    """``path``, or a WeightsFormatError saying why no weights file is there (missing, a folder, a
    device or pipe: /dev/zero and a FIFO had been "does not exist")."""
    if path.is_dir():
        raise WeightsFormatError(f"{path} is a folder, not a weights file")
    if path.exists() and not path.is_file():
        raise WeightsFormatError(f"{path} is not a regular file (a device or pipe), not a weights file")
    if not path.is_file():
        raise WeightsFormatError(f"weights file {path} does not exist")
    return path


def file_kind(path: Path) -> str:
    """What a weights file is by its first bytes, whatever its name says: ``torch`` (PyTorch's
    zip), ``torchscript`` (a zip with code), ``pickle`` (PyTorch's older format), ``safetensors``,
    ``text``, ``empty``, ``image`` (a picture saved under a weights name) or ``unknown``; a missing
    file or a folder is a :class:`WeightsFormatError`."""
    existing_file(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "torch"  # a damaged archive: torch.load words it
        return "torchscript" if any(n.split("/", 2)[1:2] == ["code"] or n.endswith("/constants.pkl") for n in names) else "torch"
    if head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8:
        # an 8-byte header length, then the JSON header; before the pickle test, since one length
        # in 256 starts with the pickle protocol's 0x80 byte
        return "safetensors"
    if head[:1] == b"\x80" or head == _TEXT_MAGIC[:16]:  # the latter: torch.save's older format, pickle protocol 0 or 1
        return "pickle"
    # after the weights' own signatures: a safetensors header length of 0x4D42 + k * 65536 bytes
    # starts with "BM" and had been called a BMP picture
    if sniff.image_format(head):
        return "image"
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "text"
    return "unknown"


def load_state_dict(path: str | Path, state_key: str | None = None, *, with_record: bool = False) -> Any:
    """Read a checkpoint with ``weights_only=True`` (no pickled code runs) and unwrap it. With
    ``with_record``: (state dict, :func:`trainer_record` of the same read)."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "torchscript":
        raise WeightsFormatError(f"{path.name} is a TorchScript program, which is not read (it is code); "
                                 "save the network's state dict instead")
    if kind in ("text", "empty", "image") or (kind == "unknown" and path.suffix.lower() != ".safetensors"):
        with open(path, "rb") as f:
            picture = sniff.image_format(f.read(16))
        what = {"text": "a text file", "empty": "empty (0 bytes)", "image": f"a {picture} image"}.get(kind, "not a PyTorch file")
        if kind == "unknown" and path.suffix.lower() == ".onnx":  # ("is not a PyTorch file, not model weights")
            raise WeightsFormatError(f"{path.name} is an ONNX model, which is not read here; give the PyTorch weights it "
                                     "was made from (.pth, .pt, .ckpt or .safetensors)")
        raise WeightsFormatError(f"{path.name} is {what}, not model weights")
    _check_unpacked_size(path)
    import pickle
    import warnings

    import torch

    protocol = pickle_protocol(path, kind)
    try:
        with warnings.catch_warnings():  # torch's advice about trusted sources: not an option here
            warnings.simplefilter("ignore")
            with open(path, "rb") as f, _numpy_numbers():  # a file object: torch
                source = _as_protocol_2(f) if protocol is not None and protocol > 2 else f
                obj = torch.load(source, map_location="cpu", weights_only=True)  # would read a name ending in .safetensors as one
    except Exception as exc:  # pickle errors, zip errors, unsafe globals: all mean "not loadable"
        if kind == "pickle" and plain_pickle(path):  # it had been "(Invalid magic number; corrupt file?)"
            raise WeightsFormatError(f"{path.name} is a plain Python pickle (pickle.dump), not a file torch.save wrote, "
                                     "and is not read (pickled objects are never run here); save the weights with "
                                     "torch.save(model.state_dict(), ...)") from None
        if protocol is not None and protocol != 2 and "unsupported operand" in str(exc).lower():
            raise WeightsFormatError(  # it had been "holds pickled Python objects (a whole model or a custom class)"
                f"{path.name} is pickled with protocol {protocol or '0 or 1'}, in a form the safe loader does not read (it reads "
                "protocol 2, and 3 to 5 rewritten as 2); save it again with torch.save(state_dict, path) and its default "
                "protocol, or as .safetensors") from None
        if "weights only load failed" in str(exc).lower() or isinstance(exc, pickle.UnpicklingError):
            named = (re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
                     or re.search(r"(a numpy (?:value|number) [^.\n]*)", str(exc)))  # _pickled_scalar's refusal
            what = f"({named.group(1)})" if named else "(a whole model or a custom class)"  # had been that guess alone
            raise WeightsFormatError(
                f"{path.name} holds pickled Python objects {what}, which are never run "
                "here; save the network's state dict instead (torch.save(model.state_dict(), ...))"
            ) from None
        detail = first_line(exc).split(". ")[0].rstrip(".")[:160]  # torch's own first sentence, not its appeals
        cut = isinstance(exc, OSError) and kind == "torch" and not zipfile.is_zipfile(path)
        if "PytorchStreamReader" in detail or cut:  # a zip archive cut short or damaged (its directory missing)
            raise WeightsFormatError(f"{path.name} is truncated or damaged ({detail}); download or copy it again") from None
        if "enforce fail at inline_container" in detail and zipfile.is_zipfile(path):  # torch's internal words alone
            raise WeightsFormatError(f"{path.name} is a zip archive but not one torch.save wrote (it holds no pickled "
                                     "tensors), not model weights") from None
        raise WeightsFormatError(f"{path.name} is not a PyTorch weights file that can be loaded safely ({detail})") from None
    state = canonicalize(obj, state_key, path.name)
    return (state, trainer_record(obj)) if with_record else state


#: torch.save's older format written with pickle protocol 0 or 1: its magic number as a text long
_TEXT_MAGIC = b"L119547037146038801333356L"


def pickle_protocol(path: Path, kind: str) -> int | None:
    """The pickle protocol of a checkpoint's object (``torch``: its data.pkl; ``pickle``: the older
    format's first pickle), or None where that is not to be found."""
    try:
        if kind == "torch":
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
                if name is None:
                    return None
                with archive.open(name) as f:
                    return repickle.protocol(f.read(2))
        if kind == "pickle":
            with open(path, "rb") as f:
                return repickle.protocol(f.read(2))
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return None


def _as_protocol_2(f: BinaryIO) -> BinaryIO:
    """The checkpoint open in ``f`` with its pickles rewritten as protocol 2 (:mod:`sr_filter.repickle`),
    in memory; ``f`` itself where they cannot be."""
    again = repickle.rewritten(f.read())
    f.seek(0)
    return f if again is None else io.BytesIO(again)


def plain_pickle(path: Path) -> bool:
    """Whether ``path`` is a pickle.dump file: a pickle (by :func:`file_kind`) that is not torch.save's
    older format, which torch.load reads."""
    return file_kind(path) == "pickle" and not _legacy_torch(path)


def _legacy_torch(path: Path) -> bool:
    """Whether a pickle file starts as torch.save's pre-zip format does (its magic number first);
    any other pickle was written by pickle.dump, which torch.load cannot read."""
    with open(path, "rb") as f:  # its magic number as a pickled long, after any protocol's header
        head = f.read(64)
    return b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" in head or head.startswith(_TEXT_MAGIC)


def trainer_record(checkpoint: object) -> dict | None:
    """The ``{"arch", "settings"}`` record that sr_filter's trainer writes beside the weights in
    ``model.pth`` (its ``sr_filter`` key) and at the top of its checkpoints (``latest.pt``,
    ``iter_N.pt``, whose record had gone unread: a ReLU run's checkpoint loaded with LeakyReLU),
    or None."""
    if not isinstance(checkpoint, dict):
        return None
    record = checkpoint.get("sr_filter")
    if record is None and isinstance(checkpoint.get("arch"), str) and "format" in checkpoint:  # a training checkpoint
        record = {"arch": checkpoint["arch"], "settings": checkpoint.get("settings")}
    return record if isinstance(record, dict) and isinstance(record.get("settings"), dict) else None


#: containers that training code wraps a state dict in (BasicSR, KAIR, spandrel's list, ...), in order
_WRAPPERS = ("params_ema", "params-ema", "params", "model_state_dict", "state_dict", "ema", "model", "net", "network",
             "generator")  # "ema" before "model": a training checkpoint's validated (EMA) weights, not its raw ones


def _checkable(tensor: torch.Tensor) -> torch.Tensor:
    """A float tensor in a type torch's checks take: 8-bit floats (fp8 checkpoints) have no
    isfinite or isnan (an internal error had come of them); they are widened for the check."""
    return tensor.float() if tensor.element_size() == 1 else tensor


def canonicalize(obj: object, state_key: str | None = None, name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap the state dict from the containers training code writes (``params_ema``,
    ``model_state_dict``, ``net``, ... or any single key) and strip DataParallel's ``module.``."""
    import torch

    if isinstance(obj, Mapping):
        for key in [state_key] if state_key else _WRAPPERS:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        else:
            if not state_key and len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
                obj = next(iter(obj.values()))  # {"weights": state dict}
    if isinstance(obj, Mapping) and any(isinstance(v, torch.Tensor) for v in obj.values()) and all(
            isinstance(v, (torch.Tensor, int, float, str)) or v is None for v in obj.values()):
        # a step count or a note beside the weights ({"conv.weight": ..., "epoch": 5}): it had been
        # "does not hold a state dict of tensors"; the network's strict load still checks the tensors
        obj = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsFormatError(f"{name} does not hold a state dict of tensors")
    # infinities can be meant (an attention mask's -inf), but not in a layer's weights or biases
    damaged = [k for k, v in obj.items() if v.is_floating_point() and bool(
        (~torch.isfinite(_checkable(v)) if k.endswith((".weight", ".bias")) else torch.isnan(_checkable(v))).any())]
    if damaged:  # they had run, and NaN pixels were blamed on the OpenVINO conversion first
        raise WeightsFormatError(f"{name} holds NaN or infinite values ({damaged[0]}"
                                 f"{f' and {len(damaged) - 1} more tensors' if len(damaged) > 1 else ''}): the weights "
                                 "are damaged (a training run that diverged, or a broken conversion); use another copy")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}

"""Getting weight files onto disk safely, and reading them without running pickled code.

Downloads go to a per-user cache (``SR_FILTER_CACHE_DIR`` or the platformdirs cache folder),
stream into a temporary file in the same folder, are checked against the manifest's size and
sha256, and only then are renamed into place, so no partial or wrong file is ever visible under
the final name. A file lock makes concurrent first uses download once. ``SR_FILTER_WEIGHTS_URL``
replaces the official URLs with a mirror (base URL + file name); ``SR_FILTER_OFFLINE=1`` forbids
network access.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Callable, Mapping

import torch

from .errors import ChecksumError, DownloadError, WeightsFormatError, first_line
from .manifest import ModelEntry

log = logging.getLogger(__name__)

ENV_CACHE = "SR_FILTER_CACHE_DIR"
ENV_MIRROR = "SR_FILTER_WEIGHTS_URL"
ENV_OFFLINE = "SR_FILTER_OFFLINE"
ENV_RETRIES = "SR_FILTER_DOWNLOAD_RETRIES"
_CHUNK = 1 << 16
_TIMEOUT = (10, 60)  # connect, read (seconds)


def cache_dir() -> Path:
    """Where downloaded weights live; not created here (only when a download starts)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("sr-filter", appauthor=False)) / "weights"


def is_offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


def mirror_url() -> str | None:
    return os.environ.get(ENV_MIRROR) or None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cached_path(entry: ModelEntry) -> Path:
    """The final path of an entry's file: inside the package if it ships with it, else in the cache."""
    if entry.packaged:
        return Path(str(resources.files(__package__).joinpath(entry.packaged)))
    return cache_dir() / entry.file


def is_cached(entry: ModelEntry) -> bool:
    """Whether the entry's file is on disk with the right size (the hash is checked on use)."""
    path = cached_path(entry)
    return path.is_file() and path.stat().st_size == entry.size


def entry_urls(entry: ModelEntry) -> list[str]:
    """The URLs to try for an entry: the mirror alone when one is set, else the official ones."""
    mirror = mirror_url()
    if mirror:
        return [mirror.rstrip("/") + "/" + entry.file]
    return list(entry.urls)


def fetch(entry: ModelEntry, *, offline: bool | None = None, progress: bool | None = None) -> Path:
    """Path to the entry's verified file, downloading it first if needed."""
    path = cached_path(entry)
    if entry.packaged:
        _verify(path, entry.sha256, entry.size, source="the sr_filter package")
        return path
    return _fetch_to(path, entry_urls(entry), entry.sha256, entry.size, offline=offline, progress=progress)


def fetch_url(url: str, sha256: str, filename: str, size: int | None = None, *, offline: bool | None = None) -> Path:
    """Download any pinned file (e.g. perceptual-loss backbones) through the same checked path."""
    mirror = mirror_url()
    urls = [mirror.rstrip("/") + "/" + filename] if mirror else [url]
    return _fetch_to(cache_dir() / filename, urls, sha256.lower(), size, offline=offline, progress=None)


def _fetch_to(
    path: Path, urls: list[str], sha256: str, size: int | None, *, offline: bool | None, progress: bool | None
) -> Path:
    if _good(path, sha256, size):
        return path
    if offline if offline is not None else is_offline():
        state = "is corrupt" if path.exists() else "is not in the cache"
        raise DownloadError(
            f"{path.name} {state} and downloads are off ({ENV_OFFLINE}=1 or --offline). "
            f"Put the file at {path}, set {ENV_MIRROR} to a server that has it, or choose a model "
            f"that ships with sr_filter (see `sr-filter models`)."
        )
    _make_dir(path.parent)
    from filelock import FileLock, Timeout

    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=3600)
    except Timeout:
        raise DownloadError(f"waited an hour for another process to download {path.name}; remove {lock.lock_file}") from None
    try:
        # another process may have finished the download while we waited for the lock
        if _good(path, sha256, size):
            return path
        if path.exists():
            log.warning("%s is corrupt (wrong size or sha256); downloading it again", path)
        _download(urls, path, sha256, size, progress)
        return path
    finally:
        lock.release()


def _good(path: Path, sha256: str, size: int | None) -> bool:
    if not path.is_file():
        return False
    if size is not None and path.stat().st_size != size:
        return False
    return file_sha256(path) == sha256


def _verify(path: Path, sha256: str, size: int | None, source: str) -> None:
    if not path.is_file():
        raise WeightsFormatError(f"{path} is missing from {source}; reinstall sr-filter")
    actual = file_sha256(path)
    if actual != sha256:
        raise ChecksumError(f"{path} has sha256 {actual}, expected {sha256} ({source}); reinstall sr-filter")


def _make_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the weights cache {folder} ({exc.strerror}); set {ENV_CACHE} to a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise DownloadError(f"the weights cache {folder} is not writable; set {ENV_CACHE} to a writable folder")


def _download(urls: list[str], path: Path, sha256: str, size: int | None, progress: bool | None) -> None:
    if not urls:
        raise DownloadError(f"no URL is known for {path.name}; set {ENV_MIRROR} or put the file at {path}")
    retries = max(1, int(os.environ.get(ENV_RETRIES, "3")))
    errors: list[str] = []
    for url in urls:
        for attempt in range(retries):
            try:
                _stream(url, path, sha256, size, progress)
                return
            except ChecksumError:
                raise  # the server has the wrong file: retrying will not help
            except _Retryable as exc:
                errors.append(f"{url}: {exc}")
                log.info("download of %s failed (%s), attempt %d of %d", url, exc, attempt + 1, retries)
                if attempt + 1 < retries:
                    time.sleep(min(2**attempt, 10) * 0.5)
    raise DownloadError(
        f"could not download {path.name} ({errors[-1]}). Check the network, set {ENV_MIRROR} to a mirror "
        f"that serves {path.name}, or put the file at {path}"
    )


class _Retryable(Exception):
    pass


def _stream(url: str, path: Path, sha256: str, size: int | None, progress: bool | None) -> None:
    import requests

    try:
        response = requests.get(url, stream=True, timeout=_TIMEOUT)
    except requests.RequestException as exc:
        raise _Retryable(_short(exc)) from None
    with response:
        if response.status_code != 200:
            raise _Retryable(f"HTTP {response.status_code}")
        total = size or int(response.headers.get("Content-Length") or 0) or None
        show = sys.stderr.isatty() if progress is None else progress
        bar = _ProgressBar(path.name, total) if show else None
        digest = hashlib.sha256()
        received = 0
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    for chunk in response.iter_content(_CHUNK):
                        received += len(chunk)
                        if size is not None and received > size:
                            raise ChecksumError(
                                f"{url} sent more than the expected {size} bytes for {path.name}; "
                                "the server holds a different file"
                            )
                        digest.update(chunk)
                        out.write(chunk)
                        if bar:
                            bar.update(received)
                except requests.RequestException as exc:
                    raise _Retryable(f"connection broke after {received} bytes: {_short(exc)}") from None
                out.flush()
                os.fsync(out.fileno())
            if bar:
                bar.close()
            if size is not None and received != size:
                raise _Retryable(f"got {received} of {size} bytes")
            actual = digest.hexdigest()
            if actual != sha256:
                raise ChecksumError(
                    f"sha256 mismatch for {path.name} from {url}: expected {sha256}, got {actual}; "
                    "the download was deleted"
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def _short(exc: Exception) -> str:
    return first_line(exc)[:200]


class _ProgressBar:
    """A minimal one-line progress bar on stderr (shown only on a terminal)."""

    def __init__(self, name: str, total: int | None) -> None:
        self.name, self.total, self.last = name, total, 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        if self.total:
            frac = done / self.total
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\rdownloading {self.name} [{bar:<30}] {frac:6.1%} of {self.total / 1e6:.1f} MB")
        else:
            sys.stderr.write(f"\rdownloading {self.name} {done / 1e6:.1f} MB")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def load_state_dict(path: str | Path, state_key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a checkpoint with ``weights_only=True`` (no pickled code runs) and unwrap it."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFormatError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, unsafe globals: all mean "not loadable"
        first = first_line(exc)
        raise WeightsFormatError(
            f"{path.name} is not a PyTorch weights file that can be loaded safely ({first[:160]})"
        ) from None
    return canonicalize(obj, state_key, path.name)


def canonicalize(obj: object, state_key: str | None = None, name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap ``params_ema``/``params``/``state_dict`` containers and strip DataParallel's ``module.``."""
    if isinstance(obj, Mapping):
        keys = [state_key] if state_key else ["params_ema", "params", "state_dict", "model", "generator"]
        for key in keys:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsFormatError(f"{name} does not hold a state dict of tensors")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}

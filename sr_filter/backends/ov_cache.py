"""On-disk cache of models converted to OpenVINO IR (.xml + .bin), so conversion is paid once per machine.

Converting a torch network takes seconds (tracing); reading the IR back takes milliseconds. The
cache lives next to the weights cache (``<weights cache>/openvino``) and is keyed by the weights'
sha256, the architecture settings and the OpenVINO version; not by the precision, which only the
compilation for the CPU takes (the IR is fp32 either way), so fp32 and bf16 runs share one entry. Each entry is three
files: ``KEY.xml``, ``KEY.bin`` and ``KEY.json``; the JSON records what the entry is, the sha256
and size of the two others, and what the tiler needs to know about the model (its name,
architecture, settings, scale and :class:`~sr_filter.facts.Facts`), so that a later run can find
the entry from the weights' sha256 alone and run it without torch (:func:`find`). The JSON is
renamed into place last, so it marks a complete entry. On load
everything is checked against it and the bytes that were hashed are the bytes that are read, so a
truncated, corrupt, stale or half-written entry is detected and rebuilt, never used. A cache
folder that cannot be written only means no caching: the converted model is used from memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..atomic import publish, temp_folder
from ..errors import first_line
from ..version import __version__
from ..weights import cache_dir, local_file_sha256

log = logging.getLogger(__name__)

#: bump when the layout of an entry or the way models are converted changes (4: denoised weights
#: have their own digest; a format-3 record of them carried the plain model's; 5: the facts
#: carry the multiply-adds per pixel and per value that size CPU tiles; 6: a record carries the
#: digest of its own fields, so that damaged facts are not used; 7: the facts say how the picture
#: is padded, zeros for OmniSR; 8: one entry for both precisions, which had kept two identical copies)
FORMAT = 8
#: the fields of a record that say which weights, settings and OpenVINO it is for
META_KEYS = ("format", "weights_sha256", "settings_sha256", "openvino")


def default_folder() -> Path:
    """Where converted models are cached: an ``openvino`` folder inside the weights cache."""
    return cache_dir() / "openvino"


def describe(model: Any, ov_version: str) -> dict:
    """What a cache entry for ``model`` (a LoadedModel) must say about itself to be used."""
    return {
        "format": FORMAT,
        "weights_sha256": weights_sha256(model.entry, model.path),
        "settings_sha256": settings_sha256(model.arch_name, model.params),
        "openvino": ov_version,
    }


def weights_sha256(entry: Any, path: Path) -> str:
    """The weights' sha256: the manifest's (the file was verified against it) or the file's own
    (remembered: the lookup before loading and the record written after a first conversion hash a
    large file once, not twice)."""
    if entry is not None:
        return entry.sha256
    return local_file_sha256(path)


def settings_sha256(arch: str, params: dict) -> str:
    """A digest of an architecture name and its settings."""
    settings = json.dumps({"arch": arch, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(settings.encode()).hexdigest()


def about(model: Any) -> dict:
    """What a record keeps about a LoadedModel, so a later run can tile it without loading it.
    The facts come from this release's architecture code (a later release may measure a wider
    context), so the release is part of it and an upgrade writes the record again."""
    return {
        "sr_filter": __version__,
        "name": model.name,
        "arch": model.arch_name,
        "params": json.loads(json.dumps(model.params, default=str)),
        "scale": int(model.scale),
        "facts": dataclasses.asdict(model.facts),
    }


def find(folder: Path, query: dict) -> tuple[str, dict] | None:
    """The key and record of an entry whose record matches every item of ``query`` (a subset of
    :data:`META_KEYS`) and describes its model as this release does (:func:`about`); None when
    there is none. Used to find a converted model from its weights alone, before (and without)
    loading them; :func:`load` still checks the entry's files."""
    try:
        records = sorted(folder.glob("*.json"))
    except OSError:
        return None
    for path in records:
        if not path.is_file():  # a folder or a pipe in its place: reading a pipe waits for ever
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("model"), dict) or not _sealed(record):
            continue
        if record["model"].get("sr_filter") == __version__ and all(record.get(k) == v for k, v in query.items()):
            return path.stem, record
    return None


#: the record's field holding the digest of all its other fields
SEAL = "record_sha256"


def _digest(record: dict) -> str:
    fields = {k: v for k, v in record.items() if k != SEAL}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _sealed(record: dict) -> bool:
    """Whether a record is as it was written: its facts size the tiles and its scale the output,
    and a changed one (scale 2 for a x4 model, a context of 0) had given wrong pictures."""
    try:
        return isinstance(record, dict) and record.get(SEAL) == _digest(record)
    except (TypeError, ValueError):
        return False


def entry_key(name: str, meta: dict) -> str:
    """The file stem of a cache entry: readable name plus a digest of everything that keys it."""
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "model"
    return f"{safe}-{digest}"


def load(folder: Path, key: str, meta: dict, model: dict | None = None) -> tuple[bytes, bytes] | None:
    """The (xml, bin) bytes of a complete, matching entry, or None (missing, stale or corrupt).
    With ``model`` (:func:`about`), a record that does not describe the model so is stale too,
    so that the entry is written again and later runs can use it without torch."""
    paths = _paths(folder, key)
    if not paths["json"].is_file():
        return None
    try:
        record = json.loads(paths["json"].read_text(encoding="utf-8"))
        if not _sealed(record):
            log.info("cached OpenVINO model %s has a damaged record; converting again", key)
            return None
        stale = [k for k, v in meta.items() if record.get(k) != v]
        if model is not None and record.get("model") != model:
            stale.append("model")
        if stale:
            log.info("cached OpenVINO model %s is stale (%s differs); converting again", key, ", ".join(stale))
            return None
        data = {}
        for part in ("xml", "bin"):
            if not paths[part].is_file():  # missing, or a folder or a pipe (reading one waited for ever)
                raise OSError(f"{paths[part].name} is not a file")
            blob = paths[part].read_bytes()
            if len(blob) != record[f"{part}_size"] or hashlib.sha256(blob).hexdigest() != record[f"{part}_sha256"]:
                log.info("cached OpenVINO model %s has a damaged .%s file; converting again", key, part)
                return None
            data[part] = blob
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("cached OpenVINO model %s cannot be read (%s); converting again", key, first_line(exc))
        return None
    return data["xml"], data["bin"]


def save(folder: Path, key: str, meta: dict, ov_model: Any, ov: Any, model: dict | None = None) -> bool:
    """Write a converted model atomically, with ``model`` (:func:`about`) in its record; False (with
    a notice at INFO) when the folder is not writable."""
    tmp: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = temp_folder(folder)  # removed by a later run if this one is killed
        xml = Path(tmp) / "model.xml"
        ov.save_model(ov_model, str(xml), compress_to_fp16=False)
        bin_ = xml.with_suffix(".bin")
        record = dict(meta, model=model)
        for part, path in (("xml", xml), ("bin", bin_)):
            blob = path.read_bytes()
            record[f"{part}_size"] = len(blob)
            record[f"{part}_sha256"] = hashlib.sha256(blob).hexdigest()
        record = json.loads(json.dumps(record))  # as it reads back (tuples as lists), for its digest
        record[SEAL] = _digest(record)
        record_path = Path(tmp) / "model.json"
        record_path.write_text(json.dumps(record, indent=1), encoding="utf-8")
        paths = _paths(folder, key)
        for path in (paths["json"], paths["bin"], paths["xml"]):  # the record first: incomplete until it is back
            _clear(path)
        publish(bin_, paths["bin"], overwrite=True)
        publish(xml, paths["xml"], overwrite=True)
        publish(record_path, paths["json"], overwrite=True)
        (folder / f"{key}.failed").unlink(missing_ok=True)  # a failure that was the moment is not counted on
        _drop_outdated(folder, key, meta)
        return True
    except (OSError, RuntimeError) as exc:  # OpenVINO reports a failed write as RuntimeError
        # a warning, not -v only: every run converts the model again, seconds each, without a word
        log.warning("converted models are not cached: cannot write to %s (%s); each run converts this model again",
                    folder, _why_unwritable(folder, exc))
        return False
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _why_unwritable(folder: Path, exc: BaseException) -> str:
    """The system's reason for a failed write. OpenVINO's own says "basic_ios::clear: iostream
    error" for a full disk: a small write of our own there gives the real one."""
    if getattr(exc, "strerror", None):
        return exc.strerror
    probe = folder / f".srf-probe-{uuid.uuid4().hex}"
    try:
        with open(probe, "wb") as f:
            f.write(bytes(1 << 20))
            f.flush()
            os.fsync(f.fileno())
    except OSError as failed:
        return failed.strerror or first_line(failed)
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return first_line(exc)


def _clear(path: Path) -> None:
    """Remove whatever holds an entry's file name in the cache's own folder: an old file (whose
    mode, 000 say, a replacement would otherwise keep), or a folder or pipe in its place, which
    had made every later run convert again without a word."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _drop_outdated(folder: Path, key: str, meta: dict) -> None:
    """Remove entries of the same weights left by another OpenVINO version or cache format (one per
    precision, up to format 7), so upgrades do not pile up converted copies. Anything else is left alone."""
    prefix = key.rsplit("-", 1)[0] + "-"
    for record in folder.glob(f"{prefix}*.json"):
        if record.stem == key:
            continue
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        same_model = all(old.get(k) == meta[k] for k in ("weights_sha256", "settings_sha256"))
        if same_model and (old.get("openvino"), old.get("format")) != (meta["openvino"], meta["format"]):
            for part in ("json", "xml", "bin"):  # the record first: a half-removed entry is never used
                record.with_suffix(f".{part}").unlink(missing_ok=True)


#: runs that must fail to convert a model before later runs stop trying: one failure can be the
#: moment (memory short, a process limit), not the model
FAILURES_TO_REMEMBER = 2


def _failures(folder: Path, key: str) -> tuple[int, str]:
    """(failed runs on record for this release, the last reason); (0, "") when there are none.
    A record is "RELEASE\nattempts N\nREASON" (older ones, without the count, stand as confirmed)."""
    try:
        lines = (folder / f"{key}.failed").read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return 0, ""
    if lines[0].strip() != __version__:  # a new release tries again
        return 0, ""
    count, rest = FAILURES_TO_REMEMBER, lines[1:]
    if rest and rest[0].startswith("attempts "):
        try:
            count = int(rest[0].split()[1])
        except (IndexError, ValueError):
            count = 0
        rest = rest[1:]
    return count, "\n".join(rest).strip()


def failure(folder: Path, key: str) -> str | None:
    """Why the model of ``key`` cannot be converted, once runs have found it often enough to stop
    trying (None: try)."""
    count, reason = _failures(folder, key)
    return reason or None if count >= FAILURES_TO_REMEMBER else None


def remember_failure(folder: Path, key: str, reason: str, certain: bool = False) -> None:
    """Count a run in which the model of ``key`` did not convert (same weights, settings, OpenVINO
    and release: the key says them all); from :data:`FAILURES_TO_REMEMBER` on, later runs go to
    torch at once. ``certain``: the failure says what the model is (operations the converter
    lacks, a different result), so once is enough."""
    before = _failures(folder, key)[0]
    count = max(before, FAILURES_TO_REMEMBER) if certain else before + 1
    tmp = folder / f".{key}.failed.{uuid.uuid4().hex}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(f"{__version__}\nattempts {count}\n{reason}\n", encoding="utf-8")
        publish(tmp, folder / f"{key}.failed", overwrite=True)
    except OSError as exc:
        log.info("not remembering the failed conversion: cannot write to %s (%s)", folder, exc.strerror)
    finally:  # also on an interrupt between the write and the rename
        tmp.unlink(missing_ok=True)


def _paths(folder: Path, key: str) -> dict[str, Path]:
    return {part: folder / f"{key}.{part}" for part in ("xml", "bin", "json")}

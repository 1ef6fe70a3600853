"""Where a cluster job's files live: local paths on a shared file system or object-store URIs.

Everything goes through :mod:`pyarrow.fs` (``s3://``, ``gs://``, ``hdfs://``, ``file://``; other
schemes through fsspec), so listing, reading and writing are one code path whatever the store.
Locations travel between driver and workers as strings: absolute local paths or URIs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import glob
import os
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable
from urllib.parse import quote, unquote

from .. import atomic, imageio
from ..datasets import no_match
from ..errors import ImageFormatError, OutputCollisionError, OutputExistsError
from ..video import VIDEO_SUFFIXES

_GLOB = "*?["


@dataclass(frozen=True)
class Task:
    """One file to upscale: where it is read from and where its output goes."""

    source: str
    target: str


def locations(value: object, name: str) -> list[str]:
    """A path, URI or list of them (str or ``pathlib.Path``) as strings, or a one-line error."""
    from ..errors import ClusterError

    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(item, (str, os.PathLike)) for item in items):
        raise ClusterError(f"{name} must be a path or URI (str or Path), or a non-empty list of them, not {value!r}")
    found = [os.fspath(item) for item in items]
    if "" in found:  # Path("") is the current folder: an unset variable had taken (or written into) the whole tree here
        what = "the output folder" if name in ("dst", "output") else "a folder, a file or a pattern"
        raise ClusterError(f"{name} holds an empty name (''): name {what} (the current folder is '.')")
    return found


_PYARROW_SCHEMES = {"file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss"}  # percent-encoded paths


def split(location: str):
    """``(pyarrow filesystem, path inside it)`` for a local path or a URI."""
    from pyarrow import fs as pafs

    if "://" not in location:
        return pafs.LocalFileSystem(), os.path.abspath(location)
    if location.startswith("file://"):  # read here: pyarrow refuses a space and takes '#' as the end of the path
        return pafs.LocalFileSystem(), local_path(location)
    try:
        return pafs.FileSystem.from_uri(location)
    except ValueError:  # a scheme pyarrow does not know: try fsspec
        pass
    except OSError as exc:
        raise ImageFormatError(f"cannot open {location}: {_first(exc)}") from None
    try:
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        fs, path = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError, OSError) as exc:
        raise ImageFormatError(f"cannot open {location}: {_first(exc)}") from None
    return PyFileSystem(FSSpecHandler(fs)), path


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _encoded(location: str) -> bool:
    """Whether ``location``'s paths are percent-encoded (pyarrow's URIs; fsspec's are taken as written)."""
    return location.split("://", 1)[0].lower() in _PYARROW_SCHEMES


def _join(root: str, relative: str) -> str:
    if "://" not in root:
        return os.path.join(os.path.abspath(root), relative)
    base, mark, query = root.partition("?") if _encoded(root) and not root.startswith("file://") else (root, "", "")
    return base.rstrip("/") + "/" + (quote(relative) if _encoded(root) else relative) + mark + query


def as_given(location: str) -> str:
    """A task's location as one machine names the files it was given: a local path relative to
    the current folder when inside it (the workers get absolute paths), escaped as file names are
    shown; URIs as they are."""
    from ..errors import shown_path

    if "://" not in location and os.path.isabs(location):
        with contextlib.suppress(ValueError, OSError):
            inside = os.path.relpath(location)
            if not inside.startswith(os.pardir):
                location = inside
    return shown_path(location)


def _relocate(location: str, path: str) -> str:
    """The location string of ``path`` inside the same store as ``location``: the same scheme, host
    and options (``?endpoint_override=...``), the path percent-encoded where the scheme's are."""
    if "://" not in location:
        return path
    if location.startswith("file://"):
        return "file://" + quote(path)
    scheme, rest = location.split("://", 1)
    if not _encoded(location):
        return f"{scheme}://{path}"
    rest, mark, query = rest.partition("?")
    host = rest.split("/", 1)[0] if path.startswith("/") else ""  # hdfs://host:port/path: the path leaves out the host
    return f"{scheme}://{host}{quote(path)}{mark}{query}"


def is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def local_path(location: str) -> str:
    """The file path a local path or ``file://`` URI names (``file:///a%20b`` and ``file://localhost/a``
    as ``/a b`` and ``/a``)."""
    if not location.startswith("file://"):
        return os.path.abspath(location)
    rest = location[len("file://"):]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost"):]
    return unquote(rest)


def list_tasks(inputs: list[str], output: str, fmt: str | None = None, left_out: Counter | None = None,
               unreadable: list[tuple[str, str]] | None = None) -> list[Task]:
    """Every image under ``inputs`` (folders, files or glob patterns) paired with its output.

    Outputs keep their path relative to the folder (or the pattern's fixed part) they were found
    under; ``fmt`` changes their extension. Outputs of an earlier run in an output folder inside an
    input folder are not inputs. A name that exists is taken as it is (``shots [2024]/``), as on
    one machine; otherwise ``*?[`` make it a pattern, whose ``*`` also matches across folders
    (``a/*.png`` finds ``a/b/c.png``) and whose ``**/`` also stands for no folder. Hidden files and folders are left out, as on one machine;
    what is passed over is counted into ``left_out`` by :data:`sr_filter.datasets.LEFT_OUT` kind.
    A local subfolder that cannot be read, and among several inputs a named file that is no picture
    or a folder with none, go into ``unreadable`` as (name, one-line error), as one machine fails
    them alone; without that list (or for the folder given) they stop the listing.
    """
    left_out = Counter() if left_out is None else left_out
    from pyarrow import fs as pafs

    tasks: list[Task] = []
    seen: dict[str, str] = {}
    _, out_path = split(output)
    for item in inputs:
        filesystem, path = split(item)
        pattern = rest = None  # rest: the pattern's part after its fixed folder
        try:
            info = filesystem.get_file_info(path)
            if info.type == pafs.FileType.NotFound and any(c in path for c in _GLOB):
                fixed = PurePosixPath(path)
                while any(c in fixed.name for c in _GLOB) or any(c in str(fixed.parent) for c in _GLOB):
                    fixed = fixed.parent
                pattern, path = path, str(fixed)
                rest = pattern[len(path):]
                info = filesystem.get_file_info(path)
            if info.type == pafs.FileType.NotFound:
                raise ImageFormatError(no_match(item) if pattern is not None else f"{item} does not exist")
            if info.type == pafs.FileType.Directory and pattern is None and _same_place(item, path, output, out_path):
                raise ImageFormatError(f"{item} is both the input and the output folder; the outputs would replace "
                                       "the inputs, so choose another -o")
            if info.type == pafs.FileType.File and pattern is None:
                found = [(info.path, PurePosixPath(info.path).name)]
            elif is_local(item):  # links to folders are not entered, as on one machine (a link back up looped)
                found = _local_files(path, left_out, unreadable, pattern=rest)
            else:
                entries = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
                found = [(e.path, str(PurePosixPath(e.path).relative_to(path))) for e in entries if e.type == pafs.FileType.File]
        except OSError as exc:
            raise ImageFormatError(f"cannot list {item}: {_first(exc)}") from None
        named = info.type == pafs.FileType.File and pattern is None  # a file given by name is taken as it is
        # hidden files and folders are left out unless the pattern names them, as on one machine
        hidden_ok = rest is not None and any(part.startswith(".") for part in rest.split("/"))
        kept, videos = [], []
        matched = False  # whether a pattern found any file: one that found none is worded as on one machine
        for p, rel in found:
            if pattern is not None and not _matches(p, pattern):
                continue
            matched = True
            if _inside(out_path, path) and _inside(p, out_path):  # an output folder inside the input one
                left_out["in output"] += 1
            elif not (named or hidden_ok) and any(part.startswith(".") for part in PurePosixPath(rel).parts):
                left_out["hidden"] += 1  # (it had been upscaled: one machine leaves it out)
            elif PurePosixPath(p).suffix.lower() in imageio.IMAGE_SUFFIXES:
                kept.append((p, rel))
            else:
                video = PurePosixPath(p).suffix.lower() in VIDEO_SUFFIXES
                left_out["video" if video else "other"] += 1
                videos += [p] if video else []
        found = kept
        if not found and named and videos:  # it had been "no image files ... in clip.mp4 ...: give a video by name"
            raise ImageFormatError(f"{item} is a video; --cluster upscales a video given alone (sr-filter {item} -o OUT "
                                   "--cluster ...), not beside other inputs")
        if not found:  # with the one-machine run's hint where the folder holds videos
            suffixes = ", ".join(sorted({k[1:] for k in imageio.IMAGE_SUFFIXES}))
            hint = (f"; folders are searched for images only: give a video by name, e.g. {sorted(videos)[0]} "
                    "(--cluster takes one video at a time)") if videos else ""
            why = (f"{item} is not a supported image ({suffixes})" if named else no_match(item) if pattern is not None and not matched
                   else f"no image files ({suffixes}) in {item}{hint}")
            if unreadable is None or len(inputs) == 1:
                raise ImageFormatError(why)
            unreadable.append((item, why))  # among other inputs it fails alone, as on one machine (it had stopped the job)
            continue
        for p, rel in sorted(found):
            if fmt:
                rel = str(PurePosixPath(rel).with_suffix("." + fmt.lower().lstrip(".")))
            elif PurePosixPath(rel).suffix.lower() in imageio.READ_ONLY:  # a .pbm as .pgm, an .mpo as .jpg, as on one
                read_only = imageio.READ_ONLY[PurePosixPath(rel).suffix.lower()]  # machine (its workers had refused it)
                rel = str(PurePosixPath(rel).with_suffix(imageio.SUFFIX_OF[read_only]))
            source, target = _relocate(item, p), _join(output, rel)
            if target == source or (is_local(source) and is_local(target)
                                    and os.path.realpath(local_path(source)) == os.path.realpath(local_path(target))):
                raise ImageFormatError(f"{as_given(source)} would be written over itself; choose another -o (or --format)")
            if target in seen:
                if seen[target] == source:  # named twice (a folder and a file in it): one task, as on one machine
                    continue
                # named as one machine names them (as given, not the absolute paths the workers get), and a
                # usage error there as here (exit 2; it had been 1)
                raise OutputCollisionError.of(as_given(seen[target]), as_given(source), as_given(target))
            seen[target] = source
            tasks.append(Task(source, target))
    return tasks


def _matches(path: str, pattern: str) -> bool:
    """Whether ``path`` matches ``pattern`` by one machine's rules (:meth:`pathlib.Path.glob`):
    ``*``, ``?`` and ``[...]`` stay within one folder name, ``**`` stands for any number of
    folders, none included. ``*`` had crossed folders here, so ``in/*.png`` with ``--cluster``
    upscaled the pictures of every subfolder too, which the same command without it leaves out."""
    names, parts = path.split("/"), pattern.split("/")

    @functools.lru_cache(maxsize=None)
    def match(i: int, j: int) -> bool:
        if j == len(parts):
            return i == len(names)
        if parts[j] == "**":
            return match(i, j + 1) or (i < len(names) - 1 and match(i + 1, j))  # folders only, never the file itself
        return i < len(names) and fnmatch.fnmatchcase(names[i], parts[j]) and match(i + 1, j + 1)

    return match(0, 0)


def _local_files(root: str, left_out: Counter, unreadable: list[tuple[str, str]] | None = None,
                 pattern: str | None = None) -> list[tuple[str, str]]:
    """(path, path relative to ``root``) of every file under a local folder, without entering
    symbolic links to folders (counted as left out): pyarrow's listing follows them, so a link to
    a parent folder had been listed again and again until the paths grew too long. A subfolder
    that cannot be read goes into ``unreadable`` (a locked folder had stopped the whole job).

    For a glob ``pattern`` (the part after ``root``), hidden folders are entered, not counted:
    the files the pattern matches in them are, as one machine counts them; and a pattern without
    ``**`` is not searched deeper than its own folders."""
    from ..datasets import unreadable_folder

    found = []
    depth = None if pattern is None or "**" in pattern.split("/") else len([p for p in pattern.split("/") if p])

    def cannot_read(exc: OSError) -> None:  # it had been passed over without a word
        if unreadable is None or not exc.filename or os.path.normpath(exc.filename) == os.path.normpath(root):
            raise exc
        unreadable.append((exc.filename, unreadable_folder(exc)))

    for here, dirs, names in os.walk(root, onerror=cannot_read, followlinks=False):
        links = [d for d in dirs if os.path.islink(os.path.join(here, d))]
        hidden = [d for d in dirs if d.startswith(".") and d not in links] if pattern is None else []
        left_out["link"] += len(links) if pattern is None else 0  # (a pattern's are not counted on one machine)
        left_out["hidden"] += len(hidden)  # a hidden folder counts once, as on one machine, not file by file
        dirs[:] = sorted(d for d in dirs if d not in links and d not in hidden)
        if depth is not None and len(Path(os.path.relpath(here, root)).parts) >= depth - 1:  # (the root's is ".": 0)
            dirs[:] = []  # its files lie deeper than the pattern reaches
        for name in names:
            full = os.path.join(here, name)
            if os.path.isfile(full):  # a link to a file is read as the file, as on one machine
                found.append((full, os.path.relpath(full, root).replace(os.sep, "/")))
    return found


def _same_place(item: str, path: str, output: str, out_path: str) -> bool:
    """Whether the input folder and the output folder are one (a symbolic link to the input
    folder as ``-o`` included: its outputs had been counted as done, and nothing was written)."""
    if path.rstrip("/") == out_path.rstrip("/"):
        return True
    return is_local(item) and is_local(output) and os.path.realpath(path) == os.path.realpath(out_path)


def _inside(path: str, folder: str) -> bool:
    return path.rstrip("/").startswith(folder.rstrip("/") + "/")


def finished(tasks: list[Task], output: str) -> set[str]:
    """The targets among ``tasks`` that exist, from one recursive listing of ``output`` (a million
    existence checks against an object store would take hours)."""
    from pyarrow import fs as pafs

    filesystem, root = split(output)
    try:
        if filesystem.get_file_info(root).type == pafs.FileType.File:  # it had been "cannot list OUT: [Errno 20] ..."
            raise ImageFormatError(f"{output} exists and is not a folder; choose another output folder")
        listed = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise ImageFormatError(f"cannot list {output}: {_first(exc)}") from None
    present = {info.path for info in listed if info.type == pafs.FileType.File}
    return {task.target for task in tasks if split(task.target)[1] in present}


def _kind(location: str):
    """What is at ``location``: a pyarrow FileType, from one listing call."""
    filesystem, path = split(location)
    return filesystem.get_file_info(path).type


def exists(location: str) -> bool:
    """Whether an output file is at ``location`` (a folder there is none: :func:`check_output`)."""
    from pyarrow import fs as pafs

    return _kind(location) not in (pafs.FileType.NotFound, pafs.FileType.Directory)


def check_output(location: str) -> bool:
    """Whether the output at ``location`` exists (an earlier attempt wrote it), from one listing
    call; a folder where the file goes is an :class:`ImageFormatError` (it had been taken for an
    output: the file was counted as skipped and the job ended with 0, with nothing written)."""
    from pyarrow import fs as pafs

    kind = _kind(location)
    if kind == pafs.FileType.Directory:
        raise ImageFormatError(f"{location} is a folder, where this file's output goes; move it away or choose another -o")
    return kind != pafs.FileType.NotFound


def read_bytes(location: str) -> bytes:
    """The whole file (images are read whole anyway; the decoder needs random access)."""
    filesystem, path = split(location)
    try:
        with filesystem.open_input_file(path) as stream:
            return stream.read()
    except FileNotFoundError:
        raise ImageFormatError(f"{location} does not exist") from None
    except OSError as exc:
        raise ImageFormatError(f"cannot read {location}: {_first(exc)}") from None


def write_once(data: bytes, location: str) -> None:
    """Publish ``data`` at ``location`` whole or not at all, never over an existing file.

    Local files: a temporary file and a no-clobber rename (:func:`sr_filter.atomic.write_atomic`).
    Object stores: an upload to a temporary key, then a server-side move (copy), so the final
    object is whole or absent; a second attempt of the same file finds it there and stops (two
    attempts racing may both write it, with the same bytes).
    """
    if is_local(location):
        path = Path(local_path(location))
        atomic.refuse_file_above(path.parent)  # in one machine's words
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageFormatError(f"cannot create output folder {path.parent}: {exc.strerror}") from None
        atomic.write_atomic(data, path, overwrite=False)
        return
    if exists(location):
        raise OutputExistsError(f"{location} exists")
    filesystem, path = split(location)
    parent, _, name = path.rpartition("/")
    temporary = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
    try:  # a failed upload may still publish what it sent: only ever under the temporary name
        filesystem.create_dir(parent, recursive=True)  # object stores have no folders: a no-op or a marker
        with filesystem.open_output_stream(temporary) as stream:
            stream.write(data)
        filesystem.move(temporary, path)  # a server-side copy: the final object appears whole
    except OSError as exc:
        try:
            filesystem.delete_file(temporary)
        except OSError:
            pass
        raise ImageFormatError(f"cannot write {location}: {_first(exc)}") from None


def check_writable(output: str) -> None:
    """Fail before any work when the output folder cannot be made or written to, as one machine
    checks an output (:func:`sr_filter.atomic.prepare_target`): the folders this makes are
    removed at the end of the caller's :func:`sr_filter.atomic.new_folders` block if nothing was
    written into them."""
    if not is_local(output):
        return  # object stores: the first write says; a probe object would need deleting again
    folder = Path(local_path(output))
    atomic.prepare_target(folder / f".sr-filter-probe-{os.getpid()}.tmp", overwrite=False)  # (not made: its folder is probed)


def sweep_temporaries(targets: list[str], writers: Iterable[tuple[int, str]] = ()) -> int:
    """Remove the temporary files that workers killed mid-write left beside these targets: the
    object-store style ``.NAME.*.tmp`` and, for the stopped workers ``writers`` (process id, the
    temporary-file tag of its machine, :data:`atomic.HOST_TAG`), the temporary files of the
    library's atomic writes (``.srf-PID-TAG-*``). Only dead workers may be given; a live writer
    with the same process id on another machine keeps its file (it had been removed under it)."""
    removed = 0
    folders: set[Path] = set()
    writers = sorted(set(writers))
    for target in targets:
        if not is_local(target):
            continue
        path = Path(local_path(target))
        folders.add(path.parent)
        removed += _unlink_all(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    for folder in folders:
        for pid, tag in writers:
            removed += _unlink_all(folder.glob(f"{glob.escape(atomic.temp_prefix(pid) + tag)}-*"))
    return removed


def sweep_orphans(targets: list[str]) -> int:
    """Remove, beside these local targets, the temporary files of writers on this machine whose
    process has ended (:func:`atomic.sweep_orphans`): after a signal that ended the local
    cluster's workers with the driver, when Ray can no longer be asked for their ids."""
    return sum(atomic.sweep_orphans(folder, again=True) for folder in {Path(local_path(t)).parent for t in targets if is_local(t)})


def _unlink_all(paths: Iterable[Path]) -> int:
    removed = 0
    for leftover in list(paths):
        try:
            leftover.unlink()
            removed += 1
        except OSError:
            pass
    return removed

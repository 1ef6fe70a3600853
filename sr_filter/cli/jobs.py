"""Which files go where: inputs expanded, each paired with its output, outputs checked before the work.

``-o`` names a folder when it ends with a slash, is an existing folder, or several inputs (or a
folder) are given; otherwise it names the output file.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click

from ..atomic import is_stream, refuse_writing_input
from ..errors import ImageFormatError
from ..video import READ_ONLY_SUFFIXES, VIDEO_SUFFIXES
from .messages import shown_path
from .options import say


@dataclass
class Job:
    source: Path | None  # None = standard input
    target: Path | None  # None = standard output
    #: why this input cannot be done (a folder that cannot be read): a failure of the batch, said in turn
    error: str | None = None


class Inputs(list):
    """Input names after :func:`expand_inputs`; for the files a glob pattern found, the folder the
    pattern starts in (files written into an output folder keep their paths below it, as a
    folder's do), and what the patterns and folders left out, said before the work."""

    def __init__(self, items=(), roots: dict[str, Path] | None = None) -> None:
        super().__init__(items)
        self.roots: dict[str, Path] = roots or {}
        self.left_out: Counter = Counter()
        #: inputs named among several that cannot be read (missing, a link to nothing): each one a
        #: failure of the batch in its turn, the others done (one had stopped the whole batch)
        self.failed: dict[str, str] = {}


def refuse_empty_names(inputs: list[str], output: str | None) -> None:
    """Path("") is "." (the current folder): an unset shell variable as an input had upscaled the
    whole tree below it, and as -o written there. Checked before anything else, for images,
    videos and --cluster alike."""
    if "" in inputs:  # usage errors (exit 2), as other misuse of the command line
        raise click.UsageError("an input name is empty (''): name a file, a folder, or - for standard input")
    if output == "":
        raise click.UsageError("the output name (-o) is empty (''): name a file, a folder (out/), or - for standard output")
    if output and output.startswith("~") and not Path(output).exists():  # a quoted '~/out.png' made a folder named ~
        raise click.UsageError(f"'~' in -o {shown_path(output)} was not expanded (quoted?); write "
                               f"{shown_path(os.path.expanduser(output))}")


def expand_inputs(inputs: list[str]) -> Inputs:
    """Check the inputs exist (before any model loads); expand glob patterns the shell left alone.

    A pattern's ``**`` does not follow symbolic links to folders (a link back up the tree made
    the search endless), hidden files and folders are left out unless the pattern names them,
    and of the files found only images and videos are kept (the rest is counted, and said). Among
    several inputs, one that does not exist is recorded in :attr:`Inputs.failed`, not raised."""
    if "-" in inputs and len(inputs) > 1:
        raise click.UsageError("'-' (standard input) cannot be combined with other inputs")
    expanded = Inputs()
    for item in inputs:
        try:
            _expand(item, expanded)
        except ImageFormatError as exc:
            if len(inputs) == 1 or any(c in item for c in "*?["):
                raise
            expanded.append(item)
            expanded.failed[item] = str(exc)
    return expanded


def _expand(item: str, expanded: Inputs) -> None:
    """Add ``item`` (a name, or the files its pattern finds) to ``expanded``; raise if it names nothing."""
    if item == "-" or Path(item).exists():
        expanded.append(item)
    elif any(c in item for c in "*?["):
        root, matches = _glob(item, expanded.left_out)
        usable = [p for p in matches if _usable_suffix(p)]
        expanded.left_out["other"] += len(matches) - len(usable)
        if not usable:
            from ..datasets import no_match

            raise ImageFormatError(no_match(item, bool(matches)))
        for path in usable:
            expanded.append(str(path))
            expanded.roots[str(path)] = root
    elif os.path.lexists(item):  # a link that leads nowhere: Path.exists() said "does not exist"
        raise ImageFormatError(f"{item} is a symbolic link to nothing that exists (a loop, or a missing target)")
    else:
        _missing(item)


def _glob(pattern: str, left_out: Counter) -> tuple[Path, list[Path]]:
    """The folder a pattern starts in, and the files it matches (sorted), as pathlib finds them:
    ``**`` does not enter symbolic links to folders. What else it matches (hidden files, folders,
    links to nothing) is counted into ``left_out``, to be said: it had been passed over without a word."""
    parts = Path(pattern).parts
    magic = next(i for i, part in enumerate(parts) if any(c in part for c in "*?["))
    root = Path(*parts[:magic]) if magic else Path(".")
    rest = Path(*parts[magic:])
    hidden_ok = any(part.startswith(".") for part in rest.parts)  # a pattern that names them
    found = []
    try:
        for path in root.glob(str(rest)):
            if not hidden_ok and any(q.startswith(".") for q in path.relative_to(root).parts):
                left_out["hidden"] += 1
            elif path.is_file():
                found.append(path)
            elif path.is_dir():
                left_out["folder"] += "**" not in rest.parts  # with ** its files are matched too
            elif not path.exists():
                left_out["dead link"] += 1
            else:
                left_out["other"] += 1  # a pipe, a socket, a device
    except (OSError, ValueError) as exc:
        raise ImageFormatError(f"cannot search {pattern} ({exc})") from None
    return root, sorted(found)


def _usable_suffix(path: Path) -> bool:
    from .. import imageio

    return path.suffix.lower() in imageio.IMAGE_SUFFIXES or is_video(path)


def _images_in(folder: Path, out_dir: Path, left_out: Counter) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The image files below ``folder`` (sorted), and the folders that could not be read (each with its error).

    Hidden files and folders (``.git``, macOS's ``._photo.jpg``) and symbolic links to folders
    are left out, as are files inside ``out_dir`` when it lies within ``folder`` (earlier
    outputs); what is left out is counted into ``left_out`` by kind, to be said."""
    from .. import imageio
    from ..datasets import unreadable_folder

    nested = out_dir.resolve() != folder.resolve() and _inside(out_dir, folder)
    unreadable: list[tuple[Path, str]] = []
    files: list[Path] = []

    def refused(exc: OSError) -> None:  # the folder itself is named in the failed list (it had been the input folder)
        unreadable.append((Path(exc.filename or folder), unreadable_folder(exc)))

    for top, dirs, names in os.walk(folder, onerror=refused):
        here = Path(top)
        left_out["link"] += sum(1 for d in dirs if (here / d).is_symlink())
        left_out["hidden"] += sum(1 for d in dirs if d.startswith(".") and not (here / d).is_symlink())
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here / d).is_symlink())
        if nested and _inside(here, out_dir):  # every file below it (only its top level had been counted)
            left_out["in output"] += sum(1 for _, _, below in os.walk(here) for n in below if not n.startswith("."))
            dirs[:] = []
            continue
        for name in names:
            path = here / name
            if name.startswith("."):
                left_out["hidden"] += 1
            elif path.suffix.lower() in imageio.HEIF_SUFFIXES and path.is_file() and not imageio.heif_support():
                left_out["heic"] += 1  # said, not failed one by one (nor passed over without a word)
            elif path.suffix.lower() in imageio.IMAGE_SUFFIXES and path.is_file():
                files.append(path)
            elif is_video(path):
                left_out["video"] += 1
            else:
                left_out["other"] += 1
    return sorted(files), unreadable


def left_out_line(inputs: list[str]) -> str | None:
    """One line for what the folders and patterns left out (or None): a batch had passed over
    videos, hidden files and images already in the output folder without a word."""
    from ..datasets import left_out_text

    return left_out_text(getattr(inputs, "left_out", Counter()))


def _missing(item: str) -> None:
    """The error for an input that does not exist, with what was probably meant: a command typed
    wrong (the default command took it for a file), a quoted '~', a Windows folder separator."""
    import difflib

    from . import COMMANDS

    if item in COMMANDS:  # after options: `sr-filter -p cartoon models`
        raise click.UsageError(f"'{item}' is a command: put it first (sr-filter {item} ...), or name a file ./{item}")
    if item == "help":
        raise click.UsageError("no file or command 'help'; for help run: sr-filter --help")
    close = difflib.get_close_matches(item, list(COMMANDS), n=1, cutoff=0.75)
    if close and not Path(item).suffix and os.sep not in item:
        raise click.UsageError(f"no file or command '{shown_path(item)}'; did you mean: sr-filter {close[0]} ...?")
    hint = ""
    if item.startswith("~") and Path(os.path.expanduser(item)).exists():
        hint = f" ('~' was not expanded, quoted?; did you mean {os.path.expanduser(item)}?)"
    elif "\\" in item and Path(item.replace("\\", "/")).exists():
        hint = f" (folders are separated by /: did you mean {item.replace(chr(92), '/')}?)"
    raise ImageFormatError(f"{item} does not exist{hint}")


def plan_jobs(inputs: list[str], output: str | None, suffix: str, fmt: str | None, *, batch_suffix: str = "") -> list[Job]:
    """Pair every input with its output path.

    ``-o`` names a folder when it ends with a slash, is an existing folder, or several inputs (or a
    folder) are given; the folder is created later if needed. Otherwise it names the output file.
    Several files without ``-o`` are each written beside their input (``NAME{suffix}.EXT``); files
    written into a folder keep their names, with ``batch_suffix`` (the user's ``--suffix``) added.
    """
    from .. import imageio

    if not many_inputs(inputs):
        source = inputs[0]
        if source != "-" and not Path(source).is_file():
            if not is_pipe(Path(source)):
                raise ImageFormatError(f"{source} is not a regular file")
            if output is None:  # no name to make an output name from
                raise click.UsageError(f"{shown_path(source)} is a pipe (as <(...) in a shell gives): name the output file with -o")
            if names_folder(output):
                raise click.UsageError(f"{shown_path(source)} is a pipe (as <(...) in a shell gives): -o {shown_path(output)} names a folder; "
                                       "name the output file instead")
        if source != "-" and fmt is None and (output is None or names_folder(output)):
            unsupported = _unsupported_name(Path(source), "name the output with -o or give --format" if output is None
                                            else "name the output file with -o (not a folder), or give --format")
            if unsupported:
                raise ImageFormatError(unsupported)
        if output is None:
            target = None if source == "-" else default_output(Path(source), suffix, fmt)
        elif output == "-":
            target = None
        elif names_folder(output):
            named = Path(source) if source != "-" else Path(f"stdin.{(fmt or 'png').lower()}")
            name = default_output(named, suffix, fmt).name
            target = Path(output) / name
        else:
            target = Path(output)
        if source == "-" and fmt is None and target is not None and target.suffix.lower() in VIDEO_SUFFIXES - {".y4m"}:
            # it had said "a video input needs a video suffix": standard input has no name to give one
            raise click.UsageError(f"{shown_path(target.name)} names a video file, which is not made from standard input; pipe its "
                                   f"frames as a stream (ffmpeg -i IN -f yuv4mpegpipe - | sr-filter - -o - --format y4m | "
                                   f"ffmpeg -i - {shown_path(target.name)}), or give the video's file name as the input")
        if target is not None and not (fmt is None and is_stream(target)):  # /dev/null: the input's format
            written = imageio.format_for(target, fmt, folder=True)  # -o NAME/ is a folder
            conflict = imageio.suffix_conflict(target, written) if fmt else None
            if conflict:
                say(f"sr-filter: warning: {conflict}")
        return [Job(None if source == "-" else Path(source), target)]
    failed = getattr(inputs, "failed", {})
    if output is None:  # several files (a folder input needs -o: checked with the options)
        jobs = []
        for item in inputs:  # the names as typed: failed is keyed by them (Path drops a trailing slash and ./)
            source = Path(item)
            if item in failed:
                jobs.append(Job(source, None, error=failed[item]))
                continue
            job = Job(source, default_output(source, suffix, fmt))
            unsupported = None if fmt is not None else _unsupported_name(source, _IN_BATCH)
            if is_video(source):
                job.target = video_target(source, job.target)
            elif unsupported:  # one failure of the batch (`sr-filter *` beside a README)
                job = Job(source, None, error=unsupported)
            jobs.append(job)
        return _without_own_outputs(jobs, getattr(inputs, "left_out", Counter()))
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise click.UsageError(f"{shown_path(out_dir)} exists and is not a folder")
    if not out_dir.exists() and out_dir.suffix.lower() in set(imageio.IMAGE_SUFFIXES) | VIDEO_SUFFIXES | READ_ONLY_SUFFIXES:
        what = (f"{len(inputs)} inputs need" if len(inputs) > 1  # "1 inputs need" had been said
                else "a pattern's files need" if getattr(inputs, "roots", None) else "a folder input needs")
        raise click.UsageError(f"{what} an output folder, but {shown_path(output)} names a file; "
                               f"use -o {shown_path(out_dir.with_suffix(''))}/")
    jobs = []
    left_out = getattr(inputs, "left_out", Counter())
    roots = getattr(inputs, "roots", {})
    for item in inputs:
        path = Path(item)
        if item in failed:
            jobs.append(Job(path, None, error=failed[item]))
        elif path.is_dir():
            heic = left_out["heic"]
            files, unreadable = _images_in(path, out_dir, left_out)
            jobs += [Job(file, out_dir / _renamed(file.relative_to(path), fmt, batch_suffix)) for file in files]
            jobs += [Job(where, None, error=why) for where, why in unreadable]
            if not files and not unreadable:
                videos = sorted({p.suffix.lower() for p in path.rglob("*") if p.is_file() and is_video(p)})
                hint = f"; folders are searched for images only: name its videos, e.g. {path / ('*' + videos[0])}" if videos else ""
                if left_out["heic"] > heic:  # (it had been "no image files (... heic ...)")
                    hint += f"; it holds HEIC/HEIF pictures, and {imageio.NO_HEIF}"
                empty = f"no image files ({_suffixes()}) in {path}{hint}"
                if len(inputs) == 1:
                    raise ImageFormatError(empty)
                jobs.append(Job(path, None, error=empty))  # one failure of the batch: the other inputs are done
        elif path.is_file():
            relative = path.relative_to(roots[item]) if item in roots else Path(path.name)  # a pattern's: below its folder
            target = out_dir / _renamed(relative, fmt, batch_suffix)
            unsupported = None if fmt is not None else _unsupported_name(path, _IN_BATCH)
            if is_video(path):
                jobs.append(Job(path, video_target(path, target)))
            elif unsupported:  # it had been "(or noext/ for a folder)" at its turn
                jobs.append(Job(path, None, error=unsupported))
            else:
                jobs.append(Job(path, target))
        elif is_pipe(path) and path.suffix.lower() in imageio.IMAGE_SUFFIXES:  # a named pipe with a picture's name
            jobs.append(Job(path, out_dir / _renamed(Path(path.name), fmt, batch_suffix)))
        elif is_pipe(path):  # <(...) gives /dev/fd/63: no name to name an output after
            jobs.append(Job(path, None, error=f"{item} is a pipe with no picture's name to name its output after; "
                                              "give it alone, with -o naming the output file"))
        elif path.exists():
            jobs.append(Job(path, None, error=f"{item} is not a regular file (a pipe, socket or device)"))
        else:  # gone since it was checked
            jobs.append(Job(path, None, error=f"{item} does not exist"))
    return _without_own_outputs(jobs, left_out)


def _without_own_outputs(jobs: list[Job], left_out: Counter) -> list[Job]:
    """The jobs without those whose input is another job's output: written by an earlier run
    beside the inputs (``a_x4.png`` from ``a.png``), they had been upscaled again on every rerun."""
    targets = {_named(job.target) for job in jobs if job.target is not None}
    kept = []
    for job in jobs:
        if job.source is not None and job.error is None and _named(job.source) in targets and not (
                job.target is not None and _named(job.target) == _named(job.source)):
            left_out["earlier"] += 1
            continue
        kept.append(job)
    return kept


def unique(jobs: list[Job]) -> list[Job]:
    """The jobs without repeats: a file named twice (``a.png ./a.png``, or a folder and a file in
    it) is one job, not two writing the same output."""
    seen: set[tuple] = set()
    kept = []
    for job in jobs:
        key = (_resolved(job.source) if job.source else None, _resolved(job.target) if job.target else None)
        if key[0] is None or job.error or key not in seen:
            kept.append(job)
            seen.add(key)
    return kept


def _named(path: Path) -> Path:
    """``path`` with the links of its folders followed but not a link of its own: the name a file
    goes by. An output that is a link to another input is not that input's name (that input had
    been left out as "an output of an earlier run", then replaced through the link)."""
    return _resolved(path.absolute().parent) / path.name


def _resolved(path: Path) -> Path:
    """``path`` with its links followed; as it stands where they loop (resolve() raised RuntimeError
    there, an internal error after the model had loaded)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path))


def is_video(source: Path | None) -> bool:
    """Whether an input (None: standard input) is a video file by its name; among several inputs
    these are named, as folders are searched for images only."""
    from ..video.command import VIDEO_INPUTS

    return source is not None and source.suffix.lower() in VIDEO_INPUTS


def video_target(source: Path, target: Path) -> Path:
    """A video keeps its container in a batch (``--format`` names the images' format); one
    FFmpeg reads but does not write (.ts, .flv, ...) becomes .mkv."""
    return target.with_suffix(".mkv" if source.suffix.lower() in READ_ONLY_SUFFIXES else source.suffix)


def many_inputs(inputs: list[str]) -> bool:
    """Several inputs, a folder or a glob pattern: the output is a folder. A pattern that finds one
    file today may find ten tomorrow, so its outputs are named as a batch's either way (one match
    had been ``out/a_x4.png``, two ``out/a.png`` and ``out/b.png``)."""
    return (len(inputs) > 1 or bool(getattr(inputs, "roots", None))
            or any(p != "-" and (is_pattern(p) or Path(p).is_dir()) for p in inputs))


def is_pattern(item: str) -> bool:
    """A glob pattern the shell left alone: a name that does not exist and holds ``*?[``."""
    return any(c in item for c in "*?[") and not os.path.lexists(item)


def names_folder(output: str) -> bool:
    """``-o out/`` (a trailing slash) or an existing folder means a folder, not a file."""
    try:
        return output.endswith(("/", os.sep)) or Path(output).is_dir()
    except OSError:  # a name too long to look up: a file name, refused later in one line
        return False


def is_pipe(path: Path) -> bool:
    """A named pipe (``<(command)`` in a shell gives /dev/fd/63), read as standard input is: with
    its bounds, its format from its bytes. Not a character device: /dev/tty would wait for typing
    (standard input from a terminal is refused), and an output's "stream" (atomic.is_stream) is either."""
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


#: how to read a file whose name is no picture's, among several inputs
_IN_BATCH = "give --format (or give it alone, naming the output with -o)"


def _unsupported_name(source: Path, advice: str) -> str | None:
    """Why ``source`` is not read as a picture by its name (None: it is), with ``advice`` on how
    to read it anyway."""
    from .. import imageio

    if source.suffix.lower() in imageio.IMAGE_SUFFIXES:
        return None
    return f"{source} is not a supported image ({_suffixes()}); to read it anyway, {advice}"


def _suffixes() -> str:
    from .. import imageio

    return ", ".join(sorted({k[1:] for k in imageio.IMAGE_SUFFIXES}))


def check_targets(jobs: list[Job], *, overwrite: bool) -> None:
    """Refuse two inputs writing one output, and writing over an input without --overwrite."""
    from ..errors import OutputExistsError

    seen: dict[Path, Path | None] = {}
    inputs = _input_files(jobs)
    for job in jobs:
        if job.error is None and (job.target is None or is_stream(job.target)):
            # standard output or a descriptor the shell opened on the input (`>> in.png`): refused,
            # --overwrite or not (the picture had been appended to its own input)
            refuse_writing_input(job.target, job.source)
        if job.target is None:
            continue
        key = job.target.resolve()
        if key in seen:
            from ..errors import OutputCollisionError

            raise OutputCollisionError.of(shown_path(seen[key]) if seen[key] else "standard input",
                                          shown_path(job.source) if job.source else "standard input", shown_path(job.target))
        seen[key] = job.source
        written = _file_id(job.target)
        if written in inputs and job.source is not None and written != _file_id(job.source):
            raise click.UsageError(f"{shown_path(job.target)}, the output of {shown_path(job.source)}, is "
                                   f"{shown_path(inputs[written])}, another input (through a link); choose another "
                                   "output folder, or remove the link")
        if job.source is not None and _same_file(job.source, job.target):
            from ..animation import FORMATS as ANIMATED  # read whole before their output is written

            if is_video(job.source) and job.source.suffix.lower() not in ANIMATED:  # read while its output is written
                from ..errors import OutputIsInputError

                raise OutputIsInputError(f"{job.target} is the input file, which is read while the output is written; "
                                         "choose another output name")
            if not overwrite:
                raise OutputExistsError(f"{job.target} is the input file; use --overwrite to replace it or choose another -o")


def check_writable(jobs: list[Job], *, overwrite: bool) -> None:
    """Before any work: every output can be written (kind, existence, name length, folder)."""
    from ..atomic import prepare_target
    from ..errors import OutputExistsError, OutputIsInputError, SrFilterError

    existing: list[tuple[Job, SrFilterError]] = []  # all of them named at once: a rerun had learnt of one per try
    for job in jobs:
        if job.target is not None:
            try:
                prepare_target(job.target, overwrite=overwrite)
            except OutputExistsError as exc:
                if isinstance(exc, OutputIsInputError):
                    raise
                existing.append((job, exc))
            except SrFilterError as exc:
                if len(jobs) == 1 or job.source is None:
                    raise
                raise type(exc)(f"{job.source}: {exc}") from None  # which of the batch's files it is
    if len(existing) == 1:
        job, exc = existing[0]
        if len(jobs) == 1 or job.source is None:
            raise exc
        raise OutputExistsError(f"{job.source}: {exc}") from None
    if existing:
        names = [shown_path(job.target) for job, _ in existing[:3]]
        more = len(existing) - len(names)
        listed = ", ".join(names) + (f" and {more} more" if more else "")
        others = ", or --skip-existing to upscale only the others" if len(existing) < len(jobs) else ""
        count = f"all {len(jobs)}" if len(existing) == len(jobs) else f"{len(existing)} of the {len(jobs)}"
        raise OutputExistsError(f"{count} outputs exist ({listed}); use --overwrite to replace them{others}")


def _input_files(jobs: list[Job]) -> dict[tuple[int, int], Path]:
    """The jobs' readable input files by the file they are (links followed, hard links alike)."""
    found: dict[tuple[int, int], Path] = {}
    for job in jobs:
        key = _file_id(job.source) if job.source is not None and job.error is None else None
        if key is not None:
            found.setdefault(key, job.source)
    return found


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names, links followed; None where there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``b`` names the file ``a``; also through folders that do not exist yet (the output's
    ``newdir/deeper/../../a.png`` is ``a.png`` once they are made: it had been called "exists")."""
    try:
        if b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:  # ".." after a folder that does not exist: the name as it will be once it does
        return a.resolve() == Path(os.path.normpath(b.absolute())).resolve()
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def default_output(source: Path, suffix: str, fmt: str | None) -> Path:
    """``photo.jpg`` -> ``photo_x4.jpg`` (``suffix`` is ``_x4``, ``_x1.5``, ``_w1920`` or the user's)."""
    extension = "." + fmt.lower().lstrip(".") if fmt else _written_suffix(source.suffix or ".png")
    return source.with_name(f"{source.stem}{suffix}{extension}")


def _renamed(relative: Path, fmt: str | None, suffix: str = "") -> Path:
    extension = "." + fmt.lower().lstrip(".") if fmt else _written_suffix(relative.suffix)
    return relative.with_name(f"{relative.stem}{suffix}{extension}")


def _written_suffix(suffix: str) -> str:
    """The output suffix for an input's: a read-only one is written as its format's (a camera's
    .mpo as .jpg, a .pbm bitmap as .pgm)."""
    from .. import imageio

    read_only = imageio.READ_ONLY.get(suffix.lower())
    return imageio.SUFFIX_OF[read_only] if read_only else suffix

"""Exceptions raised by sr_filter.

Every error a user can cause or fix is a subclass of :class:`SrFilterError`, whose
message says what went wrong and what to do. The CLI prints that message as one line
and exits non-zero; the GIMP plug-in shows it in an error dialog.
"""

from __future__ import annotations

import re


class SrFilterError(Exception):
    """Base class of all errors sr_filter raises on purpose."""

    exit_code = 1


class UnknownModelError(SrFilterError):
    """A preset or model name that the manifest does not know."""


class ManifestError(SrFilterError):
    """weights_manifest.json is malformed or inconsistent."""


class DownloadError(SrFilterError):
    """Weights could not be downloaded (network, server, offline mode)."""


class ChecksumError(DownloadError):
    """A file's sha256 or size differs from the manifest's."""


class WeightsFormatError(SrFilterError):
    """A weights file cannot be read or is not a known architecture."""


class DeviceError(SrFilterError):
    """The requested device or precision is not available."""


class ImageFormatError(SrFilterError):
    """An image cannot be read, decoded or written."""


class ImageTooLargeError(ImageFormatError):
    """The input or the output would not fit in memory."""


class InputTooLargeError(ImageTooLargeError):
    """The input itself is too large to read (or claims to be, or never ends): no output size helps."""


class OutputCollisionError(ImageFormatError):
    """Two inputs would be written to one output name: a usage error (another output folder,
    --format or list of inputs fixes it), on one machine and on the cluster alike."""

    exit_code = 2

    @classmethod
    def of(cls, first: str, second: str, target: str) -> OutputCollisionError:
        """The one wording, with the names as the caller shows them."""
        return cls(f"{first} and {second} would both be written to {target}")


class OutputExistsError(SrFilterError):
    """The output file exists and overwriting was not asked for."""


#: what an OutputExistsError advises, in the API's words (the command line says ``--overwrite``)
OVERWRITE_ADVICE = "allow overwriting (overwrite=True) to replace it"


class OutputIsInputError(OutputExistsError):
    """The output is the input file, which cannot be replaced while it is read (a video)."""


class OutOfMemoryError(SrFilterError):
    """Inference ran out of memory even at the smallest tile size."""


class WholeTooLargeError(OutOfMemoryError):
    """A window of the size asked for (tile 0: the whole picture; or a tile given) would not fit in
    memory; automatic or smaller tiles would."""


class CancelledError(SrFilterError):
    """The caller's progress callback asked to stop."""

    exit_code = 130


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): the part of a
    third-party error worth putting into one of our one-line messages."""
    text = str(exc).strip()
    if text.startswith("[Errno ") and "] " in text:  # an OSError's or FFmpeg's number means nothing to users
        text = text.split("] ", 1)[1]
    return text.splitlines()[0] if text else type(exc).__name__


def resource_failure(exc: BaseException) -> str:
    """One line for a library that would not load, memory that ran out or a thread that would not
    start: under a tight memory limit (``ulimit -v``) these came as tracebacks. The command and
    the GIMP plug-in's worker say the same."""
    text = first_line(exc)
    short = any(words in text.lower() for words in ("failed to map segment", "cannot allocate", "out of memory"))
    if isinstance(exc, ImportError) and not short:  # a missing or broken package
        what = exc.name or "a library"
        return f"cannot load {what} ({text}); reinstall sr-filter with the README's install command"
    if isinstance(exc, ImportError) or (short and "shared object" in text):  # the latter: ctypes loading one (torch's libgomp)
        name = getattr(exc, "name", None)
        what = name if isinstance(name, str) and name and not name.startswith("_") else "a compiled library"
        return f"cannot load {what} for lack of memory ({text}); raise the memory limit (ulimit -v) or close other programs"
    if isinstance(exc, MemoryError) or short or "can't start new thread" in text or "allocate" in text.lower():
        return f"out of memory ({text or type(exc).__name__}): close other programs, or use a smaller --tile, --scale or image"
    return f"internal error ({type(exc).__name__}: {text}); run again with -vv for the details and report it"


class EvaluationError(SrFilterError):
    """An evaluation cannot run (no images, bad scale, model output of the wrong size)."""


class OfflineError(DownloadError):
    """A file must be downloaded but downloads are switched off (offline mode)."""

    #: why the file is needed, in a few words (for a fallback's one-line warning)
    reason: str = ""


class NetworkUnavailableError(DownloadError):
    """No server could be reached: no network, a failed name lookup, a refused or timed-out connection."""

    #: why, in a few words (for a fallback's one-line warning)
    reason: str = ""


class CacheError(DownloadError):
    """The weights cache cannot take a download: not writable, full, or a folder in the way."""


class DownloadSettingError(DownloadError):
    """An ``SR_FILTER_*`` download setting has a value that cannot be used."""


class ModelRunError(SrFilterError):
    """A model's network fails on the input it was given (a size or shape it cannot take)."""


class BackendError(SrFilterError):
    """An inference backend cannot be used (not installed, wrong device, model does not convert)."""

    exit_code = 2


def shorten(text: str, limit: int = 600) -> str:
    """Cut ``text`` at a word boundary before ``limit`` characters and mark the cut with '...' (not
    mid-token: third-party messages can be long; a path or a word is kept whole where possible)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 4]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + " ..."


class VideoFormatError(ImageFormatError):
    """A video or animation cannot be read, or cannot be written with the chosen codec/container."""


#: said after a frame range advised to a resumable run, which takes none
_NOT_RESUMED = ", without resume=True (whose segments are removed: every run stops at the same frame)"


class VideoEndsEarlyError(VideoFormatError):
    """A video file stops well before the end its header declares (cut short). Every run stops at
    the same frame, so the way on is a frame range of the ``frames`` it has, which a resumable
    run (``resumed``) cannot take: the advice says to leave resuming out."""

    def __init__(self, reason: str, frames: int | None = None, *, resumed: bool = False) -> None:
        advice = f"; the frame range 0:{frames} upscales the {frames} frames it has" if frames else ""
        super().__init__(reason + (advice + _NOT_RESUMED if advice and resumed else advice))
        self.reason, self.frames = reason, frames
        self.skippable, self.lasting = False, True  # nothing to skip: every run stops at the same frame

    def resumed(self) -> VideoEndsEarlyError:
        """The same error as a resumable run says it."""
        return VideoEndsEarlyError(self.reason, self.frames, resumed=True)


class VideoDamagedError(VideoFormatError):
    """A video file with a packet the decoder cannot read: the frame range of the ``frames``
    before it upscales those, and where ``skippable``, leaving damaged packets out goes on;
    ``lasting``: the file itself is damaged (not a read that failed once), so every run stops
    there. A resumable run (``resumed``) takes no frame range: it is told to skip (which goes on
    from its segments), to leave resuming out where the damage lasts, or nothing (a rerun goes on)."""

    def __init__(self, reason: str, frames: int | None = None, *, skippable: bool = False, lasting: bool = True,
                 resumed: bool = False) -> None:
        advice = f"; the frame range 0:{frames} upscales the frames before it" if frames else ""
        if resumed:
            advice = advice + _NOT_RESUMED if advice and lasting and not skippable else ""
        super().__init__(reason + advice + ("; skipping damaged packets keeps the rest" if skippable else ""))
        self.reason, self.frames, self.skippable, self.lasting = reason, frames, skippable, lasting

    def resumed(self) -> VideoDamagedError:
        """The same error as a resumable run says it."""
        return VideoDamagedError(self.reason, self.frames, skippable=self.skippable, lasting=self.lasting, resumed=True)


class ClusterError(SrFilterError):
    """A cluster job cannot start or go on: Ray missing, an unreachable cluster, no workers left."""


class ExportError(SrFilterError):
    """A model cannot be exported, or the exported file does not compute what the model does."""


class CommunityModelError(WeightsFormatError):
    """A model file of an architecture we do not ship that cannot be used (unknown to spandrel,
    another task, other channels, spandrel not installed)."""


class ConfigError(SrFilterError):
    """A training config file is missing, malformed or has unknown or invalid settings."""


class DataError(SrFilterError):
    """The training images cannot be used (missing folder, images smaller than a patch)."""


class CheckpointError(SrFilterError):
    """A checkpoint cannot be read or written, or does not belong to this experiment."""


class TrainingError(SrFilterError):
    """Training cannot go on (the loss is no longer a number)."""


class DenoiseError(SrFilterError):
    """A denoise strength out of range, or asked of a model without a weak-denoise pair."""


def mismatch_detail(exc: BaseException) -> str:
    """The line of torch's ``load_state_dict`` error that says what differs (first missing key,
    unexpected key or shape), for one-line messages."""
    detail = str(exc).strip().splitlines() or [type(exc).__name__]
    return detail[1].strip() if len(detail) > 1 else detail[0]


def shown_path(path: object) -> str:
    r"""A file name as one line of a message: control characters (a newline in a name) written as
    escapes, so each message stays one line, and bytes that are not UTF-8 as the bytes they are
    (``\xff``, not Python's stand-in ``\udcff``). Where a name is escaped, or holds a backslash
    that would read as one of those escapes, its own backslashes are doubled: a name holding a
    backslash and an n had read as one holding a newline, one holding ``\u202e`` as one holding
    that control character."""
    text = str(path)
    plain = text.isprintable() and not re.search(r"\\(?:[ntr\\]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})", text)
    return text if plain else "".join(shown_char(c) for c in text)


def shown_char(c: str) -> str:
    """One character of a name as :func:`shown_path` writes it."""
    if "\udc80" <= c <= "\udcff":  # a byte os.fsdecode could not decode
        return "\\x%02x" % (ord(c) - 0xDC00)
    if c == "\\":
        return "\\\\"
    return c if c.isprintable() else repr(c)[1:-1]

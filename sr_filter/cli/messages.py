"""One line per error: the library's neutral message, shortened, with the CLI flag that fixes it.

Library messages say what to change in neutral words (GIMP and API users read them too); the
command line adds the flag here, by exception class, in this one table.
"""

from __future__ import annotations

import re

from .. import errors
from ..errors import shorten, shown_char, shown_path  # noqa: F401 - shown_path: the commands' import

#: exception class name -> the hint the CLI appends, as alternatives (none for no hint; first
#: match wins: subclasses before their bases). Names are looked up in errors.py; a class not
#: defined there is left out. An alternative that names a flag the running command lacks is left
#: out of that command's hint (``export`` has no --skip-existing).
_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("OutputIsInputError", ()),
    ("OutputExistsError", ("use --overwrite to replace it", "--skip-existing")),
    ("DeviceError", ("see --device, -g and --precision",)),
    ("BackendError", ("see --backend",)),
    ("DenoiseError", ("see --denoise",)),
    ("CommunityModelError", ("`sr-filter models --inspect FILE` says what the file is",)),
    ("InputTooLargeError", ()),  # the input's own size: no flag changes it
    ("ImageTooLargeError", ("use a smaller --scale, --width or --height",)),
    ("WholeTooLargeError", ("leave out --tile (automatic) or give a --tile size",)),  # the scale changes nothing there
    ("OutOfMemoryError", ("use a smaller --scale",)),  # tiles are split down by themselves; "--tile" had followed "even with 62x62 tiles"
    ("OfflineError", ("leave out --offline and unset SR_FILTER_OFFLINE to allow downloads", "choose a built-in model")),
    # a preset falls back to a built-in model by itself: this is a named model, which has none
    ("NetworkUnavailableError", ("a built-in model (`sr-filter models`) runs without the network",)),
    ("CacheError", ()),  # fixed by the environment variable its message names
    ("DownloadSettingError", ()),
    ("DownloadError", ("see --model and --offline",)),
    ("UnknownModelError", ("`sr-filter models` lists them",)),
)
FLAG_HINTS: tuple[tuple[type[BaseException], tuple[str, ...]], ...] = tuple(
    (getattr(errors, name), hint) for name, hint in _HINTS if isinstance(getattr(errors, name, None), type)
)

#: longest message shown; third-party text (a decoder's complaint) can be much longer
LIMIT = 600


def _flags_in(text: str) -> list[str]:
    """The options a hint names, leaving out those of a command it quotes (`sr-filter models --inspect`)."""
    text = re.sub(r"`[^`]*`", " ", text)
    return [word.strip("()") for word in text.replace(",", " ").split() if word.startswith("-")]


def _hint(alternatives: tuple[str, ...], flags: frozenset[str] | None) -> str | None:
    """The alternatives the command can act on (all when ``flags``, its options, is unknown)."""
    kept = [a for a in alternatives if flags is None or all(f in flags for f in _flags_in(a))]
    return ", or ".join(kept) if kept else None


def hint_for(exc: BaseException, text: str | None = None, flags: frozenset[str] | None = None) -> str | None:
    """The hint for this error's class, unless its message already names one of the flags."""
    text = str(exc) if text is None else text
    for cls, alternatives in FLAG_HINTS:
        if isinstance(exc, cls):
            hint = _hint(alternatives, flags)
            if hint is None:
                return None
            said = _flags_in(hint) + (["sr-filter models"] if "sr-filter models" in hint else [])
            if any(word in text for word in said):  # the message already points there
                return None
            return _hint(tuple(a for a in alternatives if a not in text), flags)  # not what the message says already
    return None


#: neutral advice in library messages that the command line words with the flags of the hint
#: for that error class instead of appending a hint that says the same thing again
_FLAG_WORDING = (("; " + errors.OVERWRITE_ADVICE, errors.OutputExistsError),
                 ("; use a smaller scale or cut the image into parts", errors.ImageTooLargeError))


#: neutral wording of library messages (GIMP and API users read them too) that the command line
#: says with its own flag, where the running command has that flag: (pattern, replacement, flag)
_FLAG_TEXT = (
    (r"the frame range (\d+:\d+) upscales", r"--frames \1 upscales", "--frames"),
    (r"skipping damaged packets keeps the rest", "--skip-damaged keeps the rest", "--skip-damaged"),
    # said so, the size hint was appended as well: the advice came twice
    (r"choose a smaller scale or another", "use a smaller --scale, --width or --height, or another", "--scale"),
    (r"choose a smaller scale", "use a smaller --scale, --width or --height", "--scale"),
    (r"check=False writes it unchecked", "--no-check writes it unchecked", "--no-check"),
    (r"leave the tile automatic, or give a tile size$", "leave out --tile (automatic), or give a --tile size", "--tile"),
    (r"leave the tile automatic, or give a smaller tile size$", "leave out --tile (automatic), or give a smaller --tile size",
     "--tile"),
    (r"(such as \.png(?: \([^)]*\))?) or name the format$", r"\1 or give --format", "--format"),
    # a video's codec choices and resumable runs, as the API's arguments (video.encode, video.resume)
    (r'codec="\w+"(?: or "\w+")*', lambda m: "--codec " + m.group(0)[len("codec="):].replace('"', ""), "--codec"),
    (r"an earlier run with resume=True", "an earlier --resume run", "--resume"),
    (r"resume=True", "--resume", "--resume"),
    (r"(?<!-)\bquality is for JPEG", "--quality is for JPEG", "--quality"),
)


def flagged(text: str, flags: frozenset[str] | None = None) -> str:
    """A library notice (not an error: :func:`one_line` words those) with the command line's flags
    for the API's words, where the running command has them."""
    for pattern, replacement, flag in _FLAG_TEXT:
        if flags is None or flag in flags:
            text = re.sub(pattern, replacement, text)
    return text


def one_line(exc: BaseException, *, text: str | None = None, limit: int = LIMIT,
             flags: frozenset[str] | None = None) -> str:
    """The error (or ``text`` said about it) as one shortened line, with its hint in parentheses;
    ``flags``: the running command's options, so that hints name only flags it has."""
    # a control character or a byte that is not UTF-8 in a file name as an escape, as shown_path writes
    # them (a newline had read as a space, U+202E had turned the rest of the line around); backslashes
    # are left as they are: names in the text may be shown_path's already
    raw = str(exc) if text is None else text
    escaped = "".join(c if c.isprintable() or c == " " else shown_char(c) for c in raw)
    text = " ".join(escaped.split()) or type(exc).__name__
    text = flagged(text, flags)
    for neutral, cls in _FLAG_WORDING:
        if neutral in text:
            advice = _hint(dict(FLAG_HINTS)[cls], flags)
            text = text.replace(neutral, f"; {advice}" if advice else "")
    hint = hint_for(exc, text, flags)
    text = shorten(text, limit)
    return f"{text} ({hint})" if hint else text


def unforeseen(exc: BaseException) -> str:
    """The line for an error no check of ours foresaw: what it was, and that it is a bug to report."""
    return (f"unexpected {type(exc).__name__}: {errors.first_line(exc)}; this is a bug in sr-filter: please report it "
            "with the command (-vv shows the traceback)")

"""One line per error: the library's neutral message, shortened, with the CLI flag that fixes it.

Library messages say what to change in neutral words (GIMP and API users read them too); the
command line adds the flag here, by exception class, in this one table.
"""

from __future__ import annotations

from .. import errors
from ..errors import shorten

#: exception class name -> the hint the CLI appends, or None for none (first match wins: subclasses
#: before their bases). Names are looked up in errors.py; a class not defined there is left out.
_HINTS: tuple[tuple[str, str | None], ...] = (
    ("OutputIsInputError", None),
    ("OutputExistsError", "use --overwrite to replace it, or --skip-existing"),
    ("DeviceError", "see --device, -g and --precision"),
    ("BackendError", "see --backend"),
    ("DenoiseError", "see --denoise"),
    ("CommunityModelError", "`sr-filter models --inspect FILE` says what the file is"),
    ("ImageTooLargeError", "use a smaller --scale, --width or --height"),
    ("OutOfMemoryError", "use a smaller --tile or --scale"),
    ("OfflineError", "run without --offline to download it, or choose a built-in --model"),
    ("NetworkUnavailableError", "--offline uses the built-in models without trying the network"),
    ("CacheError", None),  # fixed by the environment variable its message names
    ("DownloadSettingError", None),
    ("DownloadError", "see --model and --offline"),
    ("UnknownModelError", "`sr-filter models` lists them"),
)
FLAG_HINTS: tuple[tuple[type[BaseException], str | None], ...] = tuple(
    (getattr(errors, name), hint) for name, hint in _HINTS if isinstance(getattr(errors, name, None), type)
)

#: longest message shown; third-party text (a decoder's complaint) can be much longer
LIMIT = 600


def hint_for(exc: BaseException, text: str | None = None) -> str | None:
    """The hint for this error's class, unless its message already names one of the flags."""
    text = str(exc) if text is None else text
    for cls, hint in FLAG_HINTS:
        if isinstance(exc, cls):
            if hint is None:
                return None
            said = [word for word in hint.replace(",", " ").split() if word.startswith("-")]
            said += ["sr-filter models"] if "sr-filter models" in hint else []
            if any(word in text for word in said):  # the message already points there
                return None
            return hint
    return None


#: neutral advice in library messages that the command line words with its flag instead of
#: appending a hint that says the same thing again
_FLAG_WORDING = (("; allow overwriting to replace it", "; use --overwrite to replace it, or --skip-existing"),)


def one_line(exc: BaseException, *, text: str | None = None, limit: int = LIMIT) -> str:
    """The error (or ``text`` said about it) as one shortened line, with its hint in parentheses."""
    text = " ".join((str(exc) if text is None else text).split()) or type(exc).__name__
    for neutral, flagged in _FLAG_WORDING:
        text = text.replace(neutral, flagged)
    hint = hint_for(exc, text)
    text = shorten(text, limit)
    return f"{text} ({hint})" if hint else text

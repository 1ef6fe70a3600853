"""One line per error: the library's neutral message, shortened, with the CLI flag that fixes it.

Library messages say what to change in neutral words (GIMP and API users read them too); the
command line adds the flag here, by exception class, in this one table.
"""

from __future__ import annotations

from .. import errors
from ..errors import shorten

#: exception class -> the hint the CLI appends (first match wins: subclasses before their bases)
FLAG_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (errors.OutputExistsError, "use --overwrite to replace it, or --skip-existing"),
    (errors.DeviceError, "see --device, -g and --precision"),
    (errors.ImageTooLargeError, "use a smaller --scale, --width or --height"),
    (errors.OutOfMemoryError, "use a smaller --tile or --scale"),
    (errors.DownloadError, "see --model and --offline"),
    (errors.UnknownModelError, "`sr-filter models` lists them"),
)

#: longest message shown; third-party text (a decoder's complaint) can be much longer
LIMIT = 600


def hint_for(exc: BaseException, text: str | None = None) -> str | None:
    """The hint for this error's class, unless its message already names one of the flags."""
    text = str(exc) if text is None else text
    for cls, hint in FLAG_HINTS:
        if isinstance(exc, cls):
            flags = [word for word in hint.replace(",", " ").split() if word.startswith("-")]
            if any(flag in text for flag in flags) or "sr-filter models" in text:
                return None
            return hint
    return None


def one_line(exc: BaseException, *, text: str | None = None, limit: int = LIMIT) -> str:
    """The error (or ``text`` said about it) as one shortened line, with its hint in parentheses."""
    text = " ".join((str(exc) if text is None else text).split()) or type(exc).__name__
    hint = hint_for(exc, text)
    text = shorten(text, limit)
    return f"{text} ({hint})" if hint else text

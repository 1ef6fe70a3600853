"""Reading ``SR_FILTER_*`` environment variables with one clear error for a bad value.

A variable that is unset or empty means "use the default". A value that cannot be used raises
the caller's :class:`~sr_filter.errors.SrFilterError` subclass with a message naming the variable,
its value and what it should be, so a typo never becomes a traceback.
"""

from __future__ import annotations

import math
import os

from .errors import SrFilterError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_text(name: str) -> str | None:
    """The variable's value without surrounding blanks, or None when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_flag(name: str, error: type[SrFilterError]) -> bool | None:
    """True/False for 1/0, yes/no, on/off, true/false; None when unset."""
    value = env_text(name)
    if value is None:
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise error(f"{name}={value!r} is not understood; set it to 1 (on) or 0 (off), or unset it")


def env_int(name: str, default: int, *, minimum: int, error: type[SrFilterError]) -> int:
    """A whole number >= ``minimum``, or ``default`` when unset."""
    value = env_text(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise error(f"{name}={value!r} must be a whole number of at least {minimum}; set it to e.g. {default} or unset it")
    return number


def env_seconds(name: str, default: float, *, error: type[SrFilterError]) -> float:
    """A positive, finite number of seconds, or ``default`` when unset."""
    value = env_text(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise error(f"{name}={value!r} must be a positive number of seconds; set it to e.g. {default:g} or unset it")
    return number

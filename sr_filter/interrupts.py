"""Ctrl-C held back around work that must not be cut in the middle by a KeyboardInterrupt.

Raised while a C++ extension initialises, a KeyboardInterrupt aborts the process (pybind11's
``terminate``); raised inside a conversion that a fallback guards (the OpenVINO backend, whose
failure means "use torch"), it must never be taken for a failure of the conversion. Inside
:func:`interrupts_held` a Ctrl-C is remembered and raised when the block ends, so it is acted on
a moment later, and always.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Iterator


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Within the block a Ctrl-C is remembered, not raised; it is raised when the block ends. A
    process started with Ctrl-C ignored (``nohup``, a shell script's background job) keeps ignoring it."""
    pending: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    try:
        if previous is not signal.SIG_IGN:
            previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    except ValueError:  # not the main thread: nothing to hold back
        previous = signal.SIG_IGN
    if previous is signal.SIG_IGN:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived (the CLI's handlers raise it): unwinds like Ctrl-C so every
    ``finally`` removes its temporary files, and the CLI exits 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

"""Ctrl-C held back around work that must not be cut in the middle by a KeyboardInterrupt.

Raised while a C++ extension initialises, a KeyboardInterrupt aborts the process (pybind11's
``terminate``); raised inside a conversion that a fallback guards (the OpenVINO backend, whose
failure means "use torch"), it must never be taken for a failure of the conversion. Inside
:func:`interrupts_held` a Ctrl-C is remembered and raised when the block ends, so it is acted on
a moment later, and always.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType
from typing import Iterator


#: the stop signals held back: Ctrl-C, and SIGTERM/SIGHUP where a Python handler takes them (the CLI's)
_HELD = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Within the block a Ctrl-C (and a SIGTERM or SIGHUP a Python handler takes: the CLI's
    :class:`Terminated`, training's stop) is remembered, not acted on; when the block ends it is
    raised again, for the handler the block held it from. A signal ignored by the process
    (``nohup``, a shell script's background job) stays ignored. SIGTERM had been taken inside an
    OpenVINO conversion for its failure: the run went on with torch, exited 0, and the model was
    recorded as one that cannot be converted."""
    pending: list[int] = []
    previous: dict[int, object] = {}
    try:
        for number in _HELD:
            handler = signal.getsignal(number)
            if number == signal.SIGINT and handler is not signal.SIG_IGN or callable(handler):
                previous[number] = signal.signal(number, lambda signum, frame: pending.append(signum))
    except ValueError:  # not the main thread: nothing to hold back
        previous = {}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if pending:  # to the handler the block held it from: KeyboardInterrupt, the CLI's Terminated, training's stop
        if not callable(previous.get(pending[0])):  # Ctrl-C with the system's default action
            raise KeyboardInterrupt
        signal.raise_signal(pending[0])  # runs that handler before it returns


def in_import(frame: FrameType | None) -> bool:
    """Whether ``frame`` (where a signal handler interrupted the program) is inside Python's import
    machinery: an exception raised there can leave an import lock held (a weakref callback
    swallows it half-way), and the next import waits for ever."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def deliver_later(signum: int, delay: float = 0.02) -> None:
    """Send ``signum`` to this process again after ``delay`` seconds (from a helper thread: the
    handler then runs in the main thread, outside the import that deferred it)."""
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived (the CLI's handlers raise it): unwinds like Ctrl-C so every
    ``finally`` removes its temporary files, and the CLI exits 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

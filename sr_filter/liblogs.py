"""Log records of the libraries sr_filter calls (libpng through imagecodecs, tifffile), held while
they work: said afterwards as one line of ours that names the file, or folded into an error,
instead of their own lines about a file they do not name."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def held_records(logger_name: str, *filters: logging.Filter) -> Iterator[list[logging.LogRecord]]:
    """The warnings ``logger_name`` logs inside the block (those ``filters`` pass), kept from the
    log and handed to the caller; the logger is as before afterwards."""
    logger = logging.getLogger(logger_name)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    for kept in filters:
        handler.addFilter(kept)
    handler.emit = records.append  # type: ignore[method-assign]
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate



#: thread id -> the notice callback its records of WARNING and above go to (:func:`told`)
_TOLD: dict = {}
_TOLD_LOCK = threading.Lock()


class _ToNotice(logging.Handler):
    """On the package's logger while a :func:`told` block runs: a warning of a thread that gave a
    notice goes to it; every other record goes on to the root's handlers, as it would have."""

    def emit(self, record: logging.LogRecord) -> None:
        notice = _TOLD.get(record.thread) if record.levelno >= logging.WARNING else None
        if notice is not None:
            notice(record.getMessage())
        elif self._logger.parent is not None:
            self._logger.parent.handle(record)

    _logger = logging.getLogger("sr_filter")


_HANDLER = _ToNotice()


@contextlib.contextmanager
def told(notice) -> Iterator[None]:
    """The package's warnings logged on this thread inside the block go to ``notice`` (an API
    caller's callback) instead of the log: loading the model and running it warn through the log,
    and those lines had bypassed the callback the caller gave for a job's notices. None: the log,
    as before. Other threads' records, and this one's below WARNING, go on as they were."""
    if notice is None:
        yield
        return
    thread = threading.get_ident()
    logger = _HANDLER._logger
    with _TOLD_LOCK:
        if thread in _TOLD:  # nested: the outer block's notice stays
            notice = None
        else:
            if not _TOLD:
                _HANDLER.propagate_was = logger.propagate
                logger.addHandler(_HANDLER)
                logger.propagate = False
            _TOLD[thread] = notice
    try:
        yield
    finally:
        if notice is not None:
            with _TOLD_LOCK:
                del _TOLD[thread]
                if not _TOLD:
                    logger.removeHandler(_HANDLER)
                    logger.propagate = _HANDLER.propagate_was

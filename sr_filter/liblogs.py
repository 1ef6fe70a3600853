"""Log records of the libraries sr_filter calls (libpng through imagecodecs, tifffile), held while
they work: said afterwards as one line of ours that names the file, or folded into an error,
instead of their own lines about a file they do not name."""

from __future__ import annotations

import contextlib
import logging
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

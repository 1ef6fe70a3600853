"""Progress bars on stderr (tqdm), shown only on a terminal: one per file, plus one over a batch.

The per-file bar moves each time the library's progress callback fires (per tile window), with
elapsed time and an estimate of what is left; the batch bar counts files, with files per second
and the batch's ETA. Messages printed meanwhile go above the bars (``echo``), never on stdout.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import click

log = logging.getLogger(__name__)

#: seconds between the progress lines that -v writes where no bar is shown (stderr not a terminal)
LOG_EVERY = 10.0

FILE_FORMAT = "{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
BATCH_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} files [{elapsed}<{remaining}, {rate_fmt}]"


class Bars:
    """The bars of one command run; does nothing unless ``enabled`` (stderr is a terminal, no -q)."""

    def __init__(self, count: int, *, enabled: bool) -> None:
        self.enabled = enabled
        self.count = count
        self._file: Any = None
        self._batch: Any = None
        # no bar (a log file, a pipe): -v gets a line every LOG_EVERY seconds instead, as a sign of
        # life in a long run (a 2-minute picture had said nothing between its first and last line)
        self._label, self._started, self._logged = "", 0.0, 0.0
        if enabled and count > 1:
            from tqdm import tqdm

            self._batch = tqdm(total=count, desc="all", unit="file", bar_format=BATCH_FORMAT, file=sys.stderr,
                               position=0, **terminal_size(), leave=True)

    def start(self, label: str) -> None:
        """A new per-file bar named ``label``."""
        if not self.enabled:
            self._label, self._started = label, time.monotonic()
            self._logged = self._started
            return
        from tqdm import tqdm

        self._close_file()
        self._file = tqdm(total=1, desc=label[-40:], bar_format=FILE_FORMAT, file=sys.stderr, leave=False,
                          position=1 if self._batch is not None else 0, **terminal_size(), mininterval=0.1)

    def __call__(self, done: int, total: int) -> None:
        """The library's progress callback: ``done`` of ``total`` units of the current image."""
        bar = self._file
        if bar is None:
            if not self.enabled and total and done < total and self._label:
                now = time.monotonic()
                if now - self._logged >= LOG_EVERY and log.isEnabledFor(logging.INFO):
                    self._logged = now
                    log.info("%s: %d%% after %.0f s", self._label, 100 * done // total, now - self._started)
            return
        if total and bar.total != total:
            bar.total = total
        if done > bar.n:
            bar.update(done - bar.n)
            if total and done >= total:
                # the picture is done; its file is being encoded and written, which for a large PNG is a
                # third of the run (7.6 of 23 s for an 8000x6000 one): said, not a bar stuck at 100%
                bar.set_description_str(f"{bar.desc} (writing)", refresh=False)
                bar.refresh()  # the last step can come within tqdm's redraw interval: always show 100%

    def finish(self) -> None:
        """The current file is done (written, skipped or failed)."""
        self._close_file()
        if self._batch is not None:
            self._batch.update(1)

    def echo(self, message: str) -> None:
        """A message on stderr that does not tear the bars."""
        if self.enabled:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)
        else:
            click.echo(message, err=True)

    def close(self) -> None:
        self._close_file()
        if self._batch is not None:
            self._batch.close()
            self._batch = None

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def terminal_size() -> dict[str, int]:
    """The terminal's size for tqdm (a terminal that reports none, such as a bare pty, gets 100x24;
    tqdm would otherwise hide every bar)."""
    try:
        columns, rows = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        columns, rows = 0, 0
    return {"ncols": columns if columns > 20 else 100, "nrows": rows if rows > 2 else 24}


def stderr_is_terminal() -> bool:
    """Whether bars make sense: stderr is open and a terminal."""
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False


def cancels(answer: object) -> bool:
    """Whether a progress callback's answer asks to stop: False, numpy's False too (which ``return
    not flag.any()`` gives); None, True and anything else go on."""
    if answer is False:
        return True
    if answer is None or answer is True:
        return False
    import numpy as np

    return isinstance(answer, np.bool_) and not answer

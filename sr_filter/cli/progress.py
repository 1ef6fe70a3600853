"""A one-line progress display on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """Renders ``label [#####     ] 42%`` on stderr, at most ten times a second."""

    def __init__(self, enabled: bool | None = None, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = ""
        self._last = 0.0
        self._shown = False

    def set_label(self, label: str) -> None:
        self.label = label

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 24)
        self.stream.write(f"\r{self.label[:40]:<40} [{bar:<24}] {frac:4.0%}")
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False

"""The standard streams as the commands use them: refused in one line when closed (``<&-``, ``>&-``).

Python leaves ``sys.stdin``/``sys.stdout`` None for a closed stream (the CLI holds its descriptor
with /dev/null, so no output file takes it); each command that reads or writes one says so here,
before any model loads, in the same words for images, animations and frame streams.
"""

from __future__ import annotations

import os
import sys

import click


def discard(fd: int) -> None:
    """Point descriptor ``fd`` at /dev/null once its reader has gone or its disk is full: what is
    still buffered for it, and written later (at exit too), goes nowhere instead of failing again."""
    null = os.open(os.devnull, os.O_WRONLY)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def refuse_closed(*, reads_stdin: bool = False, writes_stdout: bool = False) -> None:
    """A usage error (exit 2) when a standard stream the command needs is closed."""
    if reads_stdin and sys.stdin is None:
        raise click.UsageError("'-' reads standard input, which is closed")
    if writes_stdout and sys.stdout is None:
        raise click.UsageError("standard output is closed; name an output file with -o")

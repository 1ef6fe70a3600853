"""What every benchmark shares: the CPU line, peak RSS of a process, the --help description.

Kept free of heavy imports: ``python benchmarks/_machine.py peak-rss REPORT -m MODULE ARGS...``
runs a command in this process (as ``python -m MODULE ARGS...`` would) and writes its peak RSS
to REPORT, so a benchmark that times whole commands measures their memory without counting ours.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cpu_facts() -> str:
    """The CPU model name and which native bf16 instructions it has."""
    import platform

    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    native = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} cores; native bf16: {', '.join(native) if native else 'no'}"


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that across
    exec, so a child would report its parent's peak."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def description(doc: str) -> str:
    """A script docstring's first paragraph as one line, for ``argparse``'s description."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def peak_rss_command(report: str, command: list[str]) -> list[str]:
    """``command`` (``[python, -m, MODULE, ...]`` or ``[python, SCRIPT, ...]``) run through this
    file, which writes the command's own peak RSS (MB) to ``report`` when it ends."""
    return [command[0], str(Path(__file__).resolve()), "peak-rss", report, *command[1:]]


def _peak_rss_main(report: str, argv: list[str]) -> None:
    import runpy

    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[0] = os.getcwd()  # as ``python -m`` has it (not this file's folder)
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = argv
            sys.path[0] = str(Path(argv[0]).resolve().parent)
            runpy.run_path(argv[0], run_name="__main__")
    finally:
        Path(report).write_text(f"{peak_rss_mb()}\n")


if __name__ == "__main__" and len(sys.argv) > 3 and sys.argv[1] == "peak-rss":
    _peak_rss_main(sys.argv[2], sys.argv[3:])

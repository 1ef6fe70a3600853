"""Start-up time of the sr-filter command: --help, --version, an option error, against `import torch`.

Each command runs as a fresh subprocess; the table gives the minimum of --repeats runs (wall
seconds) and the ratio to a bare `python -c pass`, all measured in one run, interleaved.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _machine import cpu_facts

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "python -c pass": ["-c", "pass"],
    "sr-filter --version": ["-m", "sr_filter", "--version"],
    "sr-filter --help": ["-m", "sr_filter", "--help"],
    "sr-filter upscale --help": ["-m", "sr_filter", "upscale", "--help"],
    "sr-filter x.png --scale 0": ["-m", "sr_filter", "x.png", "--scale", "0"],
    "python -c 'import torch'": ["-c", "import torch"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name, argv in CASES.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, *argv], env=env, capture_output=True, check=False)
            times[name].append(time.perf_counter() - start)
    base = min(times["python -c pass"])
    print(f"CPU: {cpu_facts()}; min of {args.repeats}, interleaved")
    print(f"{'command':<28} {'min s':>7} {'x python':>9}")
    for name, values in times.items():
        print(f"{name:<28} {min(values):7.3f} {min(values) / base:9.1f}")


if __name__ == "__main__":
    main()

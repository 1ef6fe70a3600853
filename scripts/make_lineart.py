#!/usr/bin/env python3
"""Write the held-out procedural line-art pages (sr_filter.training.lineart.HELD_OUT: two pages of
each kind, fixed seeds) into a folder, for `sr-filter eval`. The pages are not kept in the
repository: they are made again, identically, from their seeds.

    python scripts/make_lineart.py /tmp/lineart_held_out
    sr-filter eval /tmp/lineart_held_out --jpeg 75 -m bicubic -m realesr-animevideov3 -m sr-cartoon-x4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="where to write the PNG files (created if needed)")
    ap.add_argument("--size", type=int, default=512, help="side of each square page in pixels (default 512)")
    args = ap.parse_args(argv)
    if args.size < 16:
        print(f"error: --size must be at least 16 pixels, not {args.size}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's sr_filter
    from sr_filter.errors import SrFilterError
    from sr_filter.training.lineart import write_held_out

    try:
        paths = write_held_out(args.folder, args.size)
    except (SrFilterError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(paths)} pages of {args.size}x{args.size} to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

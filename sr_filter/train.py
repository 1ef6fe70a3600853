"""``python -m sr_filter.train CONFIG``: train (or resume) one experiment; same as ``sr-filter train``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from .errors import SrFilterError
    from .training import load_config, train

    ap = argparse.ArgumentParser(prog="python -m sr_filter.train", description=__doc__)
    ap.add_argument("config", help="experiment TOML file")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing latest.pt and start over")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    args = ap.parse_args(argv)
    try:
        path = train(load_config(args.config), resume=not args.fresh,
                     max_seconds=args.max_minutes * 60 if args.max_minutes else None)
    except SrFilterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

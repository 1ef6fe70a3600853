"""``python -m sr_filter`` runs the CLI."""

import signal
import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still importing: no traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second one must not interrupt the exit
    sys.stderr.write("sr-filter: interrupted\n")
    sys.exit(130)

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # a Ctrl-C that C code held back until after main's own handling
        from .cli import interrupted_exit

        interrupted_exit("sr-filter: interrupted")

"""``python -m sr_filter`` and the installed ``sr-filter`` command run the CLI."""

import signal
import sys


def run() -> None:
    """The command's entry point. The CLI is imported here, under a guard: a Ctrl-C while Python
    still imports click and the rest (the first tenth of a second) had been a traceback from the
    installed command, whose wrapper imported ``sr_filter.cli`` itself."""
    try:
        from .cli import main
    except KeyboardInterrupt:  # Ctrl-C while Python is still importing: no traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second one must not interrupt the exit
        sys.stderr.write("sr-filter: interrupted\n")
        sys.exit(130)
    try:
        main()
    except KeyboardInterrupt:  # a Ctrl-C that C code held back until after main's own handling
        from .cli import interrupted_exit

        interrupted_exit("sr-filter: interrupted")


if __name__ == "__main__":
    run()

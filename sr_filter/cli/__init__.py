"""The ``sr-filter`` command: a click group whose default subcommand is ``upscale``.

``sr-filter photo.jpg -o big.png`` and ``sr-filter upscale photo.jpg -o big.png`` are the same.
Every error becomes one line on stderr, ``sr-filter: error: ...``, with exit status 1 (2 for a bad
option or usage, 128+N for signal N); tracebacks are shown only with ``-vv``. Nothing here imports
torch: ``--help``, ``--version`` and option errors stay instant.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from types import FrameType
from typing import NoReturn

import click

from .. import __version__
from ..errors import SrFilterError, first_line, resource_failure
from ..interrupts import Terminated, deliver_later, in_import
from ..stdio import discard
from .messages import one_line, unforeseen
from .options import configure_logging

#: subcommand name -> "module:attribute", imported only when used (keeps --help fast)
COMMANDS = {
    "upscale": "sr_filter.cli.upscale:upscale",
    "models": "sr_filter.cli.models:models",
    "eval": "sr_filter.cli.eval:eval_cmd",
    "train": "sr_filter.cli.train:train_cmd",
    "gimp-install": "sr_filter.cli.gimp:gimp_install",
    "export": "sr_filter.cli.export:export_cmd",
}
DEFAULT_COMMAND = "upscale"


class _Interrupted(BaseException):
    """Ctrl-C inside a command, kept from click, which prints an empty line before its own Abort."""


class DefaultGroup(click.Group):
    """A group that runs ``upscale`` when the first argument is not a subcommand."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            stop = _Interrupted()
            stop.batch_progress = getattr(exc, "batch_progress", None)  # how far a batch came, for the one line
            raise stop from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    #: the options of the command being run (its errors' hints name only these)
    flags: frozenset[str] | None = None
    #: those of its options that take a value (the next argument is that value, even one that begins with '-')
    valued: frozenset[str] | None = None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            DefaultGroup.flags = frozenset(o for p in command.params for o in (*p.opts, *p.secondary_opts))
            DefaultGroup.valued = frozenset(o for p in command.params if isinstance(p, click.Option) and not p.is_flag
                                            and not p.count for o in p.opts)
        return name, command, rest

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # insert "upscale" before the first argument that is neither a group option nor a command
        for i, arg in enumerate(args):
            if arg in _GROUP_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
                continue
            if arg not in COMMANDS and arg not in ("-h", "--help", "--version"):
                args = [*args[:i], DEFAULT_COMMAND, *args[i:]]
            break
        return super().parse_args(ctx, args)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list:
        """Completions before any argument: the commands and group options, and (for an option
        being typed) the default command's options too, as `sr-filter --pre` runs upscale
        (it had completed nothing; `sr-filter upscale --pre` did); for a word, file names too,
        as `sr-filter photo.jpg` upscales a file (only command names had been offered)."""
        results = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            command = self.get_command(ctx, DEFAULT_COMMAND)
            sub = click.Context(command, info_name=DEFAULT_COMMAND, parent=ctx)
            have = {item.value for item in results}
            results += [item for item in command.shell_complete(sub, incomplete) if item.value not in have]
        else:
            from click.shell_completion import CompletionItem

            # first: bash's script empties its list at a "file" entry, then takes the commands;
            # the files are listed when no command matches
            results.insert(0, CompletionItem(incomplete, type="file"))
        return results

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """After the group's own options and commands, the default command's options."""
        super().format_options(ctx, formatter)
        command = self.get_command(ctx, DEFAULT_COMMAND)
        sub = click.Context(command, info_name=DEFAULT_COMMAND, parent=ctx)
        records = [r for p in command.get_params(sub) if isinstance(p, click.Option) and p.name not in ("help", "quiet", "verbose")
                   for r in [p.get_help_record(sub)] if r]
        with formatter.section("Upscale options (upscale is the default command; see `sr-filter upscale --help`)"):
            formatter.write_dl(records)


_GROUP_FLAGS = {"-q", "--quiet", "--verbose"}


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=False)
@click.version_option(__version__, "--version", prog_name="sr-filter", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More messages on stderr (-vv: debug, with tracebacks).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no progress bar.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Upscale images, animations and videos with super-resolution networks.

    Without a command, `upscale` runs: `sr-filter photo.jpg` is `sr-filter upscale photo.jpg`.

    \b
    Examples:
      sr-filter photo.jpg -o photo_x4.png
      sr-filter --preset cartoon frame.png --scale 2 -o frame_x2.png
      cat in.png | sr-filter - > out.png
      sr-filter models
    Shell completion (bash; zsh and fish alike):
      eval "$(_SR_FILTER_COMPLETE=bash_source sr-filter)"
    """
    ctx.obj = {"verbose": verbose, "quiet": quiet}
    configure_logging(verbose, quiet)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the group and turns every error into one line and an exit status.
    Called in-process with ``argv``, the caller's signal handlers and standard error are given back at the end."""
    previous = _install_signal_handlers()
    stderr, stdout = sys.stderr, sys.stdout
    from ..atomic import new_folders

    try:
        with new_folders():  # made for outputs that were never written: removed
            _main(argv)
    finally:
        if argv is not None:
            sys.stderr, sys.stdout = stderr, stdout
            for number, handler in (previous or {}).items():
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(number, handler)


class _MessagesOnly:
    """Standard error as the commands use it: for messages only. A write that fails (a full disk
    behind ``2>file``, a reader gone after ``2>&1 | head``) sends the rest to /dev/null instead of
    stopping the work: an upscale had been abandoned, without its output and without a word,
    because a progress line could not be shown."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            self._give_up()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._give_up()

    def _give_up(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            discard(self._stream.fileno())  # what the stream still holds drains there, at exit too
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Listing:
    """Standard output as the commands write text to it (lists, help, results): a refusal there
    names it, as one for a picture written to ``-o -`` does (``sr-filter models > /dev/full`` had
    said only "No space left on device"). What it still holds goes to /dev/null, so that Python's
    flush at exit does not fail a second time. A reader that left (``| head -1``) stays a quiet
    BrokenPipeError."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if not text:  # click's probe for a binary stream (write(b""), then write("")): its own to catch
            return self._stream.write(text)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._refused(exc)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._refused(exc)

    def _refused(self, exc: OSError) -> NoReturn:
        with contextlib.suppress(OSError, ValueError):
            discard(self._stream.fileno())
        raise SrFilterError(f"cannot write to standard output ({exc.strerror or first_line(exc)})") from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _main(argv: list[str] | None) -> None:
    _guard_closed_stdio()
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        debug = any(a in ("-vv", "-vvv") for a in args) or args.count("-v") + args.count("--verbose") >= 2
        options = args[: args.index("--")] if "--" in args else args  # a file named --help after -- is a file
        if sys.stdout is None and any(a in ("--help", "-h", "--version") for a in options):  # had exited 0, saying nothing
            _fail(f"standard output is closed; the {'version' if '--version' in options else 'help'} would be lost", 2)
        code = cli.main(args=args, prog_name="sr-filter", standalone_mode=False)
    except (click.exceptions.Abort, _Interrupted) as exc:  # click's Abort carries the Ctrl-C as its cause
        _fail(_with_progress("interrupted", exc.__cause__ or exc), 130)
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare `sr-filter`: the help, as --help gives it
        if _piped_in():  # `cat a.png | sr-filter > b.png` had written the help into b.png, with status 0
            _fail(f"no input named; {STDIN_HINT}", 2)
        click.echo(exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        if exc.format_message() == "Missing command.":  # `cat a.png | sr-filter -q`: options, no input
            _fail(f"no input named; {STDIN_HINT}", 2)
        # BadParameter: `in.png -dash.png` is read as -d ash.png ("'ash.png' is not a device")
        hint = _dash_name_hint(args) if isinstance(exc, (click.NoSuchOption, click.MissingParameter, click.BadParameter)) else ""
        if not hint and isinstance(exc, click.MissingParameter) and exc.param is not None and exc.param.name == "inputs":
            hint = STDIN_HINT  # `cat a.png | sr-filter -o - > b.png`
        _fail(f"{exc.format_message().rstrip('.')}; {hint}" if hint else exc.format_message(), 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:  # a command's own exit status (train's after a stop): ends below, signals ignored
        if exc.code is not None and not isinstance(exc.code, int):  # (it had passed that by: a second Ctrl-C
            raise  # during the exit printed atexit's traceback)
        code = exc.code
    except SrFilterError as exc:
        if debug:
            raise
        _fail(one_line(exc, flags=DefaultGroup.flags), exc.exit_code)
    except KeyboardInterrupt as exc:
        _fail(_with_progress("interrupted", exc), 130)
    except Terminated as exc:  # every cleanup has run; the interpreter's own exit (Ray's included) is skipped, as after Ctrl-C
        line = f"sr-filter: error: stopped by {signal.Signals(exc.signum).name}"
        said = getattr(exc, "batch_progress", None)
        interrupted_exit(_with_progress(line, exc) if said else f"{line}; unfinished outputs were removed", 128 + exc.signum)
    except BrokenPipeError:
        sys.exit(1)
    except (ImportError, MemoryError, RuntimeError) as exc:  # resources ran out before our own checks could tell
        if debug:
            raise
        _fail(resource_failure(exc), 1)
    except OSError as exc:  # a file system refusal no check foresaw: still one line
        if debug:
            raise
        if "failed to map segment" in str(exc):  # a library loaded through ctypes under a memory limit
            _fail(resource_failure(exc), 1)
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(one_line(exc, text=f"{where}{exc.strerror or exc}", flags=DefaultGroup.flags), 1)
    except Exception as exc:  # a case no check foresaw (a bug): one line that says so, the traceback at -vv
        if debug:
            raise
        _fail(unforeseen(exc), 1)
    # finished: a signal now must not break the exit (atexit's tracebacks, 143 after a complete output);
    # only as the program (no argv given): a caller in the same process keeps its signals, and its
    # children with them (an ignored signal is inherited)
    for name in ("SIGINT", "SIGTERM", "SIGHUP") if argv is None else ():
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    if isinstance(code, int) and code:
        sys.exit(code)


def _with_progress(line: str, stop: BaseException) -> str:
    """``line`` with how far a batch had come when it was stopped (set by the batch), if it was one."""
    said = getattr(stop, "batch_progress", None)
    return f"{line}{'' if said.startswith(';') else ' '}{said}" if said else line


#: how to read a picture from standard input, for a command line that names none
STDIN_HINT = "name a file, or give - to read the picture from standard input (cat in.png | sr-filter - > out.png)"


def _piped_in() -> bool:
    """Whether standard input is a pipe or file rather than a terminal (or closed)."""
    try:
        return sys.stdin is not None and not sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def _dash_name_hint(args: list[str]) -> str:
    """For a usage error where an argument that begins with '-' names an existing file: how to name
    it. ``sr-filter -dash.png`` had said only "Missing argument 'INPUTS...'" (click read it as
    ``-d ash.png``) or "No such option '-x'"."""
    if "--" in args:
        return ""
    valued = DefaultGroup.valued
    for before, arg in zip([""] + args, args):  # after an option that takes a value it is that value (-o -out.png)
        # not after --tta or -q; after a bundle of short options (-qo) its last one takes the value
        bundle = before[:1] == "-" and before[1:2] != "-" and len(before) > 2 and before[1:].isalpha()
        takes = (f"-{before[-1]}" if bundle else before) in valued if valued is not None else before.startswith("-")
        if len(arg) > 1 and arg.startswith("-") and not takes and os.path.lexists(arg):
            return f"to name the file {arg}, write ./{arg} (or put it after --, behind the options)"
    return ""


def _fail(message: str, code: int) -> None:
    if code == 130:
        interrupted_exit(f"sr-filter: {message}")
    click.echo(f"sr-filter: error: {message}", err=True)
    sys.exit(code)


def interrupted_exit(line: str, code: int = 130) -> None:
    """After a Ctrl-C or SIGTERM (every cleanup has run by now): one line, then exit ``code`` at
    once. The interpreter's own shutdown is skipped: compiled libraries (torch, OpenVINO) still
    holding a copy of that Ctrl-C could otherwise turn it into a killed-by-SIGINT status or a
    traceback, and Ray's exit handler would wait 60 s for a cluster the signal also ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):  # main's own cleanup is skipped by the exit below
        from ..atomic import remove_unused_folders

        remove_unused_folders()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    os._exit(code)


def _install_signal_handlers() -> dict[int, object]:
    """SIGTERM and SIGHUP raise :class:`Terminated`, Ctrl-C KeyboardInterrupt; returns the handlers
    they replace."""
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
                if number is not None}

    def terminated(signum: int, frame: FrameType | None) -> None:
        if in_import(frame):  # raised there it can leave an import lock held: the process hung
            deliver_later(signum)
            return
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
        raise Terminated(signum)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        if in_import(frame):
            deliver_later(signum)
            return
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # an ignored Ctrl-C stays ignored
        signal.signal(signal.SIGINT, interrupted)
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:  # nohup keeps SIGHUP ignored
            signal.signal(number, terminated)
    return previous


def _guard_closed_stdio() -> None:
    """A closed standard stream (``>&-``, ``<&-``) must not crash, nor let an output file take its
    descriptor: the number is held by /dev/null; Python's ``sys.stdin``/``sys.stdout`` stay None and
    the commands refuse to use them with one line."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if not isinstance(sys.stderr, _MessagesOnly):
        sys.stderr = _MessagesOnly(sys.stderr)
    if sys.stdout is not None and not isinstance(sys.stdout, _Listing):
        sys.stdout = _Listing(sys.stdout)

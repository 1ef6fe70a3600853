"""Three stages that overlap: decode (a thread), inference (the caller's thread), encode (a thread).

Bounded queues between them hold a few frames, so memory does not grow with the clip's length.
An error in any stage stops the others and is raised in the caller's thread; Ctrl-C and SIGTERM
do the same, and the caller deletes the temporary output.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_DONE = object()
QUEUE_DEPTH = 4


class Stopped(Exception):
    """Raised inside a stage when another stage has failed."""


class _Failed:
    """Where the input ended in an error: it travels behind the items read before it, so those
    are still finished and written (a truncated frame stream on a pipe keeps its whole frames)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _until_failed(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, _Failed):
            raise item.error
        yield item


class _Channel:
    """A bounded queue whose put/get give up when the pipeline is stopping."""

    def __init__(self, stop: threading.Event, depth: int = QUEUE_DEPTH) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = stop

    def put(self, item: Any) -> None:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise Stopped

    def __iter__(self) -> Iterator[Any]:
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            yield item


def run(produce: Iterable[Any], work: Callable[[Any], Any], consume: Callable[[Iterable[Any]], None],
        depth: int = QUEUE_DEPTH) -> None:
    """Feed ``produce`` (run in a thread) through ``work`` (here) into ``consume`` (a thread that
    takes an iterable of results); ``depth`` items wait at most between two stages. The first
    exception from any stage is re-raised here."""
    stop = threading.Event()
    inbox, outbox = _Channel(stop, depth), _Channel(stop, depth)
    errors: list[BaseException] = []

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def target() -> None:
            try:
                body()
            except Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                errors.append(exc)
                stop.set()
        return target

    def reader() -> None:
        try:
            for item in produce:
                inbox.put(item)
        except Stopped:
            raise
        except Exception as exc:  # noqa: BLE001 - raised by the encoding stage, after what came before it
            inbox.put(_Failed(exc))
            return
        inbox.put(_DONE)

    threads = [threading.Thread(target=guarded(reader), name="sr-filter-decode", daemon=True),
               threading.Thread(target=guarded(lambda: consume(_until_failed(outbox))), name="sr-filter-encode", daemon=True)]
    for thread in threads:
        thread.start()
    try:
        with _sigterm_as_interrupt():
            for item in inbox:
                outbox.put(item if isinstance(item, _Failed) else work(item))
            outbox.put(_DONE)
            while threads[1].is_alive():
                threads[1].join(0.1)
    except Stopped:
        pass
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join(5)
        raise
    stop.set()
    for thread in threads:
        thread.join(5)
    if errors:
        raise errors[0]


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM behaves like Ctrl-C while a video is written, so the temporary file is removed; a
    handler the program has installed (the CLI's, which exits 143 "stopped by SIGTERM") is kept."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
            signal.SIG_DFL, None):
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

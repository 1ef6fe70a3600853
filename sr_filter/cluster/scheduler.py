"""The driver's loop: a pool of model-holding actors fed one file at a time, with retries.

Why actors and a driver-side queue rather than Ray Data's ``map_batches``: every file's outcome
comes back to the driver on its own (progress, ETA and a failing file's one-line error as they
happen; one bad file fails alone, not its block), and when a worker or its node is lost the
driver knows exactly which files it held and hands only those to another worker. Exactly-once
is then observable on disk: a retried file is published with a no-clobber rename, so a second
attempt of a file whose first attempt finished finds it and stops.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ClusterError
from ..interrupts import Terminated
from . import stop, storage
from .connect import head_alive
from .worker import Outcome, Settings, UpscaleWorker

log = logging.getLogger(__name__)

#: files a worker holds at once: one running, one waiting, so no worker idles on a round trip
WINDOW = 2
#: a file whose worker is lost this many times is reported as failed (it may be what kills them)
MAX_ATTEMPTS = 3


@dataclass
class Event:
    """One file finished (``done``, ``skipped``, ``failed``) or was handed on (``retry``);
    ``notices``: the warnings of making it (a flattened alpha channel, metadata its format cannot
    hold), those about its content starting with its name, as one machine's batch says them."""

    kind: str
    task: storage.Task
    message: str = ""
    seconds: float = 0.0
    worker: int = 0
    notices: tuple[str, ...] = ()


@dataclass
class Summary:
    """What a cluster job did."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, one-line error)
    retried: int = 0
    workers_lost: int = 0
    workers: int = 0
    seconds: float = 0.0
    model: str = ""
    notices: list[str] = field(default_factory=list)  # warnings of the workers' model loading, each once
    frames: int = 0  # videos: frames in the joined output
    dropped: list[str] = field(default_factory=list)  # videos: streams the output container cannot hold
    converted: list[str] = field(default_factory=list)  # videos: text subtitles converted for the output container
    path: str = ""  # videos: the output written


class Interrupted(Exception):
    """The driver was interrupted; ``summary`` says what was finished before; ``busy`` lists the
    outputs of workers that were still running when the driver gave up waiting for them: their
    temporary files were left alone."""

    def __init__(self, summary: Summary, busy: list[str] | None = None) -> None:
        super().__init__("interrupted")
        self.summary = summary
        self.busy = busy or []


def check_job(*, workers: object, cpus_per_worker: object, num_cpus: object, tta: object = False, address: object = "auto",
              scale: object = None, quality: object = None, size: object = (None, None), segment_frames: object = None,
              **callbacks: object) -> None:
    """A public function's job arguments, said in one line before a cluster starts: ``workers=0``
    had meant "as many as fit" and ``cpus_per_worker=0`` one core; a callback that is not a
    function, ``scale="x"``, ``scale=100`` or ``size=(50,)`` had failed on every worker, file by
    file. ``scale``, ``quality`` and the sizes in ``size`` take the one-machine rules (and words)."""
    import numbers

    from ..sizing import check_scale_request, check_size_request
    from ..upscaler import check_callback, check_flag, check_quality

    if address is not None and not isinstance(address, str):
        raise ClusterError(f"address must be 'auto', 'local' or HOST:PORT, not {address!r}")
    check_scale_request(scale)
    check_quality(quality)
    if not (isinstance(size, (tuple, list)) and len(size) == 2):
        raise ClusterError(f"size must be (width, height), each a whole number of pixels or None, not {size!r}")
    check_size_request(scale, *size)  # (scale with a size had been dropped without a word)

    def whole(value: object, low: int) -> bool:
        return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= low

    for name, value, optional in (("workers", workers, True), ("cpus_per_worker", cpus_per_worker, False),
                                  ("num_cpus", num_cpus, True), ("segment_frames", segment_frames, True)):
        if not (value is None and optional) and not whole(value, 1):
            none = " (or None)" if optional else ""
            raise ClusterError(f"{name} must be a whole number of at least 1{none}, not {value!r}")
    check_flag("tta", tta)
    for name, value in callbacks.items():
        check_callback(name, value)


def plan_workers(ray, settings: Settings, workers: int | None, cpus_per_worker: int) -> tuple[int, dict]:
    """How many actors, and the resources each asks for: one per GPU, else one per
    ``cpus_per_worker`` CPU cores of the whole cluster."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus and settings.device != "cpu":
        return (min(workers, gpus) if workers else gpus), {"num_gpus": 1, "num_cpus": 1}
    cpus = int(resources.get("CPU", 1))
    fits = max(1, cpus // max(1, cpus_per_worker))  # more would wait for cores forever
    return (min(workers, fits) if workers else fits), {"num_cpus": min(cpus_per_worker, cpus)}


def run(tasks: list[storage.Task], settings: Settings, *, workers: int | None = None, cpus_per_worker: int = 1,
        on_event: Callable[[Event], None] | None = None, worker_class: type = UpscaleWorker,
        on_ready: Callable[[str, list[str]], None] | None = None) -> Summary:
    """Upscale ``tasks`` on the connected cluster; raises :class:`Interrupted` on Ctrl-C.
    ``worker_class`` is the actor body (:class:`UpscaleWorker` for images; video segments use
    :class:`sr_filter.cluster.video.SegmentWorker`)."""
    import ray

    summary = Summary()
    started = time.monotonic()
    count, resources = plan_workers(ray, settings, workers, cpus_per_worker)
    threads = resources["num_cpus"] if "num_gpus" not in resources else 1
    actor_class = ray.remote(max_restarts=0, max_task_retries=0)(worker_class).options(**resources)
    worker_settings = dataclasses.replace(settings, threads=threads)  # keeps a subclass's fields
    pending = deque((task, 1) for task in tasks)
    actors: dict = {}
    ready_calls: dict = {}  # actor key -> its ready() call: where its process runs, for stop.stop
    in_flight: dict = {}  # ObjectRef -> (task, attempt, actor key)
    lost_limit = count + MAX_ATTEMPTS
    emit = on_event or (lambda event: None)

    def spawn(key: int) -> None:
        actors[key] = actor_class.remote(worker_settings)
        ready_calls[key] = actors[key].ready.remote()

    head = _Head()
    try:
        for key in range(min(count, len(tasks))):
            spawn(key)
        summary.workers = len(actors)
        next_key = len(actors)
        for key in _check_ready(ray, {key: ready_calls[key] for key in actors}, summary, head):
            del actors[key]  # lost while loading: replaced as a worker lost later is (it had ended the job)
            summary.workers_lost += 1
            spawn(next_key)
            _check_replacement(ray, ready_calls[next_key], summary, head)
            next_key += 1
        if on_ready is not None:
            on_ready(summary.model, list(summary.notices))
        else:  # no one asked: the log, as one machine logs them (they had been lost)
            for line in summary.notices:
                log.warning("%s", line)
        while pending or in_flight:
            for key, actor in list(actors.items()):
                held = sum(1 for _, _, k in in_flight.values() if k == key)
                while pending and held < WINDOW:
                    task, attempt = pending.popleft()
                    in_flight[actor.run.remote(task)] = (task, attempt, key)
                    held += 1
            if not in_flight:
                raise ClusterError("no workers are left on the cluster; the remaining files were not upscaled")
            ready, _ = signal_safe(ray.wait, list(in_flight), num_returns=1, timeout=1.0)
            if not ready:
                head.check()
            for ref in ready:
                task, attempt, key = in_flight.pop(ref)
                try:
                    outcome: Outcome = signal_safe(ray.get, ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError) as exc:
                    # queued again before the replacement starts: a head lost during that start had
                    # found the file in neither queue (its finished output went uncounted)
                    if attempt >= MAX_ATTEMPTS:
                        _record(summary, Event("failed", task, f"{task.source}: its worker was lost {attempt} times while upscaling it"), emit)
                    else:
                        summary.retried += 1
                        pending.appendleft((task, attempt + 1))
                        emit(Event("retry", task, type(exc).__name__, worker=key))
                    if key in actors:  # the first of its files to come back: replace the worker
                        del actors[key]
                        summary.workers_lost += 1
                        if summary.workers_lost <= lost_limit:
                            spawn(next_key)
                            _check_replacement(ray, ready_calls[next_key], summary, head)
                            next_key += 1
                    continue
                kind = {"done": "done", "exists": "skipped", "failed": "failed"}[outcome.status]
                message = outcome.message if outcome.message.startswith(task.source) or not outcome.message else f"{task.source}: {outcome.message}"
                _record(summary, Event(kind, task, message, outcome.seconds, outcome.worker, outcome.notices), emit)
    except _HeadLost:  # `ray stop`, a lost head node: Ray had waited 60 s, then ended the program (exit 1, no summary)
        actors.clear()  # their processes went with the head; a kill would wait for it
        tried = [task for task, attempt in pending if attempt > 1]  # its worker was lost, maybe after writing it
        held = sorted({task.target for task, _, _ in in_flight.values()} | {task.target for task in tried})
        storage.sweep_orphans(held)
        summary.done += sum(1 for target in held if storage.exists(target))  # finished, not yet heard of
        raise ClusterError(f"the Ray cluster's head stopped answering (`ray stop`, or its node was lost) after {summary.done} "
                           f"of {len(tasks)} task(s) were finished; nothing was left half-written: run again to resume") from None
    except (KeyboardInterrupt, Terminated) as signalled:
        if head_alive():
            survivors = stop.stop(ray, actors, ready_calls, list(in_flight))
            held = {task.target for task, _, key in in_flight.values() if key not in survivors}
            busy = sorted({task.target for task, _, key in in_flight.values() if key in survivors} - held)
            stopped = stop.worker_pids(ray, ready_calls, [key for key in ready_calls if key not in survivors])
            storage.sweep_temporaries(sorted(held), stopped)
        else:  # the signal ended the local cluster too: its workers are gone, and Ray calls would hang
            actors.clear()
            held, busy = {task.target for task, _, _ in in_flight.values()}, []
            storage.sweep_orphans(sorted(held))
        summary.done += sum(1 for target in held if storage.exists(target))  # finished, not yet heard of
        summary.seconds = time.monotonic() - started
        if isinstance(signalled, Terminated):  # SIGTERM/SIGHUP: the CLI says "stopped by ..." and exits 128+N
            raise
        raise Interrupted(summary, busy) from None
    finally:
        for actor in actors.values():
            ray.kill(actor, no_restart=True)
    if summary.workers_lost:  # every worker is killed by now: what the lost ones left can go
        storage.sweep_temporaries([t.target for t in tasks], stop.worker_pids(ray, ready_calls, list(ready_calls)))
    summary.seconds = time.monotonic() - started
    return summary


class _HeadLost(Exception):
    """The connected cluster's head has not answered for :attr:`_Head.GRACE_S` seconds."""


class _Head:
    """Whether the cluster's head still answers (:func:`head_alive`): once it has not for
    ``GRACE_S`` seconds, :meth:`check` raises :class:`_HeadLost`. Ray's calls wait for a lost
    head (a worker's start for ever; the rest 60 s, then Ray ends the program)."""

    GRACE_S = 10.0

    def __init__(self) -> None:
        import ray

        self.silent_since: float | None = None
        try:  # where it is not known (a Ray Client connection), the head is never taken for lost
            self.known = bool(ray.get_runtime_context().gcs_address)
        except Exception:  # noqa: BLE001 - whatever the connection kind lacks
            self.known = False

    def check(self) -> None:
        if not self.known or head_alive():
            self.silent_since = None
            return
        now = time.monotonic()
        self.silent_since = self.silent_since if self.silent_since is not None else now
        if now - self.silent_since >= self.GRACE_S:
            raise _HeadLost

    def get(self, ray, ref):
        """``ray.get(ref)``, checking the head each second while it waits."""
        while not signal_safe(ray.wait, [ref], timeout=1.0)[0]:
            self.check()
        return signal_safe(ray.get, ref)


def signal_safe(call: Callable, *args, **kwargs):
    """``call(...)`` (a Ray call), with Ctrl-C or SIGTERM raised by our handler while Ray's compiled
    code waited coming out as itself: Ray wraps it in a SystemError ("returned a result with an
    exception set"), which had ended the driver with a traceback and exit 1."""
    try:
        return call(*args, **kwargs)
    except SystemError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, (KeyboardInterrupt, Terminated)):
            raise cause from None
        raise


def _check_ready(ray, calls: dict, summary: Summary, head: _Head) -> list:
    """Wait for the workers to load the model; a model that cannot load is one line. Returns the
    keys of the workers lost while loading (a killed process, a lost node); only when every one
    is lost does the job stop."""
    answers, lost, reason = [], [], ""
    for key, call in calls.items():
        try:
            answers.append(head.get(ray, call))
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            lost.append(key)
            reason = type(exc).__name__
    if not answers:
        raise ClusterError(f"a worker stopped while loading the model ({reason}); see `ray status` and the node's memory")
    for error, *_ in answers:
        if error:
            raise ClusterError(error)
    models: dict[str, int] = {}
    for _, described, _, _, notices, _ in answers:
        models[model_of(described)] = models.get(model_of(described), 0) + 1
        summary.model = summary.model or described
        summary.notices += [line for line in notices if line not in summary.notices]
    if len(models) > 1:  # a node without the weights fell back to a built-in model: outputs of two models in one job
        counts = "; ".join(f"{model} on {n} worker(s)" for model, n in models.items())
        raise ClusterError(f"the workers loaded different models ({counts}); {_SAME_WEIGHTS}")
    return lost


#: what ends a job whose workers loaded different models
_SAME_WEIGHTS = ("give every node the same weights (a node that cannot download them uses a built-in model), "
                 "or choose a built-in model")


def _check_replacement(ray, call, summary: Summary, head: _Head) -> None:
    """A worker started in place of a lost one loads the model the others did, or the job stops:
    on another node it may fall back to a built-in model (it had been given files unchecked). One
    that cannot load at all fails its files with its own message, as before."""
    try:
        error, described, *_ = head.get(ray, call)
    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
        return  # lost too: its files go on to the next replacement
    if not error and model_of(described) != model_of(summary.model):
        raise ClusterError(f"a worker started in place of a lost one loaded {model_of(described)}, not "
                           f"{model_of(summary.model)} as the others did; {_SAME_WEIGHTS}")


def model_of(described: str) -> str:
    """The model part of a worker's description ("name (x4, arch)"): devices, precisions and
    backends may differ between nodes, the network may not."""
    return described.split(" on ", 1)[0]


def _record(summary: Summary, event: Event, emit) -> None:
    if event.kind == "done":
        summary.done += 1
    elif event.kind == "skipped":
        summary.skipped += 1
    else:
        summary.failed.append((event.task.source, event.message))
    emit(event)


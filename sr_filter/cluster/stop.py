"""Stopping the workers for certain: kill the actors, then wait until their processes are gone.

Ray reports a killed actor dead (its pending calls fail) as soon as the kill is recorded, while
its process may still run for a moment, or for seconds on a loaded machine, and write into the
output folder. So the driver waits on the processes themselves before it removes temporary
files: each worker tells its node and process id when it starts (``UpscaleWorker.ready``), and a
process on the driver's node is waited on by id. A process on another node cannot be watched
from here; there Ray's word that the actor is dead is taken.
"""

from __future__ import annotations

import logging
import time

import psutil

log = logging.getLogger(__name__)

#: how long to wait for killed workers' processes to end: generous, a loaded machine is slow to
#: deliver a kill, and a sweep done too early loses the race with a still-writing worker
STOP_WAIT_S = 60.0


def stop(ray, actors: dict, ready: dict, calls: list, wait_s: float | None = None) -> set:
    """Kill ``actors`` (key -> actor handle) and wait until their processes are gone.

    ``ready`` maps the same keys to each actor's ``ready()`` call; ``calls`` are the calls still
    running (they fail once Ray records the kill: all there is to wait on for another node).
    Returns the keys of workers that may still be running after ``wait_s`` seconds
    (:data:`STOP_WAIT_S` unless given; said at INFO), whose files are not safe to sweep."""
    wait_s = STOP_WAIT_S if wait_s is None else wait_s
    deadline = time.monotonic() + wait_s
    here = ray.get_runtime_context().get_node_id()
    processes = {key: _process(ray, ready[key], here, timeout=0) for key in actors if key in ready}
    for actor in actors.values():
        ray.kill(actor, no_restart=True)
    unanswered = [ready[key] for key in actors if key in ready and processes.get(key) is None]
    _wait_refs(ray, unanswered + list(calls), deadline)  # a kill makes them fail; a late answer names a process
    for key in actors:
        if key in ready and processes.get(key) is None:
            processes[key] = _process(ray, ready[key], here, timeout=0)
    watched = {key: p for key, p in processes.items() if isinstance(p, psutil.Process)}
    alive = list(watched.values())
    while True:
        try:
            _, alive = psutil.wait_procs(alive, timeout=max(0.0, deadline - time.monotonic()))
            break
        except KeyboardInterrupt:
            continue
    alive_pids = {p.pid for p in alive}
    survivors = {key for key, p in watched.items() if p.pid in alive_pids}
    silent = {key for key in actors if key in ready and processes.get(key) is None}  # neither answered nor failed
    if survivors or silent:
        ids = [str(watched[key].pid) for key in sorted(survivors)] + ["unknown"] * len(silent)
        log.info("%d stopped worker(s) still running after %.0f s (process ids %s); their unfinished files are left in place",
                 len(ids), wait_s, ", ".join(ids))
    return survivors | silent


def _process(ray, ref, here: str, timeout: float):
    """The worker's process if it runs on this node and is alive; ``False`` when it is known to
    be gone or elsewhere (nothing to wait for here); ``None`` when it has not answered yet."""
    answer = _answer(ray, ref, timeout)
    if not answer:
        return answer
    pid, node, _ = answer
    if node != here:
        return False
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return False


def _wait_refs(ray, refs: list, deadline: float) -> None:
    """Wait until ``refs`` resolve (value or error) or ``deadline``; a second Ctrl-C does not cut it short."""
    while refs and time.monotonic() < deadline:
        try:
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=max(0.1, deadline - time.monotonic()))
        except KeyboardInterrupt:
            continue


def worker_pids(ray, ready: dict, keys) -> set[tuple[int, str]]:
    """(process id, temporary-file tag of its machine) the workers ``keys`` reported when they
    started (those that answered)."""
    answers = (_answer(ray, ready[key], 0) for key in keys if key in ready)
    return {(pid, tag) for pid, _, tag in filter(None, answers)}


def _answer(ray, ref, timeout: float):
    """``(pid, node, temporary-file tag)`` from a worker's ``ready()`` call; ``None`` when it has
    not answered yet, ``False`` when the actor died before it answered (it ran no task)."""
    try:
        answered, _ = ray.wait([ref], timeout=timeout)
        if not answered:
            return None
        _, _, pid, node, _, tag = ray.get(answered[0])
    except Exception:  # noqa: BLE001 - whatever Ray raises for a dead actor
        return False
    return int(pid), node, str(tag)

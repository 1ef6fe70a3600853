"""Joining or starting a Ray cluster, with one-line errors instead of Ray's long waits.

``auto`` joins the cluster named by ``RAY_ADDRESS`` when it is set, else starts a local one, so
the same call runs on a laptop and on a cluster. A named address is probed first, for a TCP
connection and a gRPC (HTTP/2) answer: Ray itself retries an unreachable address, or a port where
another service listens, for minutes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path

from ..download import ENV_CONNECT, ENV_DEADLINE, ENV_MIRROR, ENV_RETRIES, ENV_STALL
from ..errors import ClusterError
from ..weights import ENV_OFFLINE

#: the extra comes from sr-filter's own folder or wheel: "sr-filter" on PyPI is another program
INSTALL_HINT = "pip install '.[cluster]' in the sr-filter folder (or 'WHEEL[cluster]' with its .whl file)"
log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 5.0


def import_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
        import pyarrow.fs  # noqa: F401 - Ray Data's storage layer, used for listing and I/O
    except ImportError as exc:
        raise ClusterError(f"running on a cluster needs Ray, which is not installed ({exc.name or exc}); install it with {INSTALL_HINT}") from None
    return ray


def resolve(address: str | None) -> str | None:
    """The address to join, or ``None`` to start a local cluster."""
    if address in (None, "", "auto", "local"):
        return None if address == "local" else (os.environ.get("RAY_ADDRESS") or None)
    return address.rstrip("/")  # "HOST:6379/" had passed the probe, then Ray said "Unable to parse port number from 6379/"


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`ClusterError` unless something listens at ``address`` (``[ray://]host:port``)."""
    if address == "auto":  # Ray's own "the cluster on this machine": Ray finds it or says so
        return
    scheme, _, _ = address.rpartition("://")
    if scheme and scheme.lower() != "ray":  # Ray's own line about it had been cut off after "To fix this, either:"
        raise ClusterError(f"cluster address {address!r} starts with {scheme}:// (a dashboard's address?); join with "
                           "HOST:PORT (the head's port, 6379 unless --port was given) or ray://HOST:10001")
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"cluster address {address!r} is not HOST:PORT (for example 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or type(exc).__name__)
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({reason}); check the address and that the head node runs `ray start --head`") from None
    with connection:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("0", "", "false") and not _speaks_grpc(connection, timeout):
            default = "10001 for ray://" if address.startswith("ray://") else "6379 unless --port was given"
            raise ClusterError(f"{address} answers, but not as a Ray cluster; check the port (`ray start --head` prints it: {default})")
    if not address.startswith("ray://"):
        _check_token(hostport)


def _check_token(address: str) -> None:
    """Raise :class:`ClusterError` when the head at ``address`` wants a token this process does not
    send. ``ray start --head`` turns token authentication on by itself where ``~/.ray/auth_token``
    exists (any local Ray run writes one), while a driver given an address sends no token unless
    ``RAY_AUTH_MODE=token``: Ray had retried for 20 s, a warning a second, then said "Failed to
    connect to Ray cluster", with no word of the token."""
    try:
        import ray
        from ray._raylet import GcsClient
    except ImportError:
        return
    refused = getattr(ray.exceptions, "AuthenticationError", None)
    if refused is None:  # a Ray without token authentication
        return
    try:
        GcsClient(address=address)
    except refused:
        sent = ("rejected this command's token" if os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
                else "got none (RAY_AUTH_MODE is not 'token')")
        raise ClusterError(f"the Ray cluster at {address} wants token authentication and {sent}; set RAY_AUTH_MODE=token "
                           "with the cluster's token in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN "
                           "(Ray's token authentication documentation)") from None
    except Exception:  # noqa: BLE001 - anything else is ray.init's to say
        return


#: what an HTTP/2 client sends first: the connection preface and an empty SETTINGS frame
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_grpc(connection: socket.socket, timeout: float) -> bool:
    """Whether the server answers an HTTP/2 preface with a SETTINGS frame, as the gRPC servers of
    a Ray head (GCS, Ray Client) do. Any other service (SSH, a web server, a database) answers
    otherwise or not at all, and Ray would retry it for minutes with a warning every few seconds."""
    try:
        connection.settimeout(timeout)
        connection.sendall(_PREFACE)
        header = b""
        while len(header) < 9:
            chunk = connection.recv(9 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:
        return False
    return header[3] == 4  # the frame type: SETTINGS


def check_address(address: str | None) -> None:
    """Fail fast (before any listing or folder creation) when a named cluster is unreachable."""
    import_ray()
    target = resolve(address)
    if target is not None:
        probe(target)


def connect(address: str | None, *, num_cpus: int | None = None) -> bool:
    """Join or start a cluster unless this process is already connected; True when we started
    the connection (and so should end it)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    target = resolve(address)
    if target is not None:
        probe(target)
    runtime_env = None
    if target is None:  # a local cluster: its workers import this very copy of sr_filter
        here = str(Path(__file__).resolve().parents[2])
        paths = [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}
    elif settings := job_settings():  # a joined cluster's workers started with their node's environment, not the driver's
        runtime_env = {"env_vars": settings}
    quiet = logging.getLogger("ray")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # Ray's start-up notes are not our user's business
    handlers = _own_handlers()
    _log_cluster_messages()
    try:
        ray.init(
            address=target or "local",
            num_cpus=num_cpus if target is None else None,
            runtime_env=runtime_env,
            include_dashboard=False if target is None else None,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        _restore_cluster_messages()
        text = str(exc).strip().splitlines()
        raise ClusterError(f"cannot join the Ray cluster at {target or 'this machine'}: {text[0] if text else type(exc).__name__}") from None
    finally:
        quiet.setLevel(level)
        for signum, handler in handlers.items():  # Ray's would end the driver without its clean-up
            signal.signal(signum, handler)
    return True


#: the download settings a job's workers take from the driver: the mirror, offline mode and the
#: download limits (the cache folder stays each node's own: a path on one machine)
JOB_SETTINGS = (ENV_MIRROR, ENV_OFFLINE, ENV_RETRIES, ENV_CONNECT, ENV_STALL, ENV_DEADLINE)


def job_settings() -> dict[str, str]:
    """The driver's download settings (:data:`JOB_SETTINGS`) that are set, for a joined cluster's
    workers: with `SR_FILTER_WEIGHTS_URL` given to the command, the workers of a cluster started
    elsewhere had gone to the official address and failed, told to set that very variable."""
    return {name: os.environ[name] for name in JOB_SETTINGS if os.environ.get(name)}


def _log_cluster_messages() -> None:
    """Send the cluster's messages to the driver (a paragraph per lost worker, "A worker died or
    was killed ...") to the log, shown with ``-v``, instead of Ray's printing them on standard
    output: the progress lines already say what happened ("a worker was lost; X goes to
    another"). Only for connections this module makes: a program that joined Ray itself keeps
    Ray's printing."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    printer = getattr(ray_worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "sr_filter", None) is not None:
        return

    def to_log(data, *args, **kwargs):
        if data.get("pid") == "raylet":
            for line in data.get("lines", ()):
                log.info("%s", line)
            return None
        return printer(data, *args, **kwargs)

    to_log.sr_filter = printer
    ray_worker.print_to_stdstream = to_log


def _restore_cluster_messages() -> None:
    """Ray's own printing again, once the connection this module made is closed."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(getattr(ray_worker, "print_to_stdstream", None), "sr_filter", None)
    if original is not None:
        ray_worker.print_to_stdstream = original


def _own_handlers() -> dict:
    """The program's own Python handlers for SIGTERM and SIGHUP (the CLI's), to put back after
    ``ray.init`` replaces them; none outside the main thread or where none was installed."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    return {s: h for s in wanted if callable(h := signal.getsignal(s))}


def head_alive() -> bool:
    """Whether the connected cluster's head still answers. A signal sent to the whole process group
    (timeout, systemd, a closed terminal) also ends a local cluster's own processes, and every Ray
    call then waits 60 s for them before Ray ends the program with exit 1."""
    import ray

    try:
        host, _, port = ray.get_runtime_context().gcs_address.rpartition(":")
        socket.create_connection((host, int(port)), timeout=1.0).close()
        return True
    except (OSError, ValueError, AttributeError):
        return False


def disconnect(started: bool) -> None:
    if started:
        import ray

        if head_alive():  # else ray.shutdown() would wait for it
            ray.shutdown()
        _restore_cluster_messages()

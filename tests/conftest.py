"""Shared fixtures: the project's shared data, a local weights server, an isolated cache."""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared")).resolve()
UPSTREAM = SHARED / "weights" / "upstream"
BENCHMARKS = SHARED / "data" / "benchmarks"


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set SR_FILTER_SHARED)")
    return path


#: the built-in models whose OpenVINO conversions (fp32) a test's cache starts with
BUILT_IN_MODELS = ("realesr-animevideov3", "sr-cartoon-x4", "sr-photo-x4", "sr-face-x4")


@pytest.fixture(scope="session")
def converted_built_ins(tmp_path_factory):
    """The built-in models converted to OpenVINO once per test session, as a user's second run
    finds them, so that the hundreds of tests about something else do not each pay the
    conversion (about 3 s a process). Tests about conversion and its cache mark themselves
    ``cold_conversion_cache`` and start from an empty cache, as a first run does. Test caches
    hard-link these files: the product only ever replaces cache files by renaming (never
    writes into one), which the check at the end of the session holds it to."""
    import hashlib

    from sr_filter.backends.openvino import OpenVinoBackend
    from sr_filter.models import load_model

    folder = tmp_path_factory.mktemp("converted") / "openvino"
    for name in BUILT_IN_MODELS:
        OpenVinoBackend.from_model(load_model(name, offline=True), precision="fp32", cache_dir=folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    yield files
    changed = [p.name for p, d in digests.items() if hashlib.sha256(p.read_bytes()).hexdigest() != d]
    assert not changed, f"a test wrote into shared converted-model files: {changed}"


def _link_conversions(files: list[Path], folder: Path) -> None:
    folder.mkdir()
    for path in files:
        try:
            os.link(path, folder / path.name)
        except OSError:  # a file system without hard links
            shutil.copyfile(path, folder / path.name)


def _user_cache_files() -> set[str]:
    import platformdirs

    folder = Path(platformdirs.user_cache_dir("sr-filter", appauthor=False))
    return {str(p) for p in folder.rglob("*")} if folder.is_dir() else set()


@pytest.fixture(scope="session", autouse=True)
def user_cache_untouched(tmp_path_factory, request):
    """No test, no module's shared set-up and no command a test starts may write into the user's
    own cache. Module fixtures are made before each test's own cache is set, so the whole session
    gets a cache of its own first; a child started with a bare environment falls back to the
    user's cache unless it is given the test's."""
    before = _user_cache_files()
    cache = tmp_path_factory.mktemp("session-cache")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SR_FILTER_CACHE_DIR", str(cache))
        env.setenv("SR_FILTER_WEIGHTS_URL", "http://127.0.0.1:9/no-downloads-in-tests/")
        _link_conversions(request.getfixturevalue("converted_built_ins"), cache / "openvino")
        yield
    added = sorted(_user_cache_files() - before)
    assert not added, f"tests wrote into the user's cache: {added[:5]}"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch, request):
    """Every test gets its own weights cache, holding nothing but the built-in models' OpenVINO
    conversions (none with the ``cold_conversion_cache`` mark), and downloads go to a closed
    local port unless a test starts the local weights server: no test can reach the internet or
    the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    if request.node.get_closest_marker("cold_conversion_cache") is None:
        _link_conversions(request.getfixturevalue("converted_built_ins"), cache / "openvino")
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(cache))
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", "http://127.0.0.1:9/no-downloads-in-tests/")
    monkeypatch.delenv("SR_FILTER_OFFLINE", raising=False)
    for name in ("SR_FILTER_CONNECT_TIMEOUT", "SR_FILTER_STALL_TIMEOUT", "SR_FILTER_DOWNLOAD_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SR_FILTER_DOWNLOAD_RETRIES", "2")
    return cache


class WeightsServer:
    """A real HTTP server on 127.0.0.1 serving a folder, with per-file misbehaviour switches."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits: Counter[str] = Counter()
        self.behaviour: dict[str, str] = {}  # file name -> "truncate" | "500" | "silent" | "trickle" | "html" | "stall-once" | ...
        self.trickle_interval = 0.2  # seconds between the bytes of a "trickle" answer
        self.encoding = "gzip"  # the Content-Encoding a "gzip" answer says it has
        self.stopping = threading.Event()
        self.gate = threading.Event()  # a "500-held" answer waits for it: a test decides when the failure comes
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                name = self.path.rsplit("/", 1)[-1]
                server.hits[name] += 1
                path = server.folder / name
                mode = server.behaviour.get(name)
                if mode == "500-held":
                    server.gate.wait(120)
                    self.send_error(500)
                    return
                if mode == "500":
                    self.send_error(500)
                    return
                if mode == "silent":  # accepts the request and never answers
                    server.stopping.wait()
                    return
                if not path.is_file():
                    self.send_error(404)
                    return
                if mode == "html":  # a login or proxy page that answers 200
                    page = b"<html><body>Please log in</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                data = path.read_bytes()
                if mode in ("gzip", "bad-gzip"):  # a proxy that compresses despite "Accept-Encoding: identity"
                    import gzip

                    packed = gzip.compress(data) if mode == "gzip" else b"not gzip at all" * 100
                    if server.encoding == "gzip, gzip":  # packed twice
                        packed = gzip.compress(packed)
                    self.send_response(200)
                    self.send_header("Content-Encoding", server.encoding)
                    self.send_header("Content-Length", str(len(packed)))
                    self.end_headers()
                    self.wfile.write(packed)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if mode == "stall-once":  # half the file, then silence; whole on the next request
                    server.behaviour[name] = None
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    server.stopping.wait(10)
                    return
                if mode == "late-stall":  # some bytes, more 2 s later, then silence
                    for part in (data[:1000], data[1000:2000]):
                        try:
                            self.wfile.write(part)
                            self.wfile.flush()
                        except OSError:  # the client gave up
                            return
                        if server.stopping.wait(2.0):
                            return
                    server.stopping.wait(10)
                    return
                if mode == "truncate":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if mode == "trickle":  # one byte at a time, never silent for long
                    for i in range(len(data)):
                        if server.stopping.wait(server.trickle_interval):
                            return
                        try:
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                        except OSError:  # the client gave up
                            return
                    return
                self.wfile.write(data)

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/weights/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def weights_server(tmp_path, monkeypatch):
    """Serves copies of the real upstream weight files; SR_FILTER_WEIGHTS_URL points at it."""
    require_shared(UPSTREAM)
    folder = tmp_path / "served"
    folder.mkdir()
    for f in UPSTREAM.glob("*.pth"):
        shutil.copy(f, folder / f.name)
    server = WeightsServer(folder)
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", server.url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def set5():
    return require_shared(BENCHMARKS / "Set5")


@pytest.fixture(scope="session")
def set14():
    return require_shared(BENCHMARKS / "Set14")


_ROOT_LOGGING = (list(logging.getLogger().handlers), logging.getLogger().level)  # as the test session began


def _reset_logging() -> None:
    root = logging.getLogger()
    ours = [h for h in root.handlers if type(h).__module__.startswith("_pytest")]  # pytest's capture handlers stay
    root.handlers[:] = ours + [h for h in _ROOT_LOGGING[0] if h not in ours]
    root.setLevel(_ROOT_LOGGING[1])


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI sets up logging for its process; tests (and module fixtures) that run it in-process
    must not leave that set-up (handlers, level) to the tests after them."""
    _reset_logging()
    yield
    _reset_logging()


class KillFirstWorker:
    """An ``on_event`` callback for cluster jobs: records every event and SIGKILLs the worker
    process of the first finished task (once), as a crashed or preempted machine would."""

    def __init__(self) -> None:
        self.events: list = []
        self.killed: list[int] = []

    def __call__(self, event) -> None:
        import signal

        self.events.append(event)
        if event.kind == "done" and not self.killed:
            self.killed.append(event.worker)
            os.kill(event.worker, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    """One local Ray cluster for every test of a module that asks for it (its gcs address); its
    workers import this checkout, offline, and find the built-in models converted, as every
    test's own cache does (each worker had converted them again: seconds per worker and model)."""
    import ray

    cache = tmp_path_factory.mktemp("raycache")
    _link_conversions(request.getfixturevalue("converted_built_ins"), cache / "openvino")
    with pytest.MonkeyPatch.context() as env:  # restores the variables after the module
        env.setenv("PYTHONPATH", str(ROOT))
        env.setenv("SR_FILTER_OFFLINE", "1")
        env.setenv("SR_FILTER_CACHE_DIR", str(cache))
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        yield ray.get_runtime_context().gcs_address
        ray.shutdown()


@contextlib.contextmanager
def one_thread():
    """Inference with one thread, as each worker of the test clusters runs (one CPU each): a
    single-machine reference made so compares exactly on any CPU, where sums split over another
    number of threads may differ in the last bit."""
    import torch

    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def interruptible() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT or SIGHUP: handled as in a
    terminal, even when the test run itself was started with them ignored (a shell script's
    background job ignores SIGINT, ``nohup`` SIGHUP), which children would otherwise inherit and,
    as they should, keep ignoring."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def signal_when(args: list, ready: Path, signum: int, *, after: float, env: dict | None = None) -> tuple[int, bytes, bytes]:
    """Run ``python -m sr_filter ARGS``; once ``ready`` exists and ``after`` more seconds have passed,
    send ``signum`` while it still works. Returns (exit status, stdout, stderr)."""
    import subprocess
    import sys
    import time

    env = dict(os.environ, PYTHONPATH=str(ROOT)) if env is None else env
    proc = subprocess.Popen([sys.executable, "-m", "sr_filter", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        time.sleep(after)
        assert proc.poll() is None, "the work finished before the signal; make it bigger"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stdout, stderr


def run_in_process(*args, stdin: bytes | None = None, cwd=None, env: dict | None = None):
    """``sr-filter ARGS`` in this process: the real entry point (``sr_filter.cli.main``, which turns
    every error into its one line and exit status), with what is written to file descriptors 1 and
    2 captured as a child's would be (FFmpeg's and the exporters' own writes included), standard
    input the bytes given (a pipe's, never a terminal's), ``cwd`` and ``env`` (None unsets a name)
    for the call, and Python's warnings shown on standard error with a new process's filters (pytest
    would record them instead, and a stray warning in a one-line error would pass unseen). Returns
    what ``subprocess.run`` does, with bytes. A child process pays 2-4 s of Python, torch and
    OpenVINO start-up; tests about the process itself (signals, descriptors, closed or terminal
    streams, what start-up imports, the interpreter's exit) start one."""
    import io
    import subprocess
    import sys
    import tempfile
    import warnings

    from sr_filter.cli import DefaultGroup, main

    DefaultGroup.flags = DefaultGroup.valued = None  # as a new process starts: no command resolved yet
    streams, here = (sys.stdin, sys.stdout, sys.stderr), os.getcwd()
    before = {name: os.environ.get(name) for name in env or {}}
    sys.stdout.flush()
    sys.stderr.flush()
    held = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category in (("default", DeprecationWarning), ("ignore", DeprecationWarning),
                                 ("ignore", PendingDeprecationWarning), ("ignore", ImportWarning), ("ignore", ResourceWarning)):
            warnings.filterwarnings(action, category=category, module="__main__" if action == "default" else "", append=True)
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin or b""))
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the descriptor's, restored below
            sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
            for name, value in (env or {}).items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = str(value)
            if cwd is not None:
                os.chdir(cwd)
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):  # a command may have closed it
                    pass
            sys.stdin, sys.stdout, sys.stderr = streams
            os.dup2(held[0], 1)
            os.dup2(held[1], 2)
            os.close(held[0])
            os.close(held[1])
            os.chdir(here)
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess([str(a) for a in args], code, out.read(), err.read())


@pytest.fixture
def cli():
    """:func:`run_in_process`, for tests that take it as a fixture."""
    return run_in_process

"""Downloads under hostile conditions: no network, bad settings, a faulty cache, stalling
servers, signals, zip bombs. Real servers on 127.0.0.1, real files, real subprocesses."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import zipfile

import pytest
import torch

from sr_filter.cachelock import CacheLock
from sr_filter.errors import CacheError, DownloadError, DownloadSettingError, OfflineError, WeightsFormatError
from sr_filter.manifest import Manifest, Preset, load_manifest
from sr_filter.models import load_model
from sr_filter.netmemory import FILE_NAME as MEMORY_FILE
from sr_filter.weights import fetch, file_sha256, load_state_dict

from .conftest import ROOT

#: these tests look at everything a download leaves in the cache folder
pytestmark = pytest.mark.cold_conversion_cache

NAME = "RealESRGANv2-animevideo-xsx2"


def _env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: this test's (isolated cache, local mirror) plus ours."""
    return dict(os.environ, PYTHONPATH=str(ROOT), **extra)


@pytest.fixture
def entry():
    return load_manifest().get(NAME)


@pytest.fixture(autouse=True)
def warnings_logged(caplog):
    caplog.set_level(logging.WARNING)
    return caplog


def _preset_with_fallback(first: str) -> Manifest:
    """The real manifest with a ``photo`` preset trying ``first``, then the built-in sr-photo-x4."""
    data = load_manifest()
    return Manifest(data.models, {**data.presets, "photo": Preset("photo", (first, "sr-photo-x4"))}, "photo")


def _run(script: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=_env(), capture_output=True,
                          text=True, timeout=120, **kwargs)


# --- no network: fall back at once, and remember it -------------------------------------------


def test_no_network_preset_falls_back_at_once_and_remembers(monkeypatch, isolated_cache, caplog):
    closed = socket.socket()  # bound but not listening: connections are refused, like a host that is down
    closed.bind(("127.0.0.1", 0))
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", f"http://127.0.0.1:{closed.getsockname()[1]}/w/")
    monkeypatch.setenv("SR_FILTER_DOWNLOAD_RETRIES", "3")
    monkeypatch.setenv("SR_FILTER_STALL_TIMEOUT", "0.5")
    try:
        assert load_model("photo").name == "sr-photo-x4"
        assert "no network: using the built-in model sr-photo-x4 instead of realesr-general-x4v3" in caplog.text
        assert (isolated_cache / MEMORY_FILE).is_file()
        closed.listen(8)  # from now on a connection attempt would be seen
        closed.settimeout(0.2)
        caplog.clear()
        assert load_model("photo").name == "sr-photo-x4"  # remembered: no new attempt
        assert "no network: using the built-in model sr-photo-x4" in caplog.text
        assert "127.0.0.1:" in caplog.text and "could not be reached in the last minute" in caplog.text
        with pytest.raises(socket.timeout):
            closed.accept()
        # an explicit model name still tries (the listening socket never answers: stall timeout)
        with pytest.raises(DownloadError, match="no answer"):
            load_model("realesr-general-x4v3")
        closed.accept()[0].close()
        # and so does a preset with SR_FILTER_OFFLINE=0
        monkeypatch.setenv("SR_FILTER_OFFLINE", "0")
        assert load_model("photo").name == "sr-photo-x4"
        closed.accept()[0].close()
    finally:
        closed.close()


def test_unresolvable_host_falls_back_without_retrying(monkeypatch, isolated_cache, caplog):
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", "http://sr-filter-test.invalid/weights/")
    monkeypatch.setenv("SR_FILTER_DOWNLOAD_RETRIES", "3")
    start = time.monotonic()
    assert load_model("face").name == "sr-face-x4"
    assert time.monotonic() - start < 5
    assert "no network: using the built-in model sr-face-x4 instead of RealESRGAN_x4plus (cannot resolve sr-filter-test.invalid" in caplog.text
    assert list(json.loads((isolated_cache / MEMORY_FILE).read_text())) == ["http://sr-filter-test.invalid"]


def test_a_host_that_answers_again_is_forgotten(weights_server, entry, isolated_cache):
    host = weights_server.url.rsplit("/weights/", 1)[0]
    isolated_cache.mkdir(exist_ok=True)
    (isolated_cache / MEMORY_FILE).write_text(json.dumps({host: time.time() - 10, "http://other": time.time()}))
    fetch(entry)  # an explicit use still tries, and succeeds
    assert list(json.loads((isolated_cache / MEMORY_FILE).read_text())) == ["http://other"]


# --- settings from the environment -------------------------------------------------------------

BAD_SETTINGS = [
    ("SR_FILTER_DOWNLOAD_RETRIES", "abc"),
    ("SR_FILTER_DOWNLOAD_RETRIES", "2.5"),
    ("SR_FILTER_DOWNLOAD_RETRIES", "0"),
    ("SR_FILTER_OFFLINE", "maybe"),
    ("SR_FILTER_WEIGHTS_URL", "ftp://mirror.example/"),
    ("SR_FILTER_WEIGHTS_URL", "http://"),  # had asked for http:/file.pth
    ("SR_FILTER_WEIGHTS_URL", "http://mirror.example:99999/"),  # had been a URL parser's message
    ("SR_FILTER_WEIGHTS_URL", "http://[::1/weights/"),  # a bracket left open: had been called a bad port
    ("SR_FILTER_CONNECT_TIMEOUT", "nan"),
    ("SR_FILTER_STALL_TIMEOUT", "-1"),
    ("SR_FILTER_DOWNLOAD_TIMEOUT", "soon"),
]


@pytest.mark.parametrize("name,value", BAD_SETTINGS)
def test_bad_setting_is_named_for_models_and_presets_alike(name, value, entry, monkeypatch):
    """A mistyped variable is an error even for a preset, which could run its built-in model
    instead: the user would get a smaller model than asked without fixing the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(DownloadSettingError) as info:
        fetch(entry)
    assert f"{name}={value!r}" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DownloadSettingError, match=re.escape(f"{name}={value!r}")):
        load_model("photo")


def test_the_file_name_goes_into_the_mirror_path_before_a_query(monkeypatch):
    """An access token in the mirror's query had come before the file name (?token=abc/x.pth)."""
    from sr_filter.weights import source_urls

    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", "https://mirror.example/models?token=abc")
    assert source_urls("x.pth", ["https://official/x.pth"]) == ["https://mirror.example/models/x.pth?token=abc"]
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", "https://mirror.example/models/")
    assert source_urls("x.pth", []) == ["https://mirror.example/models/x.pth"]


def test_bad_setting_in_the_cli_is_one_line(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "in.png")
    result = subprocess.run(
        [sys.executable, "-m", "sr_filter", "--model", "realesr-general-x4v3", str(tmp_path / "in.png")],
        env=_env(SR_FILTER_DOWNLOAD_RETRIES="abc"), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SR_FILTER_DOWNLOAD_RETRIES='abc'" in lines[0], result.stderr


def test_offline_message_names_no_command_line_flag(entry, monkeypatch):
    monkeypatch.setenv("SR_FILTER_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        fetch(entry)
    assert "--" not in str(info.value)


# --- a faulty cache ----------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path):
    """The real weight files over HTTPS on 127.0.0.1, with a certificate of its own (self-signed,
    made by openssl for this test), as a mirror or proxy on a company network has."""
    import functools
    import http.server
    import ssl
    import threading

    from .conftest import UPSTREAM, require_shared

    require_shared(UPSTREAM)
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(UPSTREAM))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/", cert
    httpd.shutdown()
    httpd.server_close()


def test_a_mirror_with_a_certificate_of_its_own_is_said_with_the_way_on(tls_server, weights_server, entry,
                                                                         isolated_cache, monkeypatch):
    """Behind a company proxy or mirror: requests' text was cut mid-word before the reason
    ("...SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] cer)") and named no way on."""
    url, cert = tls_server
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", url)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(DownloadError) as info:
        fetch(entry)
    host = url.split("/")[2]
    assert f"the certificate of {host} is not trusted (self-signed certificate); " in str(info.value)
    assert "set REQUESTS_CA_BUNDLE to that authority's certificate (a PEM file)" in str(info.value)
    assert not list(isolated_cache.glob("*.pth"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # the advice, followed
    assert file_sha256(fetch(entry)) == entry.sha256
    # https:// to a server that speaks plain HTTP
    plain = weights_server.url.replace("http://", "https://")
    monkeypatch.setenv("SR_FILTER_WEIGHTS_URL", plain)
    with pytest.raises(DownloadError, match=r"no TLS connection with 127\.0\.0\.1:\d+ \(wrong version number\); if "
                                            r"that server speaks plain HTTP, give its address with http://"):
        fetch(load_manifest().get("RealESRGANv2-animevideo-xsx4"))


def test_folder_named_like_the_weights_file(weights_server, entry, isolated_cache, caplog):
    (isolated_cache / entry.file).mkdir(parents=True)
    with pytest.raises(CacheError, match="is a folder"):
        fetch(entry)
    assert load_model("photo", manifest=_preset_with_fallback(NAME)).name == "sr-photo-x4"
    assert "is a folder" in caplog.text


def test_a_corrupt_file_in_a_read_only_cache_is_named(weights_server, entry, tmp_path, monkeypatch):
    """Online, only "the cache is not writable" had been said, not that the file in it is corrupt.
    A read-only folder is made with the immutable flag (chattr +i), which holds for root too."""
    cache = tmp_path / "ro"
    cache.mkdir()
    (cache / entry.file).write_bytes(b"not the weights")
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(cache)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here (it needs root and a file system that has it)")
    try:
        monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(cache))
        with pytest.raises(CacheError) as info:
            fetch(entry)
    finally:
        subprocess.run(["chattr", "-i", str(cache)], check=True)
    assert str(info.value).startswith(f"{cache / entry.file} is corrupt and could not be removed")
    assert "is not writable; set SR_FILTER_CACHE_DIR" in str(info.value)


def test_full_cache_is_one_line_and_presets_fall_back(weights_server, isolated_cache):
    """The file size limit stands in for a full disk: writes fail with an OSError past 1 MB."""
    result = _run(f"""
        import resource, signal
        from sr_filter.manifest import Manifest, Preset, load_manifest
        from sr_filter.models import load_model
        from sr_filter.weights import fetch
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        m = load_manifest()
        try:
            fetch(m.get({NAME!r}))
        except Exception as exc:
            print(type(exc).__name__, exc)
        custom = Manifest(m.models, {{**m.presets, "photo": Preset("photo", ({NAME!r}, "sr-photo-x4"))}}, "photo")
        print("used", load_model("photo", manifest=custom).name)
    """)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    first, used = result.stdout.strip().splitlines()
    assert first.startswith("CacheError cannot write") and "SR_FILTER_CACHE_DIR" in first
    # the file size limit named as such (it had been "free some space there", as for a full disk)
    assert "(File too large); raise the file size limit (ulimit -f) or set SR_FILTER_CACHE_DIR" in first, first
    assert used == "used sr-photo-x4"
    assert "using sr-photo-x4@1 instead of" in result.stderr
    assert [p.name for p in isolated_cache.iterdir()] == []  # no part, no lock


def test_cached_weights_are_readable_by_others(weights_server, entry, isolated_cache):
    old = os.umask(0o022)
    try:
        path = fetch(entry)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# --- interrupted and stale downloads -----------------------------------------------------------


def test_sigterm_during_download_leaves_no_part(weights_server, entry, isolated_cache):
    weights_server.behaviour[entry.file] = "trickle"
    weights_server.trickle_interval = 0.01
    script = f"""
        import signal
        signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(SystemExit(143)))
        from sr_filter.manifest import load_manifest
        from sr_filter.weights import fetch
        fetch(load_manifest().get({NAME!r}))
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(isolated_cache.glob("*.part")):
            assert time.monotonic() < deadline and proc.poll() is None, "the download never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert list(isolated_cache.iterdir()) == []


def test_parts_left_by_killed_downloads_are_swept(weights_server, entry, isolated_cache):
    isolated_cache.mkdir(exist_ok=True)
    long_ago = time.time() - 2 * 3600
    own = isolated_cache / f".{entry.file}.0a1b2c3d.part"  # of the file being fetched: any age
    old = isolated_cache / ".other.pth.deadbeef.part"  # of another file, old and not locked
    locked = isolated_cache / ".busy.pth.12345678.part"  # old, but its file is being downloaded
    young = isolated_cache / ".young.pth.87654321.part"  # recent: may still be written
    for part in (own, old, locked, young):
        part.write_bytes(b"partial")
    for part in (old, locked):
        os.utime(part, (long_ago, long_ago))
    with CacheLock(isolated_cache / "busy.pth", timeout=1):
        fetch(entry)
    assert sorted(p.name for p in isolated_cache.iterdir()) == sorted([entry.file, locked.name, young.name])
    os.utime(young, (long_ago, long_ago))
    fetch(entry)  # the file is cached now; the next use still sweeps
    assert sorted(p.name for p in isolated_cache.iterdir()) == [entry.file]


# --- servers that stall or trickle -------------------------------------------------------------


def test_server_that_never_answers_times_out(weights_server, entry, monkeypatch, isolated_cache):
    weights_server.behaviour[entry.file] = "silent"
    monkeypatch.setenv("SR_FILTER_STALL_TIMEOUT", "0.5")
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"no answer for 0.5 s \(SR_FILTER_STALL_TIMEOUT\)"):
        fetch(entry)
    assert time.monotonic() - start < 3
    assert weights_server.hits[entry.file] == 1  # silence is not retried
    assert list(isolated_cache.iterdir()) == []


def test_a_server_that_is_slow_to_answer_is_said_while_it_is_waited_for(weights_server, entry, monkeypatch,
                                                                         isolated_cache, caplog):
    """Nothing had been said for the whole stall timeout (30 s by default) before the error."""
    from sr_filter import download

    weights_server.behaviour[entry.file] = "silent"
    monkeypatch.setenv("SR_FILTER_STALL_TIMEOUT", "1.5")
    monkeypatch.setattr(download, "SAY_WAITING_AFTER", 0.3)
    with pytest.raises(DownloadError, match="no answer for 1.5 s"):
        fetch(entry)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for ")]
    assert said == [f"waiting for 127.0.0.1:{weights_server.httpd.server_address[1]} to answer ({entry.file}; gives up after 1.5 s without "
                    "an answer, SR_FILTER_STALL_TIMEOUT)"], said
    caplog.clear()
    weights_server.behaviour[entry.file] = None
    assert file_sha256(fetch(entry)) == entry.sha256
    assert not [r for r in caplog.records if r.getMessage().startswith("waiting for ")]  # a prompt answer: not said


def test_a_transfer_that_falls_silent_midway_is_tried_again(weights_server, entry, monkeypatch, isolated_cache):
    """Silent after half the file is a broken transfer, not a server that does not answer: with a
    mirror (one URL) the one try had ended the download."""
    weights_server.behaviour[entry.file] = "stall-once"
    monkeypatch.setenv("SR_FILTER_STALL_TIMEOUT", "0.5")
    assert file_sha256(fetch(entry)) == entry.sha256
    assert weights_server.hits[entry.file] == 2
    assert sorted(p.name for p in isolated_cache.iterdir() if not p.name.startswith(".unreachable")) == [entry.file]


def test_trickling_server_meets_the_overall_deadline(weights_server, entry, monkeypatch, isolated_cache):
    weights_server.behaviour[entry.file] = "trickle"
    monkeypatch.setenv("SR_FILTER_STALL_TIMEOUT", "1")
    monkeypatch.setenv("SR_FILTER_DOWNLOAD_TIMEOUT", "1.5")
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"not done within 1.5 s \(SR_FILTER_DOWNLOAD_TIMEOUT\)"):
        fetch(entry)
    assert time.monotonic() - start < 4
    assert list(isolated_cache.iterdir()) == []


@pytest.mark.parametrize("behaviour, limit, within", [("stall-once", "1.5", 6), ("silent", "1.5", 6), ("late-stall", "2.5", 3.8)])
def test_the_overall_deadline_cuts_a_wait_short(weights_server, entry, monkeypatch, isolated_cache, behaviour, limit, within):
    """A server that falls silent (midway, or before answering) had held a 1.5 s download limit
    for the whole 30 s stall timeout, which then said "not done within 1.5 s"; each wait is cut to
    what is left of the limit (late-stall: one that began 2 s into a 2.5 s limit had waited 2.5 s
    more, the read timeout set once, when the transfer began)."""
    weights_server.behaviour[entry.file] = behaviour
    monkeypatch.setenv("SR_FILTER_DOWNLOAD_TIMEOUT", limit)  # the stall timeout stays at its 30 s
    start = time.monotonic()
    with pytest.raises(DownloadError, match=rf"not done within {limit} s \(SR_FILTER_DOWNLOAD_TIMEOUT\)"):
        fetch(entry)
    assert time.monotonic() - start < within
    assert [p for p in isolated_cache.iterdir() if not p.name.startswith(".unreachable")] == []


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, identity"])
def test_a_transfer_packed_in_a_way_that_cannot_be_unpacked_is_named(weights_server, entry, isolated_cache, monkeypatch,
                                                                     encoding):
    """Brotli or zstd (without their modules) had been read packed: "the server holds a different file"."""
    monkeypatch.setattr("urllib3.response.HTTPResponse.CONTENT_DECODERS", ["gzip", "x-gzip", "deflate"])
    weights_server.behaviour[entry.file] = "gzip"
    weights_server.encoding = encoding
    try:
        with pytest.raises(DownloadError, match=f"sent {entry.file} {encoding}-compressed .Content-Encoding., which "
                                                "cannot be unpacked here"):
            fetch(entry)
    finally:
        weights_server.encoding = "gzip"


def test_progress_bar_on_a_terminal_shows_rate(weights_server, entry):
    import pty
    import termios

    master, slave = pty.openpty()
    termios.tcsetwinsize(slave, (24, 100))  # a new pseudo-terminal is 0 columns wide
    script = f"from sr_filter.manifest import load_manifest; from sr_filter.weights import fetch; fetch(load_manifest().get({NAME!r}))"
    proc = subprocess.Popen([sys.executable, "-c", script], env=_env(), stderr=slave, stdout=subprocess.DEVNULL)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, output
    text = output.decode(errors="replace")
    assert f"downloading {entry.file}" in text and "B/s" in text, text


# --- untrusted weights files -------------------------------------------------------------------


def test_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    plain = io.BytesIO()
    torch.save({"conv.weight": torch.zeros(25_000_000)}, plain)  # 100 MB of zeros
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(WeightsFormatError, match=r"bomb.pth would unpack to 95 MiB from 0\.\d MiB \(at most 64 MiB is allowed\)"):
        load_state_dict(path)


def test_real_weights_pass_the_size_guard(weights_server, entry):
    assert load_state_dict(fetch(entry))
    assert file_sha256(fetch(entry)) == entry.sha256


# --- the cache as users manage it: download ahead, inspect, corrupt files, clear --------------


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sr_filter", *args], env=_env(**env), capture_output=True, text=True,
                          timeout=300)


def test_models_download_inspect_corrupt_and_clear_cache(weights_server, entry, isolated_cache):
    """No way to fill the cache ahead (offline machines, container images), to see its size or to
    clear it; --inspect blamed an offline setting nobody made; a corrupt cached file was listed as
    "cached", stayed after a failed download, and offline it was "not downloaded yet"."""
    before = _cli("models", "--inspect", NAME)
    assert before.returncode == 1 and "not downloaded yet, and --inspect never downloads" in before.stderr
    assert f"sr-filter models --download {NAME}" in before.stderr and "SR_FILTER_OFFLINE" not in before.stderr
    got = _cli("models", "--download", NAME)
    assert got.returncode == 0, got.stderr
    assert f"{NAME}: {isolated_cache / entry.file}" in got.stdout
    assert f"downloading {entry.file} (2.4 MB) from 127.0.0.1" in got.stderr  # not a terminal: one line, not silence
    assert weights_server.hits[entry.file] == 1
    assert _cli("models", "--inspect", NAME, "--json").returncode == 0
    listed = json.loads(_cli("models", "--json").stdout)
    row = next(r for r in listed["models"] if r["name"] == NAME)
    assert (row["weights"], row["file"], row["sha256"], row["path"]) == ("cached", entry.file, entry.sha256,
                                                                        str(isolated_cache / entry.file))
    assert listed["cache_usage"]["weights_files"] == 1 and listed["cache_usage"]["weights_bytes"] == entry.size
    assert "1 downloaded weights file(s), 2.4 MB" in _cli("models").stdout
    with open(isolated_cache / entry.file, "r+b") as f:  # same size, one byte changed
        f.seek(1000)
        f.write(bytes([f.read(1)[0] ^ 1]))
    row = next(r for r in json.loads(_cli("models", "--json").stdout)["models"] if r["name"] == NAME)
    assert row["weights"] == "corrupt"
    offline = _cli("models", "--download", NAME, SR_FILTER_OFFLINE="1")
    assert offline.returncode == 1 and "was corrupt (removed)" in offline.stderr
    assert not (isolated_cache / entry.file).exists()  # no wrong file left for the next run
    assert _cli("models", "--download", NAME).returncode == 0
    other = "RealESRGANv2-animevideo-xsx4"
    unknown = _cli("models", "--download", other, "--download", "nosuch")
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr and not (isolated_cache / f"{other}.pth").exists()
    assert "path to a .pth" not in unknown.stderr and "lists, not files)" in unknown.stderr  # it takes no files
    weights_server.behaviour[entry.file] = "500"
    (isolated_cache / entry.file).unlink()
    mixed = _cli("models", "--download", NAME, "--download", other, "--json")  # the first fails, the second still runs
    rows = {r["name"]: r["weights"] for r in json.loads(mixed.stdout)}
    assert mixed.returncode == 1 and rows == {NAME: "failed", other: "cached"}
    weights_server.behaviour.clear()
    with open(isolated_cache / f"{other}.pth", "r+b") as f:
        f.write(b"x")
    corrupt = _cli("models", "--inspect", other)
    assert corrupt.returncode == 1 and "cached file is corrupt" in corrupt.stderr
    (isolated_cache / "mine.txt").write_text("the user's own file")
    cleared = _cli("models", "--clear-cache")
    assert cleared.returncode == 0 and "removed 1 file(s), 2.5 MB" in cleared.stdout, cleared.stdout  # the corrupt one
    assert sorted(p.name for p in isolated_cache.iterdir() if not p.name.startswith(".")) == ["mine.txt"]


def test_a_web_page_instead_of_the_file_and_odd_cache_folders_are_said(weights_server, entry, isolated_cache, monkeypatch,
                                                                      tmp_path):
    """A login page answered 200 read as "got 52 of 2419014 bytes"; a relative cache folder was
    another cache in every working directory; a cache path that is a file said "File exists"."""
    from sr_filter.weights import cache_dir

    weights_server.behaviour[entry.file] = "html"
    with pytest.raises(DownloadError, match="sent a web page .text/html. instead of"):
        fetch(entry)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", "relative/cache")
    assert cache_dir() == tmp_path / "relative" / "cache"
    (tmp_path / "plain").write_text("x")
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path / "plain"))
    with pytest.raises(CacheError, match="is a file .or inside one., not a folder"):
        fetch(entry)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # had been "is a file (or inside one)"
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path / "loop"))
    with pytest.raises(CacheError, match=r"loop is a link that leads to no folder \(a loop or a missing target\)"):
        fetch(entry)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")  # a link above the cache: it too had been "a file"
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path / "dangling" / "sub"))
    with pytest.raises(CacheError, match=r"sub is inside .*dangling, a link that leads to no folder \(a loop or a missing"):
        fetch(entry)


def test_clear_cache_forgets_the_network_and_refuses_a_cache_that_is_a_file(tmp_path, isolated_cache, monkeypatch):
    """--clear-cache kept the remembered "no network" (a user who fixed the network still got the
    fallback), and with SR_FILTER_CACHE_DIR naming a file it said "removed 0 file(s)" and exit 0."""
    from click.testing import CliRunner

    from sr_filter.cli import cli

    isolated_cache.mkdir(exist_ok=True)
    (isolated_cache / MEMORY_FILE).write_text("{}")
    blocked = isolated_cache / "openvino" / "sr-cartoon-x4-fp32-0123.json"  # a folder where an entry's file goes
    (blocked / "inside").mkdir(parents=True)
    done = CliRunner().invoke(cli, ["models", "--clear-cache"])
    assert done.exit_code == 0 and not (isolated_cache / MEMORY_FILE).exists(), done.output
    assert not blocked.exists()  # it had stayed, and every later run converted the model again
    (tmp_path / "a-file").write_text("mine")
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path / "a-file"))
    refused = CliRunner().invoke(cli, ["models", "--clear-cache"])
    assert refused.exit_code != 0 and "is a file (or inside one), not a folder" in str(refused.exception or refused.output)
    listing = CliRunner().invoke(cli, ["models"])
    assert listing.exit_code == 0 and "(unusable: the weights cache" in listing.output, listing.output
    assert (tmp_path / "a-file").read_text() == "mine"


def test_models_says_a_cache_that_takes_no_file_is_read_only(monkeypatch, tmp_path):
    """A cache under a folder where no file can be created (/proc here; a read-only mount alike)
    had been listed as usable ("set SR_FILTER_CACHE_DIR to move it"), and every download then
    failed. Root passes every permission check there, so only creating a file tells."""
    from click.testing import CliRunner

    from sr_filter.cli import cli

    monkeypatch.setenv("SR_FILTER_CACHE_DIR", "/proc/sr-filter-cache")
    listing = CliRunner().invoke(cli, ["models"])
    assert listing.exit_code == 0, listing.output
    line = next(x for x in listing.output.splitlines() if x.startswith("Weights cache:"))
    assert "(read-only: no file can be created in /proc (" in line, line
    assert "set SR_FILTER_CACHE_DIR to a writable folder)" in line, line
    listed = json.loads(CliRunner().invoke(cli, ["models", "--json"]).output)  # had no word of it
    assert listed["cache_problem"].startswith("read-only: no file can be created in /proc ("), listed["cache_problem"]
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(tmp_path / "fine"))
    assert json.loads(CliRunner().invoke(cli, ["models", "--json"]).output)["cache_problem"] is None


def test_models_counts_and_clear_cache_removes_what_killed_downloads_left(isolated_cache):
    """A killed download's part file (1.4 MB) and lock: `models` had said "0 downloaded weights
    file(s), 0.0 MB" and --clear-cache "removed 0 file(s), 0.0 MB" while deleting both."""
    from click.testing import CliRunner

    from sr_filter.cli import cli

    isolated_cache.mkdir(exist_ok=True)
    part = isolated_cache / f".{NAME}.pth.0123abcd.part"
    part.write_bytes(bytes(1_400_000))
    (isolated_cache / f"{NAME}.pth.lock").write_text("")
    listing = CliRunner().invoke(cli, ["models"])
    assert "; 1 unfinished download(s), 1.4 MB; `sr-filter models --clear-cache` empties it" in listing.output, listing.output
    done = CliRunner().invoke(cli, ["models", "--clear-cache"])
    assert done.exit_code == 0 and done.output.startswith("removed 2 file(s), 1.4 MB, from "), done.output
    assert list(isolated_cache.iterdir()) == []


def test_models_counts_and_clears_the_training_backbones_too(isolated_cache):
    """Training's perceptual loss fetches torchvision's VGG-19 (575 MB) into the same cache: `models`
    had left it out of "N downloaded weights file(s)" and --clear-cache had kept it. A file of the
    user's stays. (A stand-in of 3 MB under the name training gives the file: the real one cannot be
    downloaded here.)"""
    from click.testing import CliRunner

    from sr_filter.backbones import PUBLISHED
    from sr_filter.cli import cli

    isolated_cache.mkdir(exist_ok=True)
    (isolated_cache / PUBLISHED["vgg19"].file).write_bytes(bytes(3_000_000))
    (isolated_cache / "notes.txt").write_text("mine")
    listing = CliRunner().invoke(cli, ["models"])
    assert "1 downloaded weights file(s), 3.0 MB" in listing.output, listing.output
    done = CliRunner().invoke(cli, ["models", "--clear-cache"])
    assert done.exit_code == 0 and done.output.startswith("removed 1 file(s), 3.0 MB, from "), done.output
    assert sorted(p.name for p in isolated_cache.iterdir() if p.name != "openvino") == ["notes.txt"]


def test_a_failed_download_points_only_to_what_models_has():
    """`models --download` failures ended "(see --model and --offline)" or pointed to --offline,
    options `models` does not have."""
    from click.testing import CliRunner

    from sr_filter.cli import cli

    done = CliRunner().invoke(cli, ["models", "--download", "RealESRGANv2-animevideo-xsx2"])
    line = [x for x in done.output.splitlines() if x.startswith("sr-filter: error:")]
    assert done.exit_code == 1 and len(line) == 1 and "RealESRGANv2-animevideo-xsx2" in line[0], done.output
    assert "--model" not in line[0] and "--offline" not in line[0], line


def test_a_shorter_file_on_the_server_is_another_file_not_a_broken_transfer(weights_server, entry):
    """A mirror holding a file of another size answered in full was reported as "got N of M
    bytes" (a broken transfer) and retried; a longer one already was "a different file"."""
    served = weights_server.folder / entry.file
    served.write_bytes(served.read_bytes()[:-1000])
    with pytest.raises(DownloadError, match=r"holds \d+ bytes for .*, not the expected \d+; the server holds a different file"):
        fetch(entry)
    assert weights_server.hits[entry.file] == 1  # not retried


def test_a_compressed_transfer_is_unpacked(weights_server, entry, isolated_cache):
    """A mirror behind a proxy that gzips despite "Accept-Encoding: identity" had been told "holds
    2244254 bytes ..., not the expected 2419014; the server holds a different file"."""
    weights_server.behaviour[entry.file] = "gzip"
    path = fetch(entry)
    assert path.read_bytes() == (weights_server.folder / entry.file).read_bytes()
    path.unlink()
    weights_server.encoding = "gzip, gzip"  # packed twice, said so: unpacked twice (it had been refused)
    try:
        assert fetch(entry).read_bytes() == (weights_server.folder / entry.file).read_bytes()
    finally:
        weights_server.encoding = "gzip"
    path.unlink()
    weights_server.behaviour[entry.file] = "bad-gzip"
    with pytest.raises(DownloadError, match="the server's 'gzip' transfer encoding does not unpack"):
        fetch(entry)
    assert not path.exists() and not list(isolated_cache.glob(".*.part"))

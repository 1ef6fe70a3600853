"""The real download path against a real HTTP server on 127.0.0.1 serving the real weight files."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from PIL import Image

from sr_filter.cachelock import CacheLock
from sr_filter.community import read_state
from sr_filter.errors import ChecksumError, DownloadError, SrFilterError, WeightsFormatError
from sr_filter.manifest import load_manifest
from sr_filter.models import load_model
from sr_filter.weights import cache_dir, fetch, file_kind, file_sha256, load_state_dict

from .conftest import ROOT, UPSTREAM, require_shared

NAME = "RealESRGANv2-animevideo-xsx2"


@pytest.fixture
def entry():
    return load_manifest().get(NAME)


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith((".part", ".tmp", ".lock", ".failed", ".waiting"))]


def test_first_use_downloads_then_uses_cache(weights_server, entry, isolated_cache):
    path = fetch(entry)
    assert path == isolated_cache / entry.file
    assert file_sha256(path) == entry.sha256
    assert weights_server.hits[entry.file] == 1
    weights_server.stop()  # cached use needs no server
    assert fetch(entry) == path
    model = load_model(NAME)
    assert model.scale == 2 and model.entry.id == f"{NAME}@1"
    assert not _leftovers(isolated_cache)


def test_corrupt_cache_is_fetched_again(weights_server, entry, isolated_cache):
    path = fetch(entry)
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(data))
    assert fetch(entry) == path
    assert file_sha256(path) == entry.sha256
    assert weights_server.hits[entry.file] == 2


def test_wrong_file_on_server_is_a_clear_error_and_leaves_nothing(weights_server, entry, isolated_cache):
    served = weights_server.folder / entry.file
    other = UPSTREAM / "RealESRGANv2-animevideo-xsx4.pth"
    data = other.read_bytes()[: entry.size]  # same size, different bytes
    served.write_bytes(data + b"\0" * (entry.size - len(data)))
    with pytest.raises(ChecksumError) as info:
        fetch(entry)
    message = str(info.value)
    assert entry.file in message and entry.sha256 in message and file_sha256(served) in message
    assert not (isolated_cache / entry.file).exists()
    assert not _leftovers(isolated_cache)


def test_truncated_transfer_is_retried_then_reported(weights_server, entry, isolated_cache):
    weights_server.behaviour[entry.file] = "truncate"
    with pytest.raises(DownloadError, match="could not download") as info:
        fetch(entry)
    assert "IncompleteRead" not in str(info.value) and "the server closed the connection" in str(info.value), info.value
    assert weights_server.hits[entry.file] == 2  # SR_FILTER_DOWNLOAD_RETRIES=2
    assert not (isolated_cache / entry.file).exists()
    assert not _leftovers(isolated_cache)
    weights_server.behaviour.clear()
    assert file_sha256(fetch(entry)) == entry.sha256


def test_server_down_says_what_to_do(weights_server, entry, isolated_cache):
    weights_server.stop()
    with pytest.raises(DownloadError) as info:
        fetch(entry)
    message = str(info.value)
    assert "SR_FILTER_WEIGHTS_URL" in message and str(isolated_cache / entry.file) in message
    assert not (isolated_cache / entry.file).exists()


def test_http_error_is_reported(weights_server, entry):
    weights_server.behaviour[entry.file] = "500"
    with pytest.raises(DownloadError, match="HTTP 500"):
        fetch(entry)


def test_offline_without_cache_says_what_to_do(weights_server, entry, monkeypatch):
    monkeypatch.setenv("SR_FILTER_OFFLINE", "1")
    with pytest.raises(DownloadError, match="downloads are off") as info:
        fetch(entry)
    assert "SR_FILTER_WEIGHTS_URL" in str(info.value) and "sr-filter models" in str(info.value)
    assert weights_server.hits[entry.file] == 0


def test_unwritable_cache_names_the_variable(weights_server, entry, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(DownloadError, match="SR_FILTER_CACHE_DIR"):
        fetch(entry)


def test_concurrent_first_use_downloads_once(weights_server, entry, isolated_cache):
    script = textwrap.dedent(
        f"""
        from sr_filter.manifest import load_manifest
        from sr_filter.weights import fetch, file_sha256
        e = load_manifest().get({NAME!r})
        p = fetch(e)
        assert file_sha256(p) == e.sha256
        print(p)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert {out.strip() for out, _ in results} == {str(isolated_cache / entry.file)}
    assert weights_server.hits[entry.file] == 1
    assert not _leftovers(isolated_cache)


def test_parallel_first_uses_of_a_failing_mirror_fail_together(weights_server, entry, isolated_cache):
    """Four processes, one failing mirror: those that waited take the downloader's failure instead
    of each making its own attempts after it (minutes, one after another, on a stalling mirror)."""
    import threading

    # the first answer is held until the other three are seen waiting: a process that came to the
    # lock after the first had given up rightly made its own attempts, and on a loaded machine one
    # had started that late
    weights_server.behaviour[entry.file] = "500-held"
    script = textwrap.dedent(
        f"""
        from sr_filter.errors import DownloadError
        from sr_filter.manifest import load_manifest
        from sr_filter.weights import fetch
        try:
            fetch(load_manifest().get({NAME!r}))
        except DownloadError as exc:
            print(exc)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), SR_FILTER_DOWNLOAD_RETRIES="5")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    errs: list[list[str]] = [[] for _ in procs]
    readers = [threading.Thread(target=lambda p=p, e=e: e.extend(p.stderr), daemon=True) for p, e in zip(procs, errs)]
    for r in readers:
        r.start()
    deadline = time.monotonic() + 120
    while sum(any("waiting for" in line for line in e) for e in errs) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    weights_server.gate.set()
    said = [p.communicate(timeout=300)[0] for p in procs]
    for r in readers:
        r.join(10)
    results = list(zip(said, ["".join(e) for e in errs]))
    assert all("could not download" in out for out in said), results
    waited = [out for out in said if out.startswith("the process this one waited for found: could not download")]
    assert len(waited) == 3 and weights_server.hits[entry.file] == 5, (results, weights_server.hits)
    assert not _leftovers(isolated_cache)


def test_a_failure_note_stays_until_every_waiting_process_has_read_it(weights_server, entry, isolated_cache, caplog):
    """The failed downloader removed its note 0.3 s after letting the lock go: a waiter that had not
    taken the lock by then (another waiter held it; a loaded machine) found no note and made a full
    set of attempts of its own (CI: 10 requests, not 5)."""
    import threading

    from sr_filter.download import note_failure, pass_on_failure
    from sr_filter.weights import source_urls

    weights_server.behaviour[entry.file] = "500"
    path = isolated_cache / entry.file
    isolated_cache.mkdir(exist_ok=True)
    downloader = CacheLock(path, timeout=0)  # the process whose download fails
    downloader.acquire()
    said: list[str] = []

    def waiter() -> None:
        try:
            fetch(entry)
        except DownloadError as exc:
            said.append(str(exc))

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 30
    while not any("waiting for" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.01)
    note_failure(path, source_urls(entry.file, entry.urls), DownloadError("could not download it (HTTP 500)"))
    downloader.release()
    other = CacheLock(path, timeout=0)  # another waiter takes the lock first, and lets it go a second later
    other.acquire()
    passing = threading.Thread(target=pass_on_failure, args=(path,))
    passing.start()
    time.sleep(1.0)
    other.release()
    thread.join(60)
    passing.join(10)
    assert said == ["the process this one waited for found: could not download it (HTTP 500)"]
    assert weights_server.hits[entry.file] == 0
    assert not _leftovers(isolated_cache)


def test_a_failure_from_other_addresses_or_of_another_kind_is_shared_only_as_it_was(weights_server, entry, isolated_cache):
    """The note had held the message alone: a waiting run with its own mirror took on another
    run's failure, and a no-network failure came back as a plain download error."""
    from sr_filter.download import failure_since, note_failure, note_state
    from sr_filter.errors import NetworkUnavailableError

    path = isolated_cache / entry.file
    isolated_cache.mkdir(exist_ok=True)
    before = note_state(path)
    gone = NetworkUnavailableError("could not download it (cannot connect)")
    gone.reason = "cannot connect"
    note_failure(path, ["http://127.0.0.1:1/mirror/x.pth"], gone)
    assert failure_since(path, before, ["http://127.0.0.1:2/other/x.pth"]) is None  # not the addresses this run uses
    shared = failure_since(path, before, ["http://127.0.0.1:1/mirror/x.pth"])
    assert isinstance(shared, NetworkUnavailableError) and shared.reason == "cannot connect"
    assert str(shared) == "the process this one waited for found: could not download it (cannot connect)"
    assert failure_since(path, note_state(path), ["http://127.0.0.1:1/mirror/x.pth"]) is None  # there before the wait


def test_waiting_for_another_download_is_said(weights_server, entry, isolated_cache, caplog):
    """A second process had waited for the first one's download without a word."""
    import threading

    from sr_filter.cachelock import CacheLock

    isolated_cache.mkdir(exist_ok=True)
    held = CacheLock(isolated_cache / entry.file, timeout=1)
    held.acquire()
    threading.Timer(0.5, held.release).start()
    with caplog.at_level("WARNING"):
        assert file_sha256(fetch(entry)) == entry.sha256
    assert f"waiting for process {os.getpid()}, which is downloading {entry.file}" in caplog.text  # the holder, by id
    caplog.clear()
    fetch(entry)
    assert "waiting" not in caplog.text


def test_a_wait_behind_a_download_without_progress_ends_naming_the_process(entry, isolated_cache, monkeypatch):
    """A download stopped with Ctrl-Z (here: a lock held with no part file growing) had made every
    other run wait for an hour without a word."""
    from sr_filter import download as download_module

    isolated_cache.mkdir(exist_ok=True)
    monkeypatch.setattr(download_module, "quiet_limit", lambda: 2.0)
    (isolated_cache / f".{entry.file}.0123abcd.part").write_bytes(b"half")
    with CacheLock(isolated_cache / entry.file, timeout=1):
        started = time.monotonic()
        with pytest.raises(DownloadError, match=rf"^process {os.getpid()} has been downloading {re.escape(entry.file)} into "
                                                r".* with no progress for [23] s \(stopped, or its connection hangs\)"):
            fetch(entry)
        assert 2 <= time.monotonic() - started < 6


def test_processes_that_waited_share_the_failure_they_waited_for(weights_server, entry, isolated_cache, monkeypatch):
    """Each process waiting behind a failing download had then made its own full set of attempts,
    one after another (on a stalling mirror: 93, 185 and 277 s for three runs)."""
    import threading

    isolated_cache.mkdir(exist_ok=True)
    weights_server.behaviour[entry.file] = "500"
    held = CacheLock(isolated_cache / entry.file, timeout=1)
    held.acquire()

    def fail_then_release() -> None:  # the holder's failed download from the same addresses, as fetch leaves it
        from sr_filter.download import note_failure
        from sr_filter.weights import source_urls

        note_failure(isolated_cache / entry.file, source_urls(entry.file, entry.urls),
                     DownloadError("could not download it (HTTP 500). Check the network"))
        held.release()

    threading.Timer(0.5, fail_then_release).start()
    with pytest.raises(DownloadError, match=r"^the process this one waited for found: could not download it \(HTTP 500\)"):
        fetch(entry)
    assert weights_server.hits[entry.file] == 0  # not tried again
    with pytest.raises(DownloadError, match="500"):  # a later run, which did not wait, tries for itself
        fetch(entry)
    assert weights_server.hits[entry.file] > 0
    weights_server.behaviour[entry.file] = None
    assert file_sha256(fetch(entry)) == entry.sha256
    assert not _leftovers(isolated_cache)  # the note goes with the success


def test_what_killed_runs_left_in_the_cache_goes(weights_server, entry, isolated_cache):
    # A download killed outright leaves its part file and a lock file no one holds; a conversion
    # killed mid-write left a hidden folder in the OpenVINO cache that nothing removed (a converted
    # face model: 67 MB each time). The next download sweeps the first two, the next conversion
    # the folder, and `models --clear-cache` all three.
    from click.testing import CliRunner

    from sr_filter.atomic import HOST_TAG, TEMP_PREFIX, TEMP_SUFFIX
    from sr_filter.backends import ov_cache
    from sr_filter.cli import cli

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    converted = ov_cache.default_folder()
    converted.mkdir(parents=True, exist_ok=True)
    orphan = converted / f"{TEMP_PREFIX}{dead}-{HOST_TAG}-abcd1234{TEMP_SUFFIX}"
    orphan.mkdir()
    (orphan / "model.bin").write_bytes(bytes(1000))
    live = converted / f"{TEMP_PREFIX}{os.getpid()}-{HOST_TAG}-live{TEMP_SUFFIX}"  # a writer still at work
    live.mkdir()

    def leave_download_debris():
        (isolated_cache / "other.pth.lock").write_text("")
        (isolated_cache / ".other.pth.0badc0de.part").write_bytes(bytes(100))

    leave_download_debris()
    os.utime(isolated_cache / ".other.pth.0badc0de.part", (1, 1))  # an hour old and more
    fetch(entry)
    assert not _leftovers(isolated_cache)
    leave_download_debris()  # a fresh part is left to the hour's rule; --clear-cache takes it
    result = CliRunner().invoke(cli, ["models", "--clear-cache"])
    assert result.exit_code == 0, result.output
    assert not _leftovers(isolated_cache) and not orphan.exists() and live.exists()
    assert not (isolated_cache / entry.file).exists()


def test_a_corrupt_file_is_removed_only_after_checking_again_under_the_lock(weights_server, entry, isolated_cache,
                                                                             monkeypatch):
    # Two runs: one saw a corrupt file and removed it without the lock, just after the other had
    # put the right file there and said "verified".
    from sr_filter import weights

    good = fetch(entry)
    checks = []
    real = weights._good

    def first_look_sees_it_corrupt(path, sha256, size):
        checks.append(path)
        return False if len(checks) == 1 else real(path, sha256, size)  # the other run fixes it meanwhile

    monkeypatch.setattr(weights, "_good", first_look_sees_it_corrupt)
    monkeypatch.setenv("SR_FILTER_OFFLINE", "1")
    assert fetch(entry) == good and file_sha256(good) == entry.sha256


def test_preset_falls_back_to_next_candidate(weights_server, monkeypatch, caplog):
    """A preset whose first model cannot be fetched uses the next one and says so."""
    from sr_filter import manifest as manifest_module

    data = manifest_module.load_manifest()
    photo = manifest_module.Preset("photo", ("realesr-general-x4v3", NAME))
    custom = manifest_module.Manifest(data.models, {**data.presets, "photo": photo}, "photo")
    model = load_model("photo", manifest=custom)  # the server has no realesr-general-x4v3.pth
    assert model.name == NAME
    assert f"using {NAME}@1 instead of realesr-general-x4v3@1, which could not be fetched" in caplog.text


def test_loading_never_runs_pickled_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"params": Evil()}, f)
    with pytest.raises(WeightsFormatError, match="is a plain Python pickle .* never run here"):
        load_state_dict(path)
    assert not marker.exists()


def test_files_that_are_no_checkpoint_are_named_for_what_they_are(tmp_path):
    """A text file named .safetensors had been '(101)', JSON 'pickled Python objects', a plain
    pickle '(Invalid magic number; corrupt file?)'."""
    (tmp_path / "readme.safetensors").write_text("This is a readme, not weights.\n")
    (tmp_path / "json.safetensors").write_text('{"a": 1}')
    (tmp_path / "plain.pth").write_bytes(pickle.dumps({}, protocol=2))
    (tmp_path / "empty.pth").write_bytes(b"")  # these two had been "not a PyTorch file"
    Image.new("RGB", (4, 4)).save(tmp_path / "picture.safetensors", "JPEG")
    for name, words in (("readme.safetensors", "is a text file, not model weights"),
                        ("json.safetensors", "is a text file, not model weights"),
                        ("empty.pth", "empty.pth is empty (0 bytes), not model weights"),
                        ("picture.safetensors", "picture.safetensors is a JPEG image, not model weights"),
                        ("plain.pth", "is a plain Python pickle (pickle.dump), not a file torch.save wrote")):
        with pytest.raises(WeightsFormatError, match=re.escape(words)):
            read_state(tmp_path / name)
    torch.save({"w": torch.zeros(2)}, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    assert set(load_state_dict(tmp_path / "old.pth")) == {"w"}  # torch's pre-zip format still reads


def test_state_dicts_pickled_with_other_protocols_load_or_say_which_protocol(tmp_path):
    """torch.save(..., pickle_protocol=4), zip or older format, had been "holds pickled Python
    objects (a whole model or a custom class)": torch's safe loader reads protocol 2 only. 3 to 5
    now load, the same tensors; 0 and 1 (the older format's text pickles had been "a text file")
    are named for what they are; code in such a file still never runs."""
    import numpy as np

    torch.manual_seed(0)
    state = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.randn(4), "n": torch.tensor(7)}
    for protocol in (3, 4, 5):
        for zipped in (True, False):
            path = tmp_path / f"p{protocol}{'z' if zipped else 'old'}.pth"
            checkpoint = {"params_ema": state, "epoch": np.int64(3), "name": "run one", "raw": b"\xff\x00"}
            torch.save(checkpoint, path, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
            got = load_state_dict(path)
            assert list(got) == list(state) and all(torch.equal(got[k], state[k]) for k in state), path.name
    for protocol in (0, 1):
        torch.save(state, tmp_path / "text.pth", pickle_protocol=protocol, _use_new_zipfile_serialization=False)
        with pytest.raises(WeightsFormatError, match=r"text.pth is pickled with protocol 0 or 1, in a form the safe loader "
                                                     r"does not read .* save it again with torch.save"):
            load_state_dict(tmp_path / "text.pth")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"params": Evil()}, tmp_path / "evil4.pth", pickle_protocol=4)
    with pytest.raises(WeightsFormatError, match=r"holds pickled Python objects \(io.open\)"):
        load_state_dict(tmp_path / "evil4.pth")
    assert not marker.exists()


def test_a_safetensors_header_length_that_reads_as_a_picture_signature_is_still_safetensors(tmp_path):
    """A header of 0x4D42 + k * 65536 bytes (normal for large models' headers) starts the file with
    "BM", and 0xD8FF with a JPEG's FF D8: such files had been refused as BMP and JPEG pictures."""
    from safetensors.torch import save_file

    for length in (0x4D42, 0x4D42 + 65536, 0xD8FF):
        path = tmp_path / f"w{length}.safetensors"
        save_file({"conv.weight": torch.ones(2, 3)}, str(path))
        data = path.read_bytes()
        size = int.from_bytes(data[:8], "little")
        header = data[8:8 + size].rstrip(b" ") + b" " * (length - len(data[8:8 + size].rstrip(b" ")))
        path.write_bytes(length.to_bytes(8, "little") + header + data[8 + size:])
        assert file_kind(path) == "safetensors", length
        assert torch.equal(read_state(path)["conv.weight"], torch.ones(2, 3))


def test_file_of_unknown_architecture(tmp_path):
    path = tmp_path / "classifier.pth"
    torch.save({"fc.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(3)}, path)
    with pytest.raises(WeightsFormatError, match="classifier.pth: not a known super-resolution architecture"):
        load_model(str(path))


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "text.pth"
    path.write_text("hello")
    with pytest.raises(WeightsFormatError, match="text.pth is a text file, not model weights"):
        load_model(str(path))


def test_mismatched_entry_settings_are_reported(tmp_path):
    from sr_filter.models import load_entry

    entry = load_manifest().get("realesr-general-x4v3")  # 32 body convs
    with pytest.raises(WeightsFormatError, match="does not fit its architecture"):
        load_entry(entry, require_shared(UPSTREAM / "realesr-animevideov3.pth"))  # 16 body convs


def test_cache_dir_env_override(isolated_cache):
    assert cache_dir() == isolated_cache


def test_a_cache_dir_of_an_unknown_users_home_is_one_line(monkeypatch):
    """pathlib raised RuntimeError ("Could not determine home directory"): a traceback."""
    monkeypatch.setenv("SR_FILTER_CACHE_DIR", "~no-such-user-here/x")
    with pytest.raises(SrFilterError, match="SR_FILTER_CACHE_DIR='~no-such-user-here/x': ~no-such-user-here names no user here"):
        cache_dir()


def test_a_state_dict_in_8_bit_floats_loads_and_its_damage_is_still_found(tmp_path):
    """An fp8 checkpoint (float8_e4m3fn / e5m2) had been "internal error (NotImplementedError:
    "isfinite" not implemented for 'Float8_e4m3fn')": the damage check now widens it first."""
    torch.manual_seed(0)
    state = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.randn(4)}
    for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        torch.save({k: v.to(dtype) for k, v in state.items()}, tmp_path / "fp8.pth")
        got = load_state_dict(tmp_path / "fp8.pth")
        assert all(torch.equal(got[k].float(), state[k].to(dtype).float()) for k in state)
        damaged = {k: v.to(dtype) for k, v in state.items()}
        damaged["conv.weight"][0, 0, 0, 0] = float("nan")
        torch.save(damaged, tmp_path / "nan8.pth")
        with pytest.raises(WeightsFormatError, match=r"nan8.pth holds NaN or infinite values \(conv.weight\)"):
            load_state_dict(tmp_path / "nan8.pth")
    model = load_model(str(require_shared(UPSTREAM / "realesr-animevideov3.pth")))
    rounded = {k: v.to(torch.float8_e4m3fn) for k, v in model.network.state_dict().items()}
    torch.save(rounded, tmp_path / "x4 fp8.pth")
    torch.save({k: v.float() for k, v in rounded.items()}, tmp_path / "x4 widened.pth")
    eight, widened = load_model(str(tmp_path / "x4 fp8.pth")), load_model(str(tmp_path / "x4 widened.pth"))
    assert eight.scale == 4 and eight.arch_name == model.arch_name
    x = torch.rand(1, 3, 12, 16)
    assert torch.equal(eight(x), widened(x))  # the network with its weights as the file holds them


def test_numbers_and_notes_beside_the_tensors_of_a_flat_state_dict_are_left_out(tmp_path):
    """{"conv.weight": ..., "epoch": 5, "note": "..."} had been "does not hold a state dict of
    tensors"; the weights load, and the network's strict load still checks them."""
    model = load_model(str(require_shared(UPSTREAM / "realesr-animevideov3.pth")))
    state = model.network.state_dict()
    torch.save({**state, "epoch": 5, "best_psnr": 27.5, "note": "run 3", "ema": None}, tmp_path / "flat extra.pth")
    loaded = load_model(str(tmp_path / "flat extra.pth"))
    x = torch.rand(1, 3, 12, 16)
    assert loaded.scale == 4 and torch.equal(loaded(x), model(x))
    torch.save({"conv.weight": torch.zeros(2), "optimizer": {"lr": 0.1}}, tmp_path / "nested.pth")  # not only numbers
    with pytest.raises(WeightsFormatError, match="nested.pth does not hold a state dict of tensors"):
        load_state_dict(tmp_path / "nested.pth")

"""GIMP 3 plug-in: worker protocol (no GIMP needed) and end-to-end in real headless GIMP.

The unit tests run the real worker subprocess with real weights. The end-to-end tests
install the plug-in into the gimp3-env chroot (`../shared/gimp3`) with our own installer,
run it through GIMP's PDB and compare with the library on this host; they skip when the
chroot is not set up (see scripts/gimp-e2e.sh, which sets it up and runs them).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sr_filter
from sr_filter.gimp import install as gimp_install, protocol as proto, worker as gimp_worker
from sr_filter.errors import SrFilterError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR_FILTER_SHARED", REPO.parent / "shared"))
WEIGHTS = SHARED / "weights" / "upstream" / "realesr-animevideov3.pth"
BABY = SHARED / "data" / "benchmarks" / "Set5" / "baby.png"
GIMP3_ENV = Path(os.environ.get("GIMP3_ENV_DIR", SHARED / "gimp3")) / "gimp3-env.sh"

needs_data = pytest.mark.skipif(not (WEIGHTS.is_file() and BABY.is_file()),
                                reason="shared weights/Set5 not found (set SR_FILTER_SHARED)")


def crop(h: int, w: int, y: int = 200, x: int = 180) -> np.ndarray:
    """A small real photo crop (RGB uint8)."""
    return np.asarray(Image.open(BABY).convert("RGB"))[y:y + h, x:x + w].copy()


def with_alpha(rgb: np.ndarray) -> np.ndarray:
    """RGBA: a diagonal alpha ramp from 30 to 255 (no fully transparent pixel)."""
    h, w = rgb.shape[:2]
    ramp = 30 + (np.add.outer(np.arange(h), np.arange(w)) * 225 // (h + w - 2)).astype(np.uint8)
    return np.dstack([rgb, ramp])


def worker_env() -> dict:
    """The worker must import this checkout's sr_filter (not pip-installed in the venv)."""
    return dict(proto.worker_env(), PYTHONPATH=str(REPO))


# -- protocol, no subprocess ---------------------------------------------------------------

def test_message_round_trip_keeps_header_and_pixels():
    a = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    info, data = gimp_worker.from_array(a)
    buf = io.BytesIO()
    proto.write_message(buf, {"version": 1, "images": [info]}, [data])
    buf.seek(0)
    header, payloads = proto.read_message(buf)
    assert header["images"] == [{"width": 3, "height": 2, "channels": 4, "dtype": "uint16"}]
    np.testing.assert_array_equal(gimp_worker.to_array(header["images"][0], payloads[0]), a)


def test_gray_2d_array_is_sent_as_one_channel():
    info, data = gimp_worker.from_array(np.zeros((5, 7), np.float32))
    assert (info["channels"], info["dtype"], len(data)) == (1, "float32", 5 * 7 * 4)


@pytest.mark.parametrize("entry, words", [
    ({"width": 2, "height": 2, "channels": 5, "dtype": "uint8"}, "5 channels"),
    ({"width": 2, "height": 2, "channels": 3, "dtype": "int32"}, "unknown dtype"),
    ({"width": 2, "height": 2, "channels": 3, "dtype": "uint8", "mask": True}, "\"mask\" is true, for one channel"),
    ({"width": 2, "height": 2, "channels": 1, "dtype": "uint8", "mask": 1}, "\"mask\" is true, for one channel"),
    ({"width": 2, "channels": 3, "dtype": "uint8"}, "bad image entry"),
])
def test_bad_image_entry_is_a_protocol_error(entry, words):
    with pytest.raises(proto.ProtocolError, match=words):
        proto.image_nbytes(entry)


@pytest.mark.parametrize("header, words", [
    ({"images": [{"width": True, "height": 2, "channels": 3, "dtype": "uint8"}]}, "must be integers"),
    ({"images": [{"width": 2, "height": 2, "channels": 3, "dtype": "uint8", "extra": 1}]}, "bad image entry"),
    ({"images": [{"width": 2, "height": 2, "channels": 3, "dtype": "uint8", "name": 7}]}, "the name must be a text"),
    ({"images": [{"width": 1 << 20, "height": 2, "channels": 3, "dtype": "uint8"}]}, "sides 1 to 524288"),
    ({"images": [{"width": 1, "height": 1, "channels": 1, "dtype": "uint8"}] * (proto.MAX_IMAGES + 1)}, "at most 10000"),
    ({"images": [], "options": {"scale": float("nan")}}, "scale must be above 0"),
    ({"images": [], "options": {"scale": -0.0}}, "scale must be above 0"),
    ({"images": [], "options": {"tile": -1}}, "tile must be"),
    ({"images": [], "options": {"model": ["a"]}}, "option 'model' must be a text"),
    ({"images": [], "options": {"colour": "red"}}, "unknown option 'colour'"),
    ({"images": [], "options": {"colour_fix": "yes"}}, "colour_fix must be true or false, not 'yes'"),
    ({"images": [], "options": {"tta": 1}}, "tta must be true or false, not 1"),
    ({"images": [], "options": {"precision": ["fp32"]}}, "option 'precision' must be a text"),
    ({"images": [], "request": "shutdown"}, "unknown request 'shutdown'"),
    ({"images": [], "version": "2"}, "protocol version '2'"),
    ({"images": [], "options": {"sizes": [[0, 4]]}}, "sizes must be a list of [width, height] pairs"),
    ({"images": [], "options": {"sizes": [[4, 4]]}}, "1 sizes for 0 images"),
])
def test_request_schema_refuses_each_bad_field(header, words):
    with pytest.raises(proto.ProtocolError, match=re.escape(words)):
        proto.check_request(dict({"version": proto.VERSION}, **header))


def test_layers_that_meet_on_the_canvas_still_meet_after_a_non_integer_scale():
    # three 3-pixel strips side by side at x1.5: each size rounded on its own (4, 4, 4) left
    # one-pixel gaps between them and at the canvas's right edge (14 pixels wide)
    boxes = [proto.scaled_box(x, 0, 3, 4, 1.5) for x in (0, 3, 6)]
    assert [(x, w) for x, _, w, _ in boxes] == [(0, 5), (5, 4), (9, 5)]
    assert boxes[-1][0] + boxes[-1][2] == proto.scaled(9, 1.5) == 14
    for x, w in [(-5, 7), (-9, 3), (0, 1), (7, 13)]:  # partly or wholly off the canvas, tiny
        nx, _, nw, _ = proto.scaled_box(x, 0, w, 1, 2.5)
        assert nw >= 1 and abs(nw - w * 2.5) <= 1 and nx == proto.scaled(x, 2.5)


def test_worker_fits_a_layer_to_the_size_asked_for_and_refuses_another_picture_size():
    a = np.arange(4 * 5 * 2, dtype=np.uint16).reshape(4, 5, 2)
    wide = gimp_worker.fit(a, 6, 3)
    assert wide.shape == (3, 6, 2) and (wide[:, :5] == a[:3]).all() and (wide[:, 5] == a[:3, 4]).all()
    assert gimp_worker.fit(a, 5, 4) is a
    with pytest.raises(proto.ProtocolError, match="asked for 9x4, but the layer upscaled is 5x4"):
        gimp_worker.fit(a, 9, 4)


def test_a_killed_worker_is_told_as_such_without_protocol_words():
    text = proto.crash_message("/venv/bin/python", -9, "no header line (stream ended ...)", ["loading model", ""])
    assert text == ("the sr-filter worker (/venv/bin/python) was stopped by signal 9 (SIGKILL: often the system "
                    "stopping it for lack of memory; try a smaller tile size or image)\nloading model")
    assert "header" not in proto.crash_message("python", 1, "no header line", ["Traceback ...", "ImportError: x"])
    assert "(header is not JSON)" in proto.crash_message("python", 0, "header is not JSON", [])


def test_truncated_payload_is_a_protocol_error():
    head = json.dumps({"images": [{"width": 4, "height": 4, "channels": 3, "dtype": "uint8"}]})
    with pytest.raises(proto.ProtocolError, match="expected 48 pixel bytes, got 10"):
        proto.read_message(io.BytesIO(head.encode() + b"\n" + bytes(10)))


def test_progress_lines_are_told_apart_from_log_lines():
    assert proto.parse_progress(proto.progress_line(1, 3, 8)) == (1, 3, 8)
    assert proto.parse_progress("UserWarning: something") is None
    assert proto.parse_progress('{"unrelated": 1}') is None


def test_worker_env_drops_gimps_python_settings():
    env = proto.worker_env({"PYTHONHOME": "/gimp", "PYTHONPATH": "/gimp/lib", "HOME": "/h"})
    assert "PYTHONHOME" not in env and "PYTHONPATH" not in env and env["HOME"] == "/h"


def test_scaled_matches_the_librarys_size_rounding():
    # halves round up, as GIMP's own Image > Scale does (31 x 1.5 = 46.5 gives 47, not 46)
    assert [proto.scaled(n, 2.5) for n in (0, 1, 3, 5, -3)] == [0, 3, 8, 13, -7]
    assert proto.scaled(31, 1.5) == 47 and proto.scaled(25, 1.14) == 29  # 28.499999999999996 in floating point
    assert proto.scaled(1, 0.1) == 1  # a size never collapses to 0
    from sr_filter.sizing import scaled_length

    for n in range(1, 200, 7):
        for scale in (0.1, 0.25, 1 / 3, 0.5, 1.14, 1.5, 2.5, 3.3, 4, 100 / 7):
            assert proto.scaled(n, scale) == scaled_length(n, scale), (n, scale)


def test_a_layer_whose_result_cannot_fit_is_refused_before_its_pixels_are_copied():
    """An 8000x8000 float layer at x4 was refused only after the plug-in and the worker had copied
    its pixels (2.9 GB in the plug-in for a 1 GiB layer): on a smaller machine the system's OOM
    killer came first. The plug-in now refuses from the sizes alone, naming the layer."""
    from sr_filter import limits

    gib = 1 << 30
    why = proto.too_large("Photo", 8000, 8000, 4, 4.0, available=20 * gib)
    assert why == ("layer 'Photo' is 8000x8000; upscaled x4 it would be 32000x32000 and need more than 22.9 GiB of "
                   "memory, but 20.0 GiB is free: choose a smaller scale, or crop or scale the image down first")
    # named as the Layers dialog shows it: quotes and accents as they are (repr had written 'a"b\\'c\\né'),
    # control characters escaped, a long name cut in the middle
    named = proto.too_large("a\"b'c\n\u00e9" + "x" * 300, 8000, 8000, 4, 4.0, available=20 * gib)
    assert named.startswith("layer 'a\"b'c\\n\u00e9xxx") and "xxx\u2026xxx" in named and len(named) < 250, named
    assert (proto.layer_label("a\\nb"), proto.layer_label("a\nb")) == ("layer 'a\\\\nb'", "layer 'a\\nb'")  # not the same text
    for channels in (1, 2, 3, 4):  # never refused where the worker's own estimate fits
        for itemsize in (1, 2, 4):
            for scale in (1.5, 4.0, 8.0):
                enough = limits.estimate_bytes(8000, 8000, channels, scale, itemsize)
                assert proto.too_large("x", 8000, 8000, channels, scale, available=enough) is None
    assert proto.too_large("small", 64, 48, 3, 8.0, available=20 * gib) is None
    free = proto.available_memory()
    assert free is None or free > 0  # measured where the system says


def test_upscale_options_carry_the_librarys_values():
    # The plug-in sends "auto" for its 0 (automatic); on the wire 0 is the library's whole image.
    kw, scale = gimp_worker.upscale_options({"preset": "face", "model": "", "scale": 2.0, "device": "cpu", "tile": "auto"})
    assert (kw, scale) == ({"model": "face", "device": "cpu", "backend": "auto", "tile": "auto"}, 2.0)
    kw, scale = gimp_worker.upscale_options({"preset": "face", "model": "/m.pth", "scale": None, "tile": 64})
    assert (kw, scale) == ({"model": "/m.pth", "device": "auto", "backend": "auto", "tile": 64}, None)
    kw, _ = gimp_worker.upscale_options({"tile": 0})
    assert kw == {"device": "auto", "backend": "auto", "tile": 0}  # no model: the library's default preset
    kw, _ = gimp_worker.upscale_options({"colour_fix": True})
    assert kw == {"device": "auto", "backend": "auto", "colour_fix": True}
    assert gimp_worker.upscale_options({"colour_fix": False})[0]["colour_fix"] is False  # off, even for cartoon
    assert "colour_fix" not in gimp_worker.upscale_options({})[0]  # the preset's choice
    kw, _ = gimp_worker.upscale_options({"tta": True, "precision": "bf16"})  # the dialog's, as the command line's --tta and --precision
    assert kw == {"device": "auto", "backend": "auto", "tta": True, "precision": "bf16"}
    assert gimp_worker.upscale_options({"tta": False}) == ({"device": "auto", "backend": "auto"}, None)
    with pytest.raises(proto.ProtocolError, match="scale must be above 0"):
        gimp_worker.upscale_options({"scale": 0})  # was silently the model's x4


def test_menu_choices_come_from_the_manifest():
    manifest = sr_filter.load_manifest()
    choices = gimp_worker.describe()
    nicks = [nick for nick, _, _ in choices["presets"]]
    assert nicks[:len(manifest.presets)] == list(manifest.presets) == ["photo", "cartoon", "face"]
    assert "sr-cartoon-x4" in nicks and choices["default"] == manifest.default_preset
    from sr_filter.tiling import MIN_TILE
    assert choices["min_tile"] == MIN_TILE == 32


# -- real worker subprocess, real weights --------------------------------------------------

@needs_data
@pytest.mark.parametrize("make", [  # built in the test: collection must not need the shared data
    lambda: crop(24, 32),                                               # RGB uint8
    lambda: with_alpha(crop(24, 32)),                                   # RGBA uint8
    lambda: crop(20, 24)[:, :, :1].astype(np.uint16) * 257,             # gray uint16
    lambda: with_alpha(crop(20, 24)).astype(np.float32) / 255,          # RGBA float32
], ids=["rgb8", "rgba8", "gray16", "rgbaf32"])
def test_worker_output_equals_library_output(make):
    array = make()
    options = {"model": str(WEIGHTS), "scale": 2.0, "device": "cpu", "tile": "auto"}
    seen = []
    results = proto.run_worker(sys.executable, options, [gimp_worker.from_array(array)],
                               progress=lambda i, d, t: seen.append((i, d, t)), env=worker_env())
    (info, data), = results
    got = gimp_worker.to_array(info, data)
    want = sr_filter.upscale(array, model=str(WEIGHTS), scale=2.0, device="cpu", tile="auto")
    want = want.reshape(want.shape[0], want.shape[1], -1)
    assert got.dtype == array.dtype and got.shape == want.shape == (array.shape[0] * 2, array.shape[1] * 2, array.shape[2])
    np.testing.assert_array_equal(got, want)
    assert seen and seen[-1][1] == seen[-1][2]  # progress reached the end


@needs_data
@pytest.mark.cold_conversion_cache  # the first worker converts
def test_worker_runs_without_torch_once_the_model_is_converted(tmp_path):
    """Each filter run starts a worker; on the CPU with OpenVINO, the second one needs no torch."""
    (tmp_path / "sitecustomize.py").write_text(
        "import atexit, os, sys\n"
        "atexit.register(lambda: open(os.environ['TORCH_REPORT'], 'a').write(str('torch' in sys.modules) + '\\n'))\n")
    env = dict(worker_env(), TORCH_REPORT=str(tmp_path / "report"))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    options = {"model": str(WEIGHTS), "scale": 4, "device": "auto", "backend": "auto"}  # the plug-in's defaults
    for _ in range(2):
        (info, _), = proto.run_worker(sys.executable, options, [gimp_worker.from_array(crop(16, 16))], env=env)
        assert (info["width"], info["height"]) == (64, 64)
    assert (tmp_path / "report").read_text().split() == ["True", "False"]


@needs_data
def test_worker_resizes_a_mask_to_its_layers_box_without_the_network():
    """A layer mask is resized (bicubic, as GIMP scales masks) to the size asked for, the box its
    layer's upscaled pixels fill; it does not go through the network."""
    mask = np.zeros((16, 20, 1), np.uint8)
    mask[:, 10:] = 255
    layer = crop(16, 20)
    results = proto.run_worker(sys.executable, {"model": str(WEIGHTS), "scale": 1.5, "device": "cpu", "sizes": [[30, 24], [30, 24]]},
                               [gimp_worker.from_array(layer), (dict(gimp_worker.from_array(mask)[0], mask=True), mask.tobytes())],
                               env=worker_env())
    (info, data) = results[1]
    assert (info["width"], info["height"], info["channels"], info["dtype"]) == (30, 24, 1, "uint8")
    out = np.frombuffer(bytes(data), np.uint8).reshape(24, 30)
    assert (out[:, :14] == 0).all() and (out[:, 16:] == 255).all() and (out == out[0]).all()
    deep = gimp_worker.resized_mask(np.full((4, 4, 1), 40000, np.uint16), 6, 6)
    assert deep.dtype == np.uint16 and deep.shape == (6, 6, 1) and (deep == 40000).all()


def test_worker_names_its_own_python_in_install_advice():
    """GIMP's user has several Pythons: a plain `pip install` rarely reaches the worker's."""
    said = gimp_worker.for_gimp_user("needs the spandrel package; install it with: pip install --no-deps spandrel==0.4.2")
    assert said == "needs the spandrel package; install it with: %s -m pip install --no-deps spandrel==0.4.2" % sys.executable
    assert gimp_worker.for_gimp_user("run python3 -m pip install x") == "run python3 -m pip install x"
    assert gimp_worker.for_gimp_user("or uv pip install x") == "or uv pip install x"


def test_a_server_remembered_as_unreachable_is_told_with_a_command_a_gimp_user_can_run(tmp_path):
    """The fallback warning had said "set SR_FILTER_OFFLINE=0 to try now", which GIMP does not pass on."""
    from sr_filter import netmemory
    from sr_filter.manifest import load_manifest
    from sr_filter.weights import source_urls

    cache = tmp_path / "cache"
    cache.mkdir()
    entry = load_manifest().get("RealESRGAN_x4plus")
    netmemory.remember(cache, source_urls(entry.file, entry.urls), reachable=False)  # the mirror the tests set, if any
    warnings: list = []
    env = dict(worker_env(), SR_FILTER_CACHE_DIR=str(cache))
    env.pop("SR_FILTER_OFFLINE", None)
    proto.run_worker(sys.executable, {"preset": "face", "device": "cpu"},
                     [gimp_worker.from_array(np.zeros((8, 8, 3), np.uint8))], env=env, warnings=warnings)
    said = [line for line in warnings if "instead of RealESRGAN_x4plus" in line]
    assert said and "`sr-filter models --download RealESRGAN_x4plus` in a terminal fetches it now" in said[0], warnings
    assert "SR_FILTER_OFFLINE" not in said[0]


def test_worker_handles_several_layers_in_one_run():
    if not (BABY.is_file() and WEIGHTS.is_file()):
        pytest.skip(f"shared data not found at {SHARED} (set SR_FILTER_SHARED)")
    a, b = crop(16, 16), with_alpha(crop(12, 20))
    results = proto.run_worker(sys.executable, {"model": str(WEIGHTS), "scale": 4, "device": "cpu"},
                               [gimp_worker.from_array(a), gimp_worker.from_array(b)], env=worker_env())
    assert [(i["width"], i["height"], i["channels"]) for i, _ in results] == [(64, 64, 3), (80, 48, 4)]


def test_worker_reports_the_librarys_message_for_a_missing_model(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(SrFilterError) as lib:
        sr_filter.upscale(crop(8, 8) if BABY.is_file() else np.zeros((8, 8, 3), np.uint8), model=str(missing))
    with pytest.raises(proto.WorkerError) as worker:
        proto.run_worker(sys.executable, {"model": str(missing)},
                         [gimp_worker.from_array(np.zeros((8, 8, 3), np.uint8))], env=worker_env())
    assert str(worker.value) == str(lib.value) and worker.value.kind == type(lib.value).__name__


def test_worker_sends_the_librarys_warnings_for_the_plugin_to_show():
    # the command line prints these; the plug-in had no way to see them (a fallback model, clipping)
    warnings = []
    image = np.full((8, 8, 3), 200.0, np.float32)  # 0..255 values in a float image: a likely mistake
    (info, _), = proto.run_worker(sys.executable, {"model": "sr-cartoon-x4", "device": "cpu", "scale": 2.0},
                                  [gimp_worker.from_array(image)], env=worker_env(), warnings=warnings)
    assert (info["width"], info["height"]) == (16, 16)
    assert any("for 0..255 data divide by 255 first" in line for line in warnings), warnings


def test_worker_imports_sr_filter_the_same_way_from_any_folder(tmp_path):
    # `python -m` puts the current folder first on sys.path; GIMP starts the worker from its own
    # folder, so a stray sr_filter there must not be what runs (nor make the installer's check pass)
    (tmp_path / "sr_filter").mkdir()
    (tmp_path / "sr_filter" / "__init__.py").write_text("raise SystemExit('the wrong sr_filter')\n")
    env = proto.worker_env()
    script = "import os, sys; from sr_filter.gimp import protocol; os.chdir(sys.argv[1]); print(protocol.describe_worker(sys.argv[2])['default'])"
    p = subprocess.run([sys.executable, "-c", script, str(tmp_path), sys.executable], capture_output=True, text=True,
                       env=dict(env, PYTHONPATH=str(REPO)), timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "photo", p.stderr


def test_installer_refuses_a_python_that_has_sr_filter_only_from_the_folder_it_runs_in(tmp_path):
    # Run from a checkout with the venv's packages on PYTHONPATH, this Python imported sr_filter
    # and passed the installer's check; GIMP's worker (no PYTHONPATH, another folder) then failed.
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    site = [p for p in sys.path if p.endswith("site-packages")]
    p = subprocess.run([str(bare / "bin" / "python"), "-m", "sr_filter.gimp.install", "--gimp-dir", str(tmp_path / "3.0")],
                       cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(proto.worker_env(), PYTHONPATH=os.pathsep.join(site)))
    assert p.returncode == 1 and "cannot run the sr-filter worker" in p.stderr and "sr_filter" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "3.0" / "plug-ins").exists()


def test_worker_rejects_a_bad_request_with_one_clear_line():
    p = subprocess.run([sys.executable, "-m", proto.WORKER_MODULE], input=b"not json\n",
                       capture_output=True, env=worker_env(), timeout=120)
    reply = json.loads(p.stdout.decode().splitlines()[0])
    assert p.returncode == 1 and reply["ok"] is False and "header is not JSON" in reply["error"]


def _frame(header: dict, payload: bytes = b"") -> bytes:
    return json.dumps(header).encode() + b"\n" + payload


_OPTS = {"model": "sr-cartoon-x4", "device": "cpu"}  # built in: nothing to download
_TINY = {"width": 2, "height": 2, "channels": 3, "dtype": "uint8"}
_HEAD = {"version": proto.VERSION, "options": _OPTS}
MALFORMED = {
    "no-images": (_frame(_HEAD), "no 'images' list"),
    "images-is-a-number": (_frame(dict(_HEAD, images=5)), "'images' must be a list"),
    "options-is-a-number": (_frame(dict(_HEAD, options=5, images=[_TINY]), bytes(12)), "'options' must be an object"),
    "scale-is-text": (_frame(dict(_HEAD, options=dict(_OPTS, scale="abc"), images=[_TINY]), bytes(12)),
                      "scale must be a number"),
    "scale-zero": (_frame(dict(_HEAD, options=dict(_OPTS, scale=0), images=[_TINY]), bytes(12)), "scale must be above 0"),
    "tile-is-text": (_frame(dict(_HEAD, options=dict(_OPTS, tile="abc"), images=[_TINY]), bytes(12)), "tile must be"),
    "width-is-text": (_frame(dict(_HEAD, images=[dict(_TINY, width="2")]), bytes(12)), "must be integers"),
    "deep-nesting": (b'{"version": %d, "options": ' % proto.VERSION + b"[" * 100000 + b"]" * 100000 + b"}\n",
                     "nested too deeply"),
    # 1 KB of pixels for a 30000x30000 RGBA float image (14.4 GB): refused by size, nothing reserved
    "huge-float-image": (_frame(dict(_HEAD, images=[dict(_TINY, width=30000, height=30000, channels=4, dtype="float32")]),
                                bytes(1024)), "at most 4 GiB per run: work on a crop or a lower bit depth"),
    # 8-bit already: no lower depth to advise (it had been advised)
    "huge-8-bit-layers": (_frame(dict(_HEAD, images=[dict(_TINY, width=20000, height=20000, channels=4)] * 3), bytes(1024)),
                          "at most 4 GiB per run: work on a crop, or on fewer layers at a time"),
    # within the size bound (3.6 GB) but only 1 KB sent: read in chunks, so memory follows the data
    "short-huge-image": (_frame(dict(_HEAD, images=[dict(_TINY, width=30000, height=30000, channels=4)]), bytes(1024)),
                         "expected 3600000000 pixel bytes, got 1024"),
}


def _limit_address_space() -> None:
    """3 GiB of virtual memory: the worker with torch needs about 0.7; a 3.6 GB buffer cannot fit."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.mark.parametrize("name", list(MALFORMED))
def test_worker_answers_a_malformed_request_with_one_protocol_error_line(name):
    frame, words = MALFORMED[name]
    p = subprocess.run([sys.executable, "-m", proto.WORKER_MODULE], input=frame, capture_output=True,
                       env=worker_env(), timeout=120, preexec_fn=_limit_address_space)
    reply = json.loads(p.stdout.decode().splitlines()[0])
    assert p.returncode == 1 and reply["ok"] is False, reply
    assert reply["kind"] == "ProtocolError" and words in reply["error"], reply
    assert "\n" not in reply["error"] and b"Traceback" not in p.stderr, p.stderr.decode()[-2000:]


def test_worker_refuses_a_layer_whose_upscale_cannot_fit_in_memory_before_running():
    # 6000x6000 grey at x16 is 96000x96000 (about 360 GB by the library's estimate): refused
    # with the library's message, not killed for lack of memory after minutes of work.
    info, data = gimp_worker.from_array(np.zeros((6000, 6000), np.uint8))
    t0 = time.monotonic()
    with pytest.raises(proto.WorkerError) as exc:
        proto.run_worker(sys.executable, dict(_OPTS, scale=16.0), [(info, data)], env=worker_env())
    assert exc.value.kind == "ImageTooLargeError" and "layer 1 is 6000x6000" in str(exc.value)
    assert time.monotonic() - t0 < 60
    with pytest.raises(proto.WorkerError, match="layer 'Scan 2' is 6000x6000"):  # named as the Layers dialog shows it
        proto.run_worker(sys.executable, dict(_OPTS, scale=16.0), [(dict(info, name="Scan 2"), data)], env=worker_env())


def test_worker_counts_the_results_it_holds_against_later_layers(monkeypatch):
    """Each layer's result waits for the last one, but each layer had been checked against all the
    free memory: a many-layer image could run for long and then be killed for lack of it."""
    from sr_filter import limits

    info, data = gimp_worker.from_array(np.zeros((64, 64, 3), np.uint8))
    alone = limits.estimate_bytes(64, 64, 3, 4.0, 1, model_scale=4)
    result = 256 * 256 * 3 - 64 * 64 * 3  # what the first layer holds once its own pixels are let go
    monkeypatch.setattr(gimp_worker, "available_ram", lambda: alone + result // 2)

    def serve(count: int) -> dict:
        request, reply = io.BytesIO(), io.BytesIO()
        proto.write_message(request, {"version": proto.VERSION, "request": "upscale", "options": dict(_OPTS, scale=4.0),
                                      "images": [info] * count}, [data] * count)
        request.seek(0)
        gimp_worker.serve(request, reply, io.StringIO())
        return proto.read_message(io.BytesIO(reply.getvalue()))[0]

    assert serve(1)["ok"]
    head = serve(2)
    assert not head["ok"] and head["kind"] in ("ImageTooLargeError", "InputTooLargeError"), head
    assert head["error"].startswith("layer 2 is 64x64") and "(the result before it, kept until the last one is done, takes 0.2 MiB)" in head["error"]


def test_plugin_from_an_older_version_is_told_to_reinstall():
    # Plug-ins installed by an earlier sr-filter start the old module with protocol version 1.
    frame = _frame({"version": 1, "options": _OPTS, "images": [_TINY]}, bytes(12))
    p = subprocess.run([sys.executable, "-m", "sr_filter.gimp_worker"], input=frame, capture_output=True,
                       env=worker_env(), timeout=120)
    reply = json.loads(p.stdout.decode().splitlines()[0])
    assert reply["ok"] is False and reply["kind"] == "ProtocolError"
    assert "python -m sr_filter.gimp.install" in reply["error"] and "restart GIMP" in reply["error"]


def test_worker_describes_the_menu_choices_through_the_protocol():
    assert proto.describe_worker(sys.executable, env=worker_env()) == gimp_worker.describe()


@needs_data
def test_stray_prints_during_inference_do_not_corrupt_the_reply():
    # Stands in for a dependency that prints to stdout (torch.hub and friends do): the
    # worker moves print() to the log before it runs the library.
    wrapper = ("import runpy, sr_filter\n"
               "orig = sr_filter.Upscaler.upscale\n"
               "def noisy(self, *a, **k):\n"
               "    print('stray output from a dependency')\n"
               "    return orig(self, *a, **k)\n"
               "sr_filter.Upscaler.upscale = noisy\n"
               "runpy.run_module('sr_filter.gimp.worker', run_name='__main__')\n")
    request = io.BytesIO()
    info, data = gimp_worker.from_array(crop(8, 8))
    proto.write_message(request, {"version": proto.VERSION, "options": {"model": str(WEIGHTS), "device": "cpu"},
                                  "images": [info]}, [data])
    p = subprocess.run([sys.executable, "-c", wrapper], input=request.getvalue(), capture_output=True,
                       env=worker_env(), timeout=300)
    header, payloads = proto.read_message(io.BytesIO(p.stdout))
    assert header["ok"] and header["images"][0]["width"] == 32 and len(payloads[0]) == 32 * 32 * 3
    assert b"stray output" in p.stderr


def test_worker_that_cannot_start_is_reported(tmp_path):
    """The message had been the raw OSError ("[Errno 2] No such file or directory: ...") with no way out."""
    with pytest.raises(proto.WorkerError, match="cannot start the sr-filter worker") as exc:
        proto.run_worker(str(tmp_path / "no-python"), {}, [gimp_worker.from_array(np.zeros((2, 2), np.uint8))])
    assert "(No such file or directory): run `python -m sr_filter.gimp.install` again" in str(exc.value)
    assert "[Errno" not in str(exc.value) and "\n" not in str(exc.value)


def test_worker_crash_is_reported_with_its_log(tmp_path):
    fake = tmp_path / "python"  # an interpreter that dies at once: stands in for a crash
    fake.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n")
    fake.chmod(0o755)
    with pytest.raises(proto.WorkerError, match="(?s)status 139.*Segmentation fault"):
        proto.run_worker(str(fake), {}, [gimp_worker.from_array(np.zeros((2, 2), np.uint8))])


def _fake_python(tmp_path: Path, name: str, body: str) -> str:
    fake = tmp_path / name
    fake.write_text("#!/bin/sh\n" + body + "\n")
    fake.chmod(0o755)
    return str(fake)


def test_a_worker_python_without_sr_filter_is_one_line(tmp_path):
    """A venv that lost sr-filter (uninstalled, rebuilt): GIMP had shown two Python tracebacks."""
    python = _fake_python(tmp_path, "python", 'exec %s -I -S "$@"' % sys.executable)  # no site-packages: no sr_filter
    with pytest.raises(proto.WorkerError) as exc:
        proto.run_worker(python, {}, [gimp_worker.from_array(np.zeros((2, 2), np.uint8))])
    text = str(exc.value)
    assert text.startswith("the Python that runs the sr-filter worker (%s) cannot import sr_filter (No module named" % python)
    assert "python -m sr_filter.gimp.install" in text and "Traceback" not in text and "\n" not in text, text
    assert exc.value.kind == "ImportError"


@needs_data
def test_a_worker_without_torch_says_what_to_install(tmp_path):
    """torch missing from the worker's Python had been an "internal error in sr-filter"."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nclass _NoTorch:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
        "sys.meta_path.insert(0, _NoTorch())\n")
    python = _fake_python(tmp_path, "python", 'PYTHONPATH=%s:%s exec %s "$@"' % (blocker, REPO, sys.executable))
    with pytest.raises(proto.WorkerError) as exc:
        proto.run_worker(python, {"model": str(WEIGHTS), "device": "cpu", "backend": "torch"},
                         [gimp_worker.from_array(crop(8, 8))], env=proto.worker_env())
    text = str(exc.value)
    assert text.startswith("cannot load torch (No module named 'torch'); reinstall sr-filter"), text
    assert "internal error" not in text and "(the plug-in's worker runs " in text


def test_a_reply_the_plugin_does_not_know_is_one_line(tmp_path):
    """A worker from another sr-filter version answering without images had been "KeyError: 'images'"."""
    answer = tmp_path / "answer.py"
    answer.write_text("import sys\nsys.stdin.buffer.read()\nfrom sr_filter.gimp import protocol as p\n"
                      "p.write_message(sys.stdout.buffer, {'ok': True, 'garbage': 1})\n")
    python = _fake_python(tmp_path, "python", "PYTHONPATH=%s exec %s %s" % (REPO, sys.executable, answer))
    with pytest.raises(proto.WorkerError, match="answered in a form this plug-in does not know: run `python -m "
                                                "sr_filter.gimp.install` with that Python") as exc:
        proto.run_worker(python, {}, [gimp_worker.from_array(np.zeros((2, 2), np.uint8))])
    assert exc.value.kind == "ProtocolError"


@needs_data
def test_cancel_from_progress_stops_the_worker():
    with pytest.raises(proto.WorkerError) as exc:
        proto.run_worker(sys.executable, {"model": str(WEIGHTS), "device": "cpu", "tile": 32},
                         [gimp_worker.from_array(crop(96, 96))], progress=lambda i, d, t: False, env=worker_env())
    assert exc.value.kind == "CancelledError"


def _children(pid: int) -> list:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@needs_data
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc to find the worker")
def test_worker_stops_when_the_plugin_process_is_killed():
    # GIMP cancels a plug-in by killing it (gimp_plug_in_close): the worker must notice at its
    # next progress line and exit instead of finishing (the whole image takes about a minute).
    script = (
        "import sys, numpy as np\n"
        "from PIL import Image\n"
        "from sr_filter.gimp import protocol as p, worker as w\n"
        "a = np.asarray(Image.open(%r).convert('RGB'))\n"
        "p.run_worker(sys.executable, {'model': %r, 'device': 'cpu', 'tile': 64, 'scale': 4},\n"
        "             [w.from_array(a)], progress=lambda i, d, t: print(d, flush=True), env=dict(%r))\n"
    ) % (str(BABY), str(WEIGHTS), worker_env())
    plugin = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=worker_env())
    try:
        assert plugin.stdout.readline().strip()  # one tile done: the worker is busy
        workers = _children(plugin.pid)
        assert workers, "worker process not found"
    finally:
        plugin.kill()
        plugin.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "worker kept running after the plug-in died"


# -- installer -------------------------------------------------------------------------------

def test_install_copies_plugin_protocol_and_config(tmp_path):
    path = gimp_install.install(tmp_path / "3.0", sys.executable)
    assert path == tmp_path / "3.0" / "plug-ins" / "sr-filter" / "sr-filter.py"
    assert path.stat().st_mode & 0o777 == 0o755
    assert (path.parent / "gimp_protocol.py").read_text() == Path(proto.__file__).read_text()
    assert proto.python_from_config(str(path.parent / "sr-filter.json")) == sys.executable
    # the plug-in's menu, written for it so that it registers without starting the worker
    assert proto.choices_from_config(str(path.parent / "sr-filter.json")) == gimp_worker.describe()


def test_install_refuses_a_gimp_2_profile(tmp_path):
    """--gimp-dir ~/.config/GIMP/2.10 had installed a plug-in GIMP 2.10 never shows, without a word."""
    with pytest.raises(SrFilterError, match=r"is the profile of GIMP 2\.10; the plug-in needs GIMP 3"):
        gimp_install.install(tmp_path / "2.10", sys.executable)
    assert not (tmp_path / "2.10").exists()
    assert gimp_install.install(tmp_path / "3.2", sys.executable).is_file()  # a later GIMP 3 (or 4) is not refused


def test_install_resolves_an_interpreter_name_on_path(tmp_path, monkeypatch):
    bin_dir, name = os.path.split(sys.executable)  # a venv's python: a link that must be kept as named
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ["PATH"])
    path = gimp_install.install(tmp_path / "3.0", name, env=worker_env())
    config = str(path.parent / "sr-filter.json")
    assert proto.python_from_config(config) == os.path.join(bin_dir, name) == shutil.which(name)
    # asked through the worker protocol: the same menu as this interpreter's
    assert proto.choices_from_config(config) == gimp_worker.describe()


def test_install_refuses_an_interpreter_that_cannot_run_the_worker(tmp_path):
    with pytest.raises(SrFilterError, match="sh cannot run the sr-filter worker"):
        gimp_install.install(tmp_path, "sh")  # on PATH, but not a Python with sr-filter
    assert not (tmp_path / "plug-ins").exists()


def test_install_refuses_a_missing_interpreter(tmp_path):
    with pytest.raises(SrFilterError, match="Python interpreter not found"):
        gimp_install.install(tmp_path, str(tmp_path / "python9"))


def test_default_gimp_dir_per_platform(tmp_path):
    env = {"APPDATA": str(tmp_path / "roaming"), "XDG_CONFIG_HOME": ""}
    assert gimp_install.gimp_config_root("win32", env, tmp_path) == tmp_path / "roaming" / "GIMP"
    assert gimp_install.gimp_config_root("darwin", env, tmp_path) == tmp_path / "Library/Application Support/GIMP"
    assert gimp_install.gimp_config_root("linux", env, tmp_path) == tmp_path / ".config" / "GIMP"
    root = tmp_path / "GIMP"
    assert gimp_install.default_gimp_dir(root) == root / "3.0"
    for v in ("2.10", "3.0", "3.2"):
        (root / v).mkdir(parents=True)
    assert gimp_install.default_gimp_dir(root) == root / "3.2"


def test_install_command_line(tmp_path):
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "sr_filter.gimp.install", "--gimp-dir", str(tmp_path)],
                       capture_output=True, text=True, env=worker_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "plug-ins" / "sr-filter" / "sr-filter.py").is_file() and "installed" in p.stdout
    # the installer is below the CLI: it never imports it (no import circle with cli/gimp.py)
    imported = [line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")]
    assert "sr_filter.gimp.protocol" in imported and not [m for m in imported if m.startswith(("sr_filter.cli", "click"))]


# -- end to end in real GIMP 3 -----------------------------------------------------------------

def _gimp_ready() -> str:
    """Empty if the chroot can be used, else why not."""
    if not os.environ.get("GIMP3_ROOT"):
        return "GIMP3_ROOT is not set (run scripts/gimp-e2e.sh)"
    if os.geteuid() != 0:
        return "gimp3-env.sh needs root"
    if not GIMP3_ENV.is_file():
        return "%s not found" % GIMP3_ENV
    if subprocess.run([str(GIMP3_ENV), "status"], capture_output=True).returncode != 0:
        return "GIMP 3 chroot not set up (gimp3-env.sh status failed; run scripts/gimp-e2e.sh)"
    return ""


def _chroot(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    p = subprocess.run([str(GIMP3_ENV), *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, "gimp3-env.sh %s failed:\n%s\n%s" % (args[0], p.stdout[-3000:], p.stderr[-3000:])
    return p


@pytest.fixture(scope="module")
def gimp_run(tmp_path_factory):
    """Install the plug-in in the chroot with our installer, run all GIMP cases in one batch."""
    why = _gimp_ready()
    if why and os.environ.get("SR_FILTER_REQUIRE_GIMP"):  # set by scripts/gimp-e2e.sh
        pytest.fail(why)
    if why:
        pytest.skip(why)
    if not (WEIGHTS.is_file() and BABY.is_file()):
        pytest.skip("shared weights/Set5 not found (set SR_FILTER_SHARED)")
    work = tmp_path_factory.mktemp("gimp")
    probe = _chroot("run", "python3", "-c", "import torch, sr_filter.gimp.worker", cwd=work)
    _chroot("run", "python3", "-m", "sr_filter.gimp.install", cwd=work)  # HOME=/job-home in the chroot
    shutil.copyfile(WEIGHTS, work / "model.pth")
    rgb, rgba = crop(40, 48), with_alpha(crop(36, 40, 120, 220))
    gray16 = crop(32, 40, 60, 260)[:, :, 1].astype(np.uint16) * 257 + 128
    Image.fromarray(rgb).save(work / "rgb.png")
    Image.fromarray(rgba).save(work / "rgba.png")
    Image.fromarray(gray16).save(work / "gray16.png")  # PIL writes mode I;16 as 16-bit grey PNG
    layer = with_alpha(crop(16, 20, 300, 100))
    (work / "layer.raw").write_bytes(layer.tobytes())
    model = "/job/model.pth"
    cases = [
        {"name": "rgb", "input": "rgb.png", "output": "rgb_out.png",
         "args": {"preset": "cartoon", "model": model, "scale": 4.0, "device": "cpu", "tile": 32},
         "extra_layer": {"raw": "layer.raw", "size": [20, 16], "offset": [5, 7]}},
        {"name": "rgba", "input": "rgba.png", "output": "rgba_out.png",
         "args": {"preset": "face", "model": model, "scale": 2.5, "device": "cpu", "tile": 48},
         "select": [4, 6, 10, 8], "lock_alpha": True},
        {"name": "gray16", "input": "gray16.png", "output": "gray16_out.png",  # the preset menu's model-file entry
         "args": {"preset": "file", "model": model, "scale": 3.0, "device": "cpu", "tile": 0}},
        {"name": "float", "input": "rgba.png", "output": "float_out.png", "precision": "FLOAT_NON_LINEAR",
         "dump_format": "R'G'B'A float",
         "args": {"model": model, "scale": 2.0, "device": "cpu", "tile": 40}},
        {"name": "builtin", "input": "rgb.png", "output": "builtin_out.png",
         "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu", "tile": 0}},
        # a selection and a channel of the user's: the layer chosen before stays chosen (the channel had
        # become the active drawable, so the next brush stroke went into it)
        {"name": "chosen", "input": "rgb.png", "output": "chosen_out.png", "select": [4, 4, 10, 10], "user_channel": True,
         "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu", "tile": 0}},
        # 8-bit linear light: sent as perceptual 8-bit, only even levels came back near white
        {"name": "u8-linear", "input": "rgb.png", "output": "u8_linear_out.png", "precision": "U8_LINEAR",
         "dump_format": "RGBA u8", "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu", "tile": 0}},
        {"name": "colour-fix", "input": "rgb.png", "output": "colour_fix_out.png",
         "args": {"preset": "sr-cartoon-x4", "scale": 4.0, "device": "cpu", "tile": 0, "colour-fix": "on"}},
        # the dialog's precision and TTA reach the library, as the command line's --precision and --tta
        {"name": "tta", "input": "rgb.png", "output": "tta_out.png",
         "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu", "tile": 0, "tta": True, "precision": "fp32"}},
        {"name": "bad-weights", "input": "rgb.png", "output": "never.png",
         "args": {"model": "/job/bad.pth", "scale": 4.0, "device": "cpu"}},
        {"name": "no-gpu", "input": "rgb.png", "output": "never.png",
         "args": {"model": model, "scale": 4.0, "device": "cuda"}},
        {"name": "locked", "input": "rgb.png", "output": "never.png", "lock": True,
         "args": {"model": model, "scale": 4.0, "device": "cpu"}},
        {"name": "missing-model", "input": "rgb.png", "output": "never.png",
         "args": {"model": "/job/missing.pth", "scale": 4.0, "device": "cpu"}},
        {"name": "small-tile", "input": "rgb.png", "output": "never.png",
         "args": {"model": model, "scale": 4.0, "device": "cpu", "tile": 16}},
        # an Adobe RGB image: its pixels must not go through sRGB (they came back shifted and clipped)
        {"name": "icc", "input": "rgb.png", "output": "icc_out.png", "profile": "a98.icc", "dump_native": True,
         "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu", "tile": 0}},
        # three layers that tile the canvas: at x1.5 each one's size was rounded alone, leaving gaps
        {"name": "strips", "make": {"kind": "strips", "count": 3, "width": 3, "height": 4}, "output": "strips_out.png",
         "composite_alpha": True, "args": {"preset": "sr-cartoon-x4", "scale": 1.5, "device": "cpu", "tile": 0}},
        # linear light above white (a highlight 4x white) was clipped to 1.0
        {"name": "hdr", "make": {"kind": "float", "values": [4.0, 2.0, 0.5], "size": 12}, "output": "hdr_out.png",
         "dump_linear": True, "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu", "tile": 0}},
        # float values that look like 0..255 data: the library's warning must reach the user
        {"name": "warning", "make": {"kind": "float", "values": [200.0, 200.0, 200.0], "size": 8, "ramp": False,
                                      "perceptual": True},
         "output": "warning_out.png", "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu", "tile": 0}},
        {"name": "floating", "input": "rgb.png", "output": "never.png", "floating": True,
         "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu"}},
        {"name": "indexed", "input": "rgb.png", "output": "never.png", "indexed": True,
         "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu"}},
        {"name": "no-image", "no_image": True, "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu"}},
        {"name": "file-without-file", "input": "rgb.png", "output": "never.png",
         "args": {"preset": "file", "scale": 2.0, "device": "cpu"}},
        # a masked layer in a masked group at x1.5: GIMP scaled each mask into its own box for the
        # layer, a pixel off the layer's new one, leaving the mask shifted and a transparent seam
        {"name": "masks", "input": "rgb.png", "output": "masks_out.png", "masks": True,
         "extra_layer": {"raw": "layer.raw", "size": [20, 16], "offset": [5, 7]},
         "args": {"preset": "sr-cartoon-x4", "scale": 1.5, "device": "cpu", "tile": 0}},
        {"name": "empty-masked-group", "input": "rgb.png", "output": "empty_group_out.png", "empty_masked_group": True,
         "args": {"preset": "sr-cartoon-x4", "scale": 2.0, "device": "cpu", "tile": 0}},
        # GIMP refuses a canvas side over 524288 pixels: the layers had been upscaled off the canvas
        {"name": "over-gimp-limit", "input": "rgb.png", "output": "never.png", "canvas": [70000, 40],
         "args": {"preset": "sr-cartoon-x4", "scale": 8.0, "device": "cpu", "tile": 0}},
    ]
    shutil.copyfile(Path(os.environ["GIMP3_ROOT"]) / "usr/share/color/icc/ghostscript/a98.icc", work / "a98.icc")
    (work / "bad.pth").write_bytes(b"this is not a weights file\n")
    (work / "args.json").write_text(json.dumps({"cases": cases}))
    batch = _chroot("batch", str(REPO / "tests" / "gimp_e2e_batch.py"), str(work), cwd=work)
    report = json.loads((work / "report.json").read_text())
    return {"work": work, "report": report, "log": probe.stderr + batch.stdout + batch.stderr,
            "inputs": {"rgb": rgb, "rgba": rgba, "gray16": gray16, "layer": layer}}


def _library(array: np.ndarray, scale: float, tile) -> np.ndarray:
    return sr_filter.upscale(array, model=str(WEIGHTS), scale=scale, device="cpu", tile=tile)


def _assert_close(got: np.ndarray, want: np.ndarray, max_diff: int) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max() <= max_diff, "max diff %d > %d (mean %.3f)" % (diff.max(), max_diff, diff.mean())


def test_gimp_rgb_with_offset_layer_matches_library(gimp_run):
    rep = gimp_run["report"]["rgb"]
    assert rep["status"] == "success", rep
    assert rep["size"] == [48 * 4, 40 * 4]
    layers = rep["layers"]
    assert layers["offset layer"] == {"offsets": [20, 28], "size": [80, 64]}  # was (5, 7) 20x16, in a group
    assert layers["group"] == layers["offset layer"]  # a group's extent follows its children
    assert layers["Background"] == {"offsets": [0, 0], "size": [192, 160]}
    out = np.asarray(Image.open(gimp_run["work"] / "rgb_out.png"))
    if out.shape[2] == 4:  # the (hidden) RGBA layer makes GIMP export RGBA: base layer is opaque
        assert (out[:, :, 3] == 255).all()
        out = out[:, :, :3]
    _assert_close(out, _library(gimp_run["inputs"]["rgb"], 4.0, 32), 1)
    layer = np.frombuffer((gimp_run["work"] / "rgb_out.png.layer.raw").read_bytes(), np.uint8).reshape(64, 80, 4)
    _assert_close(layer, _library(gimp_run["inputs"]["layer"], 4.0, 32), 1)


def test_gimp_rgba_non_integer_scale_with_selection_and_alpha_lock_matches_library(gimp_run):
    rep = gimp_run["report"]["rgba"]
    assert rep["status"] == "success", rep
    assert rep["size"] == [100, 90] and rep["layers"]["Background"]["size"] == [100, 90]
    # the whole image is upscaled and the selection scaled with it (cubic: edges soften by a pixel or two)
    x1, y1, x2, y2 = rep["selection"]
    assert 7 <= x1 <= 10 and 12 <= y1 <= 15 and 35 <= x2 <= 38 and 35 <= y2 <= 38, rep["selection"]
    assert rep["channels"] == []  # no leftover channel from saving the selection
    out = np.asarray(Image.open(gimp_run["work"] / "rgba_out.png"))
    _assert_close(out, _library(gimp_run["inputs"]["rgba"], 2.5, 48), 1)


def test_gimp_built_in_model_from_the_preset_menu_matches_library(gimp_run):
    rep = gimp_run["report"]["builtin"]
    assert rep["status"] == "success", rep
    out = np.asarray(Image.open(gimp_run["work"] / "builtin_out.png"))
    want = sr_filter.upscale(gimp_run["inputs"]["rgb"], model="sr-cartoon-x4", scale=2.0, device="cpu", tile="auto")
    _assert_close(out[..., :3], want, 1)


def test_gimp_keeps_the_layer_the_user_had_chosen(gimp_run):
    rep = gimp_run["report"]["chosen"]
    assert rep["status"] == "success", rep
    assert rep["channels"] == ["mine"] and rep["selection"] is not None
    assert rep["selected_layers"] == ["Background"] and rep["selected_channels"] == []


def test_gimp_eight_bit_linear_keeps_every_level(gimp_run):
    rep = gimp_run["report"]["u8-linear"]
    assert rep["status"] == "success" and "U8_LINEAR" in rep["precision"], rep
    linear = np.frombuffer((gimp_run["work"] / "u8_linear_out.png.raw").read_bytes(), np.uint8).reshape(-1, 4)[:, :3]
    levels = np.unique(linear[linear >= 210])  # near white a perceptual 8-bit step is two linear levels:
    assert len(levels) >= 40, levels  # 22 of these 46 had come back, every other one


def test_gimp_colour_fix_matches_library(gimp_run):
    rep = gimp_run["report"]["colour-fix"]
    assert rep["status"] == "success", rep
    out = np.asarray(Image.open(gimp_run["work"] / "colour_fix_out.png"))[..., :3]
    want = sr_filter.upscale(gimp_run["inputs"]["rgb"], model="sr-cartoon-x4", device="cpu", colour_fix=True)
    plain = sr_filter.upscale(gimp_run["inputs"]["rgb"], model="sr-cartoon-x4", device="cpu")
    _assert_close(out, want, 1)
    assert np.abs(want.astype(int) - plain).max() >= 1  # the option reached the worker


def test_gimp_tta_and_precision_match_library(gimp_run):
    rep = gimp_run["report"]["tta"]
    assert rep["status"] == "success", rep
    out = np.asarray(Image.open(gimp_run["work"] / "tta_out.png"))[..., :3]
    want = sr_filter.upscale(gimp_run["inputs"]["rgb"], model="sr-cartoon-x4", scale=2.0, device="cpu", tta=True, precision="fp32")
    plain = sr_filter.upscale(gimp_run["inputs"]["rgb"], model="sr-cartoon-x4", scale=2.0, device="cpu")
    _assert_close(out, want, 1)
    assert np.abs(want.astype(int) - plain).max() >= 2  # TTA reached the worker


def test_gimp_16bit_grayscale_keeps_precision(gimp_run):
    rep = gimp_run["report"]["gray16"]
    assert rep["status"] == "success", rep
    assert "U16" in rep["precision"] and rep["size"] == [120, 96]
    out = np.asarray(Image.open(gimp_run["work"] / "gray16_out.png"))
    want = _library(gimp_run["inputs"]["gray16"], 3.0, "auto")  # the plug-in's 0 is automatic
    assert out.dtype == np.uint16 or out.dtype == np.int32  # PIL opens 16-bit grey as I;16 or I
    _assert_close(out.astype(np.uint16), want.reshape(out.shape), 257)  # 1/255 in 16-bit units
    assert np.any(out.astype(np.int64) % 257 != 0)  # values between 8-bit steps: precision kept


def test_gimp_32bit_float_image_is_processed_in_float(gimp_run):
    rep = gimp_run["report"]["float"]
    assert rep["status"] == "success", rep
    assert "FLOAT" in rep["precision"] and rep["size"] == [80, 72]
    got = np.frombuffer((gimp_run["work"] / "float_out.png.raw").read_bytes(), np.float32).reshape(72, 80, 4)
    want = _library(gimp_run["inputs"]["rgba"].astype(np.float32) / 255, 2.0, 40)
    assert want.dtype == np.float32
    assert np.abs(got - want).max() <= 1 / 255
    assert np.any(np.abs(got * 255 - np.round(got * 255)) > 0.01)  # not quantised to 8 bits


def test_gimp_bad_weights_is_a_gimp_error_with_the_librarys_message(gimp_run):
    rep = gimp_run["report"]["bad-weights"]
    bad = gimp_run["work"] / "bad.pth"
    with pytest.raises(SrFilterError) as lib:
        sr_filter.upscale(gimp_run["inputs"]["rgb"], model=str(bad), device="cpu")
    assert rep["status"] == "execution-error", rep
    assert rep["message"] == str(lib.value).replace(str(bad), "/job/bad.pth")
    assert rep["size"] == [48, 40] and list(rep["layers"]) == ["Background"]  # left untouched
    assert not (gimp_run["work"] / "never.png").exists()


def test_gimp_unavailable_device_is_a_gimp_error_with_the_librarys_message(gimp_run):
    import torch

    rep = gimp_run["report"]["no-gpu"]
    assert rep["status"] == "execution-error", rep
    if not torch.cuda.is_available():  # same situation as the chroot: compare the messages
        with pytest.raises(SrFilterError) as lib:
            sr_filter.upscale(gimp_run["inputs"]["rgb"], model=str(WEIGHTS), device="cuda")
        assert rep["message"] == str(lib.value)
    assert rep["size"] == [48, 40]


def test_gimp_refuses_a_tile_size_below_the_librarys_minimum_in_plugin_terms(gimp_run):
    rep = gimp_run["report"]["small-tile"]  # the plug-in's 0 is automatic; the smallest size is the library's
    assert rep["status"] == "execution-error", rep
    assert "0 (automatic) or at least 32 pixels, not 16" in rep["message"], rep
    assert rep["size"] == [48, 40]


def test_gimp_masks_cover_their_layers_new_box(gimp_run):
    rep = gimp_run["report"]["masks"]
    assert rep["status"] == "success", rep
    layer, group = rep["masks"]["layer"], rep["masks"]["group"]
    # the 20x16 layer at (5, 7) fills (8, 11) to (38, 35) at x1.5 (halves round up); each mask has its item's box
    assert rep["layers"]["offset layer"] == {"offsets": [8, 11], "size": [30, 24]}
    assert layer["size"] == [30, 24] and layer["offsets"] == [8, 11]
    assert group["size"] == rep["layers"]["group"]["size"] and group["offsets"] == rep["layers"]["group"]["offsets"]
    rows = np.array(layer["rows"], dtype=np.int64)
    assert (rows[:, -1] == 255).all() and (rows[-1] == rows[0]).all()  # no transparent seam on any edge
    assert (np.array(group["rows"]) == 255).all()
    # black over the left half (10 of 20 columns): the edge comes at 15 of 30, where the layer's pixels put it
    crossing = np.argmax(rows[0] >= 128)
    assert crossing == 15 and (rows[:, :14] == 0).all() and (rows[:, 16:] == 255).all(), rows[0]


def test_gimp_upscales_an_image_with_an_empty_masked_group(gimp_run):
    """A masked group whose layers had been moved out (empty, 1x1 in GIMP) failed the run after the
    canvas and every layer had been upscaled: "the mask of layer 'empty group' came back 2x2 for a
    1x1 layer". Its mask is left to GIMP's scaling; the rest is upscaled as always."""
    rep = gimp_run["report"]["empty-masked-group"]
    assert rep["status"] == "success", rep
    assert rep["size"] == [96, 80] and rep["layers"]["Background"]["size"] == [96, 80]
    assert "empty group" in rep["layers"]


def test_gimp_refuses_a_canvas_past_gimps_size_limit_before_changing_anything(gimp_run):
    rep = gimp_run["report"]["over-gimp-limit"]
    assert rep["status"] == "execution-error", rep
    assert rep["message"] == ("the image would be 560000x320 after x8, more than GIMP's 524288 pixels a side: use a "
                              "smaller scale, or crop the canvas (Image > Crop to Content)"), rep
    assert rep["size"] == [70000, 40] and rep["layers"]["Background"]["size"] == [48, 40]


def test_gimp_refuses_a_locked_layer_before_changing_anything(gimp_run):
    rep = gimp_run["report"]["locked"]
    assert rep["status"] == "execution-error" and "'Background' is locked" in rep["message"], rep
    assert rep["size"] == [48, 40] and rep["layers"]["Background"]["size"] == [48, 40]


def test_gimp_refuses_a_model_file_that_does_not_exist_before_calling_us(gimp_run):
    # GIMP itself validates file arguments (the dialog only offers existing files): the
    # procedure fails with GIMP's calling error and the image stays as it was.
    rep = gimp_run["report"]["missing-model"]
    assert rep["status"] == "calling-error" and "model" in rep["message"]
    assert rep["size"] == [48, 40]


def test_gimp_without_config_uses_gimps_own_python_when_it_has_sr_filter(gimp_run, tmp_path):
    # In the chroot GIMP's Python can import sr_filter, so the plug-in works without the
    # installer's sr-filter.json (a tile size makes it ask the worker for the smallest tile);
    # reinstall afterwards so other runs see the normal setup.
    config = "/job-home/.config/GIMP/3.0/plug-ins/sr-filter/sr-filter.json"
    _chroot("run", "rm", config, cwd=tmp_path)
    try:
        shutil.copyfile(gimp_run["work"] / "model.pth", tmp_path / "model.pth")
        Image.fromarray(gimp_run["inputs"]["rgb"][:16, :16]).save(tmp_path / "small.png")
        case = {"name": "no-config", "input": "small.png", "output": "small_out.png",
                "args": {"model": "/job/model.pth", "scale": 2.0, "device": "cpu", "tile": 32}}
        (tmp_path / "args.json").write_text(json.dumps({"cases": [case]}))
        _chroot("batch", str(REPO / "tests" / "gimp_e2e_batch.py"), str(tmp_path), cwd=tmp_path)
    finally:
        _chroot("run", "python3", "-m", "sr_filter.gimp.install", cwd=tmp_path)
    rep = json.loads((tmp_path / "report.json").read_text())["no-config"]
    assert rep["status"] == "success", rep
    out = np.asarray(Image.open(tmp_path / "small_out.png"))
    _assert_close(out, _library(gimp_run["inputs"]["rgb"][:16, :16].copy(), 2.0, 32), 1)


def test_gimp_image_with_a_wide_gamut_profile_keeps_its_colours(gimp_run):
    rep = gimp_run["report"]["icc"]
    assert rep["status"] == "success", rep
    got = np.frombuffer((gimp_run["work"] / "icc_out.png.native.raw").read_bytes(), np.uint8).reshape(80, 96, 3)
    # the image's own values, upscaled as the library upscales them (no trip through sRGB)
    want = sr_filter.upscale(gimp_run["inputs"]["rgb"], model="sr-cartoon-x4", scale=2.0, device="cpu", tile="auto")
    _assert_close(got, want, 1)


def test_gimp_layers_that_tile_the_canvas_leave_no_gap_at_a_non_integer_scale(gimp_run):
    rep = gimp_run["report"]["strips"]
    assert rep["status"] == "success", rep
    assert rep["size"] == [14, 6]
    assert sorted(tuple(v["offsets"] + v["size"]) for v in rep["layers"].values()) == [
        (0, 0, 5, 6), (5, 0, 4, 6), (9, 0, 5, 6)]
    assert all(a == 255 for row in rep["alpha"] for a in row), rep["alpha"]  # was 0 in columns 8 and 13


def test_gimp_linear_float_image_keeps_light_above_white(gimp_run):
    rep = gimp_run["report"]["hdr"]
    assert rep["status"] == "success", rep
    centre, ramp = rep["linear"]
    assert np.allclose(centre, [4.0, 2.0, 0.5], rtol=0.05), centre  # was [1.0, 1.0, 0.5]
    assert 0.05 < ramp[0] < 0.3, ramp


def test_gimp_shows_the_librarys_warnings(gimp_run):
    rep = gimp_run["report"]["warning"]
    assert rep["status"] == "success", rep
    assert "for 0..255 data divide by 255 first" in gimp_run["log"], gimp_run["log"][-2000:]


@pytest.mark.parametrize("case, words", [
    ("floating", "the image has a floating selection: anchor it"),
    ("indexed", "indexed images are not upscaled"),
    ("file-without-file", "no model file is chosen"),
])
def test_gimp_refuses_what_it_cannot_upscale_before_changing_anything(gimp_run, case, words):
    rep = gimp_run["report"][case]
    assert rep["status"] == "execution-error" and words in rep["message"], rep
    assert rep["size"] == [48, 40] and rep["layers"]["Background"]["size"] == [48, 40]
    if case == "floating":
        assert rep["floating"]  # still there, untouched


def test_gimp_does_not_run_the_filter_without_an_image(gimp_run):
    # The entry needs an image (it had crashed the plug-in with a traceback); GIMP itself now
    # refuses a call without one, before the plug-in starts.
    rep = gimp_run["report"]["no-image"]
    assert rep["status"] == "calling-error" and "argument 'image'" in rep["message"], rep


def test_every_choice_in_the_plugins_preset_menu_loads_offline():
    presets = gimp_worker.describe()["presets"]
    assert [nick for nick, _, _ in presets][:3] == ["photo", "cartoon", "face"]
    for nick, _label, _help in presets:
        kw, _ = gimp_worker.upscale_options({"preset": nick, "model": ""})
        assert sr_filter.Upscaler(**kw, offline=True).scale == 4, nick

"""The cluster path on ``s3://`` URIs, against an S3 server on 127.0.0.1 (moto's server speaks the
S3 HTTP protocol; pyarrow's S3 client in the driver and in every Ray worker talks to it through
``AWS_ENDPOINT_URL``, exactly as it would to a MinIO or Ceph gateway). The real AWS cannot be
reached from here; what this proves is our side of it: listing a bucket prefix, reading objects
into the faithful image I/O, writing outputs under a temporary key then moving them, skipping
finished keys on a rerun and reporting a bad object, byte-identical to a single-machine run."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from .conftest import one_thread

ray = pytest.importorskip("ray")
moto_server = pytest.importorskip("moto.server")

from sr_filter.cluster import upscale_folder  # noqa: E402

SETTINGS = {"model": "sr-cartoon-x4", "tile": 32, "device": "cpu"}
BUCKET = "frames"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def s3_endpoint():
    """An S3 server on 127.0.0.1 with one bucket; the AWS variables are set before the module's
    Ray cluster starts (this fixture is autouse, so it runs first), so its workers inherit them."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    import requests

    with pytest.MonkeyPatch.context() as env:  # restores the variables after the module
        for key, value in (("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}"), ("AWS_ACCESS_KEY_ID", "test"),
                           ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1"),
                           ("AWS_EC2_METADATA_DISABLED", "true")):
            env.setenv(key, value)
        assert requests.put(f"http://127.0.0.1:{port}/{BUCKET}", timeout=10).status_code == 200  # create the bucket
        yield f"http://127.0.0.1:{port}"
    server.stop()


def _s3():
    from pyarrow import fs

    return fs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], region="us-east-1")


def _put(key: str, data: bytes) -> None:
    with _s3().open_output_stream(f"{BUCKET}/{key}") as stream:
        stream.write(data)


def _listing(prefix: str) -> dict[str, bytes]:
    from pyarrow import fs

    s3 = _s3()
    infos = s3.get_file_info(fs.FileSelector(f"{BUCKET}/{prefix}", recursive=True))
    out = {}
    for info in infos:
        if info.type == fs.FileType.File:
            with s3.open_input_stream(info.path) as stream:
                out[info.path.split(f"{BUCKET}/{prefix}/", 1)[1]] = stream.read()
    return out


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_a_bucket_prefix_upscaled_on_the_cluster_matches_one_machine_and_resumes(cluster, tmp_path):
    rng = np.random.default_rng(5)
    local = tmp_path / "in"
    (local / "sub").mkdir(parents=True)
    files = {
        "a.png": _encoded(Image.fromarray(rng.integers(0, 256, (30, 26, 3), dtype=np.uint8)), "PNG"),
        "sub/b.png": _encoded(Image.fromarray(rng.integers(0, 256, (18, 22, 4), dtype=np.uint8)), "PNG"),
        "c.jpg": _encoded(Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)), "JPEG", quality=90, dpi=(300, 300)),
    }
    for key, data in files.items():
        _put(f"in/{key}", data)
        (local / key).write_bytes(data)
    ref = tmp_path / "ref"
    from sr_filter.cli import cli

    with one_thread():  # as the workers run: the bytes are compared
        result = CliRunner().invoke(cli, ["-q", str(local), "-o", str(ref), "-m", "sr-cartoon-x4", "-t", "32", "-d", "cpu"])
    assert result.exit_code == 0, result.output
    expected = {str(p.relative_to(ref)): p.read_bytes() for p in sorted(ref.rglob("*")) if p.is_file()}

    first = upscale_folder(f"s3://{BUCKET}/in", f"s3://{BUCKET}/out", **SETTINGS)
    assert (first.done, first.failed) == (3, [])
    assert _listing("out") == expected  # no temporary key left behind, every byte as on one machine

    again = upscale_folder(f"s3://{BUCKET}/in", f"s3://{BUCKET}/out", **SETTINGS)
    assert (again.done, again.skipped, again.failed) == (0, 3, [])


def test_a_bad_object_is_reported_and_the_others_finish(cluster):
    rng = np.random.default_rng(6)
    _put("mixed/good.png", _encoded(Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)), "PNG"))
    _put("mixed/broken.png", b"\x89PNG\r\n\x1a\n" + b"not really a png")
    summary = upscale_folder(f"s3://{BUCKET}/mixed", f"s3://{BUCKET}/mixed_out", **SETTINGS)
    assert summary.done == 1 and len(summary.failed) == 1
    source, error = summary.failed[0]
    assert source.endswith("mixed/broken.png") and error and "\n" not in error
    assert sorted(_listing("mixed_out")) == ["good.png"]

"""Peak memory of tiled inference on the CPU (run by hand; each measurement is a fresh process).

    python benchmarks/bench_memory.py activations   # bytes per input pixel of one forward pass
    python benchmarks/bench_memory.py large         # a 100-megapixel output, streamed to uint8, and x2

``activations`` calibrates ``Arch.bytes_per_pixel`` (the automatic tile size): the growth of peak
RSS over a warmed-up process while one tile of each size runs, divided by the tile's pixels.
RRDBNet and the published EDSR's size have no real weights here, so they run randomly initialised
(memory does not depend on the weight values); EDSR also runs as the built-in photo model.

``large`` upscales a 2500x2500 RGB image x4 to 10000x10000 (100 MP) with a tiny randomly
initialised SRVGGNetCompact (8 features, 2 convs) so that the network's speed does not matter:
it measures what the pipeline itself holds (input, output, one row of tiles), through
``Upscaler.upscale`` (uint8 streamed row band by row band) and, for comparison, through
``Upscaler.run`` (one float32 output array, then converted as the API did before). The same at
x2 (5000x5000), which the x4 network reaches through a resize: streamed through it row band by
row band (``Upscaler.upscale(scale=2)``), and for comparison the x4 float32 result resized whole
(as the API did before).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# peak RSS is VmHWM: ru_maxrss would include the parent's peak across exec
from _machine import cpu_facts, peak_rss_mb as _rss_mb  # noqa: E402


def _current_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def child_activation(arch: str, edge: int) -> None:
    import torch

    from sr_filter.archs.rrdbnet import RRDBNet
    from sr_filter.models import load_file

    if arch == "srvgg":
        net = load_file(Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared")) / "weights" / "upstream" / "realesr-animevideov3.pth").network
    elif arch == "edsr":  # the built-in photo model (48 features, 6 blocks, x4)
        from sr_filter.models import load_ref, resolve

        net = load_ref(resolve("sr-photo-x4", offline=True)).network
    elif arch == "edsr-256":  # the published EDSR's size (256 features, 32 blocks, x4), randomly initialised
        from sr_filter.archs.edsr import EDSR

        net = EDSR(num_feat=256, num_block=32, upscale=4, res_scale=0.1, upsampler="pixelshuffle").eval()
    elif arch == "srresnet":  # SRGAN's generator (64 features, 16 blocks, x4), randomly initialised
        from sr_filter.archs.srresnet import SRResNet

        net = SRResNet(num_feat=64, num_block=16, upscale=4, norm=False).eval()
    elif arch == "unet":  # the U-Net upscaler's defaults (32 features, 4 levels, x4), randomly initialised
        from sr_filter.archs.unet import UNetUpscaler

        net = UNetUpscaler(num_feat=32, upscale=4).eval()
    else:
        net = RRDBNet(3, 3, scale=4, num_feat=64, num_block=23, num_grow_ch=32).eval()
    net = net.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        net(torch.rand(1, 3, 16, 16).contiguous(memory_format=torch.channels_last))
        x = torch.rand(1, 3, edge, edge).contiguous(memory_format=torch.channels_last)
        base = _current_mb()
        net(x)
    grew = (_rss_mb() - base) * 2**20
    print("RESULT " + json.dumps({"bytes_per_pixel": grew / edge**2}))


def child_large(mode: str, folder: str) -> None:
    import numpy as np
    import torch

    from sr_filter import Upscaler
    from sr_filter.archs.srvgg import SRVGGNetCompact

    torch.manual_seed(0)
    path = Path(folder) / "tiny_x4.pth"
    torch.save({"params": SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=4).state_dict()}, path)
    image = np.random.default_rng(0).integers(0, 256, (2500, 2500, 3), dtype=np.uint8)
    up = Upscaler(str(path), tile=512)
    start = time.perf_counter()
    scale = 2 if mode.endswith("x2") else 4
    if mode.startswith("stream"):
        out = up.upscale(image, scale=scale)
    else:
        from sr_filter import convert
        from sr_filter.resize import resize

        planes = convert.split(image)
        out = convert.merge(planes, resize(up.run(planes.rgb), 2500 * scale, 2500 * scale), None)
    seconds = time.perf_counter() - start
    assert out.shape == (2500 * scale, 2500 * scale, 3) and out.dtype == np.uint8
    print("RESULT " + json.dumps({"rss_mb": _rss_mb(), "seconds": seconds}))


def _spawn(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(lines[-1][7:])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        if sys.argv[2] == "activation":
            child_activation(sys.argv[3], int(sys.argv[4]))
        else:
            child_large(sys.argv[3], sys.argv[4])
        return
    what = sys.argv[1] if len(sys.argv) > 1 else "activations"
    if what not in ("activations", "large"):
        print(__doc__)
        sys.exit(0 if what in ("-h", "--help") else 2)
    print(f"CPU: {cpu_facts()}")
    if what == "activations":
        print(f"{'arch':8s} {'tile':>5s} {'bytes per input px':>19s}")
        for arch, edges in (("srvgg", (128, 256, 384)), ("edsr", (128, 256, 384)), ("edsr-256", (64, 96, 128)),
                            ("srresnet", (64, 96, 128)), ("unet", (64, 96, 128)),
                            ("rrdbnet", (64, 96, 128))):
            for edge in edges:
                r = _spawn("activation", arch, str(edge))
                print(f"{arch:8s} {edge:5d} {r['bytes_per_pixel']:19.0f}", flush=True)
    else:
        print("2500x2500 RGB uint8, tile 512, tiny x4 SRVGG; the x4 output alone is 286 MiB, the x2 one 72 MiB")
        with tempfile.TemporaryDirectory() as tmp:
            for mode, label in (("stream", "x4 upscale(): uint8 row bands"), ("float", "x4 run() + merge: float32 output"),
                                ("stream-x2", "x2 upscale(): resized row bands"), ("float-x2", "x2 run(), resize, merge")):
                r = _spawn("large", mode, tmp)
                print(f"  {label:36s} peak RSS {r['rss_mb']:7.0f} MB   {r['seconds']:6.1f} s", flush=True)


if __name__ == "__main__":
    main()

"""Each architecture's memory estimate (``Arch.bytes_per_pixel``) against a measurement: the peak
memory one window adds, per input pixel, in a fresh process on the CPU. The estimate sets the
automatic tile and refuses ``tile 0`` on pictures that would not fit, so it must not be below what
the network takes (a window too large runs the machine out of memory) nor far above it (pictures
that fit are refused, tiles are smaller than they need be). RRDBNet's (measured 10105-10904 by
benchmarks/bench_memory.py) is left to the benchmark: one window takes half a minute here. EDSR, SRResNet and the U-Net had no
estimate of their own: the default 8000 was four times EDSR's need and under half the U-Net's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

_MEASURE = r"""
import json, resource, sys
import torch
from sr_filter.archs import ARCHS

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

arch, params, edge = ARCHS[sys.argv[1]], json.loads(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
net = arch.build(params).eval().to(memory_format=torch.channels_last)
with torch.inference_mode():
    net(torch.rand(1, 3, 16, 16).contiguous(memory_format=torch.channels_last))  # warmed up: kernels, workspaces
    x = torch.rand(1, 3, edge, edge).contiguous(memory_format=torch.channels_last)
    base = rss("VmRSS:")
    net(x)
print(json.dumps({"measured": (rss("VmHWM:") - base) / edge**2, "estimate": arch.facts(params).bytes_per_pixel}))
"""


def _builtin_settings(name: str) -> dict:
    entry = next(m for m in json.loads((ROOT / "sr_filter" / "weights_manifest.json").read_text())["models"]
                 if m["name"] == name)
    return dict(entry["settings"], upscale=entry["scale"])


@pytest.mark.parametrize("arch, params, edge", [
    ("edsr", _builtin_settings("sr-photo-x4"), 192),  # the built-in photo and face models (sub-pixel tail)
    ("edsr", {"num_feat": 64, "num_block": 16, "upscale": 4, "upsampler": "pixelshuffle"}, 96),  # EDSR-baseline
    ("srresnet", {"num_feat": 64, "num_block": 16, "upscale": 4, "norm": False}, 96),
    ("unet", {"num_feat": 32, "upscale": 4}, 96),
    ("srvgg", {"num_feat": 64, "num_conv": 16, "upscale": 4}, 192),
])
def test_the_memory_estimate_covers_the_measured_peak_without_overstating_it(arch, params, edge):
    done = subprocess.run([sys.executable, "-c", _MEASURE, arch, json.dumps(params), str(edge)], capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    measured, estimate = result["measured"], result["estimate"]
    assert measured <= estimate <= 2.5 * measured, f"{arch}: measured {measured:.0f} bytes per input pixel, estimate {estimate}"

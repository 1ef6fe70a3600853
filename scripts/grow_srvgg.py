"""Make a deeper SRVGGNetCompact that computes exactly what a trained one does, to train further.

    python scripts/grow_srvgg.py sr-cartoon-x4 runs/grown_32x12.pth --num-conv 12

The extra body layers are inserted in the middle as identity layers (a 3x3 convolution that
copies each feature, zero bias, and a PReLU with slope 1), so the grown network's output equals
the original's (checked here on a random input) and training starts from the trained model with
more capacity, instead of from random weights. The output is a plain state dict that
`[model] init` in a training config takes (docs/models/README.md, configs/cartoon_x4_v2_grow.toml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sr_filter.archs.srvgg import SRVGGNetCompact  # noqa: E402
from sr_filter.models import load_model  # noqa: E402


def grow(network: SRVGGNetCompact, num_conv: int) -> SRVGGNetCompact:
    """A copy of ``network`` with ``num_conv`` body convolutions, the new ones identity layers."""
    body = list(network.body)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in body) - 2  # without the first and the last
    if num_conv < convs:
        raise SystemExit(f"the network already has {convs} body convolutions; cannot grow it to {num_conv}")
    feat = body[0].out_channels
    grown = SRVGGNetCompact(network.num_in_ch, network.num_out_ch, feat, num_conv, network.upscale, "prelu")
    if not all(isinstance(m, torch.nn.PReLU) for m in body[1::2][: convs + 1]):
        raise SystemExit("only PReLU networks can be grown exactly (a ReLU cannot pass negative features on)")
    middle = 2 * (1 + convs // 2)  # after the PReLU of the middle convolution
    extra: list[torch.nn.Module] = []
    for _ in range(num_conv - convs):
        conv, act = torch.nn.Conv2d(feat, feat, 3, 1, 1), torch.nn.PReLU(feat)
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[range(feat), range(feat), 1, 1] = 1.0
            act.weight.fill_(1.0)
        extra += [conv, act]
    grown.body = torch.nn.ModuleList(body[:middle] + extra + body[middle:])
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a manifest name or a weights file of an SRVGGNetCompact (PReLU)")
    parser.add_argument("output", type=Path)
    parser.add_argument("--num-conv", type=int, required=True, help="body convolutions of the grown network")
    args = parser.parse_args()
    loaded = load_model(args.model)
    if loaded.arch.name != "srvgg":
        raise SystemExit(f"{args.model} is a {loaded.arch.name} model, not an SRVGGNetCompact")
    network = loaded.network.eval()
    grown = grow(network, args.num_conv).eval()
    x = torch.rand(1, network.num_in_ch, 40, 56)
    with torch.inference_mode():
        difference = float((grown(x) - network(x)).abs().max())
    if difference > 1e-5:
        raise SystemExit(f"the grown network differs from the original by {difference}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(grown.state_dict(), args.output)
    print(f"{args.output}: {args.num_conv} body convolutions, same output as {args.model} (max difference {difference:.1e})")


if __name__ == "__main__":
    main()

"""Small randomly initialised networks of architectures we do not ship, built with spandrel's own
classes, for the community-model tests and benchmarks/bench_context.py. Each is saved as a real
weights file and loaded back through ``sr_filter.models.load_file`` like a user's download."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from sr_filter.community import import_spandrel


def _nets() -> dict[str, Callable[[], nn.Module]]:
    import_spandrel()
    from spandrel.architectures.DAT import DAT
    from spandrel.architectures.DnCNN import DnCNN
    from spandrel.architectures.DRUNet import DRUNet
    from spandrel.architectures.HAT import HAT
    from spandrel.architectures.NAFNet import NAFNet
    from spandrel.architectures.OmniSR import OmniSR
    from spandrel.architectures.PLKSR import RealPLKSR
    from spandrel.architectures.RCAN import RCAN
    from spandrel.architectures.RealCUGAN import UpCunet2x
    from spandrel.architectures.SAFMN import SAFMN
    from spandrel.architectures.SCUNet import SCUNet
    from spandrel.architectures.SPAN import SPAN
    from spandrel.architectures.SwinIR import SwinIR

    return {
        "SwinIR": lambda: SwinIR(embed_dim=24, depths=[2, 2], num_heads=[2, 2], window_size=8, upscale=2,
                                 upsampler="pixelshuffledirect", img_size=32, mlp_ratio=2.0),
        "HAT": lambda: HAT(embed_dim=24, depths=[2], num_heads=[2], window_size=8, upscale=2, num_feat=16,
                           squeeze_factor=4, compress_ratio=3, mlp_ratio=2.0, img_size=32),
        "DAT": lambda: DAT(embed_dim=24, depth=[2], num_heads=[2], split_size=[4, 8], upscale=2, img_size=32),
        "SPAN": lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2),
        "OmniSR": lambda: OmniSR(num_feat=16, block_num=1, window_size=8, up_scale=2),
        "RealCUGAN": lambda: UpCunet2x(in_channels=3, out_channels=3),
        "RCAN": lambda: RCAN(scale=2, n_resgroups=2, n_resblocks=2, n_feats=16, reduction=4),
        "SAFMN": lambda: SAFMN(dim=16, n_blocks=2, upscaling_factor=2),
        "RealPLKSR": lambda: RealPLKSR(dim=16, n_blocks=2, upscaling_factor=2),
        # 1x restoration networks (denoising, JPEG artefacts)
        "DnCNN": lambda: DnCNN(in_nc=3, out_nc=3, nc=16, nb=17),
        "DRUNet": lambda: DRUNet(in_nc=4, out_nc=3, nc=[8, 16, 32, 64], nb=2),
        "SCUNet": lambda: SCUNet(in_nc=3, config=[1, 1, 1, 1, 1, 1, 1], dim=64),
        "NAFNet": lambda: NAFNet(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]),
    }


def names() -> list[str]:
    return list(_nets())


def save_random(name: str, folder: Path, seed: int = 0, suffix: str = ".pth") -> Path:
    """Build ``name`` with seeded random weights and save its state dict as a weights file."""
    torch.manual_seed(seed)
    net = _nets()[name]().eval()
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    path = folder / f"{name}{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"params": state}, path)
    return path

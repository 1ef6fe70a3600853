"""WGAN-GP (Gulrajani et al., 2017): a critic without batch norm, trained to separate HR from SR
patches, whose gradient norm on interpolates is pushed to 1. The generator's adversarial term is
``-critic(sr).mean()`` (added in the trainer)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class Critic(nn.Module):
    """Strided conv critic (VGG-style as in SRGAN, layer norm-free as WGAN-GP requires).

    Global average pooling at the end makes it work on any patch size.
    """

    def __init__(self, in_ch: int = 3, num_feat: int = 64, depth: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, num_feat, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = num_feat
        for i in range(depth):
            out = min(num_feat * 2 ** (i + 1), 512)
            layers += [nn.Conv2d(ch, out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                       nn.Conv2d(out, out, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(||grad critic(x_hat)|| - 1)^2] on random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def critic_step(critic: nn.Module, opt: torch.optim.Optimizer, real: torch.Tensor, fake: torch.Tensor,
                gp_weight: float = 10.0, generator: torch.Generator | None = None,
                sync: Callable[[nn.Module], None] | None = None) -> dict[str, float]:
    """One critic update; returns the Wasserstein estimate and the penalty for the log.

    ``sync(critic)`` runs between backward and the optimiser step (gradient averaging under DDP).
    """
    fake = fake.detach()
    w_dist = critic(real).mean() - critic(fake).mean()
    gp = gradient_penalty(critic, real, fake, generator)
    loss = -w_dist + gp_weight * gp
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if sync is not None:
        sync(critic)
    opt.step()
    return {"critic_wdist": float(w_dist.detach()), "critic_gp": float(gp.detach())}

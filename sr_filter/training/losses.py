"""Generator losses with configurable weights: L1 / MSE on pixels, perceptual (VGG/ResNet feature
distance, Johnson et al. / SRGAN), texture (Gram matrices on patches, EnhanceNet). The adversarial
term is added by the trainer (it needs the critic)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import LossConfig


class GeneratorLoss(nn.Module):
    """Weighted sum of the configured terms; returns the total and each term for the log."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.feature_net: nn.Module | None = None
        if cfg.perceptual > 0 or cfg.texture > 0:
            from .features import FeatureExtractor

            layers = tuple(dict.fromkeys((cfg.perceptual_layers if cfg.perceptual > 0 else ()) +
                                         (cfg.texture_layers if cfg.texture > 0 else ())))
            self.feature_net = FeatureExtractor(cfg.perceptual_net, layers, pretrained=cfg.feature_pretrained,
                                                weights_path=cfg.feature_weights, sha256=cfg.feature_sha256)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        terms: dict[str, torch.Tensor] = {}
        if cfg.l1 > 0:
            terms["l1"] = cfg.l1 * F.l1_loss(sr, hr)
        if cfg.mse > 0:
            terms["mse"] = cfg.mse * F.mse_loss(sr, hr)
        if self.feature_net is not None:
            from .features import gram_loss

            fs, fh = self.feature_net(sr), self.feature_net(hr.detach())
            if cfg.perceptual > 0:
                terms["perceptual"] = cfg.perceptual * sum(
                    F.l1_loss(fs[k], fh[k]) for k in cfg.perceptual_layers) / len(cfg.perceptual_layers)
            if cfg.texture > 0:
                terms["texture"] = cfg.texture * sum(
                    gram_loss(fs[k], fh[k], cfg.texture_patch) for k in cfg.texture_layers) / len(cfg.texture_layers)
        if not terms:
            raise ValueError("no loss term has a positive weight")
        total = sum(terms.values())
        assert isinstance(total, torch.Tensor)
        return total, {k: float(v.detach()) for k, v in terms.items()}

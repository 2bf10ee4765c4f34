"""Domain classifier heads for domain-adversarial training."""
from typing import Sequence

import torch
from torch import nn

from nnunet_kd.protocol.grl import grad_reverse


class DomainClassifier(nn.Module):
    """Global average pooling + 2-layer MLP giving one logit per sample (source = 0, target = 1)."""

    def __init__(self, in_channels: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.LeakyReLU(0.01, inplace=True), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = features.flatten(2).mean(2)
        return self.mlp(pooled.float())[:, 0]


class AdversarialDomainHeads(nn.Module):
    """One domain classifier per tapped encoder level, each behind a gradient reversal layer."""

    def __init__(self, channels: Sequence[int], levels: Sequence[int], hidden: int):
        super().__init__()
        n = len(channels)
        self.levels = sorted({lv % n for lv in levels})
        self.heads = nn.ModuleList(DomainClassifier(channels[lv], hidden) for lv in self.levels)

    def forward(self, skips: Sequence[torch.Tensor], lambd: float) -> torch.Tensor:
        """Logits of shape (levels, batch)."""
        return torch.stack([head(grad_reverse(skips[lv], lambd)) for lv, head in zip(self.levels, self.heads)])


def domain_loss_and_accuracy(logits: torch.Tensor, domain: torch.Tensor):
    """BCE averaged over levels and samples, and the accuracy of the sign of the logits."""
    target = domain.to(logits.dtype).expand_as(logits)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
    acc = ((logits > 0) == target.bool()).float().mean()
    return loss, acc

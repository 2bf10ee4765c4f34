"""Domain classifier heads for domain-adversarial training."""
from typing import Sequence, Type

import torch
from torch import nn

from nnunet_kd.protocol.grl import grad_reverse


class DomainClassifier(nn.Module):
    """Two 1x1 convs with LeakyReLU, global average pooling, a linear layer: one logit per sample (source 0,
    target 1). The convs come before the pooling because nnU-Net's instance-normalised features have nearly the same
    per-channel mean in every sample, so pooling first would leave the classifier little to see."""

    def __init__(self, in_channels: int, hidden: int, conv_op: Type[nn.Module]):
        super().__init__()
        self.features = nn.Sequential(conv_op(in_channels, hidden, 1), nn.LeakyReLU(0.01, inplace=True),
                                      conv_op(hidden, hidden, 1), nn.LeakyReLU(0.01, inplace=True))
        self.classify = nn.Linear(hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(features).flatten(2).mean(2))[:, 0]


class AdversarialDomainHeads(nn.Module):
    """One domain classifier per tapped encoder level, each behind a gradient reversal layer."""

    def __init__(self, channels: Sequence[int], levels: Sequence[int], hidden: int, conv_op: Type[nn.Module]):
        super().__init__()
        n = len(channels)
        self.levels = sorted({lv % n for lv in levels})
        self.heads = nn.ModuleList(DomainClassifier(channels[lv], hidden, conv_op) for lv in self.levels)

    def forward(self, skips: Sequence[torch.Tensor], lambd: float) -> torch.Tensor:
        """Logits of shape (levels, batch)."""
        return torch.stack([head(grad_reverse(skips[lv], lambd)) for lv, head in zip(self.levels, self.heads)])


def domain_loss_and_accuracy(logits: torch.Tensor, domain: torch.Tensor):
    """BCE averaged over levels and samples (fp32), and the accuracy of the sign of the logits."""
    logits = logits.float()
    target = domain.to(logits.dtype).expand_as(logits)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
    acc = ((logits > 0) == target.bool()).float().mean()
    return loss, acc

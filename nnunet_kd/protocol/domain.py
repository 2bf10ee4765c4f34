"""Domain classifier heads for domain-adversarial training."""
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnunet_kd.protocol.grl import grad_reverse


def pooled_statistics(features: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation over space: (batch, 2 * channels), fp32."""
    flat = features.float().flatten(2)
    return torch.cat((flat.mean(2), flat.std(2)), 1)


class DomainClassifier(nn.Module):
    """Per-channel mean and standard deviation over space, standardised over the batch (batch norm without affine),
    then an MLP: one logit per sample (source 0, target 1). nnU-Net's instance-normalised features differ between
    domains by small shifts of these statistics, which a head on raw pooled features barely sees (it stayed at chance);
    standardised over a batch of both domains, the shifts are what the head gets."""

    def __init__(self, in_channels: int, hidden: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(2 * in_channels, affine=False)
        self.classify = nn.Sequential(nn.Linear(2 * in_channels, hidden), nn.LeakyReLU(0.01, inplace=True),
                                      nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.norm(pooled_statistics(features)))[:, 0]


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
    """BCE and the accuracy of the sign of the logits, averaged over levels (fp32), each domain weighing half whatever
    its share of the batch (the target batch is by default half the source batch): a balanced loss and accuracy."""
    logits = logits.float()
    domain = domain.to(logits.dtype)
    counts = torch.stack(((1 - domain).sum(), domain.sum()))
    weight = (0.5 / counts)[domain.long()]  # sums to 1 over the batch
    target = domain.expand_as(logits)
    loss = (nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum(-1).mean()
    acc = (((logits > 0) == target.bool()).to(logits.dtype) * weight).sum(-1).mean()
    return loss, acc


def probe_accuracy(features: np.ndarray, domain: np.ndarray, groups: Sequence[str], folds: int = 5) -> float:
    """How well a fresh linear classifier tells the domains apart from frozen features (no gradient reversal): the
    balanced accuracy of a class-balanced logistic regression on standardised features, cross-validated with no
    case (group) in both a training and a test fold. NaN when a domain has fewer than 2 cases."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    domain, groups = np.asarray(domain), np.asarray(groups)
    n_groups = min(len(np.unique(groups[domain == d])) for d in (0, 1))
    if n_groups < 2:
        return float("nan")
    cv = StratifiedGroupKFold(min(folds, n_groups), shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    predicted = cross_val_predict(model, features, domain, groups=groups, cv=cv)
    return float(balanced_accuracy_score(domain, predicted))

"""Distillation losses, their ramp-up and the student's feature adapters."""
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_kd.protocol import KD_MODES


class FeatureAdapters(nn.Module):
    """A 1x1 conv per distilled level mapping the student's channels to the teacher's."""

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int], conv_op: type[nn.Module]):
        super().__init__()
        self.adapters = nn.ModuleList(conv_op(s, t, 1) for s, t in zip(student_channels, teacher_channels))

    def forward(self, student_features: Sequence[torch.Tensor]):
        return [a(f) for a, f in zip(self.adapters, student_features)]


def sigmoid_rampup(step: int, length: float) -> float:
    """exp(-5 (1 - t)^2) with t = step / length clipped to [0, 1] (Laine & Aila 2017; mean-teacher training); 1 when
    length is 0."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def feature_mse(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum over levels of the mean squared error, reduced in fp32: the difference is taken in the levels' own precision
    and only it is widened (no fp32 copies of student and teacher levels)."""
    total = 0
    for s, t in zip(student, teacher):
        d = (s - t.to(s.dtype)).float().flatten()
        total = total + torch.dot(d, d) / d.numel()
    return total


def logit_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
             regions: bool = False, mode: str = "voxel") -> torch.Tensor:
    """T^2 * KL(p_teacher || p_student) in fp32, p = softmax(z / T) over the channel axis; with ``regions`` (nnU-Net's
    region-based training) every channel is an independent sigmoid and the KL is that of Bernoulli distributions,
    summed over regions. ``mode`` says how the voxels' KLs are weighed:

    - ``voxel``: averaged over batch and voxels (the background dominates where foreground is small);
    - ``class``: averaged within each class the teacher predicts (argmax; per region: inside and outside), then over
      those classes, so a small class weighs as much as the background;
    - ``channel``: channel-wise distillation (Shu et al., ICCV 2021): each channel's logits are a distribution over
      space (softmax over voxels), KL per channel averaged over batch and channels.
    """
    if mode not in KD_MODES:
        raise ValueError(f"logit_kd: mode must be one of {KD_MODES}, got {mode!r}")
    with torch.autocast(student_logits.device.type, enabled=False):
        zs = student_logits.float() / temperature
        zt = teacher_logits.float() / temperature
        if mode == "channel":
            log_ps, log_pt = F.log_softmax(zs.flatten(2), 2), F.log_softmax(zt.flatten(2), 2)
            return (log_pt.exp() * (log_pt - log_ps)).sum(2).mean() * temperature ** 2
        if regions:
            log_ps, log_1ms = F.logsigmoid(zs), F.logsigmoid(-zs)
            log_pt, log_1mt = F.logsigmoid(zt), F.logsigmoid(-zt)
            kl = log_pt.exp() * (log_pt - log_ps) + log_1mt.exp() * (log_1mt - log_1ms)
        else:
            log_ps, log_pt = F.log_softmax(zs, 1), F.log_softmax(zt, 1)
            kl = log_pt.exp() * (log_pt - log_ps)
        if mode == "voxel":
            return kl.sum(1).mean() * temperature ** 2
        if regions:  # per region: the mean inside and the mean outside its predicted extent
            inside = (zt > 0).float()
            return sum(_masked_means(kl[:, r], torch.stack((inside[:, r], 1 - inside[:, r])))
                       for r in range(kl.shape[1])) * temperature ** 2
        predicted = F.one_hot(zt.argmax(1), zt.shape[1]).movedim(-1, 0).float()
        return _masked_means(kl.sum(1), predicted) * temperature ** 2


def _masked_means(values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` within each non-empty mask (masks: (k, *values.shape)), averaged over those masks."""
    counts = masks.flatten(1).sum(1)
    means = (masks * values).flatten(1).sum(1) / counts.clamp(min=1)
    return means[counts > 0].mean()

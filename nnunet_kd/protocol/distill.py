"""Distillation losses and the student's feature adapters."""
from typing import Sequence, Type

import torch
import torch.nn.functional as F
from torch import nn


class FeatureAdapters(nn.Module):
    """A 1x1 conv per distilled level mapping the student's channels to the teacher's."""

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int], conv_op: Type[nn.Module]):
        super().__init__()
        self.adapters = nn.ModuleList(conv_op(s, t, 1) for s, t in zip(student_channels, teacher_channels))

    def forward(self, student_features: Sequence[torch.Tensor]):
        return [a(f) for a, f in zip(self.adapters, student_features)]


def feature_mse(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum over levels of the mean squared error, in fp32."""
    return sum(F.mse_loss(s.float(), t.float()) for s, t in zip(student, teacher))


def logit_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
             regions: bool = False) -> torch.Tensor:
    """T^2 * KL(p_teacher || p_student), summed over classes and averaged over batch and voxels, in fp32.

    p = softmax(z / T) over the channel axis; with ``regions`` (nnU-Net's region-based training) every channel is an
    independent sigmoid and the KL is that of Bernoulli distributions, summed over regions.
    """
    with torch.autocast(student_logits.device.type, enabled=False):
        zs = student_logits.float() / temperature
        zt = teacher_logits.float() / temperature
        if regions:
            log_ps, log_1ms = F.logsigmoid(zs), F.logsigmoid(-zs)
            log_pt, log_1mt = F.logsigmoid(zt), F.logsigmoid(-zt)
            kl = log_pt.exp() * (log_pt - log_ps) + log_1mt.exp() * (log_1mt - log_1ms)
        else:
            log_ps, log_pt = F.log_softmax(zs, 1), F.log_softmax(zt, 1)
            kl = log_pt.exp() * (log_pt - log_ps)
        return kl.sum(1).mean() * temperature ** 2

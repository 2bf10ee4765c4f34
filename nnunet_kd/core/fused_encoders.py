"""The joint teacher's front of every task: frozen teacher encoders (eval mode, no gradient) -> level-wise fusion to the
shared architecture's widths. The segmentation, classification and detection joint teachers put their own decoder or
head behind it."""
from collections.abc import Sequence

import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from torch import nn

from nnunet_kd.protocol.fusion import MultiLevelFusion
from nnunet_kd.protocol.taps import encoder_spec
from nnunet_kd.core.teachers import freeze


def plans_encoder(architecture: dict, input_channels: int, allow_init: bool = True) -> nn.Module:
    """The encoder of a plans ``architecture`` network (nnU-Net's own builder; He-initialised with allow_init)."""
    net = get_network_from_plans(architecture["network_class_name"], architecture["arch_kwargs"],
                                 architecture["_kw_requires_import"], input_channels, 1, allow_init=allow_init,
                                 deep_supervision=False)
    return net.encoder


def resolve_levels(levels: str | Sequence[int], n_stages: int) -> list[int]:
    """'encoder' = every encoder stage incl. the bottleneck, 'bottleneck' = the last one, or explicit indices."""
    if levels == "encoder":
        return list(range(n_stages))
    if levels == "bottleneck":
        return [n_stages - 1]
    return sorted({int(lv) % n_stages for lv in levels})


class FusedTeacherEncoders(nn.Module):
    """teachers: their plans ``architecture`` entries; shared: the shared plans' entry, whose stage widths the fused
    features get; levels: the shared stages to compute (default all), of which ``fusion_levels`` (shared stage indices)
    fuse every teacher and the others take the first (target) teacher alone. ``spec`` is the shared encoder's
    description; ``output_channels`` the widths of the returned levels."""

    def __init__(self, input_channels: int, teachers: Sequence[dict], shared: dict, fusion_levels: Sequence[int],
                 adapter_norm: bool = False, levels: Sequence[int] | None = None):
        super().__init__()
        self.teacher_encoders = nn.ModuleList(freeze(plans_encoder(t, input_channels, allow_init=False))
                                              for t in teachers)
        self.spec = encoder_spec(shared["arch_kwargs"], shared["_kw_requires_import"])
        n = len(self.spec.output_channels)
        self.levels = list(range(n)) if levels is None else list(levels)
        self.output_channels = [self.spec.output_channels[lv] for lv in self.levels]
        fused = [self.levels.index(lv % n) for lv in fusion_levels if lv % n in self.levels]
        self.fusion = MultiLevelFusion(
            [[e.output_channels[lv] for lv in self.levels] for e in self.teacher_encoders], self.output_channels,
            fused, conv_op=self.spec.conv_op, norm_op=self.spec.norm_op, norm_op_kwargs=self.spec.norm_op_kwargs,
            nonlin=self.spec.nonlin, nonlin_kwargs=self.spec.nonlin_kwargs, adapter_norm=adapter_norm)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher_encoders.eval()  # frozen teachers stay in eval mode although nnU-Net calls train() every epoch
        return self

    def teacher_features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        with torch.no_grad():
            return [[f[lv] for lv in self.levels] for f in (enc(x) for enc in self.teacher_encoders)]

    def fused_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.fusion(self.teacher_features(x))

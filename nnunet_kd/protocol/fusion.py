"""Level-wise fusion of k frozen teachers' features (MLFD pattern): per-teacher 1x1 adapter, concatenation,
1x1 conv + norm + nonlinearity to the level's channel count. Task-agnostic: the conv/norm ops are arguments."""
from collections.abc import Sequence

import torch
from torch import nn


class LevelFusion(nn.Module):
    def __init__(self, in_channels: Sequence[int], out_channels: int, conv_op: type[nn.Module],
                 norm_op: type[nn.Module], norm_op_kwargs: dict, nonlin: type[nn.Module], nonlin_kwargs: dict,
                 adapter_norm: bool = False):
        super().__init__()
        self.adapters = nn.ModuleList(
            nn.Sequential(*([norm_op(c, **norm_op_kwargs)] if adapter_norm else []), conv_op(c, out_channels, 1))
            for c in in_channels)
        self.mix = nn.Sequential(conv_op(len(in_channels) * out_channels, out_channels, 1, bias=False),
                                 norm_op(out_channels, **norm_op_kwargs), nonlin(**nonlin_kwargs))

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.mix(torch.cat([a(f) for a, f in zip(self.adapters, features)], 1))


class MultiLevelFusion(nn.Module):
    """One LevelFusion per encoder level. Levels not in ``fused_levels`` use the first teacher (the target teacher)
    alone, through its adapter."""

    def __init__(self, teacher_channels: Sequence[Sequence[int]], out_channels: Sequence[int],
                 fused_levels: Sequence[int], **level_kwargs):
        super().__init__()
        n = len(out_channels)
        self.fused_levels = sorted({lv % n for lv in fused_levels})
        self.levels = nn.ModuleList(
            LevelFusion([tc[lv] for tc in (teacher_channels if lv in self.fused_levels else teacher_channels[:1])],
                        out_channels[lv], **level_kwargs)
            for lv in range(n))

    def forward(self, teacher_features: Sequence[Sequence[torch.Tensor]]):
        """teacher_features[i][l]: level l of teacher i -> fused features per level."""
        return [fuse([tf[lv] for tf in (teacher_features if lv in self.fused_levels else teacher_features[:1])])
                for lv, fuse in enumerate(self.levels)]

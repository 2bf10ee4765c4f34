import copy

import torch

from helpers import PLAIN_ARCH_2D as ARCH
from nnunet_kd.core.fused_encoders import FusedTeacherEncoders, plans_encoder, resolve_levels


def test_requested_levels_only_fusion_levels_fuse_every_teacher_and_teachers_stay_frozen():
    wide = copy.deepcopy(ARCH)
    wide["arch_kwargs"]["features_per_stage"] = [4, 8, 12]
    shared = copy.deepcopy(ARCH)
    shared["arch_kwargs"]["features_per_stage"] = [6, 10, 14]
    enc = FusedTeacherEncoders(1, [ARCH, wide], shared, fusion_levels=[-1], levels=[1, 2]).train()
    assert not any(m.training for m in enc.teacher_encoders.modules()) and enc.fusion.training
    assert all(not p.requires_grad for p in enc.teacher_encoders.parameters())
    assert enc.output_channels == [10, 14] and enc.fusion.fused_levels == [1]  # stage 2 = the second returned level
    assert [len(level.adapters) for level in enc.fusion.levels] == [1, 2]  # stage 1: the target teacher alone
    out = enc.fused_features(torch.randn(2, 1, 32, 32))
    assert [tuple(o.shape) for o in out] == [(2, 10, 16, 16), (2, 14, 8, 8)]
    out[-1].mean().backward()
    assert all(p.grad is None for p in enc.teacher_encoders.parameters())
    assert all(p.grad is not None for p in enc.fusion.levels[1].parameters())


def test_plans_encoder_is_the_plans_networks_encoder():
    enc = plans_encoder(ARCH, 2)
    assert list(enc.output_channels) == [8, 16, 32] and enc.stages[0][0].convs[0].conv.in_channels == 2


def test_levels():
    assert resolve_levels("encoder", 4) == [0, 1, 2, 3]
    assert resolve_levels("bottleneck", 4) == [3]
    assert resolve_levels([-1, 1], 4) == [1, 3]

import torch
from torch import nn

from nnunet_kd.protocol.fusion import MultiLevelFusion


def _fusion(levels):
    return MultiLevelFusion([[4, 8], [6, 12]], [5, 10], levels, conv_op=nn.Conv2d, norm_op=nn.InstanceNorm2d,
                            norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU, nonlin_kwargs={})


def test_fused_levels_mix_every_teacher():
    fusion = _fusion([0, 1])
    t0 = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    t1 = [torch.randn(2, 6, 8, 8), torch.randn(2, 12, 4, 4)]
    out = fusion([t0, t1])
    assert [tuple(o.shape) for o in out] == [(2, 5, 8, 8), (2, 10, 4, 4)]
    t1_changed = [torch.randn_like(t) for t in t1]
    assert not torch.allclose(fusion([t0, t1_changed])[1], out[1])


def test_unfused_levels_use_the_target_teacher_only():
    fusion = _fusion([-1])
    assert fusion.fused_levels == [1]
    assert len(fusion.levels[0].adapters) == 1 and len(fusion.levels[1].adapters) == 2
    t0 = [torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)]
    t1 = [torch.randn(1, 6, 8, 8), torch.randn(1, 12, 4, 4)]
    a = fusion([t0, t1])[0]
    b = fusion([t0, [t + 5 for t in t1]])[0]
    assert torch.equal(a, b)

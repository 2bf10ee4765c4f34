import torch

from helpers import PLAIN_ARCH_2D as ARCH
from nnunet_kd.classification.network import ClsJointTeacherNetwork, ClsNetwork, TimmEncoder, pool
from nnunet_kd.core.fused_encoders import plans_encoder


def test_classifier_on_the_plans_encoder():
    net = ClsNetwork(plans_encoder(ARCH, 2), 4)
    assert net(torch.randn(3, 2, 32, 32)).shape == (3, 4)
    assert net.encoder.output_channels == [8, 16, 32]


def test_pooling_tells_a_local_pattern_that_instance_norm_hides_from_the_mean():
    norm = torch.nn.InstanceNorm2d(4)
    plain = torch.randn(1, 4, 16, 16)
    spot = plain.clone()
    spot[..., 8, 8] += 50  # one bright spot
    a, b = pool(norm(plain)), pool(norm(spot))
    assert a.shape == (1, 8)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5)  # the means: 0 after instance norm, spot or not
    assert (b[:, 4:] > a[:, 4:] + 5).all()  # the maxima see the spot


def test_joint_teacher_head_sees_every_fused_level():
    net = ClsJointTeacherNetwork(1, 3, [ARCH, ARCH], ARCH, fusion_levels=[0, 1, 2])
    logits, fused = net(torch.randn(2, 1, 32, 32), return_features=True)
    assert logits.shape == (2, 3) and [f.shape[1] for f in fused] == [8, 16, 32]
    logits.sum().backward()
    assert all(p.grad is None for p in net.teacher_encoders.parameters())
    assert all(lv.mix[0].weight.grad.abs().sum() > 0 for lv in net.fusion.levels)


def test_timm_backbone_loads_only_a_local_file(tmp_path):
    a = TimmEncoder("resnet10t", 1)
    path = tmp_path / "w.pth"
    torch.save(a.model.state_dict(), path)
    b = TimmEncoder("resnet10t", 1, str(path))
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k
    assert ClsNetwork(b, 2)(torch.randn(1, 1, 64, 64)).shape == (1, 2)

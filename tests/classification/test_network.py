import torch

from nnunet_kd.classification.network import ClsJointTeacherNetwork, ClsNetwork, TimmEncoder, plans_encoder

ARCH = {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {"n_stages": 3, "features_per_stage": [8, 16, 32], "conv_op": "torch.nn.modules.conv.Conv2d",
                        "kernel_sizes": [[3, 3]] * 3, "strides": [[1, 1], [2, 2], [2, 2]], "n_conv_per_stage": [1] * 3,
                        "n_conv_per_stage_decoder": [1] * 2, "conv_bias": True,
                        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d",
                        "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
                        "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}},
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}


def test_classifier_on_the_plans_encoder():
    net = ClsNetwork(plans_encoder(ARCH, 2), 4)
    assert net(torch.randn(3, 2, 32, 32)).shape == (3, 4)
    assert net.encoder.output_channels == [8, 16, 32]


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

import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from nnunet_kd.core.fused_encoders import resolve_levels
from nnunet_kd.segmentation.network import CLASS_NAME

ARCH = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "arch_kwargs": {"n_stages": 3, "features_per_stage": [8, 16, 16], "conv_op": "torch.nn.modules.conv.Conv2d",
                    "kernel_sizes": [[3, 3]] * 3, "strides": [[1, 1], [2, 2], [2, 2]], "n_conv_per_stage": [1, 1, 1],
                    "n_conv_per_stage_decoder": [1, 1], "conv_bias": True,
                    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d",
                    "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
                    "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}},
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
}


def _joint(deep_supervision=True):
    wide = {**ARCH, "arch_kwargs": {**ARCH["arch_kwargs"], "features_per_stage": [12, 24, 24]}}
    kwargs = {"teachers": [dict(ARCH, num_classes=2), dict(wide, num_classes=4)], "decoder": ARCH,
              "fusion_levels": resolve_levels("encoder", 3), "strides": ARCH["arch_kwargs"]["strides"]}
    return get_network_from_plans(CLASS_NAME, kwargs, [], 1, 2, deep_supervision=deep_supervision)


def test_built_from_plans_with_frozen_teacher_encoders_only():
    net = _joint()
    keys = list(net.state_dict())
    assert any(k.startswith("teacher_encoders.1.") for k in keys)
    assert not any("seg_layers" in k for k in keys if k.startswith("teacher_encoders"))  # no teacher decoders
    assert not any(k.startswith("decoder.encoder") for k in keys)  # decoder built from a spec, not an encoder
    assert all(not p.requires_grad for p in net.teacher_encoders.parameters())
    out = net(torch.randn(2, 1, 32, 32))
    assert [tuple(o.shape) for o in out] == [(2, 2, 32, 32), (2, 2, 16, 16)]  # deep supervision


def test_teachers_stay_in_eval_mode_and_get_no_gradient():
    net = _joint()
    before = {k: v.clone() for k, v in net.teacher_encoders.state_dict().items()}
    net.train()
    assert net.training and not any(m.training for m in net.teacher_encoders.modules())
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        out = net(torch.randn(2, 1, 32, 32))
        out[0].mean().backward()
        opt.step()
    assert all(p.grad is None for p in net.teacher_encoders.parameters())
    assert all(torch.equal(v, before[k]) for k, v in net.teacher_encoders.state_dict().items())
    assert any(p.grad is not None for p in net.fusion.parameters())


import pytest
import torch

from classification.test_network import ARCH
from nnunet_kd.detection.network import (DetJointTeacherNetwork, PlansFPNBackbone, _pyramid_levels, build_det_network,
                                         build_detector, joint_architecture)
from nnunet_kd.core.errors import KDError
from nnunet_kd.protocol.taps import EncoderTap, ModuleOutputTap

PATCH = (64, 64)
SMALL = dict(rpn_batch_size_per_image=32, box_batch_size_per_image=16, rpn_post_nms_top_n_train=100)
LOSSES = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}


def batch(c=1):
    torch.manual_seed(0)
    images = [torch.randn(c, *PATCH) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[10.0, 12.0, 20.0, 22.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[30.0, 5.0, 50.0, 15.0], [4.0, 40.0, 12.0, 48.0]]),
                "labels": torch.tensor([2, 1])}]
    return images, targets


def train_step(model, c=1):
    images, targets = batch(c)
    losses = model(images, targets)
    assert set(losses) == LOSSES and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    return images


def test_pyramid_levels():
    assert _pyramid_levels([[1, 1], [2, 2], [2, 2], [2, 2]]) == [1, 2, 3]
    assert _pyramid_levels([1, 2, 2]) == [1, 2]
    assert _pyramid_levels([[1, 1], [2, 2], [2, 2], [2, 1], [2, 2]]) == [1, 2]
    with pytest.raises(KDError):
        _pyramid_levels([[1, 1], [1, 2]])


def test_plans_detector_trains_and_detects():
    model = build_detector(ARCH, 2, 2, PATCH, **SMALL)
    assert isinstance(model.backbone, PlansFPNBackbone) and model.backbone.level_strides == [2, 4]
    assert model.roi_heads.box_predictor.cls_score.out_features == 3  # + background
    images = train_step(model, 2)
    assert model.backbone.encoder.stages[0][0].convs[0].conv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2 and set(detections[0]) == {"boxes", "labels", "scores"}


def test_transform_neither_resizes_nor_normalises():
    model = build_detector(ARCH, 2, 1, PATCH)
    t = model.transform
    assert (t.min_size, t.max_size, t.image_mean, t.image_std) == ((64,), 64, [0.0, 0.0], [1.0, 1.0])
    images, targets = batch(2)
    for mode in (True, False):
        t.train(mode)
        out, out_targets = t(images, targets)
        assert torch.equal(out.tensors, torch.stack(images)) and out.image_sizes == [PATCH] * 2
        assert torch.equal(out_targets[1]["boxes"], targets[1]["boxes"])


def test_fpn_levels_and_anchors():
    model = build_detector(ARCH, 1, 1, PATCH)
    features = model.backbone(torch.randn(1, 1, *PATCH))
    assert [(k, v.shape[-1]) for k, v in features.items()] == [("0", 32), ("1", 16), ("pool", 8)]
    assert model.rpn.anchor_generator.sizes == ((8,), (16,), (32,))
    assert model.roi_heads.box_roi_pool.featmap_names == ["0", "1"]


def test_resnet_backbone_needs_no_download(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("download attempted")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    model = build_detector(ARCH, 3, 2, PATCH, backbone="resnet18", **SMALL)
    assert model.backbone.body.conv1.in_channels == 3 and model.backbone.out_channels == 64
    assert all(p.requires_grad for p in model.parameters())
    train_step(model, 3)
    with pytest.raises(KDError):
        build_detector(ARCH, 3, 2, PATCH, backbone="vgg16")


def test_joint_teacher_trains_fusion_and_heads_only():
    arch = joint_architecture([ARCH, ARCH], ARCH, [0, 1, -1], adapter_norm=True)
    model = build_det_network(arch, 2, 2, PATCH, **SMALL)
    assert isinstance(model, DetJointTeacherNetwork)
    encoder = model.backbone.encoder
    assert encoder.levels == [1, 2] and encoder.fusion.fused_levels == [0, 1] and model.backbone.level_strides == [2, 4]
    model.train()
    assert not any(e.training for e in encoder.teacher_encoders) and encoder.fusion.training
    tap, fpn_tap = EncoderTap(model.backbone), ModuleOutputTap([model.backbone])
    train_step(model, 2)
    assert [f.shape[1:] for f in tap.pop()] == [(16, 32, 32), (32, 16, 16)]
    assert list(fpn_tap.pop()[0]) == ["0", "1", "pool"]
    assert all(p.grad is None for p in encoder.teacher_encoders.parameters())
    for module in (encoder.fusion, model.backbone.fpn, model.rpn, model.roi_heads):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters() if p.ndim > 1)
    model.eval()
    with torch.no_grad():
        assert len(model(batch(2)[0])) == 2


def test_build_det_network_round_trip():
    plain = build_det_network(ARCH, 1, 3, PATCH)
    assert isinstance(plain.backbone, PlansFPNBackbone) and not isinstance(plain, DetJointTeacherNetwork)
    joint = build_det_network(joint_architecture([ARCH], ARCH, [1], False), 1, 3, PATCH)
    assert len(joint.backbone.encoder.teacher_encoders) == 1
    assert joint.roi_heads.box_predictor.cls_score.out_features == 4

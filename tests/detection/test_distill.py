import copy
import os

import pytest
import torch
from torch import nn

from classification.test_network import ARCH
from helpers import spawn_gloo
from nnunet_kd.detection.distill import (box_kd, detector_losses, fpn_adapters, roi_box_kd, rpn_terms,
                                         student_step_losses, unlabelled_kd_losses)
from nnunet_kd.detection.network import DetJointTeacherNetwork, build_detector
from nnunet_kd.protocol.distill import FeatureAdapters
from nnunet_kd.core.teachers import freeze
from nnunet_kd.core.ddp import wrap_ddp

from .test_network import LOSSES, PATCH, SMALL, batch

WIDE = {**ARCH, "arch_kwargs": {**ARCH["arch_kwargs"], "features_per_stage": [8, 24, 48]}}


def student_and_teacher():
    torch.manual_seed(1)
    student = build_detector(ARCH, 1, 2, PATCH, **SMALL)
    teacher = freeze(DetJointTeacherNetwork(1, 2, [WIDE, ARCH], ARCH, [-1], PATCH, fpn_channels=32, **SMALL))
    return student, teacher


def _with_roi_rows():
    """Student, teacher, adapters and {model: shape of its last ROI class logits}."""
    student, teacher = student_and_teacher()
    rows = {}
    for name, model in (("student", student), ("teacher", teacher)):
        model.roi_heads.box_predictor.register_forward_hook(
            lambda m, i, out, name=name: rows.__setitem__(name, out[0].shape))
    return student, teacher, FeatureAdapters([64, 64], [32, 32], nn.Conv2d), rows


def test_the_students_adapters_match_its_fpn_levels_and_all_learn():
    """ARCH's first stage has stride 1 and no FPN level: an adapter for it would be an unused parameter (DDP raises)."""
    student, _ = student_and_teacher()  # in the trainers, student and joint teacher have FPNs of one width
    teacher = freeze(DetJointTeacherNetwork(1, 2, [WIDE, ARCH], ARCH, [-1], PATCH, fpn_channels=64, **SMALL))
    adapters = fpn_adapters(student.backbone)
    assert len(adapters.adapters) == len(student.backbone.levels) == 2 < len(student.backbone.encoder.output_channels)
    losses = student_step_losses(student, teacher, *batch(), temperature=2.0, adapters=adapters)
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in adapters.parameters())


def test_distillation_terms_and_gradients():
    student, teacher, adapters, rows = _with_roi_rows()
    losses = student_step_losses(student, teacher, *batch(), temperature=2.0, adapters=adapters)
    assert set(losses) == LOSSES | {"feat", "kd", "box"} and all(torch.isfinite(v) for v in losses.values())
    assert losses["kd"] > 0 and losses["feat"] > 0 and losses["box"] > 0
    assert rows["teacher"] == rows["student"] == (2 * SMALL["box_batch_size_per_image"], 3)  # the same ROIs
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad.abs().sum() > 0 for p in adapters.parameters() if p.ndim > 1)
    assert all(p.grad is None for p in teacher.parameters())


def test_kd_vanishes_for_a_copy_of_the_student():
    student, _ = student_and_teacher()
    teacher = freeze(copy.deepcopy(student))
    losses = student_step_losses(student, teacher, *batch(), temperature=3.0)
    assert losses["kd"].abs() < 1e-6 and losses["feat"] == 0 and losses["box"] == 0


def test_box_distillation_weighs_rows_by_the_teachers_object_probability():
    s, t = torch.zeros(3, 4), torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2.0]])
    # rows 0 and 2 differ; only row 0 is an object for the teacher: the mean of row 0's smooth L1 (1 - 1/18)
    assert box_kd(s, t, torch.tensor([1.0, 1.0, 0.0])).item() == pytest.approx((1 - 1 / 18) / 2)
    logits = torch.tensor([[10.0, 0, 0], [-10.0, 10.0, -10.0]])  # ROI 0 background, ROI 1 class 1
    s_deltas, t_deltas = torch.zeros(2, 12), torch.zeros(2, 12)
    t_deltas[0] = 5.0  # a background ROI's deltas count (almost) nothing
    t_deltas[1, 4:8] = 1.0  # class 1's deltas of ROI 1 count, the other classes' do not
    t_deltas[1, 8:] = 9.0
    assert roi_box_kd(s_deltas, t_deltas, logits).item() == pytest.approx(4 * (1 - 1 / 18), rel=1e-3)
    obj = [torch.full((1, 3, 2, 2), -20.0)]  # the teacher sees no object at any anchor: no RPN box term
    kd, box = rpn_terms((obj, [torch.ones(1, 12, 2, 2)]), (obj, [torch.zeros(1, 12, 2, 2)]), 2.0)
    assert kd.abs() < 1e-6 and box.abs() < 1e-6


def test_modes_are_checked():
    student, teacher = student_and_teacher()
    with pytest.raises(ValueError):
        student_step_losses(student, teacher.train(), *batch(), temperature=1.0)
    total, losses = detector_losses(student, *batch())
    assert set(losses) == LOSSES and torch.isclose(total, sum(losses.values()))
    with pytest.raises(ValueError):
        detector_losses(student.eval(), *batch())


def test_unlabelled_terms_score_the_students_best_proposals_with_both_heads():
    student, teacher, adapters, rows = _with_roi_rows()
    images, _ = batch()
    losses = unlabelled_kd_losses(student, teacher, images, 2.0, adapters, "class", rois_per_image=5)
    assert set(losses) == {"feat", "kd", "box"} and all(losses[k] > 0 for k in losses)
    assert rows["teacher"] == rows["student"] == (2 * 5, 3)
    assert student.rpn.training  # back in train mode
    sum(losses.values()).backward()
    assert all(p.grad.abs().sum() > 0 for p in adapters.parameters() if p.ndim > 1)
    assert student.roi_heads.box_predictor.cls_score.weight.grad.abs().sum() > 0
    assert student.roi_heads.box_predictor.bbox_pred.weight.grad.abs().sum() > 0
    assert student.rpn.head.cls_logits.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    copy_teacher = freeze(copy.deepcopy(student))
    same = unlabelled_kd_losses(student, copy_teacher, images, 2.0)
    assert same["kd"].abs() < 1e-6 and same["feat"] == 0 and same["box"] == 0


def _ddp_worker(rank, world, out_dir):
    student, _ = student_and_teacher()  # the same weights on both ranks, as DDP requires
    teacher = freeze(DetJointTeacherNetwork(1, 2, [WIDE, ARCH], ARCH, [-1], PATCH, fpn_channels=64, **SMALL))
    adapters = fpn_adapters(student.backbone)
    ddp_student, ddp_adapters = wrap_ddp(student, torch.device("cpu")), wrap_ddp(adapters, torch.device("cpu"))
    images, targets = batch()
    torch.manual_seed(10 + rank)  # different images per rank
    images = [torch.randn_like(i) for i in images]
    losses = student_step_losses(ddp_student, teacher, images, targets, 2.0, ddp_adapters)
    unlabelled = unlabelled_kd_losses(student, teacher, [torch.randn_like(i) for i in images], 2.0, ddp_adapters)
    (sum(losses.values()) + sum(unlabelled.values())).backward()
    torch.save({n: p.grad for n, p in student.named_parameters()}, os.path.join(out_dir, f"grads{rank}.pt"))


@pytest.mark.slow
def test_a_ddp_student_all_reduces_its_gradients(tmp_path):
    """The student's step calls its (DDP-wrapped) forward, so its gradients, those of the unlabelled terms included,
    are averaged across workers (calling its parts alone would leave each worker with its own)."""
    spawn_gloo(_ddp_worker, tmp_path)
    g0, g1 = (torch.load(tmp_path / f"grads{r}.pt") for r in (0, 1))
    assert all(g is not None for g in g0.values())
    assert all(torch.allclose(g0[k], g1[k], atol=1e-6) for k in g0)

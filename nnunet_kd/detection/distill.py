"""The detection student's training step: Faster R-CNN losses + distillation from a frozen teacher detector.

`student_step_losses` runs the student's own forward (so a DDP-wrapped student all-reduces its gradients) and reads
what the teacher needs from it with hooks: the student's transformed images, FPN levels, the ROIs its ROI head samples
for its loss and their class logits (torchvision 0.29's ``GeneralizedRCNN`` / ``RoIHeads``).
"""
from contextlib import contextmanager

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN

from nnunet_kd.protocol.distill import FeatureAdapters, feature_mse, logit_kd


def _roi_logits(model: FasterRCNN, features, proposals, image_sizes) -> tuple[torch.Tensor, torch.Tensor]:
    heads = model.roi_heads
    return heads.box_predictor(heads.box_head(heads.box_roi_pool(features, proposals, image_sizes)))


def _pyramid(features) -> list[str]:
    return [k for k in features if k != "pool"]


def fpn_adapters(backbone) -> FeatureAdapters:
    """One 1x1 adapter per FPN level of a plans backbone (its pyramid stages, not every encoder stage: an adapter
    without a level would get no gradient, which DDP refuses)."""
    n = len(backbone.levels)
    return FeatureAdapters([backbone.out_channels] * n, [backbone.out_channels] * n, nn.Conv2d)


@contextmanager
def _forward_internals(model: FasterRCNN):
    """Within the block, the dict filled by ``model``'s next forward: its transformed images ("tensors"), FPN levels
    ("features"), the ROIs and image sizes its ROI head pools ("rois", "image_sizes") and their class logits."""
    seen = {}

    def backbone(module, args, out):
        seen.update(tensors=args[0], features=out)

    def pool(module, args):
        seen.update(rois=args[1], image_sizes=args[2])

    def predictor(module, args, out):
        seen["logits"] = out[0]

    heads = model.roi_heads
    hooks = [model.backbone.register_forward_hook(backbone), heads.box_roi_pool.register_forward_pre_hook(pool),
             heads.box_predictor.register_forward_hook(predictor)]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def _inner(model: nn.Module) -> FasterRCNN:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def student_step_losses(student: nn.Module, teacher: FasterRCNN, images: list[torch.Tensor], targets: list[dict],
                        temperature: float, adapters: FeatureAdapters | None = None,
                        kd_mode: str = "voxel") -> dict[str, torch.Tensor]:
    """Losses of one training step of ``student`` (train mode; may be DDP-wrapped: its forward is called once)
    distilled from ``teacher`` (frozen, eval mode; the same transform settings and FPN levels):

    - loss_objectness, loss_rpn_box_reg, loss_classifier, loss_box_reg: the student's Faster R-CNN losses;
    - feat: `feature_mse` of the student's FPN levels (without "pool"; through ``adapters`` if given) and the
      teacher's, both computed on the student's transformed images;
    - kd: `logit_kd` (``kd_mode``: 'voxel' averages over ROIs, 'class' within the teacher's predicted classes) of the
      student's ROI class logits and the teacher's ROI head on the teacher's features and the same ROIs (the student's
      sampled proposals).
    """
    if not student.training or teacher.training:
        raise ValueError("student_step_losses: the student must be in train mode and the teacher in eval mode")
    with _forward_internals(_inner(student)) as seen:
        losses = dict(student(images, targets))
    s_features, s_logits = seen["features"], seen["logits"]
    with torch.no_grad():
        t_features = teacher.backbone(seen["tensors"])
        t_logits, _ = _roi_logits(teacher, t_features, seen["rois"], seen["image_sizes"])
    levels = _pyramid(s_features)
    if levels != _pyramid(t_features):
        raise ValueError(f"student FPN levels {levels} differ from the teacher's {_pyramid(t_features)}")
    s_levels = [s_features[k] for k in levels]
    losses["feat"] = feature_mse(adapters(s_levels) if adapters is not None else s_levels,
                                 [t_features[k] for k in levels])
    losses["kd"] = logit_kd(s_logits, t_logits, temperature, mode=kd_mode)
    return losses


def unlabelled_kd_losses(student: FasterRCNN, teacher: FasterRCNN, images: list[torch.Tensor], temperature: float,
                         adapters: FeatureAdapters | None = None, kd_mode: str = "voxel",
                         rois_per_image: int = 128) -> dict[str, torch.Tensor]:
    """The distillation terms on images without boxes: `feature_mse` of the FPN levels as in `student_step_losses`,
    and `logit_kd` of the ROI class logits on the student's ``rois_per_image`` best proposals (its RPN run as at
    inference: nothing to sample against), scored by the student's and the teacher's ROI heads."""
    if not student.training or teacher.training:
        raise ValueError("unlabelled_kd_losses: the student must be in train mode and the teacher in eval mode")
    batch, _ = student.transform(images)
    s_features = student.backbone(batch.tensors)
    student.rpn.training = False
    try:
        with torch.no_grad():
            proposals, _ = student.rpn(batch, s_features)
    finally:
        student.rpn.training = True
    rois = [p[:rois_per_image] for p in proposals]
    s_logits, _ = _roi_logits(student, s_features, rois, batch.image_sizes)
    with torch.no_grad():
        t_features = teacher.backbone(batch.tensors)
        t_logits, _ = _roi_logits(teacher, t_features, rois, batch.image_sizes)
    levels = _pyramid(s_features)
    s_levels = [s_features[k] for k in levels]
    return {"feat": feature_mse(adapters(s_levels) if adapters is not None else s_levels,
                                [t_features[k] for k in levels]),
            "kd": logit_kd(s_logits, t_logits, temperature, mode=kd_mode)}


def detector_losses(model: FasterRCNN, images: list[torch.Tensor],
                    targets: list[dict]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The plain Faster R-CNN losses of a model in train mode: (their sum, the dict)."""
    if not model.training:
        raise ValueError("detector_losses: the model must be in train mode")
    losses = model(images, targets)
    return sum(losses.values()), losses

"""The detection student's training step: Faster R-CNN losses + distillation from a frozen teacher detector.

`student_step_losses` runs the student's own forward (so a DDP-wrapped student all-reduces its gradients) and reads
what the teacher needs from it with hooks: the student's transformed images, FPN levels, RPN head outputs, the ROIs its
ROI head samples for its loss and their class logits and box deltas (torchvision 0.29's ``GeneralizedRCNN`` /
``RegionProposalNetwork`` / ``RoIHeads``). Distilled: the FPN levels (feat), the ROI class logits and the RPN
objectness (kd), the box deltas of the ROI head and the RPN (box).
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN

from nnunet_kd.protocol.distill import FeatureAdapters, feature_mse, logit_kd


def _roi_logits(model: FasterRCNN, features, proposals, image_sizes) -> tuple[torch.Tensor, torch.Tensor]:
    """(class logits, box deltas) of the model's ROI head on the ROIs."""
    heads = model.roi_heads
    return heads.box_predictor(heads.box_head(heads.box_roi_pool(features, proposals, image_sizes)))


def box_kd(student_deltas: torch.Tensor, teacher_deltas: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Smooth L1 (beta 1/9, torchvision's) of the student's box deltas to the teacher's, (rows, 4), summed over the 4
    coordinates and weighted with ``weights`` (the teacher's probability that the row is an object), in fp32: the
    weighted mean, or, where the weights add up to less than one object, their weighted sum."""
    per_row = F.smooth_l1_loss(student_deltas.float(), teacher_deltas.float(), beta=1 / 9, reduction="none").sum(-1)
    weights = weights.float()
    return (weights * per_row).sum() / weights.sum().clamp(min=1.0)


def roi_box_kd(s_deltas: torch.Tensor, t_deltas: torch.Tensor, t_logits: torch.Tensor) -> torch.Tensor:
    """`box_kd` of the ROI head's deltas for each ROI's class the teacher finds most likely among the objects,
    weighted by the teacher's probability that the ROI is an object (1 - background)."""
    n, c = t_logits.shape
    p = t_logits.float().softmax(1)
    cls = p[:, 1:].argmax(1) + 1
    rows = torch.arange(n, device=t_logits.device)
    return box_kd(s_deltas.reshape(n, c, 4)[rows, cls], t_deltas.reshape(n, c, 4)[rows, cls], 1 - p[:, 0])


def rpn_terms(s_head: tuple, t_head: tuple, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(objectness KD, box KD) of the RPN head outputs (objectness, deltas; one tensor per level) of student and
    teacher: `logit_kd` of the anchors' objectness as Bernoulli distributions, and `box_kd` of the anchors' deltas
    weighted by the teacher's objectness probability, each averaged over the levels."""
    (s_obj, s_del), (t_obj, t_del) = s_head, t_head
    kd = sum(logit_kd(s, t, temperature, regions=True) for s, t in zip(s_obj, t_obj)) / len(s_obj)
    box = sum(box_kd(sd.reshape(-1, 4, *sd.shape[-2:]).movedim(1, -1).reshape(-1, 4),
                     td.reshape(-1, 4, *td.shape[-2:]).movedim(1, -1).reshape(-1, 4), to.sigmoid().reshape(-1))
              for sd, td, to in zip(s_del, t_del, t_obj)) / len(s_del)
    return kd, box


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

    def rpn_head(module, args, out):
        seen["rpn"] = out

    def pool(module, args):
        seen.update(rois=args[1], image_sizes=args[2])

    def predictor(module, args, out):
        seen["logits"], seen["deltas"] = out

    heads = model.roi_heads
    hooks = [model.backbone.register_forward_hook(backbone), model.rpn.head.register_forward_hook(rpn_head),
             heads.box_roi_pool.register_forward_pre_hook(pool), heads.box_predictor.register_forward_hook(predictor)]
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
      sampled proposals), plus the RPN objectness KD of `rpn_terms`;
    - box: `roi_box_kd` of the same ROIs' box deltas plus the RPN box KD of `rpn_terms`.
    """
    if not student.training or teacher.training:
        raise ValueError("student_step_losses: the student must be in train mode and the teacher in eval mode")
    with _forward_internals(_inner(student)) as seen:
        losses = dict(student(images, targets))
    s_features = seen["features"]
    with torch.no_grad():
        t_features = teacher.backbone(seen["tensors"])
        t_logits, t_deltas = _roi_logits(teacher, t_features, seen["rois"], seen["image_sizes"])
        t_rpn = teacher.rpn.head(list(t_features.values()))
    levels = _pyramid(s_features)
    if levels != _pyramid(t_features):
        raise ValueError(f"student FPN levels {levels} differ from the teacher's {_pyramid(t_features)}")
    s_levels = [s_features[k] for k in levels]
    losses["feat"] = feature_mse(adapters(s_levels) if adapters is not None else s_levels,
                                 [t_features[k] for k in levels])
    rpn_kd, rpn_box = rpn_terms(seen["rpn"], t_rpn, temperature)
    losses["kd"] = logit_kd(seen["logits"], t_logits, temperature, mode=kd_mode) + rpn_kd
    losses["box"] = roi_box_kd(seen["deltas"], t_deltas, t_logits) + rpn_box
    return losses


def unlabelled_kd_losses(student: FasterRCNN, teacher: FasterRCNN, images: list[torch.Tensor], temperature: float,
                         adapters: FeatureAdapters | None = None, kd_mode: str = "voxel",
                         rois_per_image: int = 128) -> dict[str, torch.Tensor]:
    """The distillation terms on images without boxes, as in `student_step_losses`: the FPN levels (feat), the ROI
    class logits and the RPN objectness (kd), the ROI and RPN box deltas (box), on the student's ``rois_per_image``
    best proposals (its RPN run as at inference: nothing to sample against), scored by both ROI heads."""
    if not student.training or teacher.training:
        raise ValueError("unlabelled_kd_losses: the student must be in train mode and the teacher in eval mode")
    batch, _ = student.transform(images)
    s_features = student.backbone(batch.tensors)
    s_rpn = student.rpn.head(list(s_features.values()))
    student.rpn.training = False
    try:
        with torch.no_grad():
            proposals, _ = student.rpn(batch, s_features)
    finally:
        student.rpn.training = True
    rois = [p[:rois_per_image] for p in proposals]
    s_logits, s_deltas = _roi_logits(student, s_features, rois, batch.image_sizes)
    with torch.no_grad():
        t_features = teacher.backbone(batch.tensors)
        t_logits, t_deltas = _roi_logits(teacher, t_features, rois, batch.image_sizes)
        t_rpn = teacher.rpn.head(list(t_features.values()))
    levels = _pyramid(s_features)
    s_levels = [s_features[k] for k in levels]
    rpn_kd, rpn_box = rpn_terms(s_rpn, t_rpn, temperature)
    return {"feat": feature_mse(adapters(s_levels) if adapters is not None else s_levels,
                                [t_features[k] for k in levels]),
            "kd": logit_kd(s_logits, t_logits, temperature, mode=kd_mode) + rpn_kd,
            "box": roi_box_kd(s_deltas, t_deltas, t_logits) + rpn_box}


def detector_losses(model: FasterRCNN, images: list[torch.Tensor],
                    targets: list[dict]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The plain Faster R-CNN losses of a model in train mode: (their sum, the dict)."""
    if not model.training:
        raise ValueError("detector_losses: the model must be in train mode")
    losses = model(images, targets)
    return sum(losses.values()), losses

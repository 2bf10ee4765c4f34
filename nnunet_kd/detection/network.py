"""2D detection networks: torchvision Faster R-CNN on an FPN over the plans' encoder (or a torchvision ResNet), and the
detection joint teacher (frozen teacher encoders, level-wise fusion, a new FPN + RPN + ROI heads).

Every detector is a torchvision ``FasterRCNN`` (train mode: ``model(images, targets)`` -> losses; eval mode:
``model(images)`` -> detections), built with ``num_classes + 1`` outputs (torchvision's class 0 is the background, so
category index k is label k + 1). Nothing is ever downloaded: all weights are random.

Settings shared by every detector (`_rcnn_kwargs`):
- transform: no normalisation (mean 0, std 1: nnU-Net has normalised the data) and min/max size = the patch's shorter
  and longer side, so a patch is never resized (whole images are detected in patch-sized tiles:
  `nnunet_kd.detection.inference`);
- FPN levels: encoder stages with isotropic strides that double from level to level (`_pyramid_levels`: for nnU-Net
  plans, the stages after the full-resolution one), plus torchvision's max-pool level "pool";
- anchors: one size per level, 4 x the level's stride (small objects; at most the patch's longer side), aspect ratios
  0.5, 1, 2; ROI pooling on the non-pool levels, with a box of 4 x stride mapped to the level of that stride.

Features of the latest forward: the plans encoder's (or the joint teacher's fused) stage outputs with
``EncoderTap(model.backbone)`` (`nnunet_kd.protocol.taps`; the encoder is ``model.backbone.encoder``), the FPN
levels with ``ModuleOutputTap([model.backbone])``.
"""
import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from dynamic_network_architectures.initialization.weight_init import InitWeights_He
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from nnunet_kd.core.errors import KDError
from nnunet_kd.core.fused_encoders import FusedTeacherEncoders, plans_encoder
from nnunet_kd.protocol.taps import encoder_spec

JOINT_CLASS_NAME = f"{__name__}.DetJointTeacherNetwork"
RESNETS = ("resnet18", "resnet34", "resnet50")


def _cumulative_strides(strides) -> list:
    """Per stage, the stride of its output relative to the input, per axis."""
    out, cum = [], None
    for s in strides:
        s = list(s) if isinstance(s, (list, tuple)) else [s, s]
        cum = s if cum is None else [c * x for c, x in zip(cum, s)]
        out.append(cum)
    return out


def _pyramid_levels(strides) -> list[int]:
    """The first run of stages with isotropic strides > 1 that double from one to the next, as torchvision's
    MultiScaleRoIAlign and LastLevelMaxPool assume."""
    levels, prev = [], None
    for i, cum in enumerate(_cumulative_strides(strides)):
        if len(set(cum)) == 1 and cum[0] > 1 and (prev is None or cum[0] == 2 * prev):
            levels.append(i)
            prev = cum[0]
        elif levels:
            break
    if not levels:
        raise KDError(f"Encoder strides {strides} have no isotropic downsampling stage to build an FPN on.")
    return levels


class PlansFPNBackbone(nn.Module):
    """encoder (stage outputs, nnU-Net's skips) -> FPN over the stages ``levels`` (default `_pyramid_levels`; given
    ones must have isotropic strides doubling from level to level) + a max-pool level. Returns OrderedDict "0", "1",
    ..., "pool"; ``level_strides``: the strides of "0", "1", ..."""

    def __init__(self, encoder: nn.Module, out_channels: int = 64, levels: Sequence[int] | None = None):
        super().__init__()
        self.encoder = encoder
        self.levels = list(_pyramid_levels(encoder.strides) if levels is None else levels)
        cum = _cumulative_strides(encoder.strides)
        self.level_strides = [cum[lv][0] for lv in self.levels]
        self.fpn = FeaturePyramidNetwork([encoder.output_channels[lv] for lv in self.levels], out_channels,
                                         LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        skips = self.encoder(x)
        return self.fpn(OrderedDict((str(i), skips[lv]) for i, lv in enumerate(self.levels)))


def _resnet_backbone(name: str, input_channels: int, out_channels: int) -> BackboneWithFPN:
    """A randomly initialised torchvision ResNet (BatchNorm, as torchvision uses without pretrained weights; nothing
    frozen, i.e. trainable_layers=5) with its first conv taking ``input_channels``, + an FPN of ``out_channels`` on
    layer1..layer4 (strides 4..32) + a max-pool level. It has no ``encoder``: the ResNet is ``backbone.body``."""
    if name not in RESNETS:
        raise KDError(f"Detection backbone '{name}' is not one of plans, {', '.join(RESNETS)}.")
    body = getattr(resnet, name)(weights=None)
    body.conv1 = nn.Conv2d(input_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(body.conv1.weight, mode="fan_out", nonlinearity="relu")
    widths = [body.inplanes // 8 * 2 ** i for i in range(4)]
    backbone = BackboneWithFPN(body, {f"layer{i + 1}": str(i) for i in range(4)}, widths, out_channels,
                               extra_blocks=LastLevelMaxPool())
    backbone.level_strides = [4, 8, 16, 32]
    return backbone


def _rcnn_kwargs(backbone: nn.Module, input_channels: int, patch_size, rpn_batch_size_per_image: int,
                 box_batch_size_per_image: int, box_detections_per_img: int, **rcnn_kwargs) -> dict:
    """FasterRCNN keyword arguments for a backbone with ``level_strides`` (module docstring)."""
    if len(patch_size) != 2:
        raise KDError(f"Detection is 2D only; the patch size is {list(patch_size)}.")
    strides = list(backbone.level_strides)
    sizes = [min(4 * s, max(patch_size)) for s in strides + [2 * strides[-1]]]
    return dict(min_size=min(patch_size), max_size=max(patch_size), image_mean=[0.0] * input_channels,
                image_std=[1.0] * input_channels, size_divisible=strides[-1],
                rpn_anchor_generator=AnchorGenerator(tuple((s,) for s in sizes), ((0.5, 1.0, 2.0),) * len(sizes)),
                box_roi_pool=MultiScaleRoIAlign([str(i) for i in range(len(strides))], 7, 2,
                                                canonical_scale=4 * strides[-1],
                                                canonical_level=int(math.log2(strides[-1]))),
                rpn_batch_size_per_image=rpn_batch_size_per_image, box_batch_size_per_image=box_batch_size_per_image,
                box_detections_per_img=box_detections_per_img, **rcnn_kwargs)


def build_detector(architecture: dict, input_channels: int, num_classes: int, patch_size, backbone: str = "plans",
                   fpn_channels: int = 64, rpn_batch_size_per_image: int = 256, box_batch_size_per_image: int = 128,
                   box_detections_per_img: int = 100, **rcnn_kwargs) -> FasterRCNN:
    """Faster R-CNN on the plans encoder (``backbone="plans"``) or a torchvision ResNet (resnet18/34/50).
    ``num_classes`` excludes the background; further FasterRCNN arguments go through ``rcnn_kwargs``."""
    if backbone == "plans":
        fpn = PlansFPNBackbone(plans_encoder(architecture, input_channels), fpn_channels)
    else:
        fpn = _resnet_backbone(backbone, input_channels, fpn_channels)
    return FasterRCNN(fpn, num_classes + 1, **_rcnn_kwargs(
        fpn, input_channels, patch_size, rpn_batch_size_per_image, box_batch_size_per_image, box_detections_per_img,
        **rcnn_kwargs))


class _FusedEncoder(FusedTeacherEncoders):
    """The fused teacher encoders on the shared architecture's pyramid stages only (so that every fused level feeds the
    FPN and is trained). ``strides`` are the strides between the returned levels (the first relative to the input),
    so it is an encoder of its own."""

    def __init__(self, input_channels: int, teachers: Sequence[dict], shared: dict, fusion_levels: Sequence[int],
                 adapter_norm: bool):
        strides = encoder_spec(shared["arch_kwargs"], shared["_kw_requires_import"]).strides
        levels = _pyramid_levels(strides)
        super().__init__(input_channels, teachers, shared, fusion_levels, adapter_norm, levels=levels)
        self.strides = [_cumulative_strides(strides)[levels[0]]] + [strides[lv] for lv in levels[1:]]
        self.conv_op = self.spec.conv_op
        InitWeights_He(1e-2)(self.fusion)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.fused_features(x)


class DetJointTeacherNetwork(FasterRCNN):
    """A Faster R-CNN whose backbone is a `PlansFPNBackbone` on a `_FusedEncoder`: the teacher encoders stay frozen
    (and in eval mode), the fusion, FPN, RPN and ROI heads are trained on the target. ``fusion_levels`` are stage
    indices of the shared architecture; those outside its pyramid stages are not used. The fused features of the
    latest forward: ``EncoderTap(model.backbone)``, one per pyramid stage, stage indices in
    ``model.backbone.encoder.levels``."""

    def __init__(self, input_channels: int, num_classes: int, teachers: Sequence[dict], shared: dict,
                 fusion_levels: Sequence[int], patch_size, adapter_norm: bool = False, fpn_channels: int = 64,
                 rpn_batch_size_per_image: int = 256, box_batch_size_per_image: int = 128,
                 box_detections_per_img: int = 100, **rcnn_kwargs):
        encoder = _FusedEncoder(input_channels, teachers, shared, fusion_levels, adapter_norm)
        fpn = PlansFPNBackbone(encoder, fpn_channels)
        super().__init__(fpn, num_classes + 1, **_rcnn_kwargs(
            fpn, input_channels, patch_size, rpn_batch_size_per_image, box_batch_size_per_image,
            box_detections_per_img, **rcnn_kwargs))


def build_det_network(architecture: dict, input_channels: int, num_classes: int, patch_size,
                      **det_kwargs) -> FasterRCNN:
    """The detector a detection model folder's plans ``architecture`` describes (``det_kwargs``: see
    `build_detector` / `DetJointTeacherNetwork`)."""
    if architecture["network_class_name"] == JOINT_CLASS_NAME:
        return DetJointTeacherNetwork(input_channels, num_classes, patch_size=patch_size, **architecture["arch_kwargs"],
                                      **det_kwargs)
    return build_detector(architecture, input_channels, num_classes, patch_size, **det_kwargs)


def joint_architecture(teacher_architectures: Sequence[dict], shared_architecture: dict, fusion_levels: list[int],
                       adapter_norm: bool) -> dict:
    """The plans ``architecture`` entry of a detection joint teacher (teachers: plans architecture entries)."""
    return {"network_class_name": JOINT_CLASS_NAME,
            "arch_kwargs": {"teachers": list(teacher_architectures), "shared": shared_architecture,
                            "fusion_levels": list(fusion_levels), "adapter_norm": adapter_norm},
            "_kw_requires_import": []}

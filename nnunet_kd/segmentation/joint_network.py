"""The joint teacher's network: frozen teacher encoders -> level-wise fusion -> a new nnU-Net decoder.

It is built by nnU-Net's ``get_network_from_plans`` from the ``architecture`` entry of the joint teacher's model folder
plans (``network_class_name`` = this class), so final validation, ``--c`` and ``nnUNetv2_predict`` rebuild it without
``nnUNet_extTrainer``.
"""
from typing import List, Sequence, Union

import torch
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from dynamic_network_architectures.initialization.weight_init import InitWeights_He
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from torch import nn

from nnunet_kd.protocol.fusion import MultiLevelFusion
from nnunet_kd.protocol.taps import encoder_spec
from nnunet_kd.protocol.teachers import freeze

CLASS_NAME = f"{__name__}.JointTeacherNetwork"


class JointTeacherNetwork(nn.Module):
    def __init__(self, input_channels: int, num_classes: int, teachers: Sequence[dict], decoder: dict,
                 fusion_levels: Sequence[int], strides: Sequence, adapter_norm: bool = False,
                 deep_supervision: bool = False):
        """teachers: per teacher its plans ``architecture`` entry plus ``num_classes``; decoder: the shared plans'
        ``architecture`` entry, whose widths are the fused widths and whose decoder settings the new decoder uses;
        strides: the shared strides (nnU-Net reads them from the plans for deep supervision)."""
        super().__init__()
        encoders = []
        for t in teachers:
            net = get_network_from_plans(t["network_class_name"], t["arch_kwargs"], t["_kw_requires_import"],
                                         input_channels, t["num_classes"], allow_init=False, deep_supervision=False)
            encoders.append(freeze(net.encoder))
        self.teacher_encoders = nn.ModuleList(encoders)
        spec = encoder_spec(decoder["arch_kwargs"], decoder["_kw_requires_import"])
        self.fusion = MultiLevelFusion([list(e.output_channels) for e in encoders], spec.output_channels, fusion_levels,
                                       conv_op=spec.conv_op, norm_op=spec.norm_op, norm_op_kwargs=spec.norm_op_kwargs,
                                       nonlin=spec.nonlin, nonlin_kwargs=spec.nonlin_kwargs, adapter_norm=adapter_norm)
        self.decoder = UNetDecoder(spec, num_classes, decoder["arch_kwargs"]["n_conv_per_stage_decoder"],
                                   deep_supervision)

    @staticmethod
    def initialize(module):
        InitWeights_He(1e-2)(module)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher_encoders.eval()  # frozen teachers stay in eval mode although nnU-Net calls train() every epoch
        return self

    def teacher_features(self, x: torch.Tensor) -> List[List[torch.Tensor]]:
        with torch.no_grad():
            return [enc(x) for enc in self.teacher_encoders]

    def forward(self, x: torch.Tensor, return_features: bool = False):
        fused = self.fusion(self.teacher_features(x))
        out = self.decoder(fused)
        return (out, fused) if return_features else out


def resolve_levels(levels: Union[str, Sequence[int]], n_stages: int) -> List[int]:
    """'encoder' = every encoder stage incl. the bottleneck, 'bottleneck' = the last one, or explicit indices."""
    if levels == "encoder":
        return list(range(n_stages))
    if levels == "bottleneck":
        return [n_stages - 1]
    return sorted({int(lv) % n_stages for lv in levels})


def joint_architecture(teachers, shared_architecture: dict, fusion: dict) -> dict:
    """The plans ``architecture`` entry of a joint teacher."""
    n = shared_architecture["arch_kwargs"]["n_stages"]
    return {
        "network_class_name": CLASS_NAME,
        "arch_kwargs": {
            "teachers": [dict(t.arch, num_classes=t.num_outputs) for t in teachers],
            "decoder": shared_architecture,
            "fusion_levels": resolve_levels(fusion["levels"], n),
            "strides": shared_architecture["arch_kwargs"]["strides"],
            "adapter_norm": fusion["adapter_norm"],
        },
        "_kw_requires_import": [],
    }

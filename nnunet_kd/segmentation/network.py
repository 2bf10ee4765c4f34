"""The joint teacher's network: frozen teacher encoders -> level-wise fusion -> a new nnU-Net decoder.

It is built by nnU-Net's ``get_network_from_plans`` from the ``architecture`` entry of the joint teacher's model folder
plans (``network_class_name`` = this class), so final validation, ``--c`` and ``nnUNetv2_predict`` rebuild it without
``nnUNet_extTrainer``.
"""
from collections.abc import Sequence

import torch
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from dynamic_network_architectures.initialization.weight_init import InitWeights_He

from nnunet_kd.core.fused_encoders import FusedTeacherEncoders

CLASS_NAME = f"{__name__}.JointTeacherNetwork"


class JointTeacherNetwork(FusedTeacherEncoders):
    def __init__(self, input_channels: int, num_classes: int, teachers: Sequence[dict], decoder: dict,
                 fusion_levels: Sequence[int], strides: Sequence, adapter_norm: bool = False,
                 deep_supervision: bool = False):
        """teachers: per teacher its plans ``architecture`` entry (plus its ``num_classes``); decoder: the shared
        plans' ``architecture`` entry, whose widths are the fused widths and whose decoder settings the new decoder
        uses; strides: the shared strides (nnU-Net reads them from the plans for deep supervision)."""
        super().__init__(input_channels, teachers, decoder, fusion_levels, adapter_norm)
        self.decoder = UNetDecoder(self.spec, num_classes, decoder["arch_kwargs"]["n_conv_per_stage_decoder"],
                                   deep_supervision)

    @staticmethod
    def initialize(module):
        InitWeights_He(1e-2)(module)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        fused = self.fused_features(x)
        out = self.decoder(fused)
        return (out, fused) if return_features else out


def joint_architecture(teachers, shared_architecture: dict, fusion_levels: list[int], adapter_norm: bool) -> dict:
    """The plans ``architecture`` entry of a joint teacher."""
    return {
        "network_class_name": CLASS_NAME,
        "arch_kwargs": {
            "teachers": [dict(t.arch, num_classes=t.num_outputs) for t in teachers],
            "decoder": shared_architecture,
            "fusion_levels": list(fusion_levels),
            "strides": shared_architecture["arch_kwargs"]["strides"],
            "adapter_norm": adapter_norm,
        },
        "_kw_requires_import": [],
    }

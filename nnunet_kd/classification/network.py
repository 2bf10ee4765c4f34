"""Classification networks: the plans' encoder (PlainConv or ResEnc, or a timm backbone) + pooling + a linear head,
and the classification joint teacher (frozen teacher encoders, level-wise fusion, a head on every fused level)."""
from collections.abc import Sequence

import torch
from dynamic_network_architectures.initialization.weight_init import InitWeights_He
from torch import nn

from nnunet_kd.core.checkpoints import safe_torch_load
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.fused_encoders import FusedTeacherEncoders, plans_encoder

JOINT_CLASS_NAME = f"{__name__}.ClsJointTeacherNetwork"


def pool(x: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and maximum over space: (batch, 2 * channels). The mean alone of nnU-Net's instance-normalised
    features holds little more than the shape of each channel's distribution (a classifier on it stayed at chance
    from some initialisations); the maximum tells whether a pattern is anywhere in the image."""
    flat = x.flatten(2)
    return torch.cat((flat.mean(2), flat.amax(2)), 1)


class ClsNetwork(nn.Module):
    """encoder -> mean and max pooling of the bottleneck -> linear layer. ``encoder`` returns its stage outputs
    (nnU-Net's skips) and has ``output_channels`` and ``conv_op``, so the protocol modules (taps, domain heads,
    adapters) treat it like a segmentation encoder."""

    def __init__(self, encoder: nn.Module, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(2 * encoder.output_channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(pool(self.encoder(x)[-1]))


class TimmEncoder(nn.Module):
    """A 2D timm backbone (``features_only``), randomly initialised or loaded from a local file; never downloaded."""

    def __init__(self, name: str, input_channels: int, weights: str | None = None):
        super().__init__()
        import timm
        try:
            self.model = timm.create_model(name, pretrained=False, features_only=True, in_chans=input_channels)
        except RuntimeError as e:
            raise KDError(f"timm backbone '{name}': {e}. Names: timm.list_models().") from None
        if weights:
            state = safe_torch_load(weights, f"Point it at a state dict of timm backbone '{name}'.")
            state = state.get("state_dict", state) if isinstance(state, dict) else {}
            missing, _ = self.model.load_state_dict(state, strict=False)
            if len(missing) == len(self.model.state_dict()):
                raise KDError(f"{weights} holds no weights of timm backbone '{name}'.")
        self.output_channels = list(self.model.feature_info.channels())
        self.conv_op = nn.Conv2d

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x)


def build_cls_network(architecture: dict, input_channels: int, num_classes: int,
                      backbone: dict | None = None) -> nn.Module:
    """The network a classification model folder's plans ``architecture`` describes."""
    if architecture["network_class_name"] == JOINT_CLASS_NAME:
        return ClsJointTeacherNetwork(input_channels, num_classes, **architecture["arch_kwargs"])
    if backbone and backbone.get("name"):
        return ClsNetwork(TimmEncoder(backbone["name"], input_channels, backbone.get("weights")), num_classes)
    return ClsNetwork(plans_encoder(architecture, input_channels), num_classes)


class ClsJointTeacherNetwork(FusedTeacherEncoders):
    """Frozen teacher encoders -> level-wise fusion -> pooled fused levels, concatenated -> linear head. Every fused
    level feeds the head, so every level the student distils is trained."""

    def __init__(self, input_channels: int, num_classes: int, teachers: Sequence[dict], shared: dict,
                 fusion_levels: Sequence[int], adapter_norm: bool = False):
        super().__init__(input_channels, teachers, shared, fusion_levels, adapter_norm)
        self.head = nn.Linear(2 * sum(self.output_channels), num_classes)
        InitWeights_He(1e-2)(self.fusion)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        fused = self.fused_features(x)
        logits = self.head(torch.cat([pool(f) for f in fused], 1))
        return (logits, fused) if return_features else logits


def joint_architecture(teachers, shared_architecture: dict, fusion_levels: list[int], adapter_norm: bool) -> dict:
    """The plans ``architecture`` entry of a classification joint teacher."""
    return {"network_class_name": JOINT_CLASS_NAME,
            "arch_kwargs": {"teachers": [t.arch for t in teachers], "shared": shared_architecture,
                            "fusion_levels": fusion_levels, "adapter_norm": adapter_norm},
            "_kw_requires_import": []}

"""The baselines: the dataset-specific model (nnU-Net's default trainer, the target teacher) and the multi-head model
(one shared encoder, one decoder per dataset, batches from all datasets).

``self.network`` is the stock network (shared encoder + the target's decoder), so the target head is a stock nnU-Net
checkpoint, validated and predicted like any nnU-Net model; the source decoders live in ``kd_state``.
"""

import torch
from batchgenerators.utilities.file_and_folder_operations import join, load_json
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.helpers import dummy_context
from torch import autocast, nn

from nnunet_kd.protocol.taps import EncoderTap, spec_of_encoder
from nnunet_kd.roles.multi_head import MultiHeadRole
from nnunet_kd.core.trainer import KDTrainerMixin


class SourceDecoders(nn.Module):
    """One nnU-Net decoder per source dataset on the shared encoder's skips."""

    def __init__(self, encoder: nn.Module, num_classes: list[int], n_conv_per_stage_decoder, deep_supervision: bool):
        super().__init__()
        spec = spec_of_encoder(encoder)  # no encoder registered inside the decoders
        self.decoders = nn.ModuleList(UNetDecoder(spec, n, n_conv_per_stage_decoder, deep_supervision)
                                      for n in num_classes)

    def forward(self, skips: list[torch.Tensor], slices: list[slice]):
        return [dec([s[sl] for s in skips]) for dec, sl in zip(self.decoders, slices)]


class nnUNetTrainerMultiHead(MultiHeadRole, nnUNetTrainer):
    """Multi-head segmentation: one nnU-Net decoder per source on the shared encoder, nnU-Net's loss for each."""

    def _source_label_manager(self, source: str):
        return self.plans_manager.get_label_manager(load_json(join(nnUNet_preprocessed.get(), source, "dataset.json")))

    def build_kd_modules(self) -> None:
        net = self.stock_network()
        heads = [self._source_label_manager(s).num_segmentation_heads for s in self.sources]
        self.kd_modules = SourceDecoders(net.encoder, heads,
                                         self.configuration_manager.network_arch_init_kwargs["n_conv_per_stage_decoder"],
                                         self.enable_deep_supervision)
        self.tap = EncoderTap(net)
        # nnU-Net's loss for each source's labels (regions, ignore label)
        own = self.label_manager
        try:
            for s in self.sources:
                self.label_manager = self._source_label_manager(s)
                self.source_losses.append(self._build_loss())
        finally:
            self.label_manager = own

    def train_step(self, batch: dict) -> dict:
        batches, x, slices = self.all_batches(batch)
        targets = [[t.to(self.device, non_blocking=True) for t in b["target"]] if isinstance(b["target"], list)
                   else b["target"].to(self.device, non_blocking=True) for b in batches]

        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            output = self.network(x)  # one forward of all datasets through the shared encoder
            skips = self.tap.pop()
            t_out = [o[slices[0]] for o in output] if isinstance(output, (list, tuple)) else output[slices[0]]
            target_loss = self.loss(t_out, targets[0])
            source_outputs = self.extras(skips, slices[1:])
            source_loss = sum(loss(o, t) for loss, o, t in zip(self.source_losses, source_outputs, targets[1:]))
            loss = target_loss + source_loss
        return self.backward_and_step(loss, {"loss": loss, "target_loss": target_loss, "source_loss": source_loss})


class nnUNetTrainerKD(KDTrainerMixin, nnUNetTrainer):
    """nnU-Net's default trainer with the plugin's checkpoint format and seeding (the target teacher's short variants)."""

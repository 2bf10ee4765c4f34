"""Classification baselines: the dataset-specific classifier (the target teacher) and the multi-head model."""

import torch
from batchgenerators.utilities.file_and_folder_operations import join, load_json
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.helpers import dummy_context
from torch import autocast, nn

from nnunet_kd.classification.labels import class_names
from nnunet_kd.classification.network import pool
from nnunet_kd.classification.trainer import ClsTrainerMixin, case_classes_of, class_weighted_ce
from nnunet_kd.protocol.taps import EncoderTap
from nnunet_kd.roles.multi_head import MultiHeadRole
from nnunet_kd.core.trainer import KDTrainerMixin


class nnUNetTrainerCls(ClsTrainerMixin, KDTrainerMixin, nnUNetTrainer):
    """Dataset-specific classifier: the plans' encoder + mean and max pooling + a linear head, class-weighted CE."""

    supports_backbone = True


class SourceHeads(nn.Module):
    """One linear head per source dataset on the shared encoder's pooled bottleneck."""

    def __init__(self, channels: int, num_classes: list[int]):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(2 * channels, n) for n in num_classes)

    def forward(self, bottleneck: torch.Tensor, slices: list[slice]) -> list[torch.Tensor]:
        pooled = pool(bottleneck)
        return [head(pooled[sl]) for head, sl in zip(self.heads, slices)]


class nnUNetTrainerClsMultiHead(ClsTrainerMixin, MultiHeadRole, nnUNetTrainer):
    """Multi-head baseline: one shared encoder, the target's head in ``self.network``, one head per source in
    ``kd_state``; every step draws a batch of each dataset."""

    supports_backbone = True

    def build_kd_modules(self) -> None:
        net = self.stock_network()
        self.source_case_classes, counts = [], []
        for s in self.sources:
            dj = load_json(join(nnUNet_preprocessed.get(), s, "dataset.json"))
            cc = case_classes_of(s, dj)
            self.source_case_classes.append(cc)
            counts.append(torch.bincount(torch.tensor(list(cc.values())), minlength=len(class_names(dj))).numpy())
        self.kd_modules = SourceHeads(net.encoder.output_channels[-1], [len(c) for c in counts])
        self.source_losses = [class_weighted_ce(c, self.cls_settings.class_weights, self.device) for c in counts]
        self.tap = EncoderTap(net)

    def train_step(self, batch: dict) -> dict:
        batches, x, slices = self.all_batches(batch)
        targets = [self.class_targets(b["keys"], cc).to(self.device, non_blocking=True)
                   for b, cc in zip(batches, [self.case_classes] + self.source_case_classes)]

        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            logits = self.network(x)  # one forward of all datasets through the shared encoder
            bottleneck = self.tap.pop()[-1]
            target_loss = self.loss(logits[slices[0]], targets[0])
            source_logits = self.extras(bottleneck, slices[1:])
            source_loss = sum(loss(o, t) for loss, o, t in zip(self.source_losses, source_logits, targets[1:]))
            loss = target_loss + source_loss
        return self.backward_and_step(loss, {"loss": loss, "target_loss": target_loss, "source_loss": source_loss})

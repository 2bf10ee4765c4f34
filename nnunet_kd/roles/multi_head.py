"""The multi-head baseline, task-free: one shared encoder, one head per dataset, a batch of every dataset per step."""

import torch

from nnunet_kd.data.loaders import dataset_loader, shutdown
from nnunet_kd.core.datasets import dataset_name
from nnunet_kd.core.trainer import KDTrainerMixin


class MultiHeadRole(KDTrainerMixin):
    """The target's head in ``self.network``; the task's source heads (``build_kd_modules``) in ``kd_state``; every
    step draws a batch of each dataset (``all_batches``). Mix in before the nnU-Net trainer."""

    requires_kd_block = True
    trains_on_target = True
    kd_role = "multihead"
    kd_log_keys = ["target_losses", "source_losses"]

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.sources = [dataset_name(s["dataset"]) for s in self.kd_block["sources"]]
        self.source_loaders = []
        self.source_losses = []

    def on_train_start(self):
        super().on_train_start()
        self.source_loaders = [dataset_loader(self, s, self.batch_size, with_labels=True) for s in self.sources]

    def on_train_end(self):
        super().on_train_end()
        for loader in self.source_loaders:
            shutdown(loader)
        self.source_loaders = []

    def all_batches(self, batch: dict):
        """This step's batches (the target's, then one per source), their images concatenated on the device and the
        slice of each dataset in the concatenation."""
        batches = [batch] + [next(loader) for loader in self.source_loaders]
        sizes = [b["data"].shape[0] for b in batches]
        bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        slices = [slice(bounds[i], bounds[i + 1]) for i in range(len(sizes))]
        return batches, torch.cat([b["data"] for b in batches]).to(self.device, non_blocking=True), slices

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        self.log_epoch_means(train_outputs, {"target_losses": "target_loss", "source_losses": "source_loss"})

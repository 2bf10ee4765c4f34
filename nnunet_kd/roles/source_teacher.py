"""Stage 1 of the method: a source teacher trained on its source dataset and on unlabelled target images (DANN)."""
import os

import torch
from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.utilities.helpers import dummy_context
from torch import autocast

from nnunet_kd.data.loaders import dataset_loader, shutdown
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.datasets import dataset_id, dataset_name
from nnunet_kd.planning.shared import verify_shared_plans
from nnunet_kd.protocol.domain import (AdversarialDomainHeads, domain_loss_and_accuracy, pooled_statistics,
                                       probe_accuracy)
from nnunet_kd.protocol.grl import dann_lambda
from nnunet_kd.protocol.taps import DecoderBatchHead, EncoderTap, encoder_channels
from nnunet_kd.core.ddp import batch_head
from nnunet_kd.core.trainer import KDTrainerMixin


class SourceTeacherRole(KDTrainerMixin):
    """The task's loss (``self.loss``) on source batches + a domain classifier behind a gradient reversal layer on the
    encoder features of source and target batches (one concatenated forward through the encoder; the decoder, where
    the network has one, sees the source batch only). The network stays the stock network. Mix in before the nnU-Net
    trainer."""

    requires_kd_block = True
    kd_role = "source"
    kd_log_keys = ["task_losses", "domain_losses", "domain_accs", "domain_probe_accs", "grl_lambdas"]
    #: the epoch's domain probe fits on at most this many of its latest samples
    probe_max_samples = 2048

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.dann = self.settings.dann
        self.tap = self.decoder_head = None
        self.dataloader_target = None
        self.probe_samples = []  # (pooled features, domains, case keys) of this epoch's steps, on the device

    @classmethod
    def check_inputs(cls, plans: dict, configuration: str, fold, kd_block) -> None:
        target = dataset_name(kd_block["target"])
        if plans["dataset_name"] == target:
            raise KDError(f"{cls.__name__} trains a source teacher, but {target} is the target of plans "
                          f"'{plans['plans_name']}'. Train it on a source dataset "
                          f"(one of {[s['dataset'] for s in kd_block['sources']]}).")
        sources = [dataset_name(s["dataset"]) for s in kd_block["sources"]]
        if plans["dataset_name"] not in sources:
            raise KDError(f"{plans['dataset_name']} is not a source of plans '{plans['plans_name']}' (sources: "
                          f"{sources}). Plan it with `nnunet_kd plan -t TARGET -s ... {dataset_id(plans['dataset_name'])}`.")
        target_plans_file = join(nnUNet_preprocessed.get(), target, plans["plans_name"] + ".json")
        if not isfile(target_plans_file):
            raise KDError(f"The target's shared plans {target_plans_file} are missing. Run `nnunet_kd plan` with this "
                          f"target and source.")
        target_plans = load_json(target_plans_file)
        verify_shared_plans({plans["dataset_name"]: plans, target: target_plans}, [configuration])
        folder = join(nnUNet_preprocessed.get(), target,
                      target_plans["configurations"][configuration]["data_identifier"])
        if not isdir(folder) or not os.listdir(folder):
            raise KDError(f"The target {target} has no preprocessed data in {folder}, which the source teacher draws "
                          f"target-domain images from. Rerun `nnunet_kd plan`; it preprocesses what is missing.")

    def build_kd_modules(self) -> None:
        net = self.stock_network()
        self.kd_modules = AdversarialDomainHeads(encoder_channels(net), self.dann.levels, self.dann.hidden)
        self.tap = EncoderTap(net)
        self.decoder_head = DecoderBatchHead(net) if hasattr(net, "decoder") else None

    @property
    def total_steps(self) -> int:
        return self.num_epochs * self.num_iterations_per_epoch

    def on_train_start(self):
        super().on_train_start()
        self.dataloader_target = dataset_loader(self, dataset_name(self.kd_block["target"]), self.target_batch_size)

    @property
    def target_batch_size(self) -> int:
        """dann.target_batch_size, by default half the source batch (rounded up)."""
        return self.dann.target_batch_size or (self.batch_size + 1) // 2

    def on_train_end(self):
        super().on_train_end()
        shutdown(self.dataloader_target)
        self.dataloader_target = None

    def train_step(self, batch: dict) -> dict:
        data, target = batch["data"], batch["target"]
        target_batch = next(self.dataloader_target)
        target_images = target_batch["data"]
        n_src = data.shape[0]
        x = torch.cat((data, target_images)).to(self.device, non_blocking=True)
        target = [t.to(self.device, non_blocking=True) for t in target] if isinstance(target, list) \
            else target.to(self.device, non_blocking=True)
        domain = torch.cat((torch.zeros(n_src), torch.ones(target_images.shape[0]))).to(self.device)
        lambd = dann_lambda(self.kd_step / max(1, self.total_steps), self.dann.gamma)

        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            with self.decoder_head.first(n_src) if self.decoder_head else dummy_context():
                output = self.network(x)
            skips = self.tap.pop()
            task_loss = self.loss(batch_head(output, n_src), target)
            domain_logits = self.extras(skips, lambd)
        self.record_probe_sample(skips, domain, list(batch["keys"]) + list(target_batch["keys"]))
        domain_loss, domain_acc = domain_loss_and_accuracy(domain_logits, domain)
        loss = task_loss + self.dann.weight * domain_loss
        out = self.backward_and_step(loss, {"loss": loss, "task_loss": task_loss, "domain_loss": domain_loss,
                                            "domain_acc": domain_acc})
        out["lambda"] = lambd
        return out

    def record_probe_sample(self, skips, domain: torch.Tensor, keys: list[str]) -> None:
        """Keeps the pooled features of the deepest level with a domain head for the epoch's probe."""
        self.probe_samples.append((pooled_statistics(skips[max(self.kd_modules.levels)].detach()), domain, keys))

    def epoch_probe_accuracy(self) -> float:
        """The domain probe on this epoch's batches (each worker's own under DDP), then cleared."""
        samples, self.probe_samples = self.probe_samples, []
        if not samples:
            return float("nan")
        n = self.probe_max_samples
        features = torch.cat([s[0] for s in samples])[-n:].cpu().numpy()  # one transfer per epoch
        domain = torch.cat([s[1] for s in samples])[-n:].cpu().numpy()
        groups = [f"{int(d)}:{k}" for d, k in zip(domain, [k for s in samples for k in s[2]][-n:])]
        return probe_accuracy(features, domain, groups)

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        self.log_epoch_means(train_outputs, {"task_losses": "task_loss", "domain_losses": "domain_loss",
                                             "domain_accs": "domain_acc", "grl_lambdas": "lambda"})
        self.logger.log("domain_probe_accs", self.epoch_probe_accuracy(), self.current_epoch)
        self.print_to_log_file(
            f"domain loss {self.logger.get_value('domain_losses', -1):.4f}, "
            f"domain acc {self.logger.get_value('domain_accs', -1):.3f} "
            f"(probe {self.logger.get_value('domain_probe_accs', -1):.3f}), "
            f"GRL lambda {self.logger.get_value('grl_lambdas', -1):.3f}")

"""Detection source teacher: detection losses on source patches + GRL domain heads on the encoder levels of source
patches and target images (the target images go through the encoder only)."""
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_kd.detection.distill import detector_losses
from nnunet_kd.detection.trainer import DetTrainerMixin
from nnunet_kd.protocol.domain import AdversarialDomainHeads, domain_loss_and_accuracy
from nnunet_kd.protocol.grl import dann_lambda
from nnunet_kd.protocol.taps import EncoderTap
from nnunet_kd.roles.source_teacher import SourceTeacherRole


class nnUNetTrainerDetDomainAdversarial(DetTrainerMixin, SourceTeacherRole, nnUNetTrainer):
    """Source teacher: detection losses on source patches + GRL domain heads on the encoder levels of source patches
    and target images (the target images go through the encoder only)."""

    def build_kd_modules(self) -> None:
        encoder = self.stock_network().backbone.encoder
        self.kd_modules = AdversarialDomainHeads(encoder.output_channels, self.dann.levels, self.dann.hidden)
        self.tap = EncoderTap(self.stock_network().backbone)

    def train_step(self, batch: dict) -> dict:
        images = list(batch["data"].to(self.device, non_blocking=True))
        targets = self.box_targets(batch["keys"], batch["target"])
        target_batch = next(self.dataloader_target)
        target_images = target_batch["data"].to(self.device, non_blocking=True)
        lambd = dann_lambda(self.kd_step / max(1, self.total_steps), self.dann.gamma)
        self.optimizer.zero_grad(set_to_none=True)
        task_loss, parts = detector_losses(self.network, images, targets)
        source_skips = self.tap.pop()
        self.stock_network().backbone.encoder(target_images)  # mean 0 / std 1 transform: the same input as above
        target_skips = self.tap.pop()
        skips = [torch.cat((s, t)) for s, t in zip(source_skips, target_skips)]
        domain = torch.cat((torch.zeros(len(images)), torch.ones(target_images.shape[0]))).to(self.device)
        self.record_probe_sample(skips, domain, list(batch["keys"]) + list(target_batch["keys"]))
        domain_loss, domain_acc = domain_loss_and_accuracy(self.extras(skips, lambd), domain)
        loss = task_loss + self.dann.weight * domain_loss
        out = self.backward_and_step(loss, {"loss": loss, "task_loss": task_loss, "domain_loss": domain_loss,
                                            "domain_acc": domain_acc})
        out["lambda"] = lambd
        return out

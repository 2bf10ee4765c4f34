"""The method's roles for detection: the segmentation trainers' protocol (GRL domain heads, fusion, distillation,
teacher loading) with the detector, boxes and losses of :class:`DetTrainerMixin`."""
import torch
from torch import nn

from nnunet_kd.checkpoints import load_checkpoint
from nnunet_kd.detection.coco import categories
from nnunet_kd.detection.distill import detector_losses, fpn_adapters, student_step_losses, unlabelled_kd_losses
from nnunet_kd.detection.network import build_det_network, joint_architecture
from nnunet_kd.detection.trainer import DetTrainerMixin
from nnunet_kd.protocol.domain import AdversarialDomainHeads, domain_loss_and_accuracy
from nnunet_kd.protocol.grl import dann_lambda
from nnunet_kd.protocol.taps import EncoderTap
from nnunet_kd.protocol.teachers import Teacher, freeze
from nnunet_kd.segmentation.joint_teacher import nnUNetTrainerJointTeacher
from nnunet_kd.segmentation.source_teacher import nnUNetTrainerDomainAdversarial
from nnunet_kd.segmentation.student import nnUNetTrainerJointKD


class nnUNetTrainerDetDomainAdversarial(DetTrainerMixin, nnUNetTrainerDomainAdversarial):
    """Source teacher: detection losses on source patches + GRL domain heads on the encoder levels of source patches
    and target images (the target images go through the encoder only)."""

    def build_kd_modules(self) -> None:
        encoder = self.stock_network().backbone.encoder
        self.kd_modules = AdversarialDomainHeads(encoder.output_channels, self.dann["levels"], self.dann["hidden"])
        self.tap = EncoderTap(self.stock_network().backbone)

    def train_step(self, batch: dict) -> dict:
        images = list(batch["data"].to(self.device, non_blocking=True))
        targets = self.box_targets(batch["keys"], batch["target"])
        target_batch = next(self.dataloader_target)
        target_images = target_batch["data"].to(self.device, non_blocking=True)
        lambd = dann_lambda(self.kd_step / max(1, self.total_steps), self.dann["gamma"])
        self.optimizer.zero_grad(set_to_none=True)
        task_loss, parts = detector_losses(self.network, images, targets)
        source_skips = self.tap.pop()
        self.stock_network().backbone.encoder(target_images)  # mean 0 / std 1 transform: the same input as above
        target_skips = self.tap.pop()
        skips = [torch.cat((s, t)) for s, t in zip(source_skips, target_skips)]
        domain = torch.cat((torch.zeros(len(images)), torch.ones(target_images.shape[0]))).to(self.device)
        self.record_probe_sample(skips, domain, list(batch["keys"]) + list(target_batch["keys"]))
        domain_loss, domain_acc = domain_loss_and_accuracy(self.extras(skips, lambd), domain)
        loss = task_loss + self.dann["weight"] * domain_loss
        out = self.backward_and_step(loss, {"loss": loss, "task_loss": task_loss, "domain_loss": domain_loss,
                                            "domain_acc": domain_acc})
        out["lambda"] = lambd
        return out


class nnUNetTrainerDetJointTeacher(DetTrainerMixin, nnUNetTrainerJointTeacher):
    """Frozen teachers' encoders fused level by level; new FPN, RPN and ROI heads trained on the target."""

    teacher_encoder_prefix = "backbone.encoder."

    def teacher_encoders(self):
        return self.stock_network().backbone.encoder.teacher_encoders

    def joint_architecture(self) -> dict:
        return joint_architecture([t.arch for t in self.teachers], self.configuration_manager.configuration["architecture"],
                                  self.fused_levels(), self.kd_block["fusion"]["adapter_norm"])


class nnUNetTrainerDetJointKD(DetTrainerMixin, nnUNetTrainerJointKD):
    """Student: detection losses + MSE on the FPN levels + KD of the ROI class logits on the student's proposals."""

    no_decoder = "detector"

    def build_kd_modules(self) -> None:
        self.kd_modules = fpn_adapters(self.stock_network().backbone)

    def build_joint_teacher(self, spec: Teacher) -> nn.Module:
        arch = spec.plans_dict["configurations"][spec.configuration]["architecture"]
        net = build_det_network(arch, spec.num_input_channels, len(categories(spec.dataset_json)),
                                self.configuration_manager.patch_size)
        net.load_state_dict(load_checkpoint(spec.checkpoint)["network_weights"])
        return freeze(net)

    def train_step(self, batch: dict) -> dict:
        images = list(batch["data"].to(self.device, non_blocking=True))
        targets = self.box_targets(batch["keys"], batch["target"])
        self.optimizer.zero_grad(set_to_none=True)
        d = self.distill
        losses = student_step_losses(self.network, self.joint_teacher, images, targets, d["temperature"],
                                     self.extras, d["kd_mode"])
        feat, kd = losses.pop("feat"), losses.pop("kd")
        if self.dataloader_unlabelled is not None:  # the terms as averages over labelled and unlabelled images
            # the network's parts, after its DDP forward above: their gradients join that forward's all-reduce
            unlabelled = list(next(self.dataloader_unlabelled)["data"].to(self.device, non_blocking=True))
            u = unlabelled_kd_losses(self.stock_network(), self.joint_teacher, unlabelled, d["temperature"],
                                     self.extras, d["kd_mode"])
            share = len(unlabelled) / (len(images) + len(unlabelled))
            feat, kd = (1 - share) * feat + share * u["feat"], (1 - share) * kd + share * u["kd"]
        task = sum(losses.values())
        loss = d["w_task"] * task + d["w_feat"] * feat + d["w_kd"] * kd
        return self.backward_and_step(loss, {"loss": loss, "task_loss": task, "feat_loss": feat, "kd_loss": kd})

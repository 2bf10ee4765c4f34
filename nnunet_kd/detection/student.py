"""Detection student: detection losses + MSE on the FPN levels + KD of the ROI class logits on the student's
proposals."""
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.detection.labels import categories
from nnunet_kd.detection.distill import fpn_adapters, student_step_losses, unlabelled_kd_losses
from nnunet_kd.detection.network import build_det_network
from nnunet_kd.detection.trainer import DetTrainerMixin
from nnunet_kd.core.teachers import Teacher, freeze
from nnunet_kd.roles.student import StudentRole


class nnUNetTrainerDetJointKD(DetTrainerMixin, StudentRole, nnUNetTrainer):
    """Student: detection losses + MSE on the FPN levels + KD of the ROI class logits on the student's proposals."""

    no_decoder = "detector"
    distill_weights = StudentRole.distill_weights + ("w_box",)
    kd_log_keys = StudentRole.kd_log_keys + ["box_losses"]

    def build_kd_modules(self) -> None:
        self.kd_modules = fpn_adapters(self.stock_network().backbone)

    def build_teacher(self, spec: Teacher) -> nn.Module:
        arch = spec.plans_dict["configurations"][spec.configuration]["architecture"]
        net = build_det_network(arch, spec.num_input_channels, len(categories(spec.dataset_json)),
                                self.configuration_manager.patch_size)
        net.load_state_dict(load_checkpoint(spec.checkpoint)["network_weights"])
        return freeze(net)

    def stock_teacher(self, network: nn.Module) -> nn.Module:
        return network  # the distillation reads a detector's internals (detection/distill.py), joint or stock

    def train_step(self, batch: dict) -> dict:
        images = list(batch["data"].to(self.device, non_blocking=True))
        targets = self.box_targets(batch["keys"], batch["target"])
        self.optimizer.zero_grad(set_to_none=True)
        d = self.distill
        losses = student_step_losses(self.network, self.joint_teacher, images, targets, d.temperature,
                                     self.extras, d.kd_mode)
        feat, kd, box = losses.pop("feat"), losses.pop("kd"), losses.pop("box")
        feat_u = kd_u = box_u = torch.zeros((), device=self.device)
        if self.dataloader_unlabelled is not None:
            # the network's parts, after its DDP forward above: their gradients join that forward's all-reduce
            unlabelled = list(next(self.dataloader_unlabelled)["data"].to(self.device, non_blocking=True))
            u = unlabelled_kd_losses(self.stock_network(), self.joint_teacher, unlabelled, d.temperature,
                                     self.extras, d.kd_mode)
            feat_u, kd_u, box_u = u["feat"], u["kd"], u["box"]
        task = sum(losses.values())
        distill, unlabelled_term = self.distill_loss(feat, kd, feat_u, kd_u, box, box_u)
        loss = d.w_task * task + distill
        return self.backward_and_step(loss, {"loss": loss, "task_loss": task, "feat_loss": feat, "kd_loss": kd,
                                             "box_loss": box, "unlabelled_loss": unlabelled_term})

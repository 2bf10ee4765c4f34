"""Stage 3 of the method: the student, the task's stock network distilled from the frozen joint teacher.

Loss = w_task * the task's loss (segmentation: nnU-Net's, deep supervision) + w_feat * sum_l MSE(A_l(F_S,l), F*_l) + w_kd * T^2 * KL(p* || p_S),
the KL weighed over voxels as distill.kd_mode says and computed in fp32. With distill.unlabelled_ratio > 0 (`auto`: 1
for classification students where the plans have unlabelled images) every batch also holds unlabelled target images,
on which only the two distillation terms act. student.init_from_target_teacher starts the network from the target
teacher's weights (by default where the task measured it: segmentation). The checkpoint is a stock nnU-Net checkpoint
(plus ``kd_state``).
"""
import copy

import torch
from batchgenerators.utilities.file_and_folder_operations import isfile, join
from nnunetv2.paths import nnUNet_results
from nnunetv2.utilities.helpers import dummy_context
from torch import autocast, nn

from nnunet_kd.checkpoints import load_checkpoint
from nnunet_kd.config import KD_BLOCK_KEY, ROLE_TRAINERS, DistillSettings
from nnunet_kd.data.loaders import check_unlabelled_images, has_unlabelled_images, shutdown, unlabelled_loader
from nnunet_kd.errors import KDError
from nnunet_kd.model_plans import read_model_plans
from nnunet_kd.protocol.distill import FeatureAdapters, feature_mse, logit_kd
from nnunet_kd.protocol.fused_encoders import resolve_levels
from nnunet_kd.protocol.taps import EncoderTap, ModuleOutputTap
from nnunet_kd.protocol.teachers import (Teacher, build_teacher_network, check_compatible, freeze, resolve_teachers,
                                         teacher_record)
from nnunet_kd.trainer_base import KDTrainerMixin, batch_head


def scale_widths(architecture: dict, width: float) -> None:
    kw = architecture["arch_kwargs"]
    kw["features_per_stage"] = [max(1, int(round(f * width))) for f in kw["features_per_stage"]]


class StudentRole(KDTrainerMixin):
    """The deployable student. Teachers load lazily in on_train_start, so --val and prediction never need them. Mix in
    before the nnU-Net trainer."""

    requires_kd_block = True
    trains_on_target = True
    kd_role = "student"
    kd_log_keys = ["task_losses", "feat_losses", "kd_losses"]
    no_decoder: str | None = None  # what the network is instead, where it has no U-Net decoder to distil
    init_from_target_teacher_by_default = False  # student.init_from_target_teacher "auto": measured for this task
    unlabelled_ratio_by_default = 0.0  # distill.unlabelled_ratio "auto" where the plans have unlabelled images

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.distill = self.settings.distill
        self.teacher_architecture = copy.deepcopy(self.configuration_manager.configuration["architecture"])
        width = self.settings.student.width
        if width != 1:  # recorded in the model folder's plans.json, so stock predict rebuilds this network
            for arch in (self.plans_manager.plans["configurations"][configuration]["architecture"],
                         self.configuration_manager.configuration["architecture"]):
                scale_widths(arch, width)
        n = self.teacher_architecture["arch_kwargs"]["n_stages"]
        self.levels = resolve_levels(self.distill.levels, n)
        self.joint_teacher = None
        self.tap = self.decoder_tap = self.teacher_decoder_tap = None
        self.dataloader_unlabelled = None
        self.unlabelled_ratio = self.distill.unlabelled_ratio
        if self.unlabelled_ratio == "auto":
            self.unlabelled_ratio = self.unlabelled_ratio_by_default if has_unlabelled_images(
                self.plans_manager.plans, configuration) else 0.0
        self._distill_terms = None  # distill_terms, compiled where nnU-Net compiles

    @classmethod
    def check_inputs(cls, plans: dict, configuration: str, fold, kd_block) -> None:
        super().check_inputs(plans, configuration, fold, kd_block)
        distill = DistillSettings(**kd_block["distill"])
        if cls.no_decoder and distill.decoder_levels:
            raise KDError(f"plans '{plans['plans_name']}': distill.decoder_levels is true, but {cls.no_decoder}s have "
                          f"no U-Net decoder. Set it to false in the KD block (or your preset).")
        if distill.unlabelled_ratio != "auto" and distill.unlabelled_ratio > 0:
            check_unlabelled_images(plans, configuration, distill.unlabelled_ratio)
        if cls.no_decoder and distill.kd_mode == "channel":
            raise KDError(f"plans '{plans['plans_name']}': distill.kd_mode is 'channel' (a distribution over space per "
                          f"channel), but a {cls.no_decoder}'s logits have no spatial axis. Use 'voxel' or 'class' in "
                          f"the KD block (or your preset).")

    @property
    def joint_teacher_spec(self) -> Teacher:
        ds = self.plans_manager.dataset_name
        trainer = ROLE_TRAINERS[self.settings.task]["joint"] + self.variant_suffix
        plans = self.settings.student.joint_teacher_plans or self.plans_manager.plans_name
        folder = join(nnUNet_results.get(), ds, f"{trainer}__{plans}__{self.configuration_name}")
        return Teacher("joint", ds, trainer, plans, self.configuration_name, str(self.fold), folder)

    def build_kd_modules(self) -> None:
        net = self.stock_network()
        student = list(net.encoder.output_channels)
        teacher = list(self.teacher_architecture["arch_kwargs"]["features_per_stage"])
        s_ch, t_ch = [student[lv] for lv in self.levels], [teacher[lv] for lv in self.levels]
        if self.distill.decoder_levels:
            s_ch += student[-2::-1]  # decoder stages, from the lowest resolution up
            t_ch += teacher[-2::-1]
        self.kd_modules = FeatureAdapters(s_ch, t_ch, net.encoder.conv_op)
        self.tap = EncoderTap(net)
        if self.distill.decoder_levels:
            self.decoder_tap = ModuleOutputTap(list(net.decoder.stages))

    def on_train_start(self):
        super().on_train_start()
        spec = self.joint_teacher_spec
        if not isfile(spec.checkpoint):
            raise KDError(f"The joint teacher's checkpoint {spec.checkpoint} does not exist. Train it first: "
                          f"{spec.train_command}")
        spec.plans_dict, spec.dataset_json = read_model_plans(spec.model_folder)
        self.attach_joint_teacher(self.build_joint_teacher(spec))
        self.teacher_records = [teacher_record(spec)]
        warm_start = self.settings.student.init_from_target_teacher
        if self.current_epoch == 0 and (warm_start is True or warm_start == "auto"
                                        and self.init_from_target_teacher_by_default):
            self._init_from_target_teacher(spec.plans_dict[KD_BLOCK_KEY])
        if self.unlabelled_batch_size:
            self.dataloader_unlabelled = unlabelled_loader(self, self.unlabelled_batch_size)
            self.print_to_log_file(f"nnunet_kd: {self.unlabelled_batch_size} unlabelled target image(s) in every "
                                   f"batch (distill.unlabelled_ratio {self.distill.unlabelled_ratio}: "
                                   f"{self.unlabelled_ratio}), distillation terms only")

    @property
    def unlabelled_batch_size(self) -> int:
        """Unlabelled target images in each step's batch (distill.unlabelled_ratio per labelled image, at least 1)."""
        ratio = self.unlabelled_ratio
        return max(1, round(ratio * self.batch_size)) if ratio > 0 else 0

    def build_joint_teacher(self, spec: Teacher) -> nn.Module:
        return build_teacher_network(spec, load_checkpoint(spec.checkpoint))

    def attach_joint_teacher(self, joint: nn.Module) -> None:
        """The frozen joint teacher this student distils from (its decoder taps registered before compiling)."""
        joint = freeze(joint).to(self.device)
        if self.distill.decoder_levels:
            self.teacher_decoder_tap = ModuleOutputTap(list(joint.decoder.stages))
        self.joint_teacher = torch.compile(joint) if self._do_i_compile() else joint

    def _init_from_target_teacher(self, joint_kd_block: dict) -> None:
        """The weights of the joint teacher's target teacher, where it has the student's architecture; under "auto" a
        student without such a target teacher starts from random weights (logged), under true it is an error."""
        targets = [t for t in resolve_teachers(joint_kd_block, self.configuration_name, self.fold, self.variant_suffix)
                   if t.role == "target"]
        arch = self.configuration_manager.configuration["architecture"]
        if not targets:
            why = "the KD block has no target teacher"
        else:
            check_compatible(targets, arch, self.num_input_channels, self.label_manager.num_segmentation_heads)
            same = targets[0].arch["arch_kwargs"]["features_per_stage"] == arch["arch_kwargs"]["features_per_stage"] \
                and targets[0].arch["network_class_name"] == arch["network_class_name"]
            why = None if same else f"the target teacher ({targets[0].checkpoint}) has other widths or another block type"
        if why and self.settings.student.init_from_target_teacher is True:
            raise KDError(f"student.init_from_target_teacher is true, but {why}. Set it to \"auto\" or false in the "
                          f"KD block of plans '{self.plans_manager.plans_name}'.")
        if why:
            self.print_to_log_file(f"nnunet_kd: student starts from random weights ({why})")
            return
        self.stock_network().load_state_dict(load_checkpoint(targets[0].checkpoint)["network_weights"])
        self.print_to_log_file(f"nnunet_kd: student initialised from {targets[0].checkpoint}")

    def on_train_end(self):
        super().on_train_end()
        self.joint_teacher = None
        shutdown(self.dataloader_unlabelled)
        self.dataloader_unlabelled = None

    def distill_losses(self, output, teacher_output, student_feats, teacher_feats):
        """(feature term, logit term) of one batch: adapters, MSE and KL in one function, compiled where nnU-Net
        compiles the network (one fused graph instead of a kernel and a copy per term)."""
        if self._distill_terms is None:
            self._distill_terms = torch.compile(self.distill_terms) if self._do_i_compile() else self.distill_terms
        s_logits = output[0] if isinstance(output, (list, tuple)) else output
        return self._distill_terms(student_feats, teacher_feats, s_logits, teacher_output)

    def distill_terms(self, student_feats, teacher_feats, s_logits, t_logits):
        feat = feature_mse(self.extras(student_feats), teacher_feats)
        kd = logit_kd(s_logits, t_logits, self.distill.temperature, self.label_manager.has_regions,
                      self.distill.kd_mode)
        return feat, kd

    def train_step(self, batch: dict) -> dict:
        """nnU-Net's loss on the labelled images; feature and logit KD on them and on the unlabelled ones, if any (one
        forward of the concatenated batch)."""
        data, n_labelled = batch["data"], batch["data"].shape[0]
        if self.dataloader_unlabelled is not None:
            data = torch.cat((data, next(self.dataloader_unlabelled)["data"]))
        data = data.to(self.device, non_blocking=True)
        target = batch["target"]
        target = [t.to(self.device, non_blocking=True) for t in target] if isinstance(target, list) \
            else target.to(self.device, non_blocking=True)

        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            with torch.no_grad():  # not inference_mode: its outputs enter losses that are backpropagated
                teacher_output, fused = self.joint_teacher(data, return_features=True)
                teacher_feats = [fused[lv] for lv in self.levels]
                if self.teacher_decoder_tap is not None:
                    teacher_feats += self.teacher_decoder_tap.pop()
            output = self.network(data)
            skips = self.tap.pop()
            student_feats = [skips[lv] for lv in self.levels]
            if self.decoder_tap is not None:
                student_feats += self.decoder_tap.pop()
            task = self.loss(batch_head(output, n_labelled), target)
            feat, kd = self.distill_losses(output, teacher_output, student_feats, teacher_feats)
            d = self.distill
            loss = d.w_task * task + d.w_feat * feat + d.w_kd * kd
        return self.backward_and_step(loss, {"loss": loss, "task_loss": task, "feat_loss": feat, "kd_loss": kd})

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        self.log_epoch_means(train_outputs, {"task_losses": "task_loss", "feat_losses": "feat_loss",
                                             "kd_losses": "kd_loss"})
        self.print_to_log_file(f"task {self.logger.get_value('task_losses', -1):.4f}, "
                               f"feature {self.logger.get_value('feat_losses', -1):.4f}, "
                               f"logit KD {self.logger.get_value('kd_losses', -1):.4f}")

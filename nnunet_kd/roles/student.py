"""Stage 3 of the method: the student, the task's stock network distilled from the frozen joint teacher.

Loss = w_task * the task's loss (segmentation: nnU-Net's, deep supervision)
       + r(step) * [D(labelled images) + w_unlabelled * D(unlabelled images)],
D = w_feat * sum_l MSE(A_l(F_S,l), F*_l) + w_kd * T^2 * KL(p* || p_S), each part averaged over its own images, the KL
weighed over voxels as distill.kd_mode says and computed in fp32; r is the sigmoid ramp-up over the first
distill.rampup of the steps. With distill.unlabelled_ratio > 0 (`auto`: 1 where the plans have unlabelled images)
every batch also holds unlabelled target images. student.init_from_target_teacher starts the network from the target
teacher's weights (`auto`: segmentation), and then student.initial_lr (`auto`: 1e-3) makes the training a fine-tuning;
student.warmup and student.ema add a learning-rate warm-up and a moving average of the weights. student.teacher
"target" distils from the target teacher alone (self-distillation). The checkpoint is a stock nnU-Net checkpoint (plus
``kd_state``).
"""
import copy

import torch
from batchgenerators.utilities.file_and_folder_operations import isfile, join
from nnunetv2.paths import nnUNet_results
from nnunetv2.training.lr_scheduler.warmup import Lin_incr_LRScheduler, PolyLRScheduler_offset
from nnunetv2.utilities.helpers import dummy_context
from torch import autocast, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.settings import FINE_TUNING_LR, DistillSettings, kd_block_from_plans
from nnunet_kd.core import tasks
from nnunet_kd.data.loaders import check_unlabelled_images, has_unlabelled_images, shutdown, unlabelled_loader
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import read_json_object
from nnunet_kd.core.model_plans import read_model_plans
from nnunet_kd.protocol.distill import FeatureAdapters, feature_mse, logit_kd, sigmoid_rampup
from nnunet_kd.core.fused_encoders import resolve_levels
from nnunet_kd.protocol.taps import EncoderTap, ModuleOutputTap, WithEncoderFeatures
from nnunet_kd.core.teachers import (Teacher, build_teacher_network, check_compatible, freeze, resolve_teachers,
                                     same_network, teacher_record)
from nnunet_kd.core.ddp import batch_head
from nnunet_kd.core.trainer import KDTrainerMixin


def scale_widths(architecture: dict, width: float) -> None:
    kw = architecture["arch_kwargs"]
    kw["features_per_stage"] = [max(1, int(round(f * width))) for f in kw["features_per_stage"]]


class StudentRole(KDTrainerMixin):
    """The deployable student. Teachers load lazily in on_train_start, so --val and prediction never need them. Mix in
    before the nnU-Net trainer."""

    requires_kd_block = True
    trains_on_target = True
    kd_role = "student"
    kd_log_keys = ["task_losses", "feat_losses", "kd_losses", "unlabelled_losses"]
    no_decoder: str | None = None  # what the network is instead, where it has no U-Net decoder to distil
    distill_weights = ("w_feat", "w_kd")  # the task's distillation weights (all 0: the student trains without them)

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
        # with every distillation weight 0 (a compute-matched control), the teacher and the unlabelled images, which
        # would add nothing to the loss, are left out of the steps
        self.distills = any(getattr(self.distill, w) for w in self.distill_weights)
        self.unlabelled_ratio = self.distill.unlabelled_ratio if self.distills else 0.0
        if self.unlabelled_ratio == "auto":
            self.unlabelled_ratio = 1.0 if has_unlabelled_images(self.plans_manager.plans, configuration) else 0.0
        self.ema = None  # the moving average of the weights (student.ema)
        self._ema_state = None  # its state from a checkpoint (--c), loaded once it exists
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
        trainer = tasks.get(self.settings.task).trainer("joint") + self.variant_suffix
        plans = self.settings.student.joint_teacher_plans or self.plans_manager.plans_name
        folder = join(nnUNet_results.get(), ds, f"{trainer}__{plans}__{self.configuration_name}")
        return Teacher("joint", ds, trainer, plans, self.configuration_name, str(self.fold), folder)

    def target_teacher_spec(self) -> Teacher | None:
        """The target teacher (trained on this fold) of the joint teacher's plans, or None where they have none."""
        block = self.kd_block
        plans = self.settings.student.joint_teacher_plans
        if plans and plans != self.plans_manager.plans_name:
            path = join(self.preprocessed_dataset_folder_base, plans + ".json")
            if not isfile(path):
                raise KDError(f"student.joint_teacher_plans is '{plans}', but {path} does not exist. Name plans of "
                              f"this dataset in the KD block of plans '{self.plans_manager.plans_name}'.")
            block = kd_block_from_plans(read_json_object(path, f"plans {path}"), path)
        targets = [t for t in resolve_teachers(block, self.configuration_name, self.fold, self.variant_suffix)
                   if t.role == "target"]
        return targets[0] if targets else None

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
        if self.settings.student.teacher == "target":
            spec = self.target_teacher_spec()
            if spec is None:
                raise KDError(f"student.teacher is 'target', but the KD block of plans "
                              f"'{self.plans_manager.plans_name}' has no target teacher. Set it to 'joint'.")
        else:
            spec = self.joint_teacher_spec
        if not isfile(spec.checkpoint):
            raise KDError(f"The {spec.role} teacher's checkpoint {spec.checkpoint} does not exist. Train it first: "
                          f"{spec.train_command}")
        spec.plans_dict, spec.dataset_json = read_model_plans(spec.model_folder)
        teacher = self.build_teacher(spec)
        self.attach_joint_teacher(teacher if spec.role == "joint" else self.stock_teacher(teacher))
        self.teacher_records = [teacher_record(spec)]
        warm_start = self.settings.student.init_from_target_teacher
        start = None
        if warm_start is True or warm_start == "auto" and tasks.get(self.settings.task).student_warm_start:
            start = self._target_teacher_start()
        if start and self.current_epoch == 0:
            self.stock_network().load_state_dict(load_checkpoint(start)["network_weights"])
            self.print_to_log_file(f"nnunet_kd: student initialised from {start}")
        self._set_schedule(fine_tuning=bool(start))
        if self.settings.student.ema is not None:
            self.ema = AveragedModel(self.stock_network(), multi_avg_fn=get_ema_multi_avg_fn(self.settings.student.ema),
                                     use_buffers=True)
            if self._ema_state is not None:
                self.ema.load_state_dict(self._ema_state)
        if not self.distills:
            self.print_to_log_file(f"nnunet_kd: every distillation weight ({', '.join(self.distill_weights)}) is 0: "
                                   f"the student trains on the task's loss alone")
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

    def build_teacher(self, spec: Teacher) -> nn.Module:
        """The network of the teacher spec (joint or target) with its weights."""
        return build_teacher_network(spec, load_checkpoint(spec.checkpoint))

    def stock_teacher(self, network: nn.Module) -> nn.Module:
        """A stock network as the student's teacher, called as a joint teacher is."""
        return WithEncoderFeatures(network)

    def _set_schedule(self, fine_tuning: bool) -> None:
        """student.initial_lr (`auto`, in plans of earlier versions: FINE_TUNING_LR when fine-tuning) with student.warmup's linear warm-up, then
        nnU-Net's poly decay; nnU-Net steps it at every epoch start, so --c resumes it where it was."""
        lr = self.settings.student.initial_lr
        if lr == "auto":
            lr = FINE_TUNING_LR if fine_tuning else self.initial_lr
        self.initial_lr = lr
        self.lr_scheduler = WarmupPolyLR(self.optimizer, lr, self.num_epochs,
                                         round(self.settings.student.warmup * self.num_epochs))
        self.print_to_log_file(f"nnunet_kd: initial learning rate {lr}, {self.lr_scheduler.warmup_epochs} warm-up "
                               f"epoch(s)")

    def attach_joint_teacher(self, joint: nn.Module) -> None:
        """The frozen joint teacher this student distils from (its decoder taps registered before compiling)."""
        joint = freeze(joint).to(self.device)
        if self.distill.decoder_levels:
            self.teacher_decoder_tap = ModuleOutputTap(list(joint.decoder.stages))
        self.joint_teacher = torch.compile(joint) if self._do_i_compile() else joint

    def _target_teacher_start(self) -> str | None:
        """The checkpoint of the target teacher, where it has the student's architecture; under "auto" a student
        without such a target teacher starts from random weights (None, logged), under true it is an error."""
        target = self.target_teacher_spec()
        arch = self.configuration_manager.configuration["architecture"]
        if target is None:
            why = "the KD block has no target teacher"
        else:
            check_compatible([target], arch, self.num_input_channels, self.label_manager.num_segmentation_heads)
            why = None if same_network(target.arch, arch) else f"the target teacher ({target.checkpoint}) has other widths or another block type"
        if why and self.settings.student.init_from_target_teacher is True:
            raise KDError(f"student.init_from_target_teacher is true, but {why}. Set it to \"auto\" or false in the "
                          f"KD block of plans '{self.plans_manager.plans_name}'.")
        if why:
            self.print_to_log_file(f"nnunet_kd: student starts from random weights ({why})")
            return None
        return target.checkpoint

    def backward_and_step(self, loss: torch.Tensor, terms: dict) -> dict:
        out = super().backward_and_step(loss, terms)
        if self.ema is not None and not out.get("skipped"):
            with torch.no_grad():
                self.ema.update_parameters(self.stock_network())
        return out

    def kd_state_dict(self) -> dict:
        return dict(super().kd_state_dict(), ema=None if self.ema is None else self.ema.state_dict())

    def load_kd_state_dict(self, state: dict) -> None:
        super().load_kd_state_dict(state)
        self._ema_state = state.get("ema")

    def on_train_end(self):
        if self.ema is not None:  # the final checkpoint (and nnU-Net's final validation) get the average
            self.stock_network().load_state_dict(self.ema.module.state_dict())
            self.print_to_log_file(f"nnunet_kd: final weights = moving average (decay {self.settings.student.ema}) of "
                                   f"{int(self.ema.n_averaged)} steps")
        super().on_train_end()
        self.joint_teacher = None
        shutdown(self.dataloader_unlabelled)
        self.dataloader_unlabelled = None

    def distill_losses(self, output, teacher_output, student_feats, teacher_feats, n_labelled: int):
        """(feature term, logit term) on the first n_labelled images, and on the rest: adapters, MSE and KL in one
        function, compiled where nnU-Net compiles the network (one fused graph instead of a kernel and a copy per
        term)."""
        if self._distill_terms is None:
            self._distill_terms = torch.compile(self.distill_terms) if self._do_i_compile() else self.distill_terms
        s_logits = output[0] if isinstance(output, (list, tuple)) else output
        return self._distill_terms(student_feats, teacher_feats, s_logits, teacher_output, n_labelled)

    def distill_terms(self, student_feats, teacher_feats, s_logits, t_logits, n: int):
        adapted = self.extras(student_feats)
        d, regions = self.distill, self.label_manager.has_regions

        def terms(part: slice):
            return (feature_mse([a[part] for a in adapted], [t[part] for t in teacher_feats]),
                    logit_kd(s_logits[part], t_logits[part], d.temperature, regions, d.kd_mode))
        zero = s_logits.new_zeros((), dtype=torch.float32)
        return terms(slice(None, n)) + (terms(slice(n, None)) if s_logits.shape[0] > n else (zero, zero))

    def distill_loss(self, feat, kd, feat_u, kd_u, box=0.0, box_u=0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(the weighted distillation terms, ramped up; the unlabelled images' term before w_unlabelled and the ramp);
        box terms: detection's box regression."""
        d = self.distill
        unlabelled = d.w_feat * feat_u + d.w_kd * kd_u + d.w_box * box_u
        ramp = sigmoid_rampup(self.kd_step, d.rampup * self.num_epochs * self.num_iterations_per_epoch)
        return ramp * (d.w_feat * feat + d.w_kd * kd + d.w_box * box + d.w_unlabelled * unlabelled), unlabelled

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
            if self.distills:
                with torch.no_grad():  # not inference_mode: its outputs enter losses that are backpropagated
                    teacher_output, fused = self.joint_teacher(data, return_features=True)
                    teacher_feats = [fused[lv] for lv in self.levels]
                    if self.teacher_decoder_tap is not None:
                        teacher_feats += self.teacher_decoder_tap.pop()
            output = self.network(data)
            skips = self.tap.pop()
            task = self.loss(batch_head(output, n_labelled), target)
            if self.distills:
                student_feats = [skips[lv] for lv in self.levels]
                if self.decoder_tap is not None:
                    student_feats += self.decoder_tap.pop()
                feat, kd, feat_u, kd_u = self.distill_losses(output, teacher_output, student_feats, teacher_feats,
                                                             n_labelled)
            else:
                feat = kd = feat_u = kd_u = task.new_zeros(())
                if self.decoder_tap is not None:
                    self.decoder_tap.pop()
            distill, unlabelled = self.distill_loss(feat, kd, feat_u, kd_u)
            loss = self.distill.w_task * task + distill
        return self.backward_and_step(loss, {"loss": loss, "task_loss": task, "feat_loss": feat, "kd_loss": kd,
                                             "unlabelled_loss": unlabelled})

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        names = {"task_losses": ("task_loss", "task"), "feat_losses": ("feat_loss", "feature"),
                 "kd_losses": ("kd_loss", "logit KD"), "box_losses": ("box_loss", "box KD"),
                 "unlabelled_losses": ("unlabelled_loss", "unlabelled")}
        keys = [k for k in names if k in self.kd_log_keys]
        self.log_epoch_means(train_outputs, {k: names[k][0] for k in keys})
        self.print_to_log_file(", ".join(f"{names[k][1]} {self.logger.get_value(k, -1):.4f}" for k in keys))


class WarmupPolyLR:
    """A linear warm-up over the first warmup_epochs, then nnU-Net's poly decay (the schedulers of nnU-Net's
    ``nnUNetTrainer_warmup``), stepped by epoch as nnU-Net steps its scheduler."""

    def __init__(self, optimizer, initial_lr: float, num_epochs: int, warmup_epochs: int):
        self.warmup_epochs = warmup_epochs
        self.poly = PolyLRScheduler_offset(optimizer, initial_lr, num_epochs, warmup_epochs)
        self.warmup = Lin_incr_LRScheduler(optimizer, initial_lr, warmup_epochs) if warmup_epochs else None

    def step(self, current_step: int) -> None:
        (self.warmup if current_step < self.warmup_epochs else self.poly).step(current_step)

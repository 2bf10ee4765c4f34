"""The task-free core of every trainer of the plugin (segmentation, classification, detection): KD block, seeds,
extras in the optimizer, the checkpoint format, the fold and target checks.

Checkpoint format (a superset of nnU-Net's): nnU-Net's keys, with ``trainer_name`` = the trainer whose
``build_network_architecture`` rebuilds ``network_weights`` (``nnUNetTrainer`` when the network is the stock plans
network, so stock predict / find_best_configuration / ensembling need no plugin), ``kd_trainer_name`` = the real trainer
and ``kd_state`` = the extras (domain heads, adapters, ...) and their schedule position. Files are written atomically.
"""
import os
import random
import tempfile

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import join
from torch import distributed as dist
from torch import nn
from torch._dynamo import OptimizedModule

from nnunet_kd.settings import KDSettings, kd_block_from_plans, resolve_seed
from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.core.ddp import wrap_ddp
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.failpoints import failpoint
from nnunet_kd.core.logger import KDLocalLogger
from nnunet_kd.core.teachers import changed_teachers


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class KDTrainerMixin:
    """Mix in before ``nnUNetTrainer``. Subclasses build their extras in :meth:`build_kd_modules`."""

    #: the trainer whose build_network_architecture rebuilds this trainer's network_weights at inference
    network_trainer_name = "nnUNetTrainer"
    #: per-epoch log keys beside nnU-Net's
    kd_log_keys: list[str] = []
    #: what this trainer logs where nnU-Net logs the pseudo Dice (its name in progress.png)
    epoch_metric = "pseudo dice"
    #: whether this trainer cannot run without the KD block
    requires_kd_block = False
    #: whether this trainer trains on the target dataset of its KD block (joint teacher, student, multi-head)
    trains_on_target = False
    #: the stage name used by failpoints (nnUNet_KD_FAILPOINT=<role>:<point>)
    kd_role = "target"
    #: consecutive steps with a non-finite loss term after which training stops
    max_nonfinite_steps = 10
    #: short-variant suffix (``_tiny``, ``_5epochs``): teachers named in the KD block get the same suffix
    variant_suffix = ""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        # all input checks run before nnU-Net's constructor creates the output folder: bad input writes nothing
        self.kd_block = kd_block_from_plans(plans, f"plans '{plans.get('plans_name')}' of {plans.get('dataset_name')}",
                                            required=self.requires_kd_block)
        #: the KD block's settings, typed (its dataset part stays in kd_block)
        self.settings = KDSettings.from_dict(self.kd_block) if self.kd_block else KDSettings()
        check_fold(plans, configuration, fold)
        self.check_inputs(plans, configuration, fold, self.kd_block)
        super().__init__(plans, configuration, fold, dataset_json, device)
        seed = resolve_seed(self.kd_block)
        if seed is not None:
            seed_everything(seed)
            self.print_to_log_file(f"nnunet_kd: seeded python, numpy and torch with {seed}")
        self.kd_modules = nn.ModuleDict()
        self.kd_step = 0  # optimizer steps taken; the position of step-based schedules
        self.teacher_records = []  # teacher checkpoints this stage is trained from (path + sha256)
        self.nonfinite_steps = self.nonfinite_in_a_row = 0
        if self.kd_log_keys or self.epoch_metric != "pseudo dice":
            self.logger.local_logger = KDLocalLogger(self.kd_log_keys, self.epoch_metric)

    @classmethod
    def check_inputs(cls, plans: dict, configuration: str, fold, kd_block) -> None:
        """Raise KDError for input this trainer cannot train on (called before anything is written)."""
        if cls.trains_on_target:
            require_target(cls, plans, kd_block)

    # ---- extras -------------------------------------------------------------------------------------------------
    def build_kd_modules(self) -> None:
        """Fill ``self.kd_modules``; called in ``initialize()`` after the network exists."""

    def initialize(self):
        # nnU-Net calls configure_optimizers inside initialize; the extras are built there, before the optimizer
        super().initialize()
        if self.is_ddp and len(list(self.kd_modules.parameters())):
            self.kd_modules_ddp = wrap_ddp(self.kd_modules, self.device)

    def configure_optimizers(self):
        self.build_kd_modules()
        self.kd_modules.to(self.device)
        optimizer, lr_scheduler = super().configure_optimizers()
        extra = [p for p in self.kd_modules.parameters() if p.requires_grad]
        if extra:
            optimizer.add_param_group({"params": extra})
        return optimizer, lr_scheduler

    @property
    def extras(self) -> nn.Module:
        """The extras as called in a forward pass (DDP-wrapped under multi-GPU training)."""
        return getattr(self, "kd_modules_ddp", self.kd_modules)

    def loader_dataset(self, dataset):
        """A dataset as this trainer's loaders read it (classification trainers resize whole images)."""
        return dataset

    def stock_network(self) -> nn.Module:
        mod = self.network.module if self.is_ddp else self.network
        return mod._orig_mod if isinstance(mod, OptimizedModule) else mod

    def trainable_parameters(self):
        yield from self.network.parameters()
        yield from self.kd_modules.parameters()

    # ---- one training step ----------------------------------------------------------------------------------------
    def backward_and_step(self, loss: torch.Tensor, terms: dict) -> dict:
        """nnU-Net's backward / clip / step (with the fp16 GradScaler on CUDA), over network and extras.

        ``terms`` (the loss and its parts) come to the host in one transfer; a non-finite term skips the step and is
        named in the log, and ``max_nonfinite_steps`` of them in a row stop the training (the last checkpoint stays).
        Inf gradients under the fp16 GradScaler are its normal business and not counted."""
        values, any_bad = self.to_host(terms)
        bad = [k for k, v in values.items() if not np.isfinite(v)]
        if any_bad:  # under DDP every worker skips, or none: the gradient all-reduce needs all
            what = ", ".join(bad) or "terms on another DDP worker"
            self.optimizer.zero_grad(set_to_none=True)
            self.nonfinite_steps += 1
            self.nonfinite_in_a_row += 1
            self.print_to_log_file(f"WARNING: non-finite {what} at step {self.kd_step}: step skipped "
                                   f"({self.nonfinite_steps} skipped so far)")
            if self.nonfinite_in_a_row >= self.max_nonfinite_steps:
                raise KDError(f"{self.nonfinite_in_a_row} training steps in a row had non-finite loss terms "
                              f"({what}); training stopped. The last good checkpoint in {self.output_folder} "
                              f"is intact; lower the learning rate or the KD weights, check the input data, and "
                              f"continue with --c.")
            return dict(values, skipped=True)
        self.nonfinite_in_a_row = 0
        params = [p for p in self.trainable_parameters() if p.requires_grad]
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(params, 12)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 12)
            self.optimizer.step()
        self.kd_step += 1
        return values

    def to_host(self, terms: dict) -> tuple:
        """All loss terms of a step and whether any is non-finite on any DDP worker, in one device-to-host transfer
        (under DDP the flag is all-reduced on the device first, so every worker gets the same answer)."""
        stacked = torch.stack([v.detach().float() for v in terms.values()])
        flag = (~torch.isfinite(stacked)).any().float()[None]
        if self.is_ddp:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        host = torch.cat((stacked, flag)).cpu().numpy()
        return dict(zip(terms, host[:-1])), bool(host[-1])

    def on_train_epoch_end(self, train_outputs: list[dict]):
        finite = [o for o in train_outputs if not o.get("skipped")]
        super().on_train_epoch_end(finite or train_outputs)

    def log_epoch_means(self, train_outputs: list[dict], keys: dict) -> None:
        """Logs the epoch mean of each step output ``keys[log_key]`` (gathered over DDP workers)."""
        outputs = [o for o in train_outputs if not o.get("skipped")] or train_outputs
        for log_key, out_key in keys.items():
            values = [float(o[out_key]) for o in outputs]
            if self.is_ddp:
                gathered = [None] * dist.get_world_size()
                dist.all_gather_object(gathered, values)
                values = [v for g in gathered for v in g]
            self.logger.log(log_key, float(np.mean(values)), self.current_epoch)

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0:  # the worker that writes checkpoints cleans what a killed one left
            for f in os.listdir(self.output_folder):
                if f.startswith("checkpoint_") and ".pth.tmp" in f:
                    os.remove(join(self.output_folder, f))

    def on_epoch_end(self):
        super().on_epoch_end()
        failpoint(self.kd_role, f"after_epoch_{self.current_epoch - 1}")

    def perform_actual_validation(self, save_probabilities: bool = False):
        failpoint(self.kd_role, "final_validation")
        super().perform_actual_validation(save_probabilities)

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def kd_state_dict(self) -> dict:
        return {"modules": self.kd_modules.state_dict(), "step": self.kd_step, "teachers": self.teacher_records}

    def load_kd_state_dict(self, state: dict) -> None:
        self.kd_modules.load_state_dict(state["modules"])
        self.kd_step = state["step"]
        changed = changed_teachers(state.get("teachers", []))
        if changed:
            raise KDError(f"Cannot continue this training (--c): {'; '.join(changed)}. Its checkpoint would mix the "
                          f"old teachers' knowledge with the new ones'. Move {self.output_folder} aside and train "
                          f"without --c (`nnunet_kd run --force` does this), or restore the teacher checkpoints.")

    def save_checkpoint(self, filename: str) -> None:
        if self.local_rank != 0:
            return
        if self.disable_checkpointing:
            self.print_to_log_file("No checkpoint written, checkpointing is disabled")
            return
        checkpoint = {
            "network_weights": self.stock_network().state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "logging": self.logger.get_checkpoint(),
            "_best_ema": self._best_ema,
            "current_epoch": self.current_epoch + 1,
            "init_args": self.my_init_kwargs,
            "trainer_name": self.network_trainer_name,
            "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
            "kd_trainer_name": self.__class__.__name__,
            "kd_state": self.kd_state_dict(),
        }
        tmp = f"{filename}.tmp{os.getpid()}"
        try:
            torch.save(checkpoint, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            failpoint(self.kd_role, "saving_checkpoint")
            os.replace(tmp, filename)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        if not isinstance(filename_or_checkpoint, str):
            raise TypeError("nnunet_kd trainers load checkpoints from a file path")
        checkpoint = load_checkpoint(filename_or_checkpoint,
                                     fix="Delete it and rerun without --c to restart this training.")
        # nnU-Net 2.8.1 reads a path itself with weights_only=False (a dict argument is broken there): it gets a private
        # copy of what the safe load read, never the file, which could have changed since
        with tempfile.TemporaryDirectory() as folder:
            copy = os.path.join(folder, "checkpoint.pth")
            torch.save(checkpoint, copy)
            super().load_checkpoint(copy)
        if "kd_state" in checkpoint:
            self.load_kd_state_dict(checkpoint["kd_state"])
        elif len(list(self.kd_modules.parameters())):
            self.print_to_log_file(f"WARNING: {filename_or_checkpoint} has no kd_state; the plugin's extras start fresh.")


def check_fold(plans: dict, configuration: str, fold) -> None:
    """nnU-Net's 5-fold split needs at least 5 cases; say so before it fails deep inside scikit-learn."""
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    if str(fold) == "all" or not nnUNet_preprocessed.is_set():
        return
    base = os.path.join(nnUNet_preprocessed.get(), plans["dataset_name"])
    folder = os.path.join(base, plans["configurations"][configuration]["data_identifier"])
    if os.path.isfile(os.path.join(base, "splits_final.json")) or not os.path.isdir(folder):
        return
    n = len(infer_dataset_class(folder).get_identifiers(folder))
    if n < 5:
        raise KDError(f"{plans['dataset_name']} has {n} training cases, too few for nnU-Net's 5-fold cross-validation "
                      f"(fold {fold}). Train with fold 'all' (nnUNetv2_train ... all, or `nnunet_kd run -f all`), or "
                      f"write your own split to {os.path.join(base, 'splits_final.json')}.")


def require_target(cls, plans: dict, kd_block: dict) -> None:
    from nnunet_kd.core.datasets import dataset_id, dataset_name
    target = dataset_name(kd_block["target"])
    if plans["dataset_name"] != target:
        raise KDError(f"{cls.__name__} trains on the target dataset, but {plans['dataset_name']} is not the target of "
                      f"plans '{plans['plans_name']}' (target: {target}). Run it as nnUNetv2_train {dataset_id(target)} ...")

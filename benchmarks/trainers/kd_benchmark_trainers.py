# Epoch-benchmark variants of the plugin's trainers, in the style of nnU-Net's nnUNetTrainerBenchmark_5epochs (which
# asserts CUDA). Put this folder on nnUNet_extTrainer beside `nnunet_kd trainer-path`; benchmarks/epoch_overhead.py
# does. nnUNet_KD_BENCH_EPOCHS / _ITERS set the length, nnUNet_KD_BENCH_TEACHERS the suffix of the trained teachers.
import itertools
import os
import platform
import statistics

import torch
from batchgenerators.utilities.file_and_folder_operations import join, save_json

from nnunet_kd.data.loaders import shutdown
from nnunet_kd.classification import trainers as cls_trainers
from nnunet_kd.settings import VARIANTS
from nnunet_kd.core import tasks
from nnunet_kd.detection import trainers as det_trainers
from nnunet_kd.segmentation import trainers as seg_trainers
from nnunet_kd.segmentation.trainers import (nnUNetTrainerDomainAdversarial, nnUNetTrainerJointKD,
                                             nnUNetTrainerJointTeacher, nnUNetTrainerKD)


class _EpochBenchmark:
    variant_suffix = os.environ.get("nnUNet_KD_BENCH_TEACHERS", "")

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("nnUNet_KD_BENCH_EPOCHS", 5))
        self.num_iterations_per_epoch = int(os.environ.get("nnUNet_KD_BENCH_ITERS", 250))
        self.num_val_iterations_per_epoch = max(1, self.num_iterations_per_epoch // 5)
        self.disable_checkpointing = True

    def perform_actual_validation(self, save_probabilities: bool = False):
        pass

    def save_checkpoint(self, filename: str) -> None:
        pass

    def on_train_end(self):
        super().on_train_end()
        if self.local_rank == 0:
            starts = self.logger.get_value("epoch_start_timestamps", step=None)
            ends = self.logger.get_value("epoch_end_timestamps", step=None)
            times = [e - s for s, e in zip(starts, ends)]
            device = torch.cuda.get_device_name() if self.device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
            save_json({"median_epoch": statistics.median(times[1:] or times), "epoch_times": times, "device": device,
                       "host": platform.node(), "iterations_per_epoch": self.num_iterations_per_epoch,
                       "torch": torch.__version__},
                      join(self.output_folder, "benchmark_result.json"))


class _NoDataLoading(_EpochBenchmark):
    """One fixed batch on the device instead of nnU-Net's loaders (and the source teacher's target-domain loader)."""

    def get_dataloaders(self):
        batch = self._dummy_batch()
        return itertools.repeat(batch), itertools.repeat(batch)

    def _dummy_batch(self):
        self._set_batch_size_and_oversample()
        patch = self.configuration_manager.patch_size
        channels = len(self.dataset_json["channel_names"])
        data = torch.rand((self.batch_size, channels, *patch), device=self.device)
        target = [torch.round(torch.rand((self.batch_size, 1, *[int(i * j) for i, j in zip(patch, s)]),
                                         device=self.device) * max(self.label_manager.all_labels))
                  for s in self._get_deep_supervision_scales()]
        return {"data": data, "target": target, "keys": [f"dummy_{i}" for i in range(self.batch_size)]}

    def on_train_start(self):
        super().on_train_start()
        for name in ("dataloader_target", "dataloader_unlabelled"):  # source teacher / student extra loaders
            if getattr(self, name, None) is not None:
                shutdown(getattr(self, name))
                n = self.unlabelled_batch_size if name == "dataloader_unlabelled" else self.target_batch_size
                batch = self._dummy_batch()
                setattr(self, name, itertools.repeat({"data": batch["data"][:n], "keys": batch["keys"][:n]}))


for _base in (nnUNetTrainerKD, nnUNetTrainerDomainAdversarial, nnUNetTrainerJointTeacher, nnUNetTrainerJointKD):
    _name = tasks.get("seg").trainer(_base.kd_role)
    for _suffix, _mixin in (("_BenchmarkEpochs", _EpochBenchmark), ("_BenchmarkEpochs_noDataLoading", _NoDataLoading)):
        globals()[_name + _suffix] = type(_name + _suffix, (_mixin, _base), {"__module__": __name__})



def _doubled(base: type) -> type:
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        base.__init__(self, plans, configuration, fold, dataset_json, device)
        self.num_epochs *= 2
    return type(base.__name__ + "_x2", (base,), {"__init__": __init__, "__module__": __name__,
                                                 "__doc__": f"{base.__name__} with twice its epochs."})


# the dataset-specific baselines with twice the epochs of each short variant (nnUNetTrainer_demo_x2, ...): the
# convergence check of benchmarks/runner.py
for _task, _module in (("seg", seg_trainers), ("cls", cls_trainers), ("det", det_trainers)):
    for _suffix in VARIANTS:
        _base = getattr(_module, tasks.get(_task).trainer("target") + _suffix, None)
        if _base is not None:
            globals()[_base.__name__ + "_x2"] = _doubled(_base)

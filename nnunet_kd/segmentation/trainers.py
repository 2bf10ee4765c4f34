"""The trainer classes nnU-Net finds through nnUNet_extTrainer, with their short variants.

Naming follows nnU-Net's training-length variants: ``_5epochs`` (5 epochs of the usual 250 iterations) and ``_tiny``
(2 epochs of 2 iterations, 1 validation iteration, a checkpoint every epoch: for tests and smoke runs).
"""
import torch

from nnunet_kd.segmentation.base import nnUNetTrainerKD
from nnunet_kd.segmentation.source_teacher import nnUNetTrainerDomainAdversarial

__all__ = ["nnUNetTrainerKD", "nnUNetTrainer_tiny", "nnUNetTrainerDomainAdversarial",
           "nnUNetTrainerDomainAdversarial_5epochs", "nnUNetTrainerDomainAdversarial_tiny"]


def _tiny(trainer) -> None:
    trainer.num_epochs = 2
    trainer.num_iterations_per_epoch = 2
    trainer.num_val_iterations_per_epoch = 1
    trainer.save_every = 1


class nnUNetTrainer_tiny(nnUNetTrainerKD):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _tiny(self)


class nnUNetTrainerDomainAdversarial_5epochs(nnUNetTrainerDomainAdversarial):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 5


class nnUNetTrainerDomainAdversarial_tiny(nnUNetTrainerDomainAdversarial):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _tiny(self)

"""Training-length variants in nnU-Net's style (``nnUNetTrainer_Xepochs``): mixins that set a short schedule of
``VARIANTS``; each task writes its variant classes out in its ``trainers.py``."""
import torch

from nnunet_kd.settings import VARIANTS


class TrainingLength:
    """A training-length variant, as nnU-Net's ``nnUNetTrainer_Xepochs``: put before a role trainer in the bases
    (``class nnUNetTrainerJointKD_tiny(Tiny, nnUNetTrainerJointKD)``); sets the schedule of ``VARIANTS`` after the
    trainer's own __init__ (``source_epochs``: a source teacher's epochs instead of ``num_epochs``). A variant's joint
    teacher and student use the teachers of the same suffix."""
    variant_suffix = ""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        schedule = dict(VARIANTS[self.variant_suffix])
        source_epochs = schedule.pop("source_epochs", None)
        for k, v in schedule.items():
            setattr(self, k, v)
        if source_epochs and self.kd_role == "source":
            self.num_epochs = source_epochs


class Tiny(TrainingLength):
    variant_suffix = "_tiny"


class FiveEpochs(TrainingLength):
    variant_suffix = "_5epochs"


class Demo(TrainingLength):
    variant_suffix = "_demo"


class Bench(TrainingLength):
    variant_suffix = "_bench"

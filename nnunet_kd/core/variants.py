"""Training-length variants in nnU-Net's style (``nnUNetTrainer_Xepochs``): mixins that set a short schedule of
``settings.VARIANTS``; each task writes its variant classes out in its ``trainers.py``."""
import torch

from nnunet_kd.settings import variant_schedule


class TrainingLength:
    """A training-length variant, as nnU-Net's ``nnUNetTrainer_Xepochs``: put before a role trainer in the bases
    (``class nnUNetTrainerJointKD_tiny(Tiny, nnUNetTrainerJointKD)``); sets the variant's schedule for the trainer's
    role (``settings.variant_schedule``) after the trainer's own __init__. A variant's joint teacher and student use
    the teachers of the same suffix."""
    variant_suffix = ""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        for k, v in variant_schedule(self.variant_suffix, self.kd_role).items():
            setattr(self, k, v)


class Tiny(TrainingLength):
    variant_suffix = "_tiny"


class FiveEpochs(TrainingLength):
    variant_suffix = "_5epochs"


class Demo(TrainingLength):
    variant_suffix = "_demo"


class Bench(TrainingLength):
    variant_suffix = "_bench"

"""The trainer classes nnU-Net finds through nnUNet_extTrainer, with their short variants.

Naming follows nnU-Net's training-length variants: ``_5epochs`` (5 epochs of the usual 250 iterations) and ``_tiny``
(2 epochs of 2 iterations, 1 validation iteration, a checkpoint every epoch: for tests and smoke runs) and ``_demo``
(20 epochs of 30 iterations: the built-in demo on CPU), ``_bench`` (40 x 40: the domain-shift benchmark). A short
joint teacher or student uses the teachers of the same suffix (``nnUNetTrainerJointKD_tiny`` distils from
``nnUNetTrainerJointTeacher_tiny``, which fuses ``nnUNetTrainer_tiny`` and ``nnUNetTrainerDomainAdversarial_tiny``).
"""
import torch

from nnunet_kd.segmentation.base import nnUNetTrainerKD
from nnunet_kd.segmentation.joint_teacher import nnUNetTrainerJointTeacher
from nnunet_kd.segmentation.multi_head import nnUNetTrainerMultiHead
from nnunet_kd.segmentation.source_teacher import nnUNetTrainerDomainAdversarial
from nnunet_kd.segmentation.student import nnUNetTrainerJointKD
from nnunet_kd.config import VARIANTS

BASES = {"nnUNetTrainer": nnUNetTrainerKD, "nnUNetTrainerDomainAdversarial": nnUNetTrainerDomainAdversarial,
         "nnUNetTrainerJointTeacher": nnUNetTrainerJointTeacher, "nnUNetTrainerJointKD": nnUNetTrainerJointKD,
         "nnUNetTrainerMultiHead": nnUNetTrainerMultiHead}


def make_variants(bases: dict, namespace: dict, skip=()) -> None:
    """Defines ``<base name><suffix>`` for every base and variant in ``namespace`` (a module's globals)."""
    for base_name, base in bases.items():
        for suffix, settings in VARIANTS.items():
            if base_name + suffix not in skip:
                namespace[base_name + suffix] = _variant(base, base_name, suffix, settings, namespace["__name__"])


def _variant(base, base_name: str, suffix: str, settings: dict, module: str):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        base.__init__(self, plans, configuration, fold, dataset_json, device)
        for k, v in settings.items():
            setattr(self, k, v)

    return type(base_name + suffix, (base,), {"__init__": __init__, "variant_suffix": suffix, "__module__": module,
                                "__doc__": f"{base_name} with {settings}."})


make_variants(BASES, globals(), skip=("nnUNetTrainer_5epochs",))  # nnU-Net ships nnUNetTrainer_5epochs

__all__ = [n for n in globals() if n.startswith("nnUNetTrainer")]

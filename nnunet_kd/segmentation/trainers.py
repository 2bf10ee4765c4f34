"""The trainer classes nnU-Net finds through nnUNet_extTrainer, with their short variants.

Naming follows nnU-Net's training-length variants: ``_5epochs`` (5 epochs of the usual 250 iterations) and ``_tiny``
(2 epochs of 2 iterations, 1 validation iteration, a checkpoint every epoch: for tests and smoke runs) and ``_demo``
(20 epochs of 30 iterations: the built-in demo on CPU), ``_bench`` (40 x 40: the domain-shift benchmark). A short
joint teacher or student uses the teachers of the same suffix (``nnUNetTrainerJointKD_tiny`` distils from
``nnUNetTrainerJointTeacher_tiny``, which fuses ``nnUNetTrainer_tiny`` and ``nnUNetTrainerDomainAdversarial_tiny``).
"""
from nnunet_kd.segmentation.baseline import nnUNetTrainerKD, nnUNetTrainerMultiHead
from nnunet_kd.segmentation.joint_teacher import nnUNetTrainerJointTeacher
from nnunet_kd.segmentation.source_teacher import nnUNetTrainerDomainAdversarial
from nnunet_kd.segmentation.student import nnUNetTrainerJointKD
from nnunet_kd.trainer_base import make_variants

make_variants("seg", (nnUNetTrainerKD, nnUNetTrainerDomainAdversarial, nnUNetTrainerJointTeacher, nnUNetTrainerJointKD,
                     nnUNetTrainerMultiHead), globals(), skip=("nnUNetTrainer_5epochs",))  # nnU-Net's own

__all__ = [n for n in globals() if n.startswith("nnUNetTrainer")]

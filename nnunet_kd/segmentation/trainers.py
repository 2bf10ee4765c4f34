"""The trainer classes nnU-Net finds through nnUNet_extTrainer, with their short variants.

Naming follows nnU-Net's training-length variants: ``_5epochs`` (5 epochs of the usual 250 iterations) and ``_tiny``
(2 epochs of 2 iterations, 1 validation iteration, a checkpoint every epoch: for tests and smoke runs) and ``_demo``
(20 epochs of 30 iterations: the built-in demo on CPU), ``_bench`` (40 x 40, source teachers 80 x 80: the benchmarks). A short
joint teacher or student uses the teachers of the same suffix (``nnUNetTrainerJointKD_tiny`` distils from
``nnUNetTrainerJointTeacher_tiny``, which fuses ``nnUNetTrainer_tiny`` and ``nnUNetTrainerDomainAdversarial_tiny``).
"""
from nnunet_kd.segmentation.baseline import nnUNetTrainerKD, nnUNetTrainerMultiHead
from nnunet_kd.segmentation.joint_teacher import nnUNetTrainerJointTeacher
from nnunet_kd.segmentation.source_teacher import nnUNetTrainerDomainAdversarial
from nnunet_kd.segmentation.student import nnUNetTrainerJointKD
from nnunet_kd.core.variants import Bench, Demo, FiveEpochs, Tiny


# nnUNetTrainer_5epochs is nnU-Net's own
class nnUNetTrainer_tiny(Tiny, nnUNetTrainerKD):
    pass


class nnUNetTrainer_demo(Demo, nnUNetTrainerKD):
    pass


class nnUNetTrainer_bench(Bench, nnUNetTrainerKD):
    pass


class nnUNetTrainerDomainAdversarial_tiny(Tiny, nnUNetTrainerDomainAdversarial):
    pass


class nnUNetTrainerDomainAdversarial_5epochs(FiveEpochs, nnUNetTrainerDomainAdversarial):
    pass


class nnUNetTrainerDomainAdversarial_demo(Demo, nnUNetTrainerDomainAdversarial):
    pass


class nnUNetTrainerDomainAdversarial_bench(Bench, nnUNetTrainerDomainAdversarial):
    pass


class nnUNetTrainerJointTeacher_tiny(Tiny, nnUNetTrainerJointTeacher):
    pass


class nnUNetTrainerJointTeacher_5epochs(FiveEpochs, nnUNetTrainerJointTeacher):
    pass


class nnUNetTrainerJointTeacher_demo(Demo, nnUNetTrainerJointTeacher):
    pass


class nnUNetTrainerJointTeacher_bench(Bench, nnUNetTrainerJointTeacher):
    pass


class nnUNetTrainerJointKD_tiny(Tiny, nnUNetTrainerJointKD):
    pass


class nnUNetTrainerJointKD_5epochs(FiveEpochs, nnUNetTrainerJointKD):
    pass


class nnUNetTrainerJointKD_demo(Demo, nnUNetTrainerJointKD):
    pass


class nnUNetTrainerJointKD_bench(Bench, nnUNetTrainerJointKD):
    pass


class nnUNetTrainerMultiHead_tiny(Tiny, nnUNetTrainerMultiHead):
    pass


class nnUNetTrainerMultiHead_5epochs(FiveEpochs, nnUNetTrainerMultiHead):
    pass


class nnUNetTrainerMultiHead_demo(Demo, nnUNetTrainerMultiHead):
    pass


class nnUNetTrainerMultiHead_bench(Bench, nnUNetTrainerMultiHead):
    pass


__all__ = [n for n in globals() if n.startswith("nnUNetTrainer")]

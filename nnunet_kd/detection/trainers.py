"""The detection trainer classes nnU-Net finds through nnUNet_extTrainer, with the usual short variants."""
from nnunet_kd.detection.baseline import nnUNetTrainerDet
from nnunet_kd.detection.joint_teacher import nnUNetTrainerDetJointTeacher
from nnunet_kd.detection.source_teacher import nnUNetTrainerDetDomainAdversarial
from nnunet_kd.detection.student import nnUNetTrainerDetJointKD
from nnunet_kd.core.variants import Bench, Demo, FiveEpochs, Tiny


class nnUNetTrainerDet_tiny(Tiny, nnUNetTrainerDet):
    pass


class nnUNetTrainerDet_5epochs(FiveEpochs, nnUNetTrainerDet):
    pass


class nnUNetTrainerDet_demo(Demo, nnUNetTrainerDet):
    pass


class nnUNetTrainerDet_bench(Bench, nnUNetTrainerDet):
    pass


class nnUNetTrainerDetDomainAdversarial_tiny(Tiny, nnUNetTrainerDetDomainAdversarial):
    pass


class nnUNetTrainerDetDomainAdversarial_5epochs(FiveEpochs, nnUNetTrainerDetDomainAdversarial):
    pass


class nnUNetTrainerDetDomainAdversarial_demo(Demo, nnUNetTrainerDetDomainAdversarial):
    pass


class nnUNetTrainerDetDomainAdversarial_bench(Bench, nnUNetTrainerDetDomainAdversarial):
    pass


class nnUNetTrainerDetJointTeacher_tiny(Tiny, nnUNetTrainerDetJointTeacher):
    pass


class nnUNetTrainerDetJointTeacher_5epochs(FiveEpochs, nnUNetTrainerDetJointTeacher):
    pass


class nnUNetTrainerDetJointTeacher_demo(Demo, nnUNetTrainerDetJointTeacher):
    pass


class nnUNetTrainerDetJointTeacher_bench(Bench, nnUNetTrainerDetJointTeacher):
    pass


class nnUNetTrainerDetJointKD_tiny(Tiny, nnUNetTrainerDetJointKD):
    pass


class nnUNetTrainerDetJointKD_5epochs(FiveEpochs, nnUNetTrainerDetJointKD):
    pass


class nnUNetTrainerDetJointKD_demo(Demo, nnUNetTrainerDetJointKD):
    pass


class nnUNetTrainerDetJointKD_bench(Bench, nnUNetTrainerDetJointKD):
    pass

__all__ = [n for n in globals() if n.startswith("nnUNetTrainer")]

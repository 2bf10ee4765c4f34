"""The classification trainer classes nnU-Net finds through nnUNet_extTrainer, with the same short variants as the
segmentation trainers (``_tiny``, ``_5epochs``, ``_demo``, ``_bench``)."""
from nnunet_kd.classification.baseline import nnUNetTrainerCls, nnUNetTrainerClsMultiHead
from nnunet_kd.classification.joint_teacher import nnUNetTrainerClsJointTeacher
from nnunet_kd.classification.source_teacher import nnUNetTrainerClsDomainAdversarial
from nnunet_kd.classification.student import nnUNetTrainerClsJointKD
from nnunet_kd.core.variants import Bench, Demo, FiveEpochs, Tiny


class nnUNetTrainerCls_tiny(Tiny, nnUNetTrainerCls):
    pass


class nnUNetTrainerCls_5epochs(FiveEpochs, nnUNetTrainerCls):
    pass


class nnUNetTrainerCls_demo(Demo, nnUNetTrainerCls):
    pass


class nnUNetTrainerCls_bench(Bench, nnUNetTrainerCls):
    pass


class nnUNetTrainerClsDomainAdversarial_tiny(Tiny, nnUNetTrainerClsDomainAdversarial):
    pass


class nnUNetTrainerClsDomainAdversarial_5epochs(FiveEpochs, nnUNetTrainerClsDomainAdversarial):
    pass


class nnUNetTrainerClsDomainAdversarial_demo(Demo, nnUNetTrainerClsDomainAdversarial):
    pass


class nnUNetTrainerClsDomainAdversarial_bench(Bench, nnUNetTrainerClsDomainAdversarial):
    pass


class nnUNetTrainerClsJointTeacher_tiny(Tiny, nnUNetTrainerClsJointTeacher):
    pass


class nnUNetTrainerClsJointTeacher_5epochs(FiveEpochs, nnUNetTrainerClsJointTeacher):
    pass


class nnUNetTrainerClsJointTeacher_demo(Demo, nnUNetTrainerClsJointTeacher):
    pass


class nnUNetTrainerClsJointTeacher_bench(Bench, nnUNetTrainerClsJointTeacher):
    pass


class nnUNetTrainerClsJointKD_tiny(Tiny, nnUNetTrainerClsJointKD):
    pass


class nnUNetTrainerClsJointKD_5epochs(FiveEpochs, nnUNetTrainerClsJointKD):
    pass


class nnUNetTrainerClsJointKD_demo(Demo, nnUNetTrainerClsJointKD):
    pass


class nnUNetTrainerClsJointKD_bench(Bench, nnUNetTrainerClsJointKD):
    pass


class nnUNetTrainerClsMultiHead_tiny(Tiny, nnUNetTrainerClsMultiHead):
    pass


class nnUNetTrainerClsMultiHead_5epochs(FiveEpochs, nnUNetTrainerClsMultiHead):
    pass


class nnUNetTrainerClsMultiHead_demo(Demo, nnUNetTrainerClsMultiHead):
    pass


class nnUNetTrainerClsMultiHead_bench(Bench, nnUNetTrainerClsMultiHead):
    pass

__all__ = [n for n in globals() if n.startswith("nnUNetTrainer")]

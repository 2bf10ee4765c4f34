"""The classification trainer classes nnU-Net finds through nnUNet_extTrainer, with the same short variants as the
segmentation trainers (``_tiny``, ``_5epochs``, ``_demo``, ``_bench``)."""
from nnunet_kd.classification.baseline import nnUNetTrainerCls, nnUNetTrainerClsMultiHead
from nnunet_kd.classification.joint_teacher import nnUNetTrainerClsJointTeacher
from nnunet_kd.classification.source_teacher import nnUNetTrainerClsDomainAdversarial
from nnunet_kd.classification.student import nnUNetTrainerClsJointKD
from nnunet_kd.trainer_base import make_variants

make_variants("cls", (nnUNetTrainerCls, nnUNetTrainerClsDomainAdversarial, nnUNetTrainerClsJointTeacher,
                     nnUNetTrainerClsJointKD, nnUNetTrainerClsMultiHead), globals())

__all__ = [n for n in globals() if n.startswith("nnUNetTrainer")]

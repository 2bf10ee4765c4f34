"""The classification trainer classes nnU-Net finds through nnUNet_extTrainer, with the same short variants as the
segmentation trainers (``_tiny``, ``_5epochs``, ``_demo``, ``_bench``)."""
from nnunet_kd.classification.roles import (nnUNetTrainerClsDomainAdversarial, nnUNetTrainerClsJointKD,
                                            nnUNetTrainerClsJointTeacher, nnUNetTrainerClsMultiHead)
from nnunet_kd.classification.trainer import nnUNetTrainerCls
from nnunet_kd.trainer_base import make_variants

make_variants("cls", (nnUNetTrainerCls, nnUNetTrainerClsDomainAdversarial, nnUNetTrainerClsJointTeacher,
                     nnUNetTrainerClsJointKD, nnUNetTrainerClsMultiHead), globals())

__all__ = [n for n in globals() if n.startswith("nnUNetTrainer")]

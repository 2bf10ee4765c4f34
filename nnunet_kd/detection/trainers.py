"""The detection trainer classes nnU-Net finds through nnUNet_extTrainer, with the usual short variants."""
from nnunet_kd.detection.baseline import nnUNetTrainerDet
from nnunet_kd.detection.joint_teacher import nnUNetTrainerDetJointTeacher
from nnunet_kd.detection.source_teacher import nnUNetTrainerDetDomainAdversarial
from nnunet_kd.detection.student import nnUNetTrainerDetJointKD
from nnunet_kd.trainer_base import make_variants

make_variants("det", (nnUNetTrainerDet, nnUNetTrainerDetDomainAdversarial, nnUNetTrainerDetJointTeacher,
                     nnUNetTrainerDetJointKD), globals())

__all__ = [n for n in globals() if n.startswith("nnUNetTrainer")]

"""The segmentation joint teacher: frozen teachers' encoders fused level by level, a new nnU-Net decoder."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_kd.roles.joint_teacher import JointTeacherRole
from nnunet_kd.segmentation.network import joint_architecture


class nnUNetTrainerJointTeacher(JointTeacherRole, nnUNetTrainer):
    """``self.network`` is the joint network (`network.JointTeacherNetwork`); the fusion and decoder train."""

    def joint_architecture(self) -> dict:
        return joint_architecture(self.teachers, self.configuration_manager.configuration["architecture"],
                                  self.fused_levels(), self.settings.fusion.adapter_norm)

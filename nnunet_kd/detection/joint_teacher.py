"""Detection joint teacher: the frozen teachers' encoders fused level by level; new FPN, RPN and ROI heads trained on
the target."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_kd.detection.network import joint_architecture
from nnunet_kd.detection.trainer import DetTrainerMixin
from nnunet_kd.roles.joint_teacher import JointTeacherRole


class nnUNetTrainerDetJointTeacher(DetTrainerMixin, JointTeacherRole, nnUNetTrainer):
    """Frozen teachers' encoders fused level by level; new FPN, RPN and ROI heads trained on the target."""

    teacher_encoder_prefix = "backbone.encoder."

    def teacher_encoders(self):
        return self.stock_network().backbone.encoder.teacher_encoders

    def joint_architecture(self) -> dict:
        return joint_architecture([t.arch for t in self.teachers], self.configuration_manager.configuration["architecture"],
                                  self.fused_levels(), self.settings.fusion.adapter_norm)

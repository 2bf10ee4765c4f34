"""Classification joint teacher: the frozen teachers' encoders fused level by level, a new head trained on the target."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_kd.classification.network import joint_architecture
from nnunet_kd.classification.trainer import ClsTrainerMixin
from nnunet_kd.roles.joint_teacher import JointTeacherRole


class nnUNetTrainerClsJointTeacher(ClsTrainerMixin, JointTeacherRole, nnUNetTrainer):
    """Frozen teachers' encoders fused level by level; a new head on the pooled fused levels, trained on the target."""

    def joint_architecture(self) -> dict:
        return joint_architecture(self.teachers, self.configuration_manager.configuration["architecture"],
                                  self.fused_levels(), self.settings.fusion.adapter_norm)

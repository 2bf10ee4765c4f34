"""Classification student: the classifier trained with CE + feature MSE + logit KD from the joint teacher."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.classification.labels import class_names
from nnunet_kd.classification.network import build_cls_network
from nnunet_kd.classification.trainer import ClsTrainerMixin
from nnunet_kd.core.teachers import Teacher, freeze
from nnunet_kd.roles.student import StudentRole


class nnUNetTrainerClsJointKD(ClsTrainerMixin, StudentRole, nnUNetTrainer):
    """Student: the classifier trained with CE + feature MSE on the encoder levels + logit KD from the joint teacher."""

    no_decoder = "classifier"

    def build_teacher(self, spec: Teacher) -> nn.Module:
        arch = spec.plans_dict["configurations"][spec.configuration]["architecture"]
        net = build_cls_network(arch, spec.num_input_channels, len(class_names(spec.dataset_json)))
        net.load_state_dict(load_checkpoint(spec.checkpoint)["network_weights"])
        return freeze(net)

"""The segmentation student: a stock nnU-Net network trained with nnU-Net's loss (deep supervision) + feature and logit
distillation from the joint teacher; its checkpoint is a stock nnU-Net checkpoint (plus ``kd_state``)."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_kd.roles.student import StudentRole


class nnUNetTrainerJointKD(StudentRole, nnUNetTrainer):
    """The deployable segmentation student (encoder and, with distill.decoder_levels, decoder stages distilled)."""

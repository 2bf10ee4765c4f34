"""The segmentation source teacher: nnU-Net's loss on source batches + GRL domain heads (the role's protocol)."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_kd.roles.source_teacher import SourceTeacherRole


class nnUNetTrainerDomainAdversarial(SourceTeacherRole, nnUNetTrainer):
    """nnU-Net's loss on source batches + a domain classifier behind a gradient reversal layer on the encoder features
    of source and target batches (one concatenated forward). The network stays the stock plans network."""

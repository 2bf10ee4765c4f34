"""Classification source teacher: CE on source images + GRL domain heads on the encoder levels of source and target
images (the source-teacher role with the classifier of :class:`ClsTrainerMixin`)."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_kd.classification.trainer import ClsTrainerMixin
from nnunet_kd.roles.source_teacher import SourceTeacherRole


class nnUNetTrainerClsDomainAdversarial(ClsTrainerMixin, SourceTeacherRole, nnUNetTrainer):
    """Source teacher: CE on source images + GRL domain heads on the encoder levels of source and target images."""

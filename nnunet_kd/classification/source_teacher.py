"""Classification source teacher: CE on source images + GRL domain heads on the encoder levels of source and target
images (the segmentation source teacher's protocol with the classifier of :class:`ClsTrainerMixin`)."""
from nnunet_kd.classification.trainer import ClsTrainerMixin
from nnunet_kd.segmentation.source_teacher import nnUNetTrainerDomainAdversarial


class nnUNetTrainerClsDomainAdversarial(ClsTrainerMixin, nnUNetTrainerDomainAdversarial):
    """Source teacher: CE on source images + GRL domain heads on the encoder levels of source and target images."""

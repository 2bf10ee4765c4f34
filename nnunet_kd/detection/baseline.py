"""The detection baseline: the dataset-specific detector (the target teacher). No multi-head model for detection."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_kd.detection.trainer import DetTrainerMixin
from nnunet_kd.core.trainer import KDTrainerMixin


class nnUNetTrainerDet(DetTrainerMixin, KDTrainerMixin, nnUNetTrainer):
    """Dataset-specific 2D detector: torchvision Faster R-CNN on the plans' encoder with an FPN."""

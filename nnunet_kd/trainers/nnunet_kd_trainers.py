# nnU-Net imports every module of the folder nnUNet_extTrainer points at; keep this a thin re-export.
from nnunet_kd.classification.trainers import *  # noqa: F401,F403
from nnunet_kd.detection.trainers import *  # noqa: F401,F403
from nnunet_kd.segmentation.trainers import *  # noqa: F401,F403

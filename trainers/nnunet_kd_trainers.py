# The folder nnUNet_extTrainer points at from a checkout (`nnunet_kd.trainer_path()` gives the installed one): nnU-Net
# imports every module here, so this stays a one-line re-export.
from nnunet_kd.trainers.nnunet_kd_trainers import *  # noqa: F401,F403

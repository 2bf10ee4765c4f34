"""The folder nnUNet_extTrainer points at (`nnunet_kd.trainer_path()`): thin re-exports of the trainer classes."""

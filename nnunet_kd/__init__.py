"""nnunet-kd: multi-dataset cross-domain knowledge distillation for nnU-Net v2."""
import os

__version__ = "0.1.0"


def trainer_path() -> str:
    """The folder to export as nnUNet_extTrainer (thin re-exports of the trainer classes)."""
    import nnunet_kd.trainers
    return os.path.dirname(os.path.abspath(nnunet_kd.trainers.__file__))

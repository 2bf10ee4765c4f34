"""nnunet-kd: multi-dataset cross-domain knowledge distillation for nnU-Net v2."""
import os

__version__ = "0.1.0"


def trainer_path() -> str:
    """The folder to export as nnUNet_extTrainer (thin re-exports of the trainer classes)."""
    import nnunet_kd.trainers
    return os.path.dirname(os.path.abspath(nnunet_kd.trainers.__file__))


def ext_trainer_value(current: str = "") -> str:
    """nnUNet_extTrainer with the plugin's trainer folder first and the folders already in ``current`` kept (nnU-Net
    reads an os.pathsep list)."""
    ours = trainer_path()
    return os.pathsep.join([ours] + [p for p in (current or "").split(os.pathsep) if p and p != ours])

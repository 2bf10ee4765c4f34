"""nnunet-kd: multi-dataset cross-domain knowledge distillation for nnU-Net v2."""
__version__ = "0.1.0"

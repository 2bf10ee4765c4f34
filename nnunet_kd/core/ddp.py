"""DDP for the plugin's extras, which live outside ``self.network`` (nnU-Net wraps only that)."""
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """DDP for the plugin's extras (nnU-Net wraps only self.network). Every extra takes part in every step's single
    forward, so unused-parameter detection stays off."""
    return DDP(module, device_ids=[device.index] if device.type == "cuda" else None)


def batch_head(output, n: int):
    """The first n samples of a network output (a tensor, or nnU-Net's deep-supervision list)."""
    return [o[:n] for o in output] if isinstance(output, (list, tuple)) else output[:n]

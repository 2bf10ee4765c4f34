"""Reading encoder features of nnU-Net networks (PlainConvUNet, ResidualEncoderUNet)."""
from typing import List, Optional

import torch
from torch import nn


class EncoderTap:
    """Keeps the encoder stage outputs (nnU-Net's skips; the last one is the bottleneck) of the latest forward pass.

    A forward hook on ``network.encoder``: the network is still called as a whole, so DDP and torch.compile see the
    usual single forward. Register it before compiling.
    """

    def __init__(self, network: nn.Module):
        self._skips: Optional[List[torch.Tensor]] = None
        self._handle = network.encoder.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self._skips = output

    def pop(self) -> List[torch.Tensor]:
        skips, self._skips = self._skips, None
        if skips is None:
            raise RuntimeError("EncoderTap: no encoder output recorded; call the network first")
        return skips

    def remove(self) -> None:
        self._handle.remove()
        self._skips = None


def encoder_channels(network: nn.Module) -> List[int]:
    return list(network.encoder.output_channels)

"""Reading encoder features of nnU-Net networks (PlainConvUNet, ResidualEncoderUNet)."""
import contextlib
import pydoc
from types import SimpleNamespace

import torch
import torch._dynamo
from torch import nn

# torch.compile skips guards on module hooks by default: a graph traced for an untapped network is then reused for a
# tapped instance of the same class, and the tap never fires. Guarding on hooks makes dynamo retrace instead. Set at
# import, because graphs traced before it is set keep no such guard.
torch._dynamo.config.skip_nnmodule_hook_guards = False


class EncoderTap:
    """Keeps the encoder stage outputs (nnU-Net's skips; the last one is the bottleneck) of the latest forward pass.

    A forward hook on ``network.encoder``: the network is still called as a whole, so DDP and torch.compile see the
    usual single forward.
    """

    def __init__(self, network: nn.Module):
        self._skips: list[torch.Tensor] | None = None
        self._handle = network.encoder.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self._skips = output

    def pop(self) -> list[torch.Tensor]:
        skips, self._skips = self._skips, None
        if skips is None:
            raise RuntimeError("EncoderTap: no encoder output recorded; call the network first")
        return skips

    def remove(self) -> None:
        self._handle.remove()
        self._skips = None


class DecoderBatchHead:
    """Runs ``network.decoder`` on the first ``n`` samples of the encoder's output only (``n`` None: all of them): a
    forward pre-hook, so that the network is still called as a whole (DDP, torch.compile) while the rest of the batch
    goes through the encoder alone (the source teacher's target-domain images)."""

    def __init__(self, network: nn.Module):
        self.n: int | None = None
        self._handle = network.decoder.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        if self.n is None:
            return None
        skips, *rest = args
        return ([s[:self.n] for s in skips], *rest)

    @contextlib.contextmanager
    def first(self, n: int):
        self.n = n
        try:
            yield
        finally:
            self.n = None


class WithEncoderFeatures(nn.Module):
    """A network with an encoder, called as the joint teachers are: ``forward(x, return_features=True)`` returns its
    output and its encoder stage outputs (a stock network as the teacher of a student)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        self._tap = EncoderTap(network)

    @property
    def decoder(self) -> nn.Module:
        return self.network.decoder

    def forward(self, x: torch.Tensor, return_features: bool = False):
        out = self.network(x)
        features = self._tap.pop()
        return (out, features) if return_features else out


def encoder_channels(network: nn.Module) -> list[int]:
    return list(network.encoder.output_channels)


class ModuleOutputTap:
    """Keeps the outputs of a list of modules (e.g. decoder stages) of the latest forward pass, in list order."""

    def __init__(self, modules):
        self._out = [None] * len(modules)
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(modules)]

    def _hook(self, i):
        def hook(module, inputs, output):
            self._out[i] = output
        return hook

    def pop(self) -> list[torch.Tensor]:
        out, self._out = self._out, [None] * len(self._out)
        return out


def encoder_spec(arch_kwargs: dict, required_import=()) -> SimpleNamespace:
    """What nnU-Net's UNetDecoder reads of an encoder, built from plans arch kwargs (no encoder weights), so that a
    decoder can be built without registering an encoder inside it."""
    from dynamic_network_architectures.building_blocks.helper import maybe_convert_scalar_to_list
    kw = {k: (pydoc.locate(v) if k in required_import and isinstance(v, str) else v) for k, v in arch_kwargs.items()}
    conv_op = kw["conv_op"]
    return SimpleNamespace(
        output_channels=list(kw["features_per_stage"]), conv_op=conv_op,
        strides=[maybe_convert_scalar_to_list(conv_op, s) for s in kw["strides"]],
        kernel_sizes=[maybe_convert_scalar_to_list(conv_op, k) for k in kw["kernel_sizes"]],
        conv_bias=kw.get("conv_bias", True), norm_op=kw.get("norm_op"), norm_op_kwargs=kw.get("norm_op_kwargs") or {},
        dropout_op=kw.get("dropout_op"), dropout_op_kwargs=kw.get("dropout_op_kwargs"), nonlin=kw.get("nonlin"),
        nonlin_kwargs=kw.get("nonlin_kwargs") or {})


def spec_of_encoder(encoder: nn.Module) -> SimpleNamespace:
    """The same namespace, read off a built encoder."""
    return SimpleNamespace(**{k: getattr(encoder, k) for k in (
        "output_channels", "conv_op", "strides", "kernel_sizes", "conv_bias", "norm_op", "norm_op_kwargs",
        "dropout_op", "dropout_op_kwargs", "nonlin", "nonlin_kwargs")})

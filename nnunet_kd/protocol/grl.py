"""Gradient reversal (Ganin & Lempitsky, 2015) and the DANN lambda schedule."""
import math

import torch
from torch import nn


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lambd):
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float) -> torch.Tensor:
    """Identity in the forward pass, gradient times -lambd in the backward pass."""
    return _ReverseGrad.apply(x, float(lambd))


class GradientReversal(nn.Module):
    def __init__(self, lambd: float = 1.0):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return grad_reverse(x, self.lambd)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """lambda = 2 / (1 + exp(-gamma * p)) - 1 for training progress p in [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0

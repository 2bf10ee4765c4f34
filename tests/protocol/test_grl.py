import math

import pytest
import torch
from torch import nn

from nnunet_kd.protocol.grl import GradientReversal, dann_lambda, grad_reverse


@pytest.mark.parametrize("lambd", [0.0, 0.3, 1.0, 2.5])
def test_gradient_is_reversed_and_scaled(lambd):
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    (grad_reverse(x, lambd) * w).sum().backward()
    assert torch.allclose(x.grad, -lambd * w)


def test_forward_is_identity():
    x = torch.randn(2, 5)
    assert torch.equal(GradientReversal(0.7)(x), x)


def test_reversal_through_a_network():
    torch.manual_seed(0)
    encoder, head = nn.Linear(6, 4), nn.Linear(4, 1)
    x = torch.randn(8, 6)

    def encoder_grad(reverse: bool, lambd: float = 0.5):
        encoder.zero_grad()
        head.zero_grad()
        h = encoder(x)
        out = head(grad_reverse(h, lambd) if reverse else h)
        out.pow(2).mean().backward()
        return encoder.weight.grad.clone(), head.weight.grad.clone()

    plain_enc, plain_head = encoder_grad(False)
    rev_enc, rev_head = encoder_grad(True)
    assert torch.allclose(rev_enc, -0.5 * plain_enc, atol=1e-6)  # encoder is pushed the other way
    assert torch.allclose(rev_head, plain_head)  # the domain head itself learns normally


def test_dann_schedule():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    values = [dann_lambda(p / 10) for p in range(11)]
    assert values == sorted(values) and values[-1] < 1
    assert dann_lambda(2.0) == dann_lambda(1.0)  # clamped

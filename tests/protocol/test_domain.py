import torch

from nnunet_kd.protocol.domain import AdversarialDomainHeads, domain_loss_and_accuracy


def test_heads_per_level_and_gradient_reversal():
    torch.manual_seed(0)
    skips = [torch.randn(4, c, 8, 8, requires_grad=True) for c in (8, 16, 32)]
    heads = AdversarialDomainHeads([8, 16, 32], levels=[-1, 1], hidden=16, conv_op=torch.nn.Conv2d)
    assert heads.levels == [1, 2]
    logits = heads(skips, lambd=1.0)
    assert logits.shape == (2, 4)
    domain = torch.tensor([0.0, 0.0, 1.0, 1.0])
    loss, acc = domain_loss_and_accuracy(logits, domain)
    assert 0 <= acc.item() <= 1 and loss.item() > 0
    loss.backward()
    assert skips[0].grad is None  # level 0 has no head
    assert skips[2].grad is not None and skips[2].grad.abs().sum() > 0


def test_accuracy_counts_correct_signs():
    logits = torch.tensor([[-2.0, 3.0, 1.0, -1.0]])
    _, acc = domain_loss_and_accuracy(logits, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert acc.item() == 0.5

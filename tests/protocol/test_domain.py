import numpy as np
import torch

from nnunet_kd.protocol.domain import (AdversarialDomainHeads, domain_loss_and_accuracy, pooled_statistics,
                                       probe_accuracy)


def test_heads_per_level_and_gradient_reversal():
    torch.manual_seed(0)
    skips = [torch.randn(4, c, 8, 8, requires_grad=True) for c in (8, 16, 32)]
    heads = AdversarialDomainHeads([8, 16, 32], levels=[-1, 1], hidden=16)
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


def test_both_domains_weigh_equally_whatever_their_share_of_the_batch():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0], [0.0, 1.0, -2.0, 1.0]])
    domain = torch.tensor([0.0, 0.0, 0.0, 1.0])  # three source images, one target image
    loss, acc = domain_loss_and_accuracy(logits, domain)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, domain.expand_as(logits), reduction="none")
    torch.testing.assert_close(loss, ((bce[:, :3].mean(1) + bce[:, 3]) / 2).mean())
    assert acc.item() == ((1 / 3 + 1) / 2 + (2 / 3 + 1) / 2) / 2  # balanced accuracy per level, then the mean


def test_probe_tells_shifted_domains_apart_and_not_identical_ones():
    rng = np.random.RandomState(0)
    domain = np.repeat([0, 1], 20)
    cases = [f"case{i}" for i in range(40)]
    features = rng.randn(40, 6)
    assert probe_accuracy(features, domain, cases) < 0.75
    assert probe_accuracy(features + 3.0 * domain[:, None], domain, cases) > 0.95


def test_probe_keeps_the_draws_of_a_case_in_one_fold():
    """A case drawn several times in an epoch: fitting on some draws and testing on the others would memorise cases."""
    rng = np.random.RandomState(0)
    per_case = rng.randn(20, 50)
    domain = np.repeat(np.repeat([0, 1], 10), 6)
    cases = np.repeat([f"case{i}" for i in range(20)], 6)
    features = np.repeat(per_case, 6, axis=0) + 0.01 * rng.randn(120, 50)
    assert probe_accuracy(features, domain, cases) < 0.75
    assert np.isnan(probe_accuracy(features[:7], domain[:7], cases[:7]))  # one case of domain 1: nothing to test on


def test_pooled_statistics_are_mean_and_std_per_channel():
    x = torch.arange(16.0).reshape(1, 2, 2, 4)
    pooled = pooled_statistics(x)
    assert torch.allclose(pooled, torch.cat((x.flatten(2).mean(2), x.flatten(2).std(2)), 1))
    assert pooled.shape == (1, 4)

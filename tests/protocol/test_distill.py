import pytest
import torch

from nnunet_kd.protocol.distill import FeatureAdapters, feature_mse, logit_kd


@pytest.mark.parametrize("regions", [False, True])
def test_kd_is_zero_for_identical_logits_and_positive_otherwise(regions):
    torch.manual_seed(0)
    z = torch.randn(2, 3, 8, 8)
    assert logit_kd(z, z.clone(), 2.0, regions).item() == pytest.approx(0.0, abs=1e-6)
    assert logit_kd(torch.randn(2, 3, 8, 8), z, 2.0, regions).item() > 0


@pytest.mark.parametrize("regions", [False, True])
def test_kd_is_averaged_over_voxels(regions):
    torch.manual_seed(0)
    zs, zt = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    small = logit_kd(zs, zt, 2.0, regions)
    large = logit_kd(zs.repeat(2, 1, 8, 8), zt.repeat(2, 1, 8, 8), 2.0, regions)  # 128x the voxels, same distributions
    assert large.item() == pytest.approx(small.item(), rel=1e-5)


def test_kd_matches_the_definition():
    torch.manual_seed(1)
    zs, zt, T = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3), 3.0
    ps, pt = torch.softmax(zs / T, 1), torch.softmax(zt / T, 1)
    expected = T ** 2 * (pt * (pt.log() - ps.log())).sum(1).mean()
    assert logit_kd(zs, zt, T).item() == pytest.approx(expected.item(), rel=1e-5)


def test_kd_is_computed_in_fp32():
    zs, zt = torch.randn(1, 2, 4, 4).half(), torch.randn(1, 2, 4, 4).half()
    assert logit_kd(zs, zt, 2.0).dtype == torch.float32


def test_feature_terms():
    feats = [torch.randn(2, 8, 4, 4), torch.randn(2, 16, 2, 2)]
    assert feature_mse(feats, [f.clone() for f in feats]).item() == 0
    assert feature_mse(feats, [f + 1 for f in feats]).item() == pytest.approx(2.0)
    adapters = FeatureAdapters([4, 8], [8, 16], torch.nn.Conv2d)
    out = adapters([torch.randn(2, 4, 4, 4), torch.randn(2, 8, 2, 2)])
    assert [o.shape[1] for o in out] == [8, 16]

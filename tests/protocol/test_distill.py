import pytest
import torch

from nnunet_kd.protocol.distill import FeatureAdapters, feature_mse, logit_kd, sigmoid_rampup


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


@pytest.mark.parametrize("mode", ["class", "channel"])
@pytest.mark.parametrize("regions", [False, True])
def test_every_mode_is_zero_for_identical_logits_and_positive_otherwise(mode, regions):
    torch.manual_seed(0)
    z = torch.randn(2, 3, 8, 8)
    assert logit_kd(z, z.clone(), 2.0, regions, mode).item() == pytest.approx(0.0, abs=1e-6)
    assert logit_kd(torch.randn(2, 3, 8, 8), z, 2.0, regions, mode).item() > 0


def _small_class_batch():
    """Teacher: background everywhere but 4 of 256 voxels of class 1. Student: right on the background, and on the
    small class as sure of background as the teacher is of class 1."""
    zt = torch.zeros(1, 2, 16, 16)
    zt[:, 0] = 4.0
    zt[:, :, :2, :2] = torch.tensor([0.0, 4.0]).view(1, 2, 1, 1)
    zs = zt.clone()
    zs[:, :, :2, :2] = torch.tensor([4.0, 0.0]).view(1, 2, 1, 1)
    return zs, zt


def test_class_mode_gives_a_small_class_the_weight_of_the_background():
    zs, zt = _small_class_batch()
    voxel, cls = logit_kd(zs, zt, 1.0, mode="voxel"), logit_kd(zs, zt, 1.0, mode="class")
    # the 4 wrong voxels' KL, spread over 256 voxels vs averaged over the 2 predicted classes
    kl_wrong = logit_kd(zs[..., :2, :2], zt[..., :2, :2], 1.0, mode="voxel")
    assert voxel.item() == pytest.approx(kl_wrong.item() * 4 / 256, rel=1e-5)
    assert cls.item() == pytest.approx(kl_wrong.item() / 2, rel=1e-5)


def test_channel_mode_is_a_kl_of_spatial_distributions_per_channel():
    torch.manual_seed(2)
    zs, zt, T = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), 2.0
    ps, pt = torch.softmax(zs.flatten(2) / T, 2), torch.softmax(zt.flatten(2) / T, 2)
    expected = T ** 2 * (pt * (pt.log() - ps.log())).sum(2).mean()
    assert logit_kd(zs, zt, T, mode="channel").item() == pytest.approx(expected.item(), rel=1e-5)
    zs_small, zt_small = _small_class_batch()
    # the small class's channel: its spatial distribution is as wrong as it can be, and weighs half the loss
    assert logit_kd(zs_small, zt_small, 1.0, mode="channel") > 10 * logit_kd(zs_small, zt_small, 1.0, mode="voxel")


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        logit_kd(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), 1.0, mode="pixel")


def test_feature_mse_is_the_mean_squared_error_in_fp32_and_its_gradient():
    torch.manual_seed(0)
    s = [torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(2, 8, 4, 4, requires_grad=True)]
    t = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    ours = feature_mse(s, t)
    ours.backward()
    grads = [x.grad.clone() for x in s]
    for x in s:
        x.grad = None
    reference = sum(torch.nn.functional.mse_loss(a, b) for a, b in zip(s, t))
    reference.backward()
    torch.testing.assert_close(ours, reference)
    for g, x in zip(grads, s):
        torch.testing.assert_close(g, x.grad)
    half = feature_mse([x.detach().half() * 300 for x in s], [x.half() * 300 for x in t])  # squares beyond fp16's range
    assert half.dtype == torch.float32 and torch.isfinite(half)
    torch.testing.assert_close(half, reference.detach() * 300 ** 2, rtol=2e-3, atol=0)


@pytest.mark.parametrize("mode", ["voxel", "class", "channel"])
def test_the_terms_compile_into_one_graph_with_the_eager_values(mode):
    """The student compiles adapters, feature MSE and KL together where nnU-Net compiles: no graph break in them."""
    torch.manual_seed(0)
    adapters = FeatureAdapters([4, 8], [6, 10], torch.nn.Conv2d)

    def terms(feats, teacher_feats, zs, zt):
        return feature_mse(adapters(feats), teacher_feats), logit_kd(zs, zt, 2.0, mode=mode)

    args = ([torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)], [torch.randn(2, 6, 8, 8), torch.randn(2, 10, 4, 4)],
            torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8))
    compiled = torch.compile(terms, fullgraph=True, backend="aot_eager")(*args)
    for c, e in zip(compiled, terms(*args)):
        torch.testing.assert_close(c, e)


def test_the_rampup_rises_from_near_0_to_1_and_stays():
    import math
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(100, 100) == sigmoid_rampup(1000, 100) == 1.0
    values = [sigmoid_rampup(s, 100) for s in range(101)]
    assert values == sorted(values)
    assert sigmoid_rampup(0, 0) == 1.0  # no ramp-up

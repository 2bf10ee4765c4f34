import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet

from nnunet_kd.protocol.taps import DecoderBatchHead, EncoderTap, ModuleOutputTap, WithEncoderFeatures


def _unet():
    return PlainConvUNet(1, 3, [4, 8, 16], torch.nn.Conv2d, 3, [1, 2, 2], 1, 2, [1, 1], True, torch.nn.InstanceNorm2d,
                         {"affine": True}, nonlin=torch.nn.LeakyReLU, deep_supervision=True)


def test_taps_record_under_compile_after_another_instance_was_compiled():
    """A graph traced for an untapped network of the same class must not be reused for a tapped one."""
    x = torch.randn(2, 1, 16, 16)
    torch.compile(_unet(), backend="eager")(x)
    net = _unet()
    compiled = torch.compile(net, backend="eager")
    tap, decoder_tap = EncoderTap(net), ModuleOutputTap(list(net.decoder.stages))
    out = compiled(x)
    skips = tap.pop()
    assert [tuple(s.shape) for s in skips] == [(2, 4, 16, 16), (2, 8, 8, 8), (2, 16, 4, 4)]
    torch.testing.assert_close(skips[-1], net.encoder(x)[-1])
    assert [tuple(d.shape) for d in decoder_tap.pop()] == [(2, 8, 8, 8), (2, 4, 16, 16)]
    assert out[0].shape == (2, 2, 16, 16)


def test_decoder_batch_head_decodes_the_first_samples_and_taps_all():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 16, 16)
    net = _unet()
    tap, head = EncoderTap(net), DecoderBatchHead(net)
    for call in (net, torch.compile(net, backend="eager")):
        with head.first(2):
            out = call(x)
        assert [tuple(s.shape[:2]) for s in tap.pop()] == [(3, 4), (3, 8), (3, 16)]
        torch.testing.assert_close(out[0], net(x[:2])[0])  # instance norm: each sample on its own
        tap.pop()
        assert head.n is None and call(x)[0].shape == (3, 2, 16, 16)  # outside the context: the whole batch


def test_a_stock_network_with_encoder_features_is_called_as_a_joint_teacher():
    from nnunet_kd.classification.network import ClsNetwork
    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 16)
    unet = _unet().eval()
    teacher = WithEncoderFeatures(unet)
    out, features = teacher(x, return_features=True)
    torch.testing.assert_close(out[0], unet(x)[0])
    assert [tuple(f.shape) for f in features] == [(2, 4, 16, 16), (2, 8, 8, 8), (2, 16, 4, 4)]
    torch.testing.assert_close(features[-1], unet.encoder(x)[-1])
    assert teacher.decoder is unet.decoder and teacher(x)[0].shape == (2, 2, 16, 16)
    classifier = WithEncoderFeatures(ClsNetwork(unet.encoder, 3))  # a classifier: pooled bottleneck -> logits
    logits, features = classifier(x, return_features=True)
    assert logits.shape == (2, 3) and len(features) == 3

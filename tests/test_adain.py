"""The AdaIN operation, the feature-space blend and the encoder/decoder layouts."""

import pytest
import torch
from torch import nn

from consumer.engines.adain import (
    AdaINNet,
    adain,
    blend_features,
    build_decoder,
    build_encoder,
    mean_std,
    style_layer_indices,
)
from consumer.engines.vgg import init_scale_preserving

pytestmark = [
    pytest.mark.usefixtures("blend_single_thread"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated"),
]


def _feats(seed: int, scale: float, shift: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 8, 6, 5, generator=generator) * scale + shift


def test_adain_output_has_the_style_channel_statistics():
    content, style = _feats(0, 1.0, 0.0), _feats(1, 3.0, 2.0)
    s_mean, s_std = mean_std(style)
    out_mean, out_std = mean_std(adain(content, s_mean, s_std))
    torch.testing.assert_close(out_mean, s_mean, atol=1e-5, rtol=0)
    # eps in the variance keeps std(out) a hair under std(style): 1e-5 relative at these scales.
    torch.testing.assert_close(out_std, s_std, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(mean_std(content)[1], s_std, atol=0.5)  # the test is not vacuous


def test_blend_weights_and_alpha():
    content = _feats(0, 1.0, 0.0)
    s1, s2 = mean_std(_feats(1, 3.0, 2.0)), mean_std(_feats(2, 0.5, -1.0))
    one = blend_features(content, [s1], [1.0], 1.0)
    torch.testing.assert_close(blend_features(content, [s1, s2], [1.0, 0.0], 1.0), one)
    torch.testing.assert_close(blend_features(content, [s1, s2], [0.0, 1.0], 1.0), adain(content, *s2))
    torch.testing.assert_close(blend_features(content, [s1, s2], [0.3, 0.7], 0.0), content)
    half = blend_features(content, [s1, s2], [0.5, 0.5], 1.0)
    torch.testing.assert_close(half, 0.5 * adain(content, *s1) + 0.5 * adain(content, *s2))
    mixed = blend_features(content, [s1], [1.0], 0.25)
    torch.testing.assert_close(mixed, 0.25 * one + 0.75 * content)


def test_encoder_is_vgg_normalised_to_relu4_1():
    encoder = build_encoder()
    assert len(encoder) == 31
    assert isinstance(encoder[0], nn.Conv2d) and encoder[0].kernel_size == (1, 1)
    assert isinstance(encoder[30], nn.ReLU) and encoder[29].out_channels == 512
    assert all(m.ceil_mode for m in encoder if isinstance(m, nn.MaxPool2d))
    assert style_layer_indices() == [3, 10, 17, 30]


def test_decoder_has_the_public_layout():
    decoder = build_decoder()
    convs = [i for i, m in enumerate(decoder) if isinstance(m, nn.Conv2d)]
    assert convs == [1, 5, 8, 11, 14, 18, 21, 25, 28]
    ups = [m for m in decoder if isinstance(m, nn.Upsample)]
    assert len(ups) == 3 and all(u.mode == "nearest" and u.scale_factor == 2 for u in ups)
    assert isinstance(decoder[-1], nn.Conv2d) and decoder[-1].out_channels == 3  # no final activation


def test_encode_decode_shapes_with_odd_sizes():
    net = init_scale_preserving(AdaINNet()).eval()
    with torch.no_grad():
        feats = net.encode(torch.rand(1, 3, 30, 21))
        assert feats.shape == (1, 512, 4, 3)  # ceil-mode pools: ⌈30/8⌉, ⌈21/8⌉
        assert net.decode(feats).shape == (1, 3, 32, 24)


@pytest.mark.parametrize("weights", [(0.5, 0.5), (1.0, 0.0)])
def test_scripted_forward_matches_eager(weights):
    torch.manual_seed(0)
    net = init_scale_preserving(AdaINNet()).eval()
    scripted = torch.jit.script(net)
    c, s1, s2 = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 16, 24), torch.rand(1, 3, 24, 16)
    w = torch.tensor(weights)
    with torch.no_grad():
        eager = net(c, s1, s2, w)
        torch.testing.assert_close(scripted(c, s1, s2, w), eager)
        # forward is the same computation as encode → blend_features → decode.
        stats = [mean_std(net.encode(s)) for s in (s1, s2)]
        manual = net.decode(blend_features(net.encode(c), stats, list(weights), 1.0)).clamp(0, 1)
        torch.testing.assert_close(eager, manual, atol=1e-5, rtol=1e-5)

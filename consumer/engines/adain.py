"""Adaptive instance normalisation (Huang & Belongie, 2017) and the AdaIN encoder/decoder pair.

The module layouts are those of the public pytorch-AdaIN files, so ``vgg_normalised.pth`` and
``decoder.pth`` load into them as they are:

* encoder: ``vgg_normalised.pth`` (see :func:`consumer.engines.vgg.build_layers`, format
  ``adain``) up to relu4_1, i.e. modules ``[:31]``; it takes RGB in [0, 1] because its first
  1×1 conv does the Caffe preprocessing;
* decoder: the mirror image of that encoder with nearest ×2 upsampling instead of pooling,
  convs at indices 1, 5, 8, 11, 14, 18, 21, 25, 28 and no final activation.
"""

from __future__ import annotations

import torch
from torch import nn

from consumer.engines.vgg import build_layers, layer_names

ENCODER_DEPTH = 31  # modules [:31] of vgg_normalised end at relu4_1
EPS = 1e-5  # added to the variance, as in the paper's reference code
# relu layers whose mean/std the training style loss matches (encoder module indices).
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

# Decoder: (in, out) channels of each 3×3 conv; "U" is a nearest ×2 upsample.
_DECODER_PLAN: list[tuple[int, int] | str] = [
    (512, 256), "U", (256, 256), (256, 256), (256, 256), (256, 128), "U",
    (128, 128), (128, 64), "U", (64, 64), (64, 3),
]  # fmt: skip


def mean_std(feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std (N×C×1×1 each) in fp32; the std from the unbiased variance
    plus ``EPS`` like the reference implementation, the statistics the public decoder was trained with."""
    return _stats(feat.float(), EPS)


def adain(content_feat: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor) -> torch.Tensor:
    """Normalise ``content_feat`` per channel, then give it the style's mean and std."""
    c_mean, c_std = mean_std(content_feat)
    normalised = (content_feat.float() - c_mean) / c_std
    return normalised * style_std + style_mean


def blend_features(
    content_feat: torch.Tensor,
    style_stats: list[tuple[torch.Tensor, torch.Tensor]],
    weights: list[float],
    alpha: float,
) -> torch.Tensor:
    """``alpha·Σ wᵢ·AdaIN(c, sᵢ) + (1−alpha)·c``: the dual-style mix done in feature space."""
    target = sum(w * adain(content_feat, m, s) for w, (m, s) in zip(weights, style_stats, strict=True))
    return alpha * target + (1.0 - alpha) * content_feat.float()


def build_encoder() -> nn.Sequential:
    """vgg_normalised's modules up to relu4_1 (random weights until a file is loaded)."""
    return build_layers("vgg19", "adain")[:ENCODER_DEPTH]


def style_layer_indices() -> list[int]:
    """Encoder indices of relu1_1 … relu4_1, for the training losses."""
    names = layer_names(build_layers("vgg19", "adain"))
    return [names[n] for n in STYLE_LAYERS]


def build_decoder() -> nn.Sequential:
    """The pytorch-AdaIN decoder layout: reflection pad + 3×3 conv + ReLU, ×2 nearest upsampling."""
    layers: list[nn.Module] = []
    for step in _DECODER_PLAN:
        if step == "U":
            layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
            continue
        c_in, c_out = step
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3), nn.ReLU()]
    layers.pop()  # no activation after the last conv: the output is unbounded RGB
    return nn.Sequential(*layers)


class AdaINNet(nn.Module):
    """Encoder + decoder, with the PixelBlend seed's ``forward(content, style1, style2, weights)``;
    ``encode``/``decode`` are exported for TorchScript so that a scripted copy can still use the
    style cache and batching (the engine prefers them over ``forward``)."""

    def __init__(self, encoder: nn.Sequential | None = None, decoder: nn.Sequential | None = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else build_encoder()
        self.decoder = decoder if decoder is not None else build_decoder()

    @torch.jit.export
    def encode(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] (N×3×H×W) → relu4_1 features (N×512×⌈H/8⌉×⌈W/8⌉)."""
        return self.encoder(rgb)

    @torch.jit.export
    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        """relu4_1-shaped features → RGB (unclamped, N×3×8h×8w)."""
        return self.decoder(feat)

    def forward(
        self, content: torch.Tensor, style1: torch.Tensor, style2: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """The seed's signature: ``weights`` is ``[w, 1−w]``; returns RGB clamped to [0, 1]."""
        c = self.encoder(content)
        m1, s1 = _stats(self.encoder(style1))
        m2, s2 = _stats(self.encoder(style2))
        c_mean, c_std = _stats(c)
        normalised = (c - c_mean) / c_std
        target = weights[0] * (normalised * s1 + m1) + weights[1] * (normalised * s2 + m2)
        out = self.decoder(target)
        return out[:, :, : content.shape[2], : content.shape[3]].clamp(0.0, 1.0)


def _stats(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    # TorchScript cannot read module globals, hence eps as an argument (callers pass EPS).
    flat = feat.flatten(2)
    return flat.mean(dim=2)[:, :, None, None], (flat.var(dim=2) + eps).sqrt()[:, :, None, None]

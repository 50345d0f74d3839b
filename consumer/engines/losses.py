"""Gatys et al.'s losses and the fused objective the optimiser calls every iteration.

The definitions (content: MSE of activations; style: MSE of Grams, each divided by its activation's
C·H·W; TV: absolute neighbour differences in 0–255 units) follow jcjohnson/neural-style (and
neural-style-pt), whose default weights (content 5, style 100, TV 1e-3) GatysParams keeps.

Speed: the style targets are Gram matrices computed once per stage, and several style images are
blended into *one* target per layer beforehand (the loss is linear in the target's share, so
this is what neural-style does too). The hot loop runs the network once, up to the deepest
layer any loss needs, and the three losses add up in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from consumer.engines.device import autocast
from consumer.engines.vgg import VGGFeatures


def gram(features: torch.Tensor) -> torch.Tensor:
    """B×C×C Gram matrix of ``features`` over C·H·W, in fp32: under fp16 autocast the sums overflow."""
    _, c, h, w = features.shape
    flat = _widened(features.flatten(2))  # a view for NCHW and channels_last alike
    return torch.bmm(flat, flat.transpose(1, 2)).div_(c * h * w)


def _widened(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(_widened(features), target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """``mse_loss(gram(features), target_gram)``, with a backward pass that costs one matmul."""
    _, c, h, w = features.shape
    return _GramMSE.apply(features.flatten(2), target_gram, c * h * w)


class _GramMSE(torch.autograd.Function):
    """mean((F·Fᵀ/n − T)²) for flattened features F (B×C×P) and a fixed target T (B×C×C). Autograd
    would differentiate F·Fᵀ as a product of two operands, two matmuls; with D = F·Fᵀ/n − T
    symmetric the gradient is 4·D·F / (n·B·C²), one matmul.

    Under mixed precision F arrives in bf16/fp16: the Gram, D and the loss are computed in fp32
    (as :func:`gram`), but the gradient matmul runs at F's precision, with D rounded to it. That
    gradient is rounded to F's precision anyway on its way back into the network, so computing
    it in fp32 would only add a copy of F and a slower matmul (~10% of a bf16 iteration on CPU).
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor, target: torch.Tensor, n: int) -> torch.Tensor:
        wide = _widened(flat)
        diff = torch.bmm(wide, wide.transpose(1, 2)).div_(n).sub_(target)
        ctx.save_for_backward(flat, diff)
        ctx.n = n
        return diff.square().mean()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        flat, diff = ctx.saved_tensors
        scaled = diff * (grad_out * (4.0 / (ctx.n * diff.numel())))  # C×C: cheaper than scaling C×P
        # D·F computed as (Fᵀ·D)ᵀ (D is symmetric): for channels_last features Fᵀ is the
        # contiguous one, and the result comes out in the features' own layout, with no copy.
        grad = torch.bmm(flat.transpose(1, 2), scaled.to(flat.dtype)).transpose(1, 2)
        return grad, None, None


def tv_loss(pixels: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: Σ|x[i+1,j]−x[i,j]| + Σ|x[i,j+1]−x[i,j]|."""
    dy = pixels[..., 1:, :] - pixels[..., :-1, :]
    dx = pixels[..., :, 1:] - pixels[..., :, :-1]
    return dy.abs().sum() + dx.abs().sum()


@dataclass(frozen=True)
class Weights:
    """How much each loss counts; ``style_layers`` maps a layer to its own multiplier."""

    content: float
    style: float
    tv: float
    content_layers: tuple[str, ...]
    style_layers: dict[str, float]


def content_targets(
    net: VGGFeatures,
    content: torch.Tensor,
    layers: Sequence[str],
    pooling: str,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Stored fp32, but computed at the optimisation's precision, so that the content image itself
    has zero content loss under mixed precision too."""
    with torch.no_grad(), autocast(content.device, autocast_dtype):
        feats = net(content, layers, pooling=pooling)
    return {name: _widened(f) for name, f in feats.items()}


def style_targets(
    net: VGGFeatures,
    styles: Sequence[torch.Tensor],
    blend: Sequence[float],
    layers: Sequence[str],
    pooling: str,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """One fp32 Gram target per layer: the style images' Grams mixed by ``blend`` (normalised to 1),
    from the network at the optimisation's precision (as for the content targets)."""
    total = float(sum(blend))
    targets: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for image, share in zip(styles, blend, strict=True):
            with autocast(image.device, autocast_dtype):
                feats = net(image, layers, pooling=pooling)
            for name, feat in feats.items():
                part = gram(feat) * (share / total)
                targets[name] = targets[name] + part if name in targets else part
    return targets


class Objective:
    """The weighted sum of content, style and TV losses for one stage's fixed targets."""

    def __init__(
        self,
        net: VGGFeatures,
        weights: Weights,
        content: dict[str, torch.Tensor],
        style: dict[str, torch.Tensor],
        *,
        pooling: str = "max",
        autocast_dtype: torch.dtype | None = None,
        autocast_cache: bool = True,
    ) -> None:
        self.net, self.weights, self.pooling = net, weights, pooling
        self.autocast_dtype, self.autocast_cache = autocast_dtype, autocast_cache
        self.content, self.style = content, style
        # One forward for every layer any loss needs, de-duplicated and in network order.
        self.layers = tuple(dict.fromkeys([*weights.content_layers, *weights.style_layers]))

    def __call__(self, rgb: torch.Tensor, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Total loss and its parts (content, style, tv) as one tensor; ``pixels`` is ``rgb`` in
        0–255 units, the scale the TV weight was tuned for."""
        w = self.weights
        # Mixed precision covers the convolutions only; the losses below run in fp32.
        with autocast(rgb.device, self.autocast_dtype, cache=self.autocast_cache):
            feats = self.net(rgb, self.layers, pooling=self.pooling)
        c = sum(content_loss(feats[n], self.content[n]) for n in w.content_layers)
        s = sum(k * style_loss(feats[n], self.style[n]) for n, k in w.style_layers.items())
        t = tv_loss(pixels) if w.tv > 0 else pixels.new_zeros(())
        parts = torch.stack([w.content * c, w.style * s, w.tv * t])
        return parts.sum(), parts.detach()

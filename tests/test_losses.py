"""consumer.engines.losses against the formulas written out element by element."""

from __future__ import annotations

import pytest
import torch

from consumer.engines import losses
from consumer.engines.vgg import load_vgg


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def direct_gram(f: torch.Tensor) -> torch.Tensor:
    """G[i, j] = Σ_p F[i, p]·F[j, p] / (C·H·W), by loops."""
    _, c, h, w = f.shape
    flat = f[0].reshape(c, h * w)
    g = torch.empty(c, c, dtype=torch.float64)
    for i in range(c):
        for j in range(c):
            g[i, j] = sum(float(flat[i, p]) * float(flat[j, p]) for p in range(h * w))
    return g / (c * h * w)


@pytest.fixture(scope="module")
def net():
    return load_vgg("vgg19", "torchvision", None)


def test_gram_matches_direct_formula():
    f = randn(1, 4, 3, 5)
    torch.testing.assert_close(losses.gram(f)[0].double(), direct_gram(f), rtol=1e-5, atol=1e-6)


def test_gram_is_fp32_for_half_features():
    assert losses.gram(randn(1, 4, 3, 5).half()).dtype == torch.float32


def test_style_loss_is_mean_squared_gram_difference():
    f, target = randn(1, 4, 3, 5, seed=1), randn(1, 4, 4, seed=2)
    want = ((direct_gram(f) - target[0].double()) ** 2).sum() / 16
    assert losses.style_loss(f, target).item() == pytest.approx(want.item(), rel=1e-5)


def test_content_loss_is_mean_squared_error():
    a, b = randn(1, 2, 3, 3, seed=1), randn(1, 2, 3, 3, seed=2)
    assert losses.content_loss(a, b).item() == pytest.approx(((a - b) ** 2).sum().item() / 18, rel=1e-6)


def test_tv_loss_sums_absolute_neighbour_differences():
    x = randn(1, 3, 4, 5)
    want = 0.0
    for ch in range(3):
        for i in range(4):
            for j in range(5):
                if i + 1 < 4:
                    want += abs(float(x[0, ch, i + 1, j] - x[0, ch, i, j]))
                if j + 1 < 5:
                    want += abs(float(x[0, ch, i, j + 1] - x[0, ch, i, j]))
    assert losses.tv_loss(x).item() == pytest.approx(want, rel=1e-5)
    assert losses.tv_loss(torch.full((1, 3, 4, 5), 7.0)).item() == 0


def test_style_targets_blend_grams_by_normalised_weights(net):
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 24, 40)
    blended = losses.style_targets(net, [a, b], [3.0, 1.0], ["relu1_1", "relu3_1"], "max")
    for name in ("relu1_1", "relu3_1"):
        ga = losses.gram(net(a, [name])[name])
        gb = losses.gram(net(b, [name])[name])
        torch.testing.assert_close(blended[name], 0.75 * ga + 0.25 * gb)


def test_objective_weights_and_adds_the_three_losses(net):
    content, style, image = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    weights = losses.Weights(
        content=5.0,
        style=100.0,
        tv=1e-3,
        content_layers=("relu4_2",),
        style_layers={"relu1_1": 2.0, "relu2_1": 0.5},
    )
    objective = losses.Objective(
        net,
        weights,
        losses.content_targets(net, content, ["relu4_2"], "max"),
        losses.style_targets(net, [style], [1.0], ["relu1_1", "relu2_1"], "max"),
    )
    total, parts = objective(image, image * 255)
    feats = net(image, ["relu1_1", "relu2_1", "relu4_2"])
    targets = net(style, ["relu1_1", "relu2_1"])
    c = ((feats["relu4_2"] - net(content, ["relu4_2"])["relu4_2"]) ** 2).mean()
    s = sum(
        k * ((losses.gram(feats[n]) - losses.gram(targets[n])) ** 2).mean()
        for n, k in (("relu1_1", 2.0), ("relu2_1", 0.5))
    )
    tv = losses.tv_loss(image * 255)
    torch.testing.assert_close(parts, torch.stack([5 * c, 100 * s, 1e-3 * tv]))
    assert total.item() == pytest.approx(parts.sum().item(), rel=1e-6)
    assert parts.min() > 0  # every term is live, so the check above compares real numbers


def test_objective_gradient_reaches_the_image(net):
    content = torch.rand(1, 3, 32, 32)
    weights = losses.Weights(1.0, 1.0, 0.0, ("relu2_1",), {"relu1_1": 1.0})
    objective = losses.Objective(
        net,
        weights,
        losses.content_targets(net, content, ["relu2_1"], "avg"),
        losses.style_targets(net, [torch.rand(1, 3, 32, 32)], [1.0], ["relu1_1"], "avg"),
        pooling="avg",
    )
    pixels = (torch.rand(1, 3, 32, 32) * 255).requires_grad_(True)
    total, parts = objective(pixels / 255, pixels)
    total.backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0
    assert parts[2] == 0  # tv weight 0: the TV term is skipped


def test_style_loss_gradient_matches_autograd_of_the_formula():
    f = randn(2, 5, 3, 4, seed=4).double().requires_grad_(True)
    target = losses.gram(randn(2, 5, 3, 4, seed=5).double()).double()

    def plain(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(2, 5, 12)
        return ((flat @ flat.transpose(1, 2) / 60 - target) ** 2).mean()

    (fused,) = torch.autograd.grad(losses.style_loss(f, target), f)
    (want,) = torch.autograd.grad(plain(f), f)
    torch.testing.assert_close(fused.double(), want)
    assert torch.autograd.gradcheck(lambda x: losses.style_loss(x, target), (f,))

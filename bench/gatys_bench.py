"""Time the Gatys engine against a straightforward reference written the way the seeds do it.

    .venv/bin/python bench/gatys_bench.py --random-weights --size 128 --iterations 20   # CPU here
    python bench/gatys_bench.py --device cuda --size 512 --iterations 100              # on a GPU

Both run the same network (same weights), images, size, loss weights, initial image (the
content) and iteration count with L-BFGS, and print ms/iteration, final losses and the ratio.
The reference is what neural-style-pt and the PyTorch tutorial do: fp32, loss modules inserted
into an ``nn.Sequential`` copy of the whole feature stack (in-place ReLUs as in torchvision's
VGG), the style Gram target recomputed from stored features in every forward, and one
``torch.optim.LBFGS.step`` running all iterations. Whole runs are timed, setup included.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumer.engines import image as im  # noqa: E402
from consumer.engines.gatys import GatysEngine, create_engine  # noqa: E402
from consumer.engines.vgg import VGGFeatures  # noqa: E402
from stylequeue import config as config_mod  # noqa: E402
from stylequeue.config import EngineConfig  # noqa: E402
from stylequeue.params.gatys import GatysParams  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--content", type=Path, default=ROOT / "samples/content/tubingen.jpg")
    p.add_argument("--style", type=Path, default=ROOT / "samples/style/starry_night.jpg")
    p.add_argument("--size", type=int, default=128, help="longest side of the output")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations of each first")
    p.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each, alternating; the fastest counts"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", help="for our engine only (the reference is fp32)")
    p.add_argument("--model", default="vgg19", choices=("vgg19", "vgg16"))
    p.add_argument("--random-weights", action="store_true", help="a random VGG (same for both)")
    args = p.parse_args(argv)
    if args.size < 64:
        p.error("--size must be at least 64: the reference runs the whole stack, five 2x2 pools")
    return args


class Preprocess(nn.Module):
    def __init__(self, net: VGGFeatures) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net.preprocess(pixels / 255.0)


def ref_gram(x: torch.Tensor) -> torch.Tensor:
    _, c, h, w = x.shape
    f = x.view(c, h * w)
    return torch.mm(f, f.t()) / (c * h * w)


class LossModule(nn.Module):
    """Passes its input through; ``mode`` is "capture" (store the target), "loss" or "off"."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight, self.target, self.loss, self.mode = weight, None, 0.0, "off"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "capture":
            self.target = x.detach()
        elif self.mode == "loss":
            self.loss = self.weight * self.compare(x)
        return x


class ContentLoss(LossModule):
    def compare(self, x: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(x, self.target)


class StyleLoss(LossModule):
    def compare(self, x: torch.Tensor) -> torch.Tensor:
        # The seeds' habit: the target's Gram again on every call.
        return F.mse_loss(ref_gram(x), ref_gram(self.target))


def reference_model(net: VGGFeatures, params: GatysParams) -> tuple[nn.Sequential, list, list]:
    model, contents, styles = nn.Sequential(Preprocess(net)), [], []
    names = {index: name for name, index in net.names.items() if name.startswith("relu")}
    # A plain NCHW copy: the engine's channels_last weights are one of its own optimisations.
    layers = copy.deepcopy(net.layers).to(memory_format=torch.contiguous_format)
    gain = net.activation_gain  # the engine's per-format loss scale, so both optimise one objective
    for index, layer in enumerate(layers):
        model.append(nn.ReLU(inplace=True) if isinstance(layer, nn.ReLU) else layer)
        if names.get(index) in params.content_layers:
            contents.append(model.append(ContentLoss(params.content_weight * gain**2))[-1])
        if names.get(index) in params.style_layers:
            styles.append(model.append(StyleLoss(params.style_weight * gain**4))[-1])
    return model.to(net.mean.device), contents, styles


@contextlib.contextmanager
def torch_defaults():
    """PyTorch's default CUDA settings for the reference (the engine turns on autotuning and
    TF32 matmuls process-wide; the seeds never did)."""
    saved = torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = False, False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = saved


def run_reference(net: VGGFeatures, content: Image.Image, style: Image.Image, params: GatysParams) -> dict:
    with torch_defaults():
        return _run_reference(net, content, style, params)


def _run_reference(net: VGGFeatures, content: Image.Image, style: Image.Image, params: GatysParams) -> dict:
    device = net.mean.device
    size = im.size_for_longest(*content.size, params.image_size)
    c = (im.to_tensor(content.resize(size, Image.Resampling.LANCZOS), device) * 255).contiguous()
    s = (im.to_tensor(im.resize_longest(style, params.image_size), device) * 255).contiguous()
    model, contents, styles = reference_model(net, params)
    with torch.no_grad():
        for image, capturing in ((c, contents), (s, styles)):
            for m in capturing:
                m.mode = "capture"
            model(image)
            for m in capturing:
                m.mode = "off"
    for m in contents + styles:
        m.mode = "loss"
    img = c.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [img], lr=params.learning_rate, max_iter=params.total_iterations,
        history_size=100, tolerance_grad=-1, tolerance_change=-1,
    )  # fmt: skip
    last: dict = {}

    def closure():
        optimizer.zero_grad()
        model(img)
        dy, dx = img[..., 1:, :] - img[..., :-1, :], img[..., :, 1:] - img[..., :, :-1]
        tv = params.tv_weight * (dy.abs().sum() + dx.abs().sum())
        cl, sl = sum(m.loss for m in contents), sum(m.loss for m in styles)
        loss = cl + sl + tv
        loss.backward()
        last.update(content=cl.item(), style=sl.item(), tv=tv.item(), total=loss.item())
        return loss

    optimizer.step(closure)
    return last


def timed(device: torch.device, fn):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def bench_params(args: argparse.Namespace, iterations: int) -> GatysParams:
    return GatysParams(
        image_size=args.size, total_iterations=iterations, coarse_to_fine=False,
        snapshot_every=10_000, seed=0, model=args.model,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = dataclasses.replace(
        config_mod.load(EngineConfig), device=args.device, precision=args.precision,
        random_weights=args.random_weights or config_mod.load(EngineConfig).random_weights,
    )  # fmt: skip
    if config.random_weights:
        print("!!! RANDOM WEIGHTS: timings are real, the images and losses are not style transfer !!!")
    engine: GatysEngine = create_engine(config)
    net = engine.network(args.model)
    content, style = Image.open(args.content).convert("RGB"), Image.open(args.style).convert("RGB")
    warm = bench_params(args, args.warmup)
    engine.run(content, [style], warm)
    run_reference(net, content, style, warm)
    params = bench_params(args, args.iterations)
    t_ours, t_ref = [], []
    # Alternating runs and keeping each one's fastest discounts interference from other processes.
    for _ in range(args.repeats):
        ours, t = timed(engine.device, lambda: engine.run(content, [style], params))
        t_ours.append(t)
        ref, t = timed(engine.device, lambda: run_reference(net, content, style, params))
        t_ref.append(t)
    report(args, engine, ours.history[-1], ref, min(t_ours), min(t_ref), ours.image.size)


def report(args, engine, ours: dict, ref: dict, t_ours: float, t_ref: float, size) -> None:
    n = args.iterations
    print(f"device {engine.device} ({torch.get_num_threads()} CPU threads), {args.model}, "
          f"{size[0]}x{size[1]}, {n} L-BFGS iterations, precision {args.precision}")  # fmt: skip
    for name, losses, t in (("stylequeue", ours, t_ours), ("reference", ref, t_ref)):
        parts = ", ".join(f"{k} {losses[k]:.4g}" for k in ("content", "style", "tv", "total"))
        print(f"{name:>10}: {1000 * t / n:8.1f} ms/iteration   final losses: {parts}")
    print(f"speed-up: {t_ref / t_ours:.2f}x (fastest of {args.repeats} alternating runs each)")


if __name__ == "__main__":
    main()

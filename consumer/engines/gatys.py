"""The Gatys et al. optimisation engine: an image optimised until its VGG statistics match.

Following jcjohnson/neural-style and neural-style-pt (content, style and TV losses; L-BFGS or
Adam; several blended styles; style scale; original colours) and
crowsonkb/style-transfer-pytorch (the coarse-to-fine schedule, progress records), with these
departures:

* the optimised variable is the RGB image in 0–255 units (neural-style optimises the Caffe-
  preprocessed image; the units are the same, so its TV weight and Adam learning rate carry
  over), and the network's own format decides the preprocessing (:mod:`.vgg`);
* colour preservation is the luminance-only transfer of Gatys et al. (2016): content and styles
  are optimised as luminance (the styles' matched to the content's mean and spread) and the
  content's chrominance is put back on every snapshot and on the result;
* the coarse-to-fine stages share the job's ``total_iterations`` (see :mod:`.schedule`).

The engine loads each network once per process and keeps it; everything that does not change
within a stage (resized images, content activations, blended style Grams) is computed once per
stage, so an iteration is one forward and one backward pass through the truncated network.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from consumer.engines import image as im
from consumer.engines import losses, schedule
from consumer.engines.base import Availability, EngineResult, Hooks, Progress
from consumer.engines.device import autocast_dtype, gpu_memory_mb, reproducible, select_device
from consumer.engines.vgg import VGGFeatures, vgg_from_config
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError, EngineUnavailable, ValidationError
from stylequeue.params.gatys import GatysParams
from stylequeue.params.images import MIN_SIDE, check_image_shape, min_longest

LBFGS_HISTORY = 100  # neural-style's -lbfgs_num_correction default
# Weights in channels_last make every activation NHWC: cuDNN's tensor-core kernels and oneDNN's
# CPU kernels both run faster on it (CPU: ~1.2x here). The image itself stays NCHW-contiguous,
# because torch's L-BFGS flattens the gradient with view(-1).
NETWORK_FORMAT = torch.channels_last


def create_engine(config: EngineConfig, *, s3: Any | None = None) -> GatysEngine:
    """The registry's factory (``consumer.engines.registry.FACTORIES['gatys']``)."""
    return GatysEngine(config, s3=s3)


class GatysEngine:
    """Runs Gatys jobs; holds the device and one loaded network per architecture."""

    mode = "gatys"

    def __init__(self, config: EngineConfig, *, s3: Any | None = None) -> None:
        self.config = config
        self._s3 = s3
        self._device: torch.device | None = None
        self._nets: dict[str, VGGFeatures] = {}
        self._lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = select_device(self.config.device)
        return self._device

    def network(self, arch: str) -> VGGFeatures:
        """The network ``arch``, loaded on first use and kept for every later job."""
        with self._lock:
            if arch not in self._nets:
                net = vgg_from_config(self.config, arch, s3=self._s3)
                self._nets[arch] = net.to(self.device, memory_format=NETWORK_FORMAT)
            return self._nets[arch]

    def availability(self) -> Availability:
        """Whether the default network (VGG19) loads here; the reason when it does not."""
        random = self.config.random_weights
        try:
            self.network("vgg19")
        except (ArtifactError, EngineUnavailable) as exc:
            return Availability(False, str(exc), random_weights=random)
        return Availability(True, random_weights=random)

    def run(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        params: GatysParams,
        hooks: Hooks | None = None,
        *,
        init_image: Image.Image | None = None,
    ) -> EngineResult:
        check_job(params, len(styles), init_image)
        stages = plan_for(params, content.size)
        for style in styles:  # refused now rather than after the first stage's work
            check_image_shape(*style.size, "style")
        job = GatysRun(
            self.network(params.model),
            params,
            hooks or Hooks(),
            amp=autocast_dtype(self.config.precision, self.device),
            random_weights=self.config.random_weights,
        )
        return job.execute(stages, content, styles, init_image)


def check_job(params: Any, n_styles: int, init_image: Image.Image | None) -> None:
    """Rules that depend on what came with the job, not only on the parameters."""
    if not isinstance(params, GatysParams):
        raise ValidationError(f"expected gatys parameters, got {type(params).__name__}", field="mode")
    params.check_styles(n_styles)
    if params.init_method == "image" and init_image is None:
        raise ValidationError("'image' needs an init image with the job", field="init_method")


def plan_for(params: GatysParams, content_size: tuple[int, int]) -> list[schedule.Stage]:
    """The job's stages; every stage keeps the content's shorter side at ``MIN_SIDE`` or more."""
    check_image_shape(*content_size, "content")
    smallest = min_longest(*content_size)
    if params.image_size < smallest:
        raise ValidationError(
            f"at {params.image_size}px the content's shorter side would be under {MIN_SIDE}px; "
            f"use at least {smallest}",
            field="image_size",
        )
    return schedule.plan(
        params.image_size,
        params.total_iterations,
        min_size=max(params.min_stage_size, smallest),
        coarse_to_fine=params.coarse_to_fine,
    )


def style_size(style: Image.Image, stage_longest: int, scale: float) -> int:
    """Longest side of a style image: ``scale`` × the stage's, but never under ``MIN_SIDE`` short.

    A style too thin to keep ``MIN_SIDE`` px within ``MAX_IMAGE_SIZE`` raises
    :class:`ValidationError` (``style``): raising its size without bound would allocate tensors
    of any size from a tiny file.
    """
    check_image_shape(*style.size, "style")
    return max(round(stage_longest * scale), min_longest(*style.size))


def make_optimizer(params: GatysParams, pixels: torch.Tensor) -> torch.optim.Optimizer:
    if params.optimizer == "adam":
        return torch.optim.Adam([pixels], lr=params.learning_rate)
    # Negative tolerances: never stop early, so a job always runs the iterations it asked for.
    return torch.optim.LBFGS(
        [pixels],
        lr=params.learning_rate,
        max_iter=1,  # one iteration per step() call: progress, snapshots and cancellation in between
        history_size=LBFGS_HISTORY,
        tolerance_grad=-1,
        tolerance_change=-1,
    )


def normalised(total: torch.Tensor, grad: torch.Tensor, scale: list[float]) -> torch.Tensor:
    """The loss and its gradient (in place) times a factor fixed at a stage's first evaluation.

    Both optimisers are blind to a constant factor on the objective except through fixed
    thresholds: torch's L-BFGS drops curvature pairs with s·y < 1e-10 and Adam adds eps = 1e-8
    to its denominator. Gradients per pixel range from ~1e-9 (a random or torchvision VGG with
    neural-style's weights) to ~1e2 (neural-style's Caffe VGG); dividing by the first
    gradient's mean magnitude puts every network in the range the thresholds were made for.
    Nothing else changes, with one intended exception: torch's first L-BFGS step is
    g·min(1, 1/|g|₁)·lr, which vanishes when |g|₁ < 1 and is now always the |g|₁-normalised one.
    """
    if not scale:
        mean = grad.abs().mean().item()
        scale.append(1.0 / mean if mean > 0 else 1.0)
    grad.mul_(scale[0])
    return total * scale[0]


class GatysRun:
    """One job on one network: its images per stage, iteration count and loss history."""

    def __init__(
        self,
        net: VGGFeatures,
        params: GatysParams,
        hooks: Hooks,
        *,
        amp: torch.dtype | None,
        random_weights: bool,
    ) -> None:
        self.net, self.params, self.hooks, self.amp = net, params, hooks, amp
        self.device = net.mean.device
        self.random_weights = random_weights
        self.seed = params.seed if params.seed is not None else secrets.randbelow(2**31)
        self.iteration = 0
        self.history: list[dict[str, float]] = []
        self.started = time.perf_counter()
        self._colour: torch.Tensor | None = None  # the content in colour, at the current stage's size

    def execute(
        self,
        stages: list[schedule.Stage],
        content: Image.Image,
        styles: list[Image.Image],
        init_image: Image.Image | None,
    ) -> EngineResult:
        self.started = time.perf_counter()
        pixels: torch.Tensor | None = None
        with reproducible(self.device, self.params.seed is not None):
            for index, stage in enumerate(stages):
                size = im.size_for_longest(content.width, content.height, stage.size)
                objective, start = self._stage_setup(size, content, styles, init_image, pixels)
                label = f"{index + 1}/{len(stages)}"
                pixels = self._optimise(objective, start, stage.iterations, label, size)
        assert pixels is not None  # plan() always returns a stage
        return EngineResult(self.image(pixels), self.history, self._meta(stages, content))

    # -- per stage -------------------------------------------------------------------------------

    def _stage_setup(
        self,
        size: tuple[int, int],
        content: Image.Image,
        styles: list[Image.Image],
        init_image: Image.Image | None,
        previous: torch.Tensor | None,
    ) -> tuple[losses.Objective, torch.Tensor]:
        """The stage's objective (targets computed once here) and its starting pixels."""
        p = self.params
        self._colour = self._tensor(content.resize(size, Image.Resampling.LANCZOS))
        content_t = im.luminance(self._colour).contiguous() if p.preserve_colors else self._colour
        style_ts = [
            self._grey(self._tensor(im.resize_longest(s, style_size(s, max(size), p.style_scale))))
            for s in styles
        ]
        blend = p.style_blend_weights or (1.0,) * len(styles)
        weights = self._weights()
        objective = losses.Objective(
            self.net,
            weights,
            losses.content_targets(self.net, content_t, weights.content_layers, p.pooling),
            losses.style_targets(self.net, style_ts, blend, tuple(weights.style_layers), p.pooling),
            pooling=p.pooling,
            autocast_dtype=self.amp,
        )
        if previous is not None:
            # Carry the image up to the next size rather than starting over.
            start = F.interpolate(previous, size=size[::-1], mode="bicubic", align_corners=False)
            return objective, start.clamp_(0, 255)
        return objective, self._initial(size, content_t, styles, init_image)

    def _weights(self) -> losses.Weights:
        p = self.params
        layer_weights = p.style_layer_weights or (1.0,) * len(p.style_layers)
        # Content loss grows with the activations squared, style loss (Grams) with their fourth
        # power: rescaling both puts every weight format on the scale the defaults were tuned at.
        gain = self.net.activation_gain
        return losses.Weights(
            content=p.content_weight * gain**2,
            style=p.style_weight * gain**4,
            tv=p.tv_weight,
            content_layers=p.content_layers,
            style_layers=dict(zip(p.style_layers, layer_weights, strict=True)),
        )

    def _initial(
        self,
        size: tuple[int, int],
        content: torch.Tensor,
        styles: list[Image.Image],
        init_image: Image.Image | None,
    ) -> torch.Tensor:
        """The first stage's starting image in 0–255 units."""
        method = self.params.init_method
        if method == "content":
            rgb = content
        elif method == "random":
            # Drawn on the CPU so a seed gives the same start on every device.
            generator = torch.Generator().manual_seed(self.seed)
            rgb = self._grey(torch.rand((1, 3, size[1], size[0]), generator=generator).to(self.device))
        else:
            source = styles[0] if method == "style" else init_image
            assert source is not None  # check_job() refused "image" without one
            rgb = self._grey(self._tensor(source.resize(size, Image.Resampling.LANCZOS)))
        return rgb * 255.0

    def _tensor(self, image: Image.Image) -> torch.Tensor:
        return im.to_tensor(image, self.device).contiguous()

    def _grey(self, rgb: torch.Tensor) -> torch.Tensor:
        """With colour preservation, an image other than the content is optimised as luminance
        matched to the content's; otherwise it is unchanged."""
        if not self.params.preserve_colors:
            return rgb
        assert self._colour is not None
        return im.matched_luminance(rgb, self._colour)

    # -- the hot loop ----------------------------------------------------------------------------

    def _optimise(
        self,
        objective: losses.Objective,
        start: torch.Tensor,
        iterations: int,
        label: str,
        size: tuple[int, int],
    ) -> torch.Tensor:
        pixels = start.detach().contiguous().requires_grad_(True)
        optimizer = make_optimizer(self.params, pixels)
        last: list[torch.Tensor] = []
        scale: list[float] = []

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            total, parts = objective(pixels / 255.0, pixels)
            total.backward()
            last[:] = [parts]
            assert pixels.grad is not None
            return normalised(total, pixels.grad, scale)

        for _ in range(iterations):
            self.hooks.check_cancel()
            optimizer.step(closure)
            if self.params.optimizer == "adam":
                # Adam's fixed-size steps wander outside the displayable range; L-BFGS is left
                # alone because clamping between its steps would corrupt its curvature history.
                with torch.no_grad():
                    pixels.clamp_(0, 255)
            self._after_iteration(last[0], pixels, label, size)
        return pixels.detach()

    def _after_iteration(
        self, parts: torch.Tensor, pixels: torch.Tensor, label: str, size: tuple[int, int]
    ) -> None:
        self.iteration += 1
        content, style, tv = parts.tolist()  # one device sync for all three
        loss = {"content": content, "style": style, "tv": tv, "total": content + style + tv}
        self.history.append({"iteration": self.iteration, **loss})
        total = self.params.total_iterations
        self.hooks.progress(
            Progress(
                iteration=self.iteration,
                total=total,
                elapsed_s=time.perf_counter() - self.started,
                losses=loss,
                stage=label,
                size=size,
                gpu_memory_mb=gpu_memory_mb(self.device),
            )
        )
        if self.iteration % self.params.snapshot_every == 0 or self.iteration == total:
            self.hooks.snapshot(self.iteration, self.image(pixels))

    # -- output ----------------------------------------------------------------------------------

    def image(self, pixels: torch.Tensor) -> Image.Image:
        """``pixels`` as a PIL image, with the content's colours put back when preserving them."""
        rgb = (pixels.detach() / 255.0).clamp(0, 1)
        if self.params.preserve_colors:
            assert self._colour is not None
            rgb = im.preserve_colors(self._colour, rgb)
        return im.to_image(rgb)

    def _meta(self, stages: list[schedule.Stage], content: Image.Image) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        return {
            "random_weights": self.random_weights,
            "device": str(self.device),
            "precision": "fp32" if self.amp is None else str(self.amp).removeprefix("torch."),
            "model": self.net.arch,
            "weights_format": self.net.fmt,
            "weights": self.net.source.path,
            "seed": self.seed,
            "stages": [
                {"size": list(im.size_for_longest(*content.size, s.size)), "iterations": s.iterations}
                for s in stages
            ],
            "iterations": self.iteration,
            "elapsed_s": round(elapsed, 3),
            "ms_per_iteration": round(1000 * elapsed / max(1, self.iteration), 2),
        }

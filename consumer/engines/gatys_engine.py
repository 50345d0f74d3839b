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

Its parameters and declaration (``KIND``) are :mod:`consumer.engines.gatys`, which imports without
torch. The engine, its stage plan and the run stay one module because they share one job's state
and read in the order they execute.
"""

from __future__ import annotations

import itertools
import math
import secrets
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from consumer.engines import image as im
from consumer.engines import losses, schedule
from consumer.engines.base import Availability, Checkpoint, EngineResult, Hooks, Progress
from consumer.engines.device import autocast_dtype, gpu_memory_mb, precision_name, reproducible, select_device
from consumer.engines.gatys import GatysParams
from consumer.engines.hot_loop import Evaluation, GraphedEvaluation, LossFeed
from consumer.engines.lbfgs import FixedStepLBFGS
from consumer.engines.vgg import VGGFeatures, vgg_from_config
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError, ConfigError, EngineUnavailable, ValidationError
from stylequeue.params.images import check_image_shape, check_output_size, min_longest

LBFGS_HISTORY = 100  # neural-style's -lbfgs_num_correction default
# Weights in channels_last make every activation NHWC: cuDNN's tensor-core kernels and oneDNN's
# CPU kernels both run faster on it (CPU, VGG19 at 384x288 forward+backward: fp32 ~1.2x, bf16
# ~1.3x here). The image itself stays NCHW-contiguous: L-BFGS works on its flat view.
NETWORK_FORMAT = torch.channels_last


def create_engine(config: EngineConfig, *, s3: Any | None = None, redis: Any | None = None) -> GatysEngine:
    """The factory ``consumer.engines.gatys.KIND`` names; ``redis`` is unused: Gatys shares nothing."""
    return GatysEngine(config, s3=s3)


class GatysEngine:
    """Runs Gatys jobs; holds the device and one loaded network per architecture."""

    mode = "gatys"

    def __init__(self, config: EngineConfig, *, s3: Any | None = None) -> None:
        self.config = config
        self._s3 = s3
        self._nets: dict[str, VGGFeatures] = {}
        self._lock = threading.Lock()

    @cached_property
    def device(self) -> torch.device:
        return select_device(self.config.device)

    @cached_property
    def amp(self) -> torch.dtype | None:
        """The network's autocast dtype (None: fp32): ``STYLEQUEUE_PRECISION`` on this device."""
        return autocast_dtype(self.config.precision, self.device)

    @property
    def precision(self) -> str:
        return precision_name(self.amp)

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
            _ = self.amp  # an impossible precision (fp16 on a CPU) makes it unavailable too
        except (ArtifactError, ConfigError, EngineUnavailable) as exc:
            return Availability(False, str(exc), random_weights=random)
        weights = "RANDOM weights" if random else f"{self.config.vgg_format} weights"
        return Availability(True, random_weights=random, model=f"VGG19 ({weights})")

    def run(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        params: GatysParams,
        hooks: Hooks | None = None,
        *,
        init_image: Image.Image | None = None,
        resume: Checkpoint | None = None,
    ) -> EngineResult:
        """Run a job; with ``resume``, from that checkpoint on rather than from iteration 0."""
        if not isinstance(params, GatysParams):
            raise ValidationError(f"expected gatys parameters, got {type(params).__name__}", field="mode")
        params.check_styles(len(styles))
        if params.init_method == "image" and init_image is None:
            raise ValidationError("'image' needs an init image with the job", field="init_method")
        stages = plan_for(params, content.size)
        for style in styles:  # refused now rather than after the first stage's work
            check_image_shape(*style.size, "style")
        job = GatysRun(
            self.network(params.model),
            params,
            hooks or Hooks(),
            content,
            styles,
            init_image=init_image,
            amp=self.amp,
            graphs=self.config.cuda_graphs and self.device.type == "cuda",
        )
        return job.execute(stages, resume)


def plan_for(params: GatysParams, content_size: tuple[int, int]) -> list[schedule.Stage]:
    """The job's stages; every stage keeps the content's shorter side at ``MIN_SIDE`` or more."""
    check_image_shape(*content_size, "content")
    smallest = check_output_size(*content_size, params.image_size)  # the API's own check, the same code
    return schedule.plan(
        params.image_size,
        params.total_iterations,
        min_size=max(params.min_stage_size, smallest),
        coarse_to_fine=params.coarse_to_fine,
    )


def iterations_left(stages: list[schedule.Stage], done: int) -> list[int]:
    """Each stage's iterations still to run once ``done`` have: none for the stages before the one
    containing ``done`` (a resumed run skips them), the rest of that one, all of the later ones'."""
    ends = itertools.accumulate(stage.iterations for stage in stages)
    return [min(stage.iterations, max(0, end - done)) for stage, end in zip(stages, ends, strict=True)]


def style_size(style: Image.Image, stage_longest: int, scale: float) -> int:
    """``scale`` × the stage's longest side, but never under ``MIN_SIDE`` short. A style too thin to
    keep ``MIN_SIDE`` within ``MAX_IMAGE_SIZE`` is refused: unbounded, a tiny file would allocate any size."""
    check_image_shape(*style.size, "style")
    return max(round(stage_longest * scale), min_longest(*style.size))


def make_optimizer(params: GatysParams, pixels: torch.Tensor) -> torch.optim.Optimizer | FixedStepLBFGS:
    """Adam, or the seeds' L-BFGS (fixed step, no line search) in its sync-free form: it never stops
    early, so a job runs the iterations it asked for, and progress, snapshots and cancellation
    happen between its ``step()`` calls, one iteration each."""
    if params.optimizer == "adam":
        # capturable: on CUDA the step count stays on the device, so a step reads nothing back.
        return torch.optim.Adam([pixels], lr=params.learning_rate, capturable=pixels.is_cuda)
    return FixedStepLBFGS(pixels, lr=params.learning_rate, history_size=LBFGS_HISTORY)


@dataclass(frozen=True)
class Tick:
    """What the host knows about an iteration when it runs; its losses arrive later."""

    iteration: int
    label: str
    size: tuple[int, int]


class GatysRun:
    """One job on one network: its inputs, its images per stage, iteration count and loss history."""

    def __init__(
        self,
        net: VGGFeatures,
        params: GatysParams,
        hooks: Hooks,
        content: Image.Image,
        styles: list[Image.Image],
        *,
        init_image: Image.Image | None = None,
        amp: torch.dtype | None,
        graphs: bool = False,
    ) -> None:
        self.net, self.params, self.hooks, self.amp = net, params, hooks, amp
        self.content, self.styles, self.init_image = content, styles, init_image
        self.device = net.mean.device
        # Each stage's evaluation captured as a CUDA graph (emulated off CUDA, for tests).
        self.graphed = graphs
        self.seed = params.seed if params.seed is not None else secrets.randbelow(2**31)
        self.iteration = 0
        self.resumed_at = 0  # the checkpoint's iteration this run started from (0: the beginning)
        self.history: list[dict[str, float]] = []
        self.started = time.perf_counter()
        self._colour: torch.Tensor | None = None  # the content in colour, at the current stage's size

    def execute(self, stages: list[schedule.Stage], resume: Checkpoint | None = None) -> EngineResult:
        """A resumed run skips what its checkpoint had done: the stage containing it starts from its
        image (at that stage's size, so carrying it "up" is the identity) for the iterations left; a
        checkpoint at a stage's last iteration is carried up into the next stage as a run would be."""
        self.started = time.perf_counter()
        pixels = self._resumed(resume)
        left = iterations_left(stages, self.iteration)
        with reproducible(self.device, self.params.seed is not None):
            for index, (stage, todo) in enumerate(zip(stages, left, strict=True)):
                if todo == 0 and index < len(stages) - 1:
                    continue  # done before the checkpoint
                size = im.size_for_longest(*self.content.size, stage.size)
                objective, start = self._stage_setup(size, pixels)
                label = f"{index + 1}/{len(stages)}"
                pixels = self._optimise(objective, start, todo, label, size)
        assert pixels is not None  # plan() always returns a stage
        return EngineResult(self.image(pixels), self.history, self._meta(stages))

    def _resumed(self, resume: Checkpoint | None) -> torch.Tensor | None:
        """The checkpoint's image in 0–255 units (None: from the beginning). A resumed run cannot be
        bit-identical to an uninterrupted one, seed or not: L-BFGS starts its curvature memory afresh
        (keeping it costs 2 × ``LBFGS_HISTORY`` image-sized vectors), as does Adam its moments, and
        the checkpoint's image is 8 bits a channel."""
        if resume is None:
            return None
        self.iteration = self.resumed_at = min(resume.iteration, self.params.total_iterations)
        return self._tensor(resume.image) * 255.0

    # -- per stage -------------------------------------------------------------------------------

    def _stage_setup(
        self, size: tuple[int, int], previous: torch.Tensor | None
    ) -> tuple[losses.Objective, torch.Tensor]:
        """The stage's objective (targets computed once here) and its starting pixels."""
        p = self.params
        self._colour = self._tensor(self.content.resize(size, Image.Resampling.LANCZOS))
        content_t = im.luminance(self._colour).contiguous() if p.preserve_colors else self._colour
        style_ts = [
            self._grey(self._tensor(im.resize_longest(s, style_size(s, max(size), p.style_scale))))
            for s in self.styles
        ]
        blend = p.style_blend_weights or (1.0,) * len(self.styles)
        weights = self._weights()
        objective = losses.Objective(
            self.net,
            weights,
            losses.content_targets(self.net, content_t, weights.content_layers, p.pooling, self.amp),
            losses.style_targets(self.net, style_ts, blend, tuple(weights.style_layers), p.pooling, self.amp),
            pooling=p.pooling,
            autocast_dtype=self.amp,
            autocast_cache=not self.graphed,  # a captured graph must not hold autocast's cache
        )
        if previous is not None:
            # Carry the image up to the next size rather than starting over.
            start = F.interpolate(previous, size=size[::-1], mode="bicubic", align_corners=False)
            return objective, start.clamp_(0, 255)
        return objective, self._initial(size, content_t)

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

    def _initial(self, size: tuple[int, int], content: torch.Tensor) -> torch.Tensor:
        """The first stage's starting image in 0–255 units."""
        method = self.params.init_method
        if method == "content":
            rgb = content
        elif method == "random":
            # Drawn on the CPU so a seed gives the same start on every device.
            generator = torch.Generator().manual_seed(self.seed)
            rgb = self._grey(torch.rand((1, 3, size[1], size[0]), generator=generator).to(self.device))
        else:
            source = self.styles[0] if method == "style" else self.init_image
            assert source is not None  # GatysEngine.run() refused "image" without one
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
        """One stage's iterations, never waiting for the device between them: cancellation is a host
        flag, losses reach the host through a :class:`LossFeed` and are reported once arrived. Only
        a snapshot waits (it needs the image), and it is rare."""
        if iterations == 0:  # resumed at the very end: the checkpoint is the result
            return start.detach()
        p = self.params
        pixels = start.detach().contiguous().requires_grad_(True)
        evaluation = Evaluation(lambda px: objective(px / 255.0, px), pixels)
        closure = GraphedEvaluation(evaluation) if self.graphed else evaluation
        optimizer = make_optimizer(p, pixels)
        feed = LossFeed(self.device, iterations)
        for _ in range(iterations):
            self.hooks.check_cancel()
            optimizer.step(closure)
            if p.optimizer == "adam":
                # Adam's fixed-size steps wander outside the displayable range; L-BFGS is left
                # alone because clamping between its steps would corrupt its curvature history.
                with torch.no_grad():
                    pixels.clamp_(0, 255)
            self.iteration += 1
            assert evaluation.parts is not None
            feed.push(evaluation.parts, Tick(self.iteration, label, size))
            self._report(feed.ready())
            if self.iteration % p.snapshot_every == 0 or self.iteration == p.total_iterations:
                self._report(feed.drain())  # the record's progress is never behind a snapshot
                self.hooks.snapshot(self.iteration, self.image(pixels), self._checkpoint(pixels, label))
        self._report(feed.drain())
        return pixels.detach()

    def _checkpoint(self, pixels: torch.Tensor, label: str) -> Checkpoint | None:
        """What a retried attempt resumes from: the optimised image itself, before colours are
        put back (the snapshot has them), clamped to 8 bits as a stage's carried-up image is."""
        if not self.hooks.wants_checkpoints:
            return None
        return Checkpoint(self.iteration, label, im.to_image(pixels.detach() / 255.0))

    def _report(self, arrived) -> None:
        """History and a progress record for each iteration whose losses have arrived."""
        for (content, style, tv), tick in arrived:
            loss = {"content": content, "style": style, "tv": tv, "total": content + style + tv}
            if not math.isfinite(loss["total"]):
                # Overflowing weights make every later step NaN and the image black: that is a
                # failed job with a reason, never a "succeeded" one (and never NaN in /losses).
                raise ValidationError(
                    f"losses became non-finite at iteration {tick.iteration}; lower content_weight/style_weight",
                    field="style_weight",
                )
            self.history.append({"iteration": tick.iteration, **loss})
            self.hooks.progress(
                Progress(
                    iteration=tick.iteration,
                    total=self.params.total_iterations,
                    elapsed_s=time.perf_counter() - self.started,
                    losses=loss,
                    stage=tick.label,
                    size=tick.size,
                    gpu_memory_mb=gpu_memory_mb(self.device),
                )
            )

    # -- output ----------------------------------------------------------------------------------

    def image(self, pixels: torch.Tensor) -> Image.Image:
        """``pixels`` as a PIL image, with the content's colours put back when preserving them."""
        rgb = (pixels.detach() / 255.0).clamp(0, 1)
        if self.params.preserve_colors:
            assert self._colour is not None
            rgb = im.preserve_colors(self._colour, rgb)
        return im.to_image(rgb)

    def _meta(self, stages: list[schedule.Stage]) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        return {
            "random_weights": self.net.source.random,
            "device": str(self.device),
            "precision": precision_name(self.amp),
            "cuda_graphs": self.graphed and self.device.type == "cuda",
            "model": self.net.arch,
            "weights_format": self.net.fmt,
            "weights": self.net.source.path,
            "seed": self.seed,
            "stages": [
                {"size": list(im.size_for_longest(*self.content.size, s.size)), "iterations": s.iterations}
                for s in stages
            ],
            "iterations": self.iteration,
            "elapsed_s": round(elapsed, 3),
            "ms_per_iteration": round(1000 * elapsed / max(1, self.iteration - self.resumed_at), 2),
        }

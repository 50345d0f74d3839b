"""The feed-forward dual-style blend engine (``mode = "blend"``).

One content image, one or two style images: the content's relu4_1 features are given each
style's channel statistics (AdaIN), mixed ``w·AdaIN(c, s1) + (1−w)·AdaIN(c, s2)``, traded off
against the content features by ``alpha`` and decoded — one encoder and one decoder pass, no
optimisation. Style statistics are cached (:mod:`.style_cache`), and :meth:`BlendEngine.run_batch`
decodes several jobs of the same output size in one forward pass.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from consumer.engines import device as devices
from consumer.engines.adain import blend_features, mean_std
from consumer.engines.base import Availability, EngineResult, Hooks, Progress
from consumer.engines.blend_model import BlendModel, load_blend_model
from consumer.engines.image import preserve_colors, resize_longest, size_for_longest, to_image, to_tensor
from consumer.engines.style_cache import Stats, StyleCache, style_key
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError, ConfigError, EngineUnavailable, ValidationError
from stylequeue.params import Params
from stylequeue.params.blend import BlendParams
from stylequeue.params.images import check_image_shape, min_longest

log = logging.getLogger(__name__)
STAGES = ("prepare", "encode", "decode")  # reported in order; the snapshot follows "decode"
# The fewest pixels on either side the encoder takes: relu4_1 lies behind three ceil-mode 2×2
# pools and its reflection pad needs 2 px (padding < size), so 9 → 5 → 3 → 2. Fewer fails inside
# torch with a RuntimeError that would be retried as if transient.
MIN_SIDE = 9


def style_longest(size: tuple[int, int], image_size: int) -> int:
    """Longest side a style of ``size`` is encoded at: the job's ``image_size``, raised just enough
    to keep ``MIN_SIDE`` px on the style's shorter side (at most ``MAX_IMAGE_SIZE`` for any style
    :func:`check_image_shape` accepts)."""
    return max(image_size, min_longest(*size, MIN_SIDE))


@dataclass
class BlendItem:
    """One job handed to :meth:`BlendEngine.run_batch`."""

    content: Image.Image
    styles: list[Image.Image]
    params: Params
    hooks: Hooks | None = None


@dataclass
class _Job:
    """A validated item with its content tensor on the device and its style statistics."""

    index: int
    item: BlendItem
    params: BlendParams
    hooks: Hooks
    content: torch.Tensor  # 1×3×H×W in [0, 1]
    weights: list[float]
    started: float
    stats: list[Stats] = field(default_factory=list)  # looked up once, kept if the job is retried
    cache_hits: int = 0


class BlendEngine:
    """Built once per process with its model loaded; unavailable (with the reason) when it could not be."""

    mode = "blend"

    def __init__(
        self,
        config: EngineConfig,
        model: BlendModel | None,
        device: torch.device | None,
        *,
        reason: str = "",
    ) -> None:
        self.config = config
        self.model = model
        self.device = device
        self.reason = reason
        self.cache = StyleCache(config.blend_cache_size)
        self.max_batch = config.blend_max_batch
        self._dtype = devices.autocast_dtype(config.precision, device) if device is not None else None
        self._lock = threading.Lock()  # one forward pass at a time per engine

    # --- the engine protocol ---------------------------------------------------------------

    def availability(self) -> Availability:
        if self.model is None:
            return Availability(False, self.reason, random_weights=self.config.random_weights)
        return Availability(True, self.model.source.location, random_weights=self.model.source.random)

    def run(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        params: Params,
        hooks: Hooks | None = None,
        *,
        init_image: Image.Image | None = None,
    ) -> EngineResult:
        """Blend one job; raises what :meth:`run_batch` would have returned for it."""
        if init_image is not None:
            raise ValidationError("the blend engine does not take an initial image", field="init_image")
        result = self.run_batch([BlendItem(content, list(styles), params, hooks)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def run_batch(self, items: Sequence[BlendItem]) -> list[EngineResult | Exception]:
        """One result (or the exception that job raised) per item, in order.

        Jobs are grouped by output size and each group runs in chunks of ``max_batch`` through a
        single encoder and decoder pass. A failing job never fails the others: bad input fails
        at preparation, and a chunk whose forward pass fails is retried job by job.
        """
        if self.model is None:
            return [EngineUnavailable(self.reason) for _ in items]
        results: list[EngineResult | Exception | None] = [None] * len(items)
        jobs = []
        for index, item in enumerate(items):
            try:
                jobs.append(self._prepare(index, item))
            except Exception as exc:  # recorded on that job only
                results[index] = exc
        with self._lock:
            for chunk in self._chunks(jobs):
                self._run_chunk(chunk, results)
        return results  # type: ignore[return-value]  # every slot is filled

    # --- preparation -------------------------------------------------------------------------

    def _prepare(self, index: int, item: BlendItem) -> _Job:
        started = time.perf_counter()
        params = self._check(item)
        hooks = item.hooks or Hooks()
        hooks.check_cancel()
        image = resize_longest(item.content.convert("RGB"), params.image_size)
        content = self._to_device(image)
        weights = [params.ratio, 1.0 - params.ratio] if len(item.styles) == 2 else [1.0]
        job = _Job(index, item, params, hooks, content, weights, started)
        self._report(job, 1)
        return job

    def _check(self, item: BlendItem) -> BlendParams:
        params = item.params
        if not isinstance(params, BlendParams):
            raise ValidationError(f"expected blend parameters, got {type(params).__name__}", field="mode")
        params.check_styles(len(item.styles))
        _check_images(item, params.image_size)
        if not self.model.features and params.alpha != 1.0:
            raise ValidationError(
                "this model is an opaque TorchScript module without encode/decode; only alpha 1.0 is possible",
                field="alpha",
            )
        return params

    def _to_device(self, image: Image.Image) -> torch.Tensor:
        tensor = to_tensor(image, self.device)
        return tensor.contiguous(memory_format=devices.memory_format(self.device))

    def _chunks(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Jobs grouped by content tensor size, split into chunks of at most ``max_batch``."""
        ordered = sorted(jobs, key=lambda j: tuple(j.content.shape[-2:]))
        chunks = []
        for _, group in itertools.groupby(ordered, key=lambda j: tuple(j.content.shape[-2:])):
            group = list(group)
            chunks += [group[i : i + self.max_batch] for i in range(0, len(group), self.max_batch)]
        return chunks

    # --- forward passes ------------------------------------------------------------------------

    def _run_chunk(self, chunk: list[_Job], results: list[Any]) -> None:
        try:
            outputs = self._forward(chunk)
            for job, out in zip(chunk, outputs, strict=True):
                results[job.index] = self._finish(job, out, len(chunk))
        except Exception as exc:
            if len(chunk) == 1:
                results[chunk[0].index] = exc
                return
            log.warning("blend batch of %d failed (%s); retrying its jobs one by one", len(chunk), exc)
            for job in chunk:
                self._run_chunk([job], results)

    def _forward(self, chunk: list[_Job]) -> list[torch.Tensor]:
        with torch.inference_mode(), devices.autocast(self.device, self._dtype):
            if not self.model.features:
                return [self._forward_seed(job) for job in chunk]
            for job in chunk:
                self._look_up_styles(job)
            feats = self.model.encode(torch.cat([job.content for job in chunk]))
            targets = torch.cat(
                [
                    blend_features(feats[i : i + 1], job.stats, job.weights, job.params.alpha)
                    for i, job in enumerate(chunk)
                ]
            )
            for job in chunk:
                self._report(job, 2)
            decoded = self.model.decode(targets)
        height, width = chunk[0].content.shape[-2:]
        # ceil-mode pools make the decoder's output up to 7 px larger than the input: crop it.
        return list(decoded[:, :, :height, :width].float().clamp(0, 1).split(1))

    def _look_up_styles(self, job: _Job) -> None:
        """Fill ``job.stats`` and ``job.cache_hits`` once: a job retried alone after its batch
        failed keeps its first lookup, so its hits and misses count each style exactly once."""
        if job.stats:
            return
        found = [self._style_stats(style, job.params.image_size) for style in job.item.styles]
        job.stats = [stats for stats, _ in found]
        job.cache_hits = sum(hit for _, hit in found)

    def _style_stats(self, style: Image.Image, image_size: int) -> tuple[Stats, bool]:
        size = style_longest(style.size, image_size)
        key = style_key(style, size)

        def encode() -> Stats:
            tensor = self._to_device(resize_longest(style.convert("RGB"), size))
            return mean_std(self.model.encode(tensor))

        return self.cache.get_or_compute(key, encode)

    def _forward_seed(self, job: _Job) -> torch.Tensor:
        """An opaque seed-format module: styles go in as images, the mix happens inside it."""
        size = job.params.image_size
        styles = [
            self._to_device(resize_longest(s.convert("RGB"), style_longest(s.size, size)))
            for s in job.item.styles
        ]
        style2 = styles[1] if len(styles) == 2 else styles[0]
        weights = job.weights + [0.0] * (2 - len(job.weights))
        w = torch.tensor(weights, dtype=torch.float32, device=self.device)
        self._report(job, 2)
        out = self.model.forward_seed(job.content, styles[0], style2, w)
        return out[:, :, : job.content.shape[2], : job.content.shape[3]].float().clamp(0, 1)

    # --- results -------------------------------------------------------------------------------

    def _finish(self, job: _Job, out: torch.Tensor, batch_size: int) -> EngineResult:
        if job.params.preserve_colors:
            out = preserve_colors(job.content.float(), out)
        image = to_image(out)
        self._report(job, 3)
        job.hooks.snapshot(1, image)
        elapsed = time.perf_counter() - job.started
        return EngineResult(
            image, history=[{"elapsed_s": elapsed}], meta=self._meta(job, batch_size, elapsed)
        )

    def _meta(self, job: _Job, batch_size: int, elapsed: float) -> dict[str, Any]:
        source = self.model.source
        return {
            "mode": self.mode,
            "random_weights": source.random,
            "model": source.kind,
            "model_location": source.location,
            "device": str(self.device),
            "precision": "fp32" if self._dtype is None else self.config.precision,
            "batch_size": batch_size,
            "style_cache_hits": job.cache_hits,
            "style_cache_misses": len(job.stats) - job.cache_hits,
            "size": list(job.content.shape[-1:-3:-1]),  # [width, height]
            "elapsed_s": elapsed,
            "params": job.params.to_dict(),
        }

    def _report(self, job: _Job, stage: int) -> None:
        job.hooks.progress(
            Progress(
                iteration=stage,
                total=len(STAGES),
                elapsed_s=time.perf_counter() - job.started,
                stage=STAGES[stage - 1],
                size=(job.content.shape[-1], job.content.shape[-2]),
                gpu_memory_mb=devices.gpu_memory_mb(self.device),
            )
        )


def _check_images(item: BlendItem, image_size: int) -> None:
    """Refuse, as invalid input, images the encoder could not take at this job's size."""
    check_image_shape(*item.content.size, "content")
    for style in item.styles:
        check_image_shape(*style.size, "style")
    if min(size_for_longest(*item.content.size, image_size)) < MIN_SIDE:
        raise ValidationError(
            f"at {image_size}px the content's shorter side would be under {MIN_SIDE}px; "
            f"use at least {min_longest(*item.content.size, MIN_SIDE)}",
            field="image_size",
        )


def create_engine(config: EngineConfig, *, s3: Any | None = None) -> BlendEngine:
    """Load the configured model once; on failure the engine is built unavailable, with the reason."""
    _check_limits(config)
    try:
        device = devices.select_device(config.device)
        model = load_blend_model(config, s3=s3).to(device, devices.memory_format(device))
    except (ArtifactError, ConfigError, EngineUnavailable) as exc:
        log.error("blend engine unavailable: %s", exc)
        return BlendEngine(config, None, None, reason=str(exc))
    return BlendEngine(config, model, device)


def _check_limits(config: EngineConfig) -> None:
    if config.blend_max_batch < 1:
        raise ConfigError(
            f"must be at least 1, got {config.blend_max_batch}", field="STYLEQUEUE_BLEND_MAX_BATCH"
        )
    if config.blend_cache_size < 0:
        raise ConfigError(
            f"must be at least 0, got {config.blend_cache_size}", field="STYLEQUEUE_BLEND_CACHE_SIZE"
        )


def with_model(config: EngineConfig, spec: str) -> EngineConfig:
    """``config`` with another model location (the CLI's ``--model``)."""
    return dataclasses.replace(config, blend_model=spec, random_weights=False)

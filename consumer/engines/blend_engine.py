"""The feed-forward dual-style blend engine (``mode = "blend"``).

One content image, one or two style images, one forward pass, no optimisation. Each style is
reduced to a code and the codes are mixed by ``ratio``; ``alpha`` trades the mix off against the
content. With Magenta's pretrained network (the default, :mod:`.magenta`) a code is a 100-d style
vector, the mix ``w·v1 + (1−w)·v2`` and alpha an interpolation with the content's own vector; with
an AdaIN model a code is relu4_1 channel statistics and the mix ``w·AdaIN(c, s1) + (1−w)·AdaIN(c, s2)``.
Codes are cached in process and in Redis (:mod:`.style_cache`), and :meth:`BlendEngine.run_batch`
renders several jobs of the same output size in one forward pass. Its parameters and declaration
(``KIND``) are :mod:`consumer.engines.blend`, which imports without torch.
"""

from __future__ import annotations

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
from consumer.engines.base import Availability, BatchItem, EngineResult, Hooks, Progress
from consumer.engines.blend import BlendParams
from consumer.engines.blend_model import BlendModel, MagentaModel, load_blend_model, style_longest
from consumer.engines.image import preserve_colors, resize_longest, to_image, to_tensor
from consumer.engines.style_cache import SharedCodes, Stats, StyleCache, style_key
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError, ConfigError, EngineUnavailable, ValidationError
from stylequeue.params import Params
from stylequeue.params.images import check_image_shape

log = logging.getLogger(__name__)
STAGES = ("prepare", "encode", "decode")  # reported in order; the snapshot follows "decode"


@dataclass
class _Job:
    """A validated item with its content tensor on the device and its style statistics."""

    index: int
    item: BatchItem
    params: BlendParams
    hooks: Hooks
    content: torch.Tensor  # 1×3×H×W in [0, 1]
    weights: list[float]
    started: float
    codes: list[Stats] = field(default_factory=list)  # looked up once, kept if the job is retried
    cache_hits: int = 0
    shared_hits: int = 0


class BlendEngine:
    """Built once per process with its model loaded; unavailable (with the reason) when it could not be."""

    mode = "blend"

    def __init__(
        self,
        config: EngineConfig,
        model: BlendModel | MagentaModel | None,
        device: torch.device | None,
        *,
        reason: str = "",
        shared: SharedCodes | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.device = device
        self.reason = reason
        self.cache = StyleCache(config.blend_cache_size, shared)
        self.max_batch = config.blend_max_batch
        self._dtype = devices.autocast_dtype(config.precision, device) if device is not None else None
        self._lock = threading.Lock()  # one forward pass at a time per engine

    @property
    def precision(self) -> str:
        """What the network runs in (``auto`` resolved): job records and benchmarks say so."""
        return devices.precision_name(self._dtype)

    # --- the engine protocol ---------------------------------------------------------------

    def availability(self) -> Availability:
        if self.model is None:
            return Availability(False, self.reason, random_weights=self.config.random_weights)
        source = self.model.source
        return Availability(True, source.location, random_weights=source.random, model=source.title)

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
        result = self.run_batch([BatchItem(content, list(styles), params, hooks)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def run_batch(self, items: Sequence[BatchItem]) -> list[EngineResult | Exception]:
        """One result (or the exception that job raised) per item, in order. Jobs of one output size
        run in chunks of ``max_batch`` through one encoder and decoder pass. A failing job never fails
        the others: bad input fails at preparation, a chunk whose pass fails is retried job by job."""
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

    def _prepare(self, index: int, item: BatchItem) -> _Job:
        started = time.perf_counter()
        params = self._check(item)
        hooks = item.hooks or Hooks()
        hooks.check_cancel()
        content = self._to_device(resize_longest(item.content.convert("RGB"), params.image_size))
        weights = [params.ratio, 1.0 - params.ratio] if len(item.styles) == 2 else [1.0]
        job = _Job(index, item, params, hooks, content, weights, started)
        self._report(job, 1)
        return job

    def _check(self, item: BatchItem) -> BlendParams:
        params = item.params
        if not isinstance(params, BlendParams):
            raise ValidationError(f"expected blend parameters, got {type(params).__name__}", field="mode")
        params.check_styles(len(item.styles))
        # Images the encoder could not take at this job's size are invalid input: the same rule
        # the API applies to the uploads (BlendParams.check_images).
        check_image_shape(*item.content.size, "content")
        for style in item.styles:
            check_image_shape(*style.size, "style")
        params.check_images(item.content.size, [style.size for style in item.styles])
        if not self.model.features and params.alpha != 1.0:  # an opaque seed-format module
            raise ValidationError(
                "this model is an opaque TorchScript module without encode/decode; only alpha 1.0 is possible",
                field="alpha",
            )
        return params

    def _to_device(self, image: Image.Image) -> torch.Tensor:
        return to_tensor(image, self.device).contiguous(memory_format=devices.memory_format(self.device))

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
                self._report(job, 2)
            out = self.model.render(
                torch.cat([job.content for job in chunk]),
                [job.codes for job in chunk],
                [job.weights for job in chunk],
                [job.params.alpha for job in chunk],
            )
        return list(out.float().clamp(0, 1).split(1))

    def _look_up_styles(self, job: _Job) -> None:
        """Fill ``job.codes`` and the hit counts once: a job retried alone after its batch
        failed keeps its first lookup, so its hits and misses count each style exactly once."""
        if job.codes:
            return
        shared_before = self.cache.shared_hits
        found = [self._style_code(style, job.params.image_size) for style in job.item.styles]
        job.codes = [code for code, _ in found]
        job.cache_hits = sum(hit for _, hit in found)
        job.shared_hits = self.cache.shared_hits - shared_before  # one forward pass at a time: exact

    def _style_code(self, style: Image.Image, image_size: int) -> tuple[Stats, bool]:
        size = self.model.style_size(style.size, image_size)
        key = style_key(style, size or 0)  # 0: encoded whole, whatever the job's size

        def encode() -> Stats:
            image = style.convert("RGB")
            return self.model.style_code(
                self._to_device(image if size is None else resize_longest(image, size))
            )

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
        out = self.model.module(job.content, styles[0], style2, w)
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
            "model_title": source.title,
            "model_location": source.location,
            "device": str(self.device),
            "precision": self.precision,
            "batch_size": batch_size,
            "style_cache_hits": job.cache_hits,
            "style_cache_shared_hits": job.shared_hits,
            "style_cache_misses": len(job.codes) - job.cache_hits,
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


def create_engine(config: EngineConfig, *, s3: Any | None = None, redis: Any | None = None) -> BlendEngine:
    """On failure to load the model the engine is built unavailable, with the reason. ``redis``
    (a redis-py client) shares style codes between consumers; without it each process keeps its own."""
    try:
        device = devices.select_device(config.device)
        model = load_blend_model(config, s3=s3).to(device, devices.memory_format(device))
    except (ArtifactError, ConfigError, EngineUnavailable) as exc:
        log.error("blend engine unavailable: %s", exc)
        return BlendEngine(config, None, None, reason=str(exc))
    shared = None
    if redis is not None and model.source.identity:
        shared = SharedCodes(redis, model.source.identity, ttl_s=config.style_cache_ttl_s, device=device)
    return BlendEngine(config, model, device, shared=shared)

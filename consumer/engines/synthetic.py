"""The synthetic engine (``mode = "synthetic"``): a job that takes a fixed time, for load tests.

It sleeps for the job's ``duration_s`` in ``steps`` slices, and between slices does what a real
engine does between iterations: checks for cancellation (so drains, releases and cancels behave
as with Gatys), reports progress and, every ``snapshot_every`` steps, hands in a snapshot. The
slices end on fixed deadlines from the start, so the hooks' own cost (Redis and S3 writes) is
absorbed and every job runs ``duration_s``, not ``duration_s`` plus overheads. Sleeping, not
spinning: six of them fit on two cores, and a job costs ``duration_s`` of wall time whatever the
machine, so a load test measures the queue (assignment, rebalances, commits), not the CPU.

Registered only where ``STYLEQUEUE_SYNTHETIC_ENGINE`` is on
(:func:`consumer.engines.registry.enabled_modules`); one module holds its parameters, its
declaration and the engine, since it needs no torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from consumer.engines.base import Availability, EngineResult, Hooks, Progress
from consumer.engines.kind import EngineKind
from stylequeue.config import EngineConfig
from stylequeue.params import Params, param

MAX_DURATION_S = 3600.0


class SyntheticParams(Params):
    mode = "synthetic"

    duration_s: float = param(1.0, "how long the job runs, in seconds (it sleeps)", ge=0.0, le=MAX_DURATION_S)
    steps: int = param(
        10, "progress reports (and cancellation checks) spread over the duration", ge=1, le=10_000
    )
    snapshot_every: int = param(0, "a snapshot every this many steps (0: none)", ge=0, le=10_000)


class SyntheticEngine:
    """Stateless; ``sleep`` and ``clock`` are injectable so tests run it without waiting."""

    mode = "synthetic"
    device = "none"

    def __init__(
        self, *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._sleep = sleep
        self._clock = clock

    def availability(self) -> Availability:
        return Availability(ok=True, model="synthetic (sleeps for duration_s; load tests only)")

    def run(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        params: Params,
        hooks: Hooks | None = None,
        *,
        init_image: Image.Image | None = None,
    ) -> EngineResult:
        if not isinstance(params, SyntheticParams):
            raise TypeError(f"the synthetic engine takes SyntheticParams, not {type(params).__name__}")
        hooks = hooks or Hooks()
        image = content.convert("RGB")  # the "result": the content itself, as a real image
        started = self._clock()
        for step in range(1, params.steps + 1):
            hooks.check_cancel()
            remaining = started + params.duration_s * step / params.steps - self._clock()
            if remaining > 0:
                self._sleep(remaining)
            elapsed = self._clock() - started
            hooks.progress(Progress(step, params.steps, elapsed, stage="sleep", size=image.size))
            if params.snapshot_every and step % params.snapshot_every == 0:
                hooks.snapshot(step, image)
        elapsed = self._clock() - started
        return EngineResult(image, meta={"synthetic_duration_s": round(elapsed, 3)})


def create_engine(
    config: EngineConfig, *, s3: Any | None = None, redis: Any | None = None
) -> SyntheticEngine:
    """The registry's factory; the synthetic engine needs no weights, device or shared cache."""
    return SyntheticEngine()


KIND = EngineKind(
    params=SyntheticParams,
    title="Synthetic (load tests)",
    summary="Sleeps for duration_s in steps, reporting progress and snapshots like a real engine: "
    "a fixed cost per job, so a load test measures the queue.",
    create="consumer.engines.synthetic:create_engine",
    live_snapshots=True,
)

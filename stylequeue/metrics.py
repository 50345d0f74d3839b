"""Prometheus metrics: every metric the service exports, defined once, with the events that move them.

The API (several gunicorn workers) uses prometheus-client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set; each consumer serves ``/metrics`` on its own port. Call sites
use the small functions below rather than touching metric objects, so names and labels stay in
one place.

Readings taken when Prometheus scrapes live beside the process that serves them: queue depth,
consumers per engine and consumer lag in the API (:mod:`api.pipeline_metrics`), GPU memory and
utilisation in a consumer (:mod:`consumer.gpu_metrics`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")  # stylequeue.job.TERMINAL, without the import

# Queue wait, run time and end-to-end latency: seconds up to 15 minutes (Gatys at 1024 px on CPU).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, 450, 600, 900)
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

JOBS_SUBMITTED = Counter("stylequeue_jobs_submitted_total", "Jobs accepted by the API", ["mode"])
JOBS_FINISHED = Counter(
    "stylequeue_jobs_finished_total", "Jobs that reached a terminal state", ["mode", "status"]
)
JOBS_IN_FLIGHT = Gauge(
    "stylequeue_jobs_in_flight", "Jobs being run by this consumer", ["mode"], multiprocess_mode="livesum"
)
QUEUE_WAIT = Histogram(
    "stylequeue_queue_wait_seconds", "Submit to start of the run", ["mode"], buckets=LATENCY_BUCKETS
)
RUN_TIME = Histogram("stylequeue_run_seconds", "Engine run time of a job", ["mode"], buckets=LATENCY_BUCKETS)
END_TO_END = Histogram(
    "stylequeue_end_to_end_seconds", "Submit to terminal state", ["mode"], buckets=LATENCY_BUCKETS
)
GATYS_ITERATIONS = Counter("stylequeue_gatys_iterations_total", "Gatys optimisation iterations run")
BLEND_BATCH_SIZE = Histogram(
    "stylequeue_blend_batch_size", "Blend jobs per batched pass", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32)
)
RETRIES = Counter("stylequeue_job_retries_total", "Job attempts retried after a transient failure", ["mode"])
DEAD_LETTERED = Counter("stylequeue_jobs_dead_lettered_total", "Jobs sent to the dead-letter topic", ["mode"])
UPLOAD_BYTES = Counter("stylequeue_upload_bytes_total", "Bytes of accepted uploads", ["mode"])
API_LATENCY = Histogram(
    "stylequeue_api_request_seconds",
    "API request latency",
    ["route", "method", "status"],
    buckets=API_BUCKETS,
)
# Liveness: Prometheus' own ``up`` says the process answers; these say its poll loop turns.
CONSUMER_UP = Gauge(
    "stylequeue_consumer_up",
    "1 while this consumer polls its topic, 0 once it stopped",
    ["mode", "consumer"],
    multiprocess_mode="livemax",
)
CONSUMER_HEARTBEAT = Gauge(
    "stylequeue_consumer_last_heartbeat_timestamp_seconds",
    "Unix time of the consumer's last turn of its poll loop",
    ["mode", "consumer"],
    multiprocess_mode="max",
)
STYLE_CACHE_LOOKUPS = Counter(
    "stylequeue_style_cache_lookups_total",
    "Blend style-code cache lookups: hit (this consumer's LRU), shared_hit (Redis), miss (encoded)",
    ["result"],
)

# Every series labelled by the mode alone (init_series creates them at zero).
BY_MODE = (JOBS_SUBMITTED, UPLOAD_BYTES, RETRIES, DEAD_LETTERED, QUEUE_WAIT, RUN_TIME, END_TO_END)


def job_submitted(mode: str, upload_bytes: int) -> None:
    JOBS_SUBMITTED.labels(mode).inc()
    UPLOAD_BYTES.labels(mode).inc(upload_bytes)


def job_started(mode: str, queue_wait_s: float) -> None:
    QUEUE_WAIT.labels(mode).observe(max(0.0, queue_wait_s))


def job_finished(mode: str, status: str, run_s: float | None, end_to_end_s: float | None) -> None:
    JOBS_FINISHED.labels(mode, status).inc()
    if run_s is not None:
        RUN_TIME.labels(mode).observe(max(0.0, run_s))
    if end_to_end_s is not None:
        END_TO_END.labels(mode).observe(max(0.0, end_to_end_s))


def job_retried(mode: str) -> None:
    RETRIES.labels(mode).inc()


def job_dead_lettered(mode: str) -> None:
    DEAD_LETTERED.labels(mode).inc()


def gatys_iterations(count: int = 1) -> None:
    GATYS_ITERATIONS.inc(count)


def blend_batch(size: int) -> None:
    BLEND_BATCH_SIZE.observe(size)


def api_request(route: str, method: str, status: int, seconds: float) -> None:
    API_LATENCY.labels(route, method, str(status)).observe(seconds)


def style_cache_lookups(hits: int, misses: int, shared_hits: int = 0) -> None:
    """Blend style-code cache lookups of one job (``EngineResult.meta``'s counts; ``hits``
    includes the ``shared_hits`` that Redis answered)."""
    for result, count in (("hit", hits - shared_hits), ("shared_hit", shared_hits), ("miss", misses)):
        if count:
            STYLE_CACHE_LOOKUPS.labels(result).inc(count)


def consumer_heartbeat(mode: str, consumer_id: str) -> None:
    """The consumer's poll loop turned: it is up, and now is its last heartbeat."""
    CONSUMER_UP.labels(mode, consumer_id).set(1)
    CONSUMER_HEARTBEAT.labels(mode, consumer_id).set(time.time())


def consumer_stopped(mode: str, consumer_id: str) -> None:
    CONSUMER_UP.labels(mode, consumer_id).set(0)


def init_series(modes: Iterable[str], *, style_cache: bool = False) -> None:
    """Create every labelled series of ``modes`` at zero.

    A counter that has never moved would otherwise be missing, and ``rate()`` of a missing series
    is no data rather than 0: dashboards would show gaps and ratio alerts would never evaluate.
    """
    for mode in modes:
        for metric in BY_MODE:
            metric.labels(mode)
        for status in TERMINAL_STATUSES:
            JOBS_FINISHED.labels(mode, status)
    if style_cache:  # an engine of these modes caches style codes (its kind says so)
        for result in ("hit", "shared_hit", "miss"):
            STYLE_CACHE_LOOKUPS.labels(result)


# -- multiprocess mode (the API under gunicorn) -------------------------------------------------


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV, "")
    return Path(value) if value else None


def reset_multiprocess_dir(path: Path | None = None) -> Path | None:
    """Empty (or create) the multiprocess directory; gunicorn's master calls this at boot.

    Files left by a previous run belong to dead pids: summed in, they would make counters jump
    and ``livesum`` gauges lie.
    """
    path = path or multiprocess_dir()
    if path is None:
        return None
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def mark_worker_dead(pid: int) -> None:
    """gunicorn ``child_exit``: drop a dead worker's live gauges (its counters stay summed in)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


def exposition(collectors: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The text exposition of this process (or of every gunicorn worker) plus ``collectors``: a
    ``/metrics`` response's body and content type."""
    if multiprocess_dir() is not None:
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base)
    else:
        base = REGISTRY
    extra = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        extra.register(collector)
    return generate_latest(base) + generate_latest(extra), CONTENT_TYPE_LATEST

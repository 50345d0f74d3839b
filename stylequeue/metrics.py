"""Prometheus metrics: every metric the service exports, defined once, with the events that move them.

The API (several gunicorn workers) uses prometheus-client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set; each consumer serves ``/metrics`` on its own port. Call sites
use the small functions below rather than touching metric objects, so names and labels stay in
one place.

Three kinds of metric live here:

* **events** — counters and histograms moved by the API and the consumers (``job_*`` …);
* **process state** — consumer liveness and jobs in flight, set by the consumer itself;
* **scrape-time readings** — queue depth and consumers per engine (from the status store) and
  consumer lag per partition (committed vs end offsets from Kafka), computed by
  :class:`PipelineCollector` when Prometheus scrapes the API; GPU memory and utilisation by
  :class:`GpuCollector` in a consumer that uses CUDA (absent otherwise).

Lag caveat: Tansu (the broker the tests and ``stylequeue dev`` run) answers ListOffsets with the
last *batch's* base offset + 1, so lag is exact only when every batch holds one record. The API
publishes one job per request and waits for the acknowledgement (``linger_ms=0``), so its batches
do hold one record each; real Apache Kafka has no such defect.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

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


def init_series(modes: Iterable[str]) -> None:
    """Create every labelled series of ``modes`` at zero.

    A counter that has never moved would otherwise be missing, and ``rate()`` of a missing series
    is no data rather than 0: dashboards would show gaps and ratio alerts would never evaluate.
    """
    for mode in modes:
        for metric in (
            JOBS_SUBMITTED,
            UPLOAD_BYTES,
            RETRIES,
            DEAD_LETTERED,
            QUEUE_WAIT,
            RUN_TIME,
            END_TO_END,
        ):
            metric.labels(mode)
        for status in TERMINAL_STATUSES:
            JOBS_FINISHED.labels(mode, status)
        if mode == "blend":  # only the blend engine has a style cache
            for result in ("hit", "shared_hit", "miss"):
                STYLE_CACHE_LOOKUPS.labels(result)


# -- multiprocess mode (the API under gunicorn) -------------------------------------------------


def multiprocess_dir() -> Path | None:
    """The multiprocess directory when ``PROMETHEUS_MULTIPROC_DIR`` is set."""
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
    """The text exposition of this process (or of every gunicorn worker) plus ``collectors``.

    Returns ``(body, content_type)`` for a ``/metrics`` response.
    """
    if multiprocess_dir() is not None:
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base)
    else:
        base = REGISTRY
    extra = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        extra.register(collector)
    return generate_latest(base) + generate_latest(extra), CONTENT_TYPE_LATEST


# -- scrape-time readings -------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionLag:
    """One partition of a mode's topic: its end offset and the mode's group's committed offset."""

    mode: str
    group: str
    topic: str
    partition: int
    end: int
    committed: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


class KafkaLagReader:
    """Lag of each mode's consumer group on its topic, through one (lazily made) admin client.

    ``targets`` maps mode → (group, topic). A partition the group never committed counts from
    its earliest offset, which is where the consumers (``auto_offset_reset=earliest``) start.
    """

    def __init__(self, admin_factory: Callable[[], Any], targets: Mapping[str, tuple[str, str]]) -> None:
        self._admin_factory = admin_factory
        self._admin: Any = None
        self.targets = dict(targets)

    def read(self) -> list[PartitionLag]:
        if self._admin is None:
            self._admin = self._admin_factory()
        try:
            return [lag for mode in self.targets for lag in self._mode_lags(mode)]
        except Exception:
            self.close()  # a broken connection is rebuilt on the next scrape
            raise

    def _mode_lags(self, mode: str) -> list[PartitionLag]:
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec

        from stylequeue import bus

        group, topic = self.targets[mode]
        described = self._admin.describe_topics([topic])
        partitions = [
            TopicPartition(topic, bus.partition_id(p)) for t in described for p in t.get("partitions") or ()
        ]
        if not partitions:
            return []
        ends = self._admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        starts = self._admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
        committed = self._admin.list_group_offsets({group: partitions}).get(group, {})
        lags = []
        for tp in partitions:
            done = (
                committed[tp].offset if tp in committed and committed[tp].offset >= 0 else starts[tp].offset
            )
            lags.append(PartitionLag(mode, group, topic, tp.partition, ends[tp].offset, done))
        return lags

    def close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            finally:
                self._admin = None


def make_lag_reader(cfg: Any, modes: Iterable[str]) -> KafkaLagReader:
    """A lag reader for ``modes`` on the broker of ``cfg`` (a KafkaConfig); connects on first read."""
    from stylequeue import bus  # imports kafka: only processes that read lag need it

    targets = {mode: (bus.group_for(cfg, mode), bus.topic_for(cfg, mode)) for mode in modes}

    def admin() -> Any:
        # Short timeouts: a scrape must fail fast rather than hang past Prometheus' scrape timeout.
        return bus.make_admin(cfg, client_id="stylequeue-metrics", timeout_ms=3000)

    return KafkaLagReader(admin, targets)


class PipelineCollector(Collector):
    """Queue depth, consumers per engine and consumer lag, read when Prometheus scrapes.

    Runs in the API: any worker may serve the scrape, and every one reads the same shared state
    (Redis, Kafka), so the numbers never need summing across workers. A source that cannot be
    read is reported by ``stylequeue_scrape_source_up{source} 0`` instead of failing the scrape.
    """

    def __init__(
        self, modes: Iterable[str], *, store: Any = None, lag_reader: KafkaLagReader | None = None
    ) -> None:
        self.modes = tuple(modes)
        self.store = store
        self.lag_reader = lag_reader

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "stylequeue_scrape_source_up", "1 when a scrape-time source answered", labels=["source"]
        )
        if self.store is not None:
            yield from self._guarded("redis", self._store_metrics, up)
        if self.lag_reader is not None:
            yield from self._guarded("kafka", self._lag_metrics, up)
        yield up

    def _guarded(self, source: str, read: Callable[[], list[Metric]], up: GaugeMetricFamily) -> list[Metric]:
        try:
            metrics = read()
        except Exception as exc:  # any failure of a source: report it, keep the rest of the scrape
            log.warning("metrics: reading %s failed: %s", source, exc)
            up.add_metric([source], 0)
            return []
        up.add_metric([source], 1)
        return metrics

    def _store_metrics(self) -> list[Metric]:
        depth = GaugeMetricFamily(
            "stylequeue_queue_depth", "Jobs queued (waiting for a consumer)", labels=["mode"]
        )
        consumers = GaugeMetricFamily(
            "stylequeue_engine_consumers", "Consumers reporting in for an engine", labels=["mode"]
        )
        available = GaugeMetricFamily(
            "stylequeue_engine_available", "1 when at least one consumer can run the engine", labels=["mode"]
        )
        reports = self.store.engines(self.modes)
        for mode in self.modes:
            depth.add_metric([mode], self.store.queued_count(mode))
            consumers.add_metric([mode], len(reports.get(mode, ())))
            available.add_metric([mode], int(any(r.get("available") for r in reports.get(mode, ()))))
        return [depth, consumers, available]

    def _lag_metrics(self) -> list[Metric]:
        lag = GaugeMetricFamily(
            "stylequeue_consumer_lag",
            "Messages on a partition not yet committed by the mode's consumer group",
            labels=["mode", "group", "topic", "partition"],
        )
        for item in self.lag_reader.read():
            lag.add_metric([item.mode, item.group, item.topic, str(item.partition)], item.lag)
        return [lag]


class GpuCollector(Collector):
    """Memory and utilisation of each CUDA device this process uses; nothing on CPU.

    Reads only when torch is already loaded *and* CUDA is initialised in this process, so it never
    imports torch (the API has none) and never creates a CUDA context on a CPU consumer.
    Utilisation needs NVML (``pip install nvidia-ml-py``, in the GPU image); without it that
    gauge is absent.
    """

    def collect(self) -> Iterator[Metric]:
        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        labels = ["device", "name"]
        families = {
            "allocated": GaugeMetricFamily(
                "stylequeue_gpu_memory_allocated_bytes", "Tensor memory", labels=labels
            ),
            "reserved": GaugeMetricFamily(
                "stylequeue_gpu_memory_reserved_bytes", "Caching allocator memory", labels=labels
            ),
            "total": GaugeMetricFamily("stylequeue_gpu_memory_total_bytes", "Device memory", labels=labels),
            "utilisation": GaugeMetricFamily(
                "stylequeue_gpu_utilisation_ratio", "Busy time, 0–1 (NVML)", labels=labels
            ),
        }
        for index in range(torch.cuda.device_count()):
            self._device(torch, index, families)
        yield from (f for f in families.values() if f.samples)

    @staticmethod
    def _device(torch: Any, index: int, families: dict[str, GaugeMetricFamily]) -> None:
        props = torch.cuda.get_device_properties(index)
        labels = [f"cuda:{index}", props.name]
        families["allocated"].add_metric(labels, torch.cuda.memory_allocated(index))
        families["reserved"].add_metric(labels, torch.cuda.memory_reserved(index))
        families["total"].add_metric(labels, props.total_memory)
        try:  # torch maps CUDA_VISIBLE_DEVICES indices to NVML's for us
            families["utilisation"].add_metric(labels, torch.cuda.utilization(index) / 100.0)
        except Exception:  # no NVML library/driver binding: the gauge is absent
            pass


_gpu_collector: GpuCollector | None = None


def register_gpu_collector(registry: CollectorRegistry = REGISTRY) -> None:
    """Add :class:`GpuCollector` to ``registry`` once per process."""
    global _gpu_collector
    if _gpu_collector is None:
        _gpu_collector = GpuCollector()
        registry.register(_gpu_collector)


def serve_consumer_metrics(port: int, mode: str, consumer_id: str, *, addr: str | None = None) -> Any:
    """A consumer's metrics: series at zero, the GPU collector, up=1, and ``/metrics`` on ``port``.

    ``port`` 0 serves nothing (the series still count, for tests that read the registry). The
    server binds ``addr``, by default ``STYLEQUEUE_METRICS_ADDR`` (loopback: a consumer's metrics
    are not published to every interface unless a deployment asks, as compose does).
    Returns the HTTP server (or None); call :func:`consumer_stopped` when the consumer stops.
    """
    init_series([mode])
    register_gpu_collector()
    consumer_heartbeat(mode, consumer_id)
    if not port:
        return None
    if addr is None:
        from stylequeue.config import WorkerConfig, load

        addr = load(WorkerConfig).metrics_addr
    server, _thread = start_http_server(port, addr)
    log.info("consumer metrics on http://%s:%d/metrics", addr, port)
    return server

"""Prometheus metrics: every metric the service exports, defined once, with the events that move them.

The API (several gunicorn workers) uses prometheus-client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set; each consumer serves ``/metrics`` on its own port. Call sites
use the small functions below rather than touching metric objects, so names and labels stay in
one place.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "stylequeue_api_request_seconds", "API request latency", ["route", "method", "status"], buckets=API_BUCKETS
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

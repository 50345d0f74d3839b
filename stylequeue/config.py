"""Typed configuration from the environment (``STYLEQUEUE_*``), with every default in one place.

Each section is a frozen dataclass whose fields name their variable with :func:`env`. Loading
fails fast with :class:`~stylequeue.errors.ConfigError` naming the variable that is missing or
malformed. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stylequeue.errors import ConfigError

T = TypeVar("T")
REQUIRED = object()  # default meaning "the variable must be set"

# Public weight files. torchvision's carry the first hex digits of their SHA-256 in the name,
# which the artifact fetcher checks (the same convention as torch.hub).
VGG19_TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG16_TORCHVISION_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"


def env(name: str, default: Any = REQUIRED, *, choices: tuple[str, ...] | None = None, help: str = "") -> Any:
    """Declare a config field read from variable ``name``."""
    meta = {"env": name, "choices": choices, "help": help}
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _parse(name: str, tp: Any, raw: str) -> Any:
    if tp is bool:
        text = raw.strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"expected true/false, got {raw!r}", field=name)
    if tp in (int, float):
        try:
            return tp(raw)
        except ValueError:
            raise ConfigError(f"expected {tp.__name__}, got {raw!r}", field=name) from None
    if tp is Path:
        return Path(raw).expanduser()
    return raw


def load(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build config section ``cls`` from ``environ`` (default: ``os.environ``)."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = f.metadata["env"]
        if name not in environ:
            if f.default is dataclasses.MISSING:
                raise ConfigError(f"required variable is not set ({f.metadata['help']})", field=name)
            continue
        value = _parse(name, hints[f.name], environ[name])
        choices = f.metadata["choices"]
        if choices and value not in choices:
            raise ConfigError(f"must be one of {', '.join(choices)}, got {value!r}", field=name)
        values[f.name] = value
    return cls(**values)


def describe(cls: type) -> list[dict[str, Any]]:
    """Variable, default and help of each field: the source of the README's configuration table."""
    rows = []
    for f in dataclasses.fields(cls):
        default = None if f.default is dataclasses.MISSING else f.default
        rows.append({"env": f.metadata["env"], "default": default, "help": f.metadata["help"]})
    return rows


@dataclass(frozen=True)
class EngineConfig:
    """How a process builds its engines: device, precision and where the weights are."""

    device: str = env("STYLEQUEUE_DEVICE", "auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    precision: str = env(
        "STYLEQUEUE_PRECISION",
        "auto",
        choices=("fp32", "fp16", "bf16", "auto"),
        help="network precision: auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32, "
        "bf16, or fp16 (CUDA only); Gram matrices and losses stay fp32",
    )
    cuda_graphs: bool = env(
        "STYLEQUEUE_CUDA_GRAPHS",
        False,
        help="Gatys on CUDA: replay each stage's forward/backward as a CUDA graph (ignored on CPU)",
    )
    random_weights: bool = env(
        "STYLEQUEUE_RANDOM_WEIGHTS",
        False,
        help="DEV/TEST ONLY: build randomly initialised networks instead of loading weights",
    )
    cache_dir: Path = env(
        "STYLEQUEUE_CACHE_DIR", Path("~/.cache/stylequeue"), help="where downloaded weights are kept"
    )
    models_base_url: str = env(
        "STYLEQUEUE_MODELS_BASE_URL",
        "",
        help="mirror 'stylequeue models pull' fetches from (https:// or s3:// prefix + file name) "
        "instead of each file's public URL",
    )
    vgg19_weights: str = env(
        "STYLEQUEUE_VGG19_WEIGHTS", VGG19_TORCHVISION_URL, help="VGG19 weights: path, s3:// or https URL"
    )
    vgg16_weights: str = env(
        "STYLEQUEUE_VGG16_WEIGHTS", VGG16_TORCHVISION_URL, help="VGG16 weights: path, s3:// or https URL"
    )
    vgg_format: str = env(
        "STYLEQUEUE_VGG_FORMAT",
        "torchvision",
        choices=("torchvision", "caffe", "adain"),
        help="layout/preprocessing of the VGG file (keys cannot tell torchvision from caffe)",
    )
    blend_model: str = env(
        "STYLEQUEUE_BLEND_MODEL",
        "",
        help="blend model: unset or 'magenta' (Magenta's pretrained network, shipped in a wheel), our .pt "
        "file, a TorchScript file, or 'ENCODER.pth,DECODER.pth' (AdaIN pair)",
    )
    blend_cache_size: int = env(
        "STYLEQUEUE_BLEND_CACHE_SIZE", 256, help="style statistics kept in memory by the blend engine (LRU)"
    )
    style_cache_ttl_s: int = env(
        "STYLEQUEUE_STYLE_CACHE_TTL_S",
        7 * 86400,
        help="how long a style's code stays in Redis for every consumer",
    )
    blend_max_batch: int = env(
        "STYLEQUEUE_BLEND_MAX_BATCH", 8, help="most blend jobs of one output size decoded in one forward pass"
    )


@dataclass(frozen=True)
class S3Config:
    endpoint: str = env("STYLEQUEUE_S3_ENDPOINT", help="S3 API endpoint URL, e.g. http://minio:9000")
    access_key: str = env("STYLEQUEUE_S3_ACCESS_KEY", help="S3 access key id")
    secret_key: str = env("STYLEQUEUE_S3_SECRET_KEY", help="S3 secret access key")
    bucket: str = env("STYLEQUEUE_S3_BUCKET", "stylequeue", help="bucket for uploads, results and snapshots")
    region: str = env("STYLEQUEUE_S3_REGION", "us-east-1", help="S3 region name")
    public_endpoint: str = env(
        "STYLEQUEUE_S3_PUBLIC_ENDPOINT",
        "",
        help="endpoint presigned URLs are signed for (default: the endpoint)",
    )
    presign_ttl_s: int = env("STYLEQUEUE_PRESIGN_TTL_S", 3600, help="lifetime of presigned download URLs")


@dataclass(frozen=True)
class RedisConfig:
    url: str = env("STYLEQUEUE_REDIS_URL", help="Redis URL, e.g. redis://redis:6379/0")
    snapshot_ttl_s: int = env("STYLEQUEUE_SNAPSHOT_TTL_S", 86400, help="how long snapshots stay in Redis")
    job_ttl_s: int = env("STYLEQUEUE_JOB_TTL_S", 7 * 86400, help="how long job records stay in Redis")
    lease_s: float = env(
        "STYLEQUEUE_JOB_LEASE_S",
        15.0,
        help="a running job's lease: no other consumer takes it over before this long without a sign "
        "of life (keep above STYLEQUEUE_KAFKA_SESSION_TIMEOUT_MS)",
    )


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str = env("STYLEQUEUE_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers, host:port[,host:port]")
    topic_prefix: str = env("STYLEQUEUE_TOPIC_PREFIX", "stylequeue.jobs.", help="job topic = prefix + mode")
    dead_letter_topic: str = env("STYLEQUEUE_DEAD_LETTER_TOPIC", "stylequeue.dead-letter", help="failed jobs")
    partitions: int = env(
        "STYLEQUEUE_TOPIC_PARTITIONS", 6, help="partitions per job topic (max consumers per mode)"
    )
    replication: int = env("STYLEQUEUE_TOPIC_REPLICATION", 1, help="replication factor of created topics")
    group_prefix: str = env("STYLEQUEUE_GROUP_PREFIX", "stylequeue-", help="consumer group = prefix + mode")
    session_timeout_ms: int = env(
        "STYLEQUEUE_KAFKA_SESSION_TIMEOUT_MS", 10000, help="how soon a dead consumer's jobs move to another"
    )
    heartbeat_interval_ms: int = env(
        "STYLEQUEUE_KAFKA_HEARTBEAT_MS", 1000, help="consumer heartbeat interval"
    )
    placement: str = env(
        "STYLEQUEUE_PLACEMENT",
        "backlog",
        choices=("backlog", "key"),
        help="partition of a new job: backlog (the one with the least consumer lag, so idle consumers get "
        "the next jobs) or key (a hash of the job id)",
    )


@dataclass(frozen=True)
class ApiConfig:
    max_file_bytes: int = env("STYLEQUEUE_MAX_FILE_BYTES", 20 * 2**20, help="largest accepted upload file")
    max_request_bytes: int = env("STYLEQUEUE_MAX_REQUEST_BYTES", 60 * 2**20, help="largest accepted request")
    max_pixels: int = env(
        "STYLEQUEUE_MAX_PIXELS", 40_000_000, help="largest decoded image (decompression bombs)"
    )
    max_form_parts: int = env(
        "STYLEQUEUE_MAX_FORM_PARTS", 200, help="most parts (fields and files) in one multipart request"
    )
    max_field_bytes: int = env(
        "STYLEQUEUE_MAX_FIELD_BYTES", 65536, help="largest text field of a multipart request"
    )
    header_timeout_s: float = env(
        "STYLEQUEUE_HEADER_TIMEOUT_S",
        10.0,
        help="a request's line and headers must arrive within this long of its first byte (else the "
        "connection is closed)",
    )
    body_timeout_s: float = env(
        "STYLEQUEUE_BODY_TIMEOUT_S",
        60.0,
        help="a request body must arrive within this long (else 408); bodies are read in full before "
        "the request is handled",
    )
    max_uploads_per_client: int = env(
        "STYLEQUEUE_MAX_UPLOADS_PER_CLIENT",
        2,
        help="request bodies one client address may be sending at once, per API worker process (0: no "
        "limit); more answer 429",
    )
    trusted_proxies: int = env(
        "STYLEQUEUE_TRUSTED_PROXIES",
        0,
        help="reverse proxies in front of the API whose X-Forwarded-For names the client (compose: 1)",
    )
    api_keys: str = env(
        "STYLEQUEUE_API_KEYS",
        "",
        help="API keys, comma-separated, each KEY or NAME:KEY; with keys (here or in the file) every "
        "job route needs 'Authorization: Bearer KEY' and a job belongs to the key that submitted it",
    )
    api_keys_file: str = env(
        "STYLEQUEUE_API_KEYS_FILE", "", help="a file of API keys, one KEY or NAME:KEY a line (# comments)"
    )
    rate_limit_per_key: str = env(
        "STYLEQUEUE_RATE_LIMIT_PER_KEY",
        "",
        help="requests one API key may make, e.g. '600/minute;20/second' (empty: no limit); 429 past it",
    )
    rate_limit_per_ip: str = env(
        "STYLEQUEUE_RATE_LIMIT_PER_IP",
        "",
        help="requests one client address may make, e.g. '1200/minute' (empty: no limit); 429 past it",
    )
    max_active_jobs_per_key: int = env(
        "STYLEQUEUE_MAX_ACTIVE_JOBS_PER_KEY",
        0,
        help="queued or running jobs one API key may have (0: no quota); a submission past it gets 429",
    )
    cors_origins: str = env(
        "STYLEQUEUE_CORS_ORIGINS",
        "",
        help="origins a browser may call the API from, comma-separated, or * (empty: same origin only)",
    )
    ui_dir: str = env(
        "STYLEQUEUE_UI_DIR", "", help="serve the built web UI from this folder at / (dev stack)"
    )
    bind: str = env("STYLEQUEUE_API_BIND", "0.0.0.0:8000", help="address gunicorn listens on (host:port)")
    workers: int = env("STYLEQUEUE_API_WORKERS", 2, help="gunicorn worker processes")
    threads: int = env("STYLEQUEUE_API_THREADS", 4, help="threads per gunicorn worker (slow uploads overlap)")
    compat_routes: bool = env(
        "STYLEQUEUE_COMPAT_ROUTES",
        True,
        help="serve the seed projects' routes (/api/generate, /stylize, /upload_images/ …) as stylequeue jobs",
    )
    compat_wait_s: float = env(
        "STYLEQUEUE_COMPAT_WAIT_S",
        60.0,
        help="how long a seed route waits for its job; after that it answers 202 with the job's URL",
    )


@dataclass(frozen=True)
class WorkerConfig:
    max_attempts: int = env("STYLEQUEUE_MAX_ATTEMPTS", 3, help="tries of a job before it is dead-lettered")
    blend_batch: int = env(
        "STYLEQUEUE_BLEND_BATCH",
        8,
        help="most blend jobs a consumer takes from Kafka at once (per-pass limit: STYLEQUEUE_BLEND_MAX_BATCH)",
    )
    metrics_port: int = env("STYLEQUEUE_METRICS_PORT", 0, help="consumer /metrics port (0: off)")
    metrics_addr: str = env(
        "STYLEQUEUE_METRICS_ADDR",
        "127.0.0.1",
        help="address the consumer /metrics server binds (loopback unless set, e.g. 0.0.0.0 in compose)",
    )
    retry_backoff_s: float = env(
        "STYLEQUEUE_RETRY_BACKOFF_S", 5.0, help="wait before a failed job's first retry (doubles each retry)"
    )
    retry_backoff_max_s: float = env(
        "STYLEQUEUE_RETRY_BACKOFF_MAX_S", 300.0, help="longest wait before a retry"
    )
    stall_s: float = env(
        "STYLEQUEUE_JOB_STALL_S",
        900.0,
        help="a job silent this long (no progress, snapshot or cancel check) ends its consumer",
    )


@dataclass(frozen=True)
class LoadTestConfig:
    """Switches for load tests and benchmarks; never on in a production deployment."""

    synthetic_engine: bool = env(
        "STYLEQUEUE_SYNTHETIC_ENGINE",
        False,
        help="LOAD TESTS ONLY: add the 'synthetic' mode (a job that sleeps for its duration_s) to the API "
        "and consumers; set it on both",
    )


@dataclass(frozen=True)
class ReconcilerConfig:
    """The reconciler (``stylequeue reconcile``): re-creates Kafka messages that Redis says are missing."""

    interval_s: float = env(
        "STYLEQUEUE_RECONCILE_INTERVAL_S", 5.0, help="seconds between reconciliation passes"
    )
    grace_s: float = env(
        "STYLEQUEUE_RECONCILE_GRACE_S",
        15.0,
        help="a queued job unpublished this long, or a message the broker lost, is published again",
    )
    orphan_age_s: float = env(
        "STYLEQUEUE_ORPHAN_AGE_S", 3600.0, help="S3 job folders without a Redis record this old are removed"
    )

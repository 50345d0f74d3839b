"""Typed configuration from the environment (``STYLEQUEUE_*``), with every default in one place.

Each section is a frozen pydantic-settings model: a field reads ``env_prefix`` + its name upper-cased,
or its ``validation_alias`` where the variable's name does not follow the field's. :func:`load` reads
only the mapping it is given (never a ``.env`` file) and fails fast with
:class:`~stylequeue.errors.ConfigError` naming the variable that is missing or malformed; an empty
variable counts as unset. Building a section directly (``EngineConfig(device="cpu")``) reads no
environment at all, and nothing here reads it at import time.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

import pydantic
from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from stylequeue.errors import ConfigError
from stylequeue.params import param, show_number, translate

T = TypeVar("T", bound="Section")

# Public weight files. torchvision's carry the first hex digits of their SHA-256 in the name,
# which the artifact fetcher checks (the same convention as torch.hub).
VGG19_TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG16_TORCHVISION_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

UserPath = Annotated[Path, AfterValidator(Path.expanduser)]  # "~/x" in a variable means the home folder


class Section(BaseSettings):
    """Base of every section: frozen (sections are cache keys), an empty variable means "unset"."""

    # Errors name fields, not variables (loc_by_alias=False); a default stays as written, its "~" too.
    model_config = SettingsConfigDict(
        env_prefix="STYLEQUEUE_",
        env_ignore_empty=True,
        frozen=True,
        validate_by_name=True,
        loc_by_alias=False,
        validate_default=False,
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: Any, **_: Any
    ) -> tuple:
        # Keyword arguments only: the environment comes in through load(), from the mapping it is given.
        return (init_settings,)

    def overlaid(self, changes: Mapping[str, Any]) -> Self:
        """This section with ``changes`` (a command's flags) laid over it, checked as a load checks
        the environment: a bad value is a ValidationError naming the field."""
        try:
            return type(self)(**{**self.model_dump(), **changes})
        except pydantic.ValidationError as exc:
            raise translate(exc, type(self)) from None


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading ``environ`` instead of ``os.environ``."""

    def __init__(self, settings_cls: type[Section], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)
        # A field with an alias reads that variable alone, not also env_prefix + its name.
        self.config = {**self.config, "validate_by_name": False}

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def variable(cls: type[Section], name: str) -> str:
    """The environment variable field ``name`` of ``cls`` is read from."""
    alias = cls.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else cls.model_config["env_prefix"] + name.upper()


def load(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    values = _MappingSource(cls, os.environ if environ is None else environ)()
    try:
        return cls(**values)
    except pydantic.ValidationError as exc:
        error = translate(exc, cls)  # the parameters' messages ("must be an integer, got 'six'")
        if exc.errors()[0]["type"] == "missing":
            error.message = f"required variable is not set ({cls.model_fields[error.field].description})"
        raise ConfigError(error.message, field=variable(cls, error.field)) from None


def describe(cls: type[Section]) -> list[dict[str, Any]]:
    """Variable, default, choices, range and help of each field: the source of the README's
    configuration table. ``range`` is the field's bounds as text ("≥ 1", "> 0", "0–65535"), or ""."""
    schemas = cls.model_json_schema(by_alias=False)["properties"]
    return [
        {
            "name": name,
            "env": variable(cls, name),
            "default": None if f.is_required() else f.default,
            "choices": typing.get_args(f.annotation) if typing.get_origin(f.annotation) is Literal else None,
            "range": _range(schemas[name]),
            "help": f.description,
        }
        for name, f in cls.model_fields.items()
    ]


def _range(schema: dict[str, Any]) -> str:
    low, high, above = schema.get("minimum"), schema.get("maximum"), schema.get("exclusiveMinimum")
    if low is not None and high is not None:
        return f"{show_number(low)}–{show_number(high)}"
    if above is not None:
        return f"> {show_number(above)}"
    return f"≥ {show_number(low)}" if low is not None else ""


class EngineConfig(Section):
    """How a process builds its engines: device, precision and where the weights are."""

    device: str = param("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    precision: Literal["fp32", "fp16", "bf16", "auto"] = param(
        "auto",
        "network precision: auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32, "
        "bf16, or fp16 (CUDA only); Gram matrices and losses stay fp32",
    )
    cuda_graphs: bool = param(
        False, "Gatys on CUDA: replay each stage's forward/backward as a CUDA graph (ignored on CPU)"
    )
    random_weights: bool = param(
        False, "DEV/TEST ONLY: build randomly initialised networks instead of loading weights"
    )
    cache_dir: UserPath = param(Path("~/.cache/stylequeue"), "where downloaded weights are kept")
    models_base_url: str = param(
        "",
        "mirror 'stylequeue models pull' fetches from (https:// or s3:// prefix + file name) "
        "instead of each file's public URL",
    )
    vgg19_weights: str = param(VGG19_TORCHVISION_URL, "VGG19 weights: path, s3:// or https URL")
    vgg16_weights: str = param(VGG16_TORCHVISION_URL, "VGG16 weights: path, s3:// or https URL")
    vgg_format: Literal["torchvision", "caffe", "adain"] = param(
        "torchvision", "layout/preprocessing of the VGG file (keys cannot tell torchvision from caffe)"
    )
    blend_model: str = param(
        "",
        "blend model: unset or 'magenta' (Magenta's pretrained network, shipped in a wheel), our .pt "
        "file, a TorchScript file, or 'ENCODER.pth,DECODER.pth' (AdaIN pair)",
    )
    blend_cache_size: int = param(256, "style statistics kept in memory by the blend engine (LRU)", ge=0)
    style_cache_ttl_s: int = param(
        7 * 86400, "how long a style's code stays in Redis for every consumer", ge=1
    )
    blend_max_batch: int = param(8, "most blend jobs of one output size decoded in one forward pass", ge=1)


class S3Config(Section):
    model_config = SettingsConfigDict(env_prefix="STYLEQUEUE_S3_")

    endpoint: str = Field(description="S3 API endpoint URL, e.g. http://minio:9000")
    access_key: str = Field(description="S3 access key id")
    secret_key: str = Field(description="S3 secret access key")
    bucket: str = param("stylequeue", "bucket for uploads, results and snapshots")
    region: str = param("us-east-1", "S3 region name")
    public_endpoint: str = param("", "endpoint presigned URLs are signed for (default: the endpoint)")
    presign_ttl_s: int = param(
        3600,
        "lifetime of presigned download URLs",
        ge=1,
        le=604800,
        validation_alias="STYLEQUEUE_PRESIGN_TTL_S",
    )


class RedisConfig(Section):
    url: str = Field(
        validation_alias="STYLEQUEUE_REDIS_URL", description="Redis URL, e.g. redis://redis:6379/0"
    )
    snapshot_ttl_s: int = param(86400, "how long snapshots stay in Redis", ge=1)
    job_ttl_s: int = param(7 * 86400, "how long job records stay in Redis", ge=1)
    lease_s: float = param(
        15.0,
        "a running job's lease: no other consumer takes it over before this long without a sign "
        "of life (keep above STYLEQUEUE_KAFKA_SESSION_TIMEOUT_MS)",
        gt=0,
        validation_alias="STYLEQUEUE_JOB_LEASE_S",
    )


class KafkaConfig(Section):
    bootstrap: str = Field(
        validation_alias="STYLEQUEUE_KAFKA_BOOTSTRAP",
        description="Kafka bootstrap servers, host:port[,host:port]",
    )
    topic_prefix: str = param("stylequeue.jobs.", "job topic = prefix + mode")
    dead_letter_topic: str = param("stylequeue.dead-letter", "failed jobs")
    partitions: int = param(
        6,
        "partitions per job topic (max consumers per mode)",
        ge=1,
        validation_alias="STYLEQUEUE_TOPIC_PARTITIONS",
    )
    replication: int = param(
        1, "replication factor of created topics", ge=1, validation_alias="STYLEQUEUE_TOPIC_REPLICATION"
    )
    group_prefix: str = param("stylequeue-", "consumer group = prefix + mode")
    session_timeout_ms: int = param(
        10000,
        "how soon a dead consumer's jobs move to another",
        ge=1,
        validation_alias="STYLEQUEUE_KAFKA_SESSION_TIMEOUT_MS",
    )
    heartbeat_interval_ms: int = param(
        1000, "consumer heartbeat interval", ge=1, validation_alias="STYLEQUEUE_KAFKA_HEARTBEAT_MS"
    )
    placement: Literal["backlog", "key"] = param(
        "backlog",
        "partition of a new job: backlog (the one with the least consumer lag, so idle consumers get "
        "the next jobs) or key (a hash of the job id)",
    )


class ApiConfig(Section):
    max_file_bytes: int = param(20 * 2**20, "largest accepted upload file", ge=1)
    max_request_bytes: int = param(60 * 2**20, "largest accepted request", ge=1)
    max_pixels: int = param(40_000_000, "largest decoded image (decompression bombs)", ge=1)
    max_form_parts: int = param(200, "most parts (fields and files) in one multipart request", ge=1)
    max_field_bytes: int = param(65536, "largest text field of a multipart request", ge=1)
    header_timeout_s: float = param(
        10.0,
        "a request's line and headers must arrive within this long of its first byte (else the "
        "connection is closed)",
        gt=0,
    )
    body_timeout_s: float = param(
        60.0,
        "a request body must arrive within this long (else 408); bodies are read in full before "
        "the request is handled",
        gt=0,
    )
    max_uploads_per_client: int = param(
        2,
        "request bodies one client address may be sending at once, per API worker process (0: no "
        "limit); more answer 429",
        ge=0,
    )
    trusted_proxies: int = param(
        0, "reverse proxies in front of the API whose X-Forwarded-For names the client (compose: 1)", ge=0
    )
    api_keys: str = param(
        "",
        "API keys, comma-separated, each KEY or NAME:KEY; with keys (here or in the file) every "
        "job route needs 'Authorization: Bearer KEY' and a job belongs to the key that submitted it",
    )
    api_keys_file: str = param("", "a file of API keys, one KEY or NAME:KEY a line (# comments)")
    rate_limit_per_key: str = param(
        "", "requests one API key may make, e.g. '600/minute;20/second' (empty: no limit); 429 past it"
    )
    rate_limit_per_ip: str = param(
        "", "requests one client address may make, e.g. '1200/minute' (empty: no limit); 429 past it"
    )
    max_active_jobs_per_key: int = param(
        0, "queued or running jobs one API key may have (0: no quota); a submission past it gets 429", ge=0
    )
    cors_origins: str = param(
        "", "origins a browser may call the API from, comma-separated, or * (empty: same origin only)"
    )
    ui_dir: str = param("", "serve the built web UI from this folder at / (dev stack)")
    bind: str = param(
        "0.0.0.0:8000", "address gunicorn listens on (host:port)", validation_alias="STYLEQUEUE_API_BIND"
    )
    workers: int = param(2, "gunicorn worker processes", ge=1, validation_alias="STYLEQUEUE_API_WORKERS")
    threads: int = param(
        4,
        "threads per gunicorn worker (slow uploads overlap)",
        ge=1,
        validation_alias="STYLEQUEUE_API_THREADS",
    )
    compat_routes: bool = param(
        True,
        "serve the seed projects' routes (/api/generate, /stylize, /upload_images/ …) as stylequeue jobs",
    )
    compat_wait_s: float = param(
        60.0, "how long a seed route waits for its job; after that it answers 202 with the job's URL", ge=0
    )


class WorkerConfig(Section):
    max_attempts: int = param(3, "tries of a job before it is dead-lettered", ge=1)
    blend_batch: int = param(
        8,
        "most blend jobs a consumer takes from Kafka at once (per-pass limit: STYLEQUEUE_BLEND_MAX_BATCH)",
        ge=1,
    )
    metrics_port: int = param(0, "consumer /metrics port (0: off)", ge=0, le=65535)
    metrics_addr: str = param(
        "127.0.0.1",
        "address the consumer /metrics server binds (loopback unless set, e.g. 0.0.0.0 in compose)",
    )
    retry_backoff_s: float = param(5.0, "wait before a failed job's first retry (doubles each retry)", ge=0)
    retry_backoff_max_s: float = param(300.0, "longest wait before a retry", ge=0)
    stall_s: float = param(
        900.0,
        "a job silent this long (no progress, snapshot or cancel check) ends its consumer",
        gt=0,
        validation_alias="STYLEQUEUE_JOB_STALL_S",
    )


class LoadTestConfig(Section):
    """Switches for load tests and benchmarks; never on in a production deployment."""

    synthetic_engine: bool = param(
        False,
        "LOAD TESTS ONLY: add the 'synthetic' mode (a job that sleeps for its duration_s) to the API "
        "and consumers; set it on both",
    )


class ReconcilerConfig(Section):
    """The reconciler (``stylequeue reconcile``): re-creates Kafka messages that Redis says are missing."""

    model_config = SettingsConfigDict(env_prefix="STYLEQUEUE_RECONCILE_")

    interval_s: float = param(5.0, "seconds between reconciliation passes", gt=0)
    grace_s: float = param(
        15.0, "a queued job unpublished this long, or a message the broker lost, is published again", ge=0
    )
    sweep_interval_s: float = param(
        60.0,
        "seconds between sweeps of the S3 bucket for job folders without a record (at once "
        "after Redis lost its data)",
        ge=0,
    )
    orphan_age_s: float = param(
        3600.0,
        "S3 job folders without a Redis record this old are removed",
        ge=0,
        validation_alias="STYLEQUEUE_ORPHAN_AGE_S",
    )

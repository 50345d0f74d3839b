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
from stylequeue.params import show_number, translate

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
    """Build config section ``cls`` from ``environ`` (default: ``os.environ``)."""
    values = _MappingSource(cls, os.environ if environ is None else environ)()
    try:
        return cls(**values)
    except pydantic.ValidationError as exc:
        error = translate(exc, cls)  # the parameters' messages ("must be an integer, got 'six'")
        field = cls.model_fields[error.field]
        if exc.errors()[0]["type"] == "missing":
            error.message = f"required variable is not set ({field.description})"
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

    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda or cuda:N")
    precision: Literal["fp32", "fp16", "bf16", "auto"] = Field(
        "auto",
        description="network precision: auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32, "
        "bf16, or fp16 (CUDA only); Gram matrices and losses stay fp32",
    )
    cuda_graphs: bool = Field(
        False,
        description="Gatys on CUDA: replay each stage's forward/backward as a CUDA graph (ignored on CPU)",
    )
    random_weights: bool = Field(
        False, description="DEV/TEST ONLY: build randomly initialised networks instead of loading weights"
    )
    cache_dir: UserPath = Field(Path("~/.cache/stylequeue"), description="where downloaded weights are kept")
    models_base_url: str = Field(
        "",
        description="mirror 'stylequeue models pull' fetches from (https:// or s3:// prefix + file name) "
        "instead of each file's public URL",
    )
    vgg19_weights: str = Field(VGG19_TORCHVISION_URL, description="VGG19 weights: path, s3:// or https URL")
    vgg16_weights: str = Field(VGG16_TORCHVISION_URL, description="VGG16 weights: path, s3:// or https URL")
    vgg_format: Literal["torchvision", "caffe", "adain"] = Field(
        "torchvision",
        description="layout/preprocessing of the VGG file (keys cannot tell torchvision from caffe)",
    )
    blend_model: str = Field(
        "",
        description="blend model: unset or 'magenta' (Magenta's pretrained network, shipped in a wheel), our .pt "
        "file, a TorchScript file, or 'ENCODER.pth,DECODER.pth' (AdaIN pair)",
    )
    blend_cache_size: int = Field(
        256, ge=0, description="style statistics kept in memory by the blend engine (LRU)"
    )
    style_cache_ttl_s: int = Field(
        7 * 86400, ge=1, description="how long a style's code stays in Redis for every consumer"
    )
    blend_max_batch: int = Field(
        8, ge=1, description="most blend jobs of one output size decoded in one forward pass"
    )


class S3Config(Section):
    model_config = SettingsConfigDict(env_prefix="STYLEQUEUE_S3_")

    endpoint: str = Field(description="S3 API endpoint URL, e.g. http://minio:9000")
    access_key: str = Field(description="S3 access key id")
    secret_key: str = Field(description="S3 secret access key")
    bucket: str = Field("stylequeue", description="bucket for uploads, results and snapshots")
    region: str = Field("us-east-1", description="S3 region name")
    public_endpoint: str = Field(
        "", description="endpoint presigned URLs are signed for (default: the endpoint)"
    )
    presign_ttl_s: int = Field(
        3600,
        ge=1,
        le=604800,
        validation_alias="STYLEQUEUE_PRESIGN_TTL_S",
        description="lifetime of presigned download URLs",
    )


class RedisConfig(Section):
    url: str = Field(
        validation_alias="STYLEQUEUE_REDIS_URL", description="Redis URL, e.g. redis://redis:6379/0"
    )
    snapshot_ttl_s: int = Field(86400, ge=1, description="how long snapshots stay in Redis")
    job_ttl_s: int = Field(7 * 86400, ge=1, description="how long job records stay in Redis")
    lease_s: float = Field(
        15.0,
        gt=0,
        validation_alias="STYLEQUEUE_JOB_LEASE_S",
        description="a running job's lease: no other consumer takes it over before this long without a sign "
        "of life (keep above STYLEQUEUE_KAFKA_SESSION_TIMEOUT_MS)",
    )


class KafkaConfig(Section):
    bootstrap: str = Field(
        validation_alias="STYLEQUEUE_KAFKA_BOOTSTRAP",
        description="Kafka bootstrap servers, host:port[,host:port]",
    )
    topic_prefix: str = Field("stylequeue.jobs.", description="job topic = prefix + mode")
    dead_letter_topic: str = Field("stylequeue.dead-letter", description="failed jobs")
    partitions: int = Field(
        6,
        ge=1,
        validation_alias="STYLEQUEUE_TOPIC_PARTITIONS",
        description="partitions per job topic (max consumers per mode)",
    )
    replication: int = Field(
        1,
        ge=1,
        validation_alias="STYLEQUEUE_TOPIC_REPLICATION",
        description="replication factor of created topics",
    )
    group_prefix: str = Field("stylequeue-", description="consumer group = prefix + mode")
    session_timeout_ms: int = Field(
        10000,
        ge=1,
        validation_alias="STYLEQUEUE_KAFKA_SESSION_TIMEOUT_MS",
        description="how soon a dead consumer's jobs move to another",
    )
    heartbeat_interval_ms: int = Field(
        1000,
        ge=1,
        validation_alias="STYLEQUEUE_KAFKA_HEARTBEAT_MS",
        description="consumer heartbeat interval",
    )
    placement: Literal["backlog", "key"] = Field(
        "backlog",
        description="partition of a new job: backlog (the one with the least consumer lag, so idle consumers get "
        "the next jobs) or key (a hash of the job id)",
    )


class ApiConfig(Section):
    max_file_bytes: int = Field(20 * 2**20, ge=1, description="largest accepted upload file")
    max_request_bytes: int = Field(60 * 2**20, ge=1, description="largest accepted request")
    max_pixels: int = Field(40_000_000, ge=1, description="largest decoded image (decompression bombs)")
    max_form_parts: int = Field(
        200, ge=1, description="most parts (fields and files) in one multipart request"
    )
    max_field_bytes: int = Field(65536, ge=1, description="largest text field of a multipart request")
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a request's line and headers must arrive within this long of its first byte (else the "
        "connection is closed)",
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0,
        description="a request body must arrive within this long (else 408); bodies are read in full before "
        "the request is handled",
    )
    max_uploads_per_client: int = Field(
        2,
        ge=0,
        description="request bodies one client address may be sending at once, per API worker process (0: no "
        "limit); more answer 429",
    )
    trusted_proxies: int = Field(
        0,
        ge=0,
        description="reverse proxies in front of the API whose X-Forwarded-For names the client (compose: 1)",
    )
    api_keys: str = Field(
        "",
        description="API keys, comma-separated, each KEY or NAME:KEY; with keys (here or in the file) every "
        "job route needs 'Authorization: Bearer KEY' and a job belongs to the key that submitted it",
    )
    api_keys_file: str = Field("", description="a file of API keys, one KEY or NAME:KEY a line (# comments)")
    rate_limit_per_key: str = Field(
        "",
        description="requests one API key may make, e.g. '600/minute;20/second' (empty: no limit); 429 past it",
    )
    rate_limit_per_ip: str = Field(
        "",
        description="requests one client address may make, e.g. '1200/minute' (empty: no limit); 429 past it",
    )
    max_active_jobs_per_key: int = Field(
        0,
        ge=0,
        description="queued or running jobs one API key may have (0: no quota); a submission past it gets 429",
    )
    cors_origins: str = Field(
        "",
        description="origins a browser may call the API from, comma-separated, or * (empty: same origin only)",
    )
    ui_dir: str = Field("", description="serve the built web UI from this folder at / (dev stack)")
    bind: str = Field(
        "0.0.0.0:8000",
        validation_alias="STYLEQUEUE_API_BIND",
        description="address gunicorn listens on (host:port)",
    )
    workers: int = Field(
        2, ge=1, validation_alias="STYLEQUEUE_API_WORKERS", description="gunicorn worker processes"
    )
    threads: int = Field(
        4,
        ge=1,
        validation_alias="STYLEQUEUE_API_THREADS",
        description="threads per gunicorn worker (slow uploads overlap)",
    )
    compat_routes: bool = Field(
        True,
        description="serve the seed projects' routes (/api/generate, /stylize, /upload_images/ …) as stylequeue jobs",
    )
    compat_wait_s: float = Field(
        60.0,
        ge=0,
        description="how long a seed route waits for its job; after that it answers 202 with the job's URL",
    )


class WorkerConfig(Section):
    max_attempts: int = Field(3, ge=1, description="tries of a job before it is dead-lettered")
    blend_batch: int = Field(
        8,
        ge=1,
        description="most blend jobs a consumer takes from Kafka at once (per-pass limit: STYLEQUEUE_BLEND_MAX_BATCH)",
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="consumer /metrics port (0: off)")
    metrics_addr: str = Field(
        "127.0.0.1",
        description="address the consumer /metrics server binds (loopback unless set, e.g. 0.0.0.0 in compose)",
    )
    retry_backoff_s: float = Field(
        5.0, ge=0, description="wait before a failed job's first retry (doubles each retry)"
    )
    retry_backoff_max_s: float = Field(300.0, ge=0, description="longest wait before a retry")
    stall_s: float = Field(
        900.0,
        gt=0,
        validation_alias="STYLEQUEUE_JOB_STALL_S",
        description="a job silent this long (no progress, snapshot or cancel check) ends its consumer",
    )


class LoadTestConfig(Section):
    """Switches for load tests and benchmarks; never on in a production deployment."""

    synthetic_engine: bool = Field(
        False,
        description="LOAD TESTS ONLY: add the 'synthetic' mode (a job that sleeps for its duration_s) to the API "
        "and consumers; set it on both",
    )


class ReconcilerConfig(Section):
    """The reconciler (``stylequeue reconcile``): re-creates Kafka messages that Redis says are missing."""

    model_config = SettingsConfigDict(env_prefix="STYLEQUEUE_RECONCILE_")

    interval_s: float = Field(5.0, gt=0, description="seconds between reconciliation passes")
    grace_s: float = Field(
        15.0,
        ge=0,
        description="a queued job unpublished this long, or a message the broker lost, is published again",
    )
    sweep_interval_s: float = Field(
        60.0,
        ge=0,
        description="seconds between sweeps of the S3 bucket for job folders without a record (at once "
        "after Redis lost its data)",
    )
    orphan_age_s: float = Field(
        3600.0,
        ge=0,
        validation_alias="STYLEQUEUE_ORPHAN_AGE_S",
        description="S3 job folders without a Redis record this old are removed",
    )

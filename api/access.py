"""Who may do what: API keys, which key a job belongs to, each key's job list and its quota (no Flask).

Access control is on when any key is configured (``STYLEQUEUE_API_KEYS`` and/or the file named by
``STYLEQUEUE_API_KEYS_FILE``): every job route then needs ``Authorization: Bearer KEY``, and a job
is visible to the key that submitted it only — another key asking for it, its result, inputs or
snapshots, or cancelling it, is told there is no such job (404), exactly as for an id that never
existed. Keys are given as ``KEY`` or ``NAME:KEY``; the name (default: a digest of the key) is what
Redis stores and the logs show, so a key itself is never written anywhere.

Ownership lives beside the job records, in Redis (``owner`` is the key's name; ``-`` when access
control is off, so the local stack can list its jobs too)::

    owner:{owner}:jobs     sorted set: job id → submission time (newest first when listed)
    owner:{owner}:active   set of job ids that may still be queued or running (for the quota)

Both expire with the jobs (``STYLEQUEUE_JOB_TTL_S`` after the owner's last submission).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from consumer.engines import registry
from stylequeue.config import ApiConfig
from stylequeue.errors import ConfigError, NotFound, StylequeueError, ValidationError
from stylequeue.job import Job, Status, epoch_s
from stylequeue.params import TextInput
from stylequeue.status import StatusStore

ANONYMOUS = "-"
MAX_ID_LENGTH = 64  # job ids are UUIDs (36 characters); a longer one names no job
PAGE_DEFAULT, PAGE_MAX = 20, 100
SCAN_MAX = 1000  # records one listing request reads at most, however selective its filters
CURSOR = re.compile(r"[0-9]{1,12}(\.[0-9]{1,12})?")  # a page's "next": a submission time in seconds


class Unauthorized(StylequeueError):
    """No key, or not a key this API knows (HTTP 401)."""

    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="stylequeue"'}


class QuotaExceeded(StylequeueError):
    """The key has as many active jobs as it may (HTTP 429, Retry-After)."""

    code = "quota_exceeded"
    retry_after_s = 5


def key_name(key: str) -> str:
    """The name stored for an unnamed key: enough of its digest to tell keys apart, not to recover it."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_keys(text: str, source: str) -> dict[str, str]:
    """``KEY`` or ``NAME:KEY`` entries (comma- or newline-separated, ``#`` comments) → {key: name}."""
    keys: dict[str, str] = {}
    for raw in text.replace(",", "\n").splitlines():
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        name, _, key = entry.rpartition(":")
        key, name = key.strip(), name.strip() or key_name(key.strip())
        if len(key) < 16:
            raise ConfigError("an API key is shorter than 16 characters", field=source)
        keys[key] = name
    return keys


@dataclass(frozen=True)
class ApiKeys:
    """The configured keys, by their SHA-256 (a lookup never compares a secret byte by byte)."""

    names: dict[bytes, str]

    @classmethod
    def from_config(cls, cfg: ApiConfig) -> ApiKeys:
        keys = parse_keys(cfg.api_keys, "STYLEQUEUE_API_KEYS")
        if cfg.api_keys_file:
            try:
                text = Path(cfg.api_keys_file).read_text()
            except OSError as exc:
                field = "STYLEQUEUE_API_KEYS_FILE"
                raise ConfigError(f"cannot read the key file: {exc.strerror}", field=field) from None
            keys.update(parse_keys(text, "STYLEQUEUE_API_KEYS_FILE"))
        return cls({_digest(key): name for key, name in keys.items()})

    def identify(self, authorization: str | None) -> str | None:
        """The caller's key name from an ``Authorization`` header; None when access control is off."""
        if not self.names:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("this API needs an API key: send 'Authorization: Bearer KEY'")
        digest = _digest(token.strip())
        for known, name in self.names.items():  # a handful of keys: compare each, in constant time
            if hmac.compare_digest(known, digest):
                return name
        raise Unauthorized("unknown API key")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class Page:
    """One page of a key's jobs, newest first; ``next`` continues after the last one (None: done)."""

    jobs: list[Job]
    next: str | None


class Owners:
    """Which key submitted which job (module docstring), on the status store's Redis."""

    def __init__(self, status: StatusStore, ttl_s: int) -> None:
        self.redis = status.redis
        self.status = status
        self.ttl_s = ttl_s

    def _key(self, owner: str, kind: str) -> str:
        return f"{self.status.prefix}owner:{owner}:{kind}"

    def record(self, owner: str, job: Job) -> None:
        """Note a new job as ``owner``'s (one round trip)."""
        jobs, active = self._key(owner, "jobs"), self._key(owner, "active")
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(jobs, {job.id: epoch_s(job.submitted_at)})
            pipe.zremrangebyscore(jobs, "-inf", time.time() - self.ttl_s)  # records gone by now
            pipe.expire(jobs, self.ttl_s)
            pipe.sadd(active, job.id)
            pipe.expire(active, self.ttl_s)
            pipe.execute()

    def forget(self, owner: str, job: Job) -> None:
        """Undo :meth:`record` (a submission that failed after it)."""
        self.redis.zrem(self._key(owner, "jobs"), job.id)
        self.redis.srem(self._key(owner, "active"), job.id)

    def owns(self, owner: str, job_id: str) -> bool:
        return self.redis.zscore(self._key(owner, "jobs"), job_id) is not None

    def check_quota(self, owner: str, limit: int) -> None:
        """QuotaExceeded when ``owner`` has ``limit`` jobs queued or running (0: no quota). The active
        set is pruned here, lazily: a job that ended (or expired) leaves it the next time its owner
        submits, so no consumer has to know about quotas."""
        if not limit:
            return
        active = self._key(owner, "active")
        ended = [job_id for job_id in self.redis.smembers(active) if not self._active(job_id)]
        if ended:
            self.redis.srem(active, *ended)
        count = self.redis.scard(active)
        if count >= limit:
            raise QuotaExceeded(
                f"this key has {count} queued or running jobs; the limit is {limit} "
                "(STYLEQUEUE_MAX_ACTIVE_JOBS_PER_KEY): wait for one to finish or cancel one"
            )

    def _active(self, job_id: bytes) -> bool:
        job = self._record(job_id)
        return job is not None and not job.status.terminal

    def page(self, owner: str, *, status: str | None = None, mode: str | None = None,
             limit: int = PAGE_DEFAULT, after: str | None = None) -> Page:  # fmt: skip
        """Newest first, filtered by status and mode (None: any); ``after`` is a previous page's ``next``."""
        key = self._key(owner, "jobs")
        jobs: list[Job] = []
        last: str | None = None
        top = f"({after}" if after else "+inf"
        for job_id, score in self.redis.zrevrangebyscore(
            key, top, "-inf", start=0, num=SCAN_MAX, withscores=True
        ):
            last = f"{score!r}"
            job = self._record(job_id)
            if job is None or (status and job.status.value != status) or (mode and job.mode != mode):
                continue
            jobs.append(job)
            if len(jobs) == limit:
                return Page(jobs, last)
        more = last is not None and self.redis.zrevrangebyscore(key, f"({last}", "-inf", start=0, num=1)
        return Page(jobs, last if more else None)

    def _record(self, job_id: bytes | str) -> Job | None:
        try:
            return self.status.get(job_id.decode() if isinstance(job_id, bytes) else job_id)
        except NotFound:
            return None


def _cursor(raw: str) -> str:
    if not CURSOR.fullmatch(raw):
        raise ValidationError("must be the 'next' value of a previous page", field="after")
    return raw


class Query(TextInput):
    """A route's query, declared once: the view builds it from the query (a bad value is 422 naming its
    parameter), the OpenAPI document shows it. Its text is read as the parameters' is (numbers ASCII
    as JSON writes them: no "1_0")."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # access_token rides in the query too


class ResultQuery(Query):
    presigned: bool = Field(False, description="answer 307 to a presigned S3 URL instead of the bytes")


class JobsQuery(Query):
    """``GET /api/v1/jobs``'s query."""

    # Not nullable: a query has no null; a parameter left out is None.
    status: Status = Field(None, description="only jobs in this status")
    mode: Literal[tuple(registry.modes())] = Field(None, description="only jobs of this mode")  # type: ignore[valid-type]
    limit: int = Field(PAGE_DEFAULT, ge=1, le=PAGE_MAX, description="jobs per page")
    after: Annotated[str, AfterValidator(_cursor)] = Field(
        None,
        description="the `next` of the previous page: jobs submitted before it",
        json_schema_extra={"pattern": f"^{CURSOR.pattern}$"},
    )

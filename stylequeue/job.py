"""The job record: everything the system knows about a job, as Redis stores it.

A job is plain data, and :class:`Job` is its whole record (:meth:`Job.to_json`): S3 keys, the
attempt that fences writes, hand-backs, the retry time. Two smaller shapes are cut from it for
other audiences: the API's view (:mod:`api.views`, what a client needs) and the Kafka message
(:class:`stylequeue.bus.JobMessage`, what a consumer needs to find the record).
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pydantic

from stylequeue.clock import SYSTEM, Clock
from stylequeue.errors import ValidationError


class Status(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


def now_iso() -> str:
    """UTC timestamp with millisecond precision, e.g. ``2026-11-21T23:59:59.123Z``."""
    return iso_after(0)


def iso_after(seconds: float, *, clock: Clock = SYSTEM) -> str:
    """The UTC timestamp ``seconds`` from ``clock``'s now, in :func:`now_iso`'s format."""
    later = datetime.fromtimestamp(clock.now() + seconds, UTC)
    return later.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_s(timestamp: str) -> float:
    """Seconds since the epoch of a :func:`now_iso` timestamp."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def new_job_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Inputs:
    """S3 keys of a job's uploads."""

    content: str
    styles: tuple[str, ...]
    init_image: str | None = None


@dataclass(frozen=True)
class Progress:
    iteration: int = 0
    total: int = 0


@dataclass(frozen=True)
class Resumed:
    """Where an attempt took over from an earlier one's checkpoint rather than starting over."""

    attempt: int  # the attempt that wrote the checkpoint
    iteration: int  # iterations it had done; this attempt's progress continues from the next
    stage: str = ""  # the stage that checkpoint was in, as progress names it ("2/3")


@dataclass(frozen=True)
class JobError:
    code: str
    message: str


@dataclass(frozen=True)
class Job:
    id: str
    mode: str
    params: dict[str, Any]
    inputs: Inputs
    status: Status = Status.QUEUED
    attempt: int = 0
    # Attempts handed back by a stopping consumer (SIGTERM): they do not count against max_attempts.
    releases: int = 0
    # A failed attempt's retry waits until then (exponential backoff); None: no wait.
    retry_at: str | None = None
    progress: Progress = field(default_factory=Progress)
    submitted_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    error: JobError | None = None
    result_key: str | None = None
    snapshots: tuple[int, ...] = ()
    # What the engine reported about itself: device, random_weights (dev networks), etc.
    engine: dict[str, Any] = field(default_factory=dict)
    # Set by the claim of an attempt that resumes from a checkpoint (Gatys); None: from the start.
    resumed_from: Resumed | None = None

    def evolve(self, **changes: Any) -> Job:
        return replace(self, **changes)

    @property
    def counted_attempts(self) -> int:
        """Attempts that count against ``max_attempts``: every claim but the graceful releases."""
        return self.attempt - self.releases

    def to_dict(self) -> dict[str, Any]:
        """The whole record in JSON types (what :meth:`to_json` stores); never a client's answer."""
        data = asdict(self)
        data["status"] = self.status.value
        data["inputs"]["styles"] = list(self.inputs.styles)
        data["snapshots"] = list(self.snapshots)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        try:
            return _RECORD.validate_python(data)
        except pydantic.ValidationError as exc:
            raise ValidationError(f"malformed job record: {exc!r}", field="job") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Job:
        return cls.from_dict(json.loads(text))


# Reads a record back into the nested dataclasses, the status enum and the tuples.
_RECORD = pydantic.TypeAdapter(Job)


def object_keys(job_id: str, attempt: int | None = None) -> dict[str, str]:
    """The S3 key layout of a job, in one place.

    Outputs (``result``, ``snapshot``) live under the attempt that wrote them, present only when
    ``attempt`` is given: a stale attempt that was fenced off can never overwrite a newer
    attempt's files. Inputs and ``params.json`` are the job's own.
    """
    prefix = f"jobs/{job_id}"
    keys = {
        "prefix": prefix,
        "content": f"{prefix}/inputs/content.png",
        "style": f"{prefix}/inputs/style-{{index}}.png",
        "init_image": f"{prefix}/inputs/init.png",
        "params": f"{prefix}/params.json",
    }
    if attempt is not None:
        outputs = f"{prefix}/attempts/{int(attempt)}"
        keys["outputs"] = outputs
        keys["result"] = f"{outputs}/result.png"
        keys["snapshot"] = f"{outputs}/snapshots/{{iteration:06d}}.jpg"
    return keys

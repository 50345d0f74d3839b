"""What clients see of a job: the API's response bodies, declared once as pydantic models.

The Redis record (:class:`stylequeue.job.Job`) holds everything the system needs; a client
needs less. :meth:`JobView.of` cuts the view from the record and leaves out what is the store's
business: S3 keys (``inputs``, ``result_key``: clients follow ``links``), the hand-back count and
the retry time (``releases``, ``retry_at``). ``attempt`` stays: the web UI shows it ("attempt 2")
and ``resumed_from`` numbers attempts the same way. Every model forbids extra fields, so a field
added to the record has to be shown here or listed in :data:`RECORD_ONLY`, never leaked or lost
by accident. The OpenAPI document is generated from these models: each field's description is
its documentation.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from stylequeue.job import Job, Status

API_PREFIX = "/api/v1"
RECORD_ONLY = frozenset({"inputs", "result_key", "releases", "retry_at"})

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Scalar = str | int | float | bool | None


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProgressView(View):
    iteration: int = Field(ge=0, description="steps done so far: Gatys iterations, or the blend's stages")
    total: int = Field(ge=0, description="steps the job takes in all (0 until a consumer reported progress)")


class ErrorView(View):
    code: str = Field(description="what kind of failure: a stylequeue error code, e.g. `not_found`")
    message: str = Field(description="what went wrong, in words")


class ResumedView(View):
    attempt: int = Field(ge=1, description="the earlier attempt whose checkpoint this one took over")
    iteration: int = Field(ge=0, description="iterations that attempt had done; progress goes on from there")
    stage: str = Field(description='the coarse-to-fine stage it was in, e.g. "2/3" (empty: one stage)')


class Links(View):
    """A job's related URLs, relative to the API's host."""

    self: str = Field(description="this job")
    result: str = Field(description="the result PNG (409 until the job succeeded)")
    snapshots: str = Field(description="the list of snapshots")
    zip: str = Field(description="every snapshot, the result and params.json as one ZIP")
    losses: str = Field(description="the loss curve (Gatys; empty for blend)")
    content: str = Field(description="the stored content input (RGB PNG, or the upright RGB JPEG sent)")
    styles: list[str] = Field(description="each stored style input, in order")

    @classmethod
    def of(cls, job: Job) -> Self:
        base = job_url(job.id)
        return cls(
            self=base,
            result=f"{base}/result",
            snapshots=f"{base}/snapshots",
            zip=f"{base}/snapshots.zip",
            losses=f"{base}/losses",
            content=f"{base}/inputs/content",
            styles=[f"{base}/inputs/style-{index}" for index in range(len(job.inputs.styles))],
        )


class JobView(View):
    """A job as ``/api/v1/jobs`` answers it (submit, get, cancel, and each entry of the list)."""

    id: str = Field(description="the job's id (a UUID)")
    mode: str = Field(description="the engine that runs it, one of GET /api/v1/engines' modes")
    status: Status = Field(description="where the job is: queued, running, or one of the three ends")
    params: dict[str, Any] = Field(description="every parameter of the mode, defaults filled in")
    progress: ProgressView = Field(description="how far the running (or last) attempt got")
    attempt: int = Field(
        ge=0,
        description="how many times a consumer has started the job: 0 while it waits for the first, "
        "more after a retry or a consumer handing it back on shutdown",
    )
    submitted_at: Timestamp = Field(description="when the API accepted it (UTC)")
    started_at: Timestamp | None = Field(description="when its latest attempt started (null: not yet)")
    finished_at: Timestamp | None = Field(description="when it ended (null: not yet)")
    error: ErrorView | None = Field(description="why it failed (null unless failed)")
    snapshots: list[int] = Field(
        description="iterations whose snapshots were stored when the job ended (empty while it runs: "
        "links.snapshots lists them live)"
    )
    engine: dict[str, Scalar] = Field(
        description="what the consumer and engine reported about the run: device, random_weights, "
        "model, precision, seed … (empty until it ran)"
    )
    resumed_from: ResumedView | None = Field(
        description="the checkpoint this attempt resumed from (Gatys); null: it started from the beginning"
    )
    links: Links = Field(description="where its result, snapshots, losses and stored inputs are")
    queue_position: int | None = Field(
        ge=0, description="queued jobs of the same mode submitted earlier (null unless queued)"
    )

    @classmethod
    def of(cls, job: Job, queue_position: int | None = None) -> Self:
        """The view of a record; ``queue_position`` comes from the queue, not the record."""
        shown = {name: value for name, value in job.to_dict().items() if name not in RECORD_ONLY}
        return cls.model_validate({**shown, "links": Links.of(job), "queue_position": queue_position})


class JobList(View):
    """One page of ``GET /api/v1/jobs``: the caller's jobs, newest first."""

    jobs: list[JobView] = Field(description="this page's jobs")
    next: str | None = Field(description="the next page's `after` (null: no more)")


class SnapshotLink(View):
    iteration: int = Field(ge=0, description="the iteration the snapshot was taken at")
    url: str = Field(description="its JPEG")


class SnapshotList(View):
    """``GET /api/v1/jobs/{id}/snapshots``: every snapshot kept so far, in order."""

    job_id: str = Field(description="the job's id")
    snapshots: list[SnapshotLink] = Field(description="one entry per snapshot, by iteration")

    @classmethod
    def of(cls, job_id: str, iterations: list[int]) -> Self:
        base = f"{job_url(job_id)}/snapshots"
        return cls(
            job_id=job_id, snapshots=[SnapshotLink(iteration=i, url=f"{base}/{i}") for i in iterations]
        )


def job_url(job_id: str) -> str:
    return f"{API_PREFIX}/jobs/{job_id}"

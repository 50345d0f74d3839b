"""Running jobs: claim, load inputs, run the engine with hooks, store outputs, end the attempt.

Every write to the job record carries the claimed attempt as a fencing token
(:class:`~stylequeue.status.StatusStore`): once a newer attempt has claimed the job, this one's
writes are refused and it stops (:class:`~consumer.failures.Superseded`); its outputs go to S3
under its own attempt number, so they never overwrite the newer attempt's. :meth:`Runner.run`
returns, per job id, whether its record is *resolved* (its offset may be committed); a job that
may not be claimed yet (leased by a live consumer elsewhere, or a retry in backoff) is not, and
:attr:`Runner.deferred` says how long to wait before reading it again.

It is one module of some 460 lines because claiming, running and ending an attempt share the
fencing token and the failure handling; the pure decisions live in :mod:`consumer.failures`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from PIL import Image

from consumer import outputs
from consumer.engines.base import BatchItem, Checkpoint, EngineResult, Hooks, Progress
from consumer.engines.registry import kind, validate_job_params
from consumer.failures import (
    STORE_RETRY_DELAYS_S,
    Failure,
    JobReleased,
    Step,
    Superseded,
    backoff_s,
    classify,
    exhausted_reason,
    next_step,
)
from stylequeue import bus, metrics, reconciler
from stylequeue.bus import JobMessage
from stylequeue.clock import SYSTEM, Clock
from stylequeue.config import KafkaConfig, WorkerConfig
from stylequeue.errors import NotFound
from stylequeue.job import Job, JobError, Status, epoch_s, iso_after
from stylequeue.status import Deferred, StoredCheckpoint

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25  # at most four progress transactions a second per job
# How often a running job asks Redis whether it was cancelled. The engine asks before every
# iteration; a GPU iteration takes milliseconds, and a round trip for each would cost it a few
# percent. A cancellation is still seen within a tenth of a second (and a worker's own stop at once).
CANCEL_POLL_S = 0.1


@dataclass
class Context:
    """Everything a runner talks to, built once by the worker."""

    mode: str
    engine: Any
    store: Any  # stylequeue.status.StatusStore
    storage: Any  # stylequeue.storage.Storage
    producer: Any  # kafka.KafkaProducer
    kafka: KafkaConfig
    worker: WorkerConfig
    engine_info: dict[str, Any] = field(default_factory=dict)


class Control:
    """Set by the worker's main thread, read by the job thread between iterations."""

    def __init__(self) -> None:
        self.release = threading.Event()  # shutdown: hand the running job back


@dataclass
class Prepared:
    """A claimed job with its inputs loaded, ready for the engine."""

    job: Job
    spool: outputs.SnapshotSpool
    hooks: Hooks | None = None
    params: Any = None
    content: Any = None
    styles: list[Any] = field(default_factory=list)
    init_image: Any = None
    resume: Checkpoint | None = None  # where an earlier attempt got to (None: from the start)
    started: float = field(default_factory=time.monotonic)


class ProgressWriter:
    """One attempt's progress and loss points, written at most every ``PROGRESS_INTERVAL_S``.

    A Gatys iteration on a GPU takes milliseconds; a Redis transaction for each one would cost the
    job several percent. Points are buffered and written together, and the last iteration is
    always written at once, so the loss curve stays complete. A refused write (a newer attempt
    owns the job) raises :class:`Superseded`.
    """

    def __init__(self, store: Any, job: Job, *, clock: Clock = SYSTEM) -> None:
        self.store, self.job, self.clock = store, job, clock
        self.points: list[dict[str, float]] = []
        self.latest: tuple[int, int] | None = None  # (iteration, total) not written yet
        self.written_at = float("-inf")

    def add(self, p: Progress) -> None:
        if p.losses:
            self.points.append({"iteration": p.iteration, **p.losses})
        self.latest = (p.iteration, p.total)
        if p.iteration >= p.total or self.clock.monotonic() - self.written_at >= PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.latest is None:
            return
        job = self.job
        if not self.store.update_progress(job.id, job.attempt, *self.latest, points=self.points):
            raise Superseded(f"attempt {job.attempt} of job {job.id} was superseded")
        self.points, self.latest = [], None
        self.written_at = self.clock.monotonic()


class CancelPoll:
    """``requested()`` asked at most every ``CANCEL_POLL_S`` (the first call always asks); once
    true, it stays true."""

    def __init__(self, requested: Callable[[], bool], *, clock: Clock = SYSTEM) -> None:
        self.requested, self.clock = requested, clock
        self.asked_at = float("-inf")
        self.cancelled = False

    def __call__(self) -> bool:
        if not self.cancelled and self.clock.monotonic() - self.asked_at >= CANCEL_POLL_S:
            self.asked_at = self.clock.monotonic()
            self.cancelled = bool(self.requested())
        return self.cancelled


class Runner:
    def __init__(self, ctx: Context, control: Control, *, clock: Clock = SYSTEM) -> None:
        self.ctx = ctx
        self.control = control
        self.clock = clock  # stall detection, the store-retry waits and the retry backoff's time
        # Job id → attempt of each job this runner holds now; the worker renews their leases.
        self.running: dict[str, int] = {}
        # Job id → seconds to wait, for the last run's jobs that could not be claimed yet.
        self.deferred: dict[str, float] = {}
        # When the job thread last showed it is alive (a claim or any engine hook); None: idle.
        self.active_at: float | None = None

    def run(self, jobs: list[JobMessage]) -> dict[str, bool]:
        """Run the jobs of these messages (several only for a batching engine); job id → resolved.

        A message only names the job: its record, claimed in Redis, is what runs.
        """
        self.deferred = {}
        self.running.clear()
        resolved: dict[str, bool] = {}
        ready: list[Prepared] = []
        # A batch's jobs are claimed and loaded, and later stored, side by side: each is a few
        # Redis and S3 round trips, and one after another they cost a batch of 8 ~100 ms.
        steps = outputs.concurrently(partial(self._prepare, job) for job in jobs)
        for job, step in zip(jobs, steps, strict=True):
            if isinstance(step, Prepared):
                ready.append(step)
            else:
                resolved[job.id] = step
        metrics.JOBS_IN_FLIGHT.labels(self.ctx.mode).inc(len(ready))
        try:
            outcomes = self._execute(ready)
            ends = outputs.concurrently(
                partial(self._finalize, p, o) for p, o in zip(ready, outcomes, strict=True)
            )
            resolved.update((p.job.id, done) for p, done in zip(ready, ends, strict=True))
        finally:
            metrics.JOBS_IN_FLIGHT.labels(self.ctx.mode).dec(len(ready))
            for prepared in ready:
                prepared.spool.close()
            self.running.clear()
            self.active_at = None
        return resolved

    def stalled_for(self) -> float:
        """Seconds since the running job last showed a sign of life (0 when none runs)."""
        return 0.0 if self.active_at is None else self.clock.monotonic() - self.active_at

    def _alive(self) -> None:
        self.active_at = self.clock.monotonic()

    def renew_leases(self) -> None:
        """A sign of life for every job this runner holds (called by the polling thread)."""
        for job_id, attempt in dict(self.running).items():  # a copy: the job thread changes it
            if not self.ctx.store.touch(job_id, attempt):
                self.running.pop(job_id, None)  # fenced off: the job thread finds out on its own

    # --- claim and inputs ----------------------------------------------------------------------

    def _prepare(self, message: JobMessage) -> Prepared | bool:
        try:
            job = self.ctx.store.claim(message.id)
        except NotFound:
            return self._orphan(message)
        if job is None:
            log.info("job %s is already %s: skipped", message.id, self._status(message.id))
            return True
        if isinstance(job, Deferred):
            log.info("job %s not taken yet (%s, %.1f s left)", message.id, job.reason, job.wait_s)
            self.deferred[message.id] = job.wait_s
            return False
        log.info("job %s attempt %d claimed", job.id, job.attempt)
        self.running[job.id] = job.attempt
        self._alive()
        metrics.job_started(self.ctx.mode, _age_s(job.submitted_at))
        prepared = Prepared(job, outputs.SnapshotSpool())
        if job.counted_attempts > self.ctx.worker.max_attempts:
            reason = exhausted_reason(job.counted_attempts, self.ctx.worker.max_attempts)
            return self._end_early(prepared, reason)
        try:
            self._load(prepared)
        except Exception as exc:  # bad input fails this job only
            return self._end_early(prepared, exc)
        return prepared

    def _end_early(self, prepared: Prepared, outcome: BaseException | Failure) -> bool:
        try:
            return self._finalize(prepared, outcome)
        finally:
            prepared.spool.close()

    def _load(self, prepared: Prepared) -> None:
        job, inputs = prepared.job, prepared.job.inputs
        extra = [inputs.init_image] if inputs.init_image else []
        content, *rest = outputs.fetch_all(self.ctx.storage, [inputs.content, *inputs.styles, *extra])
        prepared.content = outputs.open_image(content, "content")
        prepared.styles = [outputs.open_image(data, "style") for data in rest[: len(inputs.styles)]]
        if extra:
            prepared.init_image = outputs.open_image(rest[-1], "init_image")
        prepared.params = validate_job_params(job.mode, job.params, len(prepared.styles))
        if job.resumed_from is not None:
            self._load_resume(prepared)
        prepared.hooks = self._hooks(prepared)

    def _load_resume(self, prepared: Prepared) -> None:
        """The checkpoint the claim resumed from, and the snapshots before it into this attempt's
        spool: the earlier attempt never uploaded them (it died, or was retried), and the job's
        S3 copies are its last attempt's."""
        job, store = prepared.job, self.ctx.store
        stored = store.checkpoint(job.id)
        if stored is None:  # the job ended meanwhile (its checkpoint went with it): start over
            log.warning("job %s: its checkpoint is gone; it starts from the beginning", job.id)
            return
        image = Image.frombytes("RGB", stored.size, stored.rgb)
        prepared.resume = Checkpoint(stored.iteration, stored.stage, image)
        for iteration, jpeg in sorted(store.snapshots(job.id).items()):
            prepared.spool.add(iteration, jpeg)
        log.info("job %s resumes at iteration %d (attempt %d's checkpoint)", job.id, stored.iteration,
                 stored.attempt)  # fmt: skip

    def _orphan(self, message: JobMessage) -> bool:
        """A message whose record is gone (expired or never stored): nothing to run or update."""
        log.error("job %s has no record in Redis: dead-lettered", message.id)
        return self._publish_dead_letter(message, "the job's record was not found in Redis")

    def _status(self, job_id: str) -> str:
        try:
            return self.ctx.store.get(job_id).status.value
        except NotFound:
            return "gone"

    # --- hooks (called by the engine on the job thread) ----------------------------------------

    def _hooks(self, prepared: Prepared) -> Hooks:
        job, store = prepared.job, self.ctx.store

        # Real time, not self.clock: a write throttle, which a test's frozen clock would stop.
        writer = ProgressWriter(store, job)
        iterations = kind(job.mode).iterations  # progress counts optimisation iterations

        def on_progress(p: Progress) -> None:
            self._alive()
            writer.add(p)
            if iterations:
                metrics.gatys_iterations(1)

        def on_checkpoint(iteration: int, image: Any, checkpoint: Checkpoint | None) -> None:
            self._alive()
            writer.flush()  # the record's progress is never behind its newest snapshot
            jpeg = outputs.jpeg_bytes(image)
            stored = _stored(job.attempt, checkpoint) if checkpoint is not None else None
            if not store.put_snapshot(job.id, job.attempt, iteration, jpeg, checkpoint=stored):
                raise Superseded(f"attempt {job.attempt} of job {job.id} was superseded")
            prepared.spool.add(iteration, jpeg)

        def on_snapshot(iteration: int, image: Any) -> None:
            on_checkpoint(iteration, image, None)

        asked = CancelPoll(lambda: store.cancel_requested(job.id), clock=self.clock)

        def should_cancel() -> bool:
            self._alive()
            if self.control.release.is_set():
                raise JobReleased(f"job {job.id} released: the worker is stopping")
            return asked()

        return Hooks(
            on_progress=on_progress,
            on_snapshot=on_snapshot,
            should_cancel=should_cancel,
            on_checkpoint=on_checkpoint,
        )

    # --- running -------------------------------------------------------------------------------

    def _execute(self, ready: list[Prepared]) -> list[EngineResult | BaseException]:
        if not ready:
            return []
        if kind(self.ctx.mode).batches and hasattr(self.ctx.engine, "run_batch"):
            return self._execute_batch(ready)
        return [self._execute_one(p) for p in ready]

    def _execute_one(self, p: Prepared) -> EngineResult | BaseException:
        try:
            # Only a job with a checkpoint passes ``resume``: engines that never write one need not take it.
            resume = {"resume": p.resume} if p.resume is not None else {}
            return self.ctx.engine.run(
                p.content, p.styles, p.params, p.hooks, init_image=p.init_image, **resume
            )
        except Exception as exc:  # a bad job never kills the worker
            return exc

    def _execute_batch(self, ready: list[Prepared]) -> list[EngineResult | BaseException]:
        metrics.blend_batch(len(ready))
        items = [BatchItem(p.content, p.styles, p.params, p.hooks) for p in ready]
        try:
            return list(self.ctx.engine.run_batch(items))
        except Exception as exc:
            return [exc] * len(ready)

    # --- ending the attempt ----------------------------------------------------------------------

    def _finalize(self, p: Prepared, outcome: EngineResult | BaseException | Failure) -> bool:
        """Store the outcome, retrying a backing-service outage for a while (every step is
        idempotent for one attempt: the same result key, a fenced terminal write); only then is
        the record left to be read again, which would run the job a second time."""
        for delay in (*STORE_RETRY_DELAYS_S, None):
            try:
                if isinstance(outcome, EngineResult):
                    return self._succeed(p, outcome)
                return self._fail(p, outcome)
            except Exception as exc:  # S3/Redis/Kafka away for a moment
                if delay is None:
                    log.error(
                        "job %s: could not store its outcome (%s); it will be read again", p.job.id, exc
                    )
                    return False
                log.warning(
                    "job %s: storing its outcome failed (%s); retrying in %.1f s", p.job.id, exc, delay
                )
                self._alive()  # waiting on a service is not a hung job
                self.clock.sleep(delay)
        return False

    def _succeed(self, p: Prepared, result: EngineResult) -> bool:
        if "style_cache_hits" in result.meta:  # the blend engine's style-code cache
            meta = result.meta
            metrics.style_cache_lookups(
                meta["style_cache_hits"],
                meta.get("style_cache_misses", 0),
                meta.get("style_cache_shared_hits", 0),
            )
        return self._end(p, Status.SUCCEEDED, result=result.image, meta=result.meta)

    def _fail(self, p: Prepared, outcome: BaseException | Failure) -> bool:
        if isinstance(outcome, Superseded):
            log.warning("%s; its result is dropped", outcome)
            return True
        if isinstance(outcome, JobReleased):
            self.ctx.store.release(p.job.id, p.job.attempt)
            log.info("%s", outcome)
            return False
        failure = outcome if isinstance(outcome, Failure) else classify(outcome)
        step = next_step(failure, p.job.counted_attempts, self.ctx.worker.max_attempts)
        log.warning("job %s attempt %d failed (%s: %s): %s", p.job.id, p.job.attempt, failure.kind.value,
                    failure.message, step.value)  # fmt: skip
        if step is Step.CANCEL:
            return self._end(p, Status.CANCELLED)
        if step is Step.RETRY:
            return self._retry(p)
        if not self._publish_dead_letter(JobMessage.of(p.job), failure.message):
            return False
        metrics.job_dead_lettered(self.ctx.mode)
        return self._end(p, Status.FAILED, error=JobError(failure.code, failure.message))

    def _retry(self, p: Prepared) -> bool:
        """Back to the queue after a backoff: the record becomes QUEUED and the job is published again.

        The wait doubles with each counted attempt (up to the configured cap), so a minute-long
        outage of S3 or the GPU host does not use up every job's attempts while it lasts.
        """
        cfg = self.ctx.worker
        wait = backoff_s(p.job.counted_attempts, cfg.retry_backoff_s, cfg.retry_backoff_max_s)
        retry_at = iso_after(wait, clock=self.clock)
        if not self.ctx.store.requeue(p.job.id, p.job.attempt, retry_at):
            return True  # fenced off: a newer attempt owns the job
        log.info("job %s retries in %.1f s", p.job.id, wait)
        # The message only points at the record, which now says QUEUED and when to retry.
        reconciler.publish(self.ctx.store, self.ctx.producer, self.ctx.kafka, p.job)
        metrics.job_retried(self.ctx.mode)
        return True

    def _publish_dead_letter(self, message: JobMessage, reason: str) -> bool:
        try:
            bus.publish_dead_letter(self.ctx.producer, self.ctx.kafka, message, reason)
            return True
        except Exception:
            log.exception("job %s: dead-letter publish failed; the record will be read again", message.id)
            return False

    def _end(self, p: Prepared, status: Status, *, result=None, error=None, meta=None) -> bool:
        """Outputs to S3 first (side by side), then the compare-and-set terminal write (only then
        is the record committed)."""
        storage, job = self.ctx.storage, p.job
        uploads = [lambda: p.spool.upload(storage, job), lambda: outputs.put_params(storage, job)]
        if result is not None:
            uploads.append(lambda: outputs.put_result(storage, job, result))
        snapshots, _, *stored = outputs.concurrently(uploads)
        result_key = stored[0] if stored else None
        engine = {**self.ctx.engine_info, **_scalars(meta or {})}
        written = self.ctx.store.finish(
            p.job.id,
            p.job.attempt,
            status,
            result_key=result_key,
            error=error,
            snapshots=snapshots,
            engine=engine,
        )
        if written:
            run_s = time.monotonic() - p.started
            metrics.job_finished(self.ctx.mode, status.value, run_s, _age_s(p.job.submitted_at))
            log.info("job %s %s (attempt %d, %.2f s)", p.job.id, status.value, p.job.attempt, run_s)
        else:
            log.warning(
                "job %s: attempt %d was superseded; %s not written", p.job.id, p.job.attempt, status.value
            )
        return True


def _age_s(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    return time.time() - epoch_s(timestamp)


def _stored(attempt: int, checkpoint: Checkpoint) -> StoredCheckpoint:
    """The checkpoint as Redis keeps it: the engine's 8-bit image as raw bytes."""
    return StoredCheckpoint(
        attempt, checkpoint.iteration, checkpoint.stage, checkpoint.image.size, checkpoint.image.tobytes()
    )


def _scalars(meta: dict[str, Any]) -> dict[str, Any]:
    """The engine's report about a run, without nested values (the record stays small)."""
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) or v is None}

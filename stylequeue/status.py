"""The job status store in Redis: records, progress, losses, snapshots, cancel flags.

Every change to a job record is a compare-and-set (WATCH/MULTI on the record's key): a worker's
write goes through only while the record is RUNNING *with the worker's attempt number*. The
attempt is the fencing token: when a consumer dies and its job is claimed again, the claim
increments the attempt, so the old consumer's late writes are refused. Terminal records are never
rewritten.

One module past 400 lines on purpose: every transition is a transaction on the same keys, and
keeping them side by side keeps the fencing rule in one place. Consumer presence is apart
(:mod:`stylequeue.presence`).

Keys (``prefix`` defaults to ``stylequeue:``)::

    job:{id}          the job's JSON (Job.to_dict), TTL job_ttl_s from the last change
    losses:{id}       list of {"iteration", "content", "style", "tv", "total"} JSON entries
    snaps:{id}        hash iteration → JPEG bytes, TTL snapshot_ttl_s
    checkpoint:{id}   hash attempt, iteration, stage, width, height, rgb (raw 8-bit pixels):
                      where a retried attempt resumes (the latest snapshot's, written with it),
                      TTL job_ttl_s, removed when the job ends
    cancel:{id}       set when cancellation of a RUNNING job was asked for
    lease:{id}        the running attempt's number, with a TTL (STYLEQUEUE_JOB_LEASE_S) renewed
                      while it runs: no other consumer takes the job over while it exists
    queue:{mode}      sorted set of QUEUED job ids by submission time (queue position)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis as redis_lib

from stylequeue.clock import SYSTEM, Clock
from stylequeue.config import RedisConfig
from stylequeue.errors import Conflict, NotFound, ValidationError
from stylequeue.job import Job, JobError, Progress, Resumed, Status, epoch_s, now_iso

DEFAULT_PREFIX = "stylequeue:"

Extra = Callable[[Any, Any], None]
Change = Callable[[Job], Job]

LEASED = "leased"  # a running attempt elsewhere still shows signs of life
BACKOFF = "backoff"  # a failed attempt's retry is not due yet


@dataclass(frozen=True)
class Deferred:
    """:meth:`StatusStore.claim`'s answer when the job may not be taken now: try again later."""

    reason: str  # LEASED or BACKOFF
    wait_s: float  # how long until it may be claimed (the lease's or the backoff's time left)
    attempt: int  # the record's attempt when it was refused


@dataclass(frozen=True)
class StoredCheckpoint:
    """A running attempt's latest resumable point, as ``checkpoint:{id}`` keeps it."""

    attempt: int  # the attempt that wrote it
    iteration: int
    stage: str
    size: tuple[int, int]  # (width, height)
    # The engine's optimised image, raw 8-bit RGB: lossless, and written every snapshot, so
    # not PNG (encoding a 2048 px image takes ~0.3 s of the job's time, raw bytes ~10 ms).
    rgb: bytes


@dataclass(frozen=True)
class Carry:
    """What a new attempt keeps of the history before it: everything up to the checkpoint (nothing
    without one). Loss points and snapshots after it are dropped, since the new attempt computes
    those iterations again: the history continues without a gap or a duplicate."""

    resumed: Resumed | None = None
    losses: int = 0  # leading loss points kept
    snapshots: tuple[int, ...] = ()  # snapshot iterations kept
    dropped: tuple[int, ...] = ()  # snapshot iterations removed


def plan_carry(checkpoint: Resumed | None, points: Sequence[int], snapshots: Iterable[int]) -> Carry:
    """The :class:`Carry` for a claim: ``points`` are the loss list's iterations, in list order
    (ascending: one attempt writes in order, and a claim keeps only a prefix)."""
    if checkpoint is None:
        return Carry()
    done = checkpoint.iteration
    losses = next((n for n, iteration in enumerate(points) if iteration > done), len(points))
    ordered = sorted(snapshots)
    return Carry(
        checkpoint, losses, tuple(i for i in ordered if i <= done), tuple(i for i in ordered if i > done)
    )


class StatusStore:
    """Job records and everything a client polls while a job runs."""

    def __init__(
        self, redis: redis_lib.Redis, cfg: RedisConfig, *, prefix: str = DEFAULT_PREFIX, clock: Clock = SYSTEM
    ) -> None:
        self.redis = redis
        self.cfg = cfg
        self.prefix = prefix
        # Decides retry backoffs and queue order; a lease is a Redis TTL, on the server's own time.
        self.clock = clock

    @classmethod
    def from_config(cls, cfg: RedisConfig) -> StatusStore:
        """A store on a client for ``cfg.url`` (bytes in and out: snapshots are binary)."""
        redis = redis_lib.Redis.from_url(
            cfg.url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
        )
        return cls(redis, cfg)

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def ping(self) -> None:
        self.redis.ping()

    # -- records ---------------------------------------------------------------------------

    def create(self, job: Job) -> None:
        if not self.redis.set(self.key("job", job.id), job.to_json(), ex=self.cfg.job_ttl_s, nx=True):
            raise Conflict(f"job {job.id} exists already", field="id")
        if job.status is Status.QUEUED:
            self.redis.zadd(self.key("queue", job.mode), {job.id: self.clock.now()})

    def get(self, job_id: str) -> Job:
        return self._read(self.redis, job_id)

    def discard(self, job: Job) -> None:
        """Remove every trace of ``job`` (undoing a submission whose publish failed)."""
        names = ("job", "losses", "snaps", "checkpoint", "cancel", "lease")
        self.redis.delete(*(self.key(kind, job.id) for kind in names))
        self.redis.zrem(self.key("queue", job.mode), job.id)

    def _fenced_update(self, job_id: str, attempt: int, change: Change | None, extra: Extra) -> bool:
        """Compare-and-set ``change`` on the record if it is RUNNING with ``attempt`` (None: it stays as
        it is), ``extra``'s commands in the same MULTI (see :meth:`_transaction`); False if fenced off."""
        key = self.key("job", job_id)

        def decide(pipe: Any) -> tuple[Extra, Job] | None:
            job = self._read(pipe, job_id)
            if job.status is not Status.RUNNING or job.attempt != attempt:
                return None

            def write(queued: Any, new: Job) -> None:
                if change is not None:
                    queued.set(key, new.to_json(), ex=self.cfg.job_ttl_s)
                extra(queued, new)

            return write, change(job) if change is not None else job

        return self._transaction([key], decide) is not None

    def _transaction(self, keys: list[str], decide: Callable[[Any], Any]) -> Any:
        """WATCH ``keys``, let ``decide(pipe)`` read them, run its commands in one MULTI.

        ``decide`` returns None (nothing to write: None is returned), ``(None, answer)`` (nothing
        to write, ``answer`` is returned) or ``(write, answer)``: ``write(pipe, answer)`` queues
        the commands. A concurrent change to a watched key aborts the MULTI, and redis-py's
        ``transaction`` calls ``run`` again: the decision is made again on the fresh values.
        """

        def run(pipe: Any) -> Any:
            plan = decide(pipe)
            if plan is None or plan[0] is None:
                pipe.unwatch()  # nothing to write: no MULTI/EXEC round trip
                return None if plan is None else plan[1]
            write, answer = plan
            pipe.multi()
            write(pipe, answer)
            return answer

        return self.redis.transaction(run, *keys, value_from_callable=True)

    def _read(self, pipe: Any, job_id: str) -> Job:
        raw = pipe.get(self.key("job", job_id))
        if raw is None:
            raise NotFound(f"no job {job_id!r}", field="job_id")
        return Job.from_json(raw)

    # -- worker transitions ------------------------------------------------------------------

    def claim(self, job_id: str) -> Job | Deferred | None:
        """Start a (new) attempt: a non-terminal record becomes RUNNING with ``attempt + 1``, its
        history kept up to the latest checkpoint (:class:`Carry`; ``resumed_from`` says where).

        Returns the claimed job (its attempt is the fencing token for every later write; it holds the
        lease from now on), None when the job is terminal (cancelled while queued, or already finished),
        or :class:`Deferred` when it may not be taken yet: a RUNNING attempt elsewhere still holds a
        fresh lease (a rebalance moved the message, not the work), or a failed attempt's retry waits
        for its backoff.
        """
        key, lease = self.key("job", job_id), self.key("lease", job_id)

        def decide(pipe: Any) -> tuple[Extra | None, Job | Deferred] | None:
            job = self._read(pipe, job_id)
            if job.status.terminal:
                return None
            wait = self._wait(pipe, job)
            if wait is not None:
                return None, wait
            carry = self._carry(pipe, job_id)
            done = carry.resumed.iteration if carry.resumed else 0
            new = job.evolve(
                status=Status.RUNNING,
                attempt=job.attempt + 1,
                started_at=now_iso(),
                progress=Progress(done, job.progress.total) if carry.resumed else Progress(),
                snapshots=carry.snapshots,
                error=None,
                retry_at=None,
                resumed_from=carry.resumed,
            )
            return self._claim_writes(key, lease, carry), new

        return self._transaction([key, lease], decide)

    def _wait(self, pipe: Any, job: Job) -> Deferred | None:
        """Why ``job`` may not be claimed now, and for how long; None when it may."""
        if job.status is Status.RUNNING:
            left_ms = pipe.pttl(self.key("lease", job.id))
            if left_ms > 0 or left_ms == -1:  # -1: a lease without expiry, which claim never writes
                return Deferred(LEASED, max(left_ms, 0) / 1000, job.attempt)
        elif job.retry_at is not None:
            left_s = epoch_s(job.retry_at) - self.clock.now()
            if left_s > 0:
                return Deferred(BACKOFF, left_s, job.attempt)
        return None

    def _carry(self, pipe: Any, job_id: str) -> Carry:
        """Read what a claim decides on: the checkpoint's place (not its image) and, with one,
        the loss points' and snapshots' iterations."""
        attempt, iteration, stage = pipe.hmget(
            self.key("checkpoint", job_id), "attempt", "iteration", "stage"
        )
        if iteration is None:
            return Carry()
        checkpoint = Resumed(int(attempt), int(iteration), (stage or b"").decode())
        points = [json.loads(raw)["iteration"] for raw in pipe.lrange(self.key("losses", job_id), 0, -1)]
        return plan_carry(checkpoint, points, (int(i) for i in pipe.hkeys(self.key("snaps", job_id))))

    def _claim_writes(self, key: str, lease: str, carry: Carry) -> Extra:
        def write(pipe: Any, job: Job) -> None:
            losses, snaps = self.key("losses", job.id), self.key("snaps", job.id)
            pipe.set(key, job.to_json(), ex=self.cfg.job_ttl_s)
            pipe.set(lease, str(job.attempt), px=self._lease_ms)
            pipe.zrem(self.key("queue", job.mode), job.id)
            if carry.losses:
                pipe.ltrim(losses, 0, carry.losses - 1)
            else:
                pipe.delete(losses)
            if carry.resumed is None:
                pipe.delete(snaps)
            elif carry.dropped:
                pipe.hdel(snaps, *(str(i) for i in carry.dropped))

        return write

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.cfg.lease_s * 1000))

    def touch(self, job_id: str, attempt: int) -> bool:
        """Renew the lease of the running ``attempt`` (a sign of life); False if fenced off."""
        lease = self.key("lease", job_id)
        return self._fenced_update(
            job_id, attempt, None, lambda pipe, _: pipe.set(lease, str(attempt), px=self._lease_ms)
        )

    def release(self, job_id: str, attempt: int) -> bool:
        """Hand a running job back (graceful shutdown): RUNNING → QUEUED if ``attempt`` matches.

        The attempt is not held against the job (``releases`` counts it), and the lease ends
        now, so that another consumer takes the job at once.
        """
        change = lambda job: job.evolve(status=Status.QUEUED, releases=job.releases + 1)  # noqa: E731
        return self._back_to_queue(job_id, attempt, change)

    def requeue(self, job_id: str, attempt: int, retry_at: str) -> bool:
        """A failed ``attempt`` comes back for a retry, not to be claimed before ``retry_at``."""
        change = lambda job: job.evolve(status=Status.QUEUED, retry_at=retry_at)  # noqa: E731
        return self._back_to_queue(job_id, attempt, change)

    def _back_to_queue(self, job_id: str, attempt: int, change: Change) -> bool:
        def extra(pipe: Any, job: Job) -> None:
            pipe.zadd(self.key("queue", job.mode), {job.id: self.clock.now()})
            pipe.delete(self.key("lease", job.id))

        return self._fenced_update(job_id, attempt, change, extra)

    def update_progress(
        self,
        job_id: str,
        attempt: int,
        iteration: int,
        total: int,
        losses: dict[str, float] | None = None,
        *,
        points: Sequence[dict[str, float]] = (),
    ) -> bool:
        """Record progress and loss-curve points; False if fenced off.

        ``losses`` is the point of ``iteration``; ``points`` are earlier ones, each with its own
        ``iteration`` (a writer that batches several iterations into one transaction).
        """
        encoded = [json.dumps(point) for point in points]
        if losses:
            encoded.append(json.dumps({"iteration": int(iteration), **losses}))

        def extra(pipe: Any, job: Job) -> None:
            pipe.set(self.key("lease", job.id), str(attempt), px=self._lease_ms)  # a sign of life
            if encoded:
                key = self.key("losses", job.id)
                pipe.rpush(key, *encoded)
                pipe.expire(key, self.cfg.job_ttl_s)

        change = lambda job: job.evolve(progress=Progress(int(iteration), int(total)))  # noqa: E731
        return self._fenced_update(job_id, attempt, change, extra)

    def put_snapshot(
        self,
        job_id: str,
        attempt: int,
        iteration: int,
        jpeg: bytes,
        *,
        checkpoint: StoredCheckpoint | None = None,
    ) -> bool:
        """Keep a snapshot (JPEG) in Redis for ``snapshot_ttl_s``; False if fenced off.

        A ``checkpoint`` replaces the job's previous one in the same transaction, so a claim
        never sees a checkpoint without the progress and snapshot that go with it.
        """

        def extra(pipe: Any, job: Job) -> None:
            key = self.key("snaps", job.id)
            pipe.hset(key, str(int(iteration)), jpeg)
            pipe.expire(key, self.cfg.snapshot_ttl_s)
            if checkpoint is not None:
                self._put_checkpoint(pipe, job.id, checkpoint)

        def change(job: Job) -> Job:
            return job.evolve(snapshots=tuple(sorted({*job.snapshots, int(iteration)})))

        return self._fenced_update(job_id, attempt, change, extra)

    def _put_checkpoint(self, pipe: Any, job_id: str, checkpoint: StoredCheckpoint) -> None:
        # As long as the record: a job retried after a long backoff still resumes.
        key = self.key("checkpoint", job_id)
        width, height = checkpoint.size
        place = {"attempt": checkpoint.attempt, "iteration": checkpoint.iteration, "stage": checkpoint.stage}
        pipe.hset(key, mapping={**place, "width": width, "height": height, "rgb": checkpoint.rgb})
        pipe.expire(key, self.cfg.job_ttl_s)

    def checkpoint(self, job_id: str) -> StoredCheckpoint | None:
        """The job's latest checkpoint (None: no attempt has written one, or the job ended)."""
        data = self.redis.hgetall(self.key("checkpoint", job_id))
        if not data:
            return None
        size = (int(data[b"width"]), int(data[b"height"]))
        return StoredCheckpoint(
            int(data[b"attempt"]), int(data[b"iteration"]), data[b"stage"].decode(), size, data[b"rgb"]
        )

    def finish(
        self,
        job_id: str,
        attempt: int,
        status: Status,
        *,
        result_key: str | None = None,
        error: JobError | None = None,
        snapshots: Iterable[int] | None = None,
        engine: dict[str, Any] | None = None,
    ) -> bool:
        """End the attempt with a terminal ``status``; False (nothing written) if fenced off."""
        status = Status(status)
        if not status.terminal:
            raise ValidationError(f"{status.value} is not a terminal status", field="status")

        def change(job: Job) -> Job:
            return job.evolve(
                status=status,
                finished_at=now_iso(),
                result_key=result_key if result_key is not None else job.result_key,
                error=error,
                snapshots=tuple(sorted(snapshots)) if snapshots is not None else job.snapshots,
                engine={**job.engine, **(engine or {})},
            )

        def extra(pipe: Any, job: Job) -> None:
            pipe.zrem(self.key("queue", job.mode), job.id)
            # An ended job is never resumed: its checkpoint (an image per job) goes now.
            pipe.delete(self.key("cancel", job.id), self.key("lease", job.id), self.key("checkpoint", job.id))

        return self._fenced_update(job_id, attempt, change, extra)

    # -- cancellation ----------------------------------------------------------------------

    def request_cancel(self, job_id: str) -> Job:
        """Cancel: a QUEUED job becomes CANCELLED now; a RUNNING job gets a flag its worker polls.

        One transaction decides and writes (a retry moving the job between RUNNING and QUEUED
        meanwhile makes it decide again), so a request is never lost. Returns the job as it is
        afterwards. Conflict if the job already succeeded or failed; cancelling a cancelled job
        is a no-op.
        """
        key = self.key("job", job_id)

        def decide(pipe: Any) -> tuple[Extra | None, Job]:
            job = self._read(pipe, job_id)
            if job.status in (Status.SUCCEEDED, Status.FAILED):
                raise Conflict(f"job {job_id} has already {job.status.value}", field="job_id")
            if job.status is Status.QUEUED:
                return self._cancel_queued, job.evolve(status=Status.CANCELLED, finished_at=now_iso())
            if job.status is Status.RUNNING:
                return self._flag_cancel, job
            return None, job

        return self._transaction([key], decide)

    def _cancel_queued(self, pipe: Any, job: Job) -> None:
        pipe.set(self.key("job", job.id), job.to_json(), ex=self.cfg.job_ttl_s)
        pipe.zrem(self.key("queue", job.mode), job.id)
        pipe.delete(self.key("checkpoint", job.id))  # a retry's, never to be resumed now

    def _flag_cancel(self, pipe: Any, job: Job) -> None:
        # The flag outlives a retry's requeue: the next attempt sees it and stops at once.
        pipe.set(self.key("cancel", job.id), b"1", ex=self.cfg.job_ttl_s)

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.key("cancel", job_id)))

    # -- what a client polls ---------------------------------------------------------------

    def snapshot(self, job_id: str, iteration: int) -> bytes:
        data = self.redis.hget(self.key("snaps", job_id), str(int(iteration)))
        if data is None:
            raise NotFound(f"no snapshot at iteration {iteration} of job {job_id!r}", field="iteration")
        return data

    def snapshots(self, job_id: str) -> dict[int, bytes]:
        """Every snapshot still in Redis, iteration → JPEG (a resumed attempt carries them on)."""
        return {int(i): data for i, data in self.redis.hgetall(self.key("snaps", job_id)).items()}

    def snapshot_iterations(self, job_id: str) -> list[int]:
        return sorted(int(i) for i in self.redis.hkeys(self.key("snaps", job_id)))

    def losses(self, job_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.redis.lrange(self.key("losses", job_id), 0, -1)]

    def queue_position(self, job: Job) -> int | None:
        """How many queued jobs of the same mode were submitted before ``job`` (None unless queued)."""
        if job.status is not Status.QUEUED:
            return None
        rank = self.redis.zrank(self.key("queue", job.mode), job.id)
        return None if rank is None else int(rank)

    def queued_count(self, mode: str) -> int:
        return int(self.redis.zcard(self.key("queue", mode)))

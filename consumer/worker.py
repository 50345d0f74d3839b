"""The consumer worker: one process, one mode, one engine, one member of the mode's group.

The main thread owns the Kafka consumer: it takes records, hands the jobs to a job thread, and
keeps polling with its partitions paused while they run (:mod:`consumer.membership`), then
commits each record's offset only after its job's terminal state is stored
(:mod:`consumer.batching`). A side thread reports the engine's availability to Redis.

Signals: the first SIGTERM/SIGINT stops taking jobs and lets the current one finish for up to
``drain_s`` seconds, then releases it back to the queue; a second one releases it at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError
from redis.exceptions import RedisError

from consumer.batching import Taken, batch_limit, group_duplicates, plan_commits
from consumer.membership import Membership
from consumer.outage import Outage
from consumer.runner import Context, Control, Runner
from stylequeue import metrics
from stylequeue.bus import JobMessage
from stylequeue.clock import SYSTEM, Clock
from stylequeue.errors import ValidationError
from stylequeue.presence import Presence

log = logging.getLogger(__name__)

TAKE_TIMEOUT_MS = 500
LEASE_RENEWALS = 4  # renewals per lease period: one lost renewal never lets the lease lapse
MIN_HOLD_S = 0.2  # a deferred record is not read again sooner (no busy loop on Redis)
MAX_HOLD_S = 5.0  # nor later: a lease given up early (the job ended) is noticed by then
REPORT_INTERVAL_S = 5.0
DRAIN_S = 20.0
EXIT_STALLED = 70  # EX_SOFTWARE: a supervisor (compose restart policy) starts a fresh consumer


def exit_process() -> None:
    """End the process at once: a hung job thread cannot be stopped any other way."""
    logging.shutdown()
    os._exit(EXIT_STALLED)


@dataclass(frozen=True)
class WorkerOptions:
    consumer_id: str
    drain_s: float = DRAIN_S
    report_interval_s: float = REPORT_INTERVAL_S
    on_stall: Callable[[], None] = exit_process
    clock: Clock = SYSTEM  # the drain deadline, lease renewals, stalls, retry backoffs


class Worker:
    """Runs jobs of ``ctx.mode`` from the group until asked to stop."""

    def __init__(self, ctx: Context, membership: Membership, options: WorkerOptions) -> None:
        self.ctx = ctx
        self.membership = membership
        self.options = options
        self.control = Control()
        self.runner = Runner(ctx, self.control, clock=options.clock)
        self.stopping = threading.Event()
        self._drain_deadline: float | None = None
        self._renewed_at = 0.0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"job-{ctx.mode}")
        self._limit = batch_limit(ctx.mode, ctx.worker.blend_batch)
        self._outage = Outage(f"consumer {options.consumer_id}")

    # --- lifecycle -------------------------------------------------------------------------------

    def run(self) -> int:
        """Take and run jobs until :meth:`stop`; leaves the group on the way out."""
        reporter = threading.Thread(target=self._report_loop, name="engine-report", daemon=True)
        reporter.start()
        log.info("consumer %s serving %s (batch %d)", self.options.consumer_id, self.ctx.mode, self._limit)
        try:
            while not self.stopping.is_set():
                self._cycle_through_outages()
        finally:
            self.membership.close()
            self._executor.shutdown(wait=True)
            self.stopping.set()
            metrics.consumer_stopped(self.ctx.mode, self.options.consumer_id)
            log.info("consumer %s stopped", self.options.consumer_id)
        return 0

    def stop(self) -> None:
        """First call: take no more jobs, drain the current one; second: release it now."""
        if self.stopping.is_set():
            self.control.release.set()
            return
        self._drain_deadline = self.options.clock.monotonic() + self.options.drain_s
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())

    # --- one pass: take, run, commit ----------------------------------------------------------

    def _cycle_through_outages(self) -> None:
        """One :meth:`cycle`; a broker or Redis that is away (a restart, a network blip) is waited
        out with backoff instead of ending the consumer: kafka-python reconnects and rejoins the
        group by itself, and records not yet resolved are read again."""
        failures = self._outage.failures
        try:
            self.cycle()
        except (KafkaError, RedisError, OSError) as exc:
            self.stopping.wait(self._outage.failed(exc))
        else:
            if self._outage.failures == failures:  # the pass met no outage (``_run`` notes its own)
                self._outage.succeeded()

    def cycle(self) -> None:
        self._beat()
        records = self.membership.take(self._limit, TAKE_TIMEOUT_MS)
        if not records:
            return
        taken = [self._taken(record) for record in records]
        resolved = self._run(taken)
        plan = plan_commits(taken, resolved, self.membership.epochs)
        self.membership.commit(plan.commits)
        self.membership.seek(plan.rewinds)
        self._hold_deferred(taken, plan.rewinds)

    def _hold_deferred(self, taken: list[Taken], rewinds: dict[TopicPartition, int]) -> None:
        """Take nothing until the first record that waits for a lease or a backoff may be claimed.

        Never a sleep: the loop keeps polling (group membership). Every partition pauses, not only
        the waiting ones (see :meth:`Membership.hold_all`), so the hold is capped short: a lease
        given up early (the job ended) is noticed soon, and other jobs wait at most ``MAX_HOLD_S``.
        """
        waits: dict[TopicPartition, float] = {}
        for record in taken:
            wait_s = self.runner.deferred.get(record.job_id or "")
            if wait_s is not None and record.tp in rewinds:
                waits[record.tp] = min(wait_s, waits.get(record.tp, wait_s))
        if waits:
            wait_s = min(waits.values())
            self.membership.hold_all(min(max(wait_s, MIN_HOLD_S), MAX_HOLD_S), rewinds)

    def _taken(self, record: Any) -> Taken:
        tp = TopicPartition(record.topic, record.partition)
        job_id = None
        try:
            job_id = JobMessage.decode(record.value).id
        except ValidationError as exc:  # not JSON, not a job, or a version this consumer does not know
            log.error("undecodable message at %s[%d]@%d: %s", tp.topic, tp.partition, record.offset, exc)
        return Taken(tp, record.offset, self.membership.epochs.get(tp, -1), record.value, job_id)

    def _run(self, taken: list[Taken]) -> set[tuple[TopicPartition, int]]:
        """Run the taken records' jobs on the job thread, polling meanwhile; the resolved records."""
        groups = group_duplicates(taken)
        jobs = [JobMessage.decode(g[0].value) for g in groups if g[0].job_id is not None]
        future = self._executor.submit(self.runner.run, jobs)
        self.membership.keep_alive(future, self._tick)
        try:
            outcome = future.result()
        except (RedisError, OSError) as exc:  # Redis (or S3) away: read the records again after a wait
            outcome = {}
            self.stopping.wait(self._outage.failed(exc))
        except Exception:  # a bug in the runner: read the records again (attempts stay bounded)
            log.exception("running %d job(s) failed unexpectedly", len(jobs))
            outcome = {}
        resolved = set()
        for group in groups:
            head = group[0]
            done = outcome.get(head.job_id, False) if head.job_id else self._dead_letter_raw(head)
            if done:
                resolved.update((r.tp, r.offset) for r in group)
        return resolved

    def _tick(self) -> None:
        """Between keep-alive polls while jobs run: liveness, drain deadline, stall, lease renewal."""
        self._beat()
        self._drained()
        if self._stalled():
            return
        self._renew_leases()

    def _stalled(self) -> bool:
        """A job thread silent for ``stall_s`` is hung (a deadlocked engine, an S3 read that never
        returns): renewing its lease would keep the job RUNNING for ever, so the consumer ends
        itself; its partitions and, once the lease lapses, its job move to another consumer."""
        silent = self.runner.stalled_for()
        if silent <= self.ctx.worker.stall_s:
            return False
        log.critical("job thread silent for %.0f s (STYLEQUEUE_JOB_STALL_S): exiting", silent)
        metrics.consumer_stopped(self.ctx.mode, self.options.consumer_id)
        self.options.on_stall()
        return True

    def _beat(self) -> None:
        """Liveness metric: the poll loop turned (also while a long job runs)."""
        metrics.consumer_heartbeat(self.ctx.mode, self.options.consumer_id)

    def _drained(self) -> None:
        """Past the drain deadline, ask the running job to hand itself back."""
        if self._drain_deadline is not None and self.options.clock.monotonic() > self._drain_deadline:
            self.control.release.set()

    def _renew_leases(self) -> None:
        """Keep the running jobs' leases fresh (a few times per lease), whatever the engine does.

        Progress writes renew them too, but a blend batch or a slow Gatys iteration may write
        nothing for a while; this thread polls Kafka, so a lease lives exactly as long as the
        group membership that took the job.
        """
        now = self.options.clock.monotonic()
        if now - self._renewed_at < self.ctx.store.cfg.lease_s / LEASE_RENEWALS:
            return
        self._renewed_at = now
        try:
            self.runner.renew_leases()
        except Exception as exc:  # Redis away for a moment: progress writes or the next turn renew it
            log.warning("lease renewal failed: %s", exc)

    def _dead_letter_raw(self, record: Taken) -> bool:
        """A message that is not a job (or of an unknown version) goes to the dead-letter topic as it was."""
        try:
            future = self.ctx.producer.send(self.ctx.kafka.dead_letter_topic, value=record.value)
            future.get(timeout=15)
            return True
        except Exception:
            log.exception("could not dead-letter the undecodable message")
            return False

    # --- engine availability reports ---------------------------------------------------------

    def _report_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.report()
            except Exception as exc:  # Redis away for a moment: the next report will do
                log.warning("engine report failed: %s", exc)
            self.stopping.wait(self.options.report_interval_s)

    @cached_property
    def presence(self) -> Presence:
        """Where this consumer says what it serves: the job store's Redis, apart from the records."""
        return Presence(self.ctx.store.redis, prefix=self.ctx.store.prefix, clock=self.options.clock)

    def report(self) -> None:
        ttl = max(3, int(self.options.report_interval_s * 3))
        self.presence.report(self.ctx.mode, self.options.consumer_id, self.ctx.engine_info, ttl)


def engine_info(engine: Any) -> dict[str, Any]:
    """What a consumer reports about its engine (``/api/v1/engines``, job records)."""
    availability = engine.availability()
    return {
        "available": bool(availability.ok),
        "reason": availability.reason if not availability.ok else "",
        "random_weights": bool(availability.random_weights),
        "model": availability.model,
        "device": str(getattr(engine, "device", "") or ""),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }

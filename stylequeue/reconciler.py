"""The reconciler: Redis is the truth, Kafka messages are pointers that can be re-created.

A job is accepted once its record is in Redis; its Kafka message only tells a consumer where to
look. Messages get lost — the local stack's broker keeps them in memory, an API worker can die
between writing the record and publishing — so every publisher notes *where* the message went
(``outbox``: job id → topic, partition, offset), and one reconciler at a time (a Redis lock with a
TTL) compares the non-terminal records with the broker:

* a QUEUED record with no outbox entry, older than ``grace_s``: never published → publish;
* an outbox entry whose message the broker no longer has (topic gone, log end at or before its
  offset) or whose partition the group already committed past while the job is still not done
  (and no consumer holds its lease) → publish again;
* an outbox entry of a terminal or vanished record → forget it.

Publishing twice is harmless: claims are fenced by attempt, a terminal record is skipped, and a
job is re-published at most once per ``grace_s``. It also re-creates the topics (a restarted
in-memory broker has none) and looks at S3 job folders that no record owns: one with its
``params.json`` is a job whose record Redis lost (a Redis without persistence, restarted), and its
record is rebuilt from S3 (succeeded if an attempt stored a result, else queued and published
again); one without, older than ``orphan_age_s``, is what an API worker left when it died half-way
through a submission, and is removed. :func:`plan` is the pure decision; the rest is I/O.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any

from stylequeue import bus
from stylequeue.clock import SYSTEM, Clock
from stylequeue.config import KafkaConfig
from stylequeue.errors import Conflict, NotFound
from stylequeue.job import Inputs, Job, Status, epoch_s, now_iso, object_keys
from stylequeue.lag import partition_offsets

log = logging.getLogger(__name__)

LOCK_KEY = "reconciler"
# Set by the first S3 sweep and kept without a TTL: a Redis that comes back without it lost its
# data, and the next pass sweeps at once instead of waiting for the sweep interval.
SWEPT_KEY = "reconciler:swept"
VERIFY_AGAIN_S = 60.0  # a message seen in place is looked at again this much later
OUTBOX_KEY = "outbox"


@dataclass(frozen=True)
class Published:
    """Where a job's latest message went, and when."""

    topic: str
    partition: int
    offset: int
    at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Published:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class Broker:
    """What the broker says about one partition: its log end, the group's committed offset, and
    whether the record at the job's offset is still the job's (None: not looked at). After a
    broker lost its data, new messages reuse the old offsets, so an offset inside the log proves
    nothing until its record's key is checked."""

    exists: bool
    end: int | None = None
    committed: int | None = None
    holds_job: bool | None = None


@dataclass(frozen=True)
class Decision:
    action: str  # "publish", "forget" or "leave"
    reason: str = ""


LEAVE = Decision("leave")


def plan(job: Job | None, published: Published | None, broker: Broker | None, *, leased: bool,
         now: float, grace_s: float) -> Decision:  # fmt: skip
    """What to do about one job: the whole policy, with no I/O."""
    if job is None or job.status.terminal:
        return Decision("forget", "terminal or gone") if published is not None else LEAVE
    if leased:  # a live consumer runs it: its message is its business
        return LEAVE
    if published is None:
        if job.status is Status.QUEUED and now - epoch_s(job.submitted_at) > grace_s:
            return Decision("publish", "queued but never published")
        return LEAVE
    if now - published.at <= grace_s:  # just published: give the broker and the group time
        return LEAVE
    if broker is None or not broker.exists:
        return Decision("publish", f"topic {published.topic} is gone")
    if broker.end is not None and broker.end <= published.offset:
        return Decision("publish", f"the broker lost offset {published.offset} of {published.topic}")
    if broker.committed is not None and broker.committed > published.offset:
        return Decision("publish", f"consumed past offset {published.offset} but not done")
    if broker.holds_job is False:
        return Decision(
            "publish", f"offset {published.offset} of {published.topic} now holds another message"
        )
    return LEAVE


# --- the outbox, written by every publisher ---------------------------------------------------


def publish(store: Any, producer: Any, cfg: KafkaConfig, job: Job) -> Any:
    """Publish ``job`` and note it in the outbox; the RecordMetadata. The one way to publish a job."""
    metadata = bus.publish(producer, cfg, job)
    entry = Published(metadata.topic, metadata.partition, metadata.offset, store.clock.now())
    try:
        store.redis.hset(f"{store.prefix}{OUTBOX_KEY}", job.id, entry.to_json())
    except Exception as exc:  # the message is out; without the note the reconciler republishes once
        log.warning("job %s: published but not noted in the outbox (%s)", job.id, exc)
    return metadata


# --- the loop ---------------------------------------------------------------------------------


class Reconciler:
    """One pass at a time (:meth:`run_once`), only while holding the leader lock."""

    def __init__(self, store: Any, storage: Any, producer: Any, kafka: KafkaConfig, modes: list[str], *,
                 grace_s: float = 15.0, orphan_age_s: float = 3600.0, lock_ttl_s: float = 30.0,
                 sweep_interval_s: float = 60.0, name: str | None = None, clock: Clock = SYSTEM) -> None:  # fmt: skip
        self.store, self.storage, self.producer, self.kafka = store, storage, producer, kafka
        self.modes = modes
        self.grace_s, self.orphan_age_s, self.lock_ttl_s = grace_s, orphan_age_s, lock_ttl_s
        self.sweep_interval_s = sweep_interval_s
        self._swept_at: float | None = None  # monotonic time of this process's last S3 sweep
        self.name = name or f"{socket.gethostname()}-{time.monotonic_ns()}"
        self.clock = clock  # grace and orphan ages; the leader lock is a Redis TTL (real time)
        self.stats = {"published": 0, "forgotten": 0, "swept": 0, "rebuilt": 0}
        # Job id → (publication, when its record was last seen at its offset): a backlog of
        # thousands of queued jobs is not fetched record by record on every pass.
        self._verified: dict[str, tuple[Published, float]] = {}

    def _key(self, name: str) -> str:
        return f"{self.store.prefix}{name}"

    def lead(self) -> bool:
        """Take or keep the leader lock (SET NX with a TTL, renewed by its holder)."""
        redis, key, ttl_ms = self.store.redis, self._key(LOCK_KEY), int(self.lock_ttl_s * 1000)
        if redis.set(key, self.name, nx=True, px=ttl_ms):
            return True
        if redis.get(key) == self.name.encode():
            redis.pexpire(key, ttl_ms)
            return True
        return False

    def run_once(self) -> dict[str, int]:
        """One reconciliation pass if this process leads; counts of what it did."""
        if not self.lead():
            return {}
        self.stats = dict.fromkeys(self.stats, 0)
        bus.ensure_topics(self.kafka, self.modes)
        with closing(BrokerView(self.kafka, self.modes)) as broker:
            for job_id in self._candidates():
                self._reconcile(job_id, broker)
        if self._sweep_due():
            self._sweep()
        return dict(self.stats)

    def _sweep_due(self) -> bool:
        """The S3 sweep lists the whole bucket, so it runs every ``sweep_interval_s``, not every
        pass; at once when this process has not swept yet or Redis lost its data (the marker)."""
        due = self._swept_at is None or self.clock.monotonic() - self._swept_at >= self.sweep_interval_s
        return due or not self.store.redis.exists(self._key(SWEPT_KEY))

    def _candidates(self) -> set[str]:
        """Every job that may need a message: queued ones, and everything in the outbox."""
        redis = self.store.redis
        ids = {raw.decode() for raw in redis.hkeys(self._key(OUTBOX_KEY))}
        for mode in self.modes:
            ids.update(raw.decode() for raw in redis.zrange(self.store.key("queue", mode), 0, -1))
        return ids

    def _reconcile(self, job_id: str, broker: BrokerView) -> None:
        redis = self.store.redis
        raw = redis.hget(self._key(OUTBOX_KEY), job_id)
        published = Published.from_json(raw) if raw is not None else None
        try:
            job = self.store.get(job_id)
        except NotFound:  # the record expired or was never completed (a Redis error ends the pass)
            job = None
        leased = bool(redis.exists(self.store.key("lease", job_id)))
        view = None
        if published is not None and job is not None:
            checked_at = self._verified.get(job_id, (None, 0.0))
            check = checked_at[0] != published or self.clock.monotonic() - checked_at[1] > VERIFY_AGAIN_S
            view = broker.partition(published, job_id, check=check)
            if view.holds_job:
                self._verified[job_id] = (published, self.clock.monotonic())
        decision = plan(job, published, view, leased=leased, now=self.clock.now(), grace_s=self.grace_s)
        if decision.action != "leave":
            self._verified.pop(job_id, None)
        if decision.action == "forget":
            redis.hdel(self._key(OUTBOX_KEY), job_id)
            self.stats["forgotten"] += 1
        elif decision.action == "publish":
            log.warning("reconciler: job %s: %s; publishing it again", job_id, decision.reason)
            publish(self.store, self.producer, self.kafka, job)
            self.stats["published"] += 1

    def _sweep(self) -> None:
        """S3 job folders no Redis record owns: rebuild the record (Redis lost it) or, for a
        submission that never got as far as its ``params.json``, remove the folder once old."""
        now = self.clock.now()
        for job_id, (modified, keys) in self.storage.job_folders().items():
            if self.store.redis.exists(self.store.key("job", job_id)):
                continue
            if object_keys(job_id)["params"] in keys:
                self._rebuild(job_id, keys)
            elif now - modified >= self.orphan_age_s:
                self.storage.delete_prefix(f"jobs/{job_id}/")
                self.stats["swept"] += 1
                log.info("reconciler: removed S3 inputs of job %s, which has no record", job_id)
        self._swept_at = self.clock.monotonic()
        self.store.redis.set(self._key(SWEPT_KEY), now)

    def _rebuild(self, job_id: str, keys: list[str]) -> None:
        """The record of a job from its S3 folder; queued again unless an attempt left a result."""
        job = rebuilt_job(job_id, json.loads(self.storage.get(object_keys(job_id)["params"])), keys)
        try:
            self.store.create(job)
        except Conflict as exc:  # it came back meanwhile (the API or a consumer wrote it)
            log.info("reconciler: job %s not rebuilt (%s)", job_id, exc)
            return
        log.warning(
            "reconciler: job %s had no record in Redis: rebuilt from S3 as %s", job_id, job.status.value
        )
        self.stats["rebuilt"] += 1
        if job.status is Status.QUEUED:
            publish(self.store, self.producer, self.kafka, job)
            self.stats["published"] += 1


def rebuilt_job(job_id: str, stored: dict[str, Any], keys: list[str]) -> Job:
    """A record from a job's ``params.json`` and the keys of its S3 folder (pure).

    Inputs are the layout's; a ``result.png`` under any attempt means it succeeded (the newest
    attempt's counts); otherwise it is queued from scratch. What only Redis knew — progress,
    losses, a cancellation asked for while it ran — is gone with it.
    """
    layout = object_keys(job_id)
    styles = sorted(k for k in keys if k.startswith(f"{layout['prefix']}/inputs/style-"))
    init = layout["init_image"] if layout["init_image"] in keys else None
    inputs = Inputs(layout["content"], tuple(styles), init)
    job = Job(id=job_id, mode=str(stored["mode"]), params=dict(stored["params"]), inputs=inputs,
              submitted_at=str(stored.get("submitted_at") or now_iso()))  # fmt: skip
    results = sorted(
        (int(k.split("/")[3]), k) for k in keys if k.endswith("/result.png") and "/attempts/" in k
    )
    if not results:
        return job
    attempt, key = results[-1]
    return job.evolve(status=Status.SUCCEEDED, attempt=attempt, result_key=key, finished_at=now_iso(),
                      engine=dict(stored.get("engine") or {}))  # fmt: skip


class BrokerView:
    """Log ends and the groups' committed offsets of every job topic, read once per pass, and the
    record at a job's offset when that is what decides."""

    def __init__(self, cfg: KafkaConfig, modes: list[str]) -> None:
        self._admin = bus.make_admin(cfg, client_id="stylequeue-reconciler")
        self._reader: Any = None
        self._cfg = cfg
        self.partitions: dict[str, set[int]] = {}
        # Keyed by TopicPartition, a named tuple: ``(topic, partition)`` finds an entry.
        self.ends: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}
        for mode in modes:
            topic = bus.topic_for(cfg, mode)
            parts, ends, committed = partition_offsets(self._admin, bus.group_for(cfg, mode), topic)
            self.partitions[topic] = {tp.partition for tp in parts}
            self.ends.update(ends)
            self.committed.update(committed)

    def partition(self, published: Published, job_id: str, *, check: bool = True) -> Broker:
        if published.partition not in self.partitions.get(published.topic, set()):
            return Broker(exists=False)
        key = (published.topic, published.partition)
        end, committed = self.ends.get(key), self.committed.get(key)
        pending = (end is None or end > published.offset) and (
            committed is None or committed <= published.offset
        )
        holds = self._holds(published, job_id) if pending and check else None
        return Broker(True, end, committed, holds)

    def _holds(self, published: Published, job_id: str) -> bool:
        from kafka import KafkaConsumer, TopicPartition

        if self._reader is None:
            self._reader = KafkaConsumer(bootstrap_servers=bus._servers(self._cfg), enable_auto_commit=False,
                                         client_id="stylequeue-reconciler-reader")  # fmt: skip
        tp = TopicPartition(published.topic, published.partition)
        self._reader.assign([tp])
        self._reader.seek(tp, published.offset)
        records = self._reader.poll(timeout_ms=2000, max_records=1).get(tp, [])
        return bool(records) and records[0].offset == published.offset and records[0].key == job_id.encode()

    def close(self) -> None:
        self._admin.close()
        if self._reader is not None:
            self._reader.close()

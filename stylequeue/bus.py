"""The message bus: Kafka topics, producer and consumers (kafka-python).

One job topic per mode (``topic_prefix + mode``), so that fast blend jobs never wait behind
long Gatys jobs, plus one dead-letter topic. A message is a pointer to the Redis record
(:class:`JobMessage`: a version, the job's id and mode), keyed by job id. A job's partition is
the one with the least backlog (:mod:`stylequeue.placement`; ``STYLEQUEUE_PLACEMENT=key`` hashes
the id instead), so idle consumers get the next jobs. The producer waits for all in-sync
replicas (``acks=all``) and :func:`publish` blocks until the broker acknowledged: the API answers
202 only then.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import closing
from typing import Any, Literal

import pydantic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from kafka.errors import KafkaError, TopicAlreadyExistsError

from stylequeue.config import KafkaConfig
from stylequeue.errors import ServiceUnavailable, ValidationError
from stylequeue.job import Job, now_iso

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 15.0
# How long the broker may hold a consumer's fetch when it has no new records. Kafka answers a
# held fetch as soon as records arrive; Tansu (the local stack's broker) does not, it answers when
# the wait is over: a job published during kafka-python's default 500 ms wait sat there ~110 ms
# (p50, measured; 10 ms at a 100 ms wait, 4.6 ms at 25). A short wait costs an idle consumer about
# 1000/FETCH_MAX_WAIT_MS empty fetches a second, which is nothing.
FETCH_MAX_WAIT_MS = 20

# The message's schema version. A change of its shape gets a new number; a consumer refuses
# every version it does not know, the producer writes only this one.
MESSAGE_VERSION = 1


class JobMessage(pydantic.BaseModel):
    """A job topic's message: what a consumer needs to find the job's record, nothing more.

    The record in Redis is the truth (status, attempt, inputs, retry time) and the consumer's claim
    reads it and fences by its attempt, so the message carries only the id (the claim's key) and
    the mode (the topic, for a dead letter). A pydantic model rather than a dataclass: the
    consumer decodes whatever bytes are on the topic, and one validation call turns "not JSON",
    "not an object", a missing id and an unknown version into one error naming the field.
    """

    # Frozen like the record; fields another version of this schema adds are ignored, a change
    # of meaning needs a new version.
    model_config = pydantic.ConfigDict(frozen=True, extra="ignore")

    v: Literal[MESSAGE_VERSION]  # required: a message without one is of no schema this consumer knows
    id: str = pydantic.Field(min_length=1)
    mode: str = pydantic.Field(min_length=1)

    @classmethod
    def of(cls, job: Job) -> JobMessage:
        return cls(v=MESSAGE_VERSION, id=job.id, mode=job.mode)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, value: bytes) -> JobMessage:
        """The message in ``value``; ValidationError naming the bad field (``message``: the whole)."""
        try:
            return cls.model_validate_json(value)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            name = ".".join(str(part) for part in error["loc"]) or "message"
            got = f"; got {error['input']!r:.80}" if error["loc"] and error["type"] != "missing" else ""
            reason = f"not a version {MESSAGE_VERSION} job message: {name}: {error['msg']}{got}"
            raise ValidationError(reason, field=name) from exc


class DeadLetterNote(pydantic.BaseModel):
    reason: str  # why the job was given up
    at: str  # when (UTC, :func:`stylequeue.job.now_iso`)
    topic: str  # the job topic it came from


class DeadLetter(JobMessage):
    """A dead-letter topic's message: the job's message plus why it ended there."""

    dead_letter: DeadLetterNote


def _servers(cfg: KafkaConfig) -> list[str]:
    return [s.strip() for s in cfg.bootstrap.split(",") if s.strip()]


def topic_for(cfg: KafkaConfig, mode: str) -> str:
    return f"{cfg.topic_prefix}{mode}"


def group_for(cfg: KafkaConfig, mode: str) -> str:
    return f"{cfg.group_prefix}{mode}"


def make_producer(cfg: KafkaConfig, **overrides: Any) -> KafkaProducer:
    """A producer that counts a message as sent once every in-sync replica has it."""
    options: dict[str, Any] = {
        "bootstrap_servers": _servers(cfg),
        "acks": "all",
        "linger_ms": 0,
        # Bounded waits: a submission must fail (503) in seconds, not hang for a minute.
        "max_block_ms": 10_000,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": int(PUBLISH_TIMEOUT_S * 1000),
        "bootstrap_timeout_ms": 10_000,
        "client_id": "stylequeue-api",
        # Not idempotent: its producer id lives in the broker, and a broker that lost its state (the
        # local stack's in-memory one, restarted) answers every later send with an error for good.
        # A duplicate message is harmless here (claims are fenced, terminal records skipped).
        "enable_idempotence": False,
        # Topics are made by ensure_topics with their partition count, never by a send to a topic
        # that a restarted broker lost (the broker's default count would strand jobs on
        # partitions no consumer was assigned); until the reconciler re-creates them, 503.
        "allow_auto_create_topics": False,
        **overrides,
    }
    try:
        if cfg.placement == "backlog":  # job messages go where consumers are free (stylequeue.placement)
            from stylequeue import placement

            placer = placement.Placer(placement.kafka_lag_source(cfg))
            return placement.BacklogProducer(placer, cfg.topic_prefix, **options)
        return KafkaProducer(**options)
    except KafkaError as exc:
        raise ServiceUnavailable(f"cannot reach the Kafka broker at {cfg.bootstrap}: {exc}") from exc


def make_admin(
    cfg: KafkaConfig, *, client_id: str = "stylequeue-admin", timeout_ms: int = 10_000
) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=_servers(cfg),
        client_id=client_id,
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


def ensure_topics(cfg: KafkaConfig, modes: Iterable[str]) -> list[str]:
    """Create the job topic of each mode and the dead-letter topic unless they exist (idempotent).

    New topics get ``cfg.partitions`` partitions; existing ones are left as they are (a logged
    warning says when they have fewer). Returns the topic names.
    """
    wanted = [topic_for(cfg, mode) for mode in modes] + [cfg.dead_letter_topic]
    with closing(make_admin(cfg)) as admin:
        existing = set(admin.list_topics())  # one listing, not one per wanted topic
        missing = [t for t in wanted if t not in existing]
        if missing:
            spec = {"num_partitions": cfg.partitions, "replication_factor": cfg.replication}
            try:
                admin.create_topics({t: dict(spec) for t in missing}, wait_for_metadata=True)
                log.info("created topics %s with %d partitions", missing, cfg.partitions)
            except TopicAlreadyExistsError:
                log.info("topics %s were created concurrently", missing)
        for topic in admin.describe_topics(wanted):
            count = len(topic.get("partitions") or ())
            if count < cfg.partitions:
                log.warning(
                    "topic %s has %d partitions, fewer than the configured %d",
                    topic["name"],
                    count,
                    cfg.partitions,
                )
    return wanted


def _send(producer: KafkaProducer, topic: str, key: str, value: bytes) -> Any:
    try:
        return producer.send(topic, key=key.encode(), value=value).get(timeout=PUBLISH_TIMEOUT_S)
    except KafkaError as exc:
        raise ServiceUnavailable(f"the message broker did not accept the job: {exc}", field=None) from exc


def publish(producer: KafkaProducer, cfg: KafkaConfig, job: Job) -> Any:
    """Put ``job``'s message on its mode's topic; the broker's RecordMetadata once acknowledged."""
    return _send(producer, topic_for(cfg, job.mode), job.id, JobMessage.of(job).encode())


def publish_dead_letter(producer: KafkaProducer, cfg: KafkaConfig, message: JobMessage, reason: str) -> Any:
    """Put the job's message on the dead-letter topic with why and when (a :class:`DeadLetter`,
    which :meth:`JobMessage.decode` also reads)."""
    note = DeadLetterNote(reason=reason, at=now_iso(), topic=topic_for(cfg, message.mode))
    letter = DeadLetter(**message.model_dump(), dead_letter=note)
    return _send(producer, cfg.dead_letter_topic, message.id, letter.encode())


def make_consumer(cfg: KafkaConfig, mode: str, client_id: str, **overrides: Any) -> KafkaConsumer:
    """A consumer in the mode's group, subscribed to its topic, committing offsets by hand.

    Pass ``listener=`` (a ConsumerRebalanceListener) to track assignments; other keyword
    arguments override the consumer's settings.

    Partitions are assigned *sticky*: when a consumer joins or leaves, the others keep the
    partitions they have (and the jobs running from them) as far as balance allows, instead of
    a fresh range/round-robin deal that moves running jobs' partitions at every deploy. (The
    plain sticky assignor, eager protocol: the cooperative variant needs incremental rebalances
    that not every Kafka-protocol broker, Tansu included, is known to support.)
    """
    listener = overrides.pop("listener", None)
    options: dict[str, Any] = {
        "bootstrap_servers": _servers(cfg),
        "group_id": group_for(cfg, mode),
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": cfg.session_timeout_ms,
        "heartbeat_interval_ms": cfg.heartbeat_interval_ms,
        "partition_assignment_strategy": (StickyPartitionAssignor,),
        "allow_auto_create_topics": False,
        # A topic re-created after a broker restart is noticed within seconds, not five minutes.
        "metadata_max_age_ms": 10_000,
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        **overrides,
    }
    consumer = KafkaConsumer(**options)
    consumer.subscribe([topic_for(cfg, mode)], listener=listener)
    return consumer


def ping(producer: KafkaProducer, cfg: KafkaConfig, mode: str) -> None:
    """Raise unless the broker answers with the metadata of ``mode``'s topic (readiness)."""
    if not producer.partitions_for(topic_for(cfg, mode)):
        raise ServiceUnavailable(f"topic {topic_for(cfg, mode)} has no partitions")

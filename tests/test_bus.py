"""stylequeue.bus: the versioned job message, and the rest against a real Kafka-protocol broker
(Tansu, or STYLEQUEUE_KAFKA_BOOTSTRAP)."""

from __future__ import annotations

import json

import pytest
from clients import FAST_GROUP, configs, end_offsets, partition_counts, producer, topics  # noqa: F401
from services import poll_records

from consumer.engines.registry import modes
from stylequeue import bus
from stylequeue.bus import MESSAGE_VERSION, JobMessage
from stylequeue.errors import ServiceUnavailable, ValidationError
from stylequeue.job import Inputs, Job, Status

integration = pytest.mark.integration


def make_job(mode: str) -> Job:
    return Job(id=f"{mode}-job", mode=mode, params={"image_size": 32}, inputs=Inputs("c.png", ("s.png",)))


def test_the_message_is_a_versioned_pointer_to_the_record():
    job = make_job("gatys").evolve(status=Status.QUEUED, attempt=2, retry_at="2030-01-01T00:00:00.000Z")
    value = JobMessage.of(job).encode()
    assert json.loads(value) == {"v": MESSAGE_VERSION, "id": job.id, "mode": "gatys"}  # no keys, no fencing
    assert JobMessage.decode(value) == JobMessage.of(job)
    assert len(value) < 128


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (json.dumps({"v": MESSAGE_VERSION + 1, "id": "j", "mode": "blend"}).encode(), "v"),
        # The full-job messages before versions had "schema": 1 and no "v".
        (json.dumps({"schema": 1, "id": "j", "mode": "blend", "inputs": {}}).encode(), "v"),
        (json.dumps({"v": MESSAGE_VERSION, "mode": "blend"}).encode(), "id"),
        (b"[1, 2]", "message"),
        (b"\xff not json", "message"),
    ],
    ids=["newer-version", "no-version", "no-id", "not-an-object", "not-json"],
)
def test_messages_of_another_version_are_refused_naming_the_field(value, field):
    with pytest.raises(ValidationError) as excinfo:
        JobMessage.decode(value)
    assert excinfo.value.field == field
    assert f"version {MESSAGE_VERSION}" in str(excinfo.value)


def test_the_producer_cannot_write_another_version():
    with pytest.raises(ValueError):
        JobMessage(v=MESSAGE_VERSION + 1, id="j", mode="blend")


@integration
def test_topics_are_created_with_the_configured_partitions(configs, topics):
    assert topics == [bus.topic_for(configs.kafka, m) for m in modes()] + [configs.kafka.dead_letter_topic]
    assert partition_counts(configs.kafka, topics) == {t: configs.kafka.partitions for t in topics}
    assert bus.ensure_topics(configs.kafka, modes()) == topics  # idempotent


@integration
def test_publish_reaches_a_consumer_of_the_modes_topic(configs, producer):
    job = make_job("blend")
    metadata = bus.publish(producer, configs.kafka, job)
    assert metadata.topic == bus.topic_for(configs.kafka, "blend")
    consumer = bus.make_consumer(configs.kafka, "blend", "test-consumer", **FAST_GROUP)
    try:
        records = poll_records(consumer, 1, 20.0, 500)  # group join included
    finally:
        consumer.close()
    assert len(records) == 1
    assert records[0].key == job.id.encode()
    assert JobMessage.decode(records[0].value) == JobMessage.of(job)
    assert len(records[0].value) < 1024  # a pointer, never image bytes
    # Nothing went to the other mode's topic.
    assert sum(end_offsets(configs.kafka, bus.topic_for(configs.kafka, "gatys")).values()) == 0


@integration
def test_dead_letter_carries_the_job_and_the_reason(configs, producer):
    job = make_job("gatys")
    bus.publish_dead_letter(producer, configs.kafka, JobMessage.of(job), "engine failed 3 times")
    from kafka import KafkaConsumer, TopicPartition

    reader = KafkaConsumer(
        bootstrap_servers=configs.kafka.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        reader.assign(
            [TopicPartition(configs.kafka.dead_letter_topic, p) for p in range(configs.kafka.partitions)]
        )
        records = poll_records(reader, 1, 20.0, 500)
    finally:
        reader.close()
    body = json.loads(records[0].value)
    assert body["dead_letter"]["reason"] == "engine failed 3 times"
    assert body["dead_letter"]["topic"] == bus.topic_for(configs.kafka, "gatys")
    assert JobMessage.decode(records[0].value) == JobMessage.of(job)


@integration
def test_publish_fails_with_service_unavailable_when_the_broker_is_gone():
    """A broker of its own, stopped after the producer connected: publish raises in ~2 s."""
    from launcher import localstack
    from stylequeue import config

    broker = localstack.start_broker()
    try:
        cfg = config.load(config.KafkaConfig, {"STYLEQUEUE_KAFKA_BOOTSTRAP": broker.url})
        bus.ensure_topics(cfg, ["blend"])
        made = bus.make_producer(cfg, delivery_timeout_ms=2000, request_timeout_ms=1000)
        assert bus.publish(made, cfg, make_job("blend")).offset == 0
    finally:
        broker.process.kill()  # the broker dies (SIGTERM would drain for 5 s)
        broker.stop()
    with pytest.raises(ServiceUnavailable, match="did not accept"):
        bus.publish(made, cfg, make_job("blend"))
    made.close(timeout=1)


@integration
def test_make_producer_names_an_unreachable_broker(configs):
    from launcher.localstack import free_port

    dead = configs.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})
    with pytest.raises(ServiceUnavailable, match=dead.bootstrap):
        bus.make_producer(dead, bootstrap_timeout_ms=500)


class Member:
    """One consumer of the mode's group, polling on a thread of its own; its assignment readable."""

    def __init__(self, cfg, name: str) -> None:
        import threading

        self.consumer = bus.make_consumer(cfg, "gatys", name, **FAST_GROUP)
        self.owned: frozenset = frozenset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.consumer.poll(timeout_ms=100)
            self.owned = frozenset(tp.partition for tp in self.consumer.assignment())

    def leave(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


@integration
def test_partitions_stay_with_their_consumers_when_one_leaves(configs):
    """Sticky assignment on the real broker: a member leaving moves only its own partitions, so
    the jobs running from the others' partitions are never redelivered (a range deal would)."""
    from services import wait_for

    cfg = configs.kafka.model_copy(update={"partitions": 6})
    bus.ensure_topics(cfg, ["gatys"])
    members = [Member(cfg, name) for name in ("member-a", "member-b", "member-c")]
    try:
        wait_for(lambda: sorted(len(m.owned) for m in members) == [2, 2, 2], 60, 0.1, "three members of two")
        before = {m: m.owned for m in members[1:]}
        members[0].leave()
        wait_for(lambda: sum(len(m.owned) for m in members[1:]) == 6, 60, 0.1, "the rest to take over")
        for member, owned in before.items():
            assert owned <= member.owned, (owned, member.owned)
    finally:
        for member in members[1:]:
            member.leave()

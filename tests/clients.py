"""Fixtures building the service clients (S3 storage, Redis status store, Kafka producer) for one test.

They sit on top of ``service_env`` (tests/services.py): each test gets its own bucket, topics and
consumer groups on the session's real services.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import pytest

from consumer.engines.registry import modes
from stylequeue import bus, config, status, storage

# Group joins on the Tansu broker take 3-5 s with these instead of 20+ s.
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


@dataclass(frozen=True)
class Configs:
    s3: config.S3Config
    redis: config.RedisConfig
    kafka: config.KafkaConfig
    api: config.ApiConfig


@pytest.fixture
def configs(service_env: dict[str, str]) -> Configs:
    return Configs(
        *(
            config.load(section, service_env)
            for section in (config.S3Config, config.RedisConfig, config.KafkaConfig, config.ApiConfig)
        )
    )


@pytest.fixture
def s3_storage(configs: Configs) -> storage.Storage:
    """A Storage on a fresh bucket of this test's own."""
    store = storage.Storage.from_config(configs.s3)
    store.ensure_bucket()
    return store


@pytest.fixture
def status_store(configs: Configs) -> Iterator[status.StatusStore]:
    store = status.StatusStore.from_config(configs.redis)
    yield store
    store.redis.close()


@pytest.fixture
def topics(configs: Configs) -> list[str]:
    """This test's job topics and dead-letter topic, created."""
    return bus.ensure_topics(configs.kafka, modes())


@pytest.fixture
def producer(configs: Configs, topics: list[str]) -> Iterator[object]:
    made = bus.make_producer(configs.kafka)
    yield made
    made.close(timeout=5)


def topic_records(cfg: config.KafkaConfig, topic: str, expect: int, timeout_s: float = 10.0) -> list:
    """Every record on ``topic`` (read from the start of each partition, no group), waiting for ``expect``."""
    from kafka import KafkaConsumer, TopicPartition
    from services import poll_records

    reader = KafkaConsumer(bootstrap_servers=cfg.bootstrap, enable_auto_commit=False)
    try:
        reader.assign([TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()])
        reader.seek_to_beginning()
        return poll_records(reader, expect, timeout_s)
    finally:
        reader.close()


def end_offsets(cfg: config.KafkaConfig, topic: str) -> dict[int, int]:
    """Partition → end offset of ``topic`` (used to show that nothing was published)."""
    from kafka import KafkaConsumer, TopicPartition

    with closing(KafkaConsumer(bootstrap_servers=cfg.bootstrap, enable_auto_commit=False)) as consumer:
        partitions = consumer.partitions_for_topic(topic) or set()
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    return {tp.partition: offset for tp, offset in offsets.items()}


def partition_counts(cfg: config.KafkaConfig, topics: list[str]) -> dict[str, int]:
    """How many partitions each named topic has (0 when it does not exist)."""
    with closing(bus.make_admin(cfg)) as admin:
        described = {t["name"]: len(t.get("partitions") or ()) for t in admin.describe_topics(list(topics))}
    return {t: described.get(t, 0) for t in topics}


def published(cfg: config.KafkaConfig) -> int:
    """How many messages the job topics and the dead-letter topic hold (end offsets summed)."""
    names = [bus.topic_for(cfg, mode) for mode in modes()] + [cfg.dead_letter_topic]
    return sum(sum(end_offsets(cfg, name).values()) for name in names)

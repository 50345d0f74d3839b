"""Where job messages go: the least-backlog choice, the placer's readings, and the producer
against a real broker (tests/services.py)."""

from __future__ import annotations

import pytest
from fake_clock import FakeClock

from stylequeue import bus, config, placement
from stylequeue.job import Inputs, Job
from stylequeue.placement import Placer, least_backlog

# --- the choice ----------------------------------------------------------------------------------


def test_the_partition_with_the_least_lag_plus_sends_wins():
    assert least_backlog([0, 1, 2], {0: 3, 1: 1, 2: 2}, {}) == 1
    assert least_backlog([0, 1, 2], {0: 3, 1: 1, 2: 2}, {1: 2}) == 2
    assert least_backlog([0, 1], {}, {}) == 0  # nothing read yet: every partition counts 0


def test_ties_go_round_the_partitions():
    picks = [least_backlog([0, 1, 2], {}, {}, start) for start in range(6)]
    assert picks == [0, 1, 2, 0, 1, 2]


def test_no_partitions_is_an_error():
    with pytest.raises(ValueError):
        least_backlog([], {}, {})


# --- the placer ----------------------------------------------------------------------------------


def test_a_burst_is_spread_by_counting_this_producers_sends():
    placer = Placer(lambda topic: {0: 0, 1: 0, 2: 0})
    assert sorted(placer.partition("t", [0, 1, 2]) for _ in range(6)) == [0, 0, 1, 1, 2, 2]


def test_idle_consumers_partitions_get_the_next_jobs():
    """Two partitions behind a busy consumer (lag 4 each), one behind an idle one (lag 0)."""
    placer = Placer(lambda topic: {0: 4, 1: 4, 2: 0})
    assert [placer.partition("t", [0, 1, 2]) for _ in range(4)] == [2, 2, 2, 2]


def test_readings_are_refreshed_after_refresh_s_and_reset_the_counts():
    clock, readings = FakeClock(monotonic=0.0), []

    def read(topic):
        readings.append(topic)
        return {0: 0, 1: 5} if len(readings) == 1 else {0: 5, 1: 0}

    placer = Placer(read, refresh_s=1.0, clock=clock)
    assert placer.partition("t", [0, 1]) == 0
    clock.advance(0.5)
    assert placer.partition("t", [0, 1]) == 0  # same reading: 0 has 1 sent, still below 5
    clock.advance(0.5)
    assert placer.partition("t", [0, 1]) == 1  # new reading
    assert readings == ["t", "t"]


def test_each_topic_has_its_own_reading():
    placer = Placer(lambda topic: {0: 9, 1: 0} if topic == "a" else {0: 0, 1: 9})
    assert (placer.partition("a", [0, 1]), placer.partition("b", [0, 1])) == (1, 0)


def test_an_unreadable_lag_falls_back_to_counting_and_retries_later(caplog):
    clock, calls = FakeClock(monotonic=0.0), []

    def broken(topic):
        calls.append(clock.monotonic())
        raise OSError("broker away")

    placer = Placer(broken, retry_s=5.0, clock=clock)
    assert [placer.partition("t", [0, 1, 2]) for _ in range(3)] == [0, 1, 2]
    clock.advance(4.9)
    placer.partition("t", [0, 1, 2])
    clock.advance(0.1)
    placer.partition("t", [0, 1, 2])
    assert calls == pytest.approx([0.0, 5.0])
    assert sum("cannot read the lag" in r.getMessage() for r in caplog.records) == 1  # once per outage


def test_placement_is_by_backlog_unless_set_to_key():
    cfg = config.load(config.KafkaConfig, {"STYLEQUEUE_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert cfg.placement == "backlog"
    keyed = config.load(
        config.KafkaConfig, {"STYLEQUEUE_KAFKA_BOOTSTRAP": "x:1", "STYLEQUEUE_PLACEMENT": "key"}
    )
    assert keyed.placement == "key"


# --- a real broker -------------------------------------------------------------------------------


def _job(n: int) -> Job:
    return Job(id=f"00000000-0000-0000-0000-{n:012d}", mode="blend", params={}, inputs=Inputs("c", ("s",)))


@pytest.mark.integration
def test_jobs_go_to_the_partition_nobody_is_behind_on(service_env):
    """Partition 0 holds three unconsumed jobs; the next three go to partition 1 (two partitions)."""
    cfg = config.load(config.KafkaConfig, service_env)
    bus.ensure_topics(cfg, ["blend"])
    producer = bus.make_producer(cfg)
    try:
        assert isinstance(producer, placement.BacklogProducer)
        topic = bus.topic_for(cfg, "blend")
        for n in range(3):
            value = bus.JobMessage.of(_job(n)).encode()
            producer.send(topic, value=value, key=b"k", partition=0).get(timeout=15)
        placed = [bus.publish(producer, cfg, _job(10 + n)).partition for n in range(3)]
        assert placed == [1, 1, 1]
        # Other topics: as kafka-python sends.
        dead = bus.publish_dead_letter(producer, cfg, bus.JobMessage.of(_job(20)), "test")
        assert dead.topic == cfg.dead_letter_topic
    finally:
        producer.close()

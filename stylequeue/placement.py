"""Which partition a new job's message goes to: the one with the least backlog, not a hash of its id.

Kafka gives each partition to one consumer of the group, and a consumer runs one job at a time.
Hashing job ids spreads jobs evenly over *partitions*, which only keeps *consumers* evenly busy
when each holds the same number of partitions and works at the same speed. Measured with
``bench/scale_bench.py`` (6 partitions, a queue kept full), hashing reached 0.77–0.82 of linear
at 4 consumers (two of them hold two partitions and fall behind while the other two wait for
work) and 0.73–0.74 at 6 (random hashing leaves some partitions empty while others queue up);
placing by backlog, 0.99–1.00 and 0.95–1.00. The same
happens with a slow CPU consumer beside GPU ones, or a consumer stuck on a long job.

So a producer of job messages places each one on the partition whose backlog is smallest: the
group's lag there (end offset − committed offset, running jobs included) at the last reading,
plus what this producer has sent there since. Lag falls where consumers are idle or fast, so new
jobs go to them. Readings are at most ``refresh_s`` old; while Kafka cannot be read, the counts of
this producer's own sends alone decide (round-robin). Placement is per producer: several API
workers each balance their own sends on the same readings.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from stylequeue.clock import SYSTEM, Clock

log = logging.getLogger(__name__)

REFRESH_S = 1.0  # a reading this old is read again at the next send
RETRY_S = 5.0  # after a failed reading, counts alone decide for this long

LagSource = Callable[[str], Mapping[int, int]]  # topic → partition → lag


def least_backlog(
    partitions: Sequence[int], lag: Mapping[int, int], sent: Mapping[int, int], start: int = 0
) -> int:
    """The partition with the smallest ``lag + sent``; ties go to the first at or after ``start``
    (taken modulo the partition count), so that successive ties go round the partitions."""
    if not partitions:
        raise ValueError("no partitions to choose from")
    ordered = sorted(partitions)
    first = start % len(ordered)
    rotated = ordered[first:] + ordered[:first]
    return min(rotated, key=lambda p: lag.get(p, 0) + sent.get(p, 0))


@dataclass
class _Topic:
    lag: dict[int, int] = field(default_factory=dict)
    sent: dict[int, int] = field(default_factory=dict)  # since the reading in ``lag``
    due_at: float = float("-inf")  # when the next reading is due
    failing: bool = False


class Placer:
    """Chooses partitions for one producer; safe to call from several threads."""

    def __init__(
        self,
        read_lag: LagSource,
        *,
        refresh_s: float = REFRESH_S,
        retry_s: float = RETRY_S,
        clock: Clock = SYSTEM,
    ) -> None:
        self._read_lag = read_lag
        self.refresh_s, self.retry_s = refresh_s, retry_s
        self._clock = clock
        self._topics: dict[str, _Topic] = {}
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def partition(self, topic: str, partitions: Sequence[int]) -> int:
        """The partition for the next message to ``topic``, counted as sent there."""
        with self._lock:
            state = self._topics.setdefault(topic, _Topic())
            if self._clock.monotonic() >= state.due_at:
                self._refresh(topic, state)
            choice = least_backlog(partitions, state.lag, state.sent, next(self._turn))
            state.sent[choice] = state.sent.get(choice, 0) + 1
            return choice

    def _refresh(self, topic: str, state: _Topic) -> None:
        try:
            lag = dict(self._read_lag(topic))
        except Exception as exc:  # Kafka's admin API away: our own counts decide until it answers
            if not state.failing:
                log.warning("cannot read the lag of %s (%s); placing by this producer's sends", topic, exc)
            state.failing = True
            state.due_at = self._clock.monotonic() + self.retry_s
            return
        if state.failing:
            log.info("lag of %s readable again", topic)
        state.lag, state.sent, state.failing = lag, {}, False
        state.due_at = self._clock.monotonic() + self.refresh_s


class BacklogProducer(KafkaProducer):
    """A KafkaProducer that places messages to job topics (``topic_prefix`` + mode) by backlog.

    Messages that name their partition, and every other topic (the dead-letter topic), go where
    kafka-python would send them. The key (the job id) is still sent, for tracing.
    """

    def __init__(self, placer: Placer, topic_prefix: str, **configs: Any) -> None:
        super().__init__(**configs)
        self.placer = placer
        self.topic_prefix = topic_prefix

    def send(self, topic, value=None, key=None, headers=None, partition=None, timestamp_ms=None):
        if partition is None and topic.startswith(self.topic_prefix):
            known = sorted(self.partitions_for(topic) or ())
            if known:
                partition = self.placer.partition(topic, known)
        return super().send(
            topic, value=value, key=key, headers=headers, partition=partition, timestamp_ms=timestamp_ms
        )


def kafka_lag_source(cfg: Any) -> LagSource:
    """Per-partition lag of each job topic's consumer group, read through one admin client per topic.

    Tansu (the local broker) under-reports end offsets of multi-record batches: there the reading
    is low for a partition that just took a burst, which only makes placement a little uneven
    until the next reading. Apache Kafka reads exactly.
    """
    from stylequeue.lag import KafkaLagReader, lag_reader

    @functools.cache
    def reader(topic: str) -> KafkaLagReader:
        return lag_reader(cfg, [topic[len(cfg.topic_prefix) :]], client_id="stylequeue-placement")

    return lambda topic: {item.partition: item.lag for item in reader(topic).read()}

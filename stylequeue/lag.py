"""Consumer-group lag per partition of a job topic, read through a Kafka admin client.

Two readers: the API's ``/metrics`` (:mod:`api.pipeline_metrics`) and the producers' placement of
new jobs (:mod:`stylequeue.placement`), which is why it lives in the domain package.

Caveat: Tansu (the broker the tests and ``stylequeue dev`` run) answers ListOffsets with the
last *batch's* base offset + 1, so lag is exact only when every batch holds one record. The API
publishes one job per request and waits for the acknowledgement (``linger_ms=0``), so its batches
do hold one record each; real Apache Kafka has no such defect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PartitionLag:
    """One partition of a mode's topic: its end offset and the mode's group's committed offset."""

    mode: str
    group: str
    topic: str
    partition: int
    end: int
    committed: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


class KafkaLagReader:
    """Lag of each mode's consumer group on its topic, through one (lazily made) admin client.

    ``targets`` maps mode → (group, topic). A partition the group never committed counts from
    its earliest offset, which is where the consumers (``auto_offset_reset=earliest``) start.
    """

    def __init__(self, admin_factory: Callable[[], Any], targets: Mapping[str, tuple[str, str]]) -> None:
        self._admin_factory = admin_factory
        self._admin: Any = None
        self.targets = dict(targets)

    def read(self) -> list[PartitionLag]:
        if self._admin is None:
            self._admin = self._admin_factory()
        try:
            return [lag for mode in self.targets for lag in self._mode_lags(mode)]
        except Exception:
            self.close()  # a broken connection is rebuilt on the next scrape
            raise

    def _mode_lags(self, mode: str) -> list[PartitionLag]:
        from kafka.admin import OffsetSpec

        group, topic = self.targets[mode]
        partitions, ends, done = partition_offsets(self._admin, group, topic)
        if not partitions:
            return []
        starts = self._admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
        return [
            PartitionLag(mode, group, topic, tp.partition, ends[tp], done.get(tp, starts[tp].offset))
            for tp in partitions
        ]

    def close(self) -> None:
        admin, self._admin = self._admin, None  # None even if closing fails: the next read rebuilds it
        if admin is not None:
            admin.close()


def partition_offsets(admin: Any, group: str, topic: str) -> tuple[list[Any], dict[Any, int], dict[Any, int]]:
    """``topic``'s partitions (TopicPartitions), their log ends, and ``group``'s committed offsets
    where it committed one."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    described = admin.describe_topics([topic])
    partitions = [
        TopicPartition(topic, p["partition_index"]) for t in described for p in t.get("partitions") or ()
    ]
    if not partitions:
        return [], {}, {}
    ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
    committed = admin.list_group_offsets({group: partitions}).get(group, {})
    done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}  # -1: none
    return partitions, {tp: info.offset for tp, info in ends.items()}, done


def lag_reader(cfg: Any, modes: Iterable[str], *, client_id: str) -> KafkaLagReader:
    """A reader of ``modes``' lag on the broker of ``cfg`` (a KafkaConfig); connects on first read.

    Short admin timeouts: a scrape must fail before Prometheus' scrape timeout, and a placement
    must not hold a submission up.
    """
    from stylequeue import bus  # imports kafka: only processes that read lag need it

    targets = {mode: (bus.group_for(cfg, mode), bus.topic_for(cfg, mode)) for mode in modes}
    admin = functools.partial(bus.make_admin, cfg, client_id=client_id, timeout_ms=3000)
    return KafkaLagReader(admin, targets)

"""What the API's ``/metrics`` reads when Prometheus scrapes: queue depth, consumers per engine
(from Redis) and consumer lag per partition (from Kafka).

Only the API serves these, so they live here rather than beside the metric definitions
(:mod:`stylequeue.metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import KW_ONLY, dataclass
from functools import partial
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stylequeue.lag import KafkaLagReader

log = logging.getLogger(__name__)


@dataclass(eq=False)  # hashable: a registry keys its collectors
class PipelineCollector(Collector):
    """Any API worker may serve the scrape, and every one reads the same shared state (Redis,
    Kafka), so the numbers never need summing across workers. A source that cannot be read is
    reported by ``stylequeue_scrape_source_up{source} 0`` instead of failing the scrape."""

    modes: Sequence[str]
    _: KW_ONLY
    store: Any = None  # the queues
    presence: Any = None  # who serves them
    lag_reader: KafkaLagReader | None = None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "stylequeue_scrape_source_up", "1 when a scrape-time source answered", labels=["source"]
        )
        if self.store is not None:
            yield from self._guarded("redis", self._store_metrics, up)
        if self.lag_reader is not None:
            yield from self._guarded("kafka", self._lag_metrics, up)
        yield up

    def _guarded(self, source: str, read: Callable[[], list[Metric]], up: GaugeMetricFamily) -> list[Metric]:
        try:
            metrics = read()
        except Exception as exc:  # any failure of a source: report it, keep the rest of the scrape
            log.warning("metrics: reading %s failed: %s", source, exc)
            up.add_metric([source], 0)
            return []
        up.add_metric([source], 1)
        return metrics

    def _store_metrics(self) -> list[Metric]:
        gauge = partial(GaugeMetricFamily, labels=["mode"])
        depth = gauge("stylequeue_queue_depth", "Jobs queued (waiting for a consumer)")
        consumers = gauge("stylequeue_engine_consumers", "Consumers reporting in for an engine")
        available = gauge("stylequeue_engine_available", "1 when at least one consumer can run the engine")
        reports = self.presence.engines(self.modes)
        for mode in self.modes:
            depth.add_metric([mode], self.store.queued_count(mode))
            consumers.add_metric([mode], len(reports.get(mode, ())))
            available.add_metric([mode], int(any(r.get("available") for r in reports.get(mode, ()))))
        return [depth, consumers, available]

    def _lag_metrics(self) -> list[Metric]:
        lag = GaugeMetricFamily(
            "stylequeue_consumer_lag",
            "Messages on a partition not yet committed by the mode's consumer group",
            labels=["mode", "group", "topic", "partition"],
        )
        for item in self.lag_reader.read():
            lag.add_metric([item.mode, item.group, item.topic, str(item.partition)], item.lag)
        return [lag]

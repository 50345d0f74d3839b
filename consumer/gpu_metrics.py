"""GPU memory and utilisation, read when Prometheus scrapes a consumer (the API has no GPU)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

GAUGES = {
    "allocated": ("stylequeue_gpu_memory_allocated_bytes", "Tensor memory"),
    "reserved": ("stylequeue_gpu_memory_reserved_bytes", "Caching allocator memory"),
    "total": ("stylequeue_gpu_memory_total_bytes", "Device memory"),
    "utilisation": ("stylequeue_gpu_utilisation_ratio", "Busy time, 0–1 (NVML)"),
}


class GpuCollector(Collector):
    """Memory and utilisation of each CUDA device this process uses; nothing on CPU.

    Reads only when torch is already loaded *and* CUDA is initialised in this process, so it never
    imports torch (the API has none) and never creates a CUDA context on a CPU consumer.
    Utilisation needs NVML (``pip install nvidia-ml-py``, in the GPU image); without it that
    gauge is absent.
    """

    def collect(self) -> Iterator[Metric]:
        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        families = {
            key: GaugeMetricFamily(name, documentation, labels=["device", "name"])
            for key, (name, documentation) in GAUGES.items()
        }
        for index in range(torch.cuda.device_count()):
            self._device(torch, index, families)
        yield from (f for f in families.values() if f.samples)

    @staticmethod
    def _device(torch: Any, index: int, families: dict[str, GaugeMetricFamily]) -> None:
        props = torch.cuda.get_device_properties(index)
        labels = [f"cuda:{index}", props.name]
        families["allocated"].add_metric(labels, torch.cuda.memory_allocated(index))
        families["reserved"].add_metric(labels, torch.cuda.memory_reserved(index))
        families["total"].add_metric(labels, props.total_memory)
        try:  # torch maps CUDA_VISIBLE_DEVICES indices to NVML's for us
            families["utilisation"].add_metric(labels, torch.cuda.utilization(index) / 100.0)
        except Exception:  # no NVML library/driver binding: the gauge is absent
            pass


_gpu_collector: GpuCollector | None = None


def register_gpu_collector(registry: CollectorRegistry = REGISTRY) -> None:
    """Add :class:`GpuCollector` to ``registry`` once per process."""
    global _gpu_collector
    if _gpu_collector is None:
        _gpu_collector = GpuCollector()
        registry.register(_gpu_collector)

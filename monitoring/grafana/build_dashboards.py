"""Write the Grafana dashboards (``dashboards/*.json``) from the panel lists below.

Dashboards are generated so that every panel is built the same way (one datasource uid, units,
legends) and so that tests can hold each query to account: ``tests/test_monitoring.py`` checks the
JSON files equal this script's output and evaluates every query against a real Prometheus.
Run ``python monitoring/grafana/build_dashboards.py`` after editing.
"""

from __future__ import annotations

import json
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "stylequeue-prometheus"}  # provisioning/datasources
GPU_ONLY = "GPU only: empty while no consumer runs on CUDA."
RATE = "$__rate_interval"
OPTIONS = {  # by panel kind
    "timeseries": {
        "tooltip": {"mode": "multi", "sort": "desc"},
        "legend": {"displayMode": "list", "placement": "bottom"},
    },
    "stat": {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
    },
}


@dataclass(frozen=True)
class Panel:
    title: str
    queries: dict[str, str]  # PromQL → legend
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 8
    description: str = ""


def quantiles(metric: str) -> dict[str, str]:
    return {f"mode:{metric}:{q}_5m": f"{{{{mode}}}} {q}" for q in ("p50", "p95", "p99")}


# Row title → its panels, left to right.
OVERVIEW = {
    "Throughput": (
        Panel("Jobs submitted", {"mode:stylequeue_jobs_submitted:rate5m": "{{mode}}"}, "reqps"),
        Panel(
            "Jobs finished by status",
            {"mode_status:stylequeue_jobs_finished:rate5m": "{{mode}} {{status}}"},
            "reqps",
        ),
        Panel(
            "Failure ratio",
            {"mode:stylequeue_job_failure_ratio:rate5m": "{{mode}}"},
            "percentunit",
            description="Failed / all finished jobs over 5 minutes; alert above 10 %.",
        ),
        Panel(
            "Dead letters and retries",
            {
                "mode:stylequeue_jobs_dead_lettered:rate5m": "{{mode}} dead-lettered",
                "mode:stylequeue_job_retries:rate5m": "{{mode}} retried",
            },
            "reqps",
        ),
        Panel(
            "Jobs finished (last hour)",
            {"sum by (mode, status) (increase(stylequeue_jobs_finished_total[1h]))": "{{mode}} {{status}}"},
            kind="stat",
        ),
        Panel(
            "Upload volume", {"sum by (mode) (rate(stylequeue_upload_bytes_total[5m]))": "{{mode}}"}, "Bps"
        ),
    ),
    "Backlog": (
        Panel(
            "Queue depth",
            {"mode:stylequeue_queue_depth:max": "{{mode}}"},
            description="Jobs queued in the status store, waiting for a consumer.",
        ),
        Panel(
            "Consumer lag by partition",
            {"max by (mode, topic, partition) (stylequeue_consumer_lag)": "{{topic}} [{{partition}}]"},
            description="End offset minus the group's committed offset (includes running jobs).",
        ),
        Panel("Jobs in flight", {"mode:stylequeue_jobs_in_flight:sum": "{{mode}}"}),
        Panel(
            "Consumers up",
            {
                "mode:stylequeue_consumers_up:sum": "{{mode}} polling",
                "max by (mode) (stylequeue_engine_consumers)": "{{mode}} reporting",
            },
            kind="stat",
            width=12,
        ),
        Panel("Scrape targets up", {"sum by (job) (up)": "{{job}}"}, kind="stat", width=12),
    ),
    "Latency": (
        Panel("Queue wait", quantiles("stylequeue_queue_wait_seconds"), "s"),
        Panel("Run time", quantiles("stylequeue_run_seconds"), "s"),
        Panel("End to end", quantiles("stylequeue_end_to_end_seconds"), "s"),
        Panel(
            "API p95 by route", {"route:stylequeue_api_request_seconds:p95_5m": "{{route}}"}, "s", width=12
        ),
        Panel(
            "API requests by status",
            {"status:stylequeue_api_requests:rate5m": "{{status}}"},
            "reqps",
            width=12,
        ),
    ),
}

CONSUMERS = 'job=~"consumer-.*"'


def rate_by(labels: str, series: str) -> str:
    return f"sum by ({labels}) (rate({series}[{RATE}]))"


BATCHES = rate_by("instance", "stylequeue_blend_batch_size_count")
CACHE_HITS = rate_by("instance", 'stylequeue_style_cache_lookups_total{result=~"hit|shared_hit"}')
CACHE_LOOKUPS = rate_by("instance", "stylequeue_style_cache_lookups_total")
FINISHED = rate_by("instance, status", f"stylequeue_jobs_finished_total{{{CONSUMERS}}}")
RUN_TIME = rate_by("instance, le", "stylequeue_run_seconds_bucket")
WORKERS = {
    "Engines": (
        Panel(
            "Gatys iterations per second",
            {rate_by("instance", "stylequeue_gatys_iterations_total"): "{{instance}}"},
        ),
        Panel(
            "Blend batch size (mean)",
            {f"{rate_by('instance', 'stylequeue_blend_batch_size_sum')} / {BATCHES}": "{{instance}}"},
            description="Jobs per batched forward pass; NaN while no batch ran.",
        ),
        Panel("Blend batches per second", {BATCHES: "{{instance}}"}, "ops"),
        Panel("Style cache hit ratio", {f"{CACHE_HITS} / {CACHE_LOOKUPS}": "{{instance}}"}, "percentunit"),
        Panel("Jobs finished per consumer", {FINISHED: "{{instance}} {{status}}"}, "reqps"),
        Panel("Run time p95 per consumer", {f"histogram_quantile(0.95, {RUN_TIME})": "{{instance}}"}, "s"),
    ),
    "Consumers": (
        Panel(
            "Jobs in flight per consumer",
            {"sum by (instance, mode) (stylequeue_jobs_in_flight)": "{{instance}}"},
        ),
        Panel(
            "Seconds since last heartbeat",
            {"time() - stylequeue_consumer_last_heartbeat_timestamp_seconds": "{{mode}} {{consumer}}"},
            "s",
        ),
        Panel(
            "Consumer up",
            {"stylequeue_consumer_up": "{{mode}} {{consumer}}", f"up{{{CONSUMERS}}}": "{{instance}} scrape"},
        ),
        Panel(
            "Resident memory",
            {f"process_resident_memory_bytes{{{CONSUMERS}}}": "{{instance}}"},
            "bytes",
            width=12,
        ),
        Panel(
            "CPU",
            {f"rate(process_cpu_seconds_total{{{CONSUMERS}}}[{RATE}])": "{{instance}}"},
            "percentunit",
            width=12,
        ),
    ),
    "GPU": (
        Panel(
            "GPU memory",
            {
                "stylequeue_gpu_memory_allocated_bytes": "{{instance}} {{device}} allocated",
                "stylequeue_gpu_memory_reserved_bytes": "{{instance}} {{device}} reserved",
                "stylequeue_gpu_memory_total_bytes": "{{instance}} {{device}} total",
            },
            "bytes",
            width=12,
            description=GPU_ONLY,
        ),
        Panel(
            "GPU utilisation",
            {"stylequeue_gpu_utilisation_ratio": "{{instance}} {{device}}"},
            "percentunit",
            width=12,
            description=GPU_ONLY + " Needs NVML (nvidia-ml-py).",
        ),
    ),
}

DASHBOARDS = {"overview": OVERVIEW, "workers": WORKERS}


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "range": True}
        for ref, (expr, legend) in zip(string.ascii_uppercase, panel.queries.items(), strict=False)
    ]
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": OPTIONS[panel.kind],
        "targets": targets,
    }


def layout(rows: dict[str, tuple[Panel, ...]]) -> list[dict[str, Any]]:
    """Rows, each followed by its panels left to right, wrapping at Grafana's 24 columns."""
    panels: list[dict[str, Any]] = []
    y, next_id = 0, 1
    for title, row in rows.items():
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id, y, x = next_id + 1, y + 1, 0
        for panel in row:
            if x + panel.width > 24:
                x, y = 0, y + 8
            panels.append(panel_json(panel, next_id, x, y))
            next_id, x = next_id + 1, x + panel.width
        y += 8
    return panels


def dashboard(name: str, rows: dict[str, tuple[Panel, ...]]) -> dict[str, Any]:
    return {
        "uid": f"stylequeue-{name}",
        "title": f"stylequeue — {name}",
        "tags": ["stylequeue"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": []},
        "links": [{"title": "stylequeue", "type": "dashboards", "tags": ["stylequeue"], "asDropdown": False}],
        "panels": layout(rows),
    }


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(dashboard(name, rows), indent=2, ensure_ascii=False) + "\n"
        for name, rows in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

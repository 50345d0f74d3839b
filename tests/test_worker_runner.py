"""The job runner in-process against real Redis, S3 and broker: retries, dead letters, fencing."""

from __future__ import annotations

import json
import threading

import pytest
from kafka import KafkaConsumer
from services import Clients, wait_for

from consumer.engines.registry import get_engine
from consumer.runner import Context, Control, Runner
from stylequeue import config
from stylequeue.job import Status

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class FlakyEngine:
    """A blend engine on a host whose link drops every call: a transient failure, every time."""

    mode = "blend"

    def run_batch(self, items):
        raise ConnectionError("connection to the GPU host reset")


@pytest.fixture
def clients(service_env):
    made = Clients(service_env)
    yield made
    made.close()


def runner_for(clients, mode, engine=None, max_attempts=3) -> Runner:
    env = clients.env
    engine = engine or get_engine(mode, config.load(config.EngineConfig, env))
    worker = config.WorkerConfig(max_attempts=max_attempts)
    ctx = Context(mode, engine, clients.store, clients.storage, clients.producer, clients.kafka, worker)
    return Runner(ctx, Control())


def messages(clients, topic: str) -> list[dict]:
    consumer = KafkaConsumer(topic, bootstrap_servers=clients.kafka.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)  # fmt: skip
    try:
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def test_transient_failure_is_retried_then_dead_lettered(clients):
    runner = runner_for(clients, "blend", FlakyEngine(), max_attempts=2)
    job = clients.submit("blend", {"image_size": 32})

    assert runner.run([job]) == {job.id: True}
    record = clients.store.get(job.id)
    assert (record.status, record.attempt) == (Status.QUEUED, 1)
    topic = clients.kafka.topic_prefix + "blend"
    assert [m["id"] for m in messages(clients, topic)] == [job.id, job.id]  # published again

    assert runner.run([job]) == {job.id: True}
    record = clients.store.get(job.id)
    assert (record.status, record.attempt) == (Status.FAILED, 2)
    assert record.error.message == "ConnectionError: connection to the GPU host reset"
    letters = messages(clients, clients.kafka.dead_letter_topic)
    assert [m["id"] for m in letters] == [job.id]
    assert letters[0]["dead_letter"]["reason"] == record.error.message


def test_a_superseded_attempt_stops_and_never_writes_over_the_newer_one(clients):
    runner = runner_for(clients, "gatys")
    job = clients.submit("gatys", {"image_size": 32, "total_iterations": 2000, "snapshot_every": 1000})
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(runner.run([job])))
    thread.start()
    wait_for(
        lambda: clients.store.get(job.id).progress.iteration >= 2, 60, message="the first attempt to run"
    )
    newer = clients.store.claim(job.id)  # what another consumer does after a rebalance
    thread.join(30)
    assert not thread.is_alive(), "the stale attempt kept running"
    assert outcome == {job.id: True}  # nothing left to do for this consumer: the newer attempt owns it
    record = clients.store.get(job.id)
    assert (record.status, record.attempt) == (Status.RUNNING, newer.attempt) == (Status.RUNNING, 2)
    assert record.progress.iteration == 0  # the stale attempt's progress writes were refused
    assert clients.store.finish(job.id, 1, Status.SUCCEEDED) is False


def test_a_job_already_terminal_is_skipped(clients):
    runner = runner_for(clients, "blend")
    job = clients.submit("blend", {"image_size": 32})
    clients.store.request_cancel(job.id)
    assert runner.run([job]) == {job.id: True}
    record = clients.store.get(job.id)
    assert (record.status, record.attempt) == (Status.CANCELLED, 0)

"""The job runner in-process against real Redis, S3 and broker: retries, dead letters, fencing."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from kafka import KafkaConsumer
from PIL import Image
from services import Clients, wait_for

from consumer.engines.base import EngineResult
from consumer.engines.registry import get_engine
from consumer.runner import Context, Control, Runner
from stylequeue import config
from stylequeue.job import Status, object_keys

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


class SolidEngine:
    """A Gatys engine that paints one colour (one snapshot first); ``during`` runs mid-job."""

    mode = "gatys"

    def __init__(self, colour, during=lambda: None):
        self.colour, self.during = colour, during

    def run(self, content, styles, params, hooks, init_image=None):
        image = Image.new("RGB", (8, 8), self.colour)
        hooks.on_snapshot(1, image)
        self.during()
        return EngineResult(image=image, meta={})


BACKOFF_S = 0.5


def runner_for(clients, mode, engine=None, max_attempts=3) -> Runner:
    env = clients.env
    engine = engine or get_engine(mode, config.load(config.EngineConfig, env))
    worker = config.WorkerConfig(
        max_attempts=max_attempts, retry_backoff_s=BACKOFF_S, retry_backoff_max_s=0.8
    )
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
    # Read again at once (an outage still on): not run, not resolved, until the backoff is over.
    assert runner.run([job]) == {job.id: False}
    assert 0 < runner.deferred[job.id] <= BACKOFF_S
    assert clients.store.get(job.id).attempt == 1
    started = time.monotonic()
    topic = clients.kafka.topic_prefix + "blend"
    republished = messages(clients, topic)
    assert [m["id"] for m in republished] == [job.id, job.id]  # published again
    assert republished[1]["retry_at"] == record.retry_at is not None
    time.sleep(max(0.0, runner.deferred[job.id] - (time.monotonic() - started)))
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
    # Another consumer got the message after a rebalance: refused while the lease is renewed …
    assert clients.store.claim(job.id).reason == "leased"
    newer = take_over(clients, job.id)  # … taken once this one stalled and its lease lapsed
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


def take_over(clients, job_id):
    """Claim ``job_id`` the moment its lease is gone, as a consumer does once the holder stalled."""

    def attempt():
        clients.redis.delete(clients.store._key("lease", job_id))  # lapsed: nothing renewed it
        claimed = clients.store.claim(job_id)
        return None if claimed.__class__.__name__ == "Deferred" else claimed

    return wait_for(attempt, 10, 0.01, "the takeover")


def test_a_fenced_off_attempt_never_overwrites_the_newer_attempts_outputs(clients):
    """The stale attempt stalls past its lease; a newer attempt runs and succeeds meanwhile;
    the stale one then ends and uploads: the result the job names is still the newer one's."""
    job = clients.submit("gatys", {"image_size": 32})
    newer = runner_for(clients, "gatys", SolidEngine((0, 255, 0)))

    def stalled_while_another_consumer_runs_it():
        take_over(clients, job.id)  # the newer attempt claims, then its runner goes on:
        clients.store.release(job.id, clients.store.get(job.id).attempt)
        assert newer.run([job]) == {job.id: True}

    stale = runner_for(clients, "gatys", SolidEngine((255, 0, 0), stalled_while_another_consumer_runs_it))
    assert stale.run([job]) == {job.id: True}
    record = clients.store.get(job.id)
    assert (record.status, record.attempt) == (Status.SUCCEEDED, 3)
    assert record.result_key == object_keys(job.id, 3)["result"]
    assert Image.open(io.BytesIO(clients.storage.get(record.result_key))).getpixel((0, 0)) == (0, 255, 0)
    snapshot = object_keys(job.id, record.attempt)["snapshot"].format(iteration=1)
    assert Image.open(io.BytesIO(clients.storage.get(snapshot))).getpixel((0, 0))[1] > 200  # green
    # The stale attempt's uploads stayed under its own number.
    assert Image.open(io.BytesIO(clients.storage.get(object_keys(job.id, 1)["result"]))).getpixel((0, 0)) == (
        255, 0, 0,
    )  # fmt: skip


def test_a_release_on_shutdown_is_not_held_against_the_job(clients):
    """Graceful hand-backs (rolling deploys) never use up attempts: only failures count."""
    runner = runner_for(clients, "gatys", SolidEngine((0, 0, 255)), max_attempts=1)
    job = clients.submit("gatys", {"image_size": 32})
    for _ in range(3):  # three consumers stopped while running it
        assert clients.store.release(job.id, clients.store.claim(job.id).attempt)
    assert runner.run([job]) == {job.id: True}
    record = clients.store.get(job.id)
    assert (record.status, record.attempt, record.releases) == (Status.SUCCEEDED, 4, 3)

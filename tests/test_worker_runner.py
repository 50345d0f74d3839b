"""The job runner in-process against real Redis, S3 and broker: retries, dead letters, fencing."""

from __future__ import annotations

import dataclasses
import io
import json
import threading

import pytest
from fake_clock import FakeClock
from kafka import KafkaConsumer
from PIL import Image
from services import Clients, wait_for

from consumer import runner as runner_module
from consumer.engines.base import EngineResult
from consumer.engines.registry import get_engine
from consumer.failures import STORE_RETRY_DELAYS_S
from consumer.runner import Context, Control, Runner
from stylequeue import config
from stylequeue.bus import JobMessage
from stylequeue.job import Resumed, Status, object_keys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class FlakyEngine:
    """A blend engine on a host whose link drops every call: a transient failure, every time."""

    mode = "blend"

    def run_batch(self, items):
        raise ConnectionError("connection to the GPU host reset")


@pytest.fixture
def clients(service_env):
    """Clients on a FakeClock: retry backoffs and store-retry waits pass without sleeping."""
    made = Clients(service_env, clock=FakeClock())
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
    return Runner(ctx, Control(), clock=clients.store.clock)


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

    assert runner.run([JobMessage.of(job)]) == {job.id: True}
    record = clients.store.get(job.id)
    assert (record.status, record.attempt) == (Status.QUEUED, 1)
    # Read again at once (an outage still on): not run, not resolved, until the backoff is over.
    assert runner.run([JobMessage.of(job)]) == {job.id: False}
    assert 0 < runner.deferred[job.id] <= BACKOFF_S
    assert clients.store.get(job.id).attempt == 1
    topic = clients.kafka.topic_prefix + "blend"
    republished = messages(clients, topic)
    assert [m["id"] for m in republished] == [job.id, job.id]  # published again
    # A message only points at the record: the retry time is the record's, never the message's.
    assert all(set(m) == {"v", "id", "mode"} for m in republished)
    assert record.retry_at is not None
    clients.store.clock.advance(runner.deferred[job.id])  # the backoff passes
    assert runner.run([JobMessage.of(job)]) == {job.id: True}
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
    thread = threading.Thread(target=lambda: outcome.update(runner.run([JobMessage.of(job)])))
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
    assert runner.run([JobMessage.of(job)]) == {job.id: True}
    record = clients.store.get(job.id)
    assert (record.status, record.attempt) == (Status.CANCELLED, 0)


def take_over(clients, job_id):
    """Claim ``job_id`` the moment its lease is gone, as a consumer does once the holder stalled."""

    def attempt():
        clients.redis.delete(clients.store.key("lease", job_id))  # lapsed: nothing renewed it
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
        assert newer.run([JobMessage.of(job)]) == {job.id: True}

    stale = runner_for(clients, "gatys", SolidEngine((255, 0, 0), stalled_while_another_consumer_runs_it))
    assert stale.run([JobMessage.of(job)]) == {job.id: True}
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
    assert runner.run([JobMessage.of(job)]) == {job.id: True}
    record = clients.store.get(job.id)
    assert (record.status, record.attempt, record.releases) == (Status.SUCCEEDED, 4, 3)


class BlinkingStore:
    """The real status store, whose terminal write fails ``failures`` times (Redis restarting)."""

    def __init__(self, store, failures: int):
        self._store, self.failures = store, failures

    def __getattr__(self, name):
        return getattr(self._store, name)

    def finish(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            import redis

            raise redis.ConnectionError("Error 111 connecting to redis")
        return self._store.finish(*args, **kwargs)


def test_a_terminal_write_that_fails_is_retried_so_the_job_runs_once(clients):
    runs = []
    runner = runner_for(clients, "gatys", SolidEngine((10, 20, 30), during=lambda: runs.append(1)))
    runner.ctx.store = BlinkingStore(clients.store, failures=2)
    job = clients.submit("gatys", {"image_size": 32})
    assert runner.run([JobMessage.of(job)]) == {job.id: True}  # resolved: the offset may be committed
    record = clients.store.get(job.id)
    assert record.status is Status.SUCCEEDED and record.attempt == 1 and len(runs) == 1
    assert runner.ctx.store.failures == 0  # both failures were met, and waited out
    assert clients.store.clock.slept == list(STORE_RETRY_DELAYS_S[:2])


class DyingEngine:
    """The real Gatys engine on a host whose link drops once ``after`` iterations have run."""

    mode = "gatys"

    def __init__(self, engine, after: int):
        self.engine, self.after = engine, after

    def run(self, content, styles, params, hooks, init_image=None, resume=None):
        def progress(p):
            hooks.on_progress(p)
            if p.iteration == self.after:
                raise ConnectionError("connection to the GPU host reset")

        dying = dataclasses.replace(hooks, on_progress=progress)
        return self.engine.run(content, styles, params, dying, init_image=init_image, resume=resume)


def test_a_retried_gatys_attempt_resumes_from_its_last_checkpoint(clients, monkeypatch):
    monkeypatch.setattr(runner_module, "PROGRESS_INTERVAL_S", 0)  # every loss point lands at once
    engine = get_engine("gatys", config.load(config.EngineConfig, clients.env))
    plan = {
        "image_size": 45,
        "min_stage_size": 32,
        "total_iterations": 8,
        "snapshot_every": 3,
    }  # 32px × 5, 45px × 3
    job = clients.submit("gatys", plan)

    # Attempt 1 snapshots (and checkpoints) at 3, runs on to 5 and fails: a transient failure.
    dying = runner_for(clients, "gatys", DyingEngine(engine, after=5))
    assert dying.run([JobMessage.of(job)]) == {job.id: True}
    assert [p["iteration"] for p in clients.store.losses(job.id)] == [1, 2, 3, 4, 5]
    assert clients.store.get(job.id).status is Status.QUEUED
    clients.store.clock.advance(BACKOFF_S)
    assert runner_for(clients, "gatys", engine).run([JobMessage.of(job)]) == {job.id: True}

    record = clients.store.get(job.id)
    assert (record.status, record.attempt) == (Status.SUCCEEDED, 2)
    assert record.resumed_from == Resumed(attempt=1, iteration=3, stage="1/2")
    assert record.to_dict()["resumed_from"] == {"attempt": 1, "iteration": 3, "stage": "1/2"}
    # One loss curve without a gap or a duplicate: 4 and 5 of attempt 1 were dropped and rerun.
    assert [p["iteration"] for p in clients.store.losses(job.id)] == list(range(1, 9))
    assert record.engine["iterations"] == 8 and record.progress.iteration == 8
    # Attempt 1's snapshot went to S3 with attempt 2's, under attempt 2's prefix.
    assert record.snapshots == (3, 6, 8)
    key = object_keys(job.id, 2)["snapshot"]
    assert all(clients.storage.exists(key.format(iteration=i)) for i in record.snapshots)
    assert clients.store.checkpoint(job.id) is None  # an ended job's checkpoint goes


def test_a_job_with_no_checkpoint_starts_over_and_says_nothing_about_resuming(clients):
    job = clients.submit("gatys", {"image_size": 32, "total_iterations": 3, "snapshot_every": 100})
    engine = get_engine("gatys", config.load(config.EngineConfig, clients.env))
    dying = runner_for(clients, "gatys", DyingEngine(engine, after=2))
    assert dying.run([JobMessage.of(job)]) == {job.id: True}
    clients.store.clock.advance(BACKOFF_S)
    assert runner_for(clients, "gatys", engine).run([JobMessage.of(job)]) == {job.id: True}
    record = clients.store.get(job.id)
    assert record.status is Status.SUCCEEDED and record.resumed_from is None
    assert [p["iteration"] for p in clients.store.losses(job.id)] == [1, 2, 3]

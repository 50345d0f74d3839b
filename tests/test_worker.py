"""The consumer worker against real services: consumers run as processes, jobs go in as the API
puts them (inputs in S3, record in Redis, message on the topic). Tiny images, random weights."""

from __future__ import annotations

import io
import json
import os
import signal
import time

import pytest
from kafka import KafkaConsumer
from PIL import Image
from services import Clients, ConsumerProcess, TerminalWrites, wait_consumers, wait_for

from stylequeue.job import Status, object_keys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SHORT_GATYS = {"image_size": 16, "total_iterations": 2, "snapshot_every": 1}


@pytest.fixture
def clients(service_env):
    made = Clients(service_env)
    yield made
    made.close()


@pytest.fixture
def consumers(service_env, tmp_path):
    """Start consumers with ``consumers(mode)``; all are stopped after the test."""
    started: list[ConsumerProcess] = []

    def start(mode: str, **extra_env: str) -> ConsumerProcess:
        proc = ConsumerProcess(service_env, mode, tmp_path / f"{mode}-{len(started)}.log", **extra_env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def terminal(clients, job_id):
    job = clients.store.get(job_id)
    return job if job.status.terminal else None


def test_gatys_job_reports_progress_and_snapshots_while_it_runs(clients, consumers):
    consumers("gatys")
    job = clients.submit("gatys", {"image_size": 32, "total_iterations": 12, "snapshot_every": 3})
    seen = []

    def observe():
        record = clients.store.get(job.id)
        if record.status is Status.RUNNING:
            seen.append((record.progress.iteration, clients.store.snapshot_iterations(job.id)))
        return record if record.status.terminal else None

    done = wait_for(observe, 120, 0.02, "the gatys job")
    assert done.status is Status.SUCCEEDED, done.error
    assert any(iteration > 0 for iteration, _ in seen), "no progress seen while running"
    assert any(snaps for _, snaps in seen), "no snapshot in Redis while running"
    assert done.progress.iteration == done.progress.total == 12
    assert done.snapshots == (3, 6, 9, 12)
    assert Image.open(io.BytesIO(clients.storage.get(done.result_key))).size == (32, 32)
    keys = clients.storage.keys(object_keys(job.id, done.attempt)["outputs"] + "/snapshots/")
    assert [k.rsplit("/", 1)[1] for k in keys] == ["000003.jpg", "000006.jpg", "000009.jpg", "000012.jpg"]
    assert done.engine["random_weights"] is True
    assert json.loads(clients.storage.get(object_keys(job.id)["params"]))["params"]["total_iterations"] == 12


def test_blend_runs_queued_jobs_as_one_batch(clients, consumers):
    jobs = [clients.submit("blend", {"image_size": 32, "ratio": 0.3}, n_styles=2, seed=i) for i in range(4)]
    consumers("blend")  # started after the jobs are queued: it finds all four at once
    done = [wait_for(lambda j=j: terminal(clients, j.id), 90, message="blend jobs") for j in jobs]
    assert all(j.status is Status.SUCCEEDED for j in done), [j.error for j in done]
    assert max(j.engine["batch_size"] for j in done) > 1
    assert all(j.snapshots == (1,) for j in done)


def test_blend_completes_while_a_long_gatys_job_runs_and_both_cancels(clients, consumers):
    consumers("gatys")
    consumers("blend")
    long_job = clients.submit("gatys", {"image_size": 32, "total_iterations": 2000, "snapshot_every": 50})
    wait_for(
        lambda: clients.store.get(long_job.id).progress.iteration >= 2, 120, message="the long job to run"
    )
    queued = clients.submit("gatys", SHORT_GATYS, seed=7)  # waits: the only gatys consumer is busy
    blend = clients.submit("blend", {"image_size": 32}, seed=3)
    blend_done = wait_for(lambda: terminal(clients, blend.id), 60, message="the blend job")
    assert blend_done.status is Status.SUCCEEDED
    assert clients.store.get(long_job.id).status is Status.RUNNING

    assert clients.store.request_cancel(queued.id).status is Status.CANCELLED
    clients.store.request_cancel(long_job.id)
    cancelled = wait_for(lambda: terminal(clients, long_job.id), 30, message="the running job to stop")
    assert cancelled.status is Status.CANCELLED
    assert cancelled.progress.iteration < 2000
    nxt = clients.submit("gatys", SHORT_GATYS, seed=8)  # the consumer goes on, skipping the cancelled one
    assert wait_for(lambda: terminal(clients, nxt.id), 60, message="the next job").status is Status.SUCCEEDED
    assert clients.store.get(queued.id).attempt == 0  # never claimed


def test_poison_job_is_dead_lettered_and_the_worker_goes_on(clients, consumers):
    worker = consumers("blend")
    wait_consumers(clients, "blend", 1)
    poison = clients.submit("blend", {"image_size": 32}, seed=1, publish=False)
    clients.storage.client.delete_object(Bucket=clients.storage.bucket, Key=poison.inputs.content)
    clients.publish(poison)
    failed = wait_for(lambda: terminal(clients, poison.id), 60, message="the poison job")
    assert failed.status is Status.FAILED
    assert failed.error.code == "not_found" and "content.png" in failed.error.message
    assert failed.attempt == 1  # permanent: no retry
    letters = read_topic(clients.kafka.bootstrap, clients.kafka.dead_letter_topic, 1)
    body = json.loads(letters[0])
    assert body["id"] == poison.id and "content.png" in body["dead_letter"]["reason"]
    nxt = clients.submit("blend", {"image_size": 32}, seed=2)
    done = wait_for(lambda: terminal(clients, nxt.id), 60, message="the next job")
    assert done.status is Status.SUCCEEDED
    assert done.engine["pid"] == failed.engine["pid"] == worker.pid


def read_topic(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=20000)  # fmt: skip
    try:
        values = []
        for message in consumer:
            values.append(message.value)
            if len(values) >= count:
                break
        return values
    finally:
        consumer.close()


def test_killed_consumer_loses_no_job_and_each_ends_once(clients, consumers, redis_url):
    writes = TerminalWrites(redis_url)
    try:
        first, second = consumers("gatys"), consumers("gatys")
        wait_consumers(clients, "gatys", 2)
        long_job = clients.submit("gatys", {"image_size": 32, "total_iterations": 24, "snapshot_every": 8})
        short = [clients.submit("gatys", SHORT_GATYS, seed=i) for i in range(20)]
        wait_for(lambda: clients.store.get(long_job.id).progress.iteration >= 3, 120, message="the long job")
        victim = first if first.claimed(long_job.id) else second
        assert victim.claimed(long_job.id)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()

        jobs = [long_job, *short]
        done = [wait_for(lambda j=j: terminal(clients, j.id), 150, 0.2, "every job") for j in jobs]
        assert [j.status for j in done] == [Status.SUCCEEDED] * len(jobs), [j.error for j in done]
        assert done[0].attempt == 2  # redelivered to the survivor
        print(f"failover: the long job finished {time.monotonic() - killed_at:.1f} s after the kill")
        time.sleep(0.5)  # the monitor thread sees the last writes
        assert {j.id: writes.counts.get(j.id) for j in jobs} == {j.id: 1 for j in jobs}
    finally:
        writes.close()


def test_sigterm_hands_the_running_job_back_and_another_consumer_finishes_it(clients, consumers):
    leaving = consumers("gatys")
    job = clients.submit("gatys", {"image_size": 32, "total_iterations": 2000, "snapshot_every": 100})
    wait_for(lambda: clients.store.get(job.id).progress.iteration >= 2, 120, message="the job to run")
    leaving.process.send_signal(signal.SIGTERM)
    assert leaving.process.wait(30) == 0  # drains for --drain-seconds 5, then releases
    released = clients.store.get(job.id)
    assert (released.status, released.attempt, released.releases) == (Status.QUEUED, 1, 1)
    assert f"job {job.id} released" in leaving.output()

    consumers("gatys")
    wait_for(lambda: clients.store.get(job.id).attempt == 2 and clients.store.get(job.id).progress.iteration >= 1,
             120, message="the job to be taken again")  # fmt: skip
    clients.store.request_cancel(job.id)  # no need to wait for 2000 iterations
    assert (
        wait_for(lambda: terminal(clients, job.id), 30, message="the job to stop").status is Status.CANCELLED
    )


def test_keep_alive_returns_as_soon_as_the_job_is_done(service_env):
    """A blend batch takes milliseconds: the loop polling meanwhile must not add a poll's wait."""
    from concurrent.futures import ThreadPoolExecutor

    from consumer.membership import Membership
    from stylequeue import bus, config

    kafka = config.load(config.KafkaConfig, service_env)
    bus.ensure_topics(kafka, ["blend"])
    membership = Membership()
    membership.consumer = bus.make_consumer(kafka, "blend", "keep-alive", listener=membership)
    finished: list[float] = []

    def job() -> None:
        time.sleep(0.15)
        finished.append(time.monotonic())

    try:
        membership.take(1, 3000)  # in the group, as while a job runs
        lags = []
        with ThreadPoolExecutor(1) as pool:
            for _ in range(6):
                membership.keep_alive(pool.submit(job))
                lags.append(time.monotonic() - finished[-1])
        assert max(lags) < 0.06, lags
    finally:
        membership.close()


def test_a_held_record_is_read_again_when_its_hold_ends(service_env):
    """A record deferred for a retry's backoff: the worker seeks back to it and holds its partition;
    once the hold ends the record must come again (it once never did: kafka-python kept fetching
    from past it after a seek made while the partition was paused)."""
    from concurrent.futures import ThreadPoolExecutor

    from kafka import TopicPartition

    from consumer.membership import Membership
    from stylequeue import bus, config

    kafka = config.load(config.KafkaConfig, service_env)
    bus.ensure_topics(kafka, ["gatys"])
    producer = bus.make_producer(kafka)
    for key in ("a", "b"):
        producer.send(bus.topic_for(kafka, "gatys"), key=key.encode(), value=b"{}").get(timeout=10)
    membership = Membership()
    membership.consumer = bus.make_consumer(kafka, "gatys", "hold-test", listener=membership)
    try:
        record = wait_for(lambda: membership.take(1, 500), 30, 0, "the first record")[0]
        tp = TopicPartition(record.topic, record.partition)
        with ThreadPoolExecutor(1) as pool:
            membership.keep_alive(pool.submit(time.sleep, 0.3))  # the job "runs", then is deferred
        membership.seek({tp: record.offset})
        membership.hold_all(0.5, {tp: record.offset})  # as Worker._hold_deferred does
        again = []

        def read_again() -> bool:
            again.extend(membership.take(1, 200))
            return any((r.partition, r.offset) == (record.partition, record.offset) for r in again)

        wait_for(read_again, 10, 0, last=True)
        assert any((r.partition, r.offset) == (record.partition, record.offset) for r in again), again
    finally:
        membership.close()
        producer.close()

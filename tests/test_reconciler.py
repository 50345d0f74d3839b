"""The reconciler: its policy as a table (pure), and its passes against a real broker, Redis and S3."""

from __future__ import annotations

import dataclasses
import time

import pytest
from clients import (  # noqa: F401
    configs,
    partition_counts,
    producer,
    s3_storage,
    status_store,
    topic_records,
    topics,
)
from services import wait_for

from consumer.engines.registry import modes
from stylequeue import bus, reconciler
from stylequeue.job import Inputs, Job, Status, iso_after, object_keys
from stylequeue.reconciler import Broker, Published, Reconciler, plan

NOW = 1_000_000.0
GRACE = 15.0


def job(status: Status = Status.QUEUED, age_s: float = 60.0, job_id: str = "j1") -> Job:
    keys = object_keys(job_id)
    inputs = Inputs(content=keys["content"], styles=(keys["style"].format(index=0),))
    submitted = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(NOW - age_s))
    return Job(id=job_id, mode="blend", params={}, inputs=inputs, status=status, submitted_at=submitted)


def sent(offset: int = 3, age_s: float = 60.0) -> Published:
    return Published("t", 0, offset, NOW - age_s)


@pytest.mark.parametrize(
    ("record", "published", "broker", "leased", "expected"),
    [
        (job(), None, None, False, "publish"),  # the API died between record and message
        (job(age_s=5), None, None, False, "leave"),  # it may still be publishing
        (job(Status.RUNNING), None, None, False, "leave"),  # running without a note: its consumer's
        (job(), sent(), Broker(True, end=10, committed=2, holds_job=True), False, "leave"),  # in the backlog
        (
            job(),
            sent(),
            Broker(True, end=10, committed=2, holds_job=False),
            False,
            "publish",
        ),  # offset reused
        (job(), sent(), Broker(False), False, "publish"),  # the topic went with the broker
        (job(), sent(), Broker(True, end=0, committed=None), False, "publish"),  # the log was lost
        (job(), sent(), Broker(True, end=10, committed=5), False, "publish"),  # skipped past
        (job(Status.RUNNING), sent(), Broker(True, end=10, committed=5), True, "leave"),  # a live lease
        (job(Status.RUNNING), sent(), Broker(True, end=0), False, "publish"),  # dead holder, lost message
        (job(), sent(age_s=5), Broker(False), False, "leave"),  # just published: not yet
        (job(Status.SUCCEEDED), sent(), None, False, "forget"),
        (None, sent(), None, False, "forget"),  # the record expired
        (job(Status.CANCELLED), None, None, False, "leave"),
    ],
)
def test_plan(record, published, broker, leased, expected):
    assert plan(record, published, broker, leased=leased, now=NOW, grace_s=GRACE).action == expected


# --- against the real services ----------------------------------------------------------------------


def stored(status_store, age_s: float = 60.0, job_id: str | None = None) -> Job:
    record = dataclasses.replace(job(job_id=job_id or f"r{time.monotonic_ns()}"),
                                 submitted_at=iso_after(-age_s))  # fmt: skip
    status_store.create(record)
    return record


def make(configs, status_store, s3_storage, producer, **kw) -> Reconciler:
    return Reconciler(status_store, s3_storage, producer, configs.kafka, list(modes()), grace_s=kw.pop("grace_s", 1.0),
                      **kw)  # fmt: skip


@pytest.mark.integration
def test_a_queued_job_that_was_never_published_is_published_once(configs, status_store, s3_storage, producer):
    lost = stored(status_store)
    fresh = stored(status_store, age_s=0)  # still inside the grace period: not touched
    worker = make(configs, status_store, s3_storage, producer)
    assert worker.run_once()["published"] == 1
    records = topic_records(configs.kafka, bus.topic_for(configs.kafka, "blend"), expect=1)
    assert [bus.JobMessage.decode(r.value).id for r in records] == [lost.id]
    assert status_store.redis.hexists(f"{status_store.prefix}outbox", lost.id)
    assert worker.run_once()["published"] == 0  # noted in the outbox: not published a second time
    assert fresh.id not in {bus.JobMessage.decode(r.value).id for r in records}


@pytest.mark.integration
def test_a_message_the_broker_lost_is_published_again_and_a_pending_one_is_left(
    configs, status_store, s3_storage, producer
):
    pending = stored(status_store)
    reconciler.publish(status_store, producer, configs.kafka, pending)
    gone = stored(status_store)
    topic = bus.topic_for(configs.kafka, "blend")
    outbox = f"{status_store.prefix}outbox"
    status_store.redis.hset(outbox, gone.id, Published(topic, 0, 999, time.time()).to_json())
    for job_id in (pending.id, gone.id):  # both were published a while ago
        entry = Published.from_json(status_store.redis.hget(outbox, job_id))
        status_store.redis.hset(outbox, job_id, dataclasses.replace(entry, at=time.time() - 60).to_json())
    worker = make(configs, status_store, s3_storage, producer)
    assert worker.run_once()["published"] == 1
    ids = [bus.JobMessage.decode(r.value).id for r in topic_records(configs.kafka, topic, expect=2)]
    assert sorted(ids) == sorted([pending.id, gone.id])  # the pending one was not duplicated


@pytest.mark.integration
def test_finished_jobs_leave_the_outbox(configs, status_store, s3_storage, producer):
    done = stored(status_store)
    reconciler.publish(status_store, producer, configs.kafka, done)
    claimed = status_store.claim(done.id)
    status_store.finish(done.id, claimed.attempt, Status.SUCCEEDED)
    assert make(configs, status_store, s3_storage, producer).run_once()["forgotten"] == 1
    assert not status_store.redis.hexists(f"{status_store.prefix}outbox", done.id)


@pytest.mark.integration
def test_one_leader_at_a_time(configs, status_store, s3_storage, producer):
    first = make(configs, status_store, s3_storage, producer, lock_ttl_s=0.5)
    second = make(configs, status_store, s3_storage, producer, lock_ttl_s=0.5)
    # lead() alone, not a whole pass: a pass over a bucket the other tests filled can outlast the lock.
    assert first.lead() and second.run_once() == {}
    # The leader stopped renewing: its lock (a Redis TTL, real time) runs out and the other one takes over.
    wait_for(lambda: second.run_once() != {}, 5, 0.1, "the other one to take the lock")


@pytest.mark.integration
def test_s3_inputs_without_a_record_are_swept(configs, status_store, s3_storage, producer):
    kept = stored(status_store)
    for job_id in ("orphan", kept.id):
        s3_storage.put(object_keys(job_id)["content"], b"png", "image/png")
    assert make(configs, status_store, s3_storage, producer, orphan_age_s=0).run_once()["swept"] == 1
    assert s3_storage.keys("jobs/") == [object_keys(kept.id)["content"]]


@pytest.mark.integration
def test_topics_are_created_again(configs, status_store, s3_storage, producer):
    admin = bus.make_admin(configs.kafka)
    try:
        admin.delete_topics([configs.kafka.dead_letter_topic])
    except Exception:  # a broker that cannot delete topics: the test still checks they exist after
        pass
    finally:
        admin.close()
    make(configs, status_store, s3_storage, producer).run_once()
    assert (
        partition_counts(configs.kafka, [configs.kafka.dead_letter_topic])[configs.kafka.dead_letter_topic]
        > 0
    )


def test_rebuilt_job_reads_the_folder():
    from stylequeue.reconciler import rebuilt_job

    layout = object_keys("abc")
    keys = [
        layout["content"],
        layout["style"].format(index=1),
        layout["style"].format(index=0),
        layout["params"],
    ]
    stored = {
        "job_id": "abc",
        "mode": "blend",
        "params": {"ratio": 0.3},
        "submitted_at": "2026-12-01T09:00:00Z",
    }
    queued = rebuilt_job("abc", stored, keys)
    assert queued.status is Status.QUEUED and queued.params == {"ratio": 0.3}
    assert queued.inputs.styles == (layout["style"].format(index=0), layout["style"].format(index=1))
    done = rebuilt_job(
        "abc", stored, [*keys, object_keys("abc", 1)["result"], object_keys("abc", 2)["result"]]
    )
    assert (done.status, done.attempt, done.result_key) == (
        Status.SUCCEEDED,
        2,
        object_keys("abc", 2)["result"],
    )


@pytest.mark.integration
def test_a_record_redis_lost_is_rebuilt_from_s3(configs, status_store, s3_storage, producer):
    import json

    for job_id, finished in (("lost-queued", False), ("lost-done", True)):
        layout = object_keys(job_id)
        s3_storage.put(layout["content"], b"png", "image/png")
        s3_storage.put(layout["style"].format(index=0), b"png", "image/png")
        body = {
            "job_id": job_id,
            "mode": "blend",
            "params": {"image_size": 32},
            "submitted_at": iso_after(-60),
        }
        s3_storage.put(layout["params"], json.dumps(body).encode(), "application/json")
        if finished:
            s3_storage.put(object_keys(job_id, 1)["result"], b"png", "image/png")
    stats = make(configs, status_store, s3_storage, producer).run_once()
    assert stats["rebuilt"] == 2 and stats["swept"] == 0
    assert status_store.get("lost-queued").status is Status.QUEUED
    assert status_store.get("lost-done").status is Status.SUCCEEDED
    records = topic_records(configs.kafka, bus.topic_for(configs.kafka, "blend"), expect=1)
    assert [bus.JobMessage.decode(r.value).id for r in records] == ["lost-queued"]


@pytest.mark.integration
def test_the_bucket_is_swept_every_sweep_interval_and_at_once_after_redis_lost_its_data(
    configs, status_store, s3_storage, producer
):
    from fake_clock import FakeClock

    clock = FakeClock(now=time.time() + 10)  # S3's modification times are whole seconds: none is ahead
    worker = make(
        configs, status_store, s3_storage, producer, orphan_age_s=0, sweep_interval_s=60, clock=clock
    )

    def orphan(job_id: str) -> None:
        s3_storage.put(object_keys(job_id)["content"], b"png", "image/png")  # no params.json: swept

    orphan("o1")
    assert worker.run_once()["swept"] == 1  # the first pass sweeps
    orphan("o2")
    assert worker.run_once()["swept"] == 0  # within the interval: the bucket is not listed again
    clock.advance(60)
    assert worker.run_once()["swept"] == 1
    orphan("o3")
    status_store.redis.flushdb()  # Redis came back empty: its marker went with the records
    assert worker.run_once()["swept"] == 1
    assert worker.run_once()["swept"] == 0

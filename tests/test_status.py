"""stylequeue.status against a real Redis: compare-and-set transitions fenced by the attempt number."""

from __future__ import annotations

import threading
import time

import pytest
from clients import configs, status_store  # noqa: F401
from fake_clock import FakeClock
from services import wait_for

from stylequeue.errors import Conflict, NotFound, ValidationError
from stylequeue.job import Inputs, Job, JobError, Resumed, Status, iso_after, object_keys
from stylequeue.status import BACKOFF, LEASED, Carry, Deferred, StatusStore, StoredCheckpoint, plan_carry

LEASE_S = 0.3

pytestmark = pytest.mark.integration


def make_job(mode: str = "gatys", job_id: str | None = None) -> Job:
    job_id = job_id or f"job-{time.monotonic_ns()}"
    keys = object_keys(job_id)
    inputs = Inputs(content=keys["content"], styles=(keys["style"].format(index=0),))
    return Job(id=job_id, mode=mode, params={"image_size": 32}, inputs=inputs)


def short_lease(store: StatusStore) -> StatusStore:
    """The same Redis with a lease that lapses in ``LEASE_S`` (a dead consumer's, quickly)."""
    return StatusStore(store.redis, store.cfg.model_copy(update={"lease_s": LEASE_S}), prefix=store.prefix)


def lapse(store: StatusStore, job_id: str) -> None:
    """Wait until the running attempt's lease has run out (its consumer stopped renewing it).

    Real time: a lease is a Redis TTL, which only the Redis server's clock runs out."""
    wait_for(lambda: not store.redis.exists(store.key("lease", job_id)), 5, 0.02, "the lease to run out")


def test_create_get_and_duplicate_and_unknown(status_store):
    job = make_job()
    status_store.create(job)
    assert status_store.get(job.id) == job
    with pytest.raises(Conflict):
        status_store.create(job)
    with pytest.raises(NotFound):
        status_store.get("missing")


def test_record_has_the_configured_ttl(status_store):
    job = make_job()
    status_store.create(job)
    ttl = status_store.redis.ttl(status_store.key("job", job.id))
    assert 0 < ttl <= status_store.cfg.job_ttl_s


def test_claim_increments_the_attempt_and_resets_the_previous_attempt(status_store):
    status_store = short_lease(status_store)
    job = make_job()
    status_store.create(job)
    first = status_store.claim(job.id)
    assert (first.status, first.attempt) == (Status.RUNNING, 1)
    assert first.started_at is not None
    assert status_store.update_progress(
        job.id, 1, 5, 10, {"content": 1.0, "style": 2.0, "tv": 0.1, "total": 3.1}
    )
    assert status_store.put_snapshot(job.id, 1, 5, b"jpeg-1")
    # The consumer died; its lease ran out; the job is redelivered and claimed again.
    lapse(status_store, job.id)
    second = status_store.claim(job.id)
    assert second.attempt == 2
    assert second.progress.iteration == 0 and second.snapshots == ()
    assert status_store.losses(job.id) == [] and status_store.snapshot_iterations(job.id) == []


def test_a_stale_attempt_is_refused_everywhere(status_store):
    status_store = short_lease(status_store)
    job = make_job()
    status_store.create(job)
    status_store.claim(job.id)
    lapse(status_store, job.id)
    status_store.claim(job.id)  # attempt 2 now owns the job
    assert not status_store.touch(job.id, 1)
    assert not status_store.update_progress(job.id, 1, 3, 10, {"total": 1.0})
    assert not status_store.put_snapshot(job.id, 1, 3, b"stale")
    assert not status_store.release(job.id, 1)
    assert not status_store.finish(job.id, 1, Status.SUCCEEDED, result_key="r.png")
    current = status_store.get(job.id)
    assert (current.status, current.attempt, current.result_key) == (Status.RUNNING, 2, None)
    assert status_store.losses(job.id) == [] and status_store.snapshot_iterations(job.id) == []
    assert status_store.finish(
        job.id, 2, Status.SUCCEEDED, result_key="r.png", snapshots=[3, 1], engine={"device": "cpu"}
    )
    done = status_store.get(job.id)
    assert (done.status, done.result_key, done.snapshots, done.engine) == (
        Status.SUCCEEDED,
        "r.png",
        (1, 3),
        {"device": "cpu"},
    )
    assert done.finished_at is not None


def test_terminal_records_are_never_rewritten(status_store):
    job = make_job()
    status_store.create(job)
    claimed = status_store.claim(job.id)
    assert status_store.finish(job.id, claimed.attempt, Status.FAILED, error=JobError("engine", "boom"))
    failed = status_store.get(job.id)
    assert status_store.claim(job.id) is None
    assert not status_store.finish(job.id, claimed.attempt, Status.SUCCEEDED)
    assert not status_store.update_progress(job.id, claimed.attempt, 1, 2)
    with pytest.raises(Conflict):
        status_store.request_cancel(job.id)
    assert status_store.get(job.id) == failed
    assert failed.error == JobError("engine", "boom")


def test_finish_needs_a_terminal_status(status_store):
    job = make_job()
    status_store.create(job)
    with pytest.raises(ValidationError):
        status_store.finish(job.id, 1, Status.QUEUED)


def test_release_puts_a_running_job_back_in_the_queue(status_store):
    job = make_job()
    status_store.create(job)
    claimed = status_store.claim(job.id)
    assert status_store.queue_position(claimed) is None
    assert status_store.release(job.id, claimed.attempt)
    released = status_store.get(job.id)
    assert released.status is Status.QUEUED and released.attempt == 1
    assert status_store.queue_position(released) == 0
    again = status_store.claim(job.id)  # at once: a release ends the lease
    assert (again.attempt, again.releases, again.counted_attempts) == (2, 1, 1)  # not held against it


def test_a_live_lease_defers_a_takeover_until_it_lapses(status_store):
    """A rebalance hands the message to another consumer while the first still runs the job:
    the claim is refused as long as the running attempt shows signs of life."""
    store = short_lease(status_store)
    job = make_job()
    store.create(job)
    first = store.claim(job.id)
    for _ in range(4):  # renewed for longer than one lease: the takeover keeps being refused
        time.sleep(LEASE_S / 3)  # real time: a lease is a Redis TTL, which no clock of ours moves
        assert store.touch(job.id, first.attempt)
        refused = store.claim(job.id)
        assert isinstance(refused, Deferred) and (refused.reason, refused.attempt) == (LEASED, 1)
        assert 0 < refused.wait_s <= LEASE_S
    assert store.update_progress(job.id, first.attempt, 1, 10)  # progress renews the lease too
    assert isinstance(store.claim(job.id), Deferred)
    lapse(store, job.id)  # the consumer died: nothing renews the lease any more
    taken = store.claim(job.id)
    assert (taken.status, taken.attempt, taken.releases) == (Status.RUNNING, 2, 0)
    assert not store.update_progress(job.id, first.attempt, 2, 10)


def test_a_finished_attempt_gives_up_its_lease(status_store):
    job = make_job()
    status_store.create(job)
    claimed = status_store.claim(job.id)
    assert status_store.redis.exists(status_store.key("lease", job.id))
    assert status_store.finish(job.id, claimed.attempt, Status.SUCCEEDED)
    assert not status_store.redis.exists(status_store.key("lease", job.id))


def test_a_requeued_retry_waits_for_its_backoff(status_store):
    clock = FakeClock()
    status_store = StatusStore(status_store.redis, status_store.cfg, prefix=status_store.prefix, clock=clock)
    job = make_job()
    status_store.create(job)
    claimed = status_store.claim(job.id)
    assert status_store.requeue(job.id, claimed.attempt, iso_after(0.4, clock=clock))
    queued = status_store.get(job.id)
    assert (queued.status, queued.releases, queued.retry_at is not None) == (Status.QUEUED, 0, True)
    refused = status_store.claim(job.id)  # the republished message arrives at once
    assert isinstance(refused, Deferred) and refused.reason == BACKOFF
    assert 0.2 < refused.wait_s <= 0.4
    clock.advance(refused.wait_s + 0.05)
    retried = status_store.claim(job.id)
    assert (retried.attempt, retried.counted_attempts, retried.retry_at) == (2, 2, None)


def test_cancel_of_a_queued_job_is_immediate(status_store):
    job = make_job()
    status_store.create(job)
    cancelled = status_store.request_cancel(job.id)
    assert cancelled.status is Status.CANCELLED and cancelled.finished_at
    assert status_store.get(job.id).status is Status.CANCELLED
    assert status_store.claim(job.id) is None  # a consumer receiving it later skips it
    assert status_store.request_cancel(job.id).status is Status.CANCELLED  # idempotent


def test_cancel_of_a_running_job_sets_a_flag_for_its_worker(status_store):
    job = make_job()
    status_store.create(job)
    claimed = status_store.claim(job.id)
    assert not status_store.cancel_requested(job.id)
    assert status_store.request_cancel(job.id).status is Status.RUNNING
    assert status_store.cancel_requested(job.id)
    assert status_store.finish(job.id, claimed.attempt, Status.CANCELLED)
    assert not status_store.cancel_requested(job.id)
    assert status_store.get(job.id).status is Status.CANCELLED


def test_a_cancel_racing_with_retries_is_never_lost(status_store):
    """A worker keeps handing the job back and taking it again (retries); a cancel requested at
    any moment of that either cancels the queued job or flags the running one, never neither."""
    stop = threading.Event()

    def retry_forever(job_id: str) -> None:
        while not stop.is_set():
            claimed = status_store.claim(job_id)
            if claimed is None:
                return  # cancelled while queued
            if status_store.cancel_requested(job_id):
                status_store.finish(job_id, claimed.attempt, Status.CANCELLED)
                return
            status_store.release(job_id, claimed.attempt)

    for i in range(25):
        job = make_job()
        status_store.create(job)
        worker = threading.Thread(target=retry_forever, args=(job.id,))
        worker.start()
        time.sleep(0.002 * (i % 5))
        status_store.request_cancel(job.id)
        worker.join(5)
        stop.set()
        worker.join(5)
        stop.clear()
        assert status_store.get(job.id).status is Status.CANCELLED, f"cancel lost on try {i}"


def test_progress_losses_and_snapshots(status_store):
    job = make_job()
    status_store.create(job)
    attempt = status_store.claim(job.id).attempt
    for it in (10, 20):
        losses = {"content": 1.0 / it, "style": 2.0, "tv": 0.5, "total": 2.5 + 1.0 / it}
        assert status_store.update_progress(job.id, attempt, it, 20, losses)
        assert status_store.put_snapshot(job.id, attempt, it, f"jpeg-{it}".encode())
    assert status_store.update_progress(job.id, attempt, 20, 20)  # progress only: no loss point
    current = status_store.get(job.id)
    assert (current.progress.iteration, current.progress.total, current.snapshots) == (20, 20, (10, 20))
    assert [p["iteration"] for p in status_store.losses(job.id)] == [10, 20]
    assert status_store.losses(job.id)[0]["content"] == pytest.approx(0.1)
    assert status_store.snapshot_iterations(job.id) == [10, 20]
    assert status_store.snapshot(job.id, 20) == b"jpeg-20"
    ttl = status_store.redis.ttl(status_store.key("snaps", job.id))
    assert 0 < ttl <= status_store.cfg.snapshot_ttl_s
    with pytest.raises(NotFound):
        status_store.snapshot(job.id, 30)


def test_concurrent_writers_lose_no_update(status_store):
    """WATCH/MULTI retries: two threads writing the same record both land."""
    job = make_job()
    status_store.create(job)
    attempt = status_store.claim(job.id).attempt
    iterations = {"a": range(1, 40, 2), "b": range(2, 41, 2)}

    def write(name):
        for it in iterations[name]:
            status_store.put_snapshot(job.id, attempt, it, b"x")

    threads = [threading.Thread(target=write, args=(n,)) for n in iterations]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert status_store.get(job.id).snapshots == tuple(range(1, 41))


def test_queue_position_counts_earlier_jobs_of_the_same_mode(status_store):
    jobs = [make_job("blend", f"b{i}") for i in range(3)]
    other = make_job("gatys", "g0")
    for job in [jobs[0], other, jobs[1], jobs[2]]:
        status_store.create(job)
    assert [status_store.queue_position(j) for j in jobs] == [0, 1, 2]
    assert status_store.queue_position(other) == 0
    status_store.claim(jobs[0].id)
    status_store.request_cancel(jobs[1].id)
    assert status_store.queue_position(jobs[2]) == 0
    assert status_store.queue_position(status_store.get(jobs[0].id)) is None


def test_discard_removes_every_trace(status_store):
    job = make_job()
    status_store.create(job)
    status_store.discard(job)
    with pytest.raises(NotFound):
        status_store.get(job.id)
    assert status_store.redis.zcard(status_store.key("queue", job.mode)) == 0


def loss(iteration: int) -> dict[str, float]:
    return {"content": 1.0, "style": 1.0 / iteration, "tv": 0.0, "total": 1.0 + 1.0 / iteration}


def test_plan_carry_keeps_what_came_up_to_the_checkpoint():
    checkpoint = Resumed(attempt=1, iteration=4, stage="1/2")
    assert plan_carry(None, [1, 2, 3], [2]) == Carry()
    carry = plan_carry(checkpoint, [1, 2, 3, 4, 5, 6], [6, 2, 4])
    assert (carry.resumed, carry.losses, carry.snapshots, carry.dropped) == (checkpoint, 4, (2, 4), (6,))
    assert plan_carry(checkpoint, [1, 2], []).losses == 2  # nothing after it: everything stays


def test_a_claim_keeps_the_history_up_to_the_checkpoint_and_drops_what_came_after(status_store):
    status_store = short_lease(status_store)
    job = make_job()
    status_store.create(job)
    assert status_store.claim(job.id).attempt == 1
    assert status_store.update_progress(
        job.id, 1, 7, 8, points=[{"iteration": i, **loss(i)} for i in range(1, 8)]
    )
    assert status_store.put_snapshot(job.id, 1, 2, b"jpeg-2")
    checkpoint = StoredCheckpoint(1, 4, "1/2", (2, 1), b"rgbrgb")
    assert status_store.put_snapshot(job.id, 1, 4, b"jpeg-4", checkpoint=checkpoint)
    assert status_store.put_snapshot(job.id, 1, 6, b"jpeg-6")  # after the checkpoint: dropped
    assert status_store.checkpoint(job.id) == checkpoint
    lapse(status_store, job.id)  # the consumer died after iteration 7

    second = status_store.claim(job.id)
    assert second.attempt == 2 and second.resumed_from == Resumed(1, 4, "1/2")
    assert (second.progress.iteration, second.progress.total, second.snapshots) == (4, 8, (2, 4))
    assert [p["iteration"] for p in status_store.losses(job.id)] == [1, 2, 3, 4]
    assert status_store.snapshots(job.id) == {2: b"jpeg-2", 4: b"jpeg-4"}
    assert status_store.get(job.id).to_dict()["resumed_from"] == {
        "attempt": 1,
        "iteration": 4,
        "stage": "1/2",
    }

    # Attempt 2 dies before a checkpoint of its own: attempt 3 resumes from attempt 1's again.
    assert status_store.update_progress(job.id, 2, 5, 8, loss(5))
    lapse(status_store, job.id)
    third = status_store.claim(job.id)
    assert third.resumed_from == Resumed(1, 4, "1/2")
    assert [p["iteration"] for p in status_store.losses(job.id)] == [1, 2, 3, 4]
    # A stale attempt's checkpoint is refused with its snapshot.
    assert not status_store.put_snapshot(
        job.id, 2, 6, b"x", checkpoint=StoredCheckpoint(2, 6, "2/2", (1, 1), b"rgb")
    )
    assert status_store.checkpoint(job.id) == checkpoint
    # An ended job is never resumed: its checkpoint goes.
    assert status_store.finish(job.id, 3, Status.SUCCEEDED)
    assert status_store.checkpoint(job.id) is None


def test_a_cancelled_retry_drops_its_checkpoint(status_store):
    job = make_job()
    status_store.create(job)
    status_store.claim(job.id)
    assert status_store.put_snapshot(
        job.id, 1, 4, b"jpeg", checkpoint=StoredCheckpoint(1, 4, "1/1", (1, 1), b"rgb")
    )
    assert status_store.requeue(job.id, 1, iso_after(60))
    status_store.request_cancel(job.id)
    assert status_store.checkpoint(job.id) is None

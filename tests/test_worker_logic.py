"""Pure logic of the consumer: failure classification, retry decisions, batches and commits."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from fake_clock import FakeClock
from kafka import TopicPartition
from PIL import UnidentifiedImageError

from consumer.batching import Taken, batch_limit, group_duplicates, plan_commits
from consumer.engines.base import Progress
from consumer.failures import Kind, Step, Superseded, classify, exhausted_reason, next_step
from consumer.runner import Control, ProgressWriter, Runner
from consumer.worker import Worker, WorkerOptions
from stylequeue.errors import ArtifactError, EngineUnavailable, JobCancelled, NotFound, ValidationError
from stylequeue.job import Inputs, Job

TP0 = TopicPartition("jobs", 0)
TP1 = TopicPartition("jobs", 1)
JOB = Job(id="j1", mode="gatys", params={}, inputs=Inputs("c", ("s",)), attempt=1)


def test_bad_input_is_permanent_and_names_the_field():
    failure = classify(ValidationError("must be at most 2048", field="image_size"))
    assert failure.kind is Kind.PERMANENT
    assert failure.code == "invalid"
    assert "image_size" in failure.message
    assert classify(NotFound("no object 'jobs/x/content.png'")).kind is Kind.PERMANENT
    assert classify(UnidentifiedImageError("cannot identify image file")).code == "invalid_image"


def test_infrastructure_errors_are_transient():
    for exc in (ConnectionError("S3 reset"), RuntimeError("CUDA out of memory"), ArtifactError("download failed"),
                EngineUnavailable("weights missing here")):  # fmt: skip
        assert classify(exc).kind is Kind.TRANSIENT, exc
    assert classify(RuntimeError("CUDA out of memory")).message == "RuntimeError: CUDA out of memory"


def test_cancellation_is_its_own_kind():
    assert next_step(classify(JobCancelled("job cancelled")), attempt=1, max_attempts=3) is Step.CANCEL


def test_transient_failures_retry_until_the_last_attempt():
    failure = classify(ConnectionError("reset"))
    assert [next_step(failure, a, 3) for a in (1, 2, 3)] == [Step.RETRY, Step.RETRY, Step.DEAD_LETTER]


def test_permanent_failures_are_dead_lettered_at_once():
    assert (
        next_step(classify(ValidationError("bad", field="x")), attempt=1, max_attempts=3) is Step.DEAD_LETTER
    )


def test_a_job_whose_consumers_kept_dying_is_given_up():
    failure = exhausted_reason(attempt=4, max_attempts=3)
    assert next_step(failure, 4, 3) is Step.DEAD_LETTER
    assert "3 attempt" in failure.message


def test_only_blend_takes_batches():
    assert batch_limit("gatys", 8) == 1
    assert batch_limit("blend", 8) == 8
    assert batch_limit("blend", 0) == 1


def taken(tp, offset, job_id, epoch=1):
    return Taken(tp, offset, epoch, b"{}", job_id)


def test_duplicates_of_one_job_run_once():
    records = [taken(TP0, 5, "a"), taken(TP0, 6, "b"), taken(TP1, 2, "a"), taken(TP1, 3, None)]
    groups = group_duplicates(records)
    assert [[r.offset for r in g] for g in groups] == [[5, 2], [6], [3]]


def test_commit_past_every_resolved_record():
    records = [taken(TP0, 5, "a"), taken(TP0, 6, "b"), taken(TP1, 2, "c")]
    resolved = {(TP0, 5), (TP0, 6), (TP1, 2)}
    plan = plan_commits(records, resolved, {TP0: 1, TP1: 1})
    assert plan.commits == {TP0: 7, TP1: 3}
    assert plan.rewinds == {}


def test_commit_stops_at_the_first_unresolved_record_and_seeks_back_to_it():
    records = [taken(TP0, 5, "a"), taken(TP0, 6, "b"), taken(TP0, 7, "c")]
    plan = plan_commits(records, {(TP0, 5), (TP0, 7)}, {TP0: 1})
    assert plan.commits == {TP0: 6}
    assert plan.rewinds == {TP0: 6}
    plan = plan_commits(records[:1], set(), {TP0: 1})
    assert plan.commits == {} and plan.rewinds == {TP0: 5}


def test_no_commit_for_a_partition_revoked_or_reassigned_meanwhile():
    records = [taken(TP0, 5, "a", epoch=1), taken(TP1, 2, "b", epoch=1)]
    resolved = {(TP0, 5), (TP1, 2)}
    # TP0 revoked; TP1 revoked and assigned again (epoch 2): another member may have owned it.
    plan = plan_commits(records, resolved, {TP1: 2})
    assert plan.commits == {} and plan.rewinds == {}


def test_unresolved_records_are_rewound_but_not_committed_across_a_rebalance():
    # TP0 stayed with this member (epoch 1 → 2), TP1's rebalance is still in progress (revoked,
    # not yet assigned again): no commit, but each fetch position must go back to the unresolved
    # record, or the job would never run (Membership.seek skips partitions no longer held).
    records = [taken(TP0, 5, "a", epoch=1), taken(TP0, 6, "b", epoch=1), taken(TP1, 2, "c", epoch=1)]
    plan = plan_commits(records, {(TP0, 5)}, {TP0: 2})
    assert plan.commits == {}
    assert plan.rewinds == {TP0: 6, TP1: 2}


class SilentRunner:
    """A runner whose job thread last showed life ``silent_s`` ago."""

    def __init__(self, silent_s: float) -> None:
        self.silent_s, self.renewals = silent_s, 0

    def stalled_for(self) -> float:
        return self.silent_s

    def renew_leases(self) -> None:
        self.renewals += 1


def worker_with(runner: SilentRunner, stalls: list[int]) -> Worker:
    ctx = SimpleNamespace(
        mode="gatys",
        worker=SimpleNamespace(blend_batch=1, stall_s=60.0),
        store=SimpleNamespace(cfg=SimpleNamespace(lease_s=8)),
    )
    worker = Worker(ctx, membership=None, options=WorkerOptions("c1", on_stall=lambda: stalls.append(1)))
    worker.runner = runner
    return worker


def test_a_hung_job_thread_ends_the_consumer_instead_of_renewing_its_lease():
    stalls: list[int] = []
    runner = SilentRunner(silent_s=61.0)
    worker_with(runner, stalls)._tick()
    assert stalls == [1] and runner.renewals == 0


def test_a_job_showing_life_keeps_its_lease():
    stalls: list[int] = []
    runner = SilentRunner(silent_s=59.0)
    worker_with(runner, stalls)._tick()
    assert stalls == [] and runner.renewals == 1


def test_runner_counts_silence_only_while_a_job_runs():
    runner = Runner(SimpleNamespace(), Control())
    assert runner.stalled_for() == 0.0
    runner.active_at = time.monotonic() - 30
    assert 29 < runner.stalled_for() < 60


class RecordingStore:
    """Records the progress writes a ProgressWriter makes; refuses them once ``fenced``."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, int, list[dict]]] = []
        self.fenced = False

    def update_progress(self, job_id, attempt, iteration, total, losses=None, *, points=()):
        self.writes.append((iteration, total, list(points)))
        return not self.fenced


def progress(iteration: int, total: int = 100) -> Progress:
    return Progress(iteration=iteration, total=total, elapsed_s=0.0, losses={"total": float(iteration)})


def test_progress_is_batched_and_the_last_iteration_always_written():
    from consumer.runner import PROGRESS_INTERVAL_S

    store, clock = RecordingStore(), FakeClock()
    writer = ProgressWriter(store, JOB, clock=clock)
    for i in range(1, 101):
        writer.add(progress(i))
        if i == 50:
            clock.advance(PROGRESS_INTERVAL_S)
    # The first write goes at once, the rest within the interval are buffered, one goes when the
    # interval has passed, and the last is forced.
    assert [w[:2] for w in store.writes] == [(1, 100), (51, 100), (100, 100)]
    written = [point["iteration"] for _, _, points in store.writes for point in points]
    assert written == list(range(1, 101))  # every loss point, once, in order


def test_a_flush_writes_what_is_buffered_and_a_refusal_supersedes():
    store = RecordingStore()
    writer = ProgressWriter(store, JOB, clock=FakeClock())
    writer.add(progress(1))
    writer.add(progress(2))  # within the interval: buffered
    writer.flush()
    assert store.writes[-1] == (2, 100, [{"iteration": 2, "total": 2.0}])
    store.fenced = True
    writer.add(progress(3))
    with pytest.raises(Superseded):
        writer.flush()


def test_cancel_requests_are_asked_at_most_every_poll_interval():
    from consumer import runner

    clock = FakeClock(monotonic=100.0)
    answers = iter([False, True])
    asked = []
    poll = runner.CancelPoll(lambda: asked.append(clock.monotonic()) or next(answers), clock=clock)
    assert [poll(), poll(), poll()] == [False, False, False] and asked == [100.0]  # one question
    clock.advance(2 * runner.CANCEL_POLL_S)
    assert poll() is True and poll() is True and len(asked) == 2  # once cancelled, it stays so


def test_s3_calls_run_side_by_side_in_order_and_all_end_before_an_error():
    from consumer.outputs import concurrently

    ended = []

    def slow(value):
        def call():
            time.sleep(0.05)
            ended.append(value)
            return value

        return call

    def failing():
        raise OSError("S3 away")

    started = time.monotonic()
    assert concurrently([slow(1), slow(2), slow(3)]) == [1, 2, 3]
    assert time.monotonic() - started < 0.14  # not one after another (0.15 s)
    ended.clear()
    with pytest.raises(OSError, match="S3 away"):
        concurrently([failing, slow("a"), slow("b")])
    assert sorted(ended) == ["a", "b"]  # the others finished before the error was raised

"""The scale bench's arithmetic (bench/scale_stats.py) and its plan (bench/scale_bench.py)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import scale_stats as stats  # noqa: E402
from scale_stats import Owned, Span  # noqa: E402


def span(partition, consumer, started, finished, published=None, job_id=None):
    published = started if published is None else published
    return Span(job_id or f"{partition}-{started}", partition, consumer, published, started, finished)


# --- throughput ----------------------------------------------------------------------------------


def test_jobs_per_second_counts_the_share_of_each_job_inside_the_window():
    jobs = [span(0, "a", 0, 2), span(0, "a", 2, 4), span(0, "a", 4, 6)]
    assert stats.jobs_per_second(jobs, (1, 5)) == pytest.approx(2 / 4)  # ½ + 1 + ½ jobs in 4 s


def test_gaps_between_jobs_lower_the_rate():
    jobs = [span(0, "a", 0, 1), span(0, "a", 2, 3)]  # busy half the time
    assert stats.jobs_per_second(jobs, (0, 4)) == pytest.approx(0.5)


def test_efficiency_is_against_linear_scaling_of_one_consumer():
    eff = stats.efficiency({1: 0.5, 2: 1.0, 4: 1.5, 6: 2.85})
    assert eff == pytest.approx({1: 1.0, 2: 1.0, 4: 0.75, 6: 0.95})
    assert stats.efficiency({2: 1.0}) == {2: 0.0}  # no one-consumer figure: nothing to compare with


# --- evenness ------------------------------------------------------------------------------------


def test_counts_and_skew():
    jobs = [span(0, "a", 0, 1), span(0, "a", 1, 2), span(1, "b", 0, 1), span(2, "b", 5, 6)]
    assert stats.counts_by(jobs, "partition") == {0: 2, 1: 1, 2: 1}
    assert stats.counts_by(jobs, "consumer", (0, 3)) == {"a": 2, "b": 1}
    assert stats.skew({0: 2, 1: 1, 2: 1}) == pytest.approx(2 / (4 / 3) - 1)
    assert stats.skew({0: 3, 1: 3}, expected=3) == pytest.approx(0.5)  # a third partition got none
    assert stats.skew({}) == 0.0


# --- idle partitions -----------------------------------------------------------------------------


def test_union_merges_overlaps():
    assert stats.union([(3, 4), (0, 1), (0.5, 2), (2, 2)]) == [(0, 2), (3, 4)]


def test_a_partition_waiting_behind_its_owners_other_work_is_not_idle():
    owners = [Owned(0, "a", 0, 100), Owned(1, "a", 0, 100)]
    jobs = [span(0, "a", 0, 2, published=0), span(1, "a", 2, 4, published=0), span(0, "a", 4, 6, published=0)]
    assert stats.idle_intervals(0, jobs, owners, (0, 6)) == []


def test_a_partition_without_an_owner_during_a_rebalance_is_idle_when_its_next_owner_is_free():
    # Partition 1 moves from a to b: revoked at 2, assigned to b at 5; b starts its job at 5.5.
    # Its job waits from 1, but until 2 its owner a is busy with partition 0: idle from 2 only.
    owners = [Owned(1, "a", 0, 2), Owned(1, "b", 5, 100), Owned(0, "a", 0, 100)]
    jobs = [span(0, "a", 0, 10, published=0), span(1, "b", 5.5, 7, published=1)]
    assert stats.idle_intervals(1, jobs, owners, (0, 10)) == [(2, 5.5)]
    assert stats.longest_idle([0, 1], jobs, owners, (0, 10)) == {0: 0.0, 1: 3.5}


def test_idle_needs_a_waiting_job():
    owners = [Owned(0, "a", 0, 10)]
    jobs = [span(0, "a", 0, 1, published=0), span(0, "a", 6, 7, published=4)]
    assert stats.idle_intervals(0, jobs, owners, (0, 10)) == [(4, 6)]


def test_a_dead_owner_leaves_its_partition_idle_until_another_takes_it():
    owners = [Owned(0, "dead", 0, 3), Owned(0, "b", 9, 20), Owned(1, "b", 0, 20)]
    jobs = [span(1, "b", 0, 4, published=0), span(0, "b", 10, 12, published=1)]
    # Until 3 the dead consumer owned it (not busy: its killed job left no record); then
    # unassigned with b (busy until 4) as next owner; b free from 4 to 10.
    assert stats.idle_intervals(0, jobs, owners, (2, 12)) == [(2, 3), (4, 10)]


# --- membership from the logs --------------------------------------------------------------------


def _line(when: datetime, text: str) -> str:
    return f"{when.strftime('%Y-%m-%d %H:%M:%S')},{when.microsecond // 1000:03d} INFO consumer.membership: {text}"


def test_membership_events_and_ownership_from_log_lines():
    t0 = datetime(2026, 12, 1, 9, 0, 0, 250_000)
    t1 = datetime(2026, 12, 1, 9, 0, 3, 500_000)
    t2 = datetime(2026, 12, 1, 9, 0, 7)
    lines = [
        _line(t0, "partitions assigned: sq.jobs.synthetic[0], sq.jobs.synthetic[1]"),
        "2026-12-01 09:00:01,000 INFO consumer.runner: job x attempt 1 claimed",
        _line(t1, "partitions revoked: sq.jobs.synthetic[0], sq.jobs.synthetic[1]"),
        _line(t2, "partitions assigned: sq.jobs.synthetic[1]"),
    ]
    events = stats.membership_events(lines)
    assert [(kind, parts) for _, kind, parts in events] == [
        ("assigned", (0, 1)),
        ("revoked", (0, 1)),
        ("assigned", (1,)),
    ]
    assert events[0][0] == pytest.approx(t0.timestamp())
    owned = stats.ownership("a", events, gone_at=t2.timestamp() + 10)
    assert [(o.partition, o.end - o.start) for o in owned] == [(0, 3.25), (1, 3.25), (1, 10.0)]
    assert stats.settle_time(owned, (t1.timestamp(), t2.timestamp() + 1)) == pytest.approx(t2.timestamp())


# --- the bench's plan ----------------------------------------------------------------------------


def test_plan_joins_then_leaves_then_kills():
    import scale_bench

    stages = scale_bench.plan([1, 2, 4, 6], leave=True, kill=True)
    assert [(s.kind, s.consumers) for s in stages] == [
        ("join", 1), ("join", 2), ("join", 4), ("join", 6), ("leave", 4), ("kill", 3)
    ]  # fmt: skip
    assert [(s.kind, s.consumers) for s in scale_bench.plan([1, 2], leave=False, kill=False)] == [
        ("join", 1), ("join", 2)
    ]  # fmt: skip

"""Pure bookkeeping of the records a consumer has taken: batches, duplicates, what to commit.

A consumer takes records (one for Gatys, several for an engine whose kind batches, such as blend),
runs them, and then commits each partition's offset only up to the first record that was not
resolved, and only for partitions it still owns *in the same assignment* it took them under (the
partition's ``epoch``): after a revocation another member may have moved on, and committing would
move its offset back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kafka import TopicPartition

from consumer.engines.registry import kind


@dataclass(frozen=True)
class Taken:
    """One record taken from the topic, with the assignment epoch of its partition at the time."""

    tp: TopicPartition
    offset: int
    epoch: int
    value: bytes
    job_id: str | None = None  # None: the message could not be decoded


@dataclass(frozen=True)
class CommitPlan:
    commits: dict[TopicPartition, int]  # next offset to read, per partition still owned
    rewinds: dict[TopicPartition, int]  # where to seek so unresolved records are read again


def batch_limit(mode: str, blend_batch: int) -> int:
    """How many records one pass takes: an engine that ``batches`` (blend) up to ``blend_batch``,
    any other (Gatys) one at a time."""
    return max(1, blend_batch) if kind(mode).batches else 1


def group_duplicates(taken: Iterable[Taken]) -> list[list[Taken]]:
    """Records grouped by job id, first occurrence first; each group is run once.

    The same job can be taken twice in one batch (a retry republished it while the original was
    redelivered); claiming it twice would fence off the first claim.
    """
    groups: dict[str, list[Taken]] = {}
    singles: list[list[Taken]] = []
    for record in taken:
        if record.job_id is None:
            singles.append([record])
        else:
            groups.setdefault(record.job_id, []).append(record)
    return list(groups.values()) + singles


def plan_commits(
    taken: Iterable[Taken], resolved: set[tuple[TopicPartition, int]], epochs: Mapping[TopicPartition, int]
) -> CommitPlan:
    """Offsets to commit and to seek back to, given which records were resolved.

    ``epochs`` is the current assignment (partition → epoch). Only a partition owned in the same
    epoch as when its records were taken gets a commit: after a revocation another member may
    have moved on. Every partition with an unresolved record gets a rewind to it, whatever the
    epoch (:meth:`Membership.seek` applies it only to partitions the consumer still holds):
    kafka-python keeps the fetch position of a partition that stays with the same member across
    a rebalance, even one still in progress, so without the seek that record would be skipped and
    a later commit would move past it.
    """
    by_tp: dict[TopicPartition, list[Taken]] = {}
    for record in taken:
        by_tp.setdefault(record.tp, []).append(record)
    commits, rewinds = {}, {}
    for tp, records in by_tp.items():
        records.sort(key=lambda r: r.offset)
        pending = [r.offset for r in records if (tp, r.offset) not in resolved]
        if pending:
            rewinds[tp] = pending[0]
        if any(epochs.get(tp) != r.epoch for r in records):
            continue
        if not pending:
            commits[tp] = records[-1].offset + 1
        elif pending[0] > records[0].offset:
            commits[tp] = pending[0]
    return CommitPlan(commits, rewinds)

"""The scale bench's arithmetic, apart from its I/O: throughput, efficiency, skew, idle partitions.

Every input is plain data the bench collected: one :class:`Span` per job (its partition, the
consumer that ran it, when it was published, started and finished) and one :class:`Owned` per
stretch of time a consumer held a partition (from the consumers' "partitions assigned/revoked"
log lines). Times are seconds since the epoch. Nothing here sleeps, reads a file or a socket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

Interval = tuple[float, float]


@dataclass(frozen=True)
class Span:
    """One job's life as the records tell it."""

    job_id: str
    partition: int
    consumer: str  # who finished it ("" while unknown)
    published: float
    started: float
    finished: float


@dataclass(frozen=True)
class Owned:
    """``consumer`` held ``partition`` from ``start`` to ``end``."""

    partition: int
    consumer: str
    start: float
    end: float


# --- throughput ----------------------------------------------------------------------------------


def overlap(a: Interval, b: Interval) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def jobs_per_second(spans: Iterable[Span], window: Interval) -> float:
    """Jobs done per second in ``window``, counting each job by the share of it inside the window.

    A count of jobs that *finished* in the window is off by up to one job per consumer at each
    edge (±7 % for fifteen jobs a consumer); the fractional count is not, and it still charges the
    gaps between jobs (commits, polls, claims) to the consumers, because a gap holds no job.
    """
    spans = [s for s in spans if s.finished > s.started]
    length = window[1] - window[0]
    if not spans or length <= 0:
        return 0.0
    return sum(overlap((s.started, s.finished), window) / (s.finished - s.started) for s in spans) / length


def efficiency(rates: Mapping[int, float]) -> dict[int, float]:
    """Consumers → rate against ``consumers × rate(1)`` (linear scaling is 1.0)."""
    base = rates.get(1, 0.0)
    return {n: (rate / (n * base) if base > 0 else 0.0) for n, rate in rates.items()}


# --- evenness -----------------------------------------------------------------------------------


def counts_by(spans: Iterable[Span], key: str, window: Interval | None = None) -> dict:
    """Jobs per partition (``key="partition"``) or per consumer, started inside ``window`` if given."""
    counts: dict = {}
    for span in spans:
        if window is None or window[0] <= span.started < window[1]:
            value = getattr(span, key)
            counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def skew(counts: Mapping[object, int], expected: int | None = None) -> float:
    """How far the busiest one is above the mean: ``max / mean − 1`` (0.25 = 25 % above).

    ``expected`` counts the members that got nothing (a partition with no job is not in counts).
    """
    values = list(counts.values()) + [0] * max(0, (expected or 0) - len(counts))
    if not values or sum(values) == 0:
        return 0.0
    mean = sum(values) / len(values)
    return max(values) / mean - 1.0


# --- idle partitions ----------------------------------------------------------------------------


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, merged intervals."""
    merged: list[list[float]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _inside(intervals: Sequence[Interval], t: float) -> bool:
    return any(a <= t < b for a, b in intervals)


def _owner_at(owners: Sequence[Owned], t: float) -> str | None:
    """Who holds the partition at ``t``, else who gets it next (None: nobody ever again)."""
    for owned in owners:
        if owned.start <= t < owned.end:
            return owned.consumer
    later = [o for o in owners if o.start > t]
    return min(later, key=lambda o: o.start).consumer if later else None


def idle_intervals(
    partition: int, spans: Sequence[Span], owners: Sequence[Owned], window: Interval
) -> list[Interval]:
    """When ``partition`` had a job waiting that nobody worked on, inside ``window``.

    The partition is idle at ``t`` when one of its jobs was published and not started, none of
    its jobs is running, and the consumer that holds it (or, while it is unassigned during a
    rebalance, the one that gets it next) is not busy with another partition's job. A partition
    waiting behind its owner's other work is not idle: that is the owner's capacity, not the
    group's membership. So this is the time lost to joins, leaves, deaths and holds.
    """
    own = sorted((o for o in owners if o.partition == partition), key=lambda o: o.start)
    mine = [s for s in spans if s.partition == partition]
    running = union((s.started, s.finished) for s in mine)
    waiting = union((s.published, s.started) for s in mine)
    busy: dict[str, list[Interval]] = {}
    for span in spans:
        busy.setdefault(span.consumer, []).append((span.started, span.finished))
    busy = {c: union(i) for c, i in busy.items()}
    cuts = {window[0], window[1]}
    for s in mine:
        cuts.update((s.published, s.started, s.finished))
    for o in own:
        cuts.update((o.start, o.end))
    for intervals in busy.values():
        for a, b in intervals:
            cuts.update((a, b))
    points = sorted(t for t in cuts if window[0] <= t <= window[1])
    idle: list[Interval] = []
    for a, b in zip(points, points[1:], strict=False):
        mid = (a + b) / 2
        if not _inside(waiting, mid) or _inside(running, mid):
            continue
        owner = _owner_at(own, mid)
        if owner is None or not _inside(busy.get(owner, []), mid):
            idle.append((a, b))
    return union(idle)


def longest_idle(
    partitions: Iterable[int], spans: Sequence[Span], owners: Sequence[Owned], window: Interval
) -> dict[int, float]:
    """Partition → its longest unbroken idle stretch inside ``window``, in seconds."""
    out = {}
    for p in partitions:
        stretches = idle_intervals(p, spans, owners, window)
        out[p] = max((b - a for a, b in stretches), default=0.0)
    return out


# --- membership from the consumers' logs ---------------------------------------------------------

_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+: partitions (?P<kind>assigned|revoked): (?P<tps>.*)$"
)
_TP = re.compile(r"\[(\d+)\]")


def membership_events(lines: Iterable[str]) -> list[tuple[float, str, tuple[int, ...]]]:
    """``(time, "assigned"|"revoked", partitions)`` from a consumer's log (``consumer.membership``).

    The log's ``asctime`` is local time, as ``datetime.timestamp`` reads a naive time.
    """
    events = []
    for line in lines:
        match = _LINE.match(line.strip())
        if match:
            when = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            events.append((when, match["kind"], tuple(int(p) for p in _TP.findall(match["tps"]))))
    return events


def ownership(
    consumer: str, events: Iterable[tuple[float, str, tuple[int, ...]]], gone_at: float
) -> list[Owned]:
    """Stretches of ownership from one consumer's events; what it still holds ends at ``gone_at``
    (the time it was stopped or killed, or the end of the run)."""
    held: dict[int, float] = {}
    out = []
    for when, kind, partitions in sorted(events):
        for p in partitions:
            if kind == "assigned":
                held.setdefault(p, when)
            elif p in held:
                out.append(Owned(p, consumer, held.pop(p), when))
    out += [Owned(p, consumer, start, max(start, gone_at)) for p, start in held.items()]
    return sorted(out, key=lambda o: (o.partition, o.start))


def settle_time(owners: Iterable[Owned], window: Interval) -> float | None:
    """When the last partition was assigned inside ``window`` (the end of its rebalances), if any was."""
    starts = [o.start for o in owners if window[0] <= o.start < window[1]]
    return max(starts) if starts else None

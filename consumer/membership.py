"""Group membership of one consumer: partition ownership, pause/poll keep-alive, commits.

A job may run for minutes. kafka-python's ``max_poll_interval_ms`` is also the rebalance timeout,
so raising it would stall every rebalance of the group for that long; instead the main thread
keeps calling ``poll()`` while the job runs, with every assigned partition paused so that no new
record is handed out. Each assignment of a partition gets a new *epoch*, so that work taken under
an old assignment is never committed after the partition was revoked.

A partition can also be *held*: paused until a given time, while its first unresolved record
waits to be read again (its job is leased by a live consumer elsewhere, or its retry is in
backoff). Polls go on meanwhile, so the consumer stays in the group and other partitions flow.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from stylequeue.clock import SYSTEM, Clock

log = logging.getLogger(__name__)

# While a job runs: a short poll (group heartbeats, rebalances), then a wait on the job itself,
# so the loop returns as soon as the job is done rather than at the end of a long poll.
KEEP_ALIVE_POLL_MS = 10
KEEP_ALIVE_WAIT_S = 0.1
# How long a blend batch waits for more records once it has one. Every lone job pays it, so it only
# takes what is queued already (one fetch round trip); it does not wait for jobs yet to come:
# under load they queue up while a batch runs, and the next take gets them all.
TOP_UP_POLL_MS = 5


class Membership(ConsumerRebalanceListener):
    """Wraps a subscribed KafkaConsumer; only the thread that polls may call it.

    Built before the consumer, which is subscribed with this object as its rebalance listener::

        membership = Membership()
        membership.consumer = bus.make_consumer(cfg, mode, client_id, listener=membership)
    """

    def __init__(self, consumer=None, *, clock: Clock = SYSTEM) -> None:
        self.consumer = consumer
        self.clock = clock  # when holds run out
        self.epochs: dict[TopicPartition, int] = {}
        self._epoch_counter = itertools.count(1)
        self._busy = False
        self.holds: dict[TopicPartition, float] = {}  # partition → monotonic time it resumes
        self.resume_at: dict[TopicPartition, int] = {}  # partition → offset a held one resumes from

    # --- rebalance listener (called from inside poll, on the polling thread) -----------------

    def on_partitions_revoked(self, revoked) -> None:
        for tp in revoked:
            self.epochs.pop(tp, None)
            self.holds.pop(tp, None)  # its records are read again by whoever gets it
            self.resume_at.pop(tp, None)
        if revoked:
            log.info("partitions revoked: %s", _names(revoked))

    def on_partitions_assigned(self, assigned) -> None:
        for tp in assigned:
            self.epochs[tp] = next(self._epoch_counter)
        if assigned and self._busy:
            self.consumer.pause(*assigned)  # a job is running: take nothing new yet
        if assigned:
            log.info("partitions assigned: %s", _names(assigned))

    # --- taking records ------------------------------------------------------------------------

    def take(self, limit: int, timeout_ms: int) -> list:
        """Up to ``limit`` records; waits ``timeout_ms`` for the first, briefly for the rest."""
        self._resume_ready()
        records = self._poll(timeout_ms, limit)
        while records and len(records) < limit:
            more = self._poll(TOP_UP_POLL_MS, limit - len(records))
            if not more:
                break
            records += more
        return records

    def _poll(self, timeout_ms: int, max_records: int) -> list:
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        return [record for records in batches.values() for record in records]

    def keep_alive(self, job: Future, tick: Callable[[], object] = lambda: None) -> None:
        """Poll with every partition paused until ``job`` is done: stays in the group, takes nothing.

        ``tick()`` runs between polls (liveness, drain deadline, lease renewal).
        """
        self._busy = True
        try:
            self.consumer.pause(*self.consumer.assignment())
            while not job.done():
                self._give_back(self._poll(KEEP_ALIVE_POLL_MS, 500))
                self.consumer.pause(*self.consumer.assignment())
                tick()
                wait([job], timeout=KEEP_ALIVE_WAIT_S)
        finally:
            # The partitions stay paused until the caller has committed and sought back over what
            # it could not resolve; the next take() resumes them. Resumed here, kafka-python's IO
            # thread could fetch from the old position at once, and that fetch's answer can move
            # the position past a record the caller then seeks back to: a job deferred for its
            # retry backoff was never read again (found by tests/test_faults.py).
            self._busy = False

    def hold_all(self, seconds: float, offsets: Mapping[TopicPartition, int]) -> None:
        """Take nothing at all for ``seconds``, then read each partition in ``offsets`` again from
        its offset. Every partition, not only the deferred ones: a partition paused while the
        others go on being fetched was, with the local broker, never fetched again after it was
        resumed (its deferred record was never read again: a job stuck ``queued`` for good), and
        a consumer that pauses everything stops fetching, then starts afresh (tests/test_worker.py)."""
        for tp in self.consumer.assignment():
            self.hold(tp, seconds, offsets.get(tp))

    def hold(self, tp: TopicPartition, seconds: float, offset: int | None = None) -> None:
        """Take nothing from ``tp`` for ``seconds`` (while it is still assigned to this consumer),
        then read it again from ``offset`` (sought once more on resume, for the same reason)."""
        if tp in self.consumer.assignment():
            self.holds[tp] = self.clock.monotonic() + seconds
            if offset is not None:
                self.resume_at[tp] = offset
            self.consumer.pause(tp)

    def _resume_ready(self) -> None:
        """Resume every paused partition whose hold (if any) is over."""
        now = self.clock.monotonic()
        seeks = {}
        for tp, until in list(self.holds.items()):
            if until <= now or tp not in self.epochs:
                del self.holds[tp]
                offset = self.resume_at.pop(tp, None)
                if offset is not None and tp in self.epochs:
                    seeks[tp] = offset
        ready = [tp for tp in self.consumer.paused() if tp not in self.holds]
        if ready:
            self.consumer.resume(*ready)
        for tp, offset in seeks.items():
            self.consumer.seek(tp, offset)

    def _give_back(self, records: list) -> None:
        """Seek back over records a paused poll returned anyway (a partition assigned mid-poll)."""
        first: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            first[tp] = min(record.offset, first.get(tp, record.offset))
        for tp, offset in first.items():
            self.consumer.seek(tp, offset)

    # --- offsets -------------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """Commit ``offsets`` synchronously; False (logged) if the group rebalanced meanwhile."""
        if not offsets:
            return True
        try:
            self.consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
            return True
        except (CommitFailedError, KafkaError) as exc:
            # Not fatal: the records are read again and their jobs, already terminal, are skipped.
            log.warning("commit of %s failed: %s", offsets, exc)
            return False

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Seek the partitions this consumer still holds (also mid-rebalance, before reassignment)."""
        held = self.consumer.assignment()
        for tp, offset in offsets.items():
            if tp in held:
                self.consumer.seek(tp, offset)

    def close(self) -> None:
        """Leave the group now (its partitions move to the other members at once)."""
        self.consumer.close(autocommit=False)


def _names(tps) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps))

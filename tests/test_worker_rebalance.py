"""The worker's offset handling across a real rebalance (Tansu broker, kafka-python consumers).

The job runner is replaced by a recorder: what is under test is which records the worker reads
again and which offsets it commits, not what a job does.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

from services import wait_for

from consumer.membership import Membership
from consumer.worker import Worker, WorkerOptions
from stylequeue import bus, config
from stylequeue.job import Inputs, Job


class RecordingRunner:
    """Defers the first job once, while ``during_first`` runs; resolves everything else."""

    def __init__(self, during_first) -> None:
        self.passes: list[list[str]] = []
        self.deferred: dict[str, float] = {}
        self.during_first = during_first

    def run(self, jobs: list[Job]) -> dict[str, bool]:
        ids = [job.id for job in jobs]
        self.passes.append(ids)
        if len(self.passes) == 1:
            self.during_first()
            self.deferred = {ids[0]: 0.2}
            return {ids[0]: False}
        self.deferred = {}
        return dict.fromkeys(ids, True)

    def renew_leases(self) -> None:
        pass

    def stalled_for(self) -> float:
        return 0.0


def second_member(cfg: config.KafkaConfig, joined: threading.Event, stop: threading.Event) -> None:
    consumer = bus.make_consumer(cfg, "gatys", "second-member")
    joined.set()
    while not stop.is_set():
        consumer.poll(timeout_ms=100)
    consumer.close()


def test_a_record_left_unresolved_through_a_rebalance_is_read_again(service_env):
    service_env["STYLEQUEUE_TOPIC_PARTITIONS"] = "1"
    cfg = config.load(config.KafkaConfig, service_env)
    bus.ensure_topics(cfg, ["gatys"])
    membership = Membership()
    membership.consumer = bus.make_consumer(cfg, "gatys", "first-member", listener=membership)
    wait_for(lambda: membership.consumer.poll(timeout_ms=100) == {} and membership.epochs, 30, message="join")
    first_epoch = dict(membership.epochs)
    joined, stop = threading.Event(), threading.Event()

    def rebalance_meanwhile() -> None:
        # A second member joins while the first job runs; wait until this member's partition was
        # revoked (the keep-alive polls on the main thread handle the rebalance meanwhile).
        threading.Thread(target=second_member, args=(cfg, joined, stop), daemon=True).start()
        joined.wait(30)
        wait_for(lambda: membership.epochs != first_epoch, 30, message="rebalance")

    runner = RecordingRunner(rebalance_meanwhile)
    ctx = SimpleNamespace(
        mode="gatys",
        worker=SimpleNamespace(blend_batch=1, stall_s=900.0),
        store=SimpleNamespace(cfg=SimpleNamespace(lease_s=8)),
    )
    worker = Worker(ctx, membership, WorkerOptions(consumer_id="first"))
    worker.runner = runner
    producer = bus.make_producer(cfg)
    try:
        for i in range(3):
            bus.publish(
                producer, cfg, Job(id=f"job-{i}", mode="gatys", params={}, inputs=Inputs("c", ("s",)))
            )
        wait_for(lambda: worker.cycle() or sum(map(len, runner.passes)) >= 4, 60, 0, last=True)
    finally:
        stop.set()
        producer.close()
    tp = next(iter(membership.consumer.assignment()))
    committed = membership.consumer.committed(tp)
    membership.close()
    assert runner.passes[:2] == [["job-0"], ["job-0"]], runner.passes
    assert [p for p in runner.passes[2:]] == [["job-1"], ["job-2"]]
    assert committed == 3

"""``stylequeue reconcile``: re-publish jobs whose Kafka message is missing (:mod:`stylequeue.reconciler`).

Run one or more anywhere (beside the consumers, in compose, in the local stack): a Redis lock lets
one of them work at a time, and another takes over within the lock's TTL when it dies. Outages of
Redis, Kafka or S3 are waited out with a bounded, jittered backoff and one warning per outage.
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reconcile", help="re-publish jobs whose Kafka message was lost (Redis is the source of truth)"
    )
    parser.add_argument("--once", action="store_true", help="one pass, then exit (0: it led the pass)")
    parser.add_argument(
        "--heartbeat-file", type=Path, help="touched after every pass (a container healthcheck)"
    )
    parser.set_defaults(func=run)


def build(environ: dict[str, str] | None = None) -> tuple[Any, Any]:
    """The reconciler on clients from the environment, and its settings."""
    from consumer.engines.registry import modes
    from stylequeue import bus, config, reconciler, status, storage

    kafka = config.load(config.KafkaConfig, environ)
    settings = config.load(config.ReconcilerConfig, environ)
    store = status.StatusStore.from_config(config.load(config.RedisConfig, environ))
    objects = storage.Storage.from_config(config.load(config.S3Config, environ))
    objects.ensure_bucket()
    producer = bus.make_producer(kafka, client_id="stylequeue-reconciler")
    lock_ttl = max(3 * settings.interval_s, 10.0)
    worker = reconciler.Reconciler(store, objects, producer, kafka, modes(), grace_s=settings.grace_s,
                                   orphan_age_s=settings.orphan_age_s, lock_ttl_s=lock_ttl,
                                   sweep_interval_s=settings.sweep_interval_s)  # fmt: skip
    return worker, settings


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker, settings = None, None
    failures = 0
    while not stop.is_set():
        try:
            if worker is None:
                worker, settings = build()
            done = worker.run_once()
            if args.heartbeat_file is not None:
                args.heartbeat_file.touch()
            if failures:
                log.info("reconciler: services answer again")
            failures = 0
            if args.once:
                return 0 if done else 1
            stop.wait(settings.interval_s)
        except Exception as exc:  # a service away: wait it out, say so once
            failures += 1
            (log.warning if failures == 1 else log.debug)("reconciler: pass failed (%s); retrying", exc)
            if args.once:
                return 2
            stop.wait(min(MAX_BACKOFF_S, 2 ** min(failures, 5)) * random.uniform(0.5, 1.0))
    return 0

"""``stylequeue consumer --mode gatys|blend``: one consumer process (run one per device).

Builds every client from the environment (``STYLEQUEUE_*``, see :mod:`stylequeue.config`),
loads the engine once, makes sure the bucket and topics exist, then runs the
:class:`~consumer.worker.Worker` until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from typing import Any

from consumer.engines.registry import kind, modes

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "consumer",
        help="run jobs of one mode from its Kafka consumer group (one process per device)",
        description="Join the mode's consumer group and run its jobs until SIGTERM.",
    )
    parser.add_argument(
        "--mode", required=True, choices=sorted(modes()), help="which engine this consumer runs"
    )
    parser.add_argument("--consumer-id", help="name in reports and the group (default: host-pid-mode)")
    parser.add_argument(
        "--drain-seconds", type=float, default=None,
        help="on SIGTERM, how long the running job may go on before it is handed back (default: 20)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from consumer.worker import DRAIN_S, WorkerOptions

    # kafka-python logs every connection and fetch at INFO; keep its warnings only.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    consumer_id = args.consumer_id or f"{socket.gethostname()}-{os.getpid()}-{args.mode}"
    drain = DRAIN_S if args.drain_seconds is None else args.drain_seconds
    options = WorkerOptions(consumer_id=consumer_id, drain_s=drain)
    return serve(args.mode, options)


def serve(mode: str, options: Any, environ: dict[str, str] | None = None) -> int:
    from consumer.worker import Worker

    ctx, membership = build(mode, options.consumer_id, environ)
    worker = Worker(ctx, membership, options)
    worker.install_signal_handlers()
    if not ctx.engine_info["available"]:
        return idle_unavailable(worker, ctx)
    start_metrics(ctx.worker.metrics_port, mode, options.consumer_id)
    return worker.run()


def build(mode: str, consumer_id: str, environ: dict[str, str] | None = None) -> tuple[Any, Any]:
    """Clients, engine and group membership of one consumer."""
    from consumer.engines.registry import get_engine
    from consumer.membership import Membership
    from consumer.runner import Context
    from consumer.worker import engine_info
    from stylequeue import bus, config, status, storage

    kafka = config.load(config.KafkaConfig, environ)
    objects = storage.Storage.from_config(config.load(config.S3Config, environ))
    objects.ensure_bucket()
    statuses = status.StatusStore.from_config(config.load(config.RedisConfig, environ))
    engine_cfg = config.load(config.EngineConfig, environ)
    engine = get_engine(mode, engine_cfg, s3=objects.client, redis=statuses.redis)
    info = engine_info(engine)
    log.info("engine %s: %s", mode, info)
    bus.ensure_topics(kafka, [mode])
    producer = bus.make_producer(kafka, client_id=consumer_id)
    membership = Membership()
    membership.consumer = bus.make_consumer(kafka, mode, consumer_id, listener=membership)
    worker_cfg = config.load(config.WorkerConfig, environ)
    ctx = Context(mode, engine, statuses, objects, producer, kafka, worker_cfg, engine_info=info)
    return ctx, membership


def idle_unavailable(worker: Any, ctx: Any) -> int:
    """An engine that cannot run here takes no jobs, but says why until it is stopped."""
    log.error("the %s engine is unavailable: %s; taking no jobs", ctx.mode, ctx.engine_info["reason"])
    worker.membership.close()
    while not worker.stopping.is_set():
        worker.report()
        worker.stopping.wait(worker.options.report_interval_s)
    return 1


def start_metrics(port: int, mode: str, consumer_id: str, *, addr: str | None = None) -> Any:
    """This consumer's metrics: the mode's series at zero, the GPU collector, up=1, ``/metrics``.

    ``port`` 0 serves nothing (the series still count, for tests that read the registry); the worker
    marks the consumer stopped when it stops. ``STYLEQUEUE_METRICS_ADDR`` is loopback by default: a
    consumer's metrics are not published to every interface unless a deployment asks, as compose does.
    """
    from prometheus_client import start_http_server

    from consumer.gpu_metrics import register_gpu_collector
    from stylequeue import config, metrics

    metrics.init_series([mode], style_cache=kind(mode).style_cache)
    register_gpu_collector()
    metrics.consumer_heartbeat(mode, consumer_id)
    if not port:
        return None
    if addr is None:
        addr = config.load(config.WorkerConfig).metrics_addr
    server, _thread = start_http_server(port, addr)
    log.info("consumer metrics on http://%s:%d/metrics", addr, port)
    return server

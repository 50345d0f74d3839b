"""``stylequeue api``: run the HTTP API under gunicorn (``api/gunicorn.conf.py``); ``stylequeue
provision``: create the bucket and topics it needs, once, before (compose's and Kubernetes' init step).

Provisioning is a step of its own, not part of the API's start: a worker (or gunicorn's master)
that had to reach S3 and Kafka to boot would crash-loop while either is down, instead of serving
``/readyz`` 503. An init step runs once the services are up (compose waits for their healthchecks;
Kubernetes retries its Job), and the API never waits on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from api.backing import provision, service_name
from api.service import Settings
from stylequeue.errors import ServiceUnavailable

CONF = Path(__file__).with_name("gunicorn.conf.py")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("api", help="run the HTTP API under gunicorn")
    parser.add_argument("--bind", help="host:port to listen on (default: STYLEQUEUE_API_BIND, 0.0.0.0:8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default: STYLEQUEUE_API_WORKERS, 2)")
    parser.set_defaults(func=run)
    init = subparsers.add_parser(
        "provision",
        help="create the S3 bucket and the Kafka topics unless they exist (an init step; idempotent)",
    )
    init.set_defaults(func=run_provision)


def run(args: argparse.Namespace) -> int:
    Settings.load()  # fail here, naming the variable, rather than in every worker
    env = dict(os.environ)
    # Several workers: metrics are summed from files in one shared folder (multiprocess mode).
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="stylequeue-api-metrics-"))
    argv = [sys.executable, "-m", "gunicorn", "-c", str(CONF)]
    if args.bind:
        argv += ["--bind", args.bind]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    os.execvpe(sys.executable, [*argv, "api.app:create_app()"], env)
    return 0  # not reached: exec replaces this process


def run_provision(args: argparse.Namespace) -> int:
    settings = Settings.load()
    try:
        topics = provision(settings)
    except Exception as exc:  # the service's name for the operator, with the client's own words
        raise ServiceUnavailable(f"{service_name(exc) or 'a backing service'} is unavailable: {exc}") from exc
    print(f"provisioned bucket {settings.s3.bucket} and topics {', '.join(topics)}")
    return 0

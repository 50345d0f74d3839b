"""``stylequeue api``: run the HTTP API under gunicorn (``api/gunicorn.conf.py``)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from api.service import Settings

CONF = Path(__file__).with_name("gunicorn.conf.py")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("api", help="run the HTTP API under gunicorn")
    parser.add_argument("--bind", help="host:port to listen on (default: STYLEQUEUE_API_BIND, 0.0.0.0:8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default: STYLEQUEUE_API_WORKERS, 2)")
    parser.set_defaults(func=run)


def gunicorn_argv(args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "gunicorn", "-c", str(CONF)]
    if args.bind:
        argv += ["--bind", args.bind]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    return argv + ["api.app:create_app()"]


def run(args: argparse.Namespace) -> int:
    Settings.load()  # fail here, naming the variable, rather than in every worker
    env = dict(os.environ)
    # Several workers: metrics are summed from files in one shared folder (multiprocess mode).
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="stylequeue-api-metrics-"))
    os.execvpe(sys.executable, gunicorn_argv(args), env)
    return 0  # not reached: exec replaces this process

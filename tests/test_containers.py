"""Where the service fixtures get their services: variables, then Docker containers, then local ones."""

from __future__ import annotations

import os
import socket
import time

import containers
import pytest

from launcher import localstack

VARIABLE = "STYLEQUEUE_REDIS_URL"


class Probe:
    """A Docker probe with a fixed answer that records whether it was asked."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.answer


@pytest.fixture
def fresh_probe():
    """The real Docker probe with its once-per-session answer forgotten before and after the test."""
    containers.docker_reachable.cache_clear()
    yield containers.docker_reachable
    containers.docker_reachable.cache_clear()


def test_a_set_variable_wins_and_docker_is_not_asked():
    probe = Probe(True)
    assert containers.choose_source(VARIABLE, {VARIABLE: "redis://r:6379/0"}, probe) == containers.ENV
    assert probe.asked == 0


def test_containers_when_docker_answers_and_no_variable_is_set():
    probe = Probe(True)
    assert containers.choose_source(VARIABLE, {VARIABLE: ""}, probe) == containers.CONTAINERS
    assert probe.asked == 1


def test_local_services_when_docker_does_not_answer():
    probe = Probe(False)
    assert containers.choose_source(VARIABLE, {}, probe) == containers.LOCAL
    assert probe.asked == 1


@pytest.mark.parametrize("switch", ["0", " 0 "])
def test_switching_containers_off_skips_the_probe(switch):
    probe = Probe(True)
    assert containers.choose_source(VARIABLE, {containers.SWITCH: switch}, probe) == containers.LOCAL
    assert probe.asked == 0


def test_service_source_logs_its_choice(monkeypatch, caplog):
    monkeypatch.delenv(VARIABLE, raising=False)
    monkeypatch.setenv(containers.SWITCH, "0")
    with caplog.at_level("INFO", logger=containers.log.name):
        assert containers.service_source(VARIABLE) == containers.LOCAL
    assert f"{VARIABLE}: local service" in caplog.text


def test_an_engine_that_refuses_means_no_docker_at_once(monkeypatch, fresh_probe):
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{localstack.free_port()}")
    started = time.monotonic()
    assert fresh_probe() is False
    assert time.monotonic() - started < 1.0


def test_an_engine_that_never_answers_is_given_up_after_the_ping_timeout(monkeypatch, fresh_probe):
    # Accepts connections (the kernel's backlog) but never replies: a hung Docker engine.
    with socket.socket() as silent:
        silent.bind((localstack.LOOPBACK, 0))
        silent.listen(8)
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        assert fresh_probe() is False
        elapsed = time.monotonic() - started
    assert containers.PING_TIMEOUT_S * 0.9 <= elapsed < containers.PING_TIMEOUT_S * 2 + 1


@pytest.mark.parametrize(
    ("service", "repository"), [("kafka", "apache/kafka:"), ("redis", "redis:"), ("minio", "minio/minio:")]
)
def test_images_are_the_ones_docker_compose_pins(service, repository):
    image = containers.compose_image(service)
    assert image.startswith(repository)
    assert not image.endswith(":latest")


def test_a_container_service_exports_its_env_while_it_runs(monkeypatch):
    monkeypatch.setenv("STYLEQUEUE_S3_ACCESS_KEY", "before")
    monkeypatch.delenv("STYLEQUEUE_S3_SECRET_KEY", raising=False)
    service = containers.ContainerService(
        "minio", "http://h:1", None, {"STYLEQUEUE_S3_ACCESS_KEY": "a", "STYLEQUEUE_S3_SECRET_KEY": "s"}
    )
    service.export_env()
    env = localstack.service_env("k:1", "redis://r/0", service.url)
    assert (env["STYLEQUEUE_S3_ACCESS_KEY"], env["STYLEQUEUE_S3_SECRET_KEY"]) == ("a", "s")
    service.stop()
    service.stop()  # idempotent
    assert os.environ["STYLEQUEUE_S3_ACCESS_KEY"] == "before"
    assert "STYLEQUEUE_S3_SECRET_KEY" not in os.environ


def _docker_usable() -> bool:
    return os.environ.get(containers.SWITCH, "1").strip() != "0" and containers.docker_reachable()


@pytest.mark.integration
@pytest.mark.skipif(not _docker_usable(), reason="no Docker engine (or STYLEQUEUE_TESTCONTAINERS=0)")
def test_containers_serve_the_application_clients(monkeypatch):
    from services import Clients, unique_names

    for name in ("STYLEQUEUE_S3_ACCESS_KEY", "STYLEQUEUE_S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)  # restored by stop(), then by monkeypatch
    started = [containers.start_kafka(), containers.start_redis(), containers.start_minio()]
    try:
        env = localstack.service_env(*(service.url for service in started))
        assert env["STYLEQUEUE_S3_ACCESS_KEY"] == containers.MINIO_ACCESS_KEY
        env.update(unique_names("tc"))
        clients = Clients(env)
        try:
            job = clients.submit("blend", {"image_size": 32})
            assert clients.store.get(job.id).id == job.id
            assert clients.storage.get(job.inputs.content).startswith(b"\x89PNG")
            assert _first_key(clients, "blend") == job.id
        finally:
            clients.close()
    finally:
        for service in reversed(started):
            service.stop()
    assert "STYLEQUEUE_S3_ACCESS_KEY" not in os.environ


def _first_key(clients, mode: str) -> str:
    from stylequeue import bus

    consumer = bus.make_consumer(clients.kafka, mode, "tc-test", consumer_timeout_ms=30000)
    try:
        return next(consumer).key.decode()
    finally:
        consumer.close()

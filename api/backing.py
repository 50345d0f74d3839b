"""The API's backing services (redis, s3, kafka): provisioning them, reaching them lazily, and
naming the one an exception came from.

Flask-free, so the service layer, the error handlers and ``stylequeue provision`` share it. An
API worker never provisions and opens no connection while it boots (why: :mod:`api.commands`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kafka.errors import KafkaError
from redis.exceptions import RedisError

# A backing service's own exceptions, and the name a 503 gives it. Routes let these propagate
# (storage has already turned a missing object into NotFound), so every route answers a failed
# Redis, S3 or broker the same way: 503 "unavailable", never a 500.
SERVICE_ERRORS: dict[type[Exception], str] = {
    RedisError: "redis",
    BotoCoreError: "s3",
    ClientError: "s3",
    KafkaError: "kafka",
}


def service_name(exc: BaseException) -> str | None:
    """The backing service whose client raised ``exc`` (redis, s3, kafka), or None."""
    return next((name for kind, name in SERVICE_ERRORS.items() if isinstance(exc, kind)), None)


def unavailable_message(service: str) -> str:
    """What a client is told when ``service`` failed: its name, never its error."""
    return f"{service} is unavailable; try again later"


class LazyProducer:
    """A Kafka producer made on first use: ``KafkaProducer`` connects in its constructor, so the API
    builds it on its first publish or readiness check rather than at boot. A failed build raises
    (503 naming kafka) and is tried again at the next use; the lock makes a worker's threads share one."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._producer: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._producer is None:
                self._producer = self._factory()
        return getattr(self._producer, name)


def provision(settings: Any) -> list[str]:
    """Create the bucket, every mode's job topic and the dead-letter topic unless they exist, and
    return the topic names. ``settings`` is an :class:`api.service.Settings`."""
    from consumer.engines.registry import modes
    from stylequeue import bus
    from stylequeue.storage import Storage

    Storage.from_config(settings.s3).ensure_bucket()
    return bus.ensure_topics(settings.kafka, modes())

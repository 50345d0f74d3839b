"""Which backing service (redis, s3, kafka) an exception came from, and what a client is told.

Flask-free, so the service layer and the error handlers share it: a client learns the service's
name and that it is unavailable; the exception's text (hosts, ports) stays in the log.
"""

from __future__ import annotations

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

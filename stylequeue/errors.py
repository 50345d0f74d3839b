"""The project's named exceptions.

Each carries a stable machine-readable ``code``; the API maps them to HTTP statuses in one
place (``api.errors``), the CLI prints their message and exits non-zero, and the consumer
records ``code``/``message`` on the failed job.
"""

from __future__ import annotations


class StylequeueError(Exception):
    """Base class: every error the project raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(StylequeueError):
    """A parameter or upload is not acceptable; ``field`` names it."""

    code = "invalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(StylequeueError):
    """An environment variable is missing or malformed; ``field`` is the variable's name."""

    code = "config"
    __str__ = ValidationError.__str__  # "VARIABLE: message"


class ArtifactError(StylequeueError):
    """A weight file or model artifact is missing, unreachable or malformed."""

    code = "artifact"


class EngineUnavailable(StylequeueError):
    """An engine cannot run here (weights missing, unknown mode); the message says why."""

    code = "engine_unavailable"


class JobCancelled(StylequeueError):
    """Raised inside an engine when the job's cancellation check answers yes."""

    code = "cancelled"


class NotFound(StylequeueError):
    code = "not_found"


class Conflict(StylequeueError):
    code = "conflict"


class ServiceUnavailable(StylequeueError):
    """A backing service (broker, Redis, S3) did not answer or refused; retrying later may work."""

    code = "unavailable"

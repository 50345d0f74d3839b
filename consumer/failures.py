"""What to do when a job fails: classify the exception, then retry, dead-letter or stop.

A *permanent* failure (bad parameters, an input missing from S3, an undecodable image) fails the
same way on every try, so it goes to the dead-letter topic at once. Anything else is *transient*
(a storage hiccup, out of memory, an engine that could not load its weights here) and is retried
until the job has had ``max_attempts`` attempts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from PIL import UnidentifiedImageError

from stylequeue.errors import JobCancelled, NotFound, StylequeueError, ValidationError


class Superseded(Exception):
    """This worker's attempt was fenced off: a newer attempt owns the job (or it was finished)."""


class JobReleased(Exception):
    """The worker is shutting down and hands the running job back to the queue."""


class Kind(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    CANCELLED = "cancelled"


class Step(enum.Enum):
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Failure:
    kind: Kind
    code: str
    message: str


PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ValidationError, NotFound, UnidentifiedImageError)


def classify(exc: BaseException) -> Failure:
    """The kind of ``exc`` and the code/message recorded on the failed job."""
    if isinstance(exc, JobCancelled):
        return Failure(Kind.CANCELLED, JobCancelled.code, str(exc) or "job cancelled")
    kind = Kind.PERMANENT if isinstance(exc, PERMANENT_ERRORS) else Kind.TRANSIENT
    return Failure(kind, error_code(exc), describe(exc))


def error_code(exc: BaseException) -> str:
    if isinstance(exc, StylequeueError):
        return exc.code
    if isinstance(exc, UnidentifiedImageError):
        return "invalid_image"
    return "internal"


def describe(exc: BaseException) -> str:
    """A one-line message for the job record (never a traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if isinstance(exc, StylequeueError):
        return text or name
    return f"{name}: {text}" if text else name


def next_step(failure: Failure, attempt: int, max_attempts: int) -> Step:
    """Retry a transient failure while attempts remain; everything else ends the job."""
    if failure.kind is Kind.CANCELLED:
        return Step.CANCEL
    if failure.kind is Kind.TRANSIENT and attempt < max_attempts:
        return Step.RETRY
    return Step.DEAD_LETTER


def exhausted_reason(attempt: int, max_attempts: int) -> Failure:
    """Why a job that comes back for attempt ``attempt`` is not run again (its consumers kept dying)."""
    return Failure(
        Kind.PERMANENT,
        "attempts_exhausted",
        f"gave up after {attempt - 1} attempt(s) (max {max_attempts}); the consumers running it stopped",
    )


# Storing a finished job's outcome is retried this long (0.5 + 1 + 2 + 4 + 8 s) before the record
# is left to be read again: rerunning a job because Redis blinked would run it twice.
STORE_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """How long the retry after failed (counted) attempt ``attempt`` waits: base, doubling, capped."""
    return min(cap_s, base_s * 2 ** max(0, attempt - 1))

"""Waiting out a backing service that went away: bounded, jittered backoff, one warning per outage.

A consumer whose broker or Redis restarts must neither exit nor spin: each failed pass waits a
little longer (0.5 s doubling to ``cap_s``, with jitter so that many consumers do not come back in
step), the first failure of an outage is logged as a warning with its cause and the rest at debug
level, and the first success says the outage is over.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Outage:
    what: str  # e.g. "the consumer loop"
    first_s: float = 0.5
    cap_s: float = 15.0
    failures: int = 0
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.5, 1.0))

    def failed(self, exc: BaseException) -> float:
        """Note a failure; the seconds to wait before trying again."""
        self.failures += 1
        delay = min(self.cap_s, self.first_s * 2 ** (self.failures - 1)) * self.jitter()
        if self.failures == 1:
            log.warning(
                "%s: %s: %s; retrying with backoff until it answers", self.what, type(exc).__name__, exc
            )
        else:
            log.debug("%s still failing (%d): %s", self.what, self.failures, exc)
        return delay

    def succeeded(self) -> None:
        if self.failures:
            log.warning("%s works again after %d failed tries", self.what, self.failures)
        self.failures = 0

"""The time that leases, backoffs, retries and grace periods are decided by, injectable for tests.

Code that decides "has this run out yet?" takes a ``clock=`` (keyword, :data:`SYSTEM` by default),
so a test can hand it a fake one (``tests/fake_clock.py``) and move time on instantly instead of
sleeping.
Two readings, because they answer different questions: :meth:`Clock.now` is wall time (epoch
seconds), for timestamps other processes compare (a record's ``retry_at``, a report's expiry);
:meth:`Clock.monotonic` is for intervals inside one process (a hold, a restart delay, a stall).

What a clock cannot move: expiries that Redis keeps itself (a key's TTL, such as a job's lease or
the reconciler's leader lock) run on the Redis server's own time; code and tests around those
keep real time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall time, seconds since the epoch."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals within one process."""

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""


class SystemClock:
    now = staticmethod(time.time)
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


SYSTEM: Clock = SystemClock()

"""The time that leases, backoffs, retries and grace periods are decided by, injectable for tests.

Code that decides "has this run out yet?" takes a ``clock=`` (keyword, :data:`SYSTEM` by default),
so a test can hand it a :class:`FakeClock` and move time on instantly instead of sleeping.
Two readings, because they answer different questions: :meth:`Clock.now` is wall time (epoch
seconds), for timestamps other processes compare (a record's ``retry_at``, a report's expiry);
:meth:`Clock.monotonic` is for intervals inside one process (a hold, a restart delay, a stall).

What a clock cannot move: expiries that Redis keeps itself (a key's TTL, such as a job's lease or
the reconciler's leader lock) run on the Redis server's own time; code and tests around those
keep real time.
"""

from __future__ import annotations

import threading
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
    """The real time."""

    now = staticmethod(time.time)
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


SYSTEM: Clock = SystemClock()


class FakeClock:
    """Time that moves only when told: ``sleep`` and ``advance`` move both readings at once.

    Wall time starts at the real time unless given, so records stamped by a fake-clocked store
    sort and expire sensibly beside those other (real-time) clients write to the same Redis.
    """

    def __init__(self, now: float | None = None, monotonic: float = 1000.0) -> None:
        self._lock = threading.Lock()  # a job thread and a test thread may both move it
        self._now = time.time() if now is None else now
        self._monotonic = monotonic
        self.slept: list[float] = []  # every sleep asked for, for tests to check the delays

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self._monotonic += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))

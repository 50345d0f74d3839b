"""A clock for tests: time moves only when told (see :mod:`stylequeue.clock`)."""

from __future__ import annotations

import threading
import time


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

"""Keep a set of child processes running, like docker-compose's ``restart: unless-stopped``.

``stylequeue dev`` runs a broker, Redis, S3, the API and consumers as children. One that dies —
killed, crashed, out of memory — is started again after a backoff, and the rest keep serving;
only Ctrl-C stops everything. The restart decision is pure (:class:`RestartPolicy`: how long to
wait, given how often and how recently a child failed) and tested without processes; the loop
(:class:`Supervisor`) only polls and calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from stylequeue.clock import SYSTEM, Clock

log = logging.getLogger(__name__)


class Supervised(Protocol):
    """Anything with a name that can say whether it is alive and be started again."""

    name: str

    def alive(self) -> bool: ...

    def exit_code(self) -> int | None: ...

    def restart(self) -> None: ...


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff: ``first_s``, doubling per consecutive failure up to ``max_s``.

    A child that stayed up ``stable_s`` since its last start is treated as healthy again, so a
    crash an hour later waits ``first_s``, not the backoff of last week's crash loop.
    """

    first_s: float = 1.0
    max_s: float = 30.0
    stable_s: float = 60.0

    def delay(self, failures: int) -> float:
        """Wait before restart number ``failures`` (1 = the first failure in a row)."""
        return min(self.max_s, self.first_s * 2 ** max(0, failures - 1))

    def failures_after(self, previous: int, started_at: float, died_at: float) -> int:
        """The consecutive-failure count once a child started at ``started_at`` died at ``died_at``."""
        return 1 if died_at - started_at >= self.stable_s else previous + 1


@dataclass
class _Watch:
    child: Supervised
    started_at: float
    failures: int = 0
    restart_at: float | None = None  # set while it is down and waiting for its backoff


@dataclass
class Supervisor:
    """Polls children and restarts the dead ones after :class:`RestartPolicy`'s backoff."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Clock = SYSTEM  # restart backoffs; a FakeClock in tests
    say: Callable[[str], None] = print
    _watches: list[_Watch] = field(default_factory=list)
    restarts: int = 0

    def watch(self, child: Supervised) -> None:
        self._watches.append(_Watch(child, self.clock.monotonic()))

    def check(self) -> None:
        """One pass: notice deaths, and restart whoever's backoff has run out."""
        now = self.clock.monotonic()
        for w in self._watches:
            if w.restart_at is None and not w.child.alive():
                w.failures = self.policy.failures_after(w.failures, w.started_at, now)
                wait = self.policy.delay(w.failures)
                w.restart_at = now + wait
                self.say(f"stylequeue dev: {w.child.name} exited with {w.child.exit_code()}; "
                         f"restarting it in {wait:.0f} s")  # fmt: skip
            elif w.restart_at is not None and now >= w.restart_at:
                self._restart(w, now)

    def _restart(self, w: _Watch, now: float) -> None:
        try:
            w.child.restart()
        except Exception as exc:  # it failed to come up: count it as another failure in a row
            w.failures += 1
            wait = self.policy.delay(w.failures)
            w.restart_at = now + wait
            self.say(f"stylequeue dev: {w.child.name} did not start ({exc}); trying again in {wait:.0f} s")
            return
        w.started_at, w.restart_at = self.clock.monotonic(), None
        self.restarts += 1
        self.say(f"stylequeue dev: {w.child.name} restarted")

    def run(self, interval_s: float = 0.5) -> None:
        """Supervise until interrupted (KeyboardInterrupt propagates to the caller)."""
        while True:
            self.check()
            self.clock.sleep(interval_s)

"""Parameters of the synthetic load-test engine (``mode = "synthetic"``, off unless enabled).

A synthetic job costs ``duration_s`` of wall time whatever the machine, so a load test measures the
queue (assignment, rebalances, commits) rather than how many cores the engine found. The mode
exists only where ``STYLEQUEUE_SYNTHETIC_ENGINE`` is on (:func:`stylequeue.modes.enabled_modes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from stylequeue.params import Params, param

MAX_DURATION_S = 3600.0


@dataclass(frozen=True)
class SyntheticParams(Params):
    mode = "synthetic"
    min_styles = 1
    max_styles = 1

    duration_s: float = param(
        1.0, "how long the job runs, in seconds (it sleeps)", min=0.0, max=MAX_DURATION_S
    )
    steps: int = param(
        10, "progress reports (and cancellation checks) spread over the duration", min=1, max=10_000
    )
    snapshot_every: int = param(0, "a snapshot every this many steps (0: none)", min=0, max=10_000)

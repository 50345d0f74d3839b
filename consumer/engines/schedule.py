"""The coarse-to-fine schedule: which sizes a Gatys run optimises at, and for how many iterations.

Large outputs are optimised small first and carried up by about √2 per stage (as
crowsonkb/style-transfer-pytorch does): the coarse stages are cheap and settle the large-scale
structure, so the expensive full-size stage only has to refine it. Unlike that project, the
iterations of all stages add up to the job's ``total_iterations``, so a job's cost and its
progress bar mean the same thing with and without the schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GROWTH = math.sqrt(2)
# The first (smallest) stage gets this many shares of the iterations, every later stage one:
# it starts from the initial image and has the most to do (crowsonkb gives it twice as many too).
FIRST_STAGE_SHARES = 2


@dataclass(frozen=True)
class Stage:
    """One stage: the longest side of the image and the iterations run at that size."""

    size: int
    iterations: int


def stage_sizes(final_size: int, min_size: int) -> list[int]:
    """Longest sides from the smallest (≥ ``min_size``) up to ``final_size``, about √2 apart."""
    sizes = [final_size]
    while (smaller := round(final_size / GROWTH ** len(sizes))) >= min_size:
        sizes.append(smaller)
    return sizes[::-1]


def split_iterations(total: int, n_stages: int) -> list[int]:
    """``total`` split over ``n_stages`` by shares (largest remainders), each stage at least one."""
    shares = [FIRST_STAGE_SHARES] + [1] * (n_stages - 1)
    exact = [total * s / sum(shares) for s in shares]
    counts = [max(1, math.floor(e)) for e in exact]
    # Hand what rounding left over to the stages that lost the most, earliest first on ties.
    order = sorted(range(n_stages), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan(
    final_size: int, total_iterations: int, *, min_size: int, coarse_to_fine: bool = True
) -> list[Stage]:
    """The stages of a run; a single stage when the schedule is off or the output is small."""
    if total_iterations < 1:
        raise ValueError("total_iterations must be at least 1")
    sizes = stage_sizes(final_size, min_size) if coarse_to_fine else [final_size]
    # Fewer iterations than stages: drop the coarsest stages, never the requested size.
    sizes = sizes[-total_iterations:]
    counts = split_iterations(total_iterations, len(sizes))
    return [Stage(size, n) for size, n in zip(sizes, counts, strict=True)]

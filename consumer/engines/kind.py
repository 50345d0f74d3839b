"""What the service knows about an engine without running it: its :class:`EngineKind`.

Each engine module (``consumer.engines.gatys`` …) declares one as ``KIND``, and everything that
used to compare mode names reads it instead: the API (titles, parameters, what ``/api/v1/engines``
tells the UI), the worker (batching), the runner and metrics (which series an engine moves) and
the local stack (the weights a dev machine may lack). Torch-free on purpose, like the engine
modules that declare it: the API imports them all and never loads a network; the implementation
is imported only when a consumer calls :meth:`EngineKind.factory`.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stylequeue.params import Params


@dataclass(frozen=True)
class EngineKind:
    params: type[Params]  # the parameter model; the mode's name and its style counts live on it
    title: str  # its name for people
    summary: str  # what it does and how long it takes, as /api/v1/engines says it
    # "module:function" taking (EngineConfig, s3=client | None, redis=client | None) and returning
    # an Engine; imported only when a consumer builds one.
    create: str
    batches: bool = False  # runs several jobs in one pass (``run_batch``): the worker takes up to a batch
    iterations: bool = False  # progress reports are optimisation iterations (the iterations counter)
    losses: bool = False  # progress carries losses: the job has a loss curve worth drawing
    live_snapshots: bool = False  # snapshots arrive while it runs, not only the result at the end
    resumes: bool = False  # hands checkpoints to its hooks: a retried attempt continues from the last
    style_cache: bool = False  # caches style codes (the style-cache lookup series)
    # EngineConfig → (the setting naming its weights, the command that installs them), or None
    # when they are there: what the local stack warns about before running random networks.
    missing_weights: Callable[[Any], tuple[str, str] | None] | None = None

    @property
    def mode(self) -> str:
        return self.params.mode

    def factory(self) -> Callable[..., Any]:
        return pkgutil.resolve_name(self.create)

"""What every engine is: one protocol, a progress record, the hooks a job hands in, the result.

Engines take and return PIL images so that the API, the consumer and the CLI never see tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from stylequeue.errors import JobCancelled
from stylequeue.params import Params


@dataclass(frozen=True)
class Progress:
    """Handed to ``Hooks.on_progress`` every iteration (Gatys) or stage (blend)."""

    iteration: int
    total: int
    elapsed_s: float
    losses: dict[str, float] = field(default_factory=dict)
    stage: str = ""
    size: tuple[int, int] | None = None  # (width, height) being worked on
    gpu_memory_mb: float | None = None


@dataclass(frozen=True)
class Checkpoint:
    """Where an iterative run can be picked up again (Temporal's heartbeat details, for an image):
    handed to ``Hooks.on_checkpoint`` with a snapshot, and back to :meth:`Engine.run` as ``resume``.
    ``image`` is what the engine optimises (before colours are put back), not the snapshot a client
    sees, so that a retried attempt continues the same optimisation."""

    iteration: int  # iterations done, counted over the whole run
    stage: str  # the stage that did the last of them, as ``Progress.stage`` names it ("2/3")
    image: Image.Image  # the optimised image at that stage's size, 8 bits a channel


@dataclass
class Hooks:
    """Callbacks a caller hands to :meth:`Engine.run`; every one is optional."""

    on_progress: Callable[[Progress], None] | None = None
    on_snapshot: Callable[[int, Image.Image], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    # A snapshot together with the checkpoint to resume from: given, it receives such snapshots
    # instead of ``on_snapshot``, so that a caller keeps both in one write.
    on_checkpoint: Callable[[int, Image.Image, Checkpoint], None] | None = None

    def progress(self, progress: Progress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)

    @property
    def wants_checkpoints(self) -> bool:
        """Whether a checkpoint is worth building (it costs a copy of the image off the device)."""
        return self.on_checkpoint is not None

    def snapshot(self, iteration: int, image: Image.Image, checkpoint: Checkpoint | None = None) -> None:
        if checkpoint is not None and self.on_checkpoint is not None:
            self.on_checkpoint(iteration, image, checkpoint)
        elif self.on_snapshot is not None:
            self.on_snapshot(iteration, image)

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise JobCancelled("job cancelled")


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""
    random_weights: bool = False  # dev/test networks: every report must say so
    model: str = ""  # the network this engine runs, as users should read it


@dataclass
class BatchItem:
    """One job handed to an engine's ``run_batch`` (an engine whose kind ``batches``)."""

    content: Image.Image
    styles: list[Image.Image]
    params: Params
    hooks: Hooks | None = None


@dataclass
class EngineResult:
    image: Image.Image
    history: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """Built once per process (weights loaded once), run for many jobs. Only an engine that hands
    checkpoints to its hooks takes ``resume``: the runner passes it only when the job has one."""

    mode: str

    def availability(self) -> Availability: ...

    def run(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        params: Params,
        hooks: Hooks | None = None,
        *,
        init_image: Image.Image | None = None,
        resume: Checkpoint | None = None,
    ) -> EngineResult: ...

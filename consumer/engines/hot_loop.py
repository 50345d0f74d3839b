"""The pieces of an optimisation loop that never waits for the device: an evaluation that reads
nothing back, the same evaluation captured as a CUDA graph (``STYLEQUEUE_CUDA_GRAPHS``: one launch
per iteration instead of hundreds) and a feed that brings the losses to the host asynchronously.

On a CPU the device *is* the host: copies are done when issued, so every iteration is reported
right after it runs, exactly as a synchronous loop would.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import torch

Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # pixels → (total, parts)
CUDA_GRAPH_WARMUP = 3  # eager evaluations on a side stream before capture (cuDNN autotuning)


class Evaluation:
    """``objective`` and its gradient at ``pixels``, times a factor fixed at the first call; after each
    call ``pixels.grad`` holds the scaled gradient and :attr:`parts` the unscaled loss parts
    (content, style, tv) of the point just evaluated.

    Both optimisers are blind to a constant factor on the objective except through fixed
    thresholds: L-BFGS drops curvature pairs with s·y < 1e-10 and Adam adds eps = 1e-8 to its
    denominator. Gradients per pixel range from ~1e-9 (a random or torchvision VGG with
    neural-style's weights) to ~1e2 (neural-style's Caffe VGG); dividing by the first gradient's
    mean magnitude puts every network in the range the thresholds were made for. Nothing else
    changes, with one intended exception: the first L-BFGS step, g·min(1, 1/|g|₁)·lr, vanishes
    when |g|₁ < 1 and is now always the |g|₁-normalised one.
    """

    def __init__(self, objective: Objective, pixels: torch.Tensor) -> None:
        self.objective, self.pixels = objective, pixels
        self.scale: torch.Tensor | None = None
        self.parts: torch.Tensor | None = None

    def __call__(self) -> torch.Tensor:
        self.pixels.grad = None
        total, parts = self.objective(self.pixels)
        total.backward()
        grad = self.pixels.grad
        assert grad is not None
        if self.scale is None:  # 1 / mean |grad| (1 for a zero gradient), as a device scalar
            mean = grad.abs().mean()
            self.scale = torch.where(mean > 0, 1.0 / mean, torch.ones_like(mean))
        grad.mul_(self.scale)
        self.parts = parts
        return total.detach() * self.scale


class GraphedEvaluation:
    """An :class:`Evaluation` captured as a CUDA graph, each call replaying it in one launch: the graph
    reads ``pixels`` and writes ``pixels.grad``, the loss and the parts in place, so the optimiser
    (which runs eagerly after each replay) sees the new values in the same tensors. Autocast inside
    must run with its weight cache off (see ``device.autocast``).

    Off CUDA there is nothing to capture: the evaluation runs eagerly and its results are
    copied into the same fixed tensors, so that the in-place behaviour the optimiser sees is the
    graph's (this is how the CPU tests check the graphed loop against the eager one).
    """

    def __init__(self, evaluation: Evaluation, *, warmup: int = CUDA_GRAPH_WARMUP) -> None:
        self.evaluation = evaluation
        self.pixels = evaluation.pixels
        self.graph = torch.cuda.CUDAGraph() if self.pixels.is_cuda else None
        self._warm_up(warmup)
        self.pixels.grad = None  # allocated anew inside the capture (the graph's memory pool)
        with torch.cuda.graph(self.graph) if self.graph is not None else contextlib.nullcontext():
            self.loss = evaluation()
        assert self.pixels.grad is not None and evaluation.parts is not None
        self.grad, self.parts = self.pixels.grad, evaluation.parts

    def _warm_up(self, count: int) -> None:
        """Eager evaluations first (the first one fixes the normalisation; cuDNN autotunes),
        on a side stream as ``torch.cuda.graph`` asks. They leave ``pixels`` as they are."""
        if self.graph is None:
            for _ in range(count):
                self.evaluation()
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(count):
                self.evaluation()
        torch.cuda.current_stream().wait_stream(side)

    def __call__(self) -> torch.Tensor:
        if self.graph is not None:
            self.graph.replay()
            return self.loss
        loss = self.evaluation()  # emulated replay: the same values in the same tensors
        assert self.pixels.grad is not None and self.evaluation.parts is not None
        self.grad.copy_(self.pixels.grad)
        self.parts.copy_(self.evaluation.parts)
        self.loss.copy_(loss)
        self.pixels.grad, self.evaluation.parts = self.grad, self.parts
        return self.loss


class LossFeed:
    """Each iteration's loss parts on their way to the host, handed out in order once arrived: on CUDA
    the copy goes to pinned memory without blocking, with an event that says when it has landed;
    :meth:`ready` hands out only the landed ones, :meth:`drain` waits for the rest (end of a stage,
    or a snapshot that must not run ahead of the progress)."""

    def __init__(self, device: torch.device, capacity: int) -> None:
        self.cuda = device.type == "cuda"
        self.host = torch.empty((capacity, 3), dtype=torch.float32, pin_memory=self.cuda)
        self._pending: deque[tuple[int, Any, Any]] = deque()
        self._next = 0

    def push(self, parts: torch.Tensor, info: Any) -> None:
        """``info`` comes back with ``parts`` (a device tensor of three) once they have arrived."""
        self.host[self._next].copy_(parts, non_blocking=self.cuda)
        event = None
        if self.cuda:
            event = torch.cuda.Event()
            event.record()
        self._pending.append((self._next, event, info))
        self._next += 1

    def ready(self) -> Iterator[tuple[list[float], Any]]:
        while self._pending and ((event := self._pending[0][1]) is None or event.query()):
            yield self._pop()

    def drain(self) -> Iterator[tuple[list[float], Any]]:
        while self._pending:
            event = self._pending[0][1]
            if event is not None:
                event.synchronize()
            yield self._pop()

    def _pop(self) -> tuple[list[float], Any]:
        index, _, info = self._pending.popleft()
        return self.host[index].tolist(), info

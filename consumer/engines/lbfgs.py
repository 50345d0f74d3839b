"""L-BFGS with a fixed step and a fixed iteration count, and no host synchronisation.

The seeds (neural-style, neural-style-pt) run ``torch.optim.LBFGS`` without a line search and
with tolerances that never stop it early: every iteration is one evaluation and one step of
``lr`` along the L-BFGS direction (Nocedal & Wright, algorithm 7.4, the two-loop recursion).
This is that algorithm, iterate for iterate, written so that no step reads a value back from
the device. torch's implementation decides on the host every iteration (``float(loss)``, the
tolerance checks, ``if ys > 1e-10``, ``min(1, 1/|g|₁)`` and every ``add_(alpha=tensor)``), each
a synchronisation that leaves a GPU idle and makes the loop impossible to capture as a CUDA
graph. Here every data-dependent choice is a ``torch.where`` on the device, and every host-side
choice depends only on the iteration count.

Departures from ``torch.optim.LBFGS`` (``max_iter=1`` per step, tolerances -1, no line search):

* a curvature pair with ``s·y ≤ 1e-10`` is stored with ρ = 0 (a pair that changes nothing)
  instead of being dropped, so the memory's length is known on the host. The direction is the
  same as torch's until the memory is full; after that such a pair pushes an old real pair out
  one iteration earlier than torch would;
* torch skips the step when the direction is not a descent direction (``g·d > 1`` with these
  tolerances). An L-BFGS direction with ρ > 0 pairs is always a descent direction, so this never
  fires and is left out;
* the stopping tests are left out: with negative tolerances they never stop a run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CURVATURE_EPS = 1e-10  # torch's threshold on s·y for keeping a curvature pair


class FixedStepLBFGS:
    """One L-BFGS iteration per :meth:`step`: evaluate, update the memory, move by ``lr``. ``closure()``
    must leave the gradient in ``param.grad`` (used as a flat view) and return the loss, not read."""

    def __init__(self, param: torch.Tensor, *, lr: float, history_size: int = 100) -> None:
        if not param.is_contiguous():
            raise ValueError("FixedStepLBFGS needs a contiguous parameter")
        self.param, self.lr, self.history_size = param, lr, history_size
        self.n_iter = 0
        self.dirs: list[torch.Tensor] = []  # y_i = g_{i+1} - g_i (torch's old_dirs)
        self.steps: list[torch.Tensor] = []  # s_i = x_{i+1} - x_i (torch's old_stps)
        self.rho: list[torch.Tensor] = []  # 1 / (y_i·s_i), or 0 for a pair too flat to use
        self.h_diag: torch.Tensor | float = 1.0  # scale of the initial inverse Hessian
        self._d: torch.Tensor | None = None  # last direction
        self._t: torch.Tensor | float = lr  # last step length
        self._prev_grad: torch.Tensor | None = None

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Evaluate ``closure`` at the current point, then take one step; returns the loss."""
        with torch.enable_grad():
            loss = closure()
        assert self.param.grad is not None, "the closure must compute param.grad"
        with torch.no_grad():
            self._step(self.param.grad.reshape(-1))
        return loss

    def _step(self, grad: torch.Tensor) -> None:
        self.n_iter += 1
        if self.n_iter == 1:
            direction = grad.neg()
            # torch: min(1, 1/|g|₁)·lr, decided on the host; the same number, left on the device.
            step = torch.clamp(1.0 / grad.abs().sum(), max=1.0) * self.lr
            self._prev_grad = grad.clone(memory_format=torch.contiguous_format)
            self.param.view(-1).addcmul_(direction, step)
        else:
            assert self._prev_grad is not None
            self._remember(grad.sub(self._prev_grad))
            direction = self._direction(grad)
            step = self.lr
            self._prev_grad.copy_(grad)
            self.param.view(-1).add_(direction, alpha=step)
        self._d, self._t = direction, step

    def _remember(self, y: torch.Tensor) -> None:
        """Add the newest curvature pair (y, s), dropping the oldest once the memory is full."""
        assert self._d is not None
        s = self._d.mul(self._t)
        ys = y.dot(s)
        usable = ys > CURVATURE_EPS
        rho = torch.where(usable, 1.0 / ys, torch.zeros_like(ys))
        self.h_diag = torch.where(usable, ys / y.dot(y), self.h_diag)
        if len(self.dirs) == self.history_size:
            del self.dirs[0], self.steps[0], self.rho[0]
        self.dirs.append(y)
        self.steps.append(s)
        self.rho.append(rho)

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        """−H·g by the two-loop recursion over the memory, newest pair first."""
        q = grad.neg()
        alphas: list[torch.Tensor] = [q] * len(self.dirs)  # placeholders, all overwritten below
        for i in range(len(self.dirs) - 1, -1, -1):
            alphas[i] = self.steps[i].dot(q) * self.rho[i]
            q.addcmul_(self.dirs[i], alphas[i], value=-1)  # q -= α_i·y_i, α_i left on the device
        r = q.mul(self.h_diag)
        for i in range(len(self.dirs)):
            beta = self.dirs[i].dot(r) * self.rho[i]
            r.addcmul_(self.steps[i], alphas[i] - beta)
        return r

"""consumer.engines.lbfgs and .hot_loop: the sync-free loop gives the plain loop's iterates on the CPU."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from test_gatys import picture

from consumer.engines import registry
from consumer.engines.base import Hooks
from consumer.engines.gatys import GatysParams
from consumer.engines.gatys_engine import GatysRun, make_optimizer, plan_for
from consumer.engines.hot_loop import Evaluation, GraphedEvaluation, LossFeed
from consumer.engines.image import size_for_longest
from consumer.engines.lbfgs import FixedStepLBFGS
from stylequeue.config import EngineConfig

N = 40
CONTENT = picture(40, 30, (230, 80, 40), seed=1)
STYLE = picture(32, 32, (40, 90, 220), seed=2)


def problem(seed: int = 0):
    """A smooth non-quadratic objective (a quartic term on a random positive-definite quadratic)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(N, N, generator=g)
    a = a @ a.T / N + 0.1 * torch.eye(N)
    b = torch.randn(N, generator=g)
    return lambda x: 0.5 * x @ a @ x - b @ x + 0.1 * (x**4).sum()


def iterates(make_optimizer, steps: int, f) -> torch.Tensor:
    x = torch.zeros(N, requires_grad=True)
    optimizer = make_optimizer(x)

    def closure() -> torch.Tensor:
        x.grad = None
        loss = f(x)
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        optimizer.step(closure)
        out.append(x.detach().clone())
    return torch.stack(out)


@pytest.mark.parametrize("history", [100, 4])  # 4: the memory fills and old pairs go
def test_same_iterates_as_torch_lbfgs_without_line_search(history):
    f = problem()
    plain = iterates(
        lambda x: torch.optim.LBFGS(
            [x], lr=0.5, max_iter=1, history_size=history, tolerance_grad=-1, tolerance_change=-1
        ),
        30,
        f,
    )
    ours = iterates(lambda x: FixedStepLBFGS(x, lr=0.5, history_size=history), 30, f)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)
    assert f(ours[-1]) < 0.5 * f(ours[0])


def test_a_pair_without_curvature_changes_nothing():
    f = problem(1)
    made: list[FixedStepLBFGS] = []
    iterates(lambda x: made.append(FixedStepLBFGS(x, lr=0.5)) or made[0], 5, f)  # some real pairs
    optimizer = made[0]
    grad = torch.randn(N, generator=torch.Generator().manual_seed(2))
    before = optimizer._direction(grad)
    optimizer._d, optimizer._t = torch.zeros(N), 1.0  # s = 0: s·y = 0, below the threshold
    optimizer._remember(torch.randn(N))
    assert optimizer.rho[-1] == 0
    torch.testing.assert_close(optimizer._direction(grad), before)


class HostReadError(AssertionError):
    pass


@contextlib.contextmanager
def no_host_reads(monkeypatch):
    """Fail on every way a tensor's value reaches Python (each one a device sync on a GPU)."""

    def refuse(*_args, **_kwargs):
        raise HostReadError("a tensor value was read on the host")

    with monkeypatch.context() as patch:
        for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
            patch.setattr(torch.Tensor, name, refuse)
        yield


def test_the_guard_catches_host_reads(monkeypatch):
    with no_host_reads(monkeypatch), pytest.raises(HostReadError):
        _ = torch.optim.LBFGS([torch.zeros(2, requires_grad=True)]).step(
            lambda: torch.zeros(2, requires_grad=True).sum()
        )


@pytest.fixture(scope="module")
def engine():
    return registry.create_engine("gatys", EngineConfig(device="cpu", random_weights=True))


def stage(engine, params: GatysParams) -> tuple[GatysRun, Evaluation]:
    run = GatysRun(engine.network("vgg19"), params, Hooks(), CONTENT, [STYLE], amp=engine.amp)
    (only,) = plan_for(params, CONTENT.size)
    size = size_for_longest(*CONTENT.size, only.size)
    objective, start = run._stage_setup(size, None)
    pixels = start.detach().contiguous().requires_grad_(True)
    return run, Evaluation(lambda px: objective(px / 255.0, px), pixels)


def test_a_gatys_iteration_reads_nothing_back(engine, monkeypatch):
    """Evaluation, L-BFGS step and loss copy: nothing the host waits for (Adam keeps its step
    count on the host; on CUDA it runs ``capturable``, checked by the GPU test below)."""
    _, evaluation = stage(engine, GatysParams(image_size=32, total_iterations=4, seed=0))
    optimizer = FixedStepLBFGS(evaluation.pixels, lr=1.0)
    feed = LossFeed(torch.device("cpu"), 4)
    with no_host_reads(monkeypatch):
        for i in range(4):
            optimizer.step(evaluation)
            feed.push(evaluation.parts, i)
    assert [info for _, info in feed.drain()] == [0, 1, 2, 3]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("graphs", [False, True])
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_cuda_iterations_never_synchronise(optimizer, graphs):
    config = EngineConfig(device="cuda", random_weights=True)
    engine = registry.create_engine("gatys", config)
    params = GatysParams(image_size=64, total_iterations=6, seed=0, optimizer=optimizer)
    run = GatysRun(engine.network("vgg19"), params, Hooks(), CONTENT, [STYLE], amp=engine.amp)
    (only,) = plan_for(params, CONTENT.size)
    objective, start = run._stage_setup(size_for_longest(*CONTENT.size, only.size), None)
    pixels = start.detach().contiguous().requires_grad_(True)
    evaluation = Evaluation(lambda px: objective(px / 255.0, px), pixels)
    closure = GraphedEvaluation(evaluation) if graphs else evaluation
    step = make_optimizer(params, pixels)
    feed = LossFeed(pixels.device, 6)
    step.step(closure)  # the first step may allocate and autotune
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(5):
            step.step(closure)
            feed.push(evaluation.parts, i)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(list(feed.drain())) == 5


def run_engine(engine, params: GatysParams, *, graphs: bool):
    run = GatysRun(engine.network("vgg19"), params, Hooks(), CONTENT, [STYLE], amp=engine.amp, graphs=graphs)
    result = run.execute(plan_for(params, CONTENT.size))
    return result.history, torch.from_numpy(np.array(result.image)).float()


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_graphed_loop_gives_the_eager_loops_iterates(engine, optimizer):
    """The graph path's in-place buffers (emulated on the CPU) against plain evaluations."""
    params = GatysParams(
        image_size=48, min_stage_size=32, total_iterations=8, seed=0, optimizer=optimizer,
        learning_rate=1.0 if optimizer == "lbfgs" else 10.0, snapshot_every=100,
    )  # fmt: skip
    eager_history, eager_image = run_engine(engine, params, graphs=False)
    graphed_history, graphed_image = run_engine(engine, params, graphs=True)
    assert [h["iteration"] for h in graphed_history] == list(range(1, 9))
    for eager, graphed in zip(eager_history, graphed_history, strict=True):
        assert graphed["total"] == pytest.approx(eager["total"], rel=1e-4)
    assert (graphed_image - eager_image).abs().max() <= 1


def test_engine_lbfgs_gives_torch_lbfgs_iterates(engine):
    """The whole Gatys objective: FixedStepLBFGS against torch.optim.LBFGS, iterate for iterate."""
    params = GatysParams(image_size=32, total_iterations=6, seed=0)
    paths = []
    for make in (
        lambda px: FixedStepLBFGS(px, lr=1.0),
        lambda px: torch.optim.LBFGS([px], lr=1.0, max_iter=1, tolerance_grad=-1, tolerance_change=-1),
    ):
        _, evaluation = stage(engine, params)
        optimizer = make(evaluation.pixels)
        steps = []
        for _ in range(6):
            optimizer.step(evaluation)
            steps.append(evaluation.pixels.detach().clone())
        paths.append(torch.stack(steps))
    torch.testing.assert_close(paths[0], paths[1], rtol=1e-4, atol=1e-3)


def test_loss_feed_hands_out_in_order_at_once_on_cpu():
    feed = LossFeed(torch.device("cpu"), 3)
    feed.push(torch.tensor([1.0, 2.0, 3.0]), "a")
    assert list(feed.ready()) == [([1.0, 2.0, 3.0], "a")]
    feed.push(torch.tensor([4.0, 5.0, 6.0]), "b")
    feed.push(torch.tensor([7.0, 8.0, 9.0]), "c")
    assert [info for _, info in feed.drain()] == ["b", "c"] and list(feed.drain()) == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_graphs_give_the_eager_loss_curve(precision):
    config = EngineConfig(device="cuda", random_weights=True, precision=precision)
    params = GatysParams(image_size=64, total_iterations=10, seed=0, snapshot_every=5)
    eager = registry.create_engine("gatys", config).run(CONTENT, [STYLE], params)
    graphed_engine = registry.create_engine("gatys", config.model_copy(update={"cuda_graphs": True}))
    graphed = graphed_engine.run(CONTENT, [STYLE], params)
    assert graphed.meta["cuda_graphs"] is True and eager.meta["cuda_graphs"] is False
    for a, b in zip(eager.history, graphed.history, strict=True):
        assert b["total"] == pytest.approx(a["total"], rel=2e-2)

"""consumer.engines.gatys_engine (and its schedule) on tiny images with a random VGG on the CPU."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from consumer.engines import registry, schedule
from consumer.engines.base import Checkpoint, Engine, Hooks
from consumer.engines.gatys import MAX_IMAGE_SIZE, GatysParams
from consumer.engines.gatys_engine import iterations_left, plan_for, style_size
from consumer.engines.image import rgb_to_yuv, to_tensor
from stylequeue.config import EngineConfig
from stylequeue.errors import ConfigError, JobCancelled, ValidationError
from stylequeue.params import parse_params

CONFIG = EngineConfig(device="cpu", random_weights=True)


def picture(width: int, height: int, colour: tuple[int, int, int], seed: int) -> Image.Image:
    """A coloured image with texture (a gradient plus noise), so every loss has work to do."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, width).expand(height, width)
    base = torch.tensor(colour).view(3, 1, 1) / 255.0
    rgb = (base * (0.5 + 0.5 * ramp) + 0.15 * torch.rand(3, height, width, generator=g)).clamp(0, 1)
    data = (rgb * 255).round().byte().permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(data, "RGB")


CONTENT = picture(40, 30, (230, 80, 40), seed=1)
STYLE = picture(32, 32, (40, 90, 220), seed=2)
STYLE2 = picture(24, 36, (60, 200, 60), seed=3)


def params(**overrides) -> GatysParams:
    # The default loss weights: the engine rescales them to the network's activation scale.
    base = dict(image_size=32, total_iterations=6, snapshot_every=100, seed=0)
    return GatysParams(**{**base, **overrides})


@pytest.fixture(scope="module")
def engine():
    return registry.create_engine("gatys", CONFIG)


class Recorder:
    """Hooks that remember what the engine reported."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.progress, self.snapshots = [], []
        self.hooks = Hooks(
            on_progress=self.progress.append,
            on_snapshot=lambda i, image: self.snapshots.append((i, image.size)),
            should_cancel=lambda: cancel_after is not None and len(self.progress) >= cancel_after,
        )


def test_engine_follows_the_protocol_and_reports_random_weights(engine):
    assert isinstance(engine, Engine) and engine.mode == "gatys"
    availability = engine.availability()
    assert availability.ok and availability.random_weights


def test_missing_weights_make_the_engine_unavailable_with_the_reason(tmp_path):
    config = EngineConfig(device="cpu", vgg19_weights=str(tmp_path / "vgg19-dcbb9e9d.pth"))
    availability = registry.create_engine("gatys", config).availability()
    assert not availability.ok and not availability.random_weights
    assert "vgg19-dcbb9e9d.pth" in availability.reason and str(tmp_path) in availability.reason


def test_real_weight_file_runs_and_meta_says_so(vgg_weight_file):
    config = EngineConfig(device="cpu", vgg16_weights=str(vgg_weight_file("vgg16", "torchvision")))
    result = registry.create_engine("gatys", config).run(
        CONTENT, [STYLE], params(model="vgg16", total_iterations=2)
    )
    assert result.meta["random_weights"] is False and result.meta["model"] == "vgg16"
    assert result.meta["weights"].endswith("vgg16-torchvision.pth")


@pytest.mark.parametrize(("optimizer", "lr"), [("lbfgs", 1.0), ("adam", 10.0)])
def test_losses_decrease(engine, optimizer, lr):
    result = engine.run(CONTENT, [STYLE], params(optimizer=optimizer, learning_rate=lr, total_iterations=15))
    first, last = result.history[0], result.history[-1]
    assert last["total"] < 0.7 * first["total"] and last["style"] < 0.7 * first["style"]
    assert first["style"] > 0 and first["content"] == 0  # starts from the content image
    assert [h["iteration"] for h in result.history] == list(range(1, 16))


def test_result_keeps_aspect_ratio_and_meta(engine):
    result = engine.run(CONTENT, [STYLE], params(image_size=48, total_iterations=2))
    assert result.image.size == (48, 36)
    assert result.meta["random_weights"] is True and result.meta["device"] == "cpu"
    assert result.meta["iterations"] == 2 and result.meta["seed"] == 0


def test_progress_every_iteration_and_snapshots_every_n(engine):
    rec = Recorder()
    engine.run(CONTENT, [STYLE], params(total_iterations=7, snapshot_every=3), rec.hooks)
    assert [p.iteration for p in rec.progress] == list(range(1, 8))
    assert all(p.total == 7 and p.elapsed_s > 0 for p in rec.progress)
    assert set(rec.progress[0].losses) == {"content", "style", "tv", "total"}
    assert rec.snapshots == [(3, (32, 24)), (6, (32, 24)), (7, (32, 24))]


def test_cancellation_stops_within_one_iteration(engine):
    rec = Recorder(cancel_after=3)
    with pytest.raises(JobCancelled):
        engine.run(CONTENT, [STYLE], params(total_iterations=50), rec.hooks)
    assert len(rec.progress) == 3


def test_same_seed_same_output_other_seed_other_output(engine):
    def run(seed: int) -> bytes:
        return engine.run(CONTENT, [STYLE], params(init_method="random", seed=seed)).image.tobytes()

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_unseeded_run_reports_the_seed_that_reproduces_it(engine):
    first = engine.run(CONTENT, [STYLE], params(init_method="random", seed=None, total_iterations=3))
    again = engine.run(
        CONTENT, [STYLE], params(init_method="random", seed=first.meta["seed"], total_iterations=3)
    )
    assert first.image.tobytes() == again.image.tobytes()


def chroma_error(image: Image.Image, reference: Image.Image) -> float:
    """Mean |ΔU| + |ΔV| between ``image`` and ``reference`` resized to it."""
    a = rgb_to_yuv(to_tensor(image))[:, 1:]
    b = rgb_to_yuv(to_tensor(reference.resize(image.size, Image.Resampling.LANCZOS)))[:, 1:]
    return (a - b).abs().mean().item()


def test_colour_preservation_keeps_the_contents_chrominance(engine):
    # Start from the (blue) style so that, without preservation, the colours would be the style's.
    kept = engine.run(CONTENT, [STYLE], params(init_method="style", preserve_colors=True))
    lost = engine.run(CONTENT, [STYLE], params(init_method="style", preserve_colors=False))
    assert chroma_error(kept.image, CONTENT) < 0.02
    assert chroma_error(lost.image, CONTENT) > 0.1


def test_coarse_to_fine_grows_the_image_and_spends_the_iterations(engine):
    rec = Recorder()
    result = engine.run(
        CONTENT,
        [STYLE],
        params(image_size=64, min_stage_size=32, total_iterations=8, snapshot_every=1),
        rec.hooks,
    )
    sizes = [p.size for p in rec.progress]
    assert sizes[0] == (32, 24) and sizes[-1] == (64, 48) and len(set(sizes)) == 3
    assert [s["iterations"] for s in result.meta["stages"]] == [4, 2, 2]
    assert result.image.size == (64, 48) and len(result.history) == 8


def test_several_styles_blend_and_other_options_run(engine):
    p = params(
        style_blend_weights=(0.7, 0.3),
        pooling="avg",
        style_scale=0.5,
        style_layers=("relu1_1", "relu3_1"),
        style_layer_weights=(1.0, 2.0),
        content_layers=("relu2_2", "relu4_2"),
        total_iterations=2,
    )
    result = engine.run(CONTENT, [STYLE, STYLE2], p)
    assert result.image.size == (32, 24) and all(math.isfinite(h["total"]) for h in result.history)


def test_init_image(engine):
    with pytest.raises(ValidationError) as info:
        engine.run(CONTENT, [STYLE], params(init_method="image"))
    assert info.value.field == "init_method"
    grey = Image.new("RGB", (10, 10), (128, 128, 128))
    result = engine.run(CONTENT, [STYLE], params(init_method="image", total_iterations=1), init_image=grey)
    assert result.history[0]["content"] > 0  # it started away from the content


@pytest.mark.parametrize(
    ("styles", "overrides", "field"),
    [
        ([STYLE], {"style_blend_weights": (0.5, 0.5)}, "style_blend_weights"),
        ([STYLE] * 5, {}, "style"),
        ([], {}, "style"),
    ],
)
def test_style_count_rules_name_the_field(engine, styles, overrides, field):
    with pytest.raises(ValidationError) as info:
        engine.run(CONTENT, styles, params(**overrides))
    assert info.value.field == field


def test_output_too_small_for_the_aspect_ratio_names_image_size(engine):
    wide = Image.new("RGB", (200, 20), (10, 20, 30))
    with pytest.raises(ValidationError, match="use at least 160") as info:
        engine.run(wide, [STYLE], params(image_size=64))
    assert info.value.field == "image_size"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"content_weight": "-1"}, "content_weight"),
        ({"style_weight": -0.5}, "style_weight"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"total_iterations": "0"}, "total_iterations"),
        ({"image_size": "4096"}, "image_size"),
        ({"style_layer_weights": "1,2"}, "style_layer_weights"),
        ({"style_layers": "relu9_9"}, "style_layers"),
        ({"model": "vgg16", "style_layers": "relu3_4"}, "style_layers"),
        ({"learning_rate": "0"}, "learning_rate"),
    ],
)
def test_bad_parameters_name_the_field(raw, field):
    with pytest.raises(ValidationError) as info:
        parse_params(GatysParams, raw)
    assert info.value.field == field and field in str(info.value)


@pytest.mark.parametrize(
    ("final", "total", "min_size"),
    [(512, 500, 256), (2048, 1000, 128), (700, 3, 128), (64, 10, 64), (100, 7, 16)],
)
def test_schedule_grows_by_sqrt2_ends_at_size_and_sums_to_total(final, total, min_size):
    stages = schedule.plan(final, total, min_size=min_size)
    sizes = [s.size for s in stages]
    assert sizes[-1] == final and sizes[0] >= min_size
    assert sum(s.iterations for s in stages) == total and all(s.iterations >= 1 for s in stages)
    for small, large in zip(sizes, sizes[1:], strict=False):
        assert large / small == pytest.approx(math.sqrt(2), rel=0.03)


def test_schedule_examples():
    assert [(s.size, s.iterations) for s in schedule.plan(512, 500, min_size=256)] == [
        (256, 250),
        (362, 125),
        (512, 125),
    ]
    assert [s.size for s in schedule.plan(512, 2, min_size=256)] == [
        362,
        512,
    ]  # too few iterations: drop coarse
    assert schedule.plan(512, 500, min_size=256, coarse_to_fine=False) == [schedule.Stage(512, 500)]
    assert schedule.plan(300, 10, min_size=256) == [schedule.Stage(300, 10)]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_explicit_precision_runs_on_cpu_and_meta_says_which(precision):
    config = CONFIG.model_copy(update={"precision": precision})
    result = registry.create_engine("gatys", config).run(CONTENT, [STYLE], params(total_iterations=3))
    assert result.meta["precision"] == precision and result.meta["device"] == "cpu"
    assert all(math.isfinite(h["total"]) for h in result.history)


def test_fp16_on_cpu_makes_the_engine_unavailable_naming_the_variable():
    engine = registry.create_engine("gatys", CONFIG.model_copy(update={"precision": "fp16"}))
    availability = engine.availability()
    assert not availability.ok and "STYLEQUEUE_PRECISION" in availability.reason
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        engine.run(CONTENT, [STYLE], params(total_iterations=1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_requested_without_cuda_is_unavailable_with_the_reason():
    engine = registry.create_engine("gatys", CONFIG.model_copy(update={"device": "cuda"}))
    availability = engine.availability()
    assert not availability.ok and "CUDA is not available" in availability.reason


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_run_with_mixed_precision(precision):
    config = CONFIG.model_copy(update={"device": "cuda", "precision": precision})
    result = registry.create_engine("gatys", config).run(CONTENT, [STYLE], params(total_iterations=5))
    assert result.meta["device"].startswith("cuda") and result.meta["precision"] == precision
    assert all(math.isfinite(h["total"]) for h in result.history)
    assert result.history[-1]["total"] < result.history[0]["total"]


def test_style_size_raises_a_thin_style_only_up_to_the_size_limit():
    assert style_size(Image.new("RGB", (64, 4)), 32, 1.0) == 256  # short side raised to 16
    assert style_size(Image.new("RGB", (MAX_IMAGE_SIZE, 16)), 32, 1.0) == MAX_IMAGE_SIZE  # 128:1
    for thin in [(MAX_IMAGE_SIZE + 1, 16), (1_000_000, 1), (1, 3000)]:
        with pytest.raises(ValidationError, match="128:1") as info:
            style_size(Image.new("L", thin), 32, 1.0)
        assert info.value.field == "style"


def test_a_style_too_thin_to_use_fails_before_any_work(engine):
    progress = Recorder()
    with pytest.raises(ValidationError) as info:
        engine.run(CONTENT, [STYLE, Image.new("RGB", (4000, 1))], params(), progress.hooks)
    assert info.value.field == "style" and progress.progress == []


def test_a_content_too_thin_for_any_size_names_content():
    with pytest.raises(ValidationError) as info:
        plan_for(params(image_size=MAX_IMAGE_SIZE), (1_000_000, 1))
    assert info.value.field == "content"
    assert plan_for(params(image_size=MAX_IMAGE_SIZE), (MAX_IMAGE_SIZE, 16))[-1].size == MAX_IMAGE_SIZE


# -- resuming from a checkpoint ---------------------------------------------------------------

TWO_STAGES = dict(image_size=45, min_stage_size=32, total_iterations=6)  # 32px × 4, then 45px × 2


def checkpoints_of(engine, **overrides) -> list[Checkpoint]:
    """The checkpoints an uninterrupted two-stage run hands to ``on_checkpoint``."""
    found: list[Checkpoint] = []
    hooks = Hooks(on_checkpoint=lambda i, image, checkpoint: found.append(checkpoint))
    engine.run(CONTENT, [STYLE], params(**{**TWO_STAGES, **overrides}), hooks)
    return found


@pytest.mark.parametrize(
    ("done", "left"), [(0, [4, 2]), (3, [1, 2]), (4, [0, 2]), (5, [0, 1]), (6, [0, 0]), (9, [0, 0])]
)
def test_iterations_left_skips_what_a_checkpoint_had_done(done, left):
    assert iterations_left([schedule.Stage(32, 4), schedule.Stage(45, 2)], done) == left


def test_every_snapshot_comes_with_a_checkpoint_of_the_stage_it_was_in(engine):
    found = checkpoints_of(engine, snapshot_every=2)
    assert [(c.iteration, c.stage, c.image.size) for c in found] == [
        (2, "1/2", (32, 24)),
        (4, "1/2", (32, 24)),
        (6, "2/2", (45, 34)),
    ]


def test_a_run_without_a_checkpoint_hook_builds_none_and_snapshots_as_before(engine):
    rec = Recorder()
    engine.run(CONTENT, [STYLE], params(**TWO_STAGES, snapshot_every=3), rec.hooks)
    assert [i for i, _ in rec.snapshots] == [3, 6]


@pytest.mark.parametrize(
    ("done", "stages"), [(2, ["1/2", "1/2", "2/2", "2/2"]), (4, ["2/2", "2/2"]), (5, ["2/2"])]
)
def test_a_resumed_run_continues_from_the_checkpoints_iteration_and_stage(engine, done, stages):
    checkpoint = next(c for c in checkpoints_of(engine, snapshot_every=1) if c.iteration == done)
    rec = Recorder()
    result = engine.run(CONTENT, [STYLE], params(**TWO_STAGES), rec.hooks, resume=checkpoint)
    # Exactly total − k more iterations, numbered on from k + 1; finished stages are skipped.
    assert [p.iteration for p in rec.progress] == list(range(done + 1, 7))
    assert [p.stage for p in rec.progress] == stages
    assert [h["iteration"] for h in result.history] == list(range(done + 1, 7))
    assert result.meta["iterations"] == 6 and result.image.size == (45, 34)


def test_a_resumed_run_starts_from_the_checkpoints_image_not_the_beginning(engine):
    # From the (blue) style, the first loss of a fresh run is far from what iteration 3 reached.
    fresh = engine.run(CONTENT, [STYLE], params(**TWO_STAGES, init_method="style"))
    checkpoint = next(c for c in checkpoints_of(engine, init_method="style", snapshot_every=3))
    resumed = engine.run(CONTENT, [STYLE], params(**TWO_STAGES, init_method="style"), resume=checkpoint)
    assert resumed.history[0]["total"] < 0.9 * fresh.history[0]["total"]
    # L-BFGS memory starts afresh, so it is close to, not equal to, the uninterrupted iteration 4.
    assert resumed.history[0]["total"] == pytest.approx(fresh.history[3]["total"], rel=0.05)


def test_a_checkpoint_at_the_total_just_finishes_with_its_image(engine):
    last = checkpoints_of(engine, snapshot_every=6)[-1]
    rec = Recorder()
    result = engine.run(CONTENT, [STYLE], params(**TWO_STAGES), rec.hooks, resume=last)
    assert last.iteration == 6 and rec.progress == [] and result.history == []
    assert result.image.tobytes() == last.image.tobytes()  # colours not preserved: the same image


def test_non_finite_losses_fail_the_job_with_the_reason(engine):
    """Overflowing weights turn every loss NaN and the image black: a failure, never a success."""
    from consumer.engines.base import Hooks
    from consumer.engines.gatys_engine import GatysRun, Tick

    run = GatysRun(engine.network("vgg19"), GatysParams(image_size=16), Hooks(), CONTENT, [STYLE], amp=None)
    run._report([((1.0, 2.0, 3.0), Tick(1, "1/1", (16, 12)))])  # finite: recorded
    with pytest.raises(ValidationError, match="non-finite at iteration 2; lower content_weight") as info:
        run._report([((float("nan"), 2.0, 3.0), Tick(2, "1/1", (16, 12)))])
    assert info.value.field == "style_weight" and [h["iteration"] for h in run.history] == [1]

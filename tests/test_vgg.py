"""consumer.engines.vgg: every weight format loads through the real loader and computes VGG.

The reference network here is written with plain ``torch.nn.functional`` ops from the file's
tensors and each format's documented preprocessing, independently of the module under test.
"""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F
from weights import CHANNELS, vgg_tensors, write_vgg_file

from consumer.engines.vgg import load_vgg, vgg_from_config
from stylequeue import artifact
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError

CASES = [("vgg19", "torchvision"), ("vgg16", "torchvision"), ("vgg19", "caffe"), ("vgg19", "adain")]
LAYERS = ("relu1_1", "relu2_2", "relu3_1", "relu4_2", "relu5_1")


def preprocess(rgb: torch.Tensor, fmt: str, state: dict[str, torch.Tensor]) -> torch.Tensor:
    if fmt == "torchvision":  # ImageNet mean/std on RGB in [0, 1]
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return (rgb - mean) / std
    if fmt == "caffe":  # BGR, 0-255, minus the Caffe mean
        bgr = rgb[:, [2, 1, 0]] * 255
        return bgr - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    return F.conv2d(rgb, state["0.weight"], state["0.bias"])  # adain's own 1×1 conv


def reference_features(state: dict, arch: str, fmt: str, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """Relu outputs by name, computed with bare conv/relu/pool ops."""
    adain = fmt == "adain"
    keys = iter(k.removesuffix(".weight") for k in state if k.endswith(".weight") and "classifier" not in k)
    if adain:
        next(keys)  # the 1×1 preprocessing conv
    x, out = preprocess(rgb, fmt, state), {}
    for b, block in enumerate(CHANNELS[arch], start=1):
        for n in range(1, len(block) + 1):
            key = next(keys)
            x = F.pad(x, (1, 1, 1, 1), mode="reflect") if adain else F.pad(x, (1, 1, 1, 1))
            x = F.relu(F.conv2d(x, state[f"{key}.weight"], state[f"{key}.bias"]))
            out[f"relu{b}_{n}"] = x
        x = F.max_pool2d(x, 2, 2, ceil_mode=adain)
    return out


@pytest.fixture
def rgb() -> torch.Tensor:
    return torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(3))


def assert_same_features(net, state, arch, fmt, rgb):
    got = net(rgb, LAYERS)
    want = reference_features(state, arch, fmt, rgb)
    for name in LAYERS:
        scale = want[name].abs().max().item()
        assert scale > 0, f"{name} is all zero: the comparison would prove nothing"
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize(("arch", "fmt"), CASES)
def test_file_loads_and_matches_hand_built_network(vgg_weight_file, rgb, arch, fmt):
    path = vgg_weight_file(arch, fmt)
    net = load_vgg(arch, fmt, path)
    assert net.source.path == str(path) and not net.source.random
    assert_same_features(net, vgg_tensors(arch, fmt), arch, fmt, rgb)


@pytest.mark.parametrize(("arch", "fmt"), CASES)
def test_vgg_from_config_loads_the_configured_file(vgg_weight_file, rgb, tmp_path, arch, fmt):
    path = vgg_weight_file(arch, fmt)
    key = "vgg19_weights" if arch == "vgg19" else "vgg16_weights"
    config = EngineConfig(vgg_format=fmt, random_weights=False, cache_dir=tmp_path, **{key: str(path)})
    net = vgg_from_config(config, arch)
    assert_same_features(net, vgg_tensors(arch, fmt), arch, fmt, rgb)


def test_file_uri_with_digest_resolves_and_loads(vgg_weight_file, rgb, tmp_path):
    path = vgg_weight_file("vgg19", "caffe")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    local = artifact.resolve(f"file://{path}#sha256={digest}", cache_dir=tmp_path)
    assert_same_features(
        load_vgg("vgg19", "caffe", local), vgg_tensors("vgg19", "caffe"), "vgg19", "caffe", rgb
    )
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        artifact.resolve(f"file://{path}#sha256={'0' * 64}", cache_dir=tmp_path)


def test_missing_file_names_file_place_and_remedy(tmp_path):
    config = EngineConfig(random_weights=False, vgg19_weights=str(tmp_path / "models" / "vgg19-dcbb9e9d.pth"))
    with pytest.raises(ArtifactError) as info:
        vgg_from_config(config, "vgg19")
    message = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in message
    assert str(tmp_path / "models") in message
    assert "download.pytorch.org" in message and "STYLEQUEUE_VGG19_WEIGHTS" in message


def test_garbage_file_is_an_artifact_error(tmp_path):
    path = tmp_path / "vgg19.pth"
    path.write_bytes(b"this is not a torch file")
    with pytest.raises(ArtifactError, match="vgg19.pth: not a readable PyTorch weights file"):
        load_vgg("vgg19", "torchvision", path)


def test_wrong_architecture_is_an_artifact_error(vgg_weight_file):
    with pytest.raises(
        ArtifactError, match="does not look like a torchvision vgg19 file: missing features.16.bias"
    ):
        load_vgg("vgg19", "torchvision", vgg_weight_file("vgg16", "torchvision"))


def test_wrong_shape_is_an_artifact_error(tmp_path):
    state = {k: v for k, v in vgg_tensors("vgg16", "torchvision").items()}
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(
        ArtifactError, match=r"features.0.weight has shape \(64, 1, 3, 3\), vgg16 needs \(64, 3, 3, 3\)"
    ):
        load_vgg("vgg16", "torchvision", path)


def test_not_a_state_dict_is_an_artifact_error(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ArtifactError, match="expected a state dict, found list"):
        load_vgg("vgg19", "torchvision", path)


def test_adain_format_requires_vgg19(tmp_path):
    path = write_vgg_file(tmp_path / "vgg_normalised.pth", "vgg19", "adain")
    with pytest.raises(ArtifactError, match="adain format .* is a VGG19"):
        load_vgg("vgg16", "adain", path)


def test_requested_conv_output_survives_the_in_place_relu(rgb):
    net = load_vgg("vgg16", "torchvision", None)
    feats = net(rgb, ("conv1_2", "relu1_2"))
    assert (feats["conv1_2"] < 0).any()
    torch.testing.assert_close(feats["relu1_2"], feats["conv1_2"].clamp_min(0))


def test_avg_pooling_is_chosen_per_call(rgb):
    net = load_vgg("vgg16", "torchvision", None)
    max_pooled = net(rgb, ("relu2_1",))["relu2_1"]
    avg_pooled = net(rgb, ("relu2_1",), pooling="avg")["relu2_1"]
    assert not torch.allclose(max_pooled, avg_pooled)
    torch.testing.assert_close(net(rgb, ("relu2_1",))["relu2_1"], max_pooled)


def test_random_network_is_seeded_and_moves_between_devices(rgb):
    a, b = load_vgg("vgg16", "torchvision", None), load_vgg("vgg16", "torchvision", None)
    assert a.source.random
    torch.testing.assert_close(a(rgb, ("relu3_1",))["relu3_1"], b(rgb, ("relu3_1",))["relu3_1"])
    moved = a.to("cpu", memory_format=torch.channels_last)  # nn.Module.to must still work
    assert moved.names["relu5_3"] == a.names["relu5_3"]

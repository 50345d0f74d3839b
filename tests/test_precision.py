"""Which precision runs (consumer.engines.device), and that mixed precision keeps Grams and losses fp32."""

from __future__ import annotations

import math
import types

import pytest
import torch

from consumer.engines import device as devices
from consumer.engines import losses, registry
from consumer.engines.gatys import GatysParams
from consumer.engines.vgg import load_vgg
from stylequeue.config import EngineConfig, load
from stylequeue.errors import ConfigError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def yes() -> bool:
    return True


def no() -> bool:
    return False


def test_auto_is_the_default():
    assert load(EngineConfig, {}).precision == "auto"


@pytest.mark.parametrize(("native", "want"), [(yes, torch.bfloat16), (no, None)])
def test_auto_on_cpu_picks_bf16_only_where_the_cpu_has_it(native, want):
    assert devices.autocast_dtype("auto", CPU, cpu_bf16=native) is want


@pytest.mark.parametrize("native", [yes, no])
@pytest.mark.parametrize(("precision", "want"), [("fp32", None), ("bf16", torch.bfloat16)])
def test_explicit_values_are_honoured_whatever_the_cpu(precision, want, native):
    assert devices.autocast_dtype(precision, CPU, cpu_bf16=native) is want


def test_fp16_on_cpu_is_refused_naming_the_variable():
    with pytest.raises(ConfigError) as info:
        devices.autocast_dtype("fp16", CPU, cpu_bf16=yes)
    assert info.value.field == "STYLEQUEUE_PRECISION" and "fp16 needs CUDA" in str(info.value)


def test_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="must be one of auto, fp32, bf16, fp16"):
        devices.resolve_precision("fp8", CPU)


@pytest.mark.parametrize(("bf16_gpu", "want"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_cuda_picks_bf16_where_the_gpu_has_it(monkeypatch, bf16_gpu, want):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16_gpu)
    assert devices.resolve_precision("auto", CUDA) == want
    assert devices.resolve_precision("fp16", CUDA) == "fp16"


@pytest.mark.parametrize(
    ("capabilities", "native"),
    [
        ({"architecture": "x86_64", "avx512_f": True, "avx512_bf16": True}, True),
        ({"architecture": "x86_64", "amx_bf16": True}, True),
        ({"architecture": "aarch64", "neon": True, "bf16": True}, True),
        # AVX-512 alone: oneDNN would emulate bf16, no faster than fp32.
        ({"architecture": "x86_64", "avx512_f": True, "avx512_bf16": False, "amx_bf16": False}, False),
        ({"architecture": "x86_64", "avx2": True}, False),
    ],
)
def test_native_bf16_is_read_from_what_torch_reports(monkeypatch, capabilities, native):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: types.MappingProxyType(capabilities))
    assert devices.cpu_has_native_bf16() is native


def test_precision_names():
    assert [devices.precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == [
        "fp32",
        "bf16",
        "fp16",
    ]


# --- what stays fp32 under bf16 -----------------------------------------------------------


@pytest.fixture(scope="module")
def net():
    return load_vgg("vgg19", "torchvision", None).to(memory_format=torch.channels_last)


def objective(net, amp: torch.dtype | None) -> tuple[losses.Objective, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 40, 32, generator=g), torch.rand(1, 3, 36, 36, generator=g)
    weights = losses.Weights(
        content=5.0, style=1e4, tv=1e-3, content_layers=("relu4_2",),
        style_layers={name: 1.0 for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")},
    )  # fmt: skip
    layers = tuple(weights.style_layers)
    obj = losses.Objective(
        net,
        weights,
        losses.content_targets(net, content, weights.content_layers, "max", amp),
        losses.style_targets(net, [style], [1.0], layers, "max", amp),
        autocast_dtype=amp,
    )
    return obj, content


def test_bf16_network_with_fp32_grams_losses_and_gradient(net):
    obj, content = objective(net, torch.bfloat16)
    with devices.autocast(CPU, torch.bfloat16):
        assert net(content, ("relu1_1",))["relu1_1"].dtype == torch.bfloat16  # the network is bf16
    assert all(t.dtype == torch.float32 for t in [*obj.style.values(), *obj.content.values()])
    pixels = (content * 255).requires_grad_(True)
    total, parts = obj(pixels / 255, pixels)
    total.backward()
    assert total.dtype == parts.dtype == pixels.grad.dtype == torch.float32
    assert torch.isfinite(parts).all() and torch.isfinite(pixels.grad).all()
    assert parts[0] == 0  # the content image: its targets were computed at the same precision


def test_bf16_losses_are_close_to_fp32(net):
    pixels = torch.rand(1, 3, 40, 32, generator=torch.Generator().manual_seed(5)) * 255
    want = objective(net, None)[0](pixels / 255, pixels)[1]
    got = objective(net, torch.bfloat16)[0](pixels / 255, pixels)[1]
    torch.testing.assert_close(got, want, rtol=0.05, atol=0)


def test_bf16_engine_run_stays_finite_and_descends():
    config = EngineConfig(device="cpu", random_weights=True, precision="bf16")
    params = GatysParams(image_size=48, total_iterations=12, seed=0, snapshot_every=100)
    result = registry.create_engine("gatys", config).run(_picture(1), [_picture(2)], params)
    assert result.meta["precision"] == "bf16"
    totals = [h["total"] for h in result.history]
    assert all(math.isfinite(t) for t in totals) and totals[-1] < 0.7 * totals[0]


def test_auto_engine_reports_what_ran(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", no)
    engine = registry.create_engine("gatys", EngineConfig(device="cpu", random_weights=True))
    assert engine.precision == "fp32"
    engine = registry.create_engine("gatys", engine.config.model_copy(update={"precision": "bf16"}))
    assert engine.precision == "bf16"


def _picture(seed: int):
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    data = (torch.rand(36, 48, 3, generator=g) * 255).byte().numpy()
    return Image.fromarray(data, "RGB")

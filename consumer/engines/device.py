"""Device choice, the precision that runs on it, and CUDA speed settings (applied once per process)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import torch

from stylequeue.errors import ConfigError, EngineUnavailable

PRECISION_VAR = "STYLEQUEUE_PRECISION"


def select_device(spec: str = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU; asking for CUDA without one is an error."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EngineUnavailable(f"device {spec!r} requested but CUDA is not available")
        configure_cuda()
    return device


@functools.cache
def configure_cuda() -> None:
    """cuDNN autotuning and TF32 matmuls/convolutions: free speed for fixed-size style transfer."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# What torch.cpu.get_capabilities() calls bf16 arithmetic in hardware: AMX and AVX512-BF16 tiles
# and dot products on x86, the BF16 extensions on ARM64. torch.ops.mkldnn._is_mkldnn_bf16_supported()
# is true on any AVX-512 CPU, where oneDNN only emulates bf16 (converting around fp32 arithmetic):
# precision given up for no faster arithmetic, so that does not count.
NATIVE_BF16 = ("amx_bf16", "avx512_bf16", "bf16", "sve_bf16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware, as torch reports it (cached by torch)."""
    query = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.10; older ones: say no
    capabilities = query() if query is not None else {}
    return any(bool(capabilities.get(name)) for name in NATIVE_BF16)


def resolve_precision(
    precision: str, device: torch.device, *, cpu_bf16: Callable[[], bool] | None = None
) -> str:
    """``auto`` picks bf16 where the hardware has it (CUDA with native bf16; a CPU for which
    ``cpu_bf16()`` says so: injectable, so both branches are testable anywhere), else fp32.
    Explicit values are honoured, except fp16 on a CPU: CPU autocast covers few fp16 kernels and
    most CPUs have no fp16 arithmetic, so it is refused rather than run slowly."""
    if precision not in PRECISIONS:
        raise ConfigError(f"must be one of {', '.join(PRECISIONS)}, got {precision!r}", field=PRECISION_VAR)
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
        native = cpu_bf16 or cpu_has_native_bf16  # looked up now: tests may replace it
        return "bf16" if device.type == "cpu" and native() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"fp16 needs CUDA; on {device.type} use auto, bf16 or fp32", field=PRECISION_VAR)
    return precision


def autocast_dtype(
    precision: str, device: torch.device, *, cpu_bf16: Callable[[], bool] | None = None
) -> torch.dtype | None:
    """None means fp32. Only the network runs under :func:`autocast` with it: Gram matrices, losses,
    optimiser state and the image stay fp32 (the engines' business)."""
    return DTYPES.get(resolve_precision(precision, device, cpu_bf16=cpu_bf16))


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what job records and benchmarks report as having run."""
    return next((name for name, value in DTYPES.items() if value == dtype), "fp32")


def autocast(
    device: torch.device, dtype: torch.dtype | None, *, cache: bool = True
) -> contextlib.AbstractContextManager:
    """``cache=False`` for code captured as a CUDA graph: autocast's cache of cast weights would
    otherwise be freed after capture while the graph still points at it."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache)


def gpu_memory_mb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last lets cuDNN pick its fastest convolution kernels on tensor-core GPUs."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


@contextlib.contextmanager
def reproducible(device: torch.device, enabled: bool = True):
    """Deterministic cuDNN kernels for the duration, so a seeded run repeats bit for bit: autotuning
    (``benchmark``) may pick another, non-deterministic algorithm each run. CPU kernels already are."""
    if not enabled or device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved

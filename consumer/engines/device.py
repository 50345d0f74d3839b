"""Device choice and CUDA speed settings, applied once per process."""

from __future__ import annotations

import contextlib
import logging

import torch

from stylequeue.errors import EngineUnavailable

log = logging.getLogger(__name__)
_configured = False


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


def configure_cuda() -> None:
    """cuDNN autotuning and TF32 matmuls/convolutions: free speed for fixed-size style transfer."""
    global _configured
    if _configured:
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    _configured = True


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means full fp32.

    Mixed precision is a CUDA-only option: on CPU it degrades to fp32 (logged once) rather than
    failing, so the same configuration runs on every consumer.
    """
    if precision == "fp32":
        return None
    if device.type != "cuda":
        log.info("precision %s ignored on %s: running fp32", precision, device)
        return None
    return {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def gpu_memory_mb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last lets cuDNN pick its fastest convolution kernels on tensor-core GPUs."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


@contextlib.contextmanager
def reproducible(device: torch.device, enabled: bool = True):
    """Deterministic cuDNN kernels for the duration, so a seeded run repeats bit for bit.

    cuDNN autotuning (``benchmark``) may pick a different, non-deterministic algorithm from one
    run to the next; a seeded job trades that speed for repeatability. CPU kernels are
    deterministic already, so there this does nothing.
    """
    if not enabled or device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved

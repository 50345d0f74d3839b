"""Random VGG weight files in each real on-disk format, for tests (no downloads here).

The key layouts are written out independently of ``consumer.engines.vgg`` (from the VGG
definition itself), so a loader that numbered layers wrongly would fail to load them:

* ``torchvision`` / ``caffe``: ``features.N.weight|bias`` with N counting conv, ReLU and pool
  modules, plus a few ``classifier.*`` keys the loader must ignore (kept tiny: the real ones
  are ~470 MB);
* ``adain``: a bare ``nn.Sequential``'s ``N.weight|bias``: a 1×1 conv 3→3 at index 0, then
  (reflection pad, conv, ReLU) per conv and a pool per block, ending at relu5_4.

Stable API (the blend tests import it): :func:`vgg_tensors`, :func:`write_vgg_file`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

CHANNELS = {
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}
FORMATS = ("torchvision", "caffe", "adain")


def conv_indices(arch: str, fmt: str) -> list[tuple[int, int, int, int]]:
    """``(index, in_channels, out_channels, kernel)`` of every conv in the file, in order."""
    adain = fmt == "adain"
    out: list[tuple[int, int, int, int]] = [(0, 3, 3, 1)] if adain else []
    index, channels = (1 if adain else 0), 3
    for block in CHANNELS[arch]:
        for width in block:
            if adain:
                index += 1  # the reflection pad before each conv
            out.append((index, channels, width, 3))
            index += 2  # the conv and its ReLU
            channels = width
        index += 1  # the pool closing the block
    return out


def vgg_tensors(arch: str = "vgg19", fmt: str = "torchvision", seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the real key names and shapes, He-initialised from ``seed``."""
    if fmt == "adain" and arch != "vgg19":
        raise ValueError("the adain file is a VGG19")
    generator = torch.Generator().manual_seed(seed)
    prefix = "" if fmt == "adain" else "features."
    state: dict[str, torch.Tensor] = {}
    for index, cin, cout, k in conv_indices(arch, fmt):
        std = math.sqrt(2.0 / (cin * k * k))
        state[f"{prefix}{index}.weight"] = torch.randn(cout, cin, k, k, generator=generator) * std
        state[f"{prefix}{index}.bias"] = torch.randn(cout, generator=generator) * 0.01
    if fmt != "adain":
        # Stand-ins for the classifier: real key names, tiny shapes; the loader must skip them.
        state["classifier.6.weight"] = torch.randn(10, 8, generator=generator)
        state["classifier.6.bias"] = torch.zeros(10)
    return state


def write_vgg_file(path: Path | str, arch: str = "vgg19", fmt: str = "torchvision", seed: int = 0) -> Path:
    """Save :func:`vgg_tensors` to ``path`` with ``torch.save`` (as the published files are)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(vgg_tensors(arch, fmt, seed), path)
    return path

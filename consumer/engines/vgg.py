"""VGG16/VGG19 feature extractors in plain torch, loading the public weight files through one loader.

torchvision cannot be imported on the CPU machines this runs on, so the networks are built here
with the same module layout, which makes the published state dicts load as they are:

* ``torchvision`` — ``vgg19-dcbb9e9d.pth`` / ``vgg16-397923af.pth``: keys ``features.N.*``
  (classifier keys ignored); input RGB in [0, 1] normalised with ImageNet mean/std.
* ``caffe`` — neural-style-pt's ``vgg19-d01eb7cb.pth`` (converted from Caffe): the same keys,
  but the network expects BGR×255 minus the Caffe mean. Keys cannot tell it from torchvision's,
  so the format is an explicit setting (``STYLEQUEUE_VGG_FORMAT``).
* ``adain`` — pytorch-AdaIN's ``vgg_normalised.pth``: a bare ``nn.Sequential`` (keys ``N.*``)
  whose index 0 is a 1×1 conv 3→3 that does the Caffe preprocessing itself, with reflection
  padding and ceil-mode max pools.

Every format is fed RGB in [0, 1]; :class:`VGGFeatures` applies the format's preprocessing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from consumer.engines.catalogue import cached_path, entry
from stylequeue import artifact
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError

log = logging.getLogger(__name__)
RANDOM_SEED = 0  # random dev/test networks are the same in every process

CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}  # fmt: skip
FORMATS = ("torchvision", "caffe", "adain")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

# What to do when a format's file is missing: the catalogue entry to pull and the setting that names
# it ({pull}, {url}, {ARCH}, {path} are filled in from the catalogue). The torchvision default URL
# is the file's cache name, so once pulled it is found without network; the others need the
# setting pointed at the file.
HOW_TO_GET = {
    "torchvision": "Run '{pull}' (fetches {url} into STYLEQUEUE_CACHE_DIR, where the default "
    "STYLEQUEUE_{ARCH}_WEIGHTS finds it), or set STYLEQUEUE_{ARCH}_WEIGHTS to a local copy of it.",
    "caffe": "Run '{pull}' and set STYLEQUEUE_{ARCH}_WEIGHTS={path} with STYLEQUEUE_VGG_FORMAT=caffe.",
    "adain": "Run '{pull}' and set STYLEQUEUE_VGG19_WEIGHTS={path} with STYLEQUEUE_VGG_FORMAT=adain.",
}
CATALOGUE_NAMES = {"torchvision": "{arch}", "caffe": "{arch}-caffe", "adain": "adain-encoder"}


def build_layers(arch: str, fmt: str) -> nn.Sequential:
    """The module stack of ``arch`` in the layout of file format ``fmt`` (indices match the files)."""
    if arch not in CONFIGS:
        raise ValueError(f"unknown VGG architecture {arch!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown VGG format {fmt!r}; known: {', '.join(FORMATS)}")
    adain = fmt == "adain"
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)] if adain else []
    channels = 3
    for item in CONFIGS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=adain))
            continue
        if adain:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, item, 3)]
        else:
            layers.append(nn.Conv2d(channels, item, 3, padding=1))
        layers.append(nn.ReLU(inplace=False))
        channels = item
    if adain:
        layers.pop()  # AdaIN's file ends at relu5_4; it has no final pool
    return nn.Sequential(*layers)


def layer_names(layers: nn.Sequential) -> dict[str, int]:
    """Map ``conv{b}_{n}``, ``relu{b}_{n}`` and ``pool{b}`` to indices in ``layers``."""
    names: dict[str, int] = {}
    block, conv = 1, 0
    for index, module in enumerate(layers):
        if isinstance(module, nn.Conv2d):
            if module.kernel_size == (1, 1):
                continue  # AdaIN's preprocessing conv is not a feature layer
            conv += 1
            names[f"conv{block}_{conv}"] = index
        elif isinstance(module, nn.ReLU):
            names[f"relu{block}_{conv}"] = index
        elif isinstance(module, nn.MaxPool2d):
            names[f"pool{block}"] = index
            block, conv = block + 1, 0
    return names


@dataclass(frozen=True)
class VGGSource:
    """Where a network came from, for reports and errors."""

    arch: str
    fmt: str
    path: str | None  # None: random weights (dev/test)

    @property
    def random(self) -> bool:
        return self.path is None


class VGGFeatures(nn.Module):
    """A frozen VGG returning the activations of named layers for an RGB [0, 1] input."""

    def __init__(self, arch: str, fmt: str, source: VGGSource | None = None) -> None:
        super().__init__()
        self.arch, self.fmt = arch, fmt
        self.source = source or VGGSource(arch, fmt, None)
        self.layers = build_layers(arch, fmt)
        self.names = layer_names(self.layers)
        if fmt == "torchvision":
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        elif fmt == "caffe":
            # (x[:, ::-1] * 255 - bgr_mean) written as (x_bgr - mean/255) / (1/255).
            mean, std = torch.tensor(CAFFE_BGR_MEAN) / 255.0, torch.full((3,), 1 / 255.0)
        else:  # adain: the 1×1 conv at index 0 does its own preprocessing
            mean, std = torch.zeros(3), torch.ones(3)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def activation_gain(self) -> float:
        """How much larger a Caffe-scale network's activations are than this one's: Caffe-format
        networks (and AdaIN's) see pixels in 0-255 units, torchvision's divided by 255*std, about
        58 times smaller. neural-style's default loss weights were tuned at Caffe's scale, so the
        Gatys engine rescales its losses by this gain to keep them meaningful for every format."""
        if self.fmt != "torchvision":
            return 1.0
        return 255.0 * float(sum(IMAGENET_STD) / len(IMAGENET_STD))

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        x = rgb.flip(1) if self.fmt == "caffe" else rgb
        return (x - self.mean) / self.std

    def forward(
        self, rgb: torch.Tensor, layers: Iterable[str], *, pooling: str = "max"
    ) -> dict[str, torch.Tensor]:
        """Activations of ``layers``; stops after the deepest one so no work is wasted."""
        try:
            wanted = {self.names[name]: name for name in layers}
        except KeyError as exc:
            raise ValueError(f"{self.arch} has no layer {exc.args[0]!r}") from None
        last = max(wanted)
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(rgb)
        for index, module in enumerate(self.layers[: last + 1]):
            x = self._layer(module, x, pooling, inplace=index - 1 not in wanted)
            if index in wanted:
                out[wanted[index]] = x
        return out

    @staticmethod
    def _layer(module: nn.Module, x: torch.Tensor, pooling: str, *, inplace: bool = False) -> torch.Tensor:
        # Pooling is chosen per call so one loaded network serves max- and avg-pooling jobs.
        if isinstance(module, nn.MaxPool2d) and pooling == "avg":
            return F.avg_pool2d(x, module.kernel_size, module.stride, ceil_mode=module.ceil_mode)
        if isinstance(module, nn.ReLU) and inplace:
            # A ReLU may overwrite its conv's output (the conv's backward does not need it) unless
            # that output was asked for by name (conv4_2 …): saves a tensor per layer per pass.
            return F.relu(x, inplace=True)
        return module(x)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load`` a weights file safely (tensors only), with a clear error when it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a weights file"
        raise ArtifactError(f"{path.name}: not a readable PyTorch weights file ({exc})") from exc
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise ArtifactError(f"{path.name}: expected a state dict, found {type(state).__name__}")
    return state


def load_vgg(arch: str, fmt: str, path: Path | None) -> VGGFeatures:
    """``path`` None: random weights."""
    if fmt == "adain" and arch != "vgg19":
        raise ArtifactError("the adain format (vgg_normalised.pth) is a VGG19")
    if path is None:
        # Seeded so every consumer of a dev stack builds the same random network.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            net = VGGFeatures(arch, fmt)
            init_scale_preserving(net.layers)
            return net
    net = VGGFeatures(arch, fmt, VGGSource(arch, fmt, str(path)))
    net.layers.load_state_dict(_layer_state(path.name, net, read_state_dict(path)))
    return net


def _layer_state(name: str, net: VGGFeatures, raw: dict[str, Any]) -> dict[str, Any]:
    """The entries of a file's state dict that ``net.layers`` loads, keyed as it names them: files
    may hold a classifier or layers beyond the deepest we build (AdaIN's relu5_4), which are ignored.
    Raises :class:`ArtifactError` naming the first missing or mis-shaped key as the file spells it."""
    arch, fmt, expected = net.arch, net.fmt, net.layers.state_dict()
    prefix = "" if fmt == "adain" else "features."
    state = {k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix)}
    missing = sorted(set(expected) - set(state), key=lambda key: (int(key.split(".")[0]), key))
    if missing:
        shown = ", ".join(prefix + k for k in missing[:4])
        raise ArtifactError(
            f"{name} does not look like a {fmt} {arch} file: missing {shown}"
            f"{' …' if len(missing) > 4 else ''}; found keys like {', '.join(list(raw)[:4]) or 'none'}"
        )
    for key, tensor in expected.items():
        found = getattr(state[key], "shape", None)
        if found != tensor.shape:
            shape = tuple(found) if found is not None else type(state[key]).__name__
            raise ArtifactError(
                f"{name}: {prefix}{key} has shape {shape}, {arch} needs {tuple(tensor.shape)}"
            )
    return {k: state[k] for k in expected}


def init_scale_preserving(module: nn.Module) -> nn.Module:
    """He-normal convs, zero biases: PyTorch's default init shrinks activations at every layer, so a
    random network's deep features would be all but zero and every random-weights output the same
    flat image; He init keeps dev/test runs exercising every loss and dependent on their inputs."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return module


def vgg_from_config(config: EngineConfig, arch: str, *, s3: Any | None = None) -> VGGFeatures:
    """The feature network ``config`` asks for: its weights resolved (and cached) and loaded."""
    fmt = config.vgg_format
    if config.random_weights:
        log.warning(
            "STYLEQUEUE_RANDOM_WEIGHTS is set: %s has RANDOM weights; results are not style transfer", arch
        )
        return load_vgg(arch, fmt, None)
    uri = config.vgg19_weights if arch == "vgg19" else config.vgg16_weights
    how = how_to_get(fmt, arch, config.cache_dir)
    path = artifact.resolve(uri, cache_dir=config.cache_dir, s3=s3, how_to_get=how)
    return load_vgg(arch, fmt, path)


def how_to_get(fmt: str, arch: str, cache_dir: Path) -> str:
    """The remedy for a missing ``fmt``/``arch`` file, naming its exact ``stylequeue models pull``."""
    item = entry(CATALOGUE_NAMES[fmt].format(arch=arch))
    path = cached_path(item, cache_dir)
    return HOW_TO_GET[fmt].format(pull=item.pull_command, url=item.url, ARCH=arch.upper(), path=path)

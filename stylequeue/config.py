"""Typed configuration from the environment (``STYLEQUEUE_*``), with every default in one place.

Each section is a frozen dataclass whose fields name their variable with :func:`env`. Loading
fails fast with :class:`~stylequeue.errors.ConfigError` naming the variable that is missing or
malformed. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stylequeue.errors import ConfigError

T = TypeVar("T")
REQUIRED = object()  # default meaning "the variable must be set"

# Public weight files. torchvision's carry the first hex digits of their SHA-256 in the name,
# which the artifact fetcher checks (the same convention as torch.hub).
VGG19_TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG16_TORCHVISION_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"


def env(name: str, default: Any = REQUIRED, *, choices: tuple[str, ...] | None = None, help: str = "") -> Any:
    """Declare a config field read from variable ``name``."""
    meta = {"env": name, "choices": choices, "help": help}
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _parse(name: str, tp: Any, raw: str) -> Any:
    if tp is bool:
        text = raw.strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"expected true/false, got {raw!r}", field=name)
    if tp in (int, float):
        try:
            return tp(raw)
        except ValueError:
            raise ConfigError(f"expected {tp.__name__}, got {raw!r}", field=name) from None
    if tp is Path:
        return Path(raw).expanduser()
    return raw


def load(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build config section ``cls`` from ``environ`` (default: ``os.environ``)."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = f.metadata["env"]
        if name not in environ:
            if f.default is dataclasses.MISSING:
                raise ConfigError(f"required variable is not set ({f.metadata['help']})", field=name)
            continue
        value = _parse(name, hints[f.name], environ[name])
        choices = f.metadata["choices"]
        if choices and value not in choices:
            raise ConfigError(f"must be one of {', '.join(choices)}, got {value!r}", field=name)
        values[f.name] = value
    return cls(**values)


def describe(cls: type) -> list[dict[str, Any]]:
    """Variable, default and help of each field: the source of the README's configuration table."""
    rows = []
    for f in dataclasses.fields(cls):
        default = None if f.default is dataclasses.MISSING else f.default
        rows.append({"env": f.metadata["env"], "default": default, "help": f.metadata["help"]})
    return rows


@dataclass(frozen=True)
class EngineConfig:
    """How a process builds its engines: device, precision and where the weights are."""

    device: str = env("STYLEQUEUE_DEVICE", "auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    precision: str = env(
        "STYLEQUEUE_PRECISION",
        "fp32",
        choices=("fp32", "fp16", "bf16"),
        help="mixed precision on CUDA (ignored on CPU)",
    )
    random_weights: bool = env(
        "STYLEQUEUE_RANDOM_WEIGHTS",
        False,
        help="DEV/TEST ONLY: build randomly initialised networks instead of loading weights",
    )
    cache_dir: Path = env(
        "STYLEQUEUE_CACHE_DIR", Path("~/.cache/stylequeue"), help="where downloaded weights are kept"
    )
    vgg19_weights: str = env(
        "STYLEQUEUE_VGG19_WEIGHTS", VGG19_TORCHVISION_URL, help="VGG19 weights: path, s3:// or https URL"
    )
    vgg16_weights: str = env(
        "STYLEQUEUE_VGG16_WEIGHTS", VGG16_TORCHVISION_URL, help="VGG16 weights: path, s3:// or https URL"
    )
    vgg_format: str = env(
        "STYLEQUEUE_VGG_FORMAT",
        "torchvision",
        choices=("torchvision", "caffe", "adain"),
        help="layout/preprocessing of the VGG file (keys cannot tell torchvision from caffe)",
    )
    blend_model: str = env(
        "STYLEQUEUE_BLEND_MODEL",
        "",
        help="blend artifact: our .pt file, a TorchScript file, or 'ENCODER.pth,DECODER.pth' (AdaIN pair)",
    )

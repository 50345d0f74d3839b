"""Parameters of the feed-forward dual-style blend engine (``mode = "blend"``)."""

from __future__ import annotations

from dataclasses import dataclass

from stylequeue.params import Params, param
from stylequeue.params.images import MAX_IMAGE_SIZE


@dataclass(frozen=True)
class BlendParams(Params):
    mode = "blend"
    min_styles = 1
    max_styles = 2

    ratio: float = param(0.5, "share of the first style: w*AdaIN(c,s1) + (1-w)*AdaIN(c,s2)", min=0.0, max=1.0)
    alpha: float = param(1.0, "style strength: alpha*t + (1-alpha)*f(c)", min=0.0, max=1.0)
    preserve_colors: bool = param(False, "keep the content's colours (luminance-only transfer)")
    image_size: int = param(512, "longest side of the output in pixels", min=16, max=MAX_IMAGE_SIZE)

"""Which image shapes the engines can work with, torch-free so the API can refuse an upload early.

A style-transfer network needs a minimum number of pixels on an image's *shorter* side (Gatys'
VGG pools four times before relu5_x, see :data:`MIN_SIDE`), and no image is ever worked on with
a longest side over :data:`MAX_IMAGE_SIZE`. Together they bound the aspect ratio: an image
thinner than ``MAX_IMAGE_SIZE / MIN_SIDE`` (128:1) cannot be resized to both at once, whatever
its file size — a 3 KB PNG of 1,000,000×1 would otherwise become a 16,000,000×16 tensor.
"""

from __future__ import annotations

import math

from stylequeue.errors import ValidationError

MAX_IMAGE_SIZE = 2048  # the longest side any engine works at (and the largest ``image_size``)
MIN_SIDE = 16  # relu5_x lies behind four 2×2 max pools: a shorter side pools away to nothing
MAX_ASPECT_RATIO = MAX_IMAGE_SIZE // MIN_SIDE  # 128: long side / short side


def min_longest(width: int, height: int, min_side: int = MIN_SIDE) -> int:
    """The smallest longest side at which a ``width``×``height`` image keeps ``min_side`` px short.

    Resizing rounds the short side to ``round(short · longest / long)``; with ``longest`` at
    least ``ceil(min_side · long / short)`` that is never under ``min_side``.
    """
    return math.ceil(min_side * max(width, height) / min(width, height))


def check_image_shape(width: int, height: int, field: str) -> None:
    """Raise :class:`ValidationError` naming ``field`` unless every engine can use this shape:
    both sides at least 1 px and an aspect ratio of at most :data:`MAX_ASPECT_RATIO`:1."""
    if width < 1 or height < 1:
        raise ValidationError(f"the image is {width}×{height} px; both sides must be at least 1", field=field)
    if min_longest(width, height) > MAX_IMAGE_SIZE:
        raise ValidationError(
            f"the image is {width}×{height} px, thinner than {MAX_ASPECT_RATIO}:1; its shorter side "
            f"cannot be {MIN_SIDE} px within the {MAX_IMAGE_SIZE} px limit on the longest side",
            field=field,
        )


def check_output_size(width: int, height: int, image_size: int, min_side: int = MIN_SIDE) -> int:
    """Refuse (``image_size``) an output size at which a ``width``×``height`` content would keep
    fewer than ``min_side`` px on its shorter side; the smallest longest side that works otherwise.

    Each engine passes the shorter side its network needs (Gatys :data:`MIN_SIDE`, blend
    :data:`consumer.engines.blend.MIN_SIDE`); the API runs the same check on the decoded upload,
    so a job no engine could run is refused at submission instead of failing in the consumer.
    """
    smallest = min_longest(width, height, min_side)
    if image_size < smallest:
        raise ValidationError(
            f"at {image_size}px the content's shorter side would be under {min_side}px "
            f"(it is {width}×{height} px); use at least {smallest}",
            field="image_size",
        )
    return smallest


def longest_for_height(width: int, height: int, target_height: int) -> int:
    """The longest side that makes a ``width``×``height`` image ``target_height`` px high, aspect kept.

    The engines size outputs by their longest side (``image_size``); the seed CLI sized them by
    their height. For a portrait or square image the two are the same number; for a landscape
    one the longest side is the width the height implies, ``round(width · target / height)``.
    Resizing to that longest side rounds the height back to exactly ``target_height``, because
    the width's rounding error (at most 0.5 px) shrinks by ``height / width`` < 1 on the way.
    """
    return max(target_height, round(width * target_height / height))

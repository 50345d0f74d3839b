"""stylequeue.params.images: the torch-free image-shape rule shared by the engines and the API."""

import pytest

from stylequeue.errors import ValidationError
from stylequeue.params.images import MAX_ASPECT_RATIO, check_image_shape, min_longest


@pytest.mark.parametrize("shape", [(1, 1), (2048, 16), (16, 2048), (128, 1), (1, 128), (4000, 3000)])
def test_shapes_every_engine_can_use_pass(shape):
    check_image_shape(*shape, "content")


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((2049, 16), "128:1"),
        ((129, 1), "128:1"),
        ((1, 1_000_000), "128:1"),
        ((0, 10), "at least 1"),
        ((10, -1), "at least 1"),
    ],
)
def test_other_shapes_name_the_field(shape, match):
    with pytest.raises(ValidationError, match=match) as info:
        check_image_shape(*shape, "style")
    assert info.value.field == "style"


def test_min_longest_keeps_the_short_side():
    assert MAX_ASPECT_RATIO == 128
    assert min_longest(200, 20) == 160 and min_longest(20, 200, 9) == 90
    assert min_longest(3, 2) == 24  # rounds up: 16 · 3 / 2

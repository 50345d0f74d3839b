"""stylequeue.params: typed parsing, range checks naming the field, and the description."""

import pytest

from consumer.engines.blend import BlendParams
from consumer.engines.gatys import GatysParams
from consumer.engines.registry import kinds, params_class, validate_job_params
from stylequeue.errors import ValidationError
from stylequeue.params import describe, parse_params


def test_defaults_are_valid_for_every_mode():
    for cls in (kind.params for kind in kinds().values()):
        assert isinstance(cls(), cls)


def test_form_strings_are_coerced_to_field_types():
    params = parse_params(
        GatysParams,
        {
            "content_weight": "2.5",
            "total_iterations": "12",
            "preserve_colors": "on",
            "style_layers": "relu1_1, relu3_1",
            "style_layer_weights": "1,0.5",
            "seed": "7",
        },
    )
    assert params.content_weight == 2.5
    assert params.total_iterations == 12
    assert params.preserve_colors is True
    assert params.style_layers == ("relu1_1", "relu3_1")
    assert params.style_layer_weights == (1.0, 0.5)
    assert params.seed == 7


def test_json_values_are_accepted_as_they_are():
    params = parse_params(BlendParams, {"ratio": 0.25, "preserve_colors": False, "image_size": 64})
    assert (params.ratio, params.preserve_colors, params.image_size) == (0.25, False, 64)


def test_empty_optional_becomes_none():
    assert parse_params(GatysParams, {"seed": ""}).seed is None


@pytest.mark.parametrize(
    ("mode", "raw", "n_styles", "field"),
    [
        ("gatys", {"content_weight": "-1"}, 1, "content_weight"),
        ("gatys", {"style_weight": "nan"}, 1, "style_weight"),
        ("gatys", {"optimizer": "sgd"}, 1, "optimizer"),
        ("gatys", {"total_iterations": "0"}, 1, "total_iterations"),
        ("gatys", {"total_iterations": "1.5"}, 1, "total_iterations"),
        ("gatys", {"image_size": "5000"}, 1, "image_size"),
        ("gatys", {"style_blend_weights": "1,2"}, 1, "style_blend_weights"),
        ("gatys", {"style_blend_weights": "0,0"}, 2, "style_blend_weights"),
        ("gatys", {"style_layers": "relu9_9"}, 1, "style_layers"),
        ("gatys", {"style_layer_weights": "1,2"}, 1, "style_layer_weights"),
        ("gatys", {"model": "vgg16", "style_layers": "relu5_4"}, 1, "style_layers"),
        ("gatys", {"preserve_colors": "maybe"}, 1, "preserve_colors"),
        ("gatys", {"colour": "1"}, 1, "colour"),
        ("gatys", {}, 5, "style"),
        ("blend", {"ratio": "1.5"}, 2, "ratio"),
        ("blend", {"alpha": "1.01"}, 1, "alpha"),
        ("blend", {"image_size": "9999"}, 1, "image_size"),
        ("blend", {}, 3, "style"),
        ("blend", {}, 0, "style"),
        ("cubism", {}, 1, "mode"),
    ],
)
def test_bad_values_name_their_field(mode, raw, n_styles, field):
    with pytest.raises(ValidationError) as info:
        validate_job_params(mode, raw, n_styles)
    assert info.value.field == field
    assert field in str(info.value)


def test_direct_construction_is_validated_too():
    with pytest.raises(ValidationError, match="ratio"):
        BlendParams(ratio=-0.1)


def test_describe_lists_every_field_with_its_schema():
    described = {p["name"]: p for p in describe(GatysParams)}
    assert described["optimizer"]["schema"]["enum"] == ["lbfgs", "adam"]
    assert described["image_size"]["schema"]["maximum"] == 2048
    assert described["style_layers"]["default"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert described["style_layers"]["schema"]["items"]["enum"][0] == "relu1_1"
    seed = described["seed"]["schema"]["anyOf"]
    assert {"type": "null"} in seed and any(s.get("type") == "integer" for s in seed)
    assert described["learning_rate"]["schema"]["exclusiveMinimum"] == 0
    assert all(p["help"] for p in described.values())


def test_messages_name_the_bound_and_the_value():
    cases = {
        "image_size": ("5000", "must be at most 2048, got 5000"),
        "content_weight": ("-1", "must be at least 0, got -1"),
        "learning_rate": ("0", "must be greater than 0, got 0"),
        "total_iterations": ("1.5", "must be an integer, got '1.5'"),
        "optimizer": ("sgd", "must be one of lbfgs, adam; got 'sgd'"),
        "style_layers": ("relu9_9", "unknown value 'relu9_9'; allowed: relu1_1"),
        "preserve_colors": ("maybe", "must be true or false, got 'maybe'"),
        "seed": ("1_000", "must be an integer, got '1_000'"),
        "style_weight": ("inf", "must be a finite number"),
    }
    for name, (raw, message) in cases.items():
        with pytest.raises(ValidationError) as info:
            parse_params(GatysParams, {name: raw})
        assert message in info.value.message and info.value.field == name


def test_params_class_lookup():
    assert params_class("blend") is BlendParams
    assert BlendParams().to_dict()["ratio"] == 0.5
    assert GatysParams().to_dict()["content_layers"] == ["relu4_2"]

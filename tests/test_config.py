"""stylequeue.config: typed sections from the environment, failing fast with the variable's name."""

from pathlib import Path

import pytest

from stylequeue.config import EngineConfig, KafkaConfig, S3Config, describe, load
from stylequeue.errors import ConfigError


def test_defaults_fill_unset_variables():
    config = load(EngineConfig, {})
    assert config.device == "auto"
    assert config.random_weights is False
    assert config.vgg19_weights.endswith("vgg19-dcbb9e9d.pth")


def test_values_are_typed():
    config = load(
        EngineConfig,
        {
            "STYLEQUEUE_RANDOM_WEIGHTS": "yes",
            "STYLEQUEUE_CACHE_DIR": "/tmp/w",
            "STYLEQUEUE_PRECISION": "bf16",
        },
    )
    assert config.random_weights is True
    assert config.cache_dir == Path("/tmp/w")
    assert config.precision == "bf16"
    assert (
        load(
            KafkaConfig, {"STYLEQUEUE_KAFKA_BOOTSTRAP": "k:9092", "STYLEQUEUE_TOPIC_PARTITIONS": "3"}
        ).partitions
        == 3
    )


def test_missing_required_variable_is_named():
    with pytest.raises(ConfigError) as info:
        load(S3Config, {"STYLEQUEUE_S3_ENDPOINT": "http://s3", "STYLEQUEUE_S3_ACCESS_KEY": "a"})
    assert info.value.field == "STYLEQUEUE_S3_SECRET_KEY"
    assert "STYLEQUEUE_S3_SECRET_KEY" in str(info.value)


@pytest.mark.parametrize(
    ("section", "environ", "variable"),
    [
        (EngineConfig, {"STYLEQUEUE_RANDOM_WEIGHTS": "sometimes"}, "STYLEQUEUE_RANDOM_WEIGHTS"),
        (EngineConfig, {"STYLEQUEUE_PRECISION": "fp8"}, "STYLEQUEUE_PRECISION"),
        (
            KafkaConfig,
            {"STYLEQUEUE_KAFKA_BOOTSTRAP": "k", "STYLEQUEUE_TOPIC_PARTITIONS": "six"},
            "STYLEQUEUE_TOPIC_PARTITIONS",
        ),
    ],
)
def test_malformed_variable_is_named(section, environ, variable):
    with pytest.raises(ConfigError) as info:
        load(section, environ)
    assert info.value.field == variable


def test_describe_gives_variable_default_and_help():
    rows = {row["env"]: row for row in describe(S3Config)}
    assert rows["STYLEQUEUE_S3_BUCKET"]["default"] == "stylequeue"
    assert rows["STYLEQUEUE_S3_ENDPOINT"]["default"] is None
    assert all(row["help"] for row in rows.values())

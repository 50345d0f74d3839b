"""stylequeue.config: typed sections from the environment, failing fast with the variable's name."""

from pathlib import Path

import pydantic
import pytest

from stylequeue.config import ApiConfig, EngineConfig, KafkaConfig, RedisConfig, S3Config, describe, load
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


def test_booleans_follow_pydantics_rule_and_empty_means_unset():
    """One rule for settings and engine parameters: true/false, 1/0, yes/no, on/off, any case.

    An empty variable is unset (its default), so ``STYLEQUEUE_COMPAT_ROUTES=`` keeps the routes on
    (it used to read as false), and an empty number is no longer an error.
    """
    for raw, want in [("on", True), ("TRUE", True), ("1", True), ("off", False), ("No", False), ("0", False)]:
        assert load(EngineConfig, {"STYLEQUEUE_CUDA_GRAPHS": raw}).cuda_graphs is want, raw
    empty = load(ApiConfig, {"STYLEQUEUE_COMPAT_ROUTES": "", "STYLEQUEUE_API_WORKERS": ""})
    assert empty.compat_routes is True and empty.workers == 2


def test_only_the_given_mapping_is_read(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEQUEUE_DEVICE", "cuda:1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("STYLEQUEUE_PRECISION=fp16\n")
    assert load(EngineConfig, {}).device == "auto"
    assert load(EngineConfig).device == "cuda:1" and load(EngineConfig).precision == "auto"
    assert EngineConfig().device == "auto"  # building a section directly reads no environment


def test_a_field_with_its_own_variable_reads_that_variable_alone():
    assert load(ApiConfig, {"STYLEQUEUE_API_BIND": "h:1"}).bind == "h:1" == ApiConfig(bind="h:1").bind
    assert load(ApiConfig, {"STYLEQUEUE_BIND": "h:1"}).bind == "0.0.0.0:8000"


def test_sections_are_frozen_values():
    a, b = load(EngineConfig, {"STYLEQUEUE_DEVICE": "cpu"}), EngineConfig(device="cpu")
    assert a == b and hash(a) == hash(b) and {("gatys", a): 1}[("gatys", b)] == 1
    with pytest.raises(pydantic.ValidationError):
        a.device = "cuda"
    assert load(EngineConfig, {"STYLEQUEUE_CACHE_DIR": "~/w"}).cache_dir == Path.home() / "w"


def test_missing_required_variable_is_named():
    with pytest.raises(ConfigError) as info:
        load(S3Config, {"STYLEQUEUE_S3_ENDPOINT": "http://s3", "STYLEQUEUE_S3_ACCESS_KEY": "a"})
    assert info.value.field == "STYLEQUEUE_S3_SECRET_KEY"
    assert "STYLEQUEUE_S3_SECRET_KEY" in str(info.value) and "S3 secret access key" in str(info.value)


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
        (
            RedisConfig,
            {"STYLEQUEUE_REDIS_URL": "r", "STYLEQUEUE_JOB_LEASE_S": "soon"},
            "STYLEQUEUE_JOB_LEASE_S",
        ),
    ],
)
def test_malformed_variable_is_named(section, environ, variable):
    with pytest.raises(ConfigError) as info:
        load(section, environ)
    assert info.value.field == variable
    assert repr(list(environ.values())[-1]) in str(info.value)  # the malformed value is the last


@pytest.mark.parametrize(
    ("section", "environ", "message"),
    [
        (
            KafkaConfig,
            {"STYLEQUEUE_KAFKA_BOOTSTRAP": "k", "STYLEQUEUE_TOPIC_PARTITIONS": "0"},
            "at least 1, got 0",
        ),
        (RedisConfig, {"STYLEQUEUE_REDIS_URL": "r", "STYLEQUEUE_JOB_LEASE_S": "0"}, "greater than 0, got 0"),
        (ApiConfig, {"STYLEQUEUE_API_WORKERS": "0"}, "at least 1, got 0"),
        (EngineConfig, {"STYLEQUEUE_BLEND_CACHE_SIZE": "-1"}, "at least 0, got -1"),
    ],
)
def test_a_value_out_of_its_declared_range_is_refused_naming_the_variable(section, environ, message):
    with pytest.raises(ConfigError) as info:
        load(section, environ)
    assert info.value.field == list(environ)[-1]
    assert str(info.value).endswith(message)


def test_describe_gives_variable_default_and_help():
    rows = {row["env"]: row for row in describe(S3Config)}
    assert rows["STYLEQUEUE_S3_BUCKET"]["default"] == "stylequeue"
    assert rows["STYLEQUEUE_S3_ENDPOINT"]["default"] is None
    assert rows["STYLEQUEUE_PRESIGN_TTL_S"] == {
        "name": "presign_ttl_s", "env": "STYLEQUEUE_PRESIGN_TTL_S", "default": 3600, "choices": None,
        "range": "1–604800", "help": "lifetime of presigned download URLs",
    }  # fmt: skip
    assert rows["STYLEQUEUE_S3_BUCKET"]["range"] == ""
    ranges = {row["env"]: row["range"] for row in describe(RedisConfig)}
    assert ranges["STYLEQUEUE_JOB_LEASE_S"] == "> 0" and ranges["STYLEQUEUE_JOB_TTL_S"] == "≥ 1"
    assert all(row["help"] for row in rows.values())
    placement = {row["env"]: row for row in describe(KafkaConfig)}["STYLEQUEUE_PLACEMENT"]
    assert placement["choices"] == ("backlog", "key")

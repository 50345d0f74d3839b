"""api.backing: provisioning is idempotent, and an API worker boots with S3 or Kafka down, answers
``/readyz`` 503 naming the service, and 200 once it is back and provisioned."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from api_server import api_server
from clients import partition_counts
from services import wait_for

from api.backing import LazyProducer, provision
from api.service import Settings
from launcher import localstack
from stylequeue import bus
from stylequeue.storage import Storage

pytestmark = pytest.mark.integration


def readyz(port: int) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_provision_makes_the_bucket_and_topics_and_may_run_again(service_env):
    settings = Settings.load(service_env)
    topics = provision(settings)
    assert provision(settings) == topics  # already done: tolerated
    assert set(topics) == {bus.topic_for(settings.kafka, m) for m in ("gatys", "blend")} | {
        settings.kafka.dead_letter_topic
    }
    assert set(topics) <= set(partition_counts(settings.kafka, topics))
    Storage.from_config(settings.s3).ping()  # the bucket exists


def test_the_lazy_producer_is_made_at_first_use_and_again_after_a_failure():
    made = []

    def factory():
        made.append(1)
        if len(made) == 1:
            raise RuntimeError("broker down")
        return type("Producer", (), {"flush": lambda self: "flushed"})()

    producer = LazyProducer(factory)
    assert made == []  # nothing is built, nothing connects, until it is used
    with pytest.raises(RuntimeError):
        producer.flush()
    assert producer.flush() == "flushed" and producer.flush() == "flushed"
    assert len(made) == 2


@pytest.mark.parametrize("down", ["s3", "kafka"])
def test_a_worker_boots_while_a_service_is_down_and_is_ready_once_it_is_back(down, service_env, tmp_path):
    port = localstack.free_port()  # nothing answers here yet
    variable = {"s3": "STYLEQUEUE_S3_ENDPOINT", "kafka": "STYLEQUEUE_KAFKA_BOOTSTRAP"}[down]
    address = f"http://127.0.0.1:{port}" if down == "s3" else f"127.0.0.1:{port}"
    env = {**service_env, variable: address}
    # api_server returns once /healthz answers: the worker booted although ``down`` does not answer.
    with api_server(env, tmp_path, provision=False) as api_port:
        status, states = readyz(api_port)
        assert status == 503 and states[down] == "unavailable", states
        start = localstack.start_s3 if down == "s3" else localstack.start_broker
        with start(port):
            provision(Settings.load(env))
            wait_for(lambda: readyz(api_port)[0] == 200, timeout=60, interval=0.5, message="/readyz 200")
            assert readyz(api_port) == (200, {"redis": "ok", "kafka": "ok", "s3": "ok"})

"""The embedded local stack: each service comes up on a free port, serves real clients, and stops."""

from __future__ import annotations

import os
import tempfile

import boto3
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from launcher import dev, localstack

pytestmark = pytest.mark.integration


def test_broker_produces_and_fetches(kafka_bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic("localstack-smoke", num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send("localstack-smoke", b"hello").get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(
        "localstack-smoke", bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
    )  # fmt: skip
    assert next(consumer).value == b"hello"
    consumer.close()


def test_redis_answers(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("localstack", b"ok", ex=5)
    assert client.get("localstack") == b"ok"


def test_s3_round_trip(s3_endpoint):
    # The keys of whichever endpoint the fixture chose (env vars, a MinIO container, or moto's).
    s3 = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1",
        aws_access_key_id=os.environ.get("STYLEQUEUE_S3_ACCESS_KEY", localstack.S3_ACCESS_KEY),
        aws_secret_access_key=os.environ.get("STYLEQUEUE_S3_SECRET_KEY", localstack.S3_SECRET_KEY),
    )  # fmt: skip
    s3.create_bucket(Bucket="localstack-smoke")
    s3.put_object(Bucket="localstack-smoke", Key="a/b.txt", Body=b"data")
    assert s3.get_object(Bucket="localstack-smoke", Key="a/b.txt")["Body"].read() == b"data"


def test_service_stops_and_frees_its_port():
    service = localstack.start_redis()
    assert localstack.port_open(service.port)
    service.stop()
    assert service.process.returncode is not None
    assert not localstack.port_open(service.port)
    service.stop()  # idempotent


def test_a_service_that_dies_at_start_reports_its_output(tmp_path):
    script = tmp_path / "boom.sh"
    script.write_text("echo the reason it failed; exit 3\n")
    workdir = tempfile.TemporaryDirectory()
    with pytest.raises(localstack.ServiceError, match="boom exited with 3(.|\n)*the reason it failed"):
        localstack.spawn(
            "boom",
            ["bash", str(script)],
            localstack.free_port(),
            "x",
            lambda: False,
            timeout=10,
            workdir=workdir,
        )
    assert not os.path.exists(workdir.name)  # stopped: its workdir is gone with it


def test_a_service_that_never_gets_ready_is_stopped_and_reports_its_output(tmp_path):
    script = tmp_path / "slow.sh"
    script.write_text("echo still warming up; exec sleep 30\n")
    with pytest.raises(localstack.ServiceError, match="did not come up(.|\n)*still warming up") as raised:
        localstack.spawn("slow", ["bash", str(script)], localstack.free_port(), "x", lambda: False, timeout=1)
    assert "slow" in str(raised.value)


def test_service_env_points_clients_at_the_services():
    env = localstack.service_env("127.0.0.1:1", "redis://127.0.0.1:2/0", "http://127.0.0.1:3")
    assert env["STYLEQUEUE_KAFKA_BOOTSTRAP"] == "127.0.0.1:1"
    assert env["STYLEQUEUE_REDIS_URL"] == "redis://127.0.0.1:2/0"
    assert env["STYLEQUEUE_S3_ENDPOINT"] == "http://127.0.0.1:3"
    assert int(env["STYLEQUEUE_KAFKA_SESSION_TIMEOUT_MS"]) < 10000


def _http_ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _children(pid: int, pattern: str) -> list:
    import psutil

    found = []
    for child in psutil.Process(pid).children():
        try:
            if pattern in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # a zombie the supervisor has not reaped yet, or gone already
            pass
    return found


def test_dev_runs_everything_real_blend_random_gatys_survives_kills_and_stops_on_ctrl_c(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys

    import requests
    from http_jobs import submit, wait_terminal
    from services import wait_for

    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEQUEUE_")}
    env.update(STYLEQUEUE_CACHE_DIR=str(tmp_path / "no-weights"), PYTHONUNBUFFERED="1")
    log = tmp_path / "dev.log"
    argv = [sys.executable, "-m", "launcher.cli", "dev", "--api-port", "0", "--workers", "1",
            "--state-dir", str(tmp_path / "state")]  # fmt: skip
    with open(log, "wb") as out:
        dev = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:

        def started():
            assert dev.poll() is None, log.read_text()
            return re.search(r"running at (http://\S+)/", log.read_text())

        url = wait_for(started, 120, 0.2, log.read_text).group(1)
        text = log.read_text()
        assert "no weights are installed for gatys" in text and "RANDOM WEIGHTS for gatys:" in text
        engines = {e["mode"]: e for e in requests.get(f"{url}/api/v1/engines", timeout=10).json()["engines"]}
        assert {mode: e["consumers"] for mode, e in engines.items()} == {"gatys": 1, "blend": 1}
        assert engines["gatys"]["random_weights"] and not engines["blend"]["random_weights"]
        assert engines["blend"]["models"] == ["Magenta arbitrary stylization (Ghiasi et al. 2017)"]

        # kill -9 of a consumer and of the API: both come back, the stack keeps serving.
        for pattern in ("--mode blend", "gunicorn"):
            (victim,) = _children(dev.pid, pattern)
            victim.kill()
            wait_for(lambda p=pattern, v=victim: [c.pid for c in _children(dev.pid, p)] not in ([], [v.pid]),
                     timeout=60, message=f"{pattern} restarted")  # fmt: skip
        assert "consumer-blend-0 exited with -9; restarting it" in log.read_text()
        assert "api exited with -9; restarting it" in log.read_text()
        wait_for(lambda: _http_ok(f"{url}/healthz"), timeout=60, message="the API answers again")
        job = submit(url, "blend")
        assert wait_terminal(url, job["id"], timeout=120)["status"] == "succeeded"
        assert dev.poll() is None  # nothing stopped the stack
    finally:
        dev.send_signal(signal.SIGINT)
        assert dev.wait(60) == 0, log.read_text()[-3000:]
    assert "stylequeue dev: stopped" in log.read_text()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=5)


def test_dev_runs_blend_on_magenta_and_only_gatys_on_random_weights(tmp_path, capsys):
    """A fresh machine: no VGG19 file anywhere, Magenta's networks installed with the package."""
    environ = {"STYLEQUEUE_CACHE_DIR": str(tmp_path), "STYLEQUEUE_RANDOM_WEIGHTS": "0"}
    assert dev.dev_engine_env(environ) == {"gatys": {"STYLEQUEUE_RANDOM_WEIGHTS": "1"}}
    said = capsys.readouterr().out
    assert "no weights are installed for gatys" in said and "stylequeue models pull vgg19" in said
    assert "blend" not in said


def test_dev_uses_every_real_weight_file_it_finds(tmp_path, vgg_weight_file):
    environ = {"STYLEQUEUE_RANDOM_WEIGHTS": "0", "STYLEQUEUE_VGG19_WEIGHTS": str(vgg_weight_file())}
    assert dev.dev_engine_env(environ) == {}
    missing = {"STYLEQUEUE_RANDOM_WEIGHTS": "0", "STYLEQUEUE_VGG19_WEIGHTS": str(vgg_weight_file()),
               "STYLEQUEUE_BLEND_MODEL": str(tmp_path / "gone.pt")}  # fmt: skip
    assert dev.dev_engine_env(missing) == {"blend": {"STYLEQUEUE_RANDOM_WEIGHTS": "1"}}
    everything = dev.dev_engine_env({"STYLEQUEUE_RANDOM_WEIGHTS": "1"})
    assert set(everything) == set(localstack.MODES)

"""The HTTP API end to end against real Redis, Kafka and S3 (the worker's part is seeded directly)."""

from __future__ import annotations

import io
import json
import zipfile

import imagefiles as files
import pytest
from clients import configs, producer, s3_storage, status_store, topic_records, topics  # noqa: F401
from PIL import Image

from api.app import create_app
from api.service import NO_CONSUMER, Clients
from api.views import RECORD_ONLY
from consumer.engines.registry import modes
from stylequeue import bus
from stylequeue.bus import JobMessage
from stylequeue.job import Status, object_keys
from stylequeue.presence import Presence

pytestmark = pytest.mark.integration


@pytest.fixture
def app(service_env, s3_storage, status_store, producer):
    return create_app(service_env, clients=Clients(s3_storage, status_store, producer))


@pytest.fixture
def client(app):
    return app.test_client()


def submit(client, mode="blend", styles=1, init=None, **fields):
    data = {"mode": mode, "content": (io.BytesIO(files.jpeg()), "content.jpg"), **fields}
    data["style"] = [(io.BytesIO(files.png(color=(0, 0, 50 * i))), f"s{i}.png") for i in range(styles)]
    if init is not None:
        data["init_image"] = (io.BytesIO(init), "init.png")
    return client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")


def test_submit_blend_stores_records_and_publishes(client, configs, s3_storage, status_store):
    response = submit(client, "blend", styles=2, ratio="0.25", image_size="32")
    assert response.status_code == 202, response.json
    body = response.json
    assert response.headers["Location"] == f"/api/v1/jobs/{body['id']}" == body["links"]["self"]
    assert body["status"] == "queued" and body["queue_position"] == 0
    assert body["params"]["ratio"] == 0.25 and body["params"]["alpha"] == 1.0  # defaults filled in
    record = status_store.get(body["id"])
    # The body is the record's view: every field but the store's own (S3 keys, fencing).
    shown = {k: v for k, v in record.to_dict().items() if k not in RECORD_ONLY}
    assert shown == {k: v for k, v in body.items() if k not in ("links", "queue_position")}
    assert RECORD_ONLY.isdisjoint(body) and body["attempt"] == 0
    keys = object_keys(body["id"])
    # The RGB JPEG content is kept as a JPEG (metadata stripped); the PNG styles stay PNGs.
    content_key = keys["content"].removesuffix(".png") + ".jpg"
    assert record.inputs.content == content_key
    assert s3_storage.keys(keys["prefix"]) == sorted(
        [content_key, keys["style"].format(index=0), keys["style"].format(index=1), keys["params"]]
    )
    content = Image.open(io.BytesIO(s3_storage.get(content_key)))
    assert (content.format, content.mode, content.size) == ("JPEG", "RGB", (24, 16))
    [message] = topic_records(configs.kafka, bus.topic_for(configs.kafka, "blend"), 1)
    assert message.key == body["id"].encode() and JobMessage.decode(message.value) == JobMessage.of(record)
    assert topic_records(configs.kafka, bus.topic_for(configs.kafka, "gatys"), 0) == []


def test_submit_gatys_with_init_image_and_list_parameters(client, configs, s3_storage, status_store):
    response = submit(
        client, "gatys", styles=3, init=files.png((24, 16)), init_method="image",
        style_layers="relu1_1,relu2_1", style_blend_weights=["1", "2", "3"], total_iterations="5",
    )  # fmt: skip
    assert response.status_code == 202, response.json
    body = response.json
    assert body["params"]["style_layers"] == ["relu1_1", "relu2_1"]
    assert body["params"]["style_blend_weights"] == [1.0, 2.0, 3.0]
    record = status_store.get(body["id"])
    assert record.inputs.init_image == object_keys(body["id"])["init_image"]
    assert len(record.inputs.styles) == len(body["links"]["styles"]) == 3
    assert s3_storage.exists(record.inputs.init_image)
    [message] = topic_records(configs.kafka, bus.topic_for(configs.kafka, "gatys"), 1)
    assert JobMessage.decode(message.value).id == body["id"]


def test_uploads_are_normalised_before_storage(client, s3_storage, status_store):
    cmyk = files.encode(Image.new("CMYK", (12, 12), (0, 255, 255, 0)), "JPEG")
    data = {
        "mode": "blend",
        "content": (io.BytesIO(files.exif_rotated_jpeg()), "c.jpg"),
        "style": (io.BytesIO(cmyk), "s.jpg"),
    }
    body = client.post("/api/v1/jobs", data=data, content_type="multipart/form-data").json
    record = status_store.get(body["id"])
    content = Image.open(io.BytesIO(s3_storage.get(record.inputs.content)))
    style = Image.open(io.BytesIO(s3_storage.get(record.inputs.styles[0])))
    assert content.size == (10, 20) and content.mode == "RGB"  # EXIF orientation applied
    assert style.mode == "RGB" and style.getpixel((6, 6))[0] > 200


def test_get_and_unknown_job(client):
    job = submit(client).json
    assert client.get(job["links"]["self"]).json == job
    missing = client.get("/api/v1/jobs/does-not-exist")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found" and missing.json["error"]["field"] == "job_id"
    for path in ("result", "snapshots", "snapshots.zip", "losses", "snapshots/10"):
        assert client.get(f"/api/v1/jobs/does-not-exist/{path}").status_code == 404, path


def test_queue_position_counts_jobs_ahead(client):
    first, second = submit(client).json, submit(client).json
    assert (first["queue_position"], second["queue_position"]) == (0, 1)
    assert submit(client, "gatys").json["queue_position"] == 0  # other mode, other queue


def test_result_is_409_until_the_job_succeeded(client, status_store):
    job = submit(client).json
    response = client.get(job["links"]["result"])
    assert response.status_code == 409 and response.json["error"]["code"] == "conflict"
    assert "queued" in response.json["error"]["message"]
    status_store.claim(job["id"])
    assert "running" in client.get(job["links"]["result"]).json["error"]["message"]


def finish_like_a_worker(status_store, s3_storage, job_id, iterations=(20, 10, 30), copy_to_s3=True):
    """What the worker does: claim, snapshots in Redis, result (and snapshot copies) in S3, finish."""
    attempt = status_store.claim(job_id).attempt
    keys = object_keys(job_id, attempt)
    for it in iterations:
        status_store.update_progress(
            job_id, attempt, it, 30, {"content": 1.0, "style": 2.0, "tv": 0.5, "total": 3.5}
        )
        jpeg = files.encode(files.rgb((8, 8), (it, it, it)), "JPEG")
        status_store.put_snapshot(job_id, attempt, it, jpeg)
        if copy_to_s3:
            s3_storage.put(keys["snapshot"].format(iteration=it), jpeg, "image/jpeg")
    s3_storage.put(keys["result"], files.png((8, 8), (1, 2, 3)), "image/png")
    assert status_store.finish(
        job_id, attempt, Status.SUCCEEDED, result_key=keys["result"], snapshots=iterations
    )


def test_finished_job_result_snapshots_losses(client, status_store, s3_storage):
    job = submit(client, "gatys").json
    finish_like_a_worker(status_store, s3_storage, job["id"])
    result = client.get(job["links"]["result"])
    assert result.status_code == 200 and result.mimetype == "image/png"
    assert Image.open(io.BytesIO(result.data)).getpixel((0, 0)) == (1, 2, 3)
    listing = client.get(job["links"]["snapshots"]).json
    assert [s["iteration"] for s in listing["snapshots"]] == [10, 20, 30]
    one = client.get(listing["snapshots"][1]["url"])
    assert one.mimetype == "image/jpeg" and Image.open(io.BytesIO(one.data)).getpixel((0, 0))[0] in range(
        17, 24
    )
    assert client.get(f"{job['links']['snapshots']}/15").status_code == 404
    losses = client.get(job["links"]["losses"]).json["losses"]
    assert [p["iteration"] for p in losses] == [20, 10, 30] and losses[0]["total"] == 3.5
    redirect = client.get(job["links"]["result"] + "?presigned=true")
    assert redirect.status_code == 307 and object_keys(job["id"], 1)["result"] in redirect.headers["Location"]


def test_zip_holds_snapshots_in_order_result_and_params(client, status_store, s3_storage):
    job = submit(client, "gatys", total_iterations="30").json
    finish_like_a_worker(status_store, s3_storage, job["id"])
    status_store.redis.delete(status_store.key("snaps", job["id"]))  # Redis TTL over: S3 copies serve
    response = client.get(job["links"]["zip"])
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert archive.namelist() == [
        "snapshots/000010.jpg", "snapshots/000020.jpg", "snapshots/000030.jpg", "result.png", "params.json",
    ]  # fmt: skip
    assert archive.testzip() is None
    assert Image.open(archive.open("snapshots/000020.jpg")).getpixel((0, 0))[0] in range(17, 24)
    params = json.loads(archive.read("params.json"))
    assert params["mode"] == "gatys" and params["params"]["total_iterations"] == 30


def test_zip_of_a_running_job_comes_from_redis(client, status_store):
    job = submit(client, "gatys").json
    attempt = status_store.claim(job["id"]).attempt
    status_store.put_snapshot(job["id"], attempt, 5, files.encode(files.rgb((8, 8)), "JPEG"))
    archive = zipfile.ZipFile(io.BytesIO(client.get(job["links"]["zip"]).data))
    assert archive.namelist() == ["snapshots/000005.jpg", "params.json"]
    single = client.get(f"{job['links']['snapshots']}/5")
    assert single.status_code == 200 and single.data == status_store.snapshot(job["id"], 5)


def test_cancel_a_queued_job(client, status_store):
    job = submit(client).json
    response = client.delete(job["links"]["self"])
    assert response.status_code == 200
    assert response.json["status"] == "cancelled" and response.json["queue_position"] is None
    assert status_store.get(job["id"]).status is Status.CANCELLED
    assert status_store.claim(job["id"]) is None


def test_cancel_a_running_job_flags_it_and_a_finished_one_is_409(client, status_store, s3_storage):
    running = submit(client).json
    status_store.claim(running["id"])
    assert client.delete(running["links"]["self"]).json["status"] == "running"
    assert status_store.cancel_requested(running["id"])
    done = submit(client).json
    finish_like_a_worker(status_store, s3_storage, done["id"], iterations=())
    response = client.delete(done["links"]["self"])
    assert response.status_code == 409 and "succeeded" in response.json["error"]["message"]


def test_engines_report_consumers_and_limits(client, status_store, configs):
    engines = {e["mode"]: e for e in client.get("/api/v1/engines").json["engines"]}
    assert engines["gatys"]["available"] is False and engines["gatys"]["reason"] == NO_CONSUMER
    assert engines["blend"]["max_styles"] == 2 and engines["gatys"]["max_styles"] == 4
    assert {p["name"] for p in engines["blend"]["parameters"]} >= {"ratio", "alpha", "image_size"}
    presence = Presence(status_store.redis, prefix=status_store.prefix)
    presence.report("blend", "c1", {"available": True, "random_weights": True, "device": "cpu"}, 30)
    presence.report("gatys", "c2", {"available": False, "reason": "VGG19 weights missing"}, 30)
    body = client.get("/api/v1/engines").json
    engines = {e["mode"]: e for e in body["engines"]}
    assert (
        engines["blend"]["available"],
        engines["blend"]["consumers"],
        engines["blend"]["random_weights"],
    ) == (True, 1, True)
    assert (engines["gatys"]["available"], engines["gatys"]["reason"]) == (False, "VGG19 weights missing")
    assert body["limits"] == {
        "max_file_bytes": configs.api.max_file_bytes, "max_request_bytes": configs.api.max_request_bytes,
        "max_pixels": configs.api.max_pixels, "formats": ["jpeg", "png", "webp"],
    }  # fmt: skip


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json == {"redis": "ok", "kafka": "ok", "s3": "ok"}


@pytest.fixture
def dying_broker(service_env, s3_storage, status_store):
    """An app whose broker is a Tansu of its own, for a test to kill: (app, broker)."""
    from launcher import localstack
    from stylequeue import config

    broker = localstack.start_broker()
    env = {**service_env, "STYLEQUEUE_KAFKA_BOOTSTRAP": broker.url}
    quick = {"delivery_timeout_ms": 2000, "request_timeout_ms": 1000, "max_block_ms": 1000}
    bus.ensure_topics(config.load(config.KafkaConfig, env), modes())  # provisioned, as at deployment
    made = bus.make_producer(config.load(config.KafkaConfig, env), **quick)
    try:
        yield create_app(env, clients=Clients(s3_storage, status_store, made)), broker
    finally:
        made.close(timeout=1)
        broker.process.kill()
        broker.stop()


def test_readiness_is_503_naming_the_service_that_is_down(dying_broker):
    app, broker = dying_broker
    assert app.test_client().get("/readyz").status_code == 200
    broker.process.kill()
    broker.process.wait()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["redis"] == "ok" and response.json["s3"] == "ok"
    # The service is named; how it failed (hosts, ports, errno) stays in the log.
    assert response.json["kafka"] == "unavailable"


def test_failed_publish_is_503_and_leaves_nothing_behind(dying_broker, s3_storage, status_store):
    app, broker = dying_broker
    broker.process.kill()
    broker.process.wait()
    response = submit(app.test_client())
    assert response.status_code == 503
    error = response.json["error"]
    assert error["code"] == "unavailable" and error["message"] == "kafka is unavailable; try again later"
    assert s3_storage.keys() == []
    assert [k for k in status_store.redis.scan_iter(match=status_store.prefix + "*")] == []


def test_errors_are_json_for_unknown_routes_and_methods(client):
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.put("/api/v1/jobs")
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_metrics_count_submissions(client):
    submit(client)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'stylequeue_jobs_submitted_total{mode="blend"}' in text
    assert 'route="/api/v1/jobs"' in text


@pytest.fixture
def dying_redis(service_env, s3_storage, producer):
    """An app whose Redis is a redis-server of its own, for a test to stop: (app, redis service)."""
    from launcher import localstack
    from stylequeue import config, status

    server = localstack.start_redis()
    cfg = config.load(config.RedisConfig, {**service_env, "STYLEQUEUE_REDIS_URL": server.url})
    redis = status.StatusStore.from_config(cfg).redis
    try:
        yield (
            create_app(service_env, clients=Clients(s3_storage, status.StatusStore(redis, cfg), producer)),
            server,
        )
    finally:
        redis.close()
        server.stop()


def test_redis_down_on_read_routes_is_503_naming_redis(dying_redis, status_store, s3_storage):
    app, server = dying_redis
    client = app.test_client()
    job = submit(client, "gatys").json
    assert client.get(job["links"]["self"]).status_code == 200
    server.stop()
    for url in [job["links"][name] for name in ("self", "result", "snapshots", "zip")] + [
        f"/api/v1/jobs/{job['id']}/losses",
        f"/api/v1/jobs/{job['id']}/snapshots/10",
        "/api/v1/engines",
    ]:
        response = client.get(url)
        assert response.status_code == 503, (url, response.status_code, response.data[:300])
        error = response.json["error"]
        assert error["code"] == "unavailable" and error["field"] is None, url
        assert error["message"] == "redis is unavailable; try again later", url


def test_s3_down_on_read_routes_is_503_naming_s3(service_env, status_store, producer):
    from launcher import localstack
    from stylequeue import config, storage

    server = localstack.start_s3()
    try:
        env = {**service_env, "STYLEQUEUE_S3_ENDPOINT": server.url}
        store = storage.Storage.from_config(config.load(config.S3Config, env))
        store.ensure_bucket()  # provisioned, as at deployment
        client = create_app(env, clients=Clients(store, status_store, producer)).test_client()
        job = submit(client, "gatys").json
        finish_like_a_worker(status_store, store, job["id"])
        assert client.get(job["links"]["result"]).status_code == 200
        server.stop()
        base = f"/api/v1/jobs/{job['id']}"
        for url in (job["links"]["result"], f"{base}/snapshots/10"):  # each retried ~3 s by botocore
            response = client.get(url)
            assert response.status_code == 503, (url, response.status_code, response.data[:300])
            assert response.json["error"]["code"] == "unavailable", url
            assert response.json["error"]["message"] == "s3 is unavailable; try again later", url
    finally:
        server.stop()

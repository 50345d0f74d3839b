"""The seed projects' routes (api/compat.py over api/seeds.py): each seed's client, with its own field
names, gets the answer it expects, and every request is a normal job.

The mapping tests are pure; the routes run against real services: the whole stack (gunicorn API and
one consumer per engine, random weights, tiny images) for the answers, and an in-process app with no
consumer (so jobs stay queued) for the wait running out, bad input and the switch.
"""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from clients import configs, producer, s3_storage, status_store, topics  # noqa: F401
from PIL import Image
from services import wait_for

from api import errors, openapi, seeds
from api.docs import compat_table
from api.service import FilePart, Submission
from stylequeue import config
from stylequeue.job import JobError, Status
from stylequeue.status import StatusStore

README = Path(__file__).resolve().parent.parent / "README.md"
GAIN = seeds.TORCHVISION_GAIN


def png(size: tuple[int, int], seed: int = 0) -> bytes:
    """A noisy RGB PNG of ``size`` (different per seed)."""
    image = Image.effect_noise(size, 40 + seed).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def files(**named: tuple[int, int]) -> dict[str, tuple[str, bytes, str]]:
    return {name: (f"{name}.png", png(size, i), "image/png") for i, (name, size) in enumerate(named.items())}


# -- the mapping, pure ------------------------------------------------------------------------


def test_pixelblend_fields_become_blend_parameters():
    fields = {"style_1_weight": "0.25", "style_intensity": "0.8", "detail_strength": "0.9", "extra": "x"}
    assert seeds.seed_params(seeds.PIXELBLEND, fields, (451, 300)) == {
        "ratio": "0.25",
        "alpha": "0.8",
        "image_size": "451",  # the content's size, as PixelBlend answered
    }
    assert seeds.seed_params(seeds.PIXELBLEND, {}, (4000, 3000)) == {"image_size": "768"}
    assert seeds.seed_params(seeds.PIXELBLEND, {"high_quality": "true"}, (4000, 3000)) == {
        "image_size": "1024"
    }


def test_gatys_service_epochs_and_weights_in_our_units():
    fields = {"epochs": "300", "content_weight": "1", "style_weight": "1e6"}
    params = seeds.seed_params(seeds.GATYS_SERVICE, fields, (40, 30))
    assert params["total_iterations"] == "300" and params["image_size"] == "40"
    assert float(params["content_weight"]) == pytest.approx(1 / GAIN**2)
    assert float(params["style_weight"]) == pytest.approx(1e6 / GAIN**4)
    # Absent weights keep ours; an empty field (a browser form) counts as absent.
    assert seeds.seed_params(seeds.GATYS_SERVICE, {"epochs": ""}, (40, 30)) == {"image_size": "40"}


def test_photoreal_alpha_and_size():
    params = seeds.seed_params(seeds.PHOTOREAL, {"alpha": "0.4", "size": "96"}, (451, 300))
    assert params == {"alpha": "0.4", "image_size": "96"}
    assert seeds.seed_params(seeds.PHOTOREAL, {}, (1000, 800)) == {"image_size": "512"}


@pytest.mark.parametrize(
    ("size", "cap", "expected"),
    [
        ((451, 300), 768, 451),
        ((4000, 3000), 768, 768),
        ((20, 10), 768, 32),
        ((10, 10), 512, 16),
        (None, 512, None),
    ],
)
def test_output_size_is_the_contents_up_to_the_cap_never_below_the_minimum(size, cap, expected):
    assert seeds.output_size(size, cap) == expected


def test_the_gain_is_the_engines():
    """Torch-free in api.seeds; the engine's value (consumer/engines/vgg.py) is the reference."""
    from consumer.engines.vgg import VGGFeatures

    assert GAIN == VGGFeatures.activation_gain.fget(SimpleNamespace(fmt="torchvision"))


def test_a_failed_or_cancelled_job_raises_with_its_status():
    job = {"id": "j1", "status": "failed", "error": {"code": "internal", "message": "boom"},
           "links": {"self": "/api/v1/jobs/j1"}}  # fmt: skip
    with pytest.raises(seeds.JobFailed, match=r"job j1 failed \(internal: boom\)") as failed:
        seeds.succeeded(job)
    assert errors.status_for(failed.value) == 422
    with pytest.raises(Exception, match="was cancelled") as cancelled:
        seeds.succeeded({**job, "status": "cancelled"})
    assert errors.status_for(cancelled.value) == 409
    assert seeds.succeeded({**job, "status": "succeeded"}) is True
    assert seeds.succeeded({**job, "status": "running"}) is False


def test_readme_table_is_generated_from_the_declarations():
    text = README.read_text()
    table = text[text.index("<!-- compat-table -->") + 22 : text.index("<!-- /compat-table -->")]
    assert table.strip() == compat_table(), "run: python -m api.docs --update-readme"
    for route in seeds.SEED_ROUTES:
        assert f"`{route.method} {route.path}`" in table
        assert all(f"`{f.name}`" in table for f in route.fields)


def test_openapi_lists_each_seed_route_with_its_own_field_names():
    doc = openapi.document()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    for route in seeds.SEED_ROUTES:
        op = paths[route.path][route.method.lower()]
        ref = op["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
        form = schemas[ref.rsplit("/", 1)[1]]
        assert list(form["properties"]) == [f.name for f in route.fields]
        assert set(form["required"]) == {f.name for f in route.files}
        assert {"200", "202", "400", "422"} <= set(op["responses"]) and "500" not in op["responses"]
    assert {"/api/health", "/api/model-status"} <= set(paths)


# -- the routes on the running stack (real consumers) --------------------------------------


def stack_record(stack, job_id: str):
    """The job's Redis record, read from the stack's Redis directly."""
    store = StatusStore.from_config(config.load(config.RedisConfig, stack.env))
    try:
        return store.get(job_id)
    finally:
        store.redis.close()


def get(stack, path: str) -> requests.Response:
    return requests.get(f"{stack.api_url}{path}", timeout=30)


def expected_model_mode(stack) -> str:
    """What the blend entry of /api/v1/engines implies (a shipped pretrained model, or random networks)."""
    blend = next(e for e in get(stack, "/api/v1/engines").json()["engines"] if e["mode"] == "blend")
    return "random_weights" if blend["random_weights"] else "pretrained"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_pixelblend_generate_answers_json_whose_result_url_works(stack):
    response = requests.post(
        f"{stack.api_url}/api/generate",
        files=files(content_image=(48, 36), style_image_1=(32, 32), style_image_2=(40, 40)),
        data={"style_1_weight": "0.25", "high_quality": "false", "detail_strength": "0.5"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "job_id",
        "output_path",
        "download_path",
        "model_mode",
        "model_loaded",
        "status",
        "job_url",
    }
    assert body["status"] == "succeeded" and body["model_loaded"] is True
    assert body["model_mode"] == expected_model_mode(stack)
    assert body["output_path"] == body["download_path"] == f"/api/v1/jobs/{body['job_id']}/result"
    result = get(stack, f"{body['output_path']}?t=123")  # PixelBlend's UI adds a cache-buster
    assert result.status_code == 200 and result.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(result.content)).size == (48, 36)

    job = get(stack, body["job_url"]).json()
    assert job["mode"] == "blend" and job["params"]["ratio"] == 0.25 and job["params"]["image_size"] == 48
    assert len(job["links"]["styles"]) == 2
    record = stack_record(stack, body["job_id"])
    assert record.status is Status.SUCCEEDED and record.attempt == 1 and record.mode == "blend"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_gatys_service_stylize_answers_the_image(stack):
    response = requests.post(
        f"{stack.api_url}/stylize",
        files=files(content_image=(48, 36), style_image=(32, 32)),
        data={"epochs": "3", "content_weight": "1", "style_weight": "1e6"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (48, 36)
    job_id = re.fullmatch(r"/api/v1/jobs/([\w-]+)/result", response.headers["Content-Location"]).group(1)

    job = get(stack, f"/api/v1/jobs/{job_id}").json()
    assert job["mode"] == "gatys" and job["status"] == "succeeded"
    assert job["params"]["total_iterations"] == 3 and job["progress"]["iteration"] == 3
    assert job["params"]["content_weight"] == pytest.approx(1 / GAIN**2)
    assert job["params"]["style_weight"] == pytest.approx(1e6 / GAIN**4)
    assert stack_record(stack, job_id).result_key


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_photoreal_upload_images_answers_the_image_at_its_size(stack):
    response = requests.post(
        f"{stack.api_url}/upload_images/",
        files=files(content_image=(48, 36), style_image=(40, 40)),
        data={"alpha": "0.5", "size": "32"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (32, 24)
    job_url = response.headers["Content-Location"].removesuffix("/result")
    job = get(stack, job_url).json()
    assert job["mode"] == "blend" and job["params"]["alpha"] == 0.5 and job["params"]["image_size"] == 32


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_pixelblend_health_and_model_status_come_from_readyz_and_engines(stack):
    health = get(stack, "/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["services"] == get(stack, "/readyz").json()
    model = get(stack, "/api/model-status").json()
    assert model["model_loaded"] is True and model["mode"] == expected_model_mode(stack)
    assert {k: health.json()[k] for k in model} == model
    blend = next(e for e in get(stack, "/api/v1/engines").json()["engines"] if e["mode"] == "blend")
    assert model["message"].startswith(f"{blend['consumers']} blend consumer(s) running")


# -- the routes in-process, with no consumer: the wait, bad input, the switch -------------------


@pytest.fixture
def make_app(service_env, s3_storage, status_store, producer):  # noqa: F811
    from api.app import create_app
    from api.service import Clients

    def make(**settings: str):
        env = {**service_env, **settings}
        return create_app(env, clients=Clients(s3_storage, status_store, producer)).test_client()

    return make


def upload(**named: tuple[int, int]) -> dict[str, tuple[io.BytesIO, str]]:
    return {name: (io.BytesIO(png(size, i)), f"{name}.png") for i, (name, size) in enumerate(named.items())}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("path", "named", "data"),
    [
        ("/stylize", {"content_image": (48, 36), "style_image": (32, 32)}, {"epochs": "5"}),
        ("/upload_images/", {"content_image": (48, 36), "style_image": (32, 32)}, {"alpha": "0.5"}),
    ],
)
def test_a_job_still_queued_after_the_wait_answers_202_with_its_url(
    make_app, status_store, path, named, data
):  # noqa: F811
    client = make_app(STYLEQUEUE_COMPAT_WAIT_S="0.2")
    started = time.monotonic()
    response = client.post(path, data={**data, **upload(**named)})
    assert time.monotonic() - started < 5
    assert response.status_code == 202, response.json
    job = response.json
    assert response.headers["Location"] == job["links"]["self"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["queue_position"] == 0
    assert client.get(job["links"]["self"]).json["id"] == job["id"]  # a normal job, visible like any other
    assert status_store.get(job["id"]).status is Status.QUEUED


@pytest.mark.integration
def test_pixelblend_generate_still_running_answers_202_with_its_keys(make_app, status_store):  # noqa: F811
    client = make_app(STYLEQUEUE_COMPAT_WAIT_S="0.2")
    response = client.post(
        "/api/generate",
        data=upload(content_image=(48, 36), style_image_1=(32, 32), style_image_2=(32, 32)),
    )
    assert response.status_code == 202
    body = response.json
    assert response.headers["Location"] == body["job_url"] and body["status"] == "queued"
    assert body["model_loaded"] is False and body["model_mode"] == "unavailable"  # no consumer here
    assert status_store.get(body["job_id"]).mode == "blend"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("path", "named", "data", "status", "code", "field"),
    [
        ("/api/generate", {"content_image": (48, 36), "style_image_1": (32, 32)}, {}, 400, "bad_request", "style_image_2"),
        ("/api/generate", {"content_image": (48, 36), "style_image_1": (32, 32), "style_image_2": (32, 32)},
         {"style_1_weight": "1.5"}, 422, "invalid", "style_1_weight"),
        ("/api/generate", {"content_image": (48, 36), "style_image_1": (32, 32), "style_image_2": (32, 32)},
         {"style_intensity": "lots"}, 422, "invalid", "style_intensity"),
        ("/stylize", {"content_image": (48, 36), "style_image": (32, 32)}, {"epochs": "0"}, 422, "invalid", "epochs"),
        ("/stylize", {"content_image": (48, 36), "style_image": (32, 32)},
         {"content_weight": "-1"}, 422, "invalid", "content_weight"),
        ("/stylize", {"style_image": (32, 32)}, {}, 400, "bad_request", "content_image"),
        ("/upload_images/", {"content_image": (48, 36), "style_image": (32, 32)}, {"size": "5000"}, 422, "invalid", "size"),
        ("/upload_images/", {"content_image": (1000, 4), "style_image": (32, 32)}, {}, 422, "invalid", "content_image"),
    ],
)  # fmt: skip
def test_bad_input_gets_the_native_error_naming_the_seed_field(
    make_app, status_store, path, named, data, status, code, field
):  # noqa: F811
    client = make_app()
    response = client.post(path, data={**data, **upload(**named)})
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code and response.json["error"]["field"] == field
    assert status_store.queued_count("blend") == status_store.queued_count("gatys") == 0  # nothing queued


@pytest.mark.integration
def test_a_file_that_is_not_an_image_is_refused_like_the_native_api(make_app):
    client = make_app()
    data = upload(content_image=(48, 36), style_image_2=(32, 32))
    data["style_image_1"] = (io.BytesIO(b"not an image at all"), "style.png")
    response = client.post("/api/generate", data=data)
    assert response.status_code == 415
    assert response.json["error"] == {
        "code": "unsupported_media_type",
        "message": "not a JPEG, PNG or WebP image",
        "field": "style_image_1",
    }


@pytest.mark.integration
def test_a_job_that_fails_while_waited_for_answers_422(make_app, status_store):  # noqa: F811
    """A consumer stand-in fails the job while the route waits: the client hears why."""
    client = make_app(STYLEQUEUE_COMPAT_WAIT_S="20")

    def fail_the_job() -> None:
        keys = wait_for(lambda: status_store.redis.keys("stylequeue:job:*"), 15, message="the job's record")
        job_id = keys[0].decode().rsplit(":", 1)[1]
        job = status_store.claim(job_id)
        status_store.finish(job_id, job.attempt, Status.FAILED, error=JobError("internal", "boom"))

    worker = threading.Thread(target=fail_the_job)
    worker.start()
    response = client.post(
        "/stylize", data={"epochs": "2", **upload(content_image=(48, 36), style_image=(32, 32))}
    )
    worker.join()
    assert response.status_code == 422
    assert response.json["error"]["code"] == "job_failed"
    assert "failed (internal: boom)" in response.json["error"]["message"]


@pytest.mark.integration
def test_switched_off_the_seed_routes_answer_404(make_app):
    client = make_app(STYLEQUEUE_COMPAT_ROUTES="0")
    for method, path in [("post", "/api/generate"), ("get", "/api/health"), ("get", "/api/model-status"),
                         ("post", "/stylize"), ("post", "/upload_images/")]:  # fmt: skip
        response = getattr(client, method)(path)
        assert response.status_code == 404, path
        assert response.json["error"]["code"] == "not_found"
    assert client.get("/healthz").status_code == 200  # the native API is unchanged


@pytest.mark.integration
def test_health_without_consumers_is_ready_but_has_no_model(make_app):
    client = make_app()
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok" and body["services"] == {"redis": "ok", "kafka": "ok", "s3": "ok"}
    assert body["model_loaded"] is False and body["mode"] == "unavailable"
    assert client.get("/api/model-status").json == {
        k: body[k] for k in ("model_loaded", "mode", "model_path", "message")
    }


def test_submission_keeps_the_seed_names_for_errors():
    parts = [FilePart("style_image", "s.png", io.BytesIO(png((32, 32)))),
             FilePart("content_image", "c.png", io.BytesIO(png((40, 30))))]  # fmt: skip
    native = seeds.to_submission(seeds.GATYS_SERVICE, Submission({"epochs": "4"}, parts))
    assert native.fields == {"mode": "gatys", "total_iterations": "4", "image_size": "40"}
    assert [(p.field, p.name) for p in native.files] == [
        ("content", "content_image"),
        ("style", "style_image"),
    ]

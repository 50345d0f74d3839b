"""GET /api/v1/jobs/{id}/inputs/{name}: a job's stored, normalised inputs, and the job's input links
(against real Redis, Kafka and S3)."""

from __future__ import annotations

import io

import imagefiles as files
import pytest
from clients import configs, producer, s3_storage, status_store, topics  # noqa: F401
from PIL import Image

from api.app import create_app
from api.service import Clients

pytestmark = pytest.mark.integration

STYLE_COLORS = [(0, 0, 250), (0, 250, 0)]


@pytest.fixture
def client(service_env, s3_storage, status_store, producer):
    return create_app(service_env, clients=Clients(s3_storage, status_store, producer)).test_client()


def submit(client, mode="blend", styles=1, init=None, **fields) -> dict:
    data = {"mode": mode, "content": (io.BytesIO(files.jpeg((20, 12), (200, 40, 10))), "c.jpg"), **fields}
    data["style"] = [(io.BytesIO(files.png((8, 8), STYLE_COLORS[i])), f"s{i}.png") for i in range(styles)]
    if init is not None:
        data["init_image"] = (io.BytesIO(init), "init.png")
    response = client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    return response.json


def image(response) -> Image.Image:
    """The served input; its media type is its format's (an RGB JPEG upload is kept as a JPEG)."""
    assert response.status_code == 200, response.json
    opened = Image.open(io.BytesIO(response.data))
    assert response.mimetype == f"image/{opened.format.lower()}"
    return opened


def test_job_links_name_each_input(client):
    job = submit(client, styles=2)
    base = f"/api/v1/jobs/{job['id']}/inputs"
    assert job["links"]["content"] == f"{base}/content"
    assert job["links"]["styles"] == [f"{base}/style-0", f"{base}/style-1"]
    assert client.get(job["links"]["self"]).json["links"] == job["links"]


def test_inputs_are_served_as_the_normalised_images_that_were_stored(client, s3_storage, status_store):
    job = submit(client, styles=2)
    content = client.get(job["links"]["content"])
    stored = status_store.get(job["id"]).inputs.content
    assert content.data == s3_storage.get(stored)  # an RGB JPEG, kept as a JPEG
    assert (image(content).format, image(content).mode, image(content).size) == ("JPEG", "RGB", (20, 12))
    assert content.headers["Content-Disposition"].endswith('-content.jpg"')
    for index, url in enumerate(job["links"]["styles"]):
        style = image(client.get(url))
        assert style.size == (8, 8) and style.getpixel((4, 4)) == STYLE_COLORS[index]


def test_init_image_is_served_when_the_job_has_one(client):
    job = submit(
        client, "gatys", init=files.png((20, 12), (9, 99, 199)), init_method="image", total_iterations="5"
    )
    init = image(client.get(f"{job['links']['self']}/inputs/init_image"))
    assert init.getpixel((0, 0)) == (9, 99, 199)


@pytest.mark.parametrize("name", ["init_image", "style-1", "style-x", "result", "params"])
def test_an_input_the_job_does_not_have_is_404_naming_the_field(client, name):
    job = submit(client, styles=1)
    response = client.get(f"{job['links']['self']}/inputs/{name}")
    assert response.status_code == 404
    error = response.json["error"]
    assert (error["code"], error["field"]) == ("not_found", "name")
    assert repr(name) in error["message"] and "content, style-0" in error["message"]


def test_unknown_job_is_404_naming_the_job(client):
    response = client.get("/api/v1/jobs/does-not-exist/inputs/content")
    assert response.status_code == 404 and response.json["error"]["field"] == "job_id"


def test_an_input_lost_from_storage_is_404_not_500(client, s3_storage, status_store):
    job = submit(client, styles=1)
    s3_storage.client.delete_object(
        Bucket=s3_storage.bucket, Key=status_store.get(job["id"]).inputs.styles[0]
    )
    response = client.get(job["links"]["styles"][0])
    assert response.status_code == 404
    assert (
        response.json["error"]["field"] == "name" and "no longer stored" in response.json["error"]["message"]
    )

"""Bad submissions: each is refused with a 4xx JSON error naming the problem, and nothing is stored or queued."""

from __future__ import annotations

import io

import imagefiles as files
import pytest
from clients import configs, producer, published, s3_storage, status_store, topics  # noqa: F401

from api.app import create_app
from api.service import Clients

pytestmark = pytest.mark.integration

MAX_FILE = 100_000
LIMITS = {"STYLEQUEUE_MAX_FILE_BYTES": str(MAX_FILE), "STYLEQUEUE_MAX_REQUEST_BYTES": "250000"}


@pytest.fixture
def client(service_env, s3_storage, status_store, producer):
    return create_app(
        {**service_env, **LIMITS}, clients=Clients(s3_storage, status_store, producer)
    ).test_client()


def part(data: bytes, name: str = "f.png"):
    return (io.BytesIO(data), name)


def form(mode="blend", content=None, styles=None, **fields):
    """A valid blend submission, with the given parts replaced (None: leave the default)."""
    data = {"mode": mode, **fields}
    data["content"] = part(files.jpeg()) if content is None else content
    data["style"] = [part(files.png())] if styles is None else styles
    return {k: v for k, v in data.items() if v is not OMIT}


OMIT = object()


def sliver(width: int, height: int) -> bytes:
    """An 8-bit RGB PNG of zeros: a few KB however long its side."""
    return files.raw_png(width, height, 8, 2)


CASES = {
    "gif-content": (
        form(content=part(files.encode(files.rgb(), "GIF"))),
        415,
        "unsupported_media_type",
        "content",
    ),
    "text-style": (form(styles=[part(b"just some text", "s.txt")]), 415, "unsupported_media_type", "style"),
    "truncated-jpeg": (form(content=part(files.noise_jpeg()[:2000])), 400, "bad_request", "content"),
    "empty-file": (form(content=part(b"", "c.png")), 400, "bad_request", "content"),
    "decompression-bomb": (form(styles=[part(files.bomb_png(8000))]), 413, "too_large", "style"),
    "oversize-file": (form(content=part(b"\xff" * (MAX_FILE + 1))), 413, "too_large", "content"),
    "oversize-request": (
        form(styles=[part(files.noise_png(180, seed=i)) for i in range(3)], mode="gatys"),
        413,
        "too_large",
        None,
    ),
    "unknown-mode": (form(mode="pastel"), 422, "invalid", "mode"),
    "missing-mode": (form(mode=OMIT), 400, "bad_request", "mode"),
    "missing-content": (form(content=OMIT), 400, "bad_request", "content"),
    "content-as-text-field": (form(content="not a file"), 400, "bad_request", "content"),
    "unknown-file-field": (
        form(styles=OMIT, styles_typo=[part(files.png())]),
        400,
        "bad_request",
        "styles_typo",
    ),
    "no-style": (form(styles=[]), 422, "invalid", "style"),
    "too-many-styles": (form(styles=[part(files.png())] * 3), 422, "invalid", "style"),
    "ratio-out-of-range": (form(ratio="1.5"), 422, "invalid", "ratio"),
    "size-not-a-number": (form(image_size="big"), 422, "invalid", "image_size"),
    "size-too-small": (form(image_size="8"), 422, "invalid", "image_size"),
    "unknown-parameter": (form(colour="red"), 422, "invalid", "colour"),
    "gatys-parameter-on-blend": (form(total_iterations="5"), 422, "invalid", "total_iterations"),
    "bad-layer-name": (form(mode="gatys", style_layers="relu1_1,relu9_9"), 422, "invalid", "style_layers"),
    "bad-choice": (form(mode="gatys", optimizer="sgd"), 422, "invalid", "optimizer"),
    "blend-weights-count": (
        form(mode="gatys", style_blend_weights="1,2"),
        422,
        "invalid",
        "style_blend_weights",
    ),
    "init-method-without-image": (form(mode="gatys", init_method="image"), 422, "invalid", "init_image"),
    # 1,000,000x1: a 3 KB file within every byte and pixel limit, but thinner than 128:1.
    "sliver-content": (form(content=part(sliver(1_000_000, 1))), 422, "invalid", "content"),
    "sliver-style": (form(styles=[part(files.png()), part(sliver(1_000_000, 1))]), 422, "invalid", "style"),
    "sliver-init-image": (
        form(mode="gatys", init_method="image", init_image=part(sliver(1, 1_000_000))),
        422,
        "invalid",
        "init_image",
    ),
    "init-image-unused": (form(mode="gatys", init_image=part(files.png())), 422, "invalid", "init_image"),
    # Accepted before, then certain to fail in the engine: the engines' size rule runs on the upload.
    "blend-content-too-thin-for-size": (
        form(content=part(files.png((2000, 40))), image_size="64"),
        422,
        "invalid",
        "image_size",
    ),
    "gatys-content-too-thin-for-size": (
        form(mode="gatys", content=part(files.png((400, 20))), image_size="200"),
        422,
        "invalid",
        "image_size",
    ),
    # Numbers as a client means them, within bounds the engines can compute with.
    "seed-over-int32": (form(mode="gatys", seed="2147483648"), 422, "invalid", "seed"),
    "underscored-number": (form(image_size="1_0_0"), 422, "invalid", "image_size"),
    "full-width-digits": (form(image_size="\uff11\uff10\uff10"), 422, "invalid", "image_size"),
    "huge-content-weight": (form(mode="gatys", content_weight="1e308"), 422, "invalid", "content_weight"),
    "huge-style-weight": (form(mode="gatys", style_weight="1e13"), 422, "invalid", "style_weight"),
    "1000-layer-names": (
        form(mode="gatys", style_layers=",".join(["relu1_1"] * 1000)),
        422,
        "invalid",
        "style_layers",
    ),
    # 10,000 names are 80 KB: over the text-field limit before the list's own bound is reached.
    "10000-layer-names": (
        form(mode="gatys", style_layers=",".join(["relu1_1"] * 10_000)),
        413,
        "too_large",
        None,
    ),
    # Form limits, each answering with its own name and value (not the 60 MB request limit).
    "too-many-parts": (form(**{f"x{i}": "1" for i in range(300)}), 413, "too_large", None),
    "field-over-limit": (form(colour="r" * 70_000), 413, "too_large", None),
}
MESSAGES = {
    "seed-over-int32": "must be at most 2147483647, got 2147483648",
    "blend-content-too-thin-for-size": "use at least 450",
    "gatys-content-too-thin-for-size": "use at least 320",
    "huge-content-weight": "must be at most 1000000000000",
    "1000-layer-names": "has 1000 items; the limit is 16",
    "10000-layer-names": "(STYLEQUEUE_MAX_FIELD_BYTES)",
    "too-many-parts": "the limit is 200 (STYLEQUEUE_MAX_FORM_PARTS)",
    "field-over-limit": "the limit of 65536 bytes (STYLEQUEUE_MAX_FIELD_BYTES)",
    "oversize-request": "250000 bytes",
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_nothing_is_written(case, client, configs, s3_storage, status_store):
    data, status, code, field = CASES[case]
    # Files are consumed by a request: build the case's streams fresh each time.
    data = {k: ([part(p[0].getvalue(), p[1]) for p in v] if isinstance(v, list) else
                part(v[0].getvalue(), v[1]) if isinstance(v, tuple) else v) for k, v in data.items()}  # fmt: skip
    response = client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    assert MESSAGES.get(case, "") in error["message"]
    assert s3_storage.keys() == []
    assert list(status_store.redis.scan_iter(match=status_store.prefix + "*")) == []
    assert published(configs.kafka) == 0


def test_a_good_submission_after_bad_ones_is_accepted(client, configs):
    """The table's baseline: the same form without its defect goes through (and is published)."""
    response = client.post("/api/v1/jobs", data=form(), content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    assert published(configs.kafka) == 1


def raw_multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart body from (Content-Disposition parameters, data) pairs: parts no client library writes."""
    boundary = "hostile-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data{params}\r\n\r\n".encode() + data + b"\r\n"
        for params, data in parts
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "parts",
    [
        [("", b"no name at all"), ('; name="colour"', b"red")],  # was a TypeError: 500
        [('; filename="c.jpg"', files.jpeg()), ('; name="mode"', b"blend")],
        [('; name=""', b"empty name"), ('; name="mode"', b"blend")],
    ],
    ids=["nameless-field-and-unknown-field", "nameless-file", "empty-name"],
)
def test_a_part_without_a_name_is_400_and_nothing_is_written(
    parts, client, configs, s3_storage, status_store
):
    body, content_type = raw_multipart(parts)
    response = client.post("/api/v1/jobs", data=body, content_type=content_type)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "bad_request" and "no name" in response.json["error"]["message"]
    assert s3_storage.keys() == [] and published(configs.kafka) == 0
    assert list(status_store.redis.scan_iter(match=status_store.prefix + "*")) == []


def test_an_id_longer_than_the_limit_is_404_naming_it(client):
    for path in ("", "/result", "/losses", "/snapshots", "/inputs/content"):
        response = client.get(f"/api/v1/jobs/{'a' * 5000}{path}")
        assert response.status_code == 404, path
        assert response.json["error"]["message"].endswith("job ids are at most 64"), path


def test_presigned_must_be_a_boolean_422_naming_it(client):
    job = client.post("/api/v1/jobs", data=form(), content_type="multipart/form-data").json
    response = client.get(f"{job['links']['result']}?presigned=null")
    assert response.status_code == 422
    assert response.json["error"]["field"] == "presigned"


def test_non_finite_losses_are_served_as_null_strict_json(client, status_store):
    """A diverged run's NaN/inf points: JSON.parse refuses bare NaN, so every body is strict JSON."""
    import json

    job = client.post("/api/v1/jobs", data=form(), content_type="multipart/form-data").json
    key = f"{status_store.prefix}losses:{job['id']}"
    status_store.redis.rpush(
        key, '{"iteration": 1, "content": 1.5, "style": NaN, "tv": Infinity, "total": NaN}'
    )
    response = client.get(job["links"]["losses"])
    text = response.get_data(as_text=True)
    assert "NaN" not in text and "Infinity" not in text
    point = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}"))["losses"][0]
    assert point == {"iteration": 1, "content": 1.5, "style": None, "tv": None, "total": None}

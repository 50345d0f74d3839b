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
    if case == "oversize-request":
        assert "250000 bytes" in error["message"]
    assert s3_storage.keys() == []
    assert list(status_store.redis.scan_iter(match=status_store.prefix + "*")) == []
    assert published(configs.kafka) == 0


def test_a_good_submission_after_bad_ones_is_accepted(client, configs):
    """The table's baseline: the same form without its defect goes through (and is published)."""
    response = client.post("/api/v1/jobs", data=form(), content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    assert published(configs.kafka) == 1

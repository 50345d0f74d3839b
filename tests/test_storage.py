"""stylequeue.storage against a real S3 API (moto's server, or the endpoint in STYLEQUEUE_S3_ENDPOINT)."""

from __future__ import annotations

import io
import urllib.request

import pytest
from clients import configs, s3_storage  # noqa: F401

from stylequeue.errors import NotFound
from stylequeue.storage import CHUNK_BYTES, Storage, make_s3_client

pytestmark = pytest.mark.integration


def test_put_get_round_trip_bytes_and_file_objects(s3_storage):
    s3_storage.put("a/one.bin", b"\x00\x01payload", "application/octet-stream")
    s3_storage.put("a/two.png", io.BytesIO(b"file object"), "image/png")
    assert s3_storage.get("a/one.bin") == b"\x00\x01payload"
    assert s3_storage.get("a/two.png") == b"file object"
    head = s3_storage.client.head_object(Bucket=s3_storage.bucket, Key="a/two.png")
    assert head["ContentType"] == "image/png"


def test_stream_yields_chunks_that_join_to_the_object(s3_storage):
    data = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)  # a bit over two chunks
    s3_storage.put("big.bin", data)
    chunks = list(s3_storage.stream("big.bin"))
    assert len(chunks) >= 3
    assert b"".join(chunks) == data


def test_missing_keys_raise_not_found_and_exists_says_false(s3_storage):
    with pytest.raises(NotFound):
        s3_storage.get("nope")
    with pytest.raises(NotFound):
        s3_storage.stream("nope")  # raised before the first chunk, not lazily
    assert not s3_storage.exists("nope")
    s3_storage.put("yes", b"1")
    assert s3_storage.exists("yes")


def test_keys_delete_and_delete_prefix(s3_storage):
    for key in ("jobs/x/b", "jobs/x/a", "jobs/y/a"):
        s3_storage.put(key, b"1")
    assert s3_storage.keys("jobs/x/") == ["jobs/x/a", "jobs/x/b"]
    s3_storage.client.delete_object(Bucket=s3_storage.bucket, Key="jobs/x/a")
    s3_storage.client.delete_object(Bucket=s3_storage.bucket, Key="jobs/x/a")  # deleting twice is fine
    assert s3_storage.keys("jobs/") == ["jobs/x/b", "jobs/y/a"]
    assert s3_storage.delete_prefix("jobs/x/") == 1
    assert s3_storage.keys() == ["jobs/y/a"]


def test_ensure_bucket_is_idempotent(configs):
    store = Storage.from_config(configs.s3)
    store.ensure_bucket()
    store.ensure_bucket()
    store.ping()
    assert store.keys() == []


def test_presigned_url_downloads_and_is_signed_for_the_public_endpoint(s3_storage, configs):
    s3_storage.put("p.txt", b"presigned")
    url = s3_storage.presign("p.txt", 60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"presigned"
    public = configs.s3.model_copy(update={"public_endpoint": "http://images.example.test:9000"})
    other = Storage.from_config(public)
    assert other.presign("p.txt", 60).startswith(
        "http://images.example.test:9000/" + public.bucket + "/p.txt?"
    )
    assert make_s3_client(public).meta.endpoint_url == configs.s3.endpoint

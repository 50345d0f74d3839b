"""Object storage: boto3 against any S3-compatible endpoint (AWS, MinIO, moto).

The client is built by :func:`make_s3_client` from :class:`~stylequeue.config.S3Config` and
passed to :class:`Storage`; nothing connects at import time. Addressing is path-style so that
endpoints without wildcard DNS (MinIO, moto, a compose service name) work. Presigned URLs can be
signed by a second client whose endpoint is the *public* one: a browser outside the compose
network must reach the host the signature names.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from stylequeue.config import S3Config, load
from stylequeue.errors import NotFound

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def make_s3_client(cfg: S3Config, *, public: bool = False) -> Any:
    """A boto3 S3 client for ``cfg`` (the public endpoint when ``public`` and one is set)."""
    endpoint = cfg.public_endpoint if public and cfg.public_endpoint else cfg.endpoint
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=cfg.region,
        aws_access_key_id=cfg.access_key,
        aws_secret_access_key=cfg.secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def s3_client_from_env() -> Any:
    return make_s3_client(load(S3Config))


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class Storage:
    """One bucket's objects: put/get/stream/delete/list/presign. A missing key raises NotFound."""

    def __init__(self, client: Any, bucket: str, presign_client: Any | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.presign_client = presign_client or client

    @classmethod
    def from_config(cls, cfg: S3Config) -> Storage:
        presign = make_s3_client(cfg, public=True) if cfg.public_endpoint else None
        return cls(make_s3_client(cfg), cfg.bucket, presign_client=presign)

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (idempotent; called at start-up)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if not _is_missing(exc):
                raise
        region = self.client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        # us-east-1 is the one region that rejects an explicit location constraint.
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        errors = self.client.exceptions
        with contextlib.suppress(errors.BucketAlreadyOwnedByYou, errors.BucketAlreadyExists):
            self.client.create_bucket(**kwargs)
            log.info("created bucket %s", self.bucket)

    def ping(self) -> None:
        """Raise unless the bucket is reachable (readiness check)."""
        self.client.head_bucket(Bucket=self.bucket)

    def put(self, key: str, data: bytes | IO[bytes], content_type: str = "application/octet-stream") -> None:
        """Upload ``data``; a file object is streamed in parts, never read whole into memory.

        Bytes go up in one PutObject: the transfer manager's threads and futures cost more than a
        submission's few small objects take to send.
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data), ContentType=content_type)
            return
        self.client.upload_fileobj(data, self.bucket, key, ExtraArgs={"ContentType": content_type})

    def _object(self, key: str) -> dict[str, Any]:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                raise NotFound(f"no object {key!r}", field="key") from None
            raise

    def get(self, key: str) -> bytes:
        with self._object(key)["Body"] as body:
            return body.read()

    def stream(self, key: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The object's bytes in chunks. NotFound is raised here, before the first chunk."""
        return _chunks(self._object(key)["Body"], chunk_bytes)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise

    def delete_prefix(self, prefix: str) -> int:
        keys = self.keys(prefix)
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def _listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return (obj for page in pages for obj in page.get("Contents", ()))

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(obj["Key"] for obj in self._listing(prefix))

    def job_folders(self, prefix: str = "jobs/") -> dict[str, tuple[float, list[str]]]:
        """Job id → (newest object's modification time, its keys) of every ``jobs/<id>/`` folder,
        from one listing of the bucket."""
        folders: dict[str, list[dict[str, Any]]] = {}
        for obj in self._listing(prefix):
            folders.setdefault(obj["Key"][len(prefix) :].split("/", 1)[0], []).append(obj)
        return {
            job_id: (max(obj["LastModified"].timestamp() for obj in objs), [obj["Key"] for obj in objs])
            for job_id, objs in folders.items()
        }

    def presign(self, key: str, ttl: int) -> str:
        """A GET URL for ``key`` valid ``ttl`` seconds, signed for the public endpoint."""
        return self.presign_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(ttl)
        )


def _chunks(body: Any, chunk_bytes: int) -> Iterator[bytes]:
    with body:
        yield from body.iter_chunks(chunk_bytes)

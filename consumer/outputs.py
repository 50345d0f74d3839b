"""A job's outputs: snapshots as they are produced (Redis, with a TTL) and everything in S3 at the end.

Snapshots go to Redis at once, so clients watch the run, and to a spool directory on local disk
(not memory: a long run with many large snapshots would not fit). When the job ends, the spool,
the result and the parameters are written to S3 under :func:`stylequeue.job.object_keys`, so the
ZIP still works after the Redis TTL. Snapshots and the result go under the attempt's own prefix
(``jobs/{id}/attempts/{n}/``): a stale attempt's late upload cannot replace a newer one's.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from stylequeue.job import Job, object_keys

JPEG_QUALITY = 90


def jpeg_bytes(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def open_image(data: bytes, field: str) -> Image.Image:
    """Decode an input image fully (a corrupt file fails here, not mid-run) as RGB."""
    from stylequeue.errors import ValidationError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValidationError(f"cannot decode the image: {exc}", field=field) from exc
    return image.convert("RGB")


class SnapshotSpool:
    """Snapshots of one attempt on local disk, uploaded to S3 when the job ends."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="stylequeue-snapshots-")
        self.iterations: list[int] = []

    def add(self, iteration: int, jpeg: bytes) -> None:
        (Path(self._dir.name) / f"{iteration:08d}.jpg").write_bytes(jpeg)
        if iteration not in self.iterations:
            self.iterations.append(iteration)

    def upload(self, storage: Any, job: Job) -> list[int]:
        """Put every snapshot in S3 under ``job``'s attempt; returns their iterations in order."""
        key = object_keys(job.id, job.attempt)["snapshot"]
        for iteration in sorted(self.iterations):
            data = (Path(self._dir.name) / f"{iteration:08d}.jpg").read_bytes()
            storage.put(key.format(iteration=iteration), data, "image/jpeg")
        return sorted(self.iterations)

    def close(self) -> None:
        self._dir.cleanup()


def put_result(storage: Any, job: Job, image: Image.Image) -> str:
    """The result PNG under ``job``'s attempt; returns its key (recorded by ``finish``)."""
    key = object_keys(job.id, job.attempt)["result"]
    storage.put(key, png_bytes(image), "image/png")
    return key


def put_params(storage: Any, job: Job) -> None:
    """``params.json`` for the ZIP, unless the API stored it at submission."""
    key = object_keys(job.id)["params"]
    if not storage.exists(key):
        body = {"mode": job.mode, "params": job.params}
        storage.put(key, json.dumps(body, indent=2, sort_keys=True).encode(), "application/json")

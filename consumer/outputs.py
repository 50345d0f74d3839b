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
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from stylequeue.job import Job, object_keys

JPEG_QUALITY = 90
# S3 requests a job makes side by side. Each one is a round trip that mostly waits (a few ms to
# a local endpoint, tens to a remote one), so a tiny job's 4-5 of them cost about one this way.
IO_THREADS = 4
IO_THREAD_NAME = "s3-io"
T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def concurrently(calls: Iterable[Callable[[], T]]) -> list[T]:
    """Run ``calls`` side by side (boto3 clients are thread-safe); their results in order.

    Every call has ended when this returns, also when one failed (its error is then raised):
    nothing keeps writing to S3 behind the caller's back, e.g. while it retries.
    """
    global _pool
    calls = list(calls)
    # From inside the pool (the snapshots of an upload that runs beside the result's) one after
    # another: waiting there for more pool threads could take the last free one.
    if len(calls) <= 1 or threading.current_thread().name.startswith(IO_THREAD_NAME):
        return [call() for call in calls]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix=IO_THREAD_NAME)
    futures = [_pool.submit(call) for call in calls]
    wait(futures)
    return [future.result() for future in futures]  # the first failure, in call order, raises


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

        def put(iteration: int) -> Callable[[], None]:
            path = Path(self._dir.name) / f"{iteration:08d}.jpg"
            return lambda: storage.put(key.format(iteration=iteration), path.read_bytes(), "image/jpeg")

        concurrently(put(i) for i in sorted(self.iterations))
        return sorted(self.iterations)

    def close(self) -> None:
        self._dir.cleanup()


def fetch_all(storage: Any, keys: list[str]) -> list[bytes]:
    """The objects at ``keys``, fetched side by side, in order."""
    return concurrently((lambda key=key: storage.get(key)) for key in keys)


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

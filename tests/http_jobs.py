"""Submit jobs to a running API over HTTP, as a client would, and wait for them to end.

Used by the tests that need "a few jobs ran" before they read metrics (test_metrics, test_monitoring).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

from services import tiny_png

TINY = {
    "gatys": {"image_size": "16", "total_iterations": "3", "snapshot_every": "1"},
    "blend": {"image_size": "16"},
}
TERMINAL = {"succeeded", "failed", "cancelled"}


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, filename, data in files:
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: image/png\r\n\r\n")  # fmt: skip
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def submit(api_url: str, mode: str, seed: int = 0) -> dict:
    """POST a tiny job of ``mode``; the 202 response's job JSON."""
    files = [("content", "content.png", tiny_png(seed)), ("style", "style.png", tiny_png(seed + 1))]
    body, content_type = multipart({"mode": mode, **TINY[mode]}, files)
    request = urllib.request.Request(
        f"{api_url}/api/v1/jobs", data=body, headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202, response.status
        return json.load(response)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wait_terminal(api_url: str, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_json(f"{api_url}/api/v1/jobs/{job_id}")
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout:.0f} s")


def run_jobs(api_url: str, per_mode: int = 2) -> list[dict]:
    """Submit ``per_mode`` tiny jobs of each mode and wait until all have ended."""
    submitted = [submit(api_url, mode, seed=i * 7) for i in range(per_mode) for mode in TINY]
    return [wait_terminal(api_url, job["id"]) for job in submitted]

"""Submit jobs to a running API over HTTP, as a client would, and wait for them to end.

Used by the tests that need "a few jobs ran" before they read metrics (test_metrics, test_monitoring).
"""

from __future__ import annotations

import requests
from services import tiny_png, wait_for

TINY = {
    "gatys": {"image_size": "16", "total_iterations": "3", "snapshot_every": "1"},
    "blend": {"image_size": "16"},
}
TERMINAL = {"succeeded", "failed", "cancelled"}


def submit(api_url: str, mode: str, seed: int = 0) -> dict:
    """POST a tiny job of ``mode``; the 202 response's job JSON."""
    files = {"content": ("content.png", tiny_png(seed)), "style": ("style.png", tiny_png(seed + 1))}
    response = requests.post(
        f"{api_url}/api/v1/jobs", data={"mode": mode, **TINY[mode]}, files=files, timeout=30
    )
    assert response.status_code == 202, response.text
    return response.json()


def wait_terminal(api_url: str, job_id: str, timeout: float = 120) -> dict:
    def ended() -> dict | None:
        response = requests.get(f"{api_url}/api/v1/jobs/{job_id}", timeout=10)
        response.raise_for_status()
        job = response.json()
        return job if job["status"] in TERMINAL else None

    return wait_for(ended, timeout, 0.2, f"job {job_id} to finish")


def run_jobs(api_url: str, per_mode: int = 2) -> list[dict]:
    """Submit ``per_mode`` tiny jobs of each mode and wait until all have ended."""
    submitted = [submit(api_url, mode, seed=i * 7) for i in range(per_mode) for mode in TINY]
    return [wait_terminal(api_url, job["id"]) for job in submitted]

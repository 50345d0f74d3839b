"""The whole flow through the running stack (API under gunicorn + one consumer per engine):
submit over HTTP, watch it run, fetch the result and the ZIP. Tiny images, random weights."""

from __future__ import annotations

import io
import zipfile

import pytest
import requests
from PIL import Image
from services import tiny_png, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def submit(api_url: str, mode: str, n_styles: int, **params) -> dict:
    files = [("content", ("content.png", tiny_png(1), "image/png"))]
    files += [("style", (f"style{i}.png", tiny_png(10 + i), "image/png")) for i in range(n_styles)]
    data = {"mode": mode, **{k: str(v) for k, v in params.items()}}
    response = requests.post(f"{api_url}/api/v1/jobs", files=files, data=data, timeout=30)
    assert response.status_code == 202, response.text
    assert response.headers["Location"].endswith(f"/api/v1/jobs/{response.json()['id']}")
    return response.json()


def get(api_url: str, path: str) -> requests.Response:
    return requests.get(f"{api_url}{path}", timeout=30)


def follow(api_url: str, job: dict, timeout: float = 120) -> tuple[dict, list[dict]]:
    """Poll the job until it ends; its last JSON and every running state seen (with snapshot lists)."""
    running = []

    def ended() -> dict | None:
        body = get(api_url, job["links"]["self"]).json()
        if body["status"] == "running":
            snaps = get(api_url, job["links"]["snapshots"]).json()["snapshots"]
            running.append({**body, "seen_snapshots": [s["iteration"] for s in snaps]})
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(ended, timeout, message=f"job {job['id']} to end"), running


@pytest.mark.parametrize(
    ("mode", "n_styles", "params", "snapshots"),
    [
        ("gatys", 1, {"image_size": 32, "total_iterations": 12, "snapshot_every": 3}, [3, 6, 9, 12]),
        ("blend", 2, {"image_size": 32, "ratio": 0.25}, [1]),
    ],
)
def test_submit_run_and_download(stack, mode, n_styles, params, snapshots):
    job = submit(stack.api_url, mode, n_styles, **params)
    assert job["status"] == "queued"
    done, running = follow(stack.api_url, job)
    assert done["status"] == "succeeded", done["error"]
    if mode == "gatys":  # blend runs in milliseconds: there is nothing to watch
        assert any(state["progress"]["iteration"] > 0 for state in running)
        assert any(state["seen_snapshots"] for state in running), "no snapshot visible during the run"
    assert done["snapshots"] == snapshots

    result = get(stack.api_url, job["links"]["result"])
    assert result.status_code == 200
    assert Image.open(io.BytesIO(result.content)).size == (32, 32)

    archive = zipfile.ZipFile(io.BytesIO(get(stack.api_url, job["links"]["zip"]).content))
    names = archive.namelist()
    assert names == [f"snapshots/{i:06d}.jpg" for i in snapshots] + ["result.png", "params.json"]
    for name in names[:-2]:
        assert Image.open(io.BytesIO(archive.read(name))).format == "JPEG"


def test_cancel_a_running_job_over_http(stack):
    job = submit(stack.api_url, "gatys", 1, image_size=32, total_iterations=2000, snapshot_every=500)
    wait_for(lambda: get(stack.api_url, job["links"]["self"]).json()["progress"]["iteration"] >= 1, 120,
             message="the job to run")  # fmt: skip
    response = requests.delete(f"{stack.api_url}{job['links']['self']}", timeout=30)
    assert response.status_code in (200, 202), response.text
    done, _ = follow(stack.api_url, job, timeout=30)
    assert done["status"] == "cancelled"


def test_engines_report_their_consumers(stack):
    engines = {e["mode"]: e for e in get(stack.api_url, "/api/v1/engines").json()["engines"]}
    for mode in ("gatys", "blend"):
        assert engines[mode]["available"] is True
        assert engines[mode]["consumers"] >= 1
    # As on a fresh machine: Gatys on a random VGG (no download here), blend on Magenta's real network.
    assert engines["gatys"]["random_weights"] is True and engines["gatys"]["models"] == [
        "VGG19 (RANDOM weights)"
    ]
    assert engines["blend"]["random_weights"] is False
    assert engines["blend"]["models"] == ["Magenta arbitrary stylization (Ghiasi et al. 2017)"]

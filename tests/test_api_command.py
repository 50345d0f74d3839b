"""``stylequeue api`` runs the app under gunicorn with several workers against the real services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from services import wait_for

from launcher.localstack import free_port, stop_process

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def answers(url: str, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "gunicorn exited"
    try:
        return get(url)[0] == 200
    except OSError:
        return False


def test_stylequeue_api_serves_with_gunicorn(service_env, tmp_path):
    port = free_port()
    env = {**os.environ, **service_env, "STYLEQUEUE_API_THREADS": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # The init step of a deployment: the API itself never creates the bucket or the topics.
    made = subprocess.run([sys.executable, "-m", "launcher.cli", "provision"], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert made.returncode == 0 and "provisioned bucket" in made.stdout, made.stderr
    again = subprocess.run([sys.executable, "-m", "launcher.cli", "provision"], env=env, timeout=120)
    assert again.returncode == 0  # already done: tolerated
    argv = [sys.executable, "-m", "launcher.cli", "api", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    log = open(tmp_path / "api.log", "wb")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{base}/healthz", process), 60, 0.2, f"{base}/healthz to answer")
        status, body = get(f"{base}/readyz")
        assert (status, json.loads(body)) == (200, {"redis": "ok", "kafka": "ok", "s3": "ok"})
        status, body = get(f"{base}/api/v1/engines")
        assert status == 200 and {e["mode"] for e in json.loads(body)["engines"]} == {"gatys", "blend"}
        assert get(f"{base}/api/v1/jobs/nope")[0] == 404
        for _ in range(4):  # spread over both workers; the counts are summed across them
            get(f"{base}/healthz")
        metrics = get(f"{base}/metrics")[1].decode()
        assert 'stylequeue_api_request_seconds_count{method="GET",route="/healthz",status="200"}' in metrics
    finally:
        stop_process(process)
        log.close()
    assert "Booting worker" in (tmp_path / "api.log").read_text()

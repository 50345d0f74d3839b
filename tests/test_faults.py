"""Fault tests: real processes killed under load; every accepted job must end, exactly once.

The fault-injection harness (``bench/chaos.py``, its short version in ``tests/test_chaos.py``)
covers consumer kills and Redis and broker restarts under a job mix; these are the targeted cases.
Each test starts services of its own (a broker, Redis and S3 on free ports) so that killing them
cannot disturb the rest of the suite, and the application on top (API, one blend consumer on
Magenta's real network, the reconciler), then breaks one piece while jobs are in flight.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import requests
from http_jobs import wait_terminal
from services import tiny_png, wait_for

from launcher import localstack

pytestmark = pytest.mark.integration


@pytest.fixture
def own_stack(tmp_path, request) -> Iterator[tuple[localstack.Stack, localstack.Services]]:
    modes = getattr(request, "param", ("blend",))
    services = localstack.start_services(state_dir=tmp_path / "state")
    env = services.env()
    env.update(STYLEQUEUE_RANDOM_WEIGHTS="0", STYLEQUEUE_TOPIC_PARTITIONS="2", STYLEQUEUE_RECONCILE_INTERVAL_S="1",
               STYLEQUEUE_RECONCILE_GRACE_S="3")  # fmt: skip
    options = localstack.StackOptions(
        api_workers=1,
        modes=modes,
        serve_ui=False,
        logdir=tmp_path,
        mode_env={"gatys": {"STYLEQUEUE_RANDOM_WEIGHTS": "1"}},
    )
    stack = localstack.Stack(env, options)
    try:
        stack.start()
        yield stack, services
    finally:
        stack.stop()
        services.stop()


JOBS = {
    "blend": {"image_size": "48"},
    "gatys": {"image_size": "32", "total_iterations": "150", "snapshot_every": "50"},
}


def submit(api_url: str, seed: int, timeout_s: float = 20, mode: str = "blend") -> str:
    """Submit a job, retrying a 503 (a backing service restarting) for a while; its id."""

    def accepted() -> str | None:
        files = {"content": ("c.png", tiny_png(seed, 48)), "style": ("s.png", tiny_png(seed + 1, 48))}
        response = requests.post(f"{api_url}/api/v1/jobs", data={"mode": mode, **JOBS[mode]},
                                 files=files, timeout=30)  # fmt: skip
        assert response.status_code in (202, 503), response.text
        return response.json()["id"] if response.status_code == 202 else None

    return wait_for(accepted, timeout_s, 0.5, "the API to stop answering 503")


def results_in_s3(services: localstack.Services, stack: localstack.Stack, job_id: str) -> list[str]:
    from stylequeue import config, storage

    objects = storage.Storage.from_config(config.load(config.S3Config, stack.env))
    return [k for k in objects.keys(f"jobs/{job_id}/") if k.endswith("result.png")]


@pytest.mark.parametrize("own_stack", [("gatys",)], indirect=True)
def test_a_redis_restart_while_gatys_jobs_run_strands_none(own_stack):
    """The case that stranded jobs before: running jobs whose writes fail while Redis is away."""
    stack, services = own_stack
    accepted = [submit(stack.api_url, seed, mode="gatys") for seed in range(3)]
    wait_for(lambda: requests.get(f"{stack.api_url}/api/v1/jobs/{accepted[0]}", timeout=5).json()["status"]
             == "running", timeout=60, message="the first job runs")  # fmt: skip
    time.sleep(1.2)
    os.kill(services.redis.process.pid, signal.SIGKILL)
    services.redis.process.wait(5)
    time.sleep(4)
    services.redis.restart()
    ended = {job_id: wait_terminal(stack.api_url, job_id, timeout=180)["status"] for job_id in accepted}
    assert set(ended.values()) == {"succeeded"}, ended
    assert all(len(results_in_s3(services, stack, j)) == 1 for j in accepted)
    assert all(c.alive() for c in stack.children), [c.name for c in stack.children if not c.alive()]

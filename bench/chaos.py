"""Fault injection: break one piece of a running stack at a time and count what became of every job.

    .venv/bin/python bench/chaos.py            # every scenario (a few minutes)
    .venv/bin/python bench/chaos.py --short    # consumer kill, Redis restart, broker restart (CI)

Each scenario starts its own services on free loopback ports (Tansu, Redis with an append-only
file unless the scenario says otherwise, moto S3), the API (2 gunicorn workers), one consumer per
mode (blend on Magenta's real network, Gatys on a random VGG so a job takes seconds) and the
reconciler; submits a mix of tiny jobs over a few seconds; injects its fault while they run; then
waits for every accepted job to end. One table row per scenario:

* accepted: submissions answered 202 (a 503 while a service restarts is a refusal, not a loss);
* succeeded / failed / cancelled: terminal states (a job whose inputs died with the in-memory S3
  may fail, saying so);
* lost: accepted, and then its record was gone; stuck: not terminal by the deadline;
* ran twice: more than one attempt wrote a result;
* recovery s: from the fault until every accepted job had ended.
Exit status 1 if any row has lost, stuck or ran-twice jobs.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # imagefiles: the tests' input images

import requests  # noqa: E402
from imagefiles import tiny_png  # noqa: E402

from launcher import localstack  # noqa: E402
from stylequeue import config, storage  # noqa: E402

TERMINAL = {"succeeded", "failed", "cancelled"}
PARAMS = {
    "blend": {"image_size": "48"},
    "gatys": {"image_size": "24", "total_iterations": "60", "snapshot_every": "20"},
}


@dataclass
class Run:
    """One scenario's running stack and what the load generator saw."""

    services: localstack.Services
    stack: localstack.Stack
    accepted: dict[str, str] = field(default_factory=dict)  # job id → mode
    refused: int = 0
    cancel_asked: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.stack.api_url

    def submit(self, seed: int, mode: str) -> None:
        files = {
            "content": ("c.png", tiny_png(seed, 40)),
            "style": ("s.png", tiny_png(seed + 1, 40)),
        }
        try:
            response = requests.post(f"{self.url}/api/v1/jobs", data={"mode": mode, **PARAMS[mode]},
                                     files=files, timeout=30)  # fmt: skip
        except requests.RequestException:
            response = None
        with self.lock:
            if response is not None and response.status_code == 202:
                self.accepted[response.json()["id"]] = mode
            else:
                self.refused += 1

    def load(self, count: int, spread_s: float, modes: tuple[str, ...]) -> threading.Thread:
        """Submit ``count`` jobs from two threads over ``spread_s`` seconds, in the background."""

        def worker(offset: int) -> None:
            for i in range(offset, count, 2):
                self.submit(i * 7, modes[i % len(modes)])
                time.sleep(spread_s / count * 2)

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in (0, 1)]
        for thread in threads:
            thread.start()
        joiner = threading.Thread(target=lambda: [t.join() for t in threads], daemon=True)
        joiner.start()
        return joiner

    def child(self, prefix: str) -> localstack.Child:
        return next(c for c in self.stack.children if c.name.startswith(prefix))


# --- faults ---------------------------------------------------------------------------------------


def kill_consumers(run: Run) -> None:
    """SIGKILL one consumer per mode mid-job; start it again 5 s later (a crashed container)."""
    victims = [c for c in run.stack.children if c.name.startswith("consumer-")]
    for victim in victims:
        os.kill(victim.process.pid, signal.SIGKILL)
    time.sleep(5)
    for victim in victims:
        victim.restart()


def restart_redis(run: Run) -> None:
    os.kill(run.services.redis.process.pid, signal.SIGKILL)
    time.sleep(5)
    run.services.redis.restart()


def restart_broker(run: Run) -> None:
    """SIGKILL the in-memory broker: every message and topic dies with it; same port 5 s later."""
    os.kill(run.services.kafka.process.pid, signal.SIGKILL)
    time.sleep(5)
    run.services.kafka.restart()


def kill_api(run: Run) -> None:
    """SIGKILL the gunicorn workers mid-submission (the master starts new ones)."""
    import psutil

    for worker in psutil.Process(run.child("api").process.pid).children():
        worker.kill()


def cancel_under_load(run: Run) -> None:
    """Cancel every third accepted job (queued or running) while the load goes on."""
    for _ in range(3):
        with run.lock:
            chosen = [j for j in list(run.accepted)[::3] if j not in run.cancel_asked]
        for job_id in chosen:
            requests.delete(f"{run.url}/api/v1/jobs/{job_id}", timeout=10)
            run.cancel_asked.add(job_id)
        time.sleep(1.5)


def supervised_kill(run: Run) -> None:
    """`stylequeue dev`'s supervisor: a consumer and the API SIGKILLed, brought back by it alone."""
    from launcher.supervisor import RestartPolicy, Supervisor

    supervisor = Supervisor(RestartPolicy(first_s=1), say=lambda _: None)
    for child in run.stack.children:
        supervisor.watch(child)
    for name in ("consumer-blend", "api"):
        os.kill(run.child(name).process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and supervisor.restarts < 2:
        supervisor.check()
        time.sleep(0.2)


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Callable[[Run], None]
    persistent_redis: bool = True
    modes: tuple[str, ...] = ("blend", "gatys")
    jobs: int = 24


SCENARIOS = (
    Scenario("consumer SIGKILL, restart 5 s later", kill_consumers),
    Scenario("Redis SIGKILL, restart 5 s later (append-only file)", restart_redis),
    Scenario("Redis SIGKILL, restart 5 s later (no persistence)", restart_redis, persistent_redis=False),
    Scenario("broker SIGKILL, restart 5 s later (in-memory)", restart_broker),
    Scenario("API workers SIGKILL during submissions", kill_api),
    Scenario("cancel every third job under load", cancel_under_load),
    Scenario("`stylequeue dev`: kill -9 a consumer and the API", supervised_kill),
)
SHORT = (0, 1, 3)


# --- running and counting ---------------------------------------------------------------------------


def start(scenario: Scenario, workdir: Path) -> Run:
    state = workdir / "state" if scenario.persistent_redis else None
    services = localstack.start_services(state_dir=state)
    env = services.env()
    env.update(STYLEQUEUE_RANDOM_WEIGHTS="0", STYLEQUEUE_TOPIC_PARTITIONS="4", STYLEQUEUE_RECONCILE_INTERVAL_S="1",
               STYLEQUEUE_RECONCILE_GRACE_S="5", STYLEQUEUE_RETRY_BACKOFF_S="1")  # fmt: skip
    options = localstack.StackOptions(api_workers=2, modes=scenario.modes, serve_ui=False, logdir=workdir,
                                      mode_env={"gatys": {"STYLEQUEUE_RANDOM_WEIGHTS": "1"}})  # fmt: skip
    stack = localstack.Stack(env, options)
    try:
        stack.start()
    except BaseException:
        services.stop()
        raise
    return Run(services, stack)


def outcome(run: Run, timeout_s: float) -> dict[str, str]:
    """job id → final status, "lost" (still 404 at the deadline: its record never came back) or
    "stuck" (not terminal by the deadline)."""
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    pending = set(run.accepted)
    missing: set[str] = set()
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            try:
                response = requests.get(f"{run.url}/api/v1/jobs/{job_id}", timeout=5)
            except requests.RequestException:
                continue
            (missing.add if response.status_code == 404 else missing.discard)(job_id)
            if response.ok and response.json()["status"] in TERMINAL:
                states[job_id] = response.json()["status"]
                pending.discard(job_id)
        time.sleep(0.5)
    states.update({job_id: "lost" if job_id in missing else "stuck" for job_id in pending})
    return states


def ran_twice(run: Run) -> int:
    objects = storage.Storage.from_config(config.load(config.S3Config, run.stack.env))
    try:
        keys = objects.keys("jobs/")
    except Exception:  # the bucket died with S3: nothing to count
        return 0
    results: dict[str, int] = {}
    for key in keys:
        if key.endswith("/result.png"):
            job_id = key.split("/")[1]
            results[job_id] = results.get(job_id, 0) + 1
    return sum(1 for n in results.values() if n > 1)


def run_scenario(scenario: Scenario, timeout_s: float, logs: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="stylequeue-chaos-") as tmp:
        workdir = Path(tmp) if logs is None else logs / scenario.name.split()[0].lower()
        workdir.mkdir(parents=True, exist_ok=True)
        run = start(scenario, workdir)
        try:
            load = run.load(scenario.jobs, spread_s=6.0, modes=scenario.modes)
            time.sleep(2.5)  # some jobs running, some queued, more on the way
            fault_at = time.monotonic()
            scenario.fault(run)
            load.join()
            states = outcome(run, timeout_s)
            recovery = time.monotonic() - fault_at
            twice = ran_twice(run)
        finally:
            run.stack.stop()
            run.services.stop()
    counts = {s: sum(1 for v in states.values() if v == s) for s in (*TERMINAL, "lost", "stuck")}
    return {"scenario": scenario.name, "accepted": len(run.accepted), "refused": run.refused, **counts,
            "ran_twice": twice, "recovery_s": recovery if not counts["stuck"] else float("nan")}  # fmt: skip


def print_table(rows: list[dict]) -> None:
    cols = (
        "accepted",
        "refused",
        "succeeded",
        "failed",
        "cancelled",
        "lost",
        "stuck",
        "ran_twice",
        "recovery_s",
    )
    print("| scenario | " + " | ".join(c.replace("_", " ") for c in cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for row in rows:
        cells = [f"{row[c]:.1f}" if c == "recovery_s" else str(row[c]) for c in cols]
        print(f"| {row['scenario']} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="consumer kill, Redis restart, broker restart")
    parser.add_argument("--only", type=int, action="append", help="scenario numbers (0-based) to run")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds for every job to end after a fault"
    )
    parser.add_argument("--logs", type=Path, help="keep each scenario's process logs under this folder")
    args = parser.parse_args(argv)
    random.seed(0)
    chosen = args.only or (SHORT if args.short else range(len(SCENARIOS)))
    rows = []
    for index in chosen:
        print(f"chaos: {SCENARIOS[index].name} …", flush=True)
        rows.append(run_scenario(SCENARIOS[index], args.timeout, args.logs))
    print_table(rows)
    bad = [r for r in rows if r["lost"] or r["stuck"] or r["ran_twice"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

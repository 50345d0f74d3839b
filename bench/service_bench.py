"""How much a tiny job spends in the queue machinery rather than in its engine, on the local stack.

    .venv/bin/python bench/service_bench.py                      # 40 tiny blend jobs, each way
    .venv/bin/python bench/service_bench.py --jobs 100 --mode gatys

Starts the embedded services (Kafka-protocol broker, Redis, S3: :mod:`launcher.localstack`),
the API under gunicorn and one consumer of ``--mode`` (random weights), then submits tiny jobs
over HTTP as a client would: ``--jobs`` one at a time (each waits for the previous to end), then
``--jobs`` at once (``--clients`` threads posting). For every job, from the client's clock and
the job record's timestamps (all on this machine)::

    end-to-end  = finished_at − the moment the client started its POST
    overhead    = end-to-end − engine time (the record's engine.elapsed_s)
    submit      = the POST's round trip (validation, S3 uploads, Redis record, Kafka publish)
    queue wait  = started_at (claimed by a consumer) − submitted_at (the API made the record)
    after claim = finished_at − started_at − engine time (inputs from S3, progress, outputs, finish)

and prints p50/p99 of each, plus submits/s for the concurrent round. Record timestamps have
millisecond resolution.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # imagefiles: the tests' input images

import requests  # noqa: E402
from imagefiles import tiny_png  # noqa: E402

from launcher import localstack  # noqa: E402
from stylequeue import config, status  # noqa: E402
from stylequeue.job import epoch_s  # noqa: E402

TERMINAL = {"succeeded", "failed", "cancelled"}
TINY = {"blend": {"image_size": "32"}, "gatys": {"image_size": "32", "total_iterations": "2"}}
POLL_S = 0.002  # how often the client looks at the record (Redis, not the API: no load on it)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=40, help="jobs per round (default: %(default)s)")
    p.add_argument("--mode", default="blend", choices=sorted(TINY))
    p.add_argument("--clients", type=int, default=8, help="posting threads in the concurrent round")
    p.add_argument("--warmup", type=int, default=3, help="untimed jobs first (default: %(default)s)")
    p.add_argument("--logdir", type=Path, help="keep the API's and consumer's logs here")
    return p.parse_args(argv)


@dataclasses.dataclass
class Sample:
    """One job's times, in seconds."""

    end_to_end: float
    engine: float
    submit: float
    queue_wait: float
    after_claim: float
    status: str
    batch: int = 1  # jobs in the engine pass that ran it (blend batches)

    @property
    def overhead(self) -> float:
        return self.end_to_end - self.engine


class Client:
    """Posts jobs to the API and reads their records straight from Redis."""

    def __init__(self, api_url: str, env: dict[str, str], mode: str) -> None:
        self.api_url, self.mode = api_url, mode
        self.store = status.StatusStore.from_config(config.load(config.RedisConfig, env))
        self.http = requests.Session()
        self.images = [tiny_png(seed) for seed in range(8)]

    def post(self, seed: int) -> tuple[str, float, float]:
        """Submit one job; (job id, wall time the POST started, its round trip)."""
        files = {
            "content": ("content.png", self.images[seed % 8]),
            "style": ("style.png", self.images[(seed + 3) % 8]),
        }
        started, t0 = time.time(), time.perf_counter()
        response = requests.post(
            f"{self.api_url}/api/v1/jobs",
            data={"mode": self.mode, **TINY[self.mode]},
            files=files,
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["id"], started, time.perf_counter() - t0

    def wait(self, job_id: str, timeout: float = 120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.store.get(job_id)
            if job.status.value in TERMINAL:
                return job
            time.sleep(POLL_S)
        raise TimeoutError(f"job {job_id} did not end in {timeout:.0f} s")

    def sample(self, job_id: str, posted_at: float, submit_s: float) -> Sample:
        job = self.wait(job_id)
        finished, started, submitted = (
            epoch_s(t) for t in (job.finished_at, job.started_at, job.submitted_at)
        )
        engine = float(job.engine.get("elapsed_s") or 0.0)
        return Sample(
            end_to_end=finished - posted_at,
            engine=engine,
            submit=submit_s,
            queue_wait=started - submitted,
            after_claim=finished - started - engine,
            status=job.status.value,
            batch=int(job.engine.get("batch_size") or 1),
        )


def one_at_a_time(client: Client, n: int, seed0: int) -> list[Sample]:
    samples = []
    for i in range(n):
        job_id, posted, submit_s = client.post(seed0 + i)
        samples.append(client.sample(job_id, posted, submit_s))
    return samples


def all_at_once(client: Client, n: int, clients: int, seed0: int) -> tuple[list[Sample], float]:
    """Post ``n`` jobs from ``clients`` threads as fast as they go; (samples, submits per second)."""
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        posted = list(pool.map(client.post, range(seed0, seed0 + n)))
    rate = n / (time.perf_counter() - t0)
    return [client.sample(*p) for p in posted], rate


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def report(title: str, samples: list[Sample], rate: float | None = None) -> str:
    failed = [s for s in samples if s.status != "succeeded"]
    rows = [f"\n{title}: {len(samples)} jobs" + (f", {len(failed)} not succeeded" if failed else "")]
    rows.append(f"{'ms':<12} {'p50':>8} {'p99':>8} {'mean':>8}")
    for name in ("overhead", "end_to_end", "engine", "submit", "queue_wait", "after_claim"):
        values = [1000 * getattr(s, name) for s in samples]
        label = name.replace("_", " ")
        rows.append(
            f"{label:<12} {pct(values, 50):>8.1f} {pct(values, 99):>8.1f} {statistics.mean(values):>8.1f}"
        )
    batches = [s.batch for s in samples]
    rows.append(f"jobs per engine pass: mean {statistics.mean(batches):.1f}, max {max(batches)}")
    if rate is not None:
        rows.append(f"submits/s: {rate:.1f}")
    return "\n".join(rows)


def stack_env(services: localstack.Services) -> dict[str, str]:
    tag = f"bench{uuid.uuid4().hex[:8]}"
    env = services.env()
    env.update(
        {
            "STYLEQUEUE_TOPIC_PREFIX": f"sq.{tag}.jobs.",
            "STYLEQUEUE_DEAD_LETTER_TOPIC": f"sq.{tag}.dead-letter",
            "STYLEQUEUE_GROUP_PREFIX": f"sq-{tag}-",
            "STYLEQUEUE_S3_BUCKET": f"sq-{tag}",
            "STYLEQUEUE_RANDOM_WEIGHTS": "1",
        }
    )
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logdir = args.logdir or Path(tempfile.mkdtemp(prefix="stylequeue-service-bench-"))
    logdir.mkdir(parents=True, exist_ok=True)
    with localstack.start_services() as services:
        env = stack_env(services)
        options = localstack.StackOptions(modes=(args.mode,), serve_ui=False, logdir=logdir, api_workers=2)
        with localstack.Stack(env, options) as stack:
            client = Client(stack.api_url, env, args.mode)
            one_at_a_time(client, args.warmup, 1000)
            sequential = one_at_a_time(client, args.jobs, 0)
            concurrent, rate = all_at_once(client, args.jobs, args.clients, 10_000)
    print(f"service bench: tiny {args.mode} jobs ({TINY[args.mode]}), local stack, logs in {logdir}")
    print(report("one at a time", sequential))
    print(report(f"all at once ({args.clients} posting threads)", concurrent, rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Submission throughput and latency of the API: ``POST /api/v1/jobs`` under concurrent clients.

    .venv/bin/python bench/submit_bench.py                       # c=8 and 32, consumers stopped, then running
    .venv/bin/python bench/submit_bench.py --consumers stopped --jobs 400
    .venv/bin/python bench/submit_bench.py --url http://127.0.0.1:8000   # an API that is already running

Every job is a blend submission with two ~100 KB JPEGs (a content photo and a painting, made once
from ``samples/`` at a size that encodes to about 100 KB). Without ``--url`` the bench starts the
embedded stack (Tansu, Redis, moto S3) and the API under gunicorn with its default workers and
threads, as ``stylequeue dev`` runs it; "running" then adds a blend consumer (Magenta's network)
that works through the submitted jobs on the same cores, "stopped" leaves the jobs queued so only
the submit path is measured. Each client thread keeps one HTTP connection (``requests.Session``);
after ``--warmup`` submissions per level, ``--jobs`` submissions are timed. "submits/s" is
accepted submissions divided by the level's wall time; latencies are per request, end to end.
The clients share one address, so the started stack has no per-address upload bound
(``STYLEQUEUE_MAX_UPLOADS_PER_CLIENT=0``); the bench's own threads run on the same cores.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from launcher import localstack  # noqa: E402

SAMPLES = ROOT / "samples"
TARGET_BYTES = 100_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--concurrency", default="8,32", help="client threads per level (default: %(default)s)"
    )
    parser.add_argument(
        "--jobs", type=int, default=300, help="timed submissions per level (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=16, help="untimed submissions per level (default: %(default)s)"
    )
    parser.add_argument(
        "--consumers",
        default="stopped,running",
        help="stopped, running or both, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: %(default)s)")
    parser.add_argument("--url", default="", help="bench this running API instead of starting the stack")
    parser.add_argument("--api-key", default="", help="Authorization: Bearer key to send")
    parser.add_argument("--json", default="", help="also write the results to this file")
    return parser.parse_args(argv)


def jpeg_near(path: Path, target: int = TARGET_BYTES) -> bytes:
    """``path`` re-encoded as a JPEG of about ``target`` bytes (the side is searched, quality 85)."""
    image = Image.open(path).convert("RGB")
    low, high, best = 64, max(image.size), b""
    while low <= high:
        side = (low + high) // 2
        scaled = image.copy()
        scaled.thumbnail((side, side))
        out = io.BytesIO()
        scaled.save(out, format="JPEG", quality=85)
        best = out.getvalue()
        if len(best) < target:
            low = side + 1
        else:
            high = side - 1
    return best


@dataclass
class Level:
    consumers: str
    concurrency: int
    jobs: int
    accepted: int
    errors: dict[str, int]
    wall_s: float
    submits_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Submitter:
    """Posts the same two-image blend job; one ``requests.Session`` per client thread."""

    def __init__(self, url: str, content: bytes, style: bytes, api_key: str = "") -> None:
        self.url = f"{url}/api/v1/jobs"
        self.content, self.style = content, style
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def submit(self, _: int = 0) -> tuple[float, str]:
        """(seconds, "202" or the failure) of one submission."""
        files = [("content", ("content.jpg", self.content, "image/jpeg")),
                 ("style", ("style.jpg", self.style, "image/jpeg"))]  # fmt: skip
        started = time.perf_counter()
        try:
            response = self._session().post(
                self.url, data={"mode": "blend", "image_size": "256"}, files=files,
                headers=self.headers, timeout=60,
            )  # fmt: skip
            outcome = str(response.status_code)
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        return time.perf_counter() - started, outcome


def run_level(submitter: Submitter, consumers: str, concurrency: int, jobs: int, warmup: int) -> Level:
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(submitter.submit, range(warmup)))
        started = time.perf_counter()
        results = list(pool.map(submitter.submit, range(jobs)))
        wall = time.perf_counter() - started
    latencies = [seconds * 1000 for seconds, outcome in results if outcome == "202"]
    errors: dict[str, int] = {}
    for _, outcome in results:
        if outcome != "202":
            errors[outcome] = errors.get(outcome, 0) + 1
    ms = latencies or [float("nan")]
    return Level(
        consumers, concurrency, jobs, len(latencies), errors, round(wall, 2), round(len(latencies) / wall, 1),
        round(statistics.median(ms), 1), round(percentile(ms, 0.90), 1), round(percentile(ms, 0.99), 1),
        round(max(ms), 1),
    )  # fmt: skip


def wait_blend_consumer(api_url: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{api_url}/api/v1/engines", timeout=5) as response:
            engines = {e["mode"]: e for e in json.load(response)["engines"]}
        if engines["blend"]["available"]:
            return
        time.sleep(0.5)
    raise SystemExit("no blend consumer became available")


def print_table(levels: list[Level]) -> None:
    print(f"{'consumers':<9} {'conc':>4} {'jobs':>5} {'ok':>5} {'submits/s':>9} "
          f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7}  errors")  # fmt: skip
    for lv in levels:
        print(f"{lv.consumers:<9} {lv.concurrency:>4} {lv.jobs:>5} {lv.accepted:>5} {lv.submits_per_s:>9} "
              f"{lv.p50_ms:>7} {lv.p90_ms:>7} {lv.p99_ms:>7} {lv.max_ms:>7}  {lv.errors or ''}")  # fmt: skip


def bench(
    args: argparse.Namespace, url: str, stack: localstack.Stack | None, submitter: Submitter
) -> list[Level]:
    levels = []
    for consumers in [c.strip() for c in args.consumers.split(",") if c.strip()]:
        if consumers == "running" and stack is not None and not stack.consumers("blend"):
            stack.start_consumer("blend")
            wait_blend_consumer(url)
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            levels.append(run_level(submitter, consumers, concurrency, args.jobs, args.warmup))
            print_table(levels[-1:])
    return levels


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    content = jpeg_near(SAMPLES / "content" / "tubingen.jpg")
    style = jpeg_near(SAMPLES / "style" / "the_scream.jpg")
    print(f"content {len(content)} bytes, style {len(style)} bytes per job")
    with ExitStack() as resources:
        stack = None
        url = args.url
        if not url:
            services = resources.enter_context(localstack.start_services())
            options = localstack.StackOptions(api_workers=args.workers, modes=(), serve_ui=False)
            # The bench's clients all come from 127.0.0.1: the per-address upload bound would refuse
            # them as one client (it is there for slow clients, not for many fast ones).
            env = {**services.env(), "STYLEQUEUE_MAX_UPLOADS_PER_CLIENT": "0"}
            stack = resources.enter_context(localstack.Stack(env, options))
            url = stack.api_url
        levels = bench(args, url, stack, Submitter(url, content, style, args.api_key))
    print()
    print_table(levels)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(lv) for lv in levels], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

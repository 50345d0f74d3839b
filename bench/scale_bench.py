"""Scale-out of one mode's consumers: jobs/s at 1, 2, 4 and 6 consumers, and what rebalances cost.

    .venv/bin/python bench/scale_bench.py                          # 1 → 2 → 4 → 6, leave 6 → 4, kill 4 → 3
    .venv/bin/python bench/scale_bench.py --duration 1 --window 15 --counts 1,2,4,6 --no-leave --no-kill
    .venv/bin/python bench/scale_bench.py --json scale.json        # also the raw figures

Starts the embedded stack (Tansu, Redis, moto S3, the API under gunicorn) with the synthetic
engine switched on (``STYLEQUEUE_SYNTHETIC_ENGINE=1``) and one topic of ``--partitions``
partitions, then runs real consumer processes of the ``synthetic`` mode: every job sleeps
``--duration`` seconds while reporting progress and two snapshots, so the figures measure the
queue (partition assignment, rebalances, commits, claims, leases), not the cores: six such
consumers fit on two.

A feeder submits jobs through the API (HTTP, as clients do) so that ``--backlog`` jobs per
partition stay queued: the arrival rate follows the service rate, the regime an autoscaler holds a
queue in. Stages add consumers (a *join* rebalance each), then optionally stop two with SIGTERM (a
*leave*: they drain their job first) and SIGKILL one (a *death*: its partition moves after the
session timeout, its job after its lease). In each stage, once every consumer is running a job,
a ``--window`` of seconds is measured.

Reported (``bench/scale_stats.py`` does the arithmetic):

* jobs/s in each stage's window, and efficiency = jobs/s ÷ (consumers × jobs/s of one consumer);
* jobs per partition and per consumer in the window, and how far the busiest is above the mean;
* per rebalance: how long the group was unsettled (first revocation to last assignment, from the
  consumers' logs) and the longest time a partition sat *idle* — a job of it waiting, none of it
  running, and its owner (or, while unassigned, its next owner) not busy with another partition;
* for the kill: how long the killed consumer's job waited before another consumer ran it.

Partitions and publish times come from reading the topic itself; run times and consumers from
the job records in Redis.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # imagefiles: the tests' input images
sys.path.insert(0, str(ROOT / "bench"))

import scale_stats as stats  # noqa: E402
from imagefiles import tiny_png  # noqa: E402

from launcher import localstack  # noqa: E402
from stylequeue import bus, config  # noqa: E402
from stylequeue.job import epoch_s  # noqa: E402
from stylequeue.status import StatusStore  # noqa: E402

MODE = "synthetic"
POLL_S = 0.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1,2,4,6", help="consumers per stage (default: %(default)s)")
    parser.add_argument(
        "--partitions", type=int, default=6, help="partitions of the topic (default: %(default)s)"
    )
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per job (default: %(default)s)")
    parser.add_argument(
        "--window", type=float, default=20.0, help="measured seconds per stage (default: %(default)s)"
    )
    parser.add_argument(
        "--backlog", type=int, default=2, help="queued jobs kept per partition (default: %(default)s)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="most seconds to wait for a stage to fill (default: %(default)s)",
    )
    parser.add_argument(
        "--min-stage",
        type=float,
        default=25.0,
        help="least seconds a stage lasts after its change (a death's rebalance inside) (default: %(default)s)",
    )
    parser.add_argument("--no-leave", action="store_true", help="skip the SIGTERM stage (6 → 4)")
    parser.add_argument("--no-kill", action="store_true", help="skip the SIGKILL stage (4 → 3)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra STYLEQUEUE_* setting for the API and consumers (repeatable)",
    )
    parser.add_argument(
        "--logdir",
        default="",
        help="make the run's log folder in here (default: the system's temporary folder)",
    )
    parser.add_argument("--json", default="", help="also write the results to this file")
    parser.add_argument("--seed", type=int, default=1, help="image seed (default: %(default)s)")
    return parser.parse_args(argv)


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    kind: str  # "join" (consumers added), "leave" (SIGTERM) or "kill" (SIGKILL)
    consumers: int  # how many run once the stage's change is made


def plan(counts: list[int], leave: bool, kill: bool) -> list[Stage]:
    """Joins up to each count, then a graceful leave of two and the death of one."""
    stages = [Stage("join", n) for n in counts]
    top = counts[-1]
    if leave and top > 2:
        stages.append(Stage("leave", top - 2))
    if kill and stages[-1].consumers > 1:
        stages.append(Stage("kill", stages[-1].consumers - 1))
    return stages


# --- feeding and watching jobs -------------------------------------------------------------------


class Feeder(threading.Thread):
    """Keeps ``target`` jobs queued by submitting through the API; counts what runs."""

    def __init__(
        self, api_url: str, store: StatusStore, params: dict[str, str], target: int, seed: int
    ) -> None:
        super().__init__(name="feeder", daemon=True)
        self.url = f"{api_url}/api/v1/jobs"
        self.store, self.params, self.target = store, params, target
        self.files = {
            "content": ("c.png", tiny_png(seed)),
            "style": ("s.png", tiny_png(seed + 1)),
        }
        self.submitted: list[str] = []
        self.running = 0
        self.errors: dict[str, int] = {}
        self._open: set[str] = set()
        self._halt = threading.Event()
        self._session = requests.Session()

    def run(self) -> None:
        while not self._halt.is_set():
            queued = self.store.queued_count(MODE)
            for _ in range(max(0, self.target - queued)):
                self._submit()
            self._count_running()
            self._halt.wait(POLL_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def _submit(self) -> None:
        try:
            response = self._session.post(
                self.url, data={"mode": MODE, **self.params}, files=self.files, timeout=30
            )
        except requests.RequestException as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            return
        if response.status_code != 202:
            self.errors[str(response.status_code)] = self.errors.get(str(response.status_code), 0) + 1
            return
        job_id = response.json()["id"]
        self.submitted.append(job_id)
        self._open.add(job_id)

    def _count_running(self) -> None:
        running = 0
        for job_id in list(self._open):
            status = self.store.get(job_id).status
            if status.terminal:
                self._open.discard(job_id)
            running += status.value == "running"
        self.running = running


# --- one run -------------------------------------------------------------------------------------


@dataclass
class StageResult:
    kind: str
    consumers: int
    event_at: float
    window: tuple[float, float] | None = None
    ended_at: float = 0.0
    gone: dict[str, float] = field(default_factory=dict)  # consumers stopped or killed → when


class Run:
    """The stack, its consumers and the feeder; :meth:`stage` applies one step of the plan."""

    def __init__(self, stack: localstack.Stack, feeder: Feeder, args: argparse.Namespace) -> None:
        self.stack, self.feeder, self.args = stack, feeder, args
        self.started: dict[int, str] = {}  # pid → consumer name

    def live(self) -> list[localstack.Child]:
        return [c for c in self.stack.consumers(MODE) if c.process.poll() is None]

    def stage(self, stage: Stage) -> StageResult:
        result = StageResult(stage.kind, stage.consumers, time.time())
        if stage.kind == "join":
            for _ in range(stage.consumers - len(self.live())):
                child = self.stack.start_consumer(MODE)
                self.started[child.process.pid] = child.name
        else:
            result.gone = self._remove(len(self.live()) - stage.consumers, kill=stage.kind == "kill")
        if self._wait_busy(stage.consumers):
            start = time.time() + min(self.args.duration, 2.0)  # one job in: past the first claims
            result.window = (start, start + self.args.window)
        # A death's rebalance comes a session timeout (and a lease) after the kill: the stage lasts
        # long enough for it to fall inside.
        until = max(result.window[1] if result.window else 0.0, result.event_at + self.args.min_stage)
        time.sleep(max(0.0, until - time.time()))
        result.ended_at = time.time()
        return result

    def _remove(self, count: int, *, kill: bool) -> dict[str, float]:
        """SIGKILL (death) or SIGTERM and wait (a drain) ``count`` consumers, newest first."""
        victims = self.live()[-count:]
        gone = {}
        for child in victims:
            child.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        for child in victims:
            child.process.wait(60)
            gone[child.name] = time.time()
        return gone

    def _wait_busy(self, consumers: int) -> bool:
        deadline = time.time() + self.args.settle
        while time.time() < deadline:
            if self.feeder.running >= consumers:
                return True
            time.sleep(POLL_S)
        print(f"scale_bench: {consumers} consumers never ran jobs together within {self.args.settle:.0f} s")
        return False


def read_topic(
    kafka: config.KafkaConfig, wanted: set[str], timeout_s: float = 30.0
) -> dict[str, tuple[int, float]]:
    """Job id → (partition, publish time) of each job's first message, read from the topic itself.

    Not from end offsets: Tansu's under-report for multi-record batches (ENVIRONMENT.md) would cut
    the read short. Reads until every wanted job was seen or nothing new came for a few seconds.
    """
    from kafka import KafkaConsumer, TopicPartition

    topic = bus.topic_for(kafka, MODE)
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap.split(","), enable_auto_commit=False)
    found: dict[str, tuple[int, float]] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline, quiet_until = time.time() + timeout_s, time.time() + 5
        while time.time() < min(deadline, quiet_until) and not wanted <= set(found):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    job_id = bus.JobMessage.decode(record.value).id
                    found.setdefault(job_id, (record.partition, record.timestamp / 1000))
                quiet_until = time.time() + 5
    finally:
        consumer.close()
    return found


def spans(
    store: StatusStore, job_ids: list[str], placed: dict[str, tuple[int, float]], names: dict[int, str]
):
    """A :class:`stats.Span` per finished job, and the jobs run more than once (attempt > 1)."""
    out, retried = [], []
    for job_id in job_ids:
        job = store.get(job_id)
        if job_id not in placed or not job.started_at or not job.finished_at:
            continue
        partition, published = placed[job_id]
        consumer = names.get(int(job.engine.get("pid") or 0), "?")
        span = stats.Span(
            job_id, partition, consumer, published, epoch_s(job.started_at), epoch_s(job.finished_at)
        )
        out.append(span)
        if job.attempt > 1:
            retried.append(span)
    return out, retried


def owners(logdir: Path, names: dict[int, str], gone: dict[str, float], end: float) -> list[stats.Owned]:
    out = []
    for name in names.values():
        path = logdir / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
        out += stats.ownership(name, stats.membership_events(lines), gone.get(name, end))
    return out


# --- report --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collected:
    """What a run left behind, read back after it: job spans, re-run jobs and partition ownership."""

    jobs: list[stats.Span]
    retried: list[stats.Span]
    owned: list[stats.Owned]
    partitions: int
    end: float


def stage_row(result: StageResult, data: Collected) -> dict:
    """Throughput and evenness in one stage's measured window."""
    by_partition = stats.counts_by(data.jobs, "partition", result.window)
    by_consumer = stats.counts_by(data.jobs, "consumer", result.window)
    return {
        "stage": result.kind,
        "consumers": result.consumers,
        "jobs_per_s": stats.jobs_per_second(data.jobs, result.window),
        "partition_counts": by_partition,
        "partition_skew": stats.skew(by_partition, data.partitions),
        "consumer_counts": by_consumer,
        "consumer_skew": stats.skew(by_consumer, result.consumers),
    }


def rebalance_row(result: StageResult, until: float, data: Collected) -> dict:
    """What one change of membership cost, from the change until the end of the stage's window."""
    span = (result.event_at, until)
    idle = stats.longest_idle(range(data.partitions), data.jobs, data.owned, span)
    settled = stats.settle_time(data.owned, span)
    revoked = [o.end for o in data.owned if span[0] <= o.end < span[1]]
    row = {
        "stage": result.kind,
        "consumers": result.consumers,
        "rebalance_s": settled - min(revoked) if settled and revoked else None,
        "longest_idle_s": max(idle.values(), default=0.0),
        "idle_by_partition": idle,
    }
    if result.kind == "kill":
        waits = [s.started - result.event_at for s in data.retried if s.started > result.event_at]
        row["killed_job_wait_s"] = max(waits) if waits else None
    return row


def analyse(results: list[StageResult], data: Collected) -> dict:
    stages = [stage_row(r, data) for r in results if r.window is not None]
    rates: dict[int, float] = {}
    for row in stages:
        if row["stage"] == "join":
            rates.setdefault(row["consumers"], row["jobs_per_s"])
    efficiency = stats.efficiency(rates)
    for row in stages:
        row["efficiency"] = efficiency.get(row["consumers"]) if row["stage"] == "join" else None
    # The first consumer joins an empty group: nothing to rebalance.
    rebalances = [rebalance_row(r, r.ended_at, data) for r in results[1:]]
    return {"stages": stages, "rebalances": rebalances}


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{unit}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _spaced(counts: dict) -> str:
    return " ".join(str(v) for v in counts.values())


STAGE_HEADER = [
    "stage",
    "consumers",
    "jobs/s",
    "efficiency",
    "jobs per partition",
    "partition skew",
    "jobs per consumer",
    "consumer skew",
]
REBALANCE_HEADER = [
    "rebalance",
    "consumers after",
    "group unsettled",
    "longest partition idle",
    "killed job waited",
]


def stage_cells(r: dict) -> list[str]:
    return [
        r["stage"],
        str(r["consumers"]),
        f"{r['jobs_per_s']:.2f}",
        _fmt(r["efficiency"], ".2f"),
        _spaced(r["partition_counts"]),
        f"{r['partition_skew']:+.0%}",
        _spaced(r["consumer_counts"]),
        f"{r['consumer_skew']:+.0%}",
    ]


def rebalance_cells(r: dict) -> list[str]:
    return [
        r["stage"],
        str(r["consumers"]),
        _fmt(r["rebalance_s"], ".1f", " s"),
        f"{r['longest_idle_s']:.1f} s",
        _fmt(r.get("killed_job_wait_s"), ".1f", " s"),
    ]


def print_report(report: dict, args: argparse.Namespace) -> None:
    print(
        f"\nsynthetic jobs of {args.duration:g} s, {args.partitions} partitions, {args.backlog} queued each\n"
    )
    print(markdown(STAGE_HEADER, [stage_cells(r) for r in report["stages"]]))
    print()
    print(markdown(REBALANCE_HEADER, [rebalance_cells(r) for r in report["rebalances"]]))


# --- main ----------------------------------------------------------------------------------------


def stack_env(services: localstack.Services, args: argparse.Namespace) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    env = services.env()
    env.update(
        {
            "STYLEQUEUE_SYNTHETIC_ENGINE": "1",
            "STYLEQUEUE_TOPIC_PARTITIONS": str(args.partitions),
            # Names of its own: a run never sees another's jobs or group.
            "STYLEQUEUE_TOPIC_PREFIX": f"scale.{tag}.jobs.",
            "STYLEQUEUE_GROUP_PREFIX": f"scale-{tag}-",
            "STYLEQUEUE_DEAD_LETTER_TOPIC": f"scale.{tag}.dead-letter",
            "STYLEQUEUE_S3_BUCKET": f"scale-{tag}",
        }
    )
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    stages = plan(counts, not args.no_leave, not args.no_kill)
    # A fresh folder per run: the stack appends to its logs, and ownership is read back from them.
    if args.logdir:
        Path(args.logdir).mkdir(parents=True, exist_ok=True)
    logdir = Path(tempfile.mkdtemp(prefix="scale-bench-", dir=args.logdir or None))
    params = {"duration_s": str(args.duration), "steps": "10", "snapshot_every": "5"}
    with localstack.start_services() as services:
        env = stack_env(services, args)
        # The stack starts (and waits for) the first consumer; the plan's joins add the others.
        options = localstack.StackOptions(modes=(MODE,), consumers_per_mode=1, serve_ui=False, logdir=logdir)
        store = StatusStore.from_config(config.load(config.RedisConfig, env))
        with localstack.Stack(env, options) as stack:
            feeder = Feeder(stack.api_url, store, params, args.backlog * args.partitions, args.seed)
            run = Run(stack, feeder, args)
            run.started.update({c.process.pid: c.name for c in stack.consumers(MODE)})
            feeder.start()
            results = [run.stage(stage) for stage in stages]
            feeder.stop()
            end = time.time()
            print(f"scale_bench: {len(feeder.submitted)} jobs submitted; reading the topic and the records …")
            kafka = config.load(config.KafkaConfig, env)
            placed = read_topic(kafka, set(feeder.submitted))
            jobs, retried = spans(store, feeder.submitted, placed, run.started)
            gone = {name: t for r in results for name, t in r.gone.items()}
            owned = owners(logdir, run.started, gone, end)
    report = analyse(results, Collected(jobs, retried, owned, args.partitions, end))
    report["args"] = vars(args)
    report["submit_errors"] = feeder.errors
    print_report(report, args)
    print(f"\nlogs: {logdir}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({**report, "raw": [asdict(r) for r in results]}, indent=2, default=str)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

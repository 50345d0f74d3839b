"""monitoring/: Prometheus config and rules (promtool), the Grafana provisioning and dashboards, and
— against the running local stack — every dashboard query and recording rule evaluated by a real
Prometheus (Debian package ``prometheus``) after a few jobs ran, each required to return data."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from services import wait_for

ROOT = Path(__file__).resolve().parent.parent
PROM_DIR = ROOT / "monitoring" / "prometheus"
GRAFANA_DIR = ROOT / "monitoring" / "grafana"
RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
GPU_METRIC = "stylequeue_gpu_"


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


render = load_module(PROM_DIR / "render.py", "prometheus_render")
builder = load_module(GRAFANA_DIR / "build_dashboards.py", "build_dashboards")


def promtool(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=PROM_DIR)


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))}


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL with Grafana's variables substituted) of every target."""
    found = []
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", ()):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((name, panel["title"], expr))
    return found


def recording_rules() -> list[dict]:
    groups = yaml.safe_load((PROM_DIR / "rules" / "recording.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


# -- static checks -------------------------------------------------------------------------------------


def test_promtool_accepts_the_config_and_the_rules(tmp_path):
    out = promtool("check", "config", str(PROM_DIR / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    local = render.write(
        tmp_path / "prometheus.yml", {"api": ["127.0.0.1:8000"], "consumer-gatys": ["127.0.0.1:9100"]}
    )
    out = promtool("check", "config", str(local))
    assert out.returncode == 0, out.stdout + out.stderr
    out = promtool("check", "rules", *map(str, RULE_FILES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 20 rules found" in out.stdout  # the recording rules


def test_alerts_fire_when_they_should(tmp_path):
    """promtool's unit tests of the alert rules (monitoring/prometheus/tests/alerts_test.yml)."""
    out = promtool("test", "rules", str(PROM_DIR / "tests" / "alerts_test.yml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_is_unit_tested():
    alerts = {r["alert"] for g in yaml.safe_load((PROM_DIR / "rules/alerts.yml").read_text())["groups"]
              for r in g["rules"]}  # fmt: skip
    tested = set(re.findall(r"alertname: (\w+)", (PROM_DIR / "tests/alerts_test.yml").read_text()))
    untested = alerts - tested - {"StylequeueTargetDown", "StylequeueScrapeSourceDown", "StylequeueApiSlow"}
    assert not untested, f"alerts without a promtool test: {untested}"


def test_render_rejects_unknown_jobs_and_keeps_rules_and_jobs():
    with pytest.raises(ValueError, match="unknown scrape job"):
        render.render({"consumer-gatsby": ["127.0.0.1:1"]})
    config = render.render({"api": ["127.0.0.1:8000"]}, interval="2s")
    assert [job["job_name"] for job in config["scrape_configs"]] == ["api"]
    assert config["global"]["scrape_interval"] == config["global"]["scrape_timeout"] == "2s"
    assert all(Path(rule).is_file() for rule in config["rule_files"])


def test_dashboards_are_the_generators_output():
    written = {name: (GRAFANA_DIR / "dashboards" / name).read_text() for name in builder.render()}
    assert written == builder.render(), "run: python monitoring/grafana/build_dashboards.py"
    assert set(dashboards()) == {"overview.json", "workers.json"}


def test_dashboards_reference_only_the_provisioned_datasource():
    provisioned = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in provisioned["datasources"]}
    assert uids == {"stylequeue-prometheus"}
    for name, board in dashboards().items():
        text = json.dumps(board)
        assert set(re.findall(r'"uid": "([^"]+)"', text)) - {board["uid"]} <= uids, name
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids and target["expr"].strip(), (name, panel["title"])


def test_dashboard_json_structure_is_valid():
    """Unique uids and panel ids, panels inside the 24-column grid and not overlapping."""
    boards = dashboards()
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        for key in ("title", "uid", "panels", "schemaVersion", "time", "templating"):
            assert key in board, (name, key)
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, (name, panel["title"])
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not area & cells, f"{name}: {panel['title']} overlaps another panel"
            cells |= area
            assert panel["type"] in {"row", "timeseries", "stat"}


def test_dashboards_show_what_the_issue_asks_for():
    exprs = " ".join(expr for _, _, expr in panel_queries())
    for needle in ("jobs_submitted", "queue_depth", "consumer_lag", "jobs_in_flight", "queue_wait_seconds:p50",
                   "queue_wait_seconds:p95", "queue_wait_seconds:p99", "run_seconds:p95", "end_to_end_seconds:p99",
                   "jobs_finished", "dead_lettered", "consumers_up", "gatys_iterations_total", "blend_batch_size",
                   "gpu_memory", "gpu_utilisation"):  # fmt: skip
        assert needle in exprs, needle


def test_recorded_series_the_dashboards_use_are_defined():
    recorded = {rule["record"] for rule in recording_rules()}
    used = {m for _, _, expr in panel_queries() for m in re.findall(r"\b\w+:\w+:\w+\b", expr)}
    assert used <= recorded, f"dashboards use undefined recorded series: {used - recorded}"


# -- a real Prometheus scraping the running stack ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query(url: str, expr: str) -> list[dict]:
    qs = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{qs}", timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def count(result: list[dict]) -> float:
    """The value of a one-series query result (0 when it has none)."""
    return float(result[0]["value"][1]) if result else 0


def wait_for_data(url: str, expr: str, timeout: float = 40) -> list[dict]:
    return wait_for(lambda: query(url, expr), timeout, 0.5, last=True)


def stack_targets(stack, prometheus_port: int) -> dict[str, list[str]]:
    api = urllib.parse.urlsplit(stack.api_url).netloc
    targets = {"prometheus": [f"127.0.0.1:{prometheus_port}"], "api": [api]}
    for mode in ("gatys", "blend"):
        ports = [c.metrics_port for c in stack.consumers(mode) if c.metrics_port]
        assert ports, f"the stack's {mode} consumers serve no metrics (StackOptions.metrics_ports)"
        targets[f"consumer-{mode}"] = [f"127.0.0.1:{p}" for p in ports]
    return targets


def ready(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    """A real Prometheus scraping the stack every second with the project's config and rules."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = render.write(workdir / "prometheus.yml", stack_targets(stack, port), interval="1s")
    log = open(workdir / "prometheus.log", "wb")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(url), 30, 0.2, lambda: (workdir / "prometheus.log").read_text()[-3000:])
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def jobs_ran(stack, prometheus):
    """A few jobs of every mode, run after Prometheus started (so rates see them move)."""
    from http_jobs import run_jobs

    time.sleep(2)  # a scrape before the jobs: counters then visibly increase
    return run_jobs(stack.api_url)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_every_target_is_scraped(prometheus, jobs_ran):
    wanted = {"prometheus", "api", "consumer-gatys", "consumer-blend"}
    # Each target's first scrape comes at its own offset within the interval.
    result = wait_for(lambda: query(prometheus, "up == 1"), 30, 0.5, last=True,
                      until=lambda result: {r["metric"]["job"] for r in result} >= wanted)  # fmt: skip
    assert {r["metric"]["job"] for r in result} >= wanted, result


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_every_recording_rule_returns_data(prometheus, jobs_ran):
    assert all(job["status"] == "succeeded" for job in jobs_ran), jobs_ran
    missing = []
    for rule in recording_rules():
        if not wait_for_data(prometheus, rule["expr"]) or not wait_for_data(prometheus, rule["record"]):
            missing.append(rule["record"])
    assert not missing, f"recording rules without data: {missing}"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_every_dashboard_panel_returns_data(prometheus, jobs_ran):
    """GPU panels must answer with nothing on CPU (degrade to absent); every other one with data."""
    cuda = bool(query(prometheus, "stylequeue_gpu_memory_total_bytes"))
    missing = []
    for board, title, expr in panel_queries():
        if GPU_METRIC in expr and not cuda:
            assert query(prometheus, expr) == [], (board, title)
            continue
        if not wait_for_data(prometheus, expr):
            missing.append(f"{board} / {title}: {expr}")
    assert not missing, "panels without data:\n" + "\n".join(missing)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_job_counts_reach_prometheus(prometheus, jobs_ran):
    for mode in ("gatys", "blend"):
        expr = f'sum(stylequeue_jobs_finished_total{{mode="{mode}", status="succeeded"}})'
        result = wait_for(
            lambda e=expr: query(prometheus, e), 20, 0.5, last=True, until=lambda r: count(r) >= 2
        )
        assert count(result) >= 2, (mode, result)

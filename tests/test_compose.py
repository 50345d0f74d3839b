"""docker-compose.yml, the Dockerfiles and .dockerignore, checked without a Docker engine.

``docker-compose config`` (Debian's docker-compose validates without an engine) must accept the
file; the rest reads the rendered configuration and holds it to the application's own names:
environment variables load through :func:`stylequeue.config.load`, ports and service names agree
with Prometheus, Grafana and nginx, every file a Dockerfile copies exists in its build context.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from consumer.engines.registry import modes
from consumer.worker import DRAIN_S
from stylequeue import config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILES = {  # Dockerfile → its build context
    ROOT / "Dockerfile.api": ROOT,
    ROOT / "Dockerfile.consumer": ROOT,
    ROOT / "Dockerfile.consumer.gpu": ROOT,
    ROOT / "frontend" / "Dockerfile": ROOT / "frontend",
}
SECTIONS = [config.EngineConfig, config.S3Config, config.RedisConfig, config.KafkaConfig, config.ApiConfig,
            config.WorkerConfig]  # fmt: skip
APP_SECTIONS = (config.S3Config, config.RedisConfig, config.KafkaConfig)
CONSUMER_SECTIONS = APP_SECTIONS + (config.EngineConfig, config.WorkerConfig)
ONE_SHOT = {"provision", "minio-volume"}
ROOT_ALLOWED = {"minio-volume"}  # one chown of MinIO's volume; see docker-compose.yml


def env_names() -> set[str]:
    return {row["env"] for section in SECTIONS for row in config.describe(section)}


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose file as docker-compose renders it (anchors merged, defaults substituted)."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    out = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--profile", "gpu", "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: "" if v is None else str(v) for k, v in env.items()}


def port_target(port: dict | str) -> int:
    """A published port's container side; docker-compose 1.29 keeps ``IP:HOST:CONTAINER/tcp`` a string."""
    return int(port.rsplit(":", 1)[1].split("/")[0]) if isinstance(port, str) else int(port["target"])


def volumes(service: dict) -> dict[str, dict[str, str]]:
    """Mount target → {"type", "source"}; docker-compose 1.29 renders short ``src:dst[:mode]`` strings."""
    mounts = {}
    for item in service.get("volumes") or ():
        if isinstance(item, str):
            source, target = item.split(":")[:2]
            kind = "bind" if source.startswith(("/", ".")) else "volume"
            item = {"type": kind, "source": source, "target": target}
        mounts[item["target"]] = item
    return mounts


def test_compose_config_accepts_the_file_with_and_without_the_gpu_profile(compose):
    for args in ([], ["--profile", "gpu"]):
        out = subprocess.run(["docker-compose", "-f", str(COMPOSE), *args, "config", "-q"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
    expected = (
        {
            "kafka",
            "redis",
            "minio",
            "minio-volume",
            "provision",
            "api",
            "reconciler",
            "frontend",
            "prometheus",
            "grafana",
        }
        | {f"consumer-{m}" for m in modes()}
        | {f"consumer-{m}-gpu" for m in modes()}
    )
    assert set(compose["services"]) == expected


def test_every_stylequeue_variable_is_a_config_variable(compose):
    known = env_names()
    for name, service in compose["services"].items():
        unknown = {k for k in service_env(service) if k.startswith("STYLEQUEUE_")} - known
        assert not unknown, f"{name} sets variables stylequeue/config.py does not read: {unknown}"
    for dockerfile in DOCKERFILES:
        named = set(re.findall(r"\b(STYLEQUEUE_[A-Z0-9_]+)=", dockerfile.read_text()))
        assert named <= known, f"{dockerfile.name}: {named - known}"


def test_application_services_load_their_config_sections(compose):
    """The env of the API and of each consumer loads (required set, types and choices valid)."""
    services = compose["services"]
    for name, sections in [
        ("api", APP_SECTIONS + (config.ApiConfig,)),
        ("provision", APP_SECTIONS + (config.ApiConfig,)),
    ] + [(n, CONSUMER_SECTIONS) for n in services if n.startswith("consumer-")]:
        env = service_env(services[name])
        for section in sections:
            config.load(section, env)  # raises ConfigError naming the variable
    worker = config.load(config.WorkerConfig, service_env(services["consumer-gatys"]))
    assert worker.metrics_port == 9100


def test_compose_defaults_equal_the_application_defaults():
    """``${STYLEQUEUE_X:-default}`` in the compose file must not drift from config.py."""
    defaults = {row["env"]: row["default"] for s in SECTIONS for row in config.describe(s)
                if row["default"] is not None}  # fmt: skip
    found = re.findall(r"\$\{(STYLEQUEUE_[A-Z0-9_]+):-([^}]*)\}", COMPOSE.read_text())
    assert found
    for name, value in found:
        if (
            name in defaults and name != "STYLEQUEUE_S3_PUBLIC_ENDPOINT"
        ):  # compose publishes MinIO on the host
            assert str(defaults[name]) == value or (defaults[name] is False and value == "0"), name


def test_consumers_run_each_mode_with_the_consumer_command(compose):
    services = compose["services"]
    for mode in modes():
        for name in (f"consumer-{mode}", f"consumer-{mode}-gpu"):
            assert services[name]["command"] == ["stylequeue", "consumer", "--mode", mode]
        gpu = services[f"consumer-{mode}-gpu"]
        assert gpu["profiles"] == ["gpu"]
        device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
        assert gpu["build"]["dockerfile"] == "Dockerfile.consumer.gpu"
        assert services[f"consumer-{mode}"]["build"]["dockerfile"] == "Dockerfile.consumer"
        assert "ports" not in services[f"consumer-{mode}"], "published ports would break --scale"
        for name in (f"consumer-{mode}", f"consumer-{mode}-gpu"):  # the drain fits before SIGKILL
            assert _seconds(services[name]["stop_grace_period"]) > DRAIN_S + 5, name
    # One init step makes the bucket and every registered mode's topic (api.backing.provision),
    # before the API, the consumers and the reconciler start; the API itself never does.
    assert services["provision"]["command"] == ["stylequeue", "provision"]
    for name in ("api", "reconciler", *(f"consumer-{m}" for m in modes())):
        assert services[name]["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert services["api"]["command"][:2] == ["stylequeue", "api"]


def test_ports_and_service_names_agree_with_prometheus_grafana_and_nginx(compose):
    services = compose["services"]
    prom = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert jobs["api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert any(port_target(p) == 8000 for p in services["api"]["ports"])
    assert service_env(services["api"])["STYLEQUEUE_API_BIND"] == "0.0.0.0:8000"
    for mode in modes():
        sd = jobs[f"consumer-{mode}"]["dns_sd_configs"][0]
        assert set(sd["names"]) == {f"consumer-{mode}", f"consumer-{mode}-gpu"} <= set(services)
        assert sd["port"] == int(service_env(services[f"consumer-{mode}"])["STYLEQUEUE_METRICS_PORT"])
    datasource = yaml.safe_load(
        (ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert any(p["target"] == 9090 for p in services["prometheus"]["ports"])
    nginx = (ROOT / "frontend/nginx.conf").read_text()
    assert "http://api:8000" in nginx and re.search(r"listen 8080;", nginx)
    assert any(p["target"] == 8080 for p in services["frontend"]["ports"])
    s3 = service_env(services["api"])["STYLEQUEUE_S3_ENDPOINT"]
    assert (
        s3 == "http://minio:9000"
        and service_env(services["api"])["STYLEQUEUE_KAFKA_BOOTSTRAP"] == "kafka:29092"
    )


def test_grafana_mounts_the_provisioning_and_dashboard_folders(compose):
    mounts = volumes(compose["services"]["grafana"])
    provider = yaml.safe_load(
        (ROOT / "monitoring/grafana/provisioning/dashboards/stylequeue.yml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    assert Path(mounts[path]["source"]) == ROOT / "monitoring/grafana/dashboards"
    assert Path(mounts["/etc/grafana/provisioning"]["source"]) == ROOT / "monitoring/grafana/provisioning"
    assert (
        Path(volumes(compose["services"]["prometheus"])["/etc/prometheus"]["source"])
        == ROOT / "monitoring/prometheus"
    )


def test_images_are_pinned_and_containers_run_as_non_root(compose):
    for name, service in compose["services"].items():
        if "image" in service and "build" not in service:
            repo, _, tag = service["image"].rpartition(":")
            assert repo and tag and tag != "latest", f"{name}: unpinned image {service['image']}"
        user = str(service.get("user", ""))
        if name in ROOT_ALLOWED:
            continue
        assert user and user.split(":")[0] not in {"0", "root"}, f"{name} must set a non-root user"
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        for image in re.findall(r"^ARG \w+_IMAGE=(\S+)", text, re.M):
            assert re.search(r":\d", image), f"{dockerfile.name}: unpinned base image {image}"
        assert re.search(r"^USER \S+", text, re.M), f"{dockerfile.name} has no USER"
        assert len(re.findall(r"^FROM ", text, re.M)) >= 2, f"{dockerfile.name} is not multi-stage"


def test_long_running_services_have_healthchecks_and_conditions(compose):
    services = compose["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in service, f"{name} has no healthcheck"
            assert service.get("restart") == "unless-stopped", name
        for dep, spec in (service.get("depends_on") or {}).items():
            wanted = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec["condition"] == wanted, f"{name} → {dep}"
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in volumes(service).values():
            if volume["type"] == "volume":
                assert volume["source"] in declared, f"{name}: volume {volume['source']} is not declared"
    kafka = service_env(services["kafka"])
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    listeners = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert listeners["INTERNAL"] == "kafka:29092" and listeners["HOST"].startswith("localhost:")
    assert "--appendonly yes" in " ".join(services["redis"]["command"])


def test_credentials_come_from_the_environment_with_defaults():
    text = COMPOSE.read_text()
    for variable in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(r"\$\{" + variable + r":-[^}]+\}", text), variable
    out = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "GRAFANA_ADMIN_PASSWORD": "s3cret-from-env"},
        timeout=60,
    )
    if out.returncode == 127 or shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    grafana = yaml.safe_load(out.stdout)["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret-from-env"


# -- Dockerfiles --------------------------------------------------------------------------------


def copy_sources(dockerfile: Path) -> list[str]:
    """Sources of every COPY/ADD from the build context (not ``--from=`` another stage)."""
    sources = []
    for line in re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines():
        words = (
            shlex.split(line.split("#", 1)[0]) if line.strip() and not line.lstrip().startswith("#") else []
        )
        if not words or words[0].upper() not in {"COPY", "ADD"}:
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from=") for w in words[1:]):
            continue
        sources += args[:-1]
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore excludes ``path`` or a folder above it (its last matching rule wins)."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        forms = {pattern, pattern[3:]} if pattern.startswith("**/") else {pattern}
        if any(
            fnmatch.fnmatch(c, f) or fnmatch.fnmatch(Path(c).name, f) and f.startswith("*")
            for c in candidates
            for f in forms
        ):
            verdict = not negate
    return verdict


def dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.exists():
        return []
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


@pytest.mark.parametrize("dockerfile", list(DOCKERFILES), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_dockerfile_copies_exists_in_its_context(dockerfile):
    context = DOCKERFILES[dockerfile]
    patterns = dockerignore(context)
    sources = copy_sources(dockerfile)
    assert sources, f"{dockerfile.name} copies nothing?"
    for source in sources:
        if source == ".":
            continue
        assert (context / source).exists(), f"{dockerfile.name} copies {source}, missing from {context}"
        assert not ignored(source, patterns), f"{dockerfile.name} copies {source}, excluded by .dockerignore"


def test_dockerignore_keeps_the_python_context_small():
    patterns = dockerignore(ROOT)
    for heavy in (".venv", ".git", "frontend/node_modules", "tests", "stylequeue/__pycache__/x.pyc", "w.pth"):
        assert ignored(heavy, patterns), heavy
    for needed in (
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "stylequeue/job.py",
        "api",
        "consumer",
        "launcher",
    ):
        assert not ignored(needed, patterns), needed
    assert ignored("node_modules", dockerignore(ROOT / "frontend"))


def test_compose_build_contexts_exist(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            context = Path(service["build"]["context"])
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name


def test_the_python_images_install_what_the_commands_need():
    """The API image has no torch; the consumer images install torch from PyTorch's own index."""
    api = (ROOT / "Dockerfile.api").read_text()
    assert "torch" not in api.replace("no torch", "")
    cpu = (ROOT / "Dockerfile.consumer").read_text()
    gpu = (ROOT / "Dockerfile.consumer.gpu").read_text()
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu" in cpu
    assert re.search(r"TORCH_INDEX=https://download.pytorch.org/whl/cu\d+", gpu)
    for text in (cpu, gpu):
        assert "FETCH_WEIGHTS" in text and "consumer.commands.models pull ${WEIGHTS}" in text
        assert 'CMD ["stylequeue", "consumer"' in text
    assert 'CMD ["stylequeue", "api"' in api


def _seconds(duration: str | int | float) -> float:
    """A compose duration (``40s``, ``1m30s``, or seconds as a number) in seconds."""
    if isinstance(duration, (int, float)):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", duration))

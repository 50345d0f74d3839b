"""Adding an engine is one module plus one registry entry: tests/plugin_engine.py, end to end.

The registry's ``MODULES`` gains ``"tint"`` for one test (its public seam: the only list of modes);
nothing else is edited. The API lists the engine and validates its parameters from its model, a
submission is stored and published, and the consumer's runner runs it with the metric series
the app created for it.
"""

from __future__ import annotations

import io

import imagefiles as files
import pytest
from clients import configs, producer, s3_storage, status_store, topics  # noqa: F401
from prometheus_client import REGISTRY

from api.app import create_app
from api.service import Clients
from consumer.batching import batch_limit
from consumer.engines import registry
from consumer.runner import Context, Control, Runner
from stylequeue import config
from stylequeue.bus import JobMessage
from stylequeue.job import Status

pytestmark = pytest.mark.integration


@pytest.fixture
def tint(monkeypatch):
    """The one registry entry; requested first, so the test's topics include the new mode."""
    monkeypatch.setitem(registry.MODULES, "tint", "plugin_engine")
    return registry.kind("tint")


@pytest.fixture
def client(tint, service_env, s3_storage, status_store, producer):
    return create_app(service_env, clients=Clients(s3_storage, status_store, producer)).test_client()


def submit(client, **fields):
    data = {"mode": "tint", "content": (io.BytesIO(files.jpeg()), "content.jpg"), **fields}
    data["style"] = [(io.BytesIO(files.png(color=(200, 0, 0))), "style.png")]
    return client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")


def finished(status: str) -> float | None:
    return REGISTRY.get_sample_value("stylequeue_jobs_finished_total", {"mode": "tint", "status": status})


def test_the_api_lists_the_new_engine_from_its_declaration(client, tint):
    [entry] = [e for e in client.get("/api/v1/engines").json["engines"] if e["mode"] == "tint"]
    assert (entry["title"], entry["description"]) == (tint.title, tint.summary)
    assert [p["name"] for p in entry["parameters"]] == ["strength", "steps"]
    assert (entry["min_styles"], entry["max_styles"]) == (1, 1)
    assert (entry["losses"], entry["live_snapshots"], entry["resumes"]) == (True, True, False)
    assert entry["available"] is False  # no consumer reports in yet
    assert batch_limit("tint", 8) == 1  # it does not batch


def test_its_parameters_are_validated_by_its_model(client):
    response = submit(client, strength="1.5")
    assert response.status_code == 422
    assert response.json["error"]["field"] == "strength"
    assert "must be at most 1" in response.json["error"]["message"]
    assert submit(client, alpha="0.5").json["error"]["field"] == "alpha"  # another engine's parameter


def test_a_submitted_job_is_run_by_the_consumer(client, configs, s3_storage, status_store, producer):
    before = finished("succeeded")
    assert before is not None  # the app made the new mode's series (at zero, before any job)
    response = submit(client, strength="0.5", steps="2")
    assert response.status_code == 202, response.json
    job = status_store.get(response.json["id"])
    assert job.params == {"strength": 0.5, "steps": 2}

    engine = registry.get_engine("tint", config.load(config.EngineConfig, {}))
    ctx = Context("tint", engine, status_store, s3_storage, producer, configs.kafka, config.WorkerConfig())
    assert Runner(ctx, Control()).run([JobMessage.of(job)]) == {job.id: True}

    record = status_store.get(job.id)
    assert record.status is Status.SUCCEEDED, record.error
    assert record.progress.iteration == record.progress.total == 2
    assert client.get(f"/api/v1/jobs/{job.id}/result").status_code == 200
    assert [s["iteration"] for s in client.get(f"/api/v1/jobs/{job.id}/snapshots").json["snapshots"]] == [
        1,
        2,
    ]
    assert [p["total"] for p in client.get(f"/api/v1/jobs/{job.id}/losses").json["losses"]] == [0.75, 0.5]
    assert finished("succeeded") == before + 1

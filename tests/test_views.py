"""api.views: what a client sees of a job, cut from the record."""

from __future__ import annotations

import dataclasses

import pydantic
import pytest

from api import views
from api.views import RECORD_ONLY, JobList, JobView, Links, SnapshotList
from stylequeue.job import Inputs, Job, JobError, Progress, Resumed, Status


def record() -> Job:
    return Job(
        id="0b7e",
        mode="gatys",
        params={"image_size": 64},
        inputs=Inputs("jobs/0b7e/inputs/content.png", ("jobs/0b7e/inputs/style-0.png", "s1.png")),
        status=Status.FAILED,
        attempt=3,
        releases=1,
        retry_at="2030-01-01T00:00:00.000Z",
        progress=Progress(40, 100),
        started_at="2026-11-21T10:00:00.000Z",
        finished_at="2026-11-21T10:01:00.000Z",
        error=JobError("engine", "out of memory"),
        result_key="jobs/0b7e/attempts/3/result.png",
        snapshots=(10, 20),
        engine={"device": "cpu", "random_weights": True, "seed": 7},
        resumed_from=Resumed(2, 20, "1/2"),
    )


def test_every_record_field_is_shown_or_kept_back_on_purpose():
    """A field added to the record must be put in the view or in RECORD_ONLY: never leaked or lost."""
    shown = set(JobView.model_fields) - {"links", "queue_position"}
    assert {f.name for f in dataclasses.fields(Job)} == shown | RECORD_ONLY
    assert not shown & RECORD_ONLY


def test_the_view_has_no_s3_keys_or_fencing_fields():
    body = JobView.of(record(), queue_position=None).model_dump(mode="json")
    assert RECORD_ONLY.isdisjoint(body)
    assert "jobs/0b7e" not in str({k: v for k, v in body.items() if k != "links"})  # no S3 key anywhere
    assert body["status"] == "failed" and body["attempt"] == 3
    assert body["error"] == {"code": "engine", "message": "out of memory"}
    assert body["resumed_from"] == {"attempt": 2, "iteration": 20, "stage": "1/2"}
    assert body["links"]["styles"] == ["/api/v1/jobs/0b7e/inputs/style-0", "/api/v1/jobs/0b7e/inputs/style-1"]
    assert body["links"] == Links.of(record()).model_dump() and body["queue_position"] is None


def test_views_refuse_fields_they_do_not_declare():
    body = JobView.of(record()).model_dump(mode="json")
    with pytest.raises(pydantic.ValidationError):
        JobView.model_validate({**body, "result_key": "jobs/x/result.png"})


def test_list_bodies():
    page = JobList(jobs=[JobView.of(record())], next="12.5").model_dump(mode="json")
    assert page["next"] == "12.5" and page["jobs"][0]["id"] == "0b7e"
    assert SnapshotList.of("j", [5, 10]).model_dump(mode="json") == {
        "job_id": "j",
        "snapshots": [
            {"iteration": 5, "url": "/api/v1/jobs/j/snapshots/5"},
            {"iteration": 10, "url": "/api/v1/jobs/j/snapshots/10"},
        ],
    }


MODELS = [m for m in vars(views).values() if isinstance(m, type) and issubclass(m, views.View)]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_is_documented_for_the_openapi_document(model):
    schema = model.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(field.description for field in model.model_fields.values()), model.__name__

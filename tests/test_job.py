"""stylequeue.job: the job record, its JSON form and its transitions."""

from __future__ import annotations

import json

import pytest

from stylequeue.errors import ValidationError
from stylequeue.job import (
    TERMINAL,
    Inputs,
    Job,
    JobError,
    Progress,
    Status,
    object_keys,
)

# Which status may follow which (the status store's transactions keep to it). RUNNING → QUEUED is
# a worker releasing a job (shutdown, retry).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
    Status.RUNNING: frozenset({Status.QUEUED, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}),
    **dict.fromkeys(TERMINAL, frozenset()),
}


def can_transition(current: Status, new: Status) -> bool:
    return new in TRANSITIONS[current]


def full_job() -> Job:
    return Job(
        id="0b7e",
        mode="gatys",
        params={"image_size": 64, "style_layers": ["relu1_1", "relu2_1"]},
        inputs=Inputs("jobs/0b7e/inputs/content.png", ("s0.png", "s1.png"), init_image="init.png"),
        status=Status.FAILED,
        attempt=3,
        progress=Progress(iteration=40, total=100),
        started_at="2026-11-21T10:00:00.000Z",
        finished_at="2026-11-21T10:01:00.000Z",
        error=JobError("engine", "out of memory"),
        result_key=None,
        snapshots=(10, 20, 30, 40),
        engine={"device": "cpu", "random_weights": True},
    )


@pytest.mark.parametrize(
    "job", [full_job(), Job(id="j", mode="blend", params={}, inputs=Inputs("c", ("s",)))]
)
def test_dict_and_json_round_trips(job):
    assert Job.from_dict(job.to_dict()) == job
    assert Job.from_json(job.to_json()) == job
    # The JSON form is plain JSON types (lists, strings), as Redis stores it.
    data = json.loads(job.to_json())
    assert isinstance(data["inputs"]["styles"], list) and isinstance(data["snapshots"], list)
    assert data["status"] == job.status.value


def test_malformed_records_name_the_job_field():
    data = full_job().to_dict()
    del data["inputs"]
    with pytest.raises(ValidationError) as excinfo:
        Job.from_dict(data)
    assert excinfo.value.field == "job"
    with pytest.raises(ValidationError):
        Job.from_dict({**full_job().to_dict(), "status": "exploded"})


def test_terminal_statuses_have_no_way_out():
    assert TERMINAL == {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}
    for status in TERMINAL:
        assert status.terminal
        assert not any(can_transition(status, other) for other in Status)
    assert not Status.QUEUED.terminal and not Status.RUNNING.terminal


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (Status.QUEUED, Status.RUNNING, True),
        (Status.QUEUED, Status.CANCELLED, True),
        (Status.QUEUED, Status.SUCCEEDED, False),
        (Status.RUNNING, Status.QUEUED, True),  # a worker releasing the job
        (Status.RUNNING, Status.SUCCEEDED, True),
        (Status.RUNNING, Status.RUNNING, False),
        (Status.SUCCEEDED, Status.QUEUED, False),
    ],
)
def test_transitions(current, new, allowed):
    assert can_transition(current, new) is allowed


def test_object_keys_lay_out_one_prefix_per_job():
    keys = object_keys("abc", 2)
    assert all(value.startswith("jobs/abc/") for name, value in keys.items() if name != "prefix")
    assert keys["style"].format(index=1) == "jobs/abc/inputs/style-1.png"
    assert keys["params"] == object_keys("abc")["params"] == "jobs/abc/params.json"


def test_outputs_are_keyed_by_attempt_so_a_stale_attempt_never_overwrites_a_newer_one():
    old, new = object_keys("abc", 1), object_keys("abc", 2)
    assert new["snapshot"].format(iteration=20) == "jobs/abc/attempts/2/snapshots/000020.jpg"
    assert new["result"] == "jobs/abc/attempts/2/result.png" != old["result"]
    assert "result" not in object_keys("abc")  # no output key without its attempt


def test_releases_and_retry_time_survive_the_record():
    job = Job(id="j", mode="blend", params={}, inputs=Inputs("c", ("s",)), attempt=3, releases=1)
    job = job.evolve(retry_at="2030-01-01T00:00:00.000Z")
    assert Job.from_json(job.to_json()) == job
    assert job.counted_attempts == 2


def test_new_jobs_start_queued_with_a_timestamp():
    job = Job(id="j", mode="blend", params={}, inputs=Inputs("c", ("s",)))
    assert (job.status, job.attempt, job.progress) == (Status.QUEUED, 0, Progress())
    assert job.submitted_at.endswith("Z")
    assert job.evolve(attempt=1).attempt == 1 and job.attempt == 0

"""The HTTP routes: thin views that parse the request, call :class:`api.service.JobService` and answer JSON.

Every error is raised, never answered here: ``api.errors`` turns it into the JSON error body.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, redirect, request

from api import openapi
from api.access import JobsQuery, ResultQuery
from api.bodies import Engines, Health, LossList, Ready
from api.guard import caller
from api.openapi import SubmitForm, doc
from api.service import FilePart, JobService, Submission
from api.views import JobList, JobView, SnapshotList

bp = Blueprint("api", __name__, url_prefix="/api/v1")
health = Blueprint("health", __name__)
ARCHIVE = "ZIP: snapshots/NNNNNN.jpg in iteration order, result.png (once succeeded), params.json; streamed"


def service() -> JobService:
    return current_app.extensions["stylequeue"]


def parse_submission() -> Submission:
    """Form fields (repeated ones joined with commas, the list syntax) and file parts, in order."""
    fields = {name: ",".join(values) for name, values in request.form.lists()}
    files = [
        FilePart(name, upload.filename or "", upload.stream)
        for name, upload in request.files.items(multi=True)
    ]
    return Submission(fields, files, owner=caller())


@bp.post("/jobs")
@doc({202: (JobView, "accepted: stored, recorded and acknowledged by the broker")}, (400, 408, 413, 415, 422, 503),
     operation_id="submitJob", form=SubmitForm)  # fmt: skip
def submit_job():
    """Submit a job."""
    job = service().submit(parse_submission())
    return jsonify(job), 202, {"Location": job["links"]["self"]}


@bp.get("/jobs")
@doc({200: (JobList, "one page of jobs")}, (422, 503), operation_id="listJobs", query=JobsQuery)
def list_jobs():
    """The caller's jobs, newest first (with access control off: every job submitted without a key)."""
    return jsonify(service().jobs(caller(), request.args))


@bp.get("/jobs/<job_id>")
@doc({200: (JobView, "the job")}, (404, 503), operation_id="getJob")
def get_job(job_id: str):
    """A job's status, progress and links."""
    return jsonify(service().get(job_id, caller()))


@bp.delete("/jobs/<job_id>")
@doc({200: (JobView, "the job after the request")}, (404, 409, 503), operation_id="cancelJob")
def cancel_job(job_id: str):
    """Cancel: queued jobs at once, running ones at their next check."""
    return jsonify(service().cancel(job_id, caller()))


@bp.get("/jobs/<job_id>/result")
@doc({200: (None, "the result"), 307: (None, "redirect to a presigned URL (presigned=true)")},
     (404, 409, 422, 503), operation_id="getResult", query=ResultQuery, media=("image/png",))  # fmt: skip
def get_result(job_id: str):
    """The result image."""
    if ResultQuery(**request.args).presigned:
        return redirect(service().result_url(job_id, caller()), code=307)
    chunks = service().result(job_id, caller())
    headers = {"Content-Disposition": f'inline; filename="{job_id}.png"'}
    return Response(chunks, mimetype="image/png", headers=headers)


@bp.get("/jobs/<job_id>/inputs/<name>")
@doc(
    {200: (None, "the input as stored: an RGB PNG, or an upright 8-bit RGB JPEG kept as sent")},
    (404, 503),
    operation_id="getInput",
    media=("image/png", "image/jpeg"),
)
def get_input(job_id: str, name: str):
    """A stored input image, as normalised on upload."""
    # Raises for an unknown name: the name is safe in the file name below.
    media_type, chunks = service().input_image(job_id, name, caller())
    suffix = "jpg" if media_type == "image/jpeg" else "png"
    headers = {"Content-Disposition": f'inline; filename="{job_id}-{name}.{suffix}"'}
    return Response(chunks, mimetype=media_type, headers=headers)


@bp.get("/jobs/<job_id>/snapshots")
@doc({200: (SnapshotList, "the snapshots kept so far")}, (404, 503), operation_id="listSnapshots")
def list_snapshots(job_id: str):
    """Iterations with a snapshot."""
    return jsonify(service().snapshots(job_id, caller()))


@bp.get("/jobs/<job_id>/snapshots/<int:iteration>")
@doc({200: (None, "the snapshot")}, (404, 503), operation_id="getSnapshot", media=("image/jpeg",))
def get_snapshot(job_id: str, iteration: int):
    """One snapshot."""
    return Response(service().snapshot(job_id, iteration, caller()), mimetype="image/jpeg")


@bp.get("/jobs/<job_id>/snapshots.zip")
@doc({200: (None, ARCHIVE)}, (404, 503), operation_id="getArchive", media=("application/zip",))
def get_archive(job_id: str):
    """Every snapshot, the result and the parameters."""
    name, chunks = service().archive(job_id, caller())
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(chunks, mimetype="application/zip", headers=headers)


@bp.get("/jobs/<job_id>/losses")
@doc({200: (LossList, "the loss curve so far")}, (404, 503), operation_id="getLosses")
def get_losses(job_id: str):
    """The loss curve (gatys)."""
    return jsonify(service().losses(job_id, caller()))


@bp.get("/engines")
@doc({200: (Engines, "every mode and the upload limits")}, (503,), operation_id="listEngines", guarded=False)
def list_engines():
    """Modes, their parameters and availability."""
    return jsonify(service().engines())


@bp.get("/openapi.json")
@doc({200: None}, operation_id="openapi", guarded=False)
def openapi_document():
    """This OpenAPI document."""
    return jsonify(openapi.document())


@health.get("/healthz")
@doc({200: (Health, "alive")}, operation_id="healthz", guarded=False)
def healthz():
    """Liveness."""
    return jsonify({"status": "ok"})


@health.get("/readyz")
@doc(
    {200: (Ready, "ready"), 503: (Ready, "a service is not reachable")}, operation_id="readyz", guarded=False
)
def readyz():
    """Readiness: Redis, Kafka and S3 answer."""
    ready, states = service().readiness()
    return jsonify(states), 200 if ready else 503

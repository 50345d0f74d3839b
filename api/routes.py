"""The HTTP routes: thin views that parse the request, call :class:`api.service.JobService` and answer JSON.

Every error is raised, never answered here: ``api.errors`` turns it into the JSON error body.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, redirect, request

from api import openapi
from api.guard import caller
from api.service import FilePart, JobService, Submission
from stylequeue.params import coerce

bp = Blueprint("api", __name__, url_prefix="/api/v1")
health = Blueprint("health", __name__)


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
def submit_job():
    job = service().submit(parse_submission())
    response = jsonify(job)
    response.status_code = 202
    response.headers["Location"] = job["links"]["self"]
    return response


@bp.get("/jobs")
def list_jobs():
    return jsonify(service().jobs(caller(), request.args))


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    return jsonify(service().get(job_id, caller()))


@bp.delete("/jobs/<job_id>")
def cancel_job(job_id: str):
    return jsonify(service().cancel(job_id, caller()))


@bp.get("/jobs/<job_id>/result")
def get_result(job_id: str):
    if coerce("presigned", bool, request.args.get("presigned", "false")):
        return redirect(service().result_url(job_id, caller()), code=307)
    chunks = service().result(job_id, caller())
    headers = {"Content-Disposition": f'inline; filename="{job_id}.png"'}
    return Response(chunks, mimetype="image/png", headers=headers)


@bp.get("/jobs/<job_id>/inputs/<name>")
def get_input(job_id: str, name: str):
    media_type, chunks = service().input_image(
        job_id, name, caller()
    )  # raises for an unknown name: safe below
    suffix = "jpg" if media_type == "image/jpeg" else "png"
    headers = {"Content-Disposition": f'inline; filename="{job_id}-{name}.{suffix}"'}
    return Response(chunks, mimetype=media_type, headers=headers)


@bp.get("/jobs/<job_id>/snapshots")
def list_snapshots(job_id: str):
    return jsonify(service().snapshots(job_id, caller()))


@bp.get("/jobs/<job_id>/snapshots/<int:iteration>")
def get_snapshot(job_id: str, iteration: int):
    return Response(service().snapshot(job_id, iteration, caller()), mimetype="image/jpeg")


@bp.get("/jobs/<job_id>/snapshots.zip")
def get_archive(job_id: str):
    name, chunks = service().archive(job_id, caller())
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(chunks, mimetype="application/zip", headers=headers)


@bp.get("/jobs/<job_id>/losses")
def get_losses(job_id: str):
    return jsonify(service().losses(job_id, caller()))


@bp.get("/engines")
def list_engines():
    return jsonify(service().engines())


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document())


@health.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz():
    ready, states = service().readiness()
    return jsonify(states), 200 if ready else 503

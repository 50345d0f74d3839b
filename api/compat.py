"""The seed projects' routes: thin views over :class:`api.seeds.CompatService`.

Each view parses the request like the native submit route does, calls one service method and
answers the way that seed's client expects: PixelBlend's JSON, or the stylized image's bytes. A job
still running when the wait (``STYLEQUEUE_COMPAT_WAIT_S``) runs out is answered as ``POST
/api/v1/jobs`` answers: 202 with a ``Location`` header naming the job. Errors are raised, never
answered here: ``api.errors`` gives them the native JSON body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from api import seeds
from api.bodies import ModelStatus, PixelBlendResult, SeedHealth
from api.openapi import doc, seed_form
from api.routes import parse_submission
from api.views import JobView

bp = Blueprint("compat", __name__)
Pending = tuple[Response, int, dict[str, str]]
# Every seed submission: the native errors (naming the seed's field), 409 for a job cancelled while
# waited for, and 422 also for one that ran and failed (code job_failed).
SEED_ERRORS = (400, 408, 409, 413, 415, 422, 503)
PENDING = (JobView, "still running after the wait (STYLEQUEUE_COMPAT_WAIT_S): the job, Location its URL")
IMAGE = (None, "the stylized image")
CONTENT_LOCATION = {
    "Content-Location": {
        "schema": {"type": "string"},
        "description": "the result's URL (its job: without /result)",
    }
}


def compat() -> seeds.CompatService:
    return current_app.extensions["stylequeue.compat"]


def seed_doc(ok: dict[int, Any], errors: tuple[int, ...] = (), **kwargs: Any) -> Callable:
    """:func:`~api.openapi.doc` with the seed routes' tag; the operation's description (the view's
    docstring after its summary) says how to switch the routes off."""

    def decorate(view: Callable) -> Callable:
        view.__doc__ = f"{view.__doc__}\n\nSeed compatibility (off with STYLEQUEUE_COMPAT_ROUTES=0)."
        return doc(ok, errors, tags=("seed compatibility",), **kwargs)(view)

    return decorate


@bp.post(seeds.PIXELBLEND.path)
@seed_doc({200: (PixelBlendResult, "the job succeeded"), 202: (PixelBlendResult, "still running after the wait")},
          SEED_ERRORS, operation_id="pixelblendGenerate", form=seed_form(seeds.PIXELBLEND))  # fmt: skip
def pixelblend_generate():
    """PixelBlend: blend a content image with two styles and answer the result's URLs."""
    body, done = compat().generate(parse_submission())
    return jsonify(body) if done else _pending(body, body["job_url"])


@bp.get("/api/health")
@seed_doc({200: (SeedHealth, "ready"), 503: (SeedHealth, "a service is down")}, operation_id="pixelblendHealth",
          guarded=False)  # fmt: skip
def pixelblend_health():
    """PixelBlend: readiness and the blend model."""
    body, ready = compat().health()
    return jsonify(body), 200 if ready else 503


@bp.get("/api/model-status")
@seed_doc({200: (ModelStatus, "the blend engine's state")}, (503,), operation_id="pixelblendModelStatus",
          guarded=False)  # fmt: skip
def pixelblend_model_status():
    """PixelBlend: the blend model's state."""
    return jsonify(compat().model_status())


@bp.post(seeds.GATYS_SERVICE.path)
@seed_doc(
    {200: IMAGE, 202: PENDING},
    SEED_ERRORS,
    operation_id="gatysStylize",
    form=seed_form(seeds.GATYS_SERVICE),
    media=("image/png",),
    headers=CONTENT_LOCATION,
)
def gatys_stylize():
    """Gatys service: stylize and answer the image."""
    return _image(*compat().image(seeds.GATYS_SERVICE, parse_submission()))


@bp.post(seeds.PHOTOREAL.path)
@seed_doc({200: IMAGE, 202: PENDING}, SEED_ERRORS, operation_id="photorealUploadImages",
          form=seed_form(seeds.PHOTOREAL), media=("image/png",), headers=CONTENT_LOCATION)  # fmt: skip
def photoreal_upload_images():
    """Photoreal: stylize and answer the image at the content's size."""
    return _image(*compat().image(seeds.PHOTOREAL, parse_submission()))


def _image(job: dict[str, Any], chunks: Iterator[bytes] | None) -> Response | Pending:
    if chunks is None:
        return _pending(job, job["links"]["self"])
    # Content-Location: where this image lives, so a client can find the job behind it.
    headers = {
        "Content-Disposition": f'inline; filename="{job["id"]}.png"',
        "Content-Location": job["links"]["result"],
    }
    return Response(chunks, mimetype="image/png", headers=headers)


def _pending(job: dict[str, Any], job_url: str) -> Pending:
    return jsonify(job), 202, {"Location": job_url}

"""The seed projects' routes: thin views over :class:`api.seeds.CompatService`.

Each view parses the request like the native submit route does, calls one service method and
answers the way that seed's client expects: PixelBlend's JSON, or the stylized image's bytes. A job
still running when the wait (``STYLEQUEUE_COMPAT_WAIT_S``) runs out is answered as ``POST
/api/v1/jobs`` answers: 202 with a ``Location`` header naming the job. Errors are raised, never
answered here: ``api.errors`` gives them the native JSON body. ``create_app`` registers this
blueprint unless ``STYLEQUEUE_COMPAT_ROUTES=0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from api import seeds
from api.routes import parse_submission

bp = Blueprint("compat", __name__)


def compat() -> seeds.CompatService:
    return current_app.extensions["stylequeue.compat"]


@bp.post(seeds.PIXELBLEND.path)
def pixelblend_generate():
    body, done = compat().generate(parse_submission())
    response = jsonify(body)
    return response if done else _pending(response, body["job_url"])


@bp.get("/api/health")
def pixelblend_health():
    body, ready = compat().health()
    return jsonify(body), 200 if ready else 503


@bp.get("/api/model-status")
def pixelblend_model_status():
    return jsonify(compat().model_status())


@bp.post(seeds.GATYS_SERVICE.path)
def gatys_stylize():
    return _image(*compat().image(seeds.GATYS_SERVICE, parse_submission()))


@bp.post(seeds.PHOTOREAL.path)
def photoreal_upload_images():
    return _image(*compat().image(seeds.PHOTOREAL, parse_submission()))


def _image(job: dict[str, Any], chunks: Iterator[bytes] | None) -> Response:
    if chunks is None:
        return _pending(jsonify(job), job["links"]["self"])
    # Content-Location: where this image lives, so a client can find the job behind it.
    headers = {
        "Content-Disposition": f'inline; filename="{job["id"]}.png"',
        "Content-Location": job["links"]["result"],
    }
    return Response(chunks, mimetype="image/png", headers=headers)


def _pending(response: Response, job_url: str) -> Response:
    """Not finished within the wait: 202 and where to poll, as the native submit route answers."""
    response.status_code = 202
    response.headers["Location"] = job_url
    return response

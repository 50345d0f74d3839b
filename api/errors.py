"""The one place where errors become HTTP responses: ``{"error": {"code", "message", "field"}}``.

Project errors carry a stable ``code`` (:mod:`stylequeue.errors`, :mod:`api.uploads`); the table
below gives each code its status. Werkzeug's HTTP exceptions (unknown route, wrong method, request
over MAX_CONTENT_LENGTH) get the same body, so a client never sees an HTML error page; a backing
service's own exception (Redis, S3, Kafka) becomes 503 ``unavailable`` naming the service and
nothing else: the exception's text (hosts, ports) goes to the log only. An error that says when to
come back (``retry_after_s``: rate limits, quotas, busy upload slots) gets a ``Retry-After`` header.
"""

from __future__ import annotations

import logging
import math

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from api.backing import SERVICE_ERRORS, service_name, unavailable_message
from stylequeue.errors import StylequeueError

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "invalid": 422,
    "not_found": 404,
    "request_timeout": 408,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "too_many_uploads": 429,
    "conflict": 409,
    "cancelled": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "unavailable": 503,
    "engine_unavailable": 503,
    "artifact": 503,
    "config": 500,
    # A seed route's job was run and failed (api.seeds): the client gets no image. Not a 5xx: the
    # service worked, the job could not be done (its error says why, as GET /api/v1/jobs/{id} does).
    "job_failed": 422,
}
# Codes for Werkzeug's exceptions where the generic snake-cased name is not what we call it.
HTTP_CODES = {413: "too_large", 415: "unsupported_media_type", 422: "invalid", 429: "rate_limited"}


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return {"error": {"code": code, "message": message, "field": field}}


def too_large_message(limit: int) -> str:
    """A request over ``STYLEQUEUE_MAX_REQUEST_BYTES``, in the words of every layer that refuses one."""
    return f"the request is larger than the limit of {limit} bytes (STYLEQUEUE_MAX_REQUEST_BYTES)"


def status_for(exc: StylequeueError) -> int:
    return STATUS_BY_CODE.get(exc.code, 500)


def _project_error(exc: StylequeueError) -> tuple[Response, int]:
    status = status_for(exc)
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message)
    response = jsonify(error_body(exc.code, exc.message, exc.field))
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    response.headers.update(getattr(exc, "headers", {}))  # e.g. 401's WWW-Authenticate
    return response, status


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    message = exc.description or exc.name or "error"
    if status == 429:  # flask-limiter's: the description is the limit, e.g. "600 per 1 minute"
        message = f"too many requests: the limit is {message}; try again after Retry-After seconds"
    if status == 413 and current_app.config.get("MAX_CONTENT_LENGTH"):
        message = too_large_message(current_app.config["MAX_CONTENT_LENGTH"])
    response = jsonify(error_body(code, message))
    if getattr(exc, "valid_methods", None):  # 405 says what is allowed
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response, status


def _service_error(exc: Exception) -> tuple[Response, int]:
    service = service_name(exc) or "a backing service"
    log.warning("%s failed: %s: %s", service, type(exc).__name__, exc)
    # The exception's text stays in the log: it names internal hosts and ports.
    return jsonify(error_body("unavailable", unavailable_message(service))), 503


def _unexpected(exc: Exception) -> tuple[Response, int]:
    log.exception("unhandled error")
    return jsonify(error_body("internal", "internal server error")), 500


def init_app(app: Flask) -> None:
    app.register_error_handler(StylequeueError, _project_error)
    app.register_error_handler(HTTPException, _http_error)
    for kind in SERVICE_ERRORS:
        app.register_error_handler(kind, _service_error)
    app.register_error_handler(Exception, _unexpected)

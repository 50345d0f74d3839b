"""The one place where errors become HTTP responses: ``{"error": {"code", "message", "field"}}``.

Project errors carry a stable ``code`` (:mod:`stylequeue.errors`, :mod:`api.uploads`); the table
below gives each code its status. Werkzeug's HTTP exceptions (unknown route, wrong method, request
over MAX_CONTENT_LENGTH) get the same body, so a client never sees an HTML error page; a backing
service's own exception (Redis, S3, Kafka) becomes 503 ``unavailable`` naming the service.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, Response, current_app, jsonify
from kafka.errors import KafkaError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from stylequeue.errors import StylequeueError

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "bad_request": 400,
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "cancelled": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "unavailable": 503,
    "engine_unavailable": 503,
    "artifact": 503,
    "config": 500,
}
# A backing service's own exceptions, and the name a 503 gives it. Routes let these propagate
# (storage has already turned a missing object into NotFound), so every route answers a failed
# Redis, S3 or broker the same way: 503 "unavailable", never a 500.
SERVICE_ERRORS: dict[type[Exception], str] = {
    RedisError: "Redis",
    BotoCoreError: "S3",
    ClientError: "S3",
    KafkaError: "Kafka",
}
# Codes for Werkzeug's exceptions where the generic snake-cased name is not what we call it.
HTTP_CODES = {413: "too_large", 415: "unsupported_media_type", 422: "invalid"}


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return {"error": {"code": code, "message": message, "field": field}}


def status_for(exc: StylequeueError) -> int:
    return STATUS_BY_CODE.get(exc.code, 500)


def _project_error(exc: StylequeueError) -> tuple[Response, int]:
    status = status_for(exc)
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message)
    return jsonify(error_body(exc.code, exc.message, exc.field)), status


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    message = exc.description or exc.name or "error"
    if status == 413 and current_app.config.get("MAX_CONTENT_LENGTH"):
        message = f"request is larger than the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    response = jsonify(error_body(code, message))
    if getattr(exc, "valid_methods", None):  # 405 says what is allowed
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response, status


def _service_error(exc: Exception) -> tuple[Response, int]:
    service = next(name for kind, name in SERVICE_ERRORS.items() if isinstance(exc, kind))
    log.warning("%s failed: %s: %s", service, type(exc).__name__, exc)
    # The exception's text stays in the log: it names internal hosts and ports.
    message = f"{service} is unavailable ({type(exc).__name__}); try again later"
    return jsonify(error_body("unavailable", message)), 503


def _unexpected(exc: Exception) -> tuple[Response, int]:
    log.exception("unhandled error")
    return jsonify(error_body("internal", "internal server error")), 500


def init_app(app: Flask) -> None:
    app.register_error_handler(StylequeueError, _project_error)
    app.register_error_handler(HTTPException, _http_error)
    for kind in SERVICE_ERRORS:
        app.register_error_handler(kind, _service_error)
    app.register_error_handler(Exception, _unexpected)

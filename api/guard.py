"""Access control as Flask hooks: the API key of each request, rate limits and the CORS policy.

What is decided lives in :mod:`api.access` (keys, ownership, quotas); this module only attaches
it to requests. The rate limits are counted in Redis by flask-limiter, over every API worker.

Health, readiness, metrics, the OpenAPI document, the engine list and the web UI's files are
public: a load balancer, Prometheus and the UI's first page need them before any key is known.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, g, request
from flask_cors import CORS
from flask_limiter import ApplicationLimit, Limiter
from limits import parse_many

from api.service import JobService
from stylequeue.config import ApiConfig
from stylequeue.errors import ConfigError

PUBLIC = frozenset({
    "health.healthz", "health.readyz", "metrics", "api.openapi_document", "api.list_engines",
    "compat.pixelblend_health", "compat.pixelblend_model_status", "ui", "ui_index",
})  # fmt: skip


def caller() -> str | None:
    """The requesting key's name (None: access control is off or the route is public)."""
    return g.get("caller")


def is_public() -> bool:
    return request.method == "OPTIONS" or request.endpoint is None or request.endpoint in PUBLIC


def authorization() -> str | None:
    """The request's credentials: its ``Authorization`` header, or for a GET an ``access_token``
    query parameter (RFC 6750 §2.3), which is how the web UI's ``<img>`` and download links carry
    the key. Access logs record paths without their query string (api/gunicorn.conf.py, nginx)."""
    header = request.headers.get("Authorization")
    if header is None and request.method == "GET" and "access_token" in request.args:
        return f"Bearer {request.args['access_token']}"
    return header


def client_address() -> str:
    """The client's address (X-Forwarded-For's, behind ``STYLEQUEUE_TRUSTED_PROXIES`` proxies)."""
    return request.remote_addr or "unknown"


def init_app(app: Flask, service: JobService) -> None:
    """Register authentication first, so the rate limits that follow can count by key."""

    @app.before_request
    def _authenticate() -> None:
        g.caller = None if is_public() else service.keys.identify(authorization())

    _rate_limits(app, service)
    _cors(app, service.settings.api)


def _limit(value: str, variable: str, key: Callable[[], str], scope: str, **extra) -> ApplicationLimit:
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            f"not a rate limit such as '600/minute;20/second': {value!r}", field=variable
        ) from None
    return ApplicationLimit(value, key_function=key, scope=scope, **extra)


def _rate_limits(app: Flask, service: JobService) -> Limiter | None:
    cfg = service.settings.api
    limits = []
    if cfg.rate_limit_per_ip:
        limits.append(_limit(cfg.rate_limit_per_ip, "STYLEQUEUE_RATE_LIMIT_PER_IP", client_address, "ip"))
    if cfg.rate_limit_per_key:
        limits.append(
            _limit(cfg.rate_limit_per_key, "STYLEQUEUE_RATE_LIMIT_PER_KEY", lambda: caller() or "", "key",
                   exempt_when=lambda: caller() is None)
        )  # fmt: skip
    if not limits:
        return None
    return Limiter(
        client_address,
        app=app,
        application_limits=limits,
        application_limits_exempt_when=is_public,
        storage_uri=service.settings.redis.url,
        key_prefix=f"{service.status.prefix}limits",
        strategy="moving-window",
        headers_enabled=True,
        # Redis down: the request goes on (and its own Redis call answers 503), not a 500.
        swallow_errors=True,
    )


def _cors(app: Flask, cfg: ApiConfig) -> None:
    origins = [o.strip() for o in cfg.cors_origins.split(",") if o.strip()]
    if not origins:
        return
    CORS(
        app,
        resources={r"/api/*": {"origins": "*" if origins == ["*"] else origins}},
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Location", "Retry-After", "Content-Disposition"],
        methods=["GET", "POST", "DELETE", "OPTIONS"],
        max_age=600,
    )

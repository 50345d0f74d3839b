"""The Flask application factory. gunicorn runs ``api.app:create_app()``; tests pass their own clients.

``config`` is a mapping of ``STYLEQUEUE_*`` variables (default: the environment). ``create_app``
does no network I/O: clients connect on first use and :func:`api.backing.provision` made the bucket
and topics beforehand, so a worker that boots while a backing service is down serves and
``/readyz`` names the service.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from flask import Flask, Response, abort, current_app, g, request, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

from api import compat, errors, guard, reference, routes
from api.jsonbody import StrictJSONProvider
from api.middleware import BodyBuffer
from api.openapi import doc
from api.pipeline_metrics import PipelineCollector
from api.requests import ApiRequest
from api.seeds import CompatService
from api.service import Clients, JobService, Settings, make_clients
from consumer.engines.registry import kinds
from stylequeue import metrics
from stylequeue.lag import lag_reader


def create_app(config: Mapping[str, str] | None = None, *, clients: Clients | None = None) -> Flask:
    settings = Settings.load(config)
    service = JobService(clients or make_clients(settings), settings)

    app = Flask(__name__, static_folder=None)
    _limit_requests(app, settings)
    app.json = StrictJSONProvider(app)
    app.json.sort_keys = False
    app.extensions["stylequeue"] = service
    errors.init_app(app)
    guard.init_app(app, service)
    for blueprint in (routes.bp, routes.health, reference.bp):
        app.register_blueprint(blueprint)
    if settings.api.compat_routes:
        app.extensions["stylequeue.compat"] = CompatService(service)
        app.register_blueprint(compat.bp)
    app.add_url_rule("/metrics", "metrics", metrics_view)
    modes = kinds()
    metrics.init_series(modes, style_cache=any(kind.style_cache for kind in modes.values()))
    app.extensions["stylequeue.metrics"] = PipelineCollector(
        list(modes),
        store=service.status,
        presence=service.presence,
        lag_reader=lag_reader(settings.kafka, modes, client_id="stylequeue-metrics"),
    )
    _record_requests(app)
    if settings.api.ui_dir:
        _serve_ui(app, Path(settings.api.ui_dir))
    return app


def _limit_requests(app: Flask, settings: Settings) -> None:
    """Bodies read whole and in time before Flask sees them, each form limit with its own error.
    Outermost, ProxyFix takes the client address from X-Forwarded-For when the API is configured to
    sit behind that many proxies (nginx in compose); the body buffer and the rate limits count it."""
    cfg = settings.api
    app.request_class = ApiRequest
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_request_bytes  # a second check behind the buffer's
    app.config["MAX_FORM_PARTS"] = cfg.max_form_parts
    app.config["MAX_FORM_MEMORY_SIZE"] = cfg.max_field_bytes
    wsgi = BodyBuffer(app.wsgi_app, cfg)
    if cfg.trusted_proxies:
        wsgi = ProxyFix(wsgi, x_for=cfg.trusted_proxies, x_proto=cfg.trusted_proxies)
    app.wsgi_app = wsgi


@doc({200: (None, "Prometheus text format")}, operation_id="metrics", guarded=False, media=("text/plain",))
def metrics_view() -> Response:
    """Prometheus metrics of the API.

    Summed over gunicorn's workers in multiprocess mode, plus queue depth, consumers per engine
    and consumer lag read from Redis and Kafka at scrape time.
    """
    body, content_type = metrics.exposition([current_app.extensions["stylequeue.metrics"]])
    return Response(body, content_type=content_type)


def _record_requests(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("request_started")
        if started is not None:
            # The route's rule, not the URL: job ids would make one label value per job.
            route = request.url_rule.rule if request.url_rule else "unmatched"
            metrics.api_request(route, request.method, response.status_code, time.perf_counter() - started)
        return response


def _serve_ui(app: Flask, root: Path) -> None:
    """Serve the built UI; unknown non-API paths get index.html so client-side routes work."""
    root = root.resolve()  # not relative to Flask's root_path, which send_from_directory would use

    def ui(path: str = "") -> Response:
        if path.startswith("api/"):
            abort(404)
        if path:
            # send_from_directory checks containment (safe_join) before it looks at the disk,
            # so a path outside ``root`` is answered exactly like a missing one.
            with suppress(NotFound):
                return send_from_directory(root, path)
        return send_from_directory(root, "index.html")

    app.add_url_rule("/", "ui_index", ui)
    app.add_url_rule("/<path:path>", "ui", ui)

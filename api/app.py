"""The Flask application factory. gunicorn runs ``api.app:create_app()``; tests pass their own clients.

``create_app`` reads its configuration from ``config`` (a mapping of ``STYLEQUEUE_*`` variables;
default: the environment), builds the service clients with :func:`api.service.make_clients` unless
``clients`` are given, makes sure the bucket and topics exist, and registers the routes, the JSON
error handler, request metrics and (when ``STYLEQUEUE_UI_DIR`` is set) the built web UI.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, Response, abort, current_app, g, request, send_from_directory
from werkzeug.exceptions import NotFound

from api import errors, routes
from api.service import Clients, JobService, Settings, make_clients
from stylequeue import metrics
from stylequeue.modes import MODES


def create_app(config: Mapping[str, str] | None = None, *, clients: Clients | None = None) -> Flask:
    settings = Settings.load(config)
    service = JobService(clients or make_clients(settings), settings)
    service.start()

    app = Flask(__name__, static_folder=None)
    # Werkzeug refuses a larger body with 413 before it is read (our JSON via the error handler).
    app.config["MAX_CONTENT_LENGTH"] = settings.api.max_request_bytes
    app.json.sort_keys = False
    app.extensions["stylequeue"] = service
    errors.init_app(app)
    app.register_blueprint(routes.bp)
    app.register_blueprint(routes.health)
    app.add_url_rule("/metrics", "metrics", metrics_view)
    metrics.init_series(MODES)
    app.extensions["stylequeue.metrics"] = metrics.PipelineCollector(
        MODES, store=service.status, lag_reader=metrics.make_lag_reader(settings.kafka, MODES)
    )
    _record_requests(app)
    if settings.api.ui_dir:
        _serve_ui(app, Path(settings.api.ui_dir))
    return app


def metrics_view() -> Response:
    """Prometheus metrics, summed over gunicorn's workers in multiprocess mode, plus queue depth,
    consumers per engine and consumer lag read from Redis and Kafka at scrape time."""
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
            try:
                # send_from_directory checks containment (safe_join) before it looks at the disk,
                # so a path outside ``root`` is answered exactly like a missing one.
                return send_from_directory(root, path)
            except NotFound:
                pass
        return send_from_directory(root, "index.html")

    app.add_url_rule("/", "ui_index", ui)
    app.add_url_rule("/<path:path>", "ui", ui)

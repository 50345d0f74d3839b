"""gunicorn settings for the API: ``stylequeue api`` and the local stack run gunicorn with ``-c`` this file.

Command-line flags (``-b``, ``-w``) override what is set here. Each worker builds its own clients in
``create_app()`` after the fork (no ``preload_app``): the Kafka producer's thread and the Redis and
S3 connection pools must not be shared across processes. They connect on first use, and nothing
here provisions (``stylequeue provision`` does), so a worker boots while a backing service is down.
"""

from stylequeue.config import ApiConfig, load

_api = load(ApiConfig)

bind = _api.bind
workers = _api.workers
# gthread with read deadlines and JSON error pages (api.server): threads let one worker take other
# requests while the broker acks, and no slow client holds one past its deadlines.
worker_class = "api.server.Worker"
threads = _api.threads
timeout = 120
graceful_timeout = 30
# gunicorn's largest request line (its default is 4094): longer ids reach the API, which answers
# 404 naming its own id limit; past this, gunicorn's 414 (JSON, see api.server).
limit_request_line = 8190
accesslog = "-"
# The path without its query string: a query may carry an access token (the web UI's image links).
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
wsgi_app = "api.app:create_app()"
# The runtime control socket has one default path per user: several APIs on one machine (the dev
# stack and tests, or two containers sharing a home) would fight over it. Nothing here uses it.
control_socket_disable = True


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the multiprocess metrics (prometheus-client's rule)."""
    from stylequeue import metrics

    metrics.mark_worker_dead(worker.pid)


def on_starting(server):
    """The master, before any worker: empty the multiprocess metrics folder (of dead pids)."""
    from stylequeue import metrics

    metrics.reset_multiprocess_dir()

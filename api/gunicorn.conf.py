"""gunicorn settings for the API: ``stylequeue api`` and the local stack run gunicorn with ``-c`` this file.

Command-line flags (``-b``, ``-w``) override what is set here. Each worker builds its own clients in
``create_app()`` after the fork (no ``preload_app``): the Kafka producer's thread and the Redis and
S3 connection pools must not be shared across processes.
"""

import os

from stylequeue.config import ApiConfig, load

_api = load(ApiConfig)

bind = _api.bind
workers = _api.workers
# Threads let one worker take other requests while an upload trickles in or the broker acks.
worker_class = "gthread"
threads = _api.threads
timeout = 120
graceful_timeout = 30
accesslog = "-"
wsgi_app = "api.app:create_app()"
# The runtime control socket has one default path per user: several APIs on one machine (the dev
# stack and tests, or two containers sharing a home) would fight over it. Nothing here uses it.
control_socket_disable = True


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the multiprocess metrics (prometheus-client's rule)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_starting(server):
    """The master, before any worker: empty the multiprocess metrics folder.

    Files of a previous run belong to dead pids; summed in, counters would jump and live gauges lie.
    """
    from stylequeue import metrics

    metrics.reset_multiprocess_dir()

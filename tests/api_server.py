"""The API under gunicorn (the real worker class and config), on a free port, for tests that need a server."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services import wait_for

from launcher import localstack


def healthy(port: int, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def api_server(
    env: dict[str, str], workdir: Path, workers: int = 1, *, provision: bool = True
) -> Iterator[int]:
    """Run gunicorn with ``env`` (STYLEQUEUE_* of the services); yields its port. Log: workdir/api.log.

    ``provision``: create the bucket and topics first, as a deployment's init step does.
    """
    if provision:
        from api.backing import provision as provision_services
        from api.service import Settings

        provision_services(Settings.load(env))
    port = localstack.free_port()
    metrics = workdir / "metrics"  # emptied by gunicorn at start: not the folder the log is in
    metrics.mkdir(exist_ok=True)
    full_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "gunicorn", "-c", str(localstack.GUNICORN_CONF), "-w", str(workers),
            "-b", f"127.0.0.1:{port}", "api.app:create_app()"]  # fmt: skip
    log_path = workdir / "api.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, env=full_env, cwd=localstack.REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:

            def up() -> bool:
                assert process.poll() is None, f"the API exited:\n{log_path.read_text()[-3000:]}"
                return healthy(port)

            wait_for(up, 60, 0.2, lambda: f"the API to start:\n{log_path.read_text()[-3000:]}")
            yield port
        finally:
            localstack.stop_process(process)

"""WSGI middleware in front of Flask: each request body is read in full, in time, before it is handled.

Why: the application reads uploads as it parses the form, so a client that sends its body slowly
keeps a worker thread for as long as it likes, and enough of them starve everything else
(``/healthz`` took 25 s behind ten 1-byte-a-second uploads). Buffering here first means

* a body still incomplete after ``STYLEQUEUE_BODY_TIMEOUT_S`` is answered 408 and its
  connection closed (the deadline is enforced by :class:`api.server.DeadlineSocket`, so it holds
  under gunicorn with the API's worker class; other servers read without it);
* one client address has at most ``STYLEQUEUE_MAX_UPLOADS_PER_CLIENT`` bodies in flight per
  worker process; another waits a quarter of a second for a slot, then gets 429 without its body
  being read, so a single client can never hold more than that many of a worker's threads;
* a body over ``STYLEQUEUE_MAX_REQUEST_BYTES`` is refused with 413 as soon as it is declared or
  has been counted, never read to its end;
* the application then parses a body that is already in memory (or a temporary file past
  :data:`SPOOL_BYTES`), which costs it no waiting.

Bodies are counted per process because what they hold is that process's threads. Behind the
compose file's nginx, which buffers every body itself (``client_body_timeout``) and limits
connections per client, these checks are a second line; ``STYLEQUEUE_TRUSTED_PROXIES`` makes the
client address the one nginx forwards.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from api.errors import error_body, too_large_message
from api.server import ReadDeadline
from stylequeue.config import ApiConfig

SPOOL_BYTES = 1 << 20  # bodies up to this stay in memory
SLOT_WAIT_S = 0.25  # how long a body over its client's limit waits for a slot before 429
CHUNK = 256 * 1024
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class ClientSlots:
    """Counts the bodies each client address is sending now; past ``limit`` (0: none) a request
    waits up to ``wait_s`` for a slot: a script uploading in parallel finds one free within
    milliseconds, while the extra connections of a client whose bodies trickle are refused."""

    def __init__(self, limit: int, wait_s: float = SLOT_WAIT_S) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self._active: Counter[str] = Counter()
        self._freed = threading.Condition()

    def acquire(self, client: str) -> bool:
        with self._freed:
            if self.limit and not self._freed.wait_for(
                lambda: self._active[client] < self.limit, timeout=self.wait_s
            ):
                return False
            self._active[client] += 1
            return True

    def release(self, client: str) -> None:
        with self._freed:
            self._active[client] -= 1
            if self._active[client] <= 0:
                del self._active[client]
            self._freed.notify_all()


class BodyRefused(Exception):
    def __init__(self, status: str, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def declared_length(environ: dict) -> int | None:
    """The body's Content-Length (None: chunked or absent; a malformed one counts as absent)."""
    raw = environ.get("CONTENT_LENGTH") or ""
    return int(raw) if raw.isdigit() else None


def has_body(environ: dict) -> bool:
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() or bool(declared_length(environ))


class BodyBuffer:
    def __init__(self, app: WSGIApp, cfg: ApiConfig) -> None:
        self.app = app
        self.timeout_s = cfg.body_timeout_s
        self.max_bytes = cfg.max_request_bytes
        self.slots = ClientSlots(cfg.max_uploads_per_client)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        if not has_body(environ):
            if hasattr(sock, "disarm"):
                sock.disarm()
            return self.app(environ, start_response)
        try:
            self._buffer(environ, sock)
        except BodyRefused as refused:
            if hasattr(sock, "expire"):  # the connection closes; what is left of the body is not waited for
                sock.expire()
            return _refusal(refused, start_response)
        return self.app(environ, start_response)

    def _buffer(self, environ: dict, sock: Any) -> None:
        """Replace ``wsgi.input`` with the whole body, read within the deadline and the size limit."""
        length = declared_length(environ)
        if length is not None and length > self.max_bytes:
            raise _too_large(self.max_bytes)
        client = environ.get("REMOTE_ADDR", "")
        if not self.slots.acquire(client):
            raise BodyRefused(
                "429 Too Many Requests",
                "too_many_uploads",
                f"this client is already sending {self.slots.limit} request bodies "
                "(STYLEQUEUE_MAX_UPLOADS_PER_CLIENT); wait for one to finish",
                retry_after=1,
            )
        try:
            body = self._read(environ, sock, length)
        finally:
            self.slots.release(client)
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(body.tell())
        environ["wsgi.input_terminated"] = True
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        body.seek(0)

    def _read(self, environ: dict, sock: Any, length: int | None) -> Any:
        if hasattr(sock, "arm"):
            sock.arm(self.timeout_s)
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        stream, left = environ["wsgi.input"], self.max_bytes + 1 if length is None else length
        try:
            while left > 0:
                chunk = stream.read(min(CHUNK, left))
                if not chunk:
                    break
                body.write(chunk)
                left -= len(chunk)
        except ReadDeadline:
            raise BodyRefused(
                "408 Request Timeout",
                "request_timeout",
                f"the request body did not arrive within {self.timeout_s:g} s (STYLEQUEUE_BODY_TIMEOUT_S)",
            ) from None
        if hasattr(sock, "disarm"):
            sock.disarm()
        if body.tell() > self.max_bytes:
            raise _too_large(self.max_bytes)
        return body


def _too_large(limit: int) -> BodyRefused:
    return BodyRefused("413 Content Too Large", "too_large", too_large_message(limit))


def _refusal(refused: BodyRefused, start_response: Callable) -> list[bytes]:
    body = json.dumps(error_body(refused.code, refused.message)).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if refused.retry_after is not None:
        headers.append(("Retry-After", str(refused.retry_after)))
    start_response(refused.status, headers)
    return [body]

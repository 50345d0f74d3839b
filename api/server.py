"""The gunicorn worker the API runs on: gthread, plus read deadlines and JSON error pages.

gunicorn's threaded worker gives each request a thread from the moment its first byte arrives,
and reads the request line, the headers and the body with blocking ``recv`` calls that have no
time limit. Ten clients sending one byte a second therefore held all of a worker's threads for as
long as they liked, and health checks queued behind them. :class:`Worker` changes two things:

* every connection's socket is a :class:`DeadlineSocket`: a ``recv`` past its deadline fails as a
  connection reset, which gunicorn answers by closing the connection. The worker arms it with
  ``STYLEQUEUE_HEADER_TIMEOUT_S`` for the request line and headers; :mod:`api.middleware` re-arms
  it with ``STYLEQUEUE_BODY_TIMEOUT_S`` while it reads the body (a 408 when that passes). The
  deadline is total, not per ``recv``: a trickle of one byte a second does not extend it.
* gunicorn's own error pages (a request line over ``limit_request_line``: 414; headers too
  large: 431; malformed requests: 400) are JSON in the API's error format, not HTML.

Behind compose's nginx these deadlines are a second line (:mod:`api.middleware` says why).
"""

from __future__ import annotations

import errno
import json
import socket
import time

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from api.errors import error_body
from stylequeue.config import ApiConfig, load

# gunicorn's own statuses, as codes of the API's error body.
GUNICORN_CODES = {400: "bad_request", 403: "forbidden", 414: "uri_too_long", 417: "expectation_failed",
                  431: "headers_too_large", 500: "internal", 501: "not_implemented"}  # fmt: skip


class ReadDeadline(ConnectionResetError):
    """The request did not arrive in time; gunicorn treats it as a reset and closes the connection."""

    def __init__(self) -> None:
        super().__init__(errno.ECONNRESET, "the request did not arrive within its deadline")


class DeadlineSocket(socket.socket):
    """A connection socket whose reads fail once ``deadline`` (``time.monotonic()``) has passed."""

    deadline: float | None = None

    @classmethod
    def adopt(cls, sock: socket.socket) -> DeadlineSocket:
        """The same connection as a DeadlineSocket (``sock`` is detached and unusable afterwards)."""
        return cls(sock.family, sock.type, sock.proto, fileno=sock.detach())

    def arm(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def expire(self) -> None:
        """No more waiting for this connection: the rest of a refused body is not read."""
        self.deadline = 0.0

    def disarm(self) -> None:
        self.deadline = None

    def settle(self) -> None:
        """After a request: an expired deadline stays (the connection is closing), else none."""
        if self.deadline is not None and self.deadline > time.monotonic():
            self.disarm()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.deadline is None:
            return super().recv(bufsize, flags)
        # Past the deadline, only what has already arrived is read, never waited for: gunicorn
        # drains a closing connection on its main thread (up to 2 s each), which a client that
        # keeps trickling would otherwise turn into a stall of the whole worker.
        # (A socket timeout would make Python wait for data before reading: 0 means none.)
        previous = self.gettimeout()
        self.settimeout(max(0.0, self.deadline - time.monotonic()))
        try:
            return super().recv(bufsize, flags)
        except (BlockingIOError, TimeoutError):  # timeout 0: no data yet; else the deadline passed
            raise ReadDeadline() from None
        finally:
            self.settimeout(previous)

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:  # noqa: ANN001 - socket's own signature
        data = self.recv(nbytes or len(buffer), flags)
        buffer[: len(data)] = data
        return len(data)


def write_json_error(sock: socket.socket, status: int, reason: str, message: str) -> None:
    """gunicorn's ``util.write_error`` with the API's JSON error body instead of an HTML page."""
    code = GUNICORN_CODES.get(status, "error")
    text = "internal server error" if status >= 500 else message or reason
    body = json.dumps(error_body(code, text)).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    util.write_nonblock(sock, head.encode("latin-1") + body)


class Worker(ThreadWorker):
    def init_process(self) -> None:
        self.header_timeout_s = load(ApiConfig).header_timeout_s
        # gunicorn's error pages come from this one function; in this process they are JSON.
        util.write_error = write_json_error
        super().init_process()

    def handle(self, conn):  # noqa: ANN001, ANN201 - gunicorn's TConn; its _DEFER / bool answer
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket.adopt(conn.sock)
        conn.sock.arm(self.header_timeout_s)
        try:
            return super().handle(conn)
        finally:
            conn.sock.settle()

"""Slow and hostile clients against the real server: gunicorn with the API's worker (api.server) and config.

Sockets that trickle their bytes, as a slowloris client does; the deadlines are short (2 s) so the
tests are quick. One worker with four threads: the smallest pool any client could try to exhaust.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest
from api_server import api_server, healthy

pytestmark = pytest.mark.integration

DEADLINE_S = 2.0


@pytest.fixture
def server(service_env, tmp_path):
    """The API under gunicorn on a free port: ``(host, port)``; its log is in tmp_path/api.log."""
    env = {**service_env, "STYLEQUEUE_BODY_TIMEOUT_S": str(DEADLINE_S),
           "STYLEQUEUE_HEADER_TIMEOUT_S": str(DEADLINE_S), "STYLEQUEUE_API_THREADS": "4"}  # fmt: skip
    with api_server(env, tmp_path) as port:
        yield "127.0.0.1", port


def health_time(port: int) -> float:
    """Seconds /healthz takes to answer (30 s: it did not)."""
    started = time.monotonic()
    assert healthy(port, timeout=30)
    return time.monotonic() - started


def upload_head(length: int = 100_000) -> bytes:
    return (
        "POST /api/v1/jobs HTTP/1.1\r\nHost: test\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


class Trickle(threading.Thread):
    """A client sending ``head`` and then one byte every ``interval`` s, until answered or stopped."""

    def __init__(self, port: int, head: bytes, interval: float = 0.25, source: str = "127.0.0.1") -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
        self.head, self.interval = head, interval
        self.answer = b""
        self.answered_after: float | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        self.sock.settimeout(self.interval)
        try:
            self.sock.sendall(self.head)
            while not self.stopped.is_set():
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    self.sock.sendall(b"x")
                    continue
                if not data:
                    break
                self.answer += data
                self.answered_after = self.answered_after or time.monotonic() - started
        except OSError:  # the server reset or closed the connection
            pass
        self.answered_after = self.answered_after or time.monotonic() - started

    @property
    def status(self) -> int | None:
        return int(self.answer.split(b" ", 2)[1]) if self.answer.startswith(b"HTTP/1.1 ") else None

    def error(self) -> dict:
        return json.loads(self.answer.split(b"\r\n\r\n", 1)[1])["error"]

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
        self.sock.close()


def test_a_body_arriving_too_slowly_is_cut_off_with_408(server):
    _, port = server
    client = Trickle(port, upload_head())
    client.start()
    client.join(timeout=DEADLINE_S + 10)
    client.stop()
    assert client.status == 408, client.answer[:300]
    assert client.error()["code"] == "request_timeout"
    assert "STYLEQUEUE_BODY_TIMEOUT_S" in client.error()["message"]
    assert DEADLINE_S <= client.answered_after < DEADLINE_S + 3


def test_one_client_uploading_slowly_on_many_connections_gets_429_and_health_stays_fast(server):
    """The issue's probe: 10 connections at a few bytes a second used to make /healthz take 25 s."""
    _, port = server
    clients = [Trickle(port, upload_head()) for _ in range(10)]
    try:
        for client in clients:
            client.start()
        time.sleep(0.5)
        times = [health_time(port) for _ in range(5)]
        refused = [c for c in clients if c.status == 429]
    finally:
        for client in clients:
            client.stop()
    assert max(times) < 1.0, times  # the refused ones each waited 0.25 s for a slot
    # Two bodies in flight per client and worker (STYLEQUEUE_MAX_UPLOADS_PER_CLIENT): the rest at once.
    assert len(refused) == 8, [c.status for c in clients]
    assert all(b"Retry-After: 1" in c.answer and c.error()["code"] == "too_many_uploads" for c in refused)


def test_slow_uploads_from_many_addresses_hold_threads_no_longer_than_the_deadline(server):
    """Ten addresses (127.0.0.2-11) outnumber the four threads; each is cut off at the deadline."""
    _, port = server
    clients = [Trickle(port, upload_head(), source=f"127.0.0.{i}") for i in range(2, 12)]
    try:
        for client in clients:
            client.start()
        time.sleep(0.3)
        waited = health_time(port)
    finally:
        for client in clients:
            client.stop()
    assert waited < DEADLINE_S + 2, waited
    assert {c.status for c in clients} <= {408, None}, [c.status for c in clients]


def test_headers_arriving_too_slowly_close_the_connection(server):
    _, port = server
    client = Trickle(port, b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    client.start()
    client.join(timeout=DEADLINE_S + 10)
    client.stop()
    assert client.answer == b"" and client.answered_after < DEADLINE_S + 3


def test_server_level_errors_are_json(server):
    """A request line over gunicorn's limit (8190 bytes) gets its 414 in the API's error format."""
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /api/v1/jobs/{'a' * 9000} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        answer = b""
        while b"}}" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 414") and b"Content-Type: application/json" in head
    assert json.loads(body)["error"]["code"] == "uri_too_long"


def test_an_id_of_5000_characters_reaches_the_api_and_is_json_404(server):
    _, port = server
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/jobs/{'a' * 5000}", timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and exc.headers["Content-Type"] == "application/json"
        assert "at most 64" in json.load(exc)["error"]["message"]
    else:
        pytest.fail("expected 404")

"""Tests of the small HTTP/1.1 client against a one-connection socket server on 127.0.0.1."""

from __future__ import annotations

import queue
import socket
import threading
from typing import Iterator, Optional

import pytest

from telemetry_ext import lambda_http
from telemetry_ext.errors import LambdaApiError

WAIT_S = 5.0


class OneShotServer:
    """A server that accepts one connection, reads one request, sends ``response`` and closes.

    With ``response=None`` it reads the request and sends nothing until ``close``.
    The raw request bytes go to ``requests``.
    """

    def __init__(self, response: Optional[bytes]) -> None:
        self.response = response
        self.requests: queue.Queue[bytes] = queue.Queue()
        self._release = threading.Event()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(1)
        self._socket.settimeout(WAIT_S)
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self._socket.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(WAIT_S)
            self.requests.put(_read_request(connection))
            if self.response is None:
                self._release.wait(WAIT_S)
                return
            connection.sendall(self.response)

    def close(self) -> None:
        self._release.set()
        self._thread.join(WAIT_S)
        self._socket.close()


def _read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def serve() -> Iterator:
    servers: list[OneShotServer] = []

    def start(response: Optional[bytes]) -> OneShotServer:
        server = OneShotServer(response)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_request_reads_content_length_body(serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Extra: one\r\n\r\nhello")

    response = lambda_http.request(server.address, "GET", "/path")

    assert response.status == 200
    assert response.body == b"hello"
    assert response.headers["x-extra"] == "one"


def test_request_reads_chunked_body(serve) -> None:
    server = serve(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
    )

    response = lambda_http.request(server.address, "GET", "/path")

    assert response.status == 200
    assert response.body == b"hello, world"


def test_request_reads_body_to_eof(serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")

    response = lambda_http.request(server.address, "GET", "/path")

    assert response.body == b"until the end"


def test_request_keeps_error_status(serve) -> None:
    server = serve(b'HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}')

    response = lambda_http.request(server.address, "GET", "/path")

    assert response.status == 403


@pytest.mark.parametrize(
    "raw_response",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 OK fine\r\n\r\n",
        b"SMTP 220 ready\r\n\r\n",
        b"",
    ],
)
def test_request_bad_status_line_raises(serve, raw_response: bytes) -> None:
    server = serve(raw_response)

    with pytest.raises(LambdaApiError):
        lambda_http.request(server.address, "GET", "/path")


def test_request_bad_content_length_raises(serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\nbody")

    with pytest.raises(LambdaApiError):
        lambda_http.request(server.address, "GET", "/path")


def test_request_short_body_raises(serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")

    with pytest.raises(LambdaApiError, match="5 of 10"):
        lambda_http.request(server.address, "GET", "/path")


def test_request_truncated_chunk_raises(serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort")

    with pytest.raises(LambdaApiError):
        lambda_http.request(server.address, "GET", "/path")


def test_request_connection_refused_raises() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(LambdaApiError) as caught:
        lambda_http.request(f"127.0.0.1:{port}", "GET", "/path", timeout_s=1.0)

    assert isinstance(caught.value.__cause__, OSError)


def test_request_timeout_raises(serve) -> None:
    server = serve(None)

    with pytest.raises(LambdaApiError, match="timed out"):
        lambda_http.request(server.address, "GET", "/path", timeout_s=0.2)


def test_request_invalid_address_raises() -> None:
    with pytest.raises(LambdaApiError, match="host:port"):
        lambda_http.request("127.0.0.1", "GET", "/path")


def test_request_sends_headers_and_body(serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    lambda_http.request(
        server.address,
        "POST",
        "/2020-01-01/extension/register",
        body=b'{"events": []}',
        headers={"Lambda-Extension-Name": "telemetry-ext", "Content-Type": "application/json"},
    )
    raw = server.requests.get(timeout=WAIT_S)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")

    assert lines[0] == b"POST /2020-01-01/extension/register HTTP/1.1"
    assert f"Host: {server.address}".encode() in lines
    assert b"Connection: close" in lines
    assert b"Lambda-Extension-Name: telemetry-ext" in lines
    assert b"Content-Type: application/json" in lines
    assert b"Content-Length: 14" in lines
    assert body == b'{"events": []}'


def test_request_put_without_body_sends_zero_length(serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    lambda_http.request(server.address, "PUT", "/x")
    raw = server.requests.get(timeout=WAIT_S)

    assert b"\r\nContent-Length: 0\r\n" in raw


def test_request_get_sends_no_length(serve) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    lambda_http.request(server.address, "GET", "/x")
    raw = server.requests.get(timeout=WAIT_S)

    assert b"Content-Length" not in raw

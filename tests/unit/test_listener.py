"""Tests of the Telemetry API listener on 127.0.0.1, driven with http.client and raw sockets."""

from __future__ import annotations

import http.client
import queue
import socket
from typing import Any, Iterator

import pytest

from telemetry_ext import listener as listener_module
from telemetry_ext.listener import TelemetryListener, resolve_listener_host

WAIT_S = 5.0


class Received:
    """Collects what the listener hands to on_body and on_reject."""

    def __init__(self) -> None:
        self.bodies: queue.Queue[bytes] = queue.Queue()
        self.rejects: queue.Queue[tuple[str, int]] = queue.Queue()

    def on_body(self, body: bytes) -> None:
        self.bodies.put(body)

    def on_reject(self, reason: str, size: int) -> None:
        self.rejects.put((reason, size))


@pytest.fixture
def received() -> Received:
    return Received()


@pytest.fixture
def listener(received: Received) -> Iterator[TelemetryListener]:
    server = TelemetryListener("127.0.0.1", 0, received.on_body, received.on_reject)
    server.start()
    yield server
    server.close()


def connect(server: TelemetryListener) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_S)


def raw_exchange(server: TelemetryListener, data: bytes) -> bytes:
    """Send ``data`` on a new connection and return everything read until the listener closes it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as connection:
        connection.sendall(data)
        chunks = []
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_listener_binds_free_port(listener: TelemetryListener) -> None:
    assert listener.port > 0


def test_post_answered_and_body_delivered(listener: TelemetryListener, received: Received) -> None:
    body = b'[{"time": "2024-03-05T06:07:08.901Z", "type": "function", "record": "hello"}]'
    connection = connect(listener)

    connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    connection.close()

    assert response.status == 200
    assert received.bodies.get(timeout=WAIT_S) == body


def test_keep_alive_serves_two_requests(listener: TelemetryListener, received: Received) -> None:
    connection = connect(listener)

    connection.request("POST", "/", body=b"[1]")
    first = connection.getresponse()
    first.read()
    first_socket = connection.sock
    connection.request("POST", "/", body=b"[2]")
    second = connection.getresponse()
    second.read()
    second_socket = connection.sock
    connection.close()

    assert first.status == 200
    assert second.status == 200
    assert first_socket is second_socket
    assert received.bodies.get(timeout=WAIT_S) == b"[1]"
    assert received.bodies.get(timeout=WAIT_S) == b"[2]"


def test_chunked_body_joined(listener: TelemetryListener, received: Received) -> None:
    connection = connect(listener)

    connection.request("POST", "/", body=iter([b'[{"a": ', b"1}", b"]"]), encode_chunked=True)
    response = connection.getresponse()
    response.read()
    connection.close()

    assert response.status == 200
    assert received.bodies.get(timeout=WAIT_S) == b'[{"a": 1}]'


def test_connection_close_honoured(listener: TelemetryListener, received: Received) -> None:
    reply = raw_exchange(listener, b"POST / HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]")

    assert reply.startswith(b"HTTP/1.1 200 ")
    assert received.bodies.get(timeout=WAIT_S) == b"[]"


def test_http10_closes_after_reply(listener: TelemetryListener) -> None:
    reply = raw_exchange(listener, b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n[]")

    assert reply.startswith(b"HTTP/1.1 200 ")


def test_empty_body_not_delivered(listener: TelemetryListener, received: Received) -> None:
    connection = connect(listener)

    connection.request("POST", "/", body=b"")
    connection.getresponse().read()
    connection.request("POST", "/", body=b"[3]")
    connection.getresponse().read()
    connection.close()

    assert received.bodies.get(timeout=WAIT_S) == b"[3]"


def test_oversized_body_gets_413(
    listener: TelemetryListener, received: Received, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener_module, "MAX_BODY_BYTES", 100)
    body = b"[" + b"1," * 200 + b"1]"

    reply = raw_exchange(listener, b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    assert reply.startswith(b"HTTP/1.1 413 ")
    assert received.rejects.get(timeout=WAIT_S) == ("request body too large", len(body))
    assert received.bodies.empty()


def test_oversized_body_413_over_http_client(
    listener: TelemetryListener, received: Received, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener_module, "MAX_BODY_BYTES", 100)
    connection = connect(listener)

    connection.request("POST", "/", body=b"x" * 5_000)
    response = connection.getresponse()
    response.read()
    connection.close()

    assert response.status == 413
    assert received.rejects.get(timeout=WAIT_S)[0] == "request body too large"


def test_oversized_chunked_body_gets_413(
    listener: TelemetryListener, received: Received, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener_module, "MAX_BODY_BYTES", 100)
    chunked = b"40\r\n" + b"a" * 64 + b"\r\n40\r\n" + b"b" * 64 + b"\r\n0\r\n\r\n"

    reply = raw_exchange(listener, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)

    assert reply.startswith(b"HTTP/1.1 413 ")
    assert received.rejects.get(timeout=WAIT_S)[0] == "request body too large"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /\r\n\r\n",
        b"POST / HTTP/1.1 extra\r\n\r\n",
    ],
)
def test_garbage_request_line_gets_400(
    listener: TelemetryListener, received: Received, request_bytes: bytes
) -> None:
    reply = raw_exchange(listener, request_bytes)

    assert reply.startswith(b"HTTP/1.1 400 ")
    assert received.rejects.get(timeout=WAIT_S)[0] == "invalid request line"


def test_bad_content_length_gets_400(listener: TelemetryListener, received: Received) -> None:
    reply = raw_exchange(listener, b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n")

    assert reply.startswith(b"HTTP/1.1 400 ")
    assert received.rejects.get(timeout=WAIT_S)[0] == "invalid Content-Length"


def test_close_stops_accepting(received: Received) -> None:
    server = TelemetryListener("127.0.0.1", 0, received.on_body, received.on_reject)
    server.start()
    port = server.port

    server.close()

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()


def test_close_ends_accept_thread(received: Received) -> None:
    server = TelemetryListener("127.0.0.1", 0, received.on_body, received.on_reject)
    server.start()

    server.close()
    server._thread.join(WAIT_S)

    assert not server._thread.is_alive()


# --- resolve_listener_host -----------------------------------------------------------------


def fail_getaddrinfo(*args: Any, **kwargs: Any) -> Any:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_resolve_configured_host_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: calls.append(args) or [])

    host = resolve_listener_host("127.0.0.5", "sandbox.localdomain")

    assert host == "127.0.0.5"
    assert calls == []


def test_resolve_unresolvable_gives_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fail_getaddrinfo)

    host = resolve_listener_host(None, "sandbox.localdomain")

    assert host == "127.0.0.1"


def test_resolve_returns_resolved_address(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def fake_getaddrinfo(name: str, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(name)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.100.1", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

    host = resolve_listener_host(None, "sandbox.localdomain")

    assert host == "169.254.100.1"
    assert calls == ["sandbox.localdomain"]


def test_resolve_skips_wildcard_address(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("0.0.0.0", 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)

    host = resolve_listener_host("", "sandbox.localdomain")

    assert host == "127.0.0.1"

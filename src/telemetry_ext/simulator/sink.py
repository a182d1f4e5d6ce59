"""A local HTTP destination that records what arrives, with fault modes for tests.

Modes:
- ``ok``: responds 200.
- ``slow``: responds after ``delay_ms``.
- ``status``: responds ``status_code``, with ``Retry-After`` when ``retry_after`` is set.
- ``hang``: reads the request and does not respond until the sink stops.
- ``refuse``: closes the listening socket, so connections are refused.
- ``close_idle``: responds, then closes the keep-alive connection.

Bodies may be a JSON array, NDJSON or gzip of either.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs hold the body back by about 40 ms.
    disable_nagle_algorithm = True
    server: "Sink"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:
        sink = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        sink.requests += 1
        mode = sink.mode
        if mode == "hang":
            sink.stopped.wait(600)
            self.close_connection = True
            return
        if mode == "slow":
            sink.stopped.wait(sink.delay_ms / 1000.0)
        if mode == "status":
            self.send_response(sink.status_code)
            if sink.retry_after is not None:
                self.send_header("Retry-After", sink.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        sink.store(self.path, body, dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        if mode == "close_idle":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()


class Sink(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, mode: str = "ok", delay_ms: int = 0, status_code: int = 503, retry_after: Optional[str] = None) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.mode = mode
        self.delay_ms = delay_ms
        self.status_code = status_code
        self.retry_after = retry_after
        self.records: list[dict] = []
        self.bodies: list[tuple[str, dict]] = []
        self.payloads: list[tuple[str, bytes]] = []  # Request path and decoded body.
        self.requests = 0
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self.serve_forever, name="sim-sink", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/ingest"

    def start(self) -> "Sink":
        if self.mode == "refuse":
            port = self.server_address[1]
            self.socket.close()
            # Keep the port number but let nothing listen on it.
            self.server_address = ("127.0.0.1", port)
            return self
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.mode != "refuse":
            self.shutdown()
        self.server_close()

    def set_mode(self, mode: str) -> None:
        self.mode = mode

    def store(self, path: str, body: bytes, headers: dict) -> None:
        text = body.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
            records = parsed if isinstance(parsed, list) else [parsed]
        except ValueError:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        with self._changed:
            self.bodies.append((path, headers))
            self.payloads.append((path, body))
            self.records.extend(r for r in records if isinstance(r, dict))
            self._changed.notify_all()

    def wait_for(self, predicate: Any, timeout_s: float) -> bool:
        """Wait until ``predicate(records)`` is true, or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate(self.records):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PaymentStub(ThreadingHTTPServer):
    """The payment service that the example function charges; it approves every charge."""

    daemon_threads = True

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                order = json.loads(self.rfile.read(length) or b"{}")
                body = json.dumps({"status": "charged", "orderId": order.get("orderId")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, name="sim-payment", daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/charge"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

"""A fake of the Lambda Extensions and Telemetry APIs: an http.server on 127.0.0.1 in a thread.

Tests queue a canned response per ``(method, path)`` and read the requests it received.
"""

from __future__ import annotations

import http.server
import queue
import threading
from dataclasses import dataclass, field
from typing import Optional

WAIT_S = 5.0


@dataclass
class CannedResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # Lower-case names.
    body: bytes


class FakeLambdaApi:
    """A server that sends each request the next canned response for its method and path, else 404."""

    def __init__(self) -> None:
        self.received: queue.Queue[ReceivedRequest] = queue.Queue()
        self._responses: dict[tuple[str, str], list[CannedResponse]] = {}
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def respond(
        self, method: str, path: str, status: int = 200, body: bytes = b"", headers: Optional[dict[str, str]] = None
    ) -> None:
        with self._lock:
            self._responses.setdefault((method, path), []).append(CannedResponse(status, body, headers or {}))

    def next_request(self) -> ReceivedRequest:
        return self.received.get(timeout=WAIT_S)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT_S)

    def _take_response(self, method: str, path: str) -> CannedResponse:
        with self._lock:
            canned = self._responses.get((method, path))
            if canned:
                return canned.pop(0)
        return CannedResponse(404, b'{"errorMessage": "no canned response", "errorType": "Test.NotFound"}')

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                fake.received.put(ReceivedRequest(self.command, self.path, headers, body))
                canned = fake._take_response(self.command, self.path)
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class name
                pass

        return Handler

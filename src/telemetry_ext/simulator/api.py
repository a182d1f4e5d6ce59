"""HTTP front of the sandbox: Runtime API (2018-06-01), Extensions API (2020-01-01) and
Telemetry API (2022-07-01) on one loopback port, as Lambda serves them."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from telemetry_ext.simulator.sandbox import ApiError, Sandbox

_RUNTIME = "/2018-06-01/runtime"
_EXTENSION = "/2020-01-01/extension"
_TELEMETRY = "/2022-07-01/telemetry"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs hold the body back by about 40 ms.
    disable_nagle_algorithm = True
    server: "ApiServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        sandbox = self.server.sandbox
        if sandbox is None:
            self._send_json(503, {"errorType": "Sandbox.NotReady", "errorMessage": "the sandbox is not ready"})
            return
        try:
            self._route(sandbox, method, self.path.split("?")[0], body)
        except ApiError as error:
            try:
                self._send_json(error.status, {"errorMessage": str(error), "errorType": error.error_type})
            except (BrokenPipeError, ConnectionResetError):
                pass
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, sandbox: Sandbox, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path == f"{_EXTENSION}/register":
            identifier, info = sandbox.register(self.headers.get("Lambda-Extension-Name"), body)
            self._send_json(200, info, {"Lambda-Extension-Identifier": identifier})
        elif method == "GET" and path == f"{_EXTENSION}/event/next":
            event = sandbox.next_event(self.headers.get("Lambda-Extension-Identifier"))
            self._send_json(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})
        elif method == "POST" and path in (f"{_EXTENSION}/init/error", f"{_EXTENSION}/exit/error"):
            kind = path.rsplit("/", 2)[1]
            sandbox.extension_error(
                self.headers.get("Lambda-Extension-Identifier"), kind, self.headers.get("Lambda-Extension-Function-Error-Type")
            )
            self._send_json(202, {"status": "OK"})
        elif method == "PUT" and path == _TELEMETRY:
            status = sandbox.subscribe_telemetry(self.headers.get("Lambda-Extension-Identifier"), body)
            if status == 202:
                self._send_json(202, {"errorMessage": "Telemetry API is not supported", "errorType": "Telemetry.NotSupported"})
            else:
                self._send_json(200, "OK")
        elif method == "GET" and path == f"{_RUNTIME}/invocation/next":
            invocation = sandbox.runtime_next()
            headers = {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": sandbox.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_header,
            }
            self._send_raw(200, invocation.payload, "application/json", headers)
        elif method == "POST" and path.startswith(f"{_RUNTIME}/invocation/") and path.endswith("/response"):
            sandbox.runtime_response(path.split("/")[4], body)
            self._send_json(202, {"status": "OK"})
        elif method == "POST" and path.startswith(f"{_RUNTIME}/invocation/") and path.endswith("/error"):
            sandbox.runtime_error(path.split("/")[4], body)
            self._send_json(202, {"status": "OK"})
        elif method == "POST" and path == f"{_RUNTIME}/init/error":
            sandbox.runtime_init_error_reported(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
            self._send_json(202, {"status": "OK"})
        else:
            self._send_json(404, {"errorType": "NotFound", "errorMessage": f"{method} {path} is not an API route"})

    def _send_json(self, status: int, payload: Any, headers: Optional[dict[str, str]] = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(self, status: int, body: bytes, content_type: str, headers: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sandbox: Optional[Sandbox] = None
        self._thread = threading.Thread(target=self.serve_forever, name="sim-api", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that went away (a killed extension, a stopped runtime) are expected here.
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

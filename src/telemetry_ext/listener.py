"""The HTTP endpoint that the Telemetry API POSTs batches of events to.

Threads: ``telemetry-listener`` accepts connections and starts one ``telemetry-conn-N`` thread
per connection (Lambda keeps a few alive). A connection thread reads each request body, hands
the raw bytes to ``on_body`` and responds 200 straight away. ``on_body`` must not block: parsing
and everything after it run on the processor thread, and no backend I/O ever runs here.

The listener never logs per request, because the extension's own output can come back to it
as ``extension`` telemetry and feed a loop.
"""

from __future__ import annotations

import socket
import threading
from typing import Callable, Optional

# Lambda sends bodies of up to about twice the subscription's maxBytes (1 MiB at most).
MAX_BODY_BYTES = 16 * 1024 * 1024
_MAX_HEADER_BYTES = 64 * 1024
_IDLE_TIMEOUT_S = 600.0

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

BodyHandler = Callable[[bytes], None]
RejectHandler = Callable[[str, int], None]


class _BadRequest(Exception):
    def __init__(self, reason: str, size: int = 0, response: bytes = _BAD_REQUEST) -> None:
        super().__init__(reason)
        self.reason = reason
        self.size = size
        self.response = response


class TelemetryListener:
    """Accepts Telemetry API POSTs on ``host:port`` (port 0 picks a free port)."""

    def __init__(self, host: str, port: int, on_body: BodyHandler, on_reject: Optional[RejectHandler] = None) -> None:
        self._on_body = on_body
        self._on_reject = on_reject
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(64)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._closed = threading.Event()
        self._connection_count = 0
        self._thread = threading.Thread(target=self._accept_loop, name="telemetry-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop accepting connections. Requests already being read may still reach ``on_body``."""
        self._closed.set()
        try:
            # close() alone leaves the socket listening while the accept thread is blocked in
            # accept(); shutdown() wakes that thread and stops the listening at once (Linux).
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._socket.close()
        except OSError:
            pass

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                if self._closed.is_set():
                    return
                continue
            self._connection_count += 1
            threading.Thread(
                target=self._serve,
                args=(connection,),
                name=f"telemetry-conn-{self._connection_count}",
                daemon=True,
            ).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(_IDLE_TIMEOUT_S)
        reader = connection.makefile("rb")
        try:
            while not self._closed.is_set():
                try:
                    request = self._read_request(reader)
                except _BadRequest as error:
                    if self._on_reject is not None:
                        self._on_reject(error.reason, error.size)
                    connection.sendall(error.response)
                    return
                if request is None:
                    return
                body, keep_alive = request
                # on_body only queues the body, so the response goes out at once. While the queue
                # is full it delays the response for a bounded time: Lambda waits for it before
                # sending more, which slows the stream down instead of losing events.
                if body:
                    self._on_body(body)
                connection.sendall(_OK)
                if not keep_alive:
                    return
        except OSError:
            return
        finally:
            reader.close()
            connection.close()

    def _read_request(self, reader) -> Optional[tuple[bytes, bool]]:  # type: ignore[no-untyped-def]
        request_line = reader.readline(_MAX_HEADER_BYTES)
        if not request_line:
            return None
        if not request_line.endswith(b"\n") or len(request_line.split()) != 3:
            raise _BadRequest("invalid request line")
        version = request_line.split()[2]
        keep_alive = version == b"HTTP/1.1"
        content_length = 0
        chunked = False
        header_bytes = 0
        while True:
            line = reader.readline(_MAX_HEADER_BYTES)
            header_bytes += len(line)
            if header_bytes > _MAX_HEADER_BYTES:
                raise _BadRequest("request headers larger than 64 KiB")
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                return None
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                if not value.isdigit():
                    raise _BadRequest("invalid Content-Length")
                content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.lower() == b"chunked"
            elif name == b"connection":
                keep_alive = value.lower() != b"close" and (keep_alive or value.lower() == b"keep-alive")

        if chunked:
            return self._read_chunked(reader), keep_alive
        if content_length > MAX_BODY_BYTES:
            raise _BadRequest("request body too large", content_length, _TOO_LARGE)
        body = reader.read(content_length) if content_length else b""
        if len(body) != content_length:
            return None
        return body, keep_alive

    def _read_chunked(self, reader) -> bytes:  # type: ignore[no-untyped-def]
        chunks = []
        total = 0
        while True:
            size_line = reader.readline(1024)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest("invalid chunk size") from None
            if size == 0:
                while reader.readline(_MAX_HEADER_BYTES) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest("request body too large", total, _TOO_LARGE)
            chunks.append(reader.read(size))
            reader.readline(8)


def resolve_listener_host(configured: Optional[str], sandbox_host: str) -> str:
    """Return the address to bind: the configured one, the sandbox name's address, or 127.0.0.1.

    Never a wildcard address: outside Lambda that would expose the listener on every interface.
    """
    if configured:
        return configured
    try:
        infos = socket.getaddrinfo(sandbox_host, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return "127.0.0.1"
    for info in infos:
        address = info[4][0]
        if address not in ("0.0.0.0", ""):
            return address
    return "127.0.0.1"

"""A small HTTP/1.1 client for the Lambda APIs on the sandbox's loopback address.

``http.client`` would pull the ``email`` package into the start-up path and cost several
milliseconds of cold start; the Extensions and Telemetry APIs need only one request per
connection with a JSON body, which this module covers. Every request sends
``Connection: close`` and reads the answer by ``Content-Length``, chunked framing, or to EOF.
"""

from __future__ import annotations

import socket
from typing import Mapping, NamedTuple, Optional

from telemetry_ext.errors import LambdaApiError

_MAX_HEADER_BYTES = 64 * 1024


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # Lower-case names.
    body: bytes


def request(
    api_address: str,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
    timeout_s: Optional[float] = 5.0,
) -> Response:
    """Send one request to ``api_address`` (``host:port``) and return the whole response.

    ``timeout_s=None`` blocks without limit; only the ``/event/next`` long poll may use it.
    Raises LambdaApiError when the connection fails, times out or the response is not HTTP.
    """
    host, _, port_text = api_address.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise LambdaApiError(f"invalid API address {api_address!r}: expected host:port") from None

    lines = [f"{method} {path} HTTP/1.1", f"Host: {api_address}", "Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    payload = body or b""
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(payload)}")
    raw_request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload

    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            connection.sendall(raw_request)
            return _read_response(connection)
    except socket.timeout as error:
        raise LambdaApiError(f"{method} {path} timed out after {timeout_s} s") from error
    except OSError as error:
        raise LambdaApiError(f"{method} {path} failed: {error}") from error


def _read_response(connection: socket.socket) -> Response:
    reader = connection.makefile("rb")
    status_line = reader.readline(_MAX_HEADER_BYTES)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise LambdaApiError(f"invalid HTTP status line {status_line[:80]!r}")
    status = int(parts[1])

    headers: dict[str, str] = {}
    header_bytes = 0
    while True:
        line = reader.readline(_MAX_HEADER_BYTES)
        header_bytes += len(line)
        if header_bytes > _MAX_HEADER_BYTES:
            raise LambdaApiError("response headers are larger than 64 KiB")
        if line in (b"\r\n", b"\n", b""):
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()

    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(reader)
    elif "content-length" in headers:
        length_text = headers["content-length"]
        if not length_text.isdigit():
            raise LambdaApiError(f"invalid Content-Length {length_text[:40]!r}")
        length = int(length_text)
        body = reader.read(length)
        if len(body) != length:
            raise LambdaApiError(f"connection closed after {len(body)} of {length} body bytes")
    else:
        body = reader.read()
    return Response(status, headers, body)


def _read_chunked(reader) -> bytes:  # type: ignore[no-untyped-def]
    chunks = []
    while True:
        size_line = reader.readline(1024)
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise LambdaApiError(f"invalid chunk size line {size_line[:40]!r}") from None
        if size == 0:
            while reader.readline(_MAX_HEADER_BYTES) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunks.append(reader.read(size))
        reader.readline(8)

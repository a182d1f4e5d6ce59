"""OtlpExporter, which POSTs each signal of a batch to an OTLP/HTTP endpoint and handles the
response."""

from __future__ import annotations

import gzip
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from telemetry_ext import __version__
from telemetry_ext.exporters.base import ExportResult, Outcome, Record
from telemetry_ext.exporters.otlp.logs import encode_logs
from telemetry_ext.exporters.otlp.metrics import _data_points, encode_metrics
from telemetry_ext.exporters.otlp.traces import encode_traces
from telemetry_ext.retry import (
    MIN_ATTEMPT_TIMEOUT_S,
    RetryPolicy,
    http_status_outcome,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

SIGNALS = ("logs", "metrics", "traces")

DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_MAX_DETAIL_CHARS = 200

_ENCODERS: dict[str, Callable[..., dict[str, Any]]] = {
    "logs": encode_logs,
    "metrics": encode_metrics,
    "traces": encode_traces,
}

# Path to the item list of each request, and the partialSuccess field that counts rejections.
_ITEM_PATHS = {
    "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
    "traces": ("resourceSpans", "scopeSpans", "spans"),
}
_REJECTED_FIELDS = {
    "logs": "rejectedLogRecords",
    "metrics": "rejectedDataPoints",
    "traces": "rejectedSpans",
}


def _count_items(signal: str, request: Mapping[str, Any]) -> int:
    """Count the log records, metric data points or spans of an encoded request."""
    resource_key, scope_key, items_key = _ITEM_PATHS[signal]
    total = 0
    for resource_entry in request.get(resource_key, []):
        for scope_entry in resource_entry.get(scope_key, []):
            items = scope_entry.get(items_key, [])
            if signal == "metrics":
                total += sum(len(_data_points(metric)) for metric in items)
            else:
                total += len(items)
    return total


@dataclass
class _EncodedSignal:
    body: bytes  # JSON, gzip-compressed when the exporter compresses
    item_count: int


@dataclass
class _BatchProgress:
    """Progress of the batch that the last export call did not finish."""

    records: list[Record]  # the batch object itself, compared by identity
    snapshot: list[Record]  # a shallow copy, so that an appended or replaced record is noticed
    encoded: dict[str, _EncodedSignal] = field(default_factory=dict)
    done_signals: set[str] = field(default_factory=set)
    sent_signals: list[str] = field(default_factory=list)
    rejected_signals: list[str] = field(default_factory=list)
    rejected_count: int = 0

    def matches(self, records: list[Record]) -> bool:
        if records is not self.records or len(records) != len(self.snapshot):
            return False
        return all(current is kept for current, kept in zip(records, self.snapshot))


class OtlpExporter:
    """Exporter that POSTs OTLP/JSON to `<endpoint>/v1/logs`, `/v1/metrics` and `/v1/traces`.

    One `export` call makes at most one request per signal, within `timeout_s` in total.
    Signals without items are not sent. A 2xx is SENT. 429, 502, 503 and 504 (the statuses of
    `policy`, OTLP's by default), connection errors and timeouts are RETRYABLE, with the
    server's Retry-After. Every other status is REJECTED. Redirects are not followed, so that
    the headers (often an API key) never go to another host. A 3xx is therefore REJECTED.

    A batch spans several requests, so one call can end with some signals sent and a later one
    failed. The exporter then keeps the progress of that batch: a later call with the same
    list object, holding the same record objects, sends only the signals that are not done,
    with the bodies encoded on the first call. Any other batch discards that progress. The
    RETRYABLE result of such a call therefore means "not finished", not "nothing accepted".

    `rejected_count` of the final result adds up the items that the collector rejected: those
    reported in `partialSuccess` plus every item of a signal rejected with a 4xx or 5xx, when
    other signals were accepted. Its unit is OTLP items (log records, data points, spans), not
    extension records. When every signal with items is rejected, the result is REJECTED.

    Header values are never logged. Not thread-safe: one delivery loop owns an exporter.
    """

    name = "otlp"

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str],
        resource: Mapping[str, Any],
        session: Optional[requests.Session] = None,
        signals: Sequence[str] = SIGNALS,
        gzip: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        *,
        policy: Optional[RetryPolicy] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoint = _validate_endpoint(endpoint)
        self._signals = _validate_signals(signals)
        if max_response_bytes < 0:
            raise ValueError(f"max_response_bytes must not be negative, got {max_response_bytes}")

        self._headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        self._headers["User-Agent"] = f"telemetry-ext/{__version__}"
        for header_name, value in headers.items():
            _validate_header(header_name, value)
            self._headers[header_name] = value
        self._headers["Content-Type"] = "application/json"
        if gzip:
            self._headers["Content-Encoding"] = "gzip"

        self._resource = dict(resource)
        self._gzip = gzip
        self._max_response_bytes = max_response_bytes
        self._policy = policy if policy is not None else RetryPolicy.otlp()
        self._clock = clock
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._progress: Optional[_BatchProgress] = None

        logger.debug(
            "OTLP exporter for %s, signals %s, gzip %s, header names %s",
            self._endpoint,
            ",".join(self._signals),
            gzip,
            sorted(self._headers.keys()),
        )

    def __repr__(self) -> str:
        # Only header names, because the values are often credentials.
        header_names = sorted(self._headers.keys())
        return f"OtlpExporter(endpoint={self._endpoint!r}, signals={self._signals!r}, headers={header_names!r})"

    def export(self, records: list[Record], timeout_s: float) -> ExportResult:
        """Send the signals of `records` that are not sent yet, in one attempt each."""
        deadline = self._clock() + timeout_s
        if self._progress is None or not self._progress.matches(records):
            if self._progress is not None:
                logger.debug(
                    "Discarding the unfinished OTLP batch of %d records (signals done: %s)",
                    len(self._progress.snapshot),
                    ",".join(sorted(self._progress.done_signals)) or "none",
                )
            self._progress = _BatchProgress(records=records, snapshot=list(records))
        progress = self._progress

        for signal in self._signals:
            if signal in progress.done_signals:
                continue
            encoded = self._encoded(progress, signal)
            if encoded is None:
                progress.done_signals.add(signal)
                progress.rejected_signals.append(signal)
                continue
            if encoded.item_count == 0:
                progress.done_signals.add(signal)
                continue

            remaining_s = deadline - self._clock()
            if remaining_s < MIN_ATTEMPT_TIMEOUT_S:
                return ExportResult(Outcome.RETRYABLE, f"timed out before sending {signal}")

            result = self._post(signal, encoded, deadline)
            if result.outcome is Outcome.RETRYABLE:
                return result

            progress.done_signals.add(signal)
            if result.outcome is Outcome.SENT:
                progress.sent_signals.append(signal)
                progress.rejected_count += result.rejected_count
            else:
                progress.rejected_signals.append(signal)
                progress.rejected_count += encoded.item_count

        self._progress = None
        return _final_result(progress)

    def close(self) -> None:
        """Close the HTTP session if the exporter created it, and forget unfinished batches."""
        self._progress = None
        if self._owns_session:
            self._session.close()

    def _encoded(self, progress: _BatchProgress, signal: str) -> Optional[_EncodedSignal]:
        """Encode one signal of the batch once and keep it. Returns None if encoding fails."""
        encoded = progress.encoded.get(signal)
        if encoded is not None:
            return encoded
        try:
            request = _ENCODERS[signal](progress.snapshot, self._resource)
            body = json.dumps(request, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except Exception:  # A bug here must not stop delivery of the other signals.
            logger.exception("Failed to encode OTLP %s; the %s of this batch are dropped", signal, signal)
            return None
        if self._gzip:
            body = gzip.compress(body, compresslevel=6, mtime=0)
        encoded = _EncodedSignal(body=body, item_count=_count_items(signal, request))
        progress.encoded[signal] = encoded
        return encoded

    def _post(self, signal: str, encoded: _EncodedSignal, deadline: float) -> ExportResult:
        url = f"{self._endpoint}/v1/{signal}"
        remaining_s = deadline - self._clock()
        # NOTE: requests applies the read timeout to each socket read, not to the whole
        # response, so a server that trickles its status line can exceed the deadline. The
        # body is read with a deadline check between chunks.
        try:
            with self._session.post(
                url,
                data=encoded.body,
                headers=self._headers,
                timeout=(remaining_s, remaining_s),
                stream=True,
                allow_redirects=False,
            ) as response:
                return self._handle_response(signal, encoded, response, deadline)
        except requests.exceptions.ConnectTimeout:
            return self._transport_failure(signal, url, "connect timed out")
        except requests.exceptions.Timeout:
            # The collector may have stored the batch already, so a retry can duplicate it.
            return self._transport_failure(signal, url, "read timed out")
        except requests.exceptions.ConnectionError as error:
            logger.debug("OTLP %s request to %s failed: %s", signal, url, error)
            return self._transport_failure(signal, url, "connection failed")
        except requests.exceptions.RequestException as error:
            logger.warning("OTLP %s request to %s failed and will not be retried: %s", signal, url, error)
            return ExportResult(Outcome.REJECTED, f"OTLP {signal}: request failed: {type(error).__name__}")

    def _transport_failure(self, signal: str, url: str, reason: str) -> ExportResult:
        logger.debug("OTLP %s request to %s: %s", signal, url, reason)
        return ExportResult(Outcome.RETRYABLE, f"OTLP {signal}: {reason}")

    def _handle_response(
        self,
        signal: str,
        encoded: _EncodedSignal,
        response: requests.Response,
        deadline: float,
    ) -> ExportResult:
        status = response.status_code
        outcome = http_status_outcome(status, self._policy)

        if outcome is Outcome.RETRYABLE:
            retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
            logger.debug(
                "OTLP %s endpoint returned HTTP %d, retry after %s s", signal, status, retry_after_s
            )
            return ExportResult(Outcome.RETRYABLE, f"OTLP {signal}: HTTP {status}", retry_after_s=retry_after_s)

        payload = self._read_json(signal, response, deadline)

        if outcome is Outcome.REJECTED:
            message = _status_message(payload, status, response)
            logger.warning(
                "OTLP %s endpoint rejected %d items with HTTP %d: %s",
                signal,
                encoded.item_count,
                status,
                message,
            )
            return ExportResult(Outcome.REJECTED, f"OTLP {signal}: HTTP {status}: {message}")

        rejected_count = self._partial_success(signal, encoded.item_count, payload)
        return ExportResult(Outcome.SENT, f"OTLP {signal}: HTTP {status}", rejected_count=rejected_count)

    def _read_json(self, signal: str, response: requests.Response, deadline: float) -> Optional[Any]:
        """Read and parse a JSON response body. Returns None for an empty, oversized, late,
        unreadable or non-JSON body, because the status alone decides the outcome."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > self._max_response_bytes:
                    logger.warning(
                        "Ignoring the OTLP %s response body: it is larger than %d bytes",
                        signal,
                        self._max_response_bytes,
                    )
                    return None
                chunks.append(chunk)
                if self._clock() > deadline:
                    logger.debug(
                        "Ignoring the rest of the OTLP %s response body: the deadline passed", signal
                    )
                    return None
        except requests.exceptions.RequestException as error:
            logger.debug("Failed to read the OTLP %s response body: %s", signal, error)
            return None

        body = b"".join(chunks)
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            content_type = response.headers.get("Content-Type")
            logger.debug("The OTLP %s response body is not JSON (Content-Type %s)", signal, content_type)
            return None

    def _partial_success(self, signal: str, item_count: int, payload: Any) -> int:
        """Return how many items `partialSuccess` rejects, capped at `item_count`, and log it."""
        if not isinstance(payload, Mapping):
            return 0
        partial = payload.get("partialSuccess")
        if not isinstance(partial, Mapping):
            return 0

        rejected = _int_field(partial.get(_REJECTED_FIELDS[signal]))
        message = partial.get("errorMessage")
        message = _shorten(message) if isinstance(message, str) else ""
        if rejected > 0:
            logger.warning(
                "OTLP %s endpoint rejected %d of %d items (partial success): %s",
                signal,
                rejected,
                item_count,
                message,
            )
        elif message:
            logger.warning("OTLP %s endpoint accepted every item with a warning: %s", signal, message)
        return min(rejected, item_count)


def _final_result(progress: _BatchProgress) -> ExportResult:
    if progress.rejected_signals and not progress.sent_signals:
        return ExportResult(Outcome.REJECTED, f"OTLP rejected {', '.join(progress.rejected_signals)}")
    if not progress.sent_signals:
        return ExportResult(Outcome.SENT, "nothing to send")

    detail = f"OTLP sent {', '.join(progress.sent_signals)}"
    if progress.rejected_signals:
        detail += f"; rejected {', '.join(progress.rejected_signals)}"
    return ExportResult(Outcome.SENT, detail, rejected_count=progress.rejected_count)


def _int_field(value: Any) -> int:
    """Read a proto3 JSON int64, which may be a number or a decimal string. Invalid gives 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0


def _status_message(payload: Any, status: int, response: requests.Response) -> str:
    """Return the `message` of a google.rpc.Status body, else the HTTP reason phrase."""
    if isinstance(payload, Mapping) and isinstance(payload.get("message"), str) and payload["message"]:
        return _shorten(payload["message"])
    return response.reason or f"HTTP {status}"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _MAX_DETAIL_CHARS:
        return text
    return text[: _MAX_DETAIL_CHARS - 3] + "..."


def _validate_endpoint(endpoint: str) -> str:
    """Check that `endpoint` is an http(s) base URL and return it without a trailing slash."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Invalid OTLP endpoint {endpoint!r}: expected http(s)://host[:port][/path]")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "Invalid OTLP endpoint: credentials in the URL are not supported, put them in headers"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"Invalid OTLP endpoint {endpoint!r}: a query or fragment is not supported")
    return endpoint.strip().rstrip("/")


def _validate_signals(signals: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(signals)
    unknown = [signal for signal in chosen if signal not in SIGNALS]
    if unknown:
        raise ValueError(f"Unknown OTLP signals {unknown}: expected some of {list(SIGNALS)}")
    if not chosen:
        raise ValueError(f"No OTLP signals chosen: expected some of {list(SIGNALS)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"Duplicate OTLP signals in {list(chosen)}")
    return chosen


def _validate_header(header_name: Any, value: Any) -> None:
    """Raise ValueError for a header that is not a string or contains CR, LF or NUL.

    The message names the header but never shows its value.
    """
    if not isinstance(header_name, str) or not header_name.strip():
        raise ValueError(f"Invalid OTLP header name {header_name!r}")
    if not isinstance(value, str):
        raise ValueError(f"Invalid value of OTLP header {header_name!r}: expected a string")
    for text in (header_name, value):
        if any(character in text for character in "\r\n\0"):
            raise ValueError(f"Invalid OTLP header {header_name!r}: name or value contains CR, LF or NUL")

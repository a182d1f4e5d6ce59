"""Ships records to an HTTP endpoint as a JSON array or as NDJSON, optionally gzipped."""

from __future__ import annotations

import gzip
import logging
from typing import Mapping, Optional

import requests

from telemetry_ext import __version__
from telemetry_ext.exporters.base import ExportResult, Outcome, Record
from telemetry_ext.exporters.encoding import to_json_bytes, to_ndjson_bytes
from telemetry_ext.retry import HTTP_RETRYABLE_STATUSES, parse_retry_after

logger = logging.getLogger(__name__)

# Connecting to a healthy backend takes milliseconds; a longer connect means it is down.
_MAX_CONNECT_TIMEOUT_S = 1.0


class HttpJsonExporter:
    name = "http"

    def __init__(
        self,
        url: str,
        ndjson: bool = False,
        gzip_body: bool = False,
        headers: Optional[Mapping[str, str]] = None,
        session: Optional[requests.Session] = None,
    ) -> None:
        self.url = url
        self._ndjson = ndjson
        self._gzip = gzip_body
        self._session = session or requests.Session()
        self._headers = {
            "Content-Type": "application/x-ndjson" if ndjson else "application/json",
            "User-Agent": f"telemetry-ext/{__version__}",
            **(headers or {}),
        }
        if gzip_body:
            self._headers["Content-Encoding"] = "gzip"

    def export(self, records: list[Record], timeout_s: float) -> ExportResult:
        body = to_ndjson_bytes(records) if self._ndjson else to_json_bytes(records)
        if self._gzip:
            body = gzip.compress(body, compresslevel=5, mtime=0)
        timeout = (min(_MAX_CONNECT_TIMEOUT_S, timeout_s), timeout_s)
        try:
            response = self._session.post(self.url, data=body, headers=self._headers, timeout=timeout)
        except requests.Timeout as error:
            return ExportResult(Outcome.RETRYABLE, f"timed out after {timeout_s:.3f} s ({type(error).__name__})")
        except requests.RequestException as error:
            return ExportResult(Outcome.RETRYABLE, f"request failed: {type(error).__name__}")
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return ExportResult(Outcome.SENT)
        detail = f"HTTP {status} from {self.url}"
        if status in HTTP_RETRYABLE_STATUSES:
            return ExportResult(Outcome.RETRYABLE, detail, parse_retry_after(response.headers.get("Retry-After")))
        return ExportResult(Outcome.REJECTED, detail)

    def close(self) -> None:
        self._session.close()

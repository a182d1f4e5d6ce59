"""Appends records to a local file as NDJSON, for local runs and debugging."""

from __future__ import annotations

import os

from telemetry_ext.exporters.base import ExportResult, Outcome, Record
from telemetry_ext.exporters.encoding import to_ndjson_bytes


class FileExporter:
    name = "file"

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, records: list[Record], timeout_s: float) -> ExportResult:
        data = to_ndjson_bytes(records)
        try:
            # One write of whole lines with O_APPEND, so readers never see half a record.
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, data)
            finally:
                os.close(descriptor)
        except OSError as error:
            return ExportResult(Outcome.RETRYABLE, f"cannot append to {self.path}: {error.strerror}")
        return ExportResult(Outcome.SENT)

    def close(self) -> None:
        pass

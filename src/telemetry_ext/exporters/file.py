"""Appends records to a local file as NDJSON, for local runs and debugging."""

from __future__ import annotations

import errno
import os

from telemetry_ext.exporters.base import ExportResult, Outcome, Record
from telemetry_ext.exporters.encoding import to_ndjson_bytes


_PERMANENT_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS})


class FileExporter:
    name = "file"

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, records: list[Record], timeout_s: float) -> ExportResult:
        data = to_ndjson_bytes(records)
        try:
            # Whole lines with O_APPEND. A regular file takes them in one write; the loop covers
            # a short write, as from a pipe or a full disk.
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(descriptor, view)
                    view = view[written:]
            finally:
                os.close(descriptor)
        except OSError as error:
            detail = f"cannot append to {self.path}: {error.strerror}"
            # A missing folder, a folder in the file's place or a permission problem does not go
            # away by retrying; a full disk or an interrupted call may.
            if error.errno in _PERMANENT_ERRNOS:
                return ExportResult(Outcome.REJECTED, detail)
            return ExportResult(Outcome.RETRYABLE, detail)
        return ExportResult(Outcome.SENT)

    def close(self) -> None:
        pass

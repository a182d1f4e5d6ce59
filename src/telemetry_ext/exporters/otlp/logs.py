"""Encoder of the `logs` of invocation and init records as an OTLP ExportLogsServiceRequest."""

from __future__ import annotations

import time
from typing import Any, Mapping, Optional, Sequence

from telemetry_ext.exporters.base import Record
from telemetry_ext.exporters.otlp.common import (
    SCOPE,
    _any_value,
    _iso_to_unix_nano,
    _key_values,
    _records_of_kind,
    _resource_json,
    _trace_context,
    _TraceContext,
)

SEVERITY_NUMBERS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}


def encode_logs(
    records: Sequence[Record],
    resource: Mapping[str, Any],
    observed_time_unix_nano: Optional[int] = None,
) -> dict[str, Any]:
    """Encode the `logs` of invocation and init records as an ExportLogsServiceRequest.

    Each log record gets the X-Ray trace and span id of its invocation when the record
    contains them, and `faas.invocation_id` plus the log's `fields` as attributes.
    `observed_time_unix_nano` defaults to the current time. With no logs, `resourceLogs` is
    empty.
    """
    observed_ns = time.time_ns() if observed_time_unix_nano is None else observed_time_unix_nano
    log_records: list[dict[str, Any]] = []
    for record in _records_of_kind(records, "invocation", "init"):
        logs = record.get("logs")
        if not isinstance(logs, list):
            continue
        context = _trace_context(record)
        for log in logs:
            if isinstance(log, Mapping):
                log_records.append(_log_record(log, record, context, observed_ns))

    if not log_records:
        return {"resourceLogs": []}
    return {
        "resourceLogs": [
            {
                "resource": _resource_json(resource),
                "scopeLogs": [{"scope": dict(SCOPE), "logRecords": log_records}],
            }
        ]
    }


def _log_record(
    log: Mapping[str, Any],
    record: Mapping[str, Any],
    context: _TraceContext,
    observed_ns: int,
) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    time_ns = _iso_to_unix_nano(log.get("timestamp"))
    if time_ns is not None:
        entry["timeUnixNano"] = str(time_ns)
    entry["observedTimeUnixNano"] = str(observed_ns)

    level = log.get("level")
    if isinstance(level, str) and level:
        entry["severityNumber"] = SEVERITY_NUMBERS.get(level.upper(), 0)
        entry["severityText"] = level
    else:
        entry["severityNumber"] = 0

    body = _any_value(log.get("message"))
    if body is not None:
        entry["body"] = body

    fields = log.get("fields")
    field_pairs = list(fields.items()) if isinstance(fields, Mapping) else []
    request_id = log.get("requestId") or record.get("requestId")
    attributes = _key_values([("faas.invocation_id", request_id), *field_pairs])
    if attributes:
        entry["attributes"] = attributes

    if context.trace_id is not None:
        entry["traceId"] = context.trace_id
        if context.span_id is not None:
            entry["spanId"] = context.span_id
    return entry

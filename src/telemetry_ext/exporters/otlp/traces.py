"""Encoder of invocation and init spans as an OTLP ExportTraceServiceRequest."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from telemetry_ext.exporters.base import Record
from telemetry_ext.exporters.otlp.common import (
    SCOPE,
    _derived_id,
    _iso_to_unix_nano,
    _key_values,
    _ms_to_nanos,
    _number,
    _records_of_kind,
    _resource_json,
    _span_window,
    _trace_context,
)

logger = logging.getLogger(__name__)

SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
STATUS_CODE_UNSET = 0
STATUS_CODE_ERROR = 2


def encode_traces(records: Sequence[Record], resource: Mapping[str, Any]) -> dict[str, Any]:
    """Encode one span per invocation and per init record as an ExportTraceServiceRequest.

    An invocation becomes a SERVER span `<functionName> invoke` with child spans for the
    runtime's `responseLatency` and `responseDuration`. An init record becomes an INTERNAL
    span `<functionName> init`. Trace, span and parent ids come from the record's X-Ray
    context. Missing ids are derived from the record (see `_derived_id`), so that resending
    a batch does not create new spans. The span status is ERROR, with `errorType` (else the
    status) as message, when the status is not `success` in any case, and UNSET otherwise.
    Records without any start or end time are skipped.
    """
    spans: list[dict[str, Any]] = []
    for record in _records_of_kind(records, "invocation", "init"):
        if record.get("kind") == "invocation":
            spans.extend(_invocation_spans(record, resource))
        else:
            spans.extend(_init_spans(record, resource))

    if not spans:
        return {"resourceSpans": []}
    return {
        "resourceSpans": [
            {
                "resource": _resource_json(resource),
                "scopeSpans": [{"scope": dict(SCOPE), "spans": spans}],
            }
        ]
    }


def _span_status(record: Mapping[str, Any]) -> dict[str, Any]:
    status = record.get("status")
    if not isinstance(status, str) or status.lower() == "success":
        return {"code": STATUS_CODE_UNSET}
    error_type = record.get("errorType")
    message = error_type if isinstance(error_type, str) and error_type else status
    return {"code": STATUS_CODE_ERROR, "message": message}


def _invocation_spans(record: Mapping[str, Any], resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    request_id = record.get("requestId")
    window = _span_window(record)
    if window is None:
        logger.debug("Skipping the span of invocation %s: it has no start or end time", request_id)
        return []
    start_ns, end_ns = window

    context = _trace_context(record)
    trace_id = context.trace_id or _derived_id(32, "trace", request_id, record.get("startTime"))
    span_id = context.span_id or _derived_id(16, "span", trace_id, request_id)

    span: dict[str, Any] = {"traceId": trace_id, "spanId": span_id}
    if context.parent_span_id is not None:
        span["parentSpanId"] = context.parent_span_id
    span.update(
        {
            "name": f"{_function_name(record, resource)} invoke",
            "kind": SPAN_KIND_SERVER,
            "startTimeUnixNano": str(start_ns),
            "endTimeUnixNano": str(end_ns),
            "attributes": _key_values(
                [
                    ("faas.invocation_id", request_id),
                    ("faas.coldstart", record.get("coldStart")),
                    ("aws.lambda.status", record.get("status")),
                    ("aws.lambda.error_type", record.get("errorType")),
                ]
            ),
            "status": _span_status(record),
        }
    )

    spans = [span]
    for index, (name, child_start_ns, child_end_ns) in enumerate(_response_span_windows(record, start_ns)):
        spans.append(
            {
                "traceId": trace_id,
                "spanId": _derived_id(16, "child", span_id, index, name),
                "parentSpanId": span_id,
                "name": name,
                "kind": SPAN_KIND_INTERNAL,
                "startTimeUnixNano": str(child_start_ns),
                "endTimeUnixNano": str(child_end_ns),
            }
        )
    return spans


def _response_span_windows(record: Mapping[str, Any], invocation_start_ns: int) -> list[tuple[str, int, int]]:
    """Return the runtime's spans of an invocation as (name, start ns, end ns).

    A `spans` list in the record (`name`, ISO `start`, `durationMs`, as in
    `platform.runtimeDone`) is used as is. Otherwise `responseLatency` starts with the
    invocation and `responseDuration` starts where `responseLatency` ends.
    NOTE: without `spans`, those starts are estimates, and `responseDuration` is skipped when
    `responseLatencyMs` is missing because its start is then unknown.
    """
    spans = record.get("spans")
    if isinstance(spans, list) and spans:
        windows: list[tuple[str, int, int]] = []
        for span in spans:
            if not isinstance(span, Mapping) or not isinstance(span.get("name"), str):
                continue
            start_ns = _iso_to_unix_nano(span.get("start"))
            duration_ms = _number(span.get("durationMs"))
            if start_ns is None or duration_ms is None or duration_ms < 0:
                continue
            windows.append((span["name"], start_ns, start_ns + _ms_to_nanos(duration_ms)))
        return windows

    latency_ms = _number(record.get("responseLatencyMs"))
    duration_ms = _number(record.get("responseDurationMs"))
    if latency_ms is None or latency_ms < 0:
        return []
    latency_end_ns = invocation_start_ns + _ms_to_nanos(latency_ms)
    windows = [("responseLatency", invocation_start_ns, latency_end_ns)]
    if duration_ms is not None and duration_ms >= 0:
        windows.append(("responseDuration", latency_end_ns, latency_end_ns + _ms_to_nanos(duration_ms)))
    return windows


def _init_spans(record: Mapping[str, Any], resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    window = _span_window(record)
    if window is None:
        logger.debug("Skipping the span of an init record: it has no start or end time")
        return []
    start_ns, end_ns = window

    function_name = _function_name(record, resource)
    phase = record.get("phase")
    initialization_type = record.get("initializationType")
    context = _trace_context(record)
    trace_id = context.trace_id or _derived_id(
        32, "init-trace", function_name, record.get("startTime"), phase, initialization_type
    )
    span_id = context.span_id or _derived_id(16, "init-span", trace_id, phase)

    span: dict[str, Any] = {"traceId": trace_id, "spanId": span_id}
    if context.parent_span_id is not None:
        span["parentSpanId"] = context.parent_span_id
    span.update(
        {
            "name": f"{function_name} init",
            "kind": SPAN_KIND_INTERNAL,
            "startTimeUnixNano": str(start_ns),
            "endTimeUnixNano": str(end_ns),
            "attributes": _key_values(
                [
                    ("faas.coldstart", True),
                    ("aws.lambda.initialization_type", initialization_type),
                    ("aws.lambda.init_phase", phase),
                    ("aws.lambda.status", record.get("status")),
                    ("aws.lambda.error_type", record.get("errorType")),
                    ("aws.lambda.runtime_version", record.get("runtimeVersion")),
                    ("aws.lambda.runtime_duration_ms", _number(record.get("runtimeDurationMs"))),
                ]
            ),
            "status": _span_status(record),
        }
    )
    return [span]


def _function_name(record: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    name = record.get("functionName") or resource.get("faas.name")
    return str(name) if name else "function"

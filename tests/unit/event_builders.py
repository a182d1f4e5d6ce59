"""Builders of Telemetry API events (schema 2022-12-13) as Lambda sends them, for unit tests."""

from __future__ import annotations

import json
from typing import Any, Optional

Event = dict[str, Any]

TRACE_ROOT = "1-65e6b7a4-0123456789abcdef01234567"
TRACE_VALUE = f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1"
SPAN_ID = "53995c3f42cd8ad8"


def event(event_type: str, record: Any, time: str = "2024-03-05T06:07:08.000Z") -> Event:
    return {"time": time, "type": event_type, "record": record}


def init_start(phase: str = "init") -> Event:
    return event(
        "platform.initStart",
        {
            "initializationType": "on-demand",
            "phase": phase,
            "runtimeVersion": "python:3.12.v38",
            "runtimeVersionArn": "arn:aws:lambda:eu-west-1::runtime:0123456789abcdef",
            "functionName": "orders",
            "functionVersion": "$LATEST",
        },
        "2024-03-05T06:07:07.000Z",
    )


def init_runtime_done(status: str = "success") -> Event:
    return event(
        "platform.initRuntimeDone",
        {"initializationType": "on-demand", "phase": "init", "status": status},
        "2024-03-05T06:07:07.400Z",
    )


def extension_event(name: str = "telemetry-ext") -> Event:
    return event(
        "platform.extension",
        {"name": name, "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]},
        "2024-03-05T06:07:07.410Z",
    )


def init_report(duration_ms: float = 412.5, status: str = "success") -> Event:
    return event(
        "platform.initReport",
        {
            "initializationType": "on-demand",
            "phase": "init",
            "status": status,
            "metrics": {"durationMs": duration_ms},
        },
        "2024-03-05T06:07:07.420Z",
    )


def start(request_id: str, tracing: bool = True) -> Event:
    record: dict[str, Any] = {"requestId": request_id, "version": "$LATEST"}
    if tracing:
        record["tracing"] = {"spanId": SPAN_ID, "type": "X-Amzn-Trace-Id", "value": TRACE_VALUE}
    return event("platform.start", record, "2024-03-05T06:07:08.000Z")


def runtime_done(
    request_id: str, status: str = "success", duration_ms: float = 140.0, error_type: Optional[str] = None
) -> Event:
    record: dict[str, Any] = {
        "requestId": request_id,
        "status": status,
        "metrics": {"durationMs": duration_ms, "producedBytes": 42},
        "tracing": {"spanId": SPAN_ID, "type": "X-Amzn-Trace-Id", "value": TRACE_VALUE},
        "spans": [
            {"name": "responseLatency", "start": "2024-03-05T06:07:08.010Z", "durationMs": 23.5},
            {"name": "responseDuration", "start": "2024-03-05T06:07:08.034Z", "durationMs": 0.75},
        ],
    }
    if error_type is not None:
        record["errorType"] = error_type
    return event("platform.runtimeDone", record, "2024-03-05T06:07:08.140Z")


def report(
    request_id: str,
    status: str = "success",
    duration_ms: float = 152.25,
    init_duration_ms: Optional[float] = None,
    error_type: Optional[str] = None,
) -> Event:
    metrics: dict[str, Any] = {
        "durationMs": duration_ms,
        "billedDurationMs": 153,
        "memorySizeMB": 128,
        "maxMemoryUsedMB": 71,
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = init_duration_ms
    record: dict[str, Any] = {"requestId": request_id, "status": status, "metrics": metrics}
    if error_type is not None:
        record["errorType"] = error_type
    return event("platform.report", record, "2024-03-05T06:07:08.160Z")


def logs_dropped(records: int = 12, size_bytes: int = 4096) -> Event:
    return event(
        "platform.logsDropped",
        {"reason": "Consumer seems to have fallen behind", "droppedRecords": records, "droppedBytes": size_bytes},
    )


def restore_start() -> Event:
    return event(
        "platform.restoreStart",
        {"runtimeVersion": "python:3.12.v38", "runtimeVersionArn": "arn:aws:lambda:eu-west-1::runtime:0123"},
    )


def restore_runtime_done(status: str = "success") -> Event:
    return event("platform.restoreRuntimeDone", {"status": status, "metrics": {"durationMs": 80.0}})


def restore_report(status: str = "success") -> Event:
    return event("platform.restoreReport", {"status": status, "metrics": {"durationMs": 95.0}})


def text_log(message: str, request_id: str = "", level: str = "INFO") -> Event:
    """A Python-runtime text line; init-time lines carry an empty request id."""
    return event("function", f"[{level}]\t2024-03-05T06:07:08.050Z\t{request_id}\t{message}\n")


def plain_log(message: str) -> Event:
    """A ``print`` line, which carries no request id."""
    return event("function", message + "\n")


def powertools_log(message: str, request_id: str, level: str = "INFO") -> Event:
    line = {
        "level": level,
        "location": "handler:12",
        "message": message,
        "timestamp": "2024-03-05 06:07:08,060+0000",
        "service": "orders",
        "function_request_id": request_id,
    }
    return event("function", json.dumps(line))


def json_format_log(message: str, request_id: str, level: str = "INFO") -> Event:
    """A record of the Lambda JSON log format, which arrives as an object."""
    return event(
        "function",
        {
            "timestamp": "2024-03-05T06:07:08.070Z",
            "level": level,
            "message": message,
            "logger": "root",
            "requestId": request_id,
        },
    )


def emf_log(value: float, request_id: Optional[str] = None) -> Event:
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": 1709618828080,
            "CloudWatchMetrics": [
                {"Namespace": "Orders", "Dimensions": [["service"]], "Metrics": [{"Name": "OrdersPlaced", "Unit": "Count"}]}
            ],
        },
        "service": "orders",
        "OrdersPlaced": value,
    }
    if request_id is not None:
        document["function_request_id"] = request_id
    return event("function", json.dumps(document))


def invocation_events(request_id: str, **report_args: Any) -> list[Event]:
    """A complete invocation: start, a log line, runtimeDone and report."""
    return [
        start(request_id),
        text_log("processing", request_id),
        runtime_done(request_id),
        report(request_id, **report_args),
    ]

"""OTLP/HTTP exporter with JSON encoding, and the pure functions that build its payloads.

The encoders follow the OTLP JSON rules (opentelemetry-proto, docs/specification.md, "JSON
Protobuf Encoding"): keys are lowerCamelCase, `traceId` and `spanId` are hex strings, enums are
integers and 64-bit integers are decimal strings. Each encoder takes the resource as a plain
mapping of attribute names to values, as `resource_attributes` returns it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence
from urllib.parse import unquote, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from telemetry_ext import __version__
from telemetry_ext.exporters.base import ExportResult, Outcome, Record
from telemetry_ext.retry import (
    MIN_ATTEMPT_TIMEOUT_S,
    RetryPolicy,
    http_status_outcome,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

SIGNALS = ("logs", "metrics", "traces")

# The instrumentation scope of every payload: this extension, not the function's own SDK.
SCOPE = {"name": "telemetry-ext", "version": __version__}

SEVERITY_NUMBERS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}

SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
STATUS_CODE_UNSET = 0
STATUS_CODE_ERROR = 2
AGGREGATION_TEMPORALITY_DELTA = 1

DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024

_BYTES_PER_MB = 1024 * 1024  # Lambda's "MB" of memory is a mebibyte.
_NANOS_PER_MS = 1_000_000
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_MAX_ANY_VALUE_DEPTH = 32
_MAX_DETAIL_CHARS = 200

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ISO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)
_XRAY_ROOT = re.compile(r"1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})")
_HEX_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_HEX_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")


# --------------------------------------------------------------------------------------------
# Resource
# --------------------------------------------------------------------------------------------


def resource_attributes(environ: Mapping[str, str], service_name: Optional[str] = None) -> dict[str, Any]:
    """Build the resource attributes of the function from the Lambda environment variables.

    `service.name` is `service_name` if given, else OTEL_SERVICE_NAME, else `service.name` in
    OTEL_RESOURCE_ATTRIBUTES, else the function name, else `unknown_service`. The other
    entries of OTEL_RESOURCE_ATTRIBUTES override the detected attributes. `faas.max_memory`
    is in bytes.
    """
    function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME") or None
    detected: dict[str, Any] = {
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": environ.get("AWS_REGION") or None,
        "faas.name": function_name,
        "faas.version": environ.get("AWS_LAMBDA_FUNCTION_VERSION") or None,
        "faas.instance": environ.get("AWS_LAMBDA_LOG_STREAM_NAME") or None,
    }
    memory_mb = (environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or "").strip()
    if memory_mb.isdigit():
        detected["faas.max_memory"] = int(memory_mb) * _BYTES_PER_MB
    log_group = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    if log_group:
        detected["aws.log.group.names"] = [log_group]

    configured = _parse_resource_attributes_env(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    service = (
        service_name
        or environ.get("OTEL_SERVICE_NAME")
        or configured.get("service.name")
        or function_name
        or "unknown_service"
    )

    attributes: dict[str, Any] = {"service.name": service}
    for key, value in {**detected, **configured}.items():
        if value is not None and key != "service.name":
            attributes[key] = value
    return attributes


def _parse_resource_attributes_env(text: str) -> dict[str, str]:
    """Parse OTEL_RESOURCE_ATTRIBUTES (`key1=value1,key2=value2`, values percent-encoded).

    Entries without `=` or with an empty key are skipped with a warning.
    """
    attributes: dict[str, str] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        key, separator, value = entry.partition("=")
        key = key.strip()
        if not separator or not key:
            logger.warning("Skipping invalid OTEL_RESOURCE_ATTRIBUTES entry %r: expected key=value", entry)
            continue
        attributes[key] = unquote(value.strip())
    return attributes


# --------------------------------------------------------------------------------------------
# Values, times and ids
# --------------------------------------------------------------------------------------------


def _any_value(value: Any, depth: int = 0) -> Optional[dict[str, Any]]:
    """Encode a Python value as an OTLP AnyValue, or return None for None.

    An int outside the int64 range becomes a string. A NaN or infinite float becomes the
    proto3 JSON strings "NaN", "Infinity" or "-Infinity". Nesting deeper than
    _MAX_ANY_VALUE_DEPTH is cut off and encoded as the `str()` of the value.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": _json_double(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if depth >= _MAX_ANY_VALUE_DEPTH:
        return {"stringValue": str(value)}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _key_values(value.items(), depth + 1)}}
    if isinstance(value, (list, tuple)):
        # None inside an array becomes an empty AnyValue, so that positions are kept.
        items = [_any_value(item, depth + 1) or {} for item in value]
        return {"arrayValue": {"values": items}}
    return {"stringValue": str(value)}


def _json_double(value: float) -> Any:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _key_values(pairs: Iterable[tuple[Any, Any]], depth: int = 0) -> list[dict[str, Any]]:
    """Encode pairs as OTLP KeyValues. None values are skipped, and the first of two equal
    keys wins."""
    encoded: list[dict[str, Any]] = []
    seen: set[str] = set()
    for key, value in pairs:
        name = str(key)
        if name in seen:
            continue
        any_value = _any_value(value, depth)
        if any_value is None:
            continue
        seen.add(name)
        encoded.append({"key": name, "value": any_value})
    return encoded


def _resource_json(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {"attributes": _key_values(resource.items())}


def _number(value: Any) -> Optional[float]:
    """Return `value` if it is a finite int or float (bool excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iso_to_unix_nano(value: Any) -> Optional[int]:
    """Convert an ISO-8601 time to Unix nanoseconds, exactly. A time without an offset is UTC.

    Returns None for anything that is not a valid ISO-8601 date and time.
    """
    if not isinstance(value, str):
        return None
    match = _ISO_TIME.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None

    elapsed = moment - _EPOCH
    seconds = elapsed.days * 86_400 + elapsed.seconds
    if match.group(9):
        offset_s = (int(match.group(10)) * 60 + int(match.group(11))) * 60
        seconds -= offset_s if match.group(9) == "+" else -offset_s

    fraction = (match.group(7) or "")[:9].ljust(9, "0")
    return seconds * 1_000_000_000 + int(fraction)


def _ms_to_nanos(milliseconds: float) -> int:
    """Convert milliseconds to nanoseconds, keeping integer precision for epoch times."""
    whole_ms = int(milliseconds)
    return whole_ms * _NANOS_PER_MS + round((milliseconds - whole_ms) * _NANOS_PER_MS)


def _xray_fields(header: Any) -> dict[str, str]:
    """Split an X-Amzn-Trace-Id value (`Root=...;Parent=...;Sampled=1`) into its fields."""
    if not isinstance(header, str):
        return {}
    fields: dict[str, str] = {}
    for part in header.split(";"):
        key, separator, value = part.partition("=")
        if separator:
            fields[key.strip()] = value.strip()
    return fields


def _otlp_trace_id(value: Any) -> Optional[str]:
    """Convert an X-Ray trace id (`1-5759e988-bd862e3fe1be46a994272793`), an X-Amzn-Trace-Id
    value or a 32-digit hex id to the 32 lowercase hex digits of OTLP. Returns None if invalid.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if "Root=" in text:
        text = _xray_fields(text).get("Root", "")

    match = _XRAY_ROOT.fullmatch(text)
    if match is not None:
        trace_id = (match.group(1) + match.group(2)).lower()
    elif _HEX_TRACE_ID.fullmatch(text):
        trace_id = text.lower()
    else:
        return None
    return None if int(trace_id, 16) == 0 else trace_id


def _otlp_span_id(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not _HEX_SPAN_ID.fullmatch(value.strip()):
        return None
    span_id = value.strip().lower()
    return None if int(span_id, 16) == 0 else span_id


def _derived_id(hex_digits: int, *parts: Any) -> str:
    """Derive a uniformly distributed, non-zero hex id from `parts`.

    The same record always gets the same id, so a resent batch repeats the same span ids and
    the logs of an invocation can point at its span.
    """
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8")).hexdigest()
    derived = digest[:hex_digits]
    if int(derived, 16) == 0:
        derived = derived[:-1] + "1"
    return derived


@dataclass(frozen=True)
class _TraceContext:
    """The X-Ray ids of a record, each None when the record does not contain it."""

    trace_id: Optional[str]
    span_id: Optional[str]
    parent_span_id: Optional[str]


def _trace_context(record: Mapping[str, Any]) -> _TraceContext:
    """Read the X-Ray context of a record from `tracing` first, then `traceId` and `spanId`.

    `tracing` is either the X-Amzn-Trace-Id value or the Telemetry API tracing object
    (`{"spanId": ..., "type": "X-Amzn-Trace-Id", "value": ...}`).
    """
    tracing = record.get("tracing")
    header: Any = None
    tracing_span_id: Any = None
    if isinstance(tracing, str):
        header = tracing
    elif isinstance(tracing, Mapping):
        header = tracing.get("value")
        tracing_span_id = tracing.get("spanId")

    fields = _xray_fields(header)
    trace_id = _otlp_trace_id(fields.get("Root")) or _otlp_trace_id(record.get("traceId"))
    span_id = _otlp_span_id(record.get("spanId")) or _otlp_span_id(tracing_span_id)
    parent_span_id = _otlp_span_id(fields.get("Parent"))
    if parent_span_id == span_id:
        parent_span_id = None
    return _TraceContext(trace_id, span_id, parent_span_id)


def _records_of_kind(records: Iterable[Any], *kinds: str) -> Iterator[Mapping[str, Any]]:
    for record in records:
        if isinstance(record, Mapping) and record.get("kind") in kinds:
            yield record


def _span_window(record: Mapping[str, Any]) -> Optional[tuple[int, int]]:
    """Return the start and end of a record in Unix nanoseconds, or None if neither is known.

    The end is start + durationMs when both are known, else endTime. Without a start, the
    start is endTime - durationMs.
    """
    start_ns = _iso_to_unix_nano(record.get("startTime"))
    end_ns = _iso_to_unix_nano(record.get("endTime"))
    duration_ms = _number(record.get("durationMs"))
    if duration_ms is not None and duration_ms < 0:
        duration_ms = None

    if start_ns is not None:
        if duration_ms is not None:
            return start_ns, start_ns + _ms_to_nanos(duration_ms)
        if end_ns is None or end_ns < start_ns:
            return start_ns, start_ns
        return start_ns, end_ns
    if end_ns is not None:
        if duration_ms is not None:
            return end_ns - _ms_to_nanos(duration_ms), end_ns
        return end_ns, end_ns
    return None


def _point_time_ns(record: Mapping[str, Any]) -> Optional[int]:
    """Return the time of an invocation's data points: its end, else its start."""
    window = _span_window(record)
    return None if window is None else window[1]


def _function_name(record: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    name = record.get("functionName") or resource.get("faas.name")
    return str(name) if name else "function"


# --------------------------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlatformGauge:
    """Mapping from one numeric field of an invocation record to a gauge."""

    field_name: str
    metric_name: str
    unit: str
    scale: int = 1
    as_int: bool = False


_PLATFORM_GAUGES = (
    _PlatformGauge("durationMs", "faas.invoke_duration", "ms"),
    _PlatformGauge("billedDurationMs", "aws.lambda.billed_duration", "ms"),
    _PlatformGauge("initDurationMs", "aws.lambda.init_duration", "ms"),
    _PlatformGauge("restoreDurationMs", "aws.lambda.restore_duration", "ms"),
    _PlatformGauge("runtimeDurationMs", "aws.lambda.runtime_duration", "ms"),
    _PlatformGauge("responseLatencyMs", "aws.lambda.response_latency", "ms"),
    _PlatformGauge("responseDurationMs", "aws.lambda.response_duration", "ms"),
    _PlatformGauge("extensionOverheadMs", "aws.lambda.extension_overhead", "ms"),
    _PlatformGauge("maxMemoryUsedMB", "aws.lambda.max_memory_used", "By", _BYTES_PER_MB, True),
    _PlatformGauge("producedBytes", "aws.lambda.produced_bytes", "By", 1, True),
)

# CloudWatch EMF unit names whose UCUM equivalent is unambiguous. Other units are kept
# verbatim, such as "Kilobytes", which may mean 1000 or 1024 bytes.
_EMF_UNITS = {
    "Seconds": "s",
    "Microseconds": "us",
    "Milliseconds": "ms",
    "Bytes": "By",
    "Bits": "bit",
    "Percent": "%",
    "Count": "1",
    "Bytes/Second": "By/s",
    "Bits/Second": "bit/s",
    "Count/Second": "1/s",
}

DROPPED_RECORDS_METRIC = "telemetry_ext.records.dropped"


class _MetricSet:
    """Metrics of one request, keyed by name, unit and type, in first-seen order."""

    def __init__(self) -> None:
        self._metrics: dict[tuple[str, str, str], dict[str, Any]] = {}

    def gauge_points(self, name: str, unit: Optional[str]) -> list[dict[str, Any]]:
        metric = self._metric(name, unit, "gauge", {"dataPoints": []})
        return metric["gauge"]["dataPoints"]

    def delta_sum_points(self, name: str, unit: Optional[str]) -> list[dict[str, Any]]:
        data = {
            "dataPoints": [],
            "aggregationTemporality": AGGREGATION_TEMPORALITY_DELTA,
            "isMonotonic": True,
        }
        metric = self._metric(name, unit, "sum", data)
        return metric["sum"]["dataPoints"]

    def _metric(self, name: str, unit: Optional[str], kind: str, data: dict[str, Any]) -> dict[str, Any]:
        key = (name, unit or "", kind)
        metric = self._metrics.get(key)
        if metric is None:
            metric = {"name": name}
            if unit:
                metric["unit"] = unit
            metric[kind] = data
            self._metrics[key] = metric
        return metric

    def to_list(self) -> list[dict[str, Any]]:
        return [metric for metric in self._metrics.values() if _data_points(metric)]


def _data_points(metric: Mapping[str, Any]) -> list[Any]:
    for kind in ("gauge", "sum", "histogram"):
        if kind in metric:
            return metric[kind]["dataPoints"]
    return []


def encode_metrics(records: Sequence[Record], resource: Mapping[str, Any]) -> dict[str, Any]:
    """Encode platform metrics, EMF metrics and drop counters as an ExportMetricsServiceRequest.

    Per invocation record, each known platform metric becomes one gauge data point with the
    attribute `faas.invocation_id`, at the invocation's end time. Durations are doubles in ms.
    Memory is converted from MB (MiB) to bytes, unit "By", like the resource's
    `faas.max_memory`. `faas.coldstarts`, `faas.errors` and `faas.timeouts` are delta sums of
    0 or 1 per invocation. An error is any status other than `success`, so a timeout counts
    as both an error and a timeout.

    NOTE: the `faas.invocation_id` attribute makes every invocation its own time series.
    Backends that bill per series may want these attributes dropped by a collector.

    Each value of an EMF metric record (in invocation or init records) becomes one gauge data
    point, named as in EMF, with `aws.cloudwatch.namespace` and the EMF dimensions as
    attributes. Records of kind `drops` become the delta sum `telemetry_ext.records.dropped`
    with one data point per `reason`.
    """
    metrics = _MetricSet()
    for record in _records_of_kind(records, "invocation", "init", "drops"):
        kind = record.get("kind")
        if kind == "invocation":
            _add_platform_metrics(metrics, record)
        if kind in ("invocation", "init"):
            _add_emf_metrics(metrics, record)
        if kind == "drops":
            _add_drop_counts(metrics, record)

    metric_list = metrics.to_list()
    if not metric_list:
        return {"resourceMetrics": []}
    return {
        "resourceMetrics": [
            {
                "resource": _resource_json(resource),
                "scopeMetrics": [{"scope": dict(SCOPE), "metrics": metric_list}],
            }
        ]
    }


def _add_platform_metrics(metrics: _MetricSet, record: Mapping[str, Any]) -> None:
    time_ns = _point_time_ns(record)
    if time_ns is None:
        logger.debug("Skipping platform metrics of invocation %s: it has no time", record.get("requestId"))
        return
    attributes = _key_values([("faas.invocation_id", record.get("requestId"))])

    for gauge in _PLATFORM_GAUGES:
        value = _number(record.get(gauge.field_name))
        if value is None:
            continue
        point: dict[str, Any] = {"attributes": attributes, "timeUnixNano": str(time_ns)}
        if gauge.as_int:
            point["asInt"] = str(int(round(value * gauge.scale)))
        else:
            point["asDouble"] = float(value * gauge.scale)
        metrics.gauge_points(gauge.metric_name, gauge.unit).append(point)

    start_ns = _iso_to_unix_nano(record.get("startTime"))
    counts: list[tuple[str, str, int]] = []
    cold_start = record.get("coldStart")
    if isinstance(cold_start, bool):
        counts.append(("faas.coldstarts", "{coldstart}", int(cold_start)))
    status = record.get("status")
    if isinstance(status, str) and status:
        normalized = status.lower()
        counts.append(("faas.errors", "{error}", int(normalized != "success")))
        counts.append(("faas.timeouts", "{timeout}", int(normalized == "timeout")))

    for name, unit, count in counts:
        point = {"attributes": attributes, "timeUnixNano": str(time_ns), "asInt": str(count)}
        if start_ns is not None and start_ns <= time_ns:
            point["startTimeUnixNano"] = str(start_ns)
        metrics.delta_sum_points(name, unit).append(point)


def _add_emf_metrics(metrics: _MetricSet, record: Mapping[str, Any]) -> None:
    emf_metrics = record.get("metrics")
    if not isinstance(emf_metrics, list):
        return
    record_time_ns = _point_time_ns(record)

    for emf in emf_metrics:
        if not isinstance(emf, Mapping) or not isinstance(emf.get("name"), str) or not emf["name"]:
            continue
        timestamp_ms = _number(emf.get("timestamp"))
        time_ns = _ms_to_nanos(timestamp_ms) if timestamp_ms is not None else record_time_ns
        if time_ns is None:
            logger.debug("Skipping EMF metric %s: it has no timestamp", emf["name"])
            continue

        dimensions = emf.get("dimensions")
        dimension_pairs = list(dimensions.items()) if isinstance(dimensions, Mapping) else []
        attributes = _key_values([("aws.cloudwatch.namespace", emf.get("namespace")), *dimension_pairs])

        values = emf.get("values")
        if not isinstance(values, list):
            continue
        points = metrics.gauge_points(emf["name"], _emf_unit(emf.get("unit")))
        for value in values:
            number = _number(value)
            if number is None:
                continue
            points.append({"attributes": attributes, "timeUnixNano": str(time_ns), "asDouble": float(number)})


def _emf_unit(unit: Any) -> Optional[str]:
    if not isinstance(unit, str) or unit in ("", "None"):
        return None
    return _EMF_UNITS.get(unit, unit)


def _add_drop_counts(metrics: _MetricSet, record: Mapping[str, Any]) -> None:
    time_ns = _iso_to_unix_nano(record.get("time"))
    dropped = record.get("dropped")
    if time_ns is None or not isinstance(dropped, Mapping):
        logger.debug("Skipping a drops record without a valid time or dropped counts")
        return
    start_ns = _iso_to_unix_nano(record.get("startTime"))

    points = metrics.delta_sum_points(DROPPED_RECORDS_METRIC, "{record}")
    for reason, count in dropped.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            continue
        point = {
            "attributes": _key_values([("reason", reason)]),
            "timeUnixNano": str(time_ns),
            "asInt": str(count),
        }
        if start_ns is not None and start_ns <= time_ns:
            point["startTimeUnixNano"] = str(start_ns)
        points.append(point)


# --------------------------------------------------------------------------------------------
# Traces
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Exporter
# --------------------------------------------------------------------------------------------

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

"""OTLP/JSON building blocks shared by the encoders: resource, scope, AnyValue, times and ids."""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Optional
from urllib.parse import unquote

from telemetry_ext import __version__

logger = logging.getLogger(__name__)

# The instrumentation scope of every payload: this extension, not the function's own SDK.
SCOPE = {"name": "telemetry-ext", "version": __version__}

_BYTES_PER_MB = 1024 * 1024  # Lambda's "MB" of memory is a mebibyte.
_NANOS_PER_MS = 1_000_000
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_MAX_ANY_VALUE_DEPTH = 32

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

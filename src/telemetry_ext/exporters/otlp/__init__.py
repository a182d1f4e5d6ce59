"""OTLP/HTTP exporter with JSON encoding, and the pure functions that build its payloads.

The encoders follow the OTLP JSON rules (opentelemetry-proto, docs/specification.md, "JSON
Protobuf Encoding"): keys are lowerCamelCase, `traceId` and `spanId` are hex strings, enums are
integers and 64-bit integers are decimal strings. Each encoder takes the resource as a plain
mapping of attribute names to values, as `resource_attributes` returns it.

The package has one module per concept:

- `common`: resource attributes, instrumentation scope, AnyValue mapping, times and ids
- `logs`, `metrics`, `traces`: the encoder of each signal
- `exporter`: `OtlpExporter`, which sends the encoded signals over HTTP
"""

from __future__ import annotations

from telemetry_ext.exporters.otlp.common import SCOPE, resource_attributes
from telemetry_ext.exporters.otlp.exporter import DEFAULT_MAX_RESPONSE_BYTES, SIGNALS, OtlpExporter
from telemetry_ext.exporters.otlp.logs import SEVERITY_NUMBERS, encode_logs
from telemetry_ext.exporters.otlp.metrics import (
    AGGREGATION_TEMPORALITY_DELTA,
    DROPPED_RECORDS_METRIC,
    encode_metrics,
)
from telemetry_ext.exporters.otlp.traces import (
    SPAN_KIND_INTERNAL,
    SPAN_KIND_SERVER,
    STATUS_CODE_ERROR,
    STATUS_CODE_UNSET,
    encode_traces,
)

# Private, and re-exported because tests replace an encoder in this dict. It is the object that
# OtlpExporter reads, so a replacement made through this package reaches the exporter.
from telemetry_ext.exporters.otlp.exporter import _ENCODERS  # noqa: E402, F401

__all__ = [
    "AGGREGATION_TEMPORALITY_DELTA",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DROPPED_RECORDS_METRIC",
    "SCOPE",
    "SEVERITY_NUMBERS",
    "SIGNALS",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "STATUS_CODE_ERROR",
    "STATUS_CODE_UNSET",
    "OtlpExporter",
    "encode_logs",
    "encode_metrics",
    "encode_traces",
    "resource_attributes",
]

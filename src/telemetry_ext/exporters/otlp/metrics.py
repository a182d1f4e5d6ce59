"""Encoder of platform metrics, EMF metrics and drop counters as an OTLP
ExportMetricsServiceRequest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from telemetry_ext.exporters.base import Record
from telemetry_ext.exporters.otlp.common import (
    SCOPE,
    _BYTES_PER_MB,
    _iso_to_unix_nano,
    _key_values,
    _ms_to_nanos,
    _number,
    _records_of_kind,
    _resource_json,
    _span_window,
)

logger = logging.getLogger(__name__)

AGGREGATION_TEMPORALITY_DELTA = 1


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


def _point_time_ns(record: Mapping[str, Any]) -> Optional[int]:
    """Return the time of an invocation's data points: its end, else its start."""
    window = _span_window(record)
    return None if window is None else window[1]

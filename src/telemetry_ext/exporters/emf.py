"""Writes per-invocation metrics to stdout in CloudWatch Embedded Metric Format.

The documents are built with Powertools' metrics provider, so their shape follows what
CloudWatch accepts. CloudWatch takes at most 100 values per metric and document. Powertools
prints a document to stdout by itself once a metric reaches 100 values, bypassing ``stream``,
so each document here contains at most 99 invocations. Lambda sends the extension's stdout
to the function's log group, where CloudWatch extracts the metrics.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional, TextIO

from telemetry_ext.exporters.base import ExportResult, Outcome, Record

DEFAULT_NAMESPACE = "TelemetryExt"
# Every invocation adds one value to each of its metrics, so a document of this many
# invocations stays below the 100 values at which Powertools flushes on its own.
MAX_INVOCATIONS_PER_DOCUMENT = 99

# Record field, metric name, unit. Units are Powertools MetricUnit names.
_INVOCATION_METRICS = (
    ("durationMs", "Duration", "Milliseconds"),
    ("billedDurationMs", "BilledDuration", "Milliseconds"),
    ("maxMemoryUsedMB", "MaxMemoryUsed", "Megabytes"),
    ("initDurationMs", "InitDuration", "Milliseconds"),
    ("extensionOverheadMs", "ExtensionOverhead", "Milliseconds"),
)


class EmfExporter:
    name = "emf"

    def __init__(self, function_name: Optional[str], namespace: str = DEFAULT_NAMESPACE, stream: Optional[TextIO] = None) -> None:
        # Imported here: Powertools takes tens of milliseconds to import, which must not land on
        # the cold-start path when EMF is off.
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        self._metrics_type = EphemeralMetrics
        self._units = MetricUnit
        self._namespace = namespace
        self._service = os.environ.get("POWERTOOLS_SERVICE_NAME") or function_name or "telemetry-ext"
        self._function_name = function_name or "unknown"
        self._stream = stream

    def export(self, records: list[Record], timeout_s: float) -> ExportResult:
        documents = []
        metrics = self._new_metrics()
        invocations_in_document = 0
        for record in records:
            kind = record.get("kind")
            if kind == "invocation":
                if invocations_in_document == MAX_INVOCATIONS_PER_DOCUMENT:
                    documents.append(metrics.serialize_metric_set())
                    metrics = self._new_metrics()
                    invocations_in_document = 0
                self._add_invocation(metrics, record)
                invocations_in_document += 1
            elif kind == "drops":
                documents.extend(self._drop_documents(record))
        if metrics.metric_set:
            documents.append(metrics.serialize_metric_set())
        stream = self._stream or sys.stdout
        try:
            for document in documents:
                stream.write(json.dumps(document, separators=(",", ":")) + "\n")
            stream.flush()
        except (OSError, ValueError) as error:
            return ExportResult(Outcome.RETRYABLE, f"cannot write EMF to stdout: {error}")
        return ExportResult(Outcome.SENT)

    def close(self) -> None:
        pass

    def _new_metrics(self) -> Any:
        metrics = self._metrics_type(namespace=self._namespace, service=self._service)
        metrics.add_dimension(name="function_name", value=self._function_name)
        return metrics

    def _add_invocation(self, metrics: Any, record: Record) -> None:
        for field, name, unit in _INVOCATION_METRICS:
            value = record.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics.add_metric(name=name, unit=getattr(self._units, unit), value=value)
        status = str(record.get("status") or "").lower()
        count = self._units.Count
        metrics.add_metric(name="Invocations", unit=count, value=1)
        metrics.add_metric(name="ColdStart", unit=count, value=1 if record.get("coldStart") else 0)
        metrics.add_metric(name="Timeouts", unit=count, value=1 if status == "timeout" else 0)
        metrics.add_metric(name="Errors", unit=count, value=1 if status not in ("", "success", "timeout") else 0)

    def _drop_documents(self, record: Record) -> list[dict]:
        documents = []
        for reason, count in sorted((record.get("droppedSinceLast") or {}).items()):
            metrics = self._new_metrics()
            metrics.add_dimension(name="reason", value=str(reason))
            metrics.add_metric(name="RecordsDropped", unit=self._units.Count, value=count)
            documents.append(metrics.serialize_metric_set())
        return documents

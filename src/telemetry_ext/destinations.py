"""Builds the configured destinations and the delivery pipeline around them.

Imported on the telemetry-setup thread, after registration: ``requests`` and Powertools are
slow to import and are not needed before the first invoke.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from telemetry_ext.accounting import Accounting
from telemetry_ext.config import Config, HttpBodyFormat
from telemetry_ext.delivery import Delivery
from telemetry_ext.exporters.base import Exporter
from telemetry_ext.invocations import Aggregator
from telemetry_ext.retry import RetryPolicy


def build_exporters(config: Config, environ: Mapping[str, str]) -> list[Exporter]:
    exporters: list[Exporter] = []
    if config.http_url:
        from telemetry_ext.exporters.http_json import HttpJsonExporter

        exporters.append(
            HttpJsonExporter(
                config.http_url,
                ndjson=config.http_format is HttpBodyFormat.NDJSON,
                gzip_body=config.http_gzip,
                headers=config.http_headers,
            )
        )
    if config.otlp_endpoint:
        from telemetry_ext.exporters.otlp import OtlpExporter, resource_attributes

        exporters.append(
            OtlpExporter(
                config.otlp_endpoint,
                headers=config.otlp_headers,
                resource=resource_attributes(environ, environ.get("OTEL_SERVICE_NAME")),
                gzip=config.otlp_gzip,
            )
        )
    if config.emf_enabled:
        from telemetry_ext.exporters.emf import EmfExporter

        exporters.append(EmfExporter(environ.get("AWS_LAMBDA_FUNCTION_NAME")))
    if config.file_path:
        from telemetry_ext.exporters.file import FileExporter

        exporters.append(FileExporter(config.file_path))
    return exporters


def build_delivery(
    config: Config,
    environ: Mapping[str, str],
    accounting: Accounting,
    aggregator: Aggregator,
    extra_stats: Callable[[], dict[str, Any]],
) -> Delivery:
    export_timeout_s = config.export_timeout_ms / 1000.0
    http_policy = RetryPolicy(attempt_timeout_s=export_timeout_s)
    return Delivery(
        build_exporters(config, environ),
        accounting,
        aggregator.take_ready,
        max_buffer_bytes=config.max_buffer_bytes // 2,
        export_timeout_s=export_timeout_s,
        policies={"http": http_policy, "otlp": RetryPolicy.otlp(), "file": http_policy, "emf": http_policy},
        extra_stats=extra_stats,
    )

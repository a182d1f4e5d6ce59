"""Tests of the OTLP/JSON encoders and of OtlpExporter against `responses` mocks on 127.0.0.1.

Every payload is parsed into the generated protobuf request classes, so a field name, enum or
type that OTLP does not define fails the test.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import logging
from typing import Any, Optional

import pytest
import requests
import responses
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from telemetry_ext import __version__
from telemetry_ext.exporters import otlp
from telemetry_ext.exporters.base import Outcome
from telemetry_ext.exporters.otlp import (
    OtlpExporter,
    encode_logs,
    encode_metrics,
    encode_traces,
    resource_attributes,
)
from telemetry_ext.retry import RetryPolicy

ENDPOINT = "http://127.0.0.1:4318"
LOGS_URL = f"{ENDPOINT}/v1/logs"
METRICS_URL = f"{ENDPOINT}/v1/metrics"
TRACES_URL = f"{ENDPOINT}/v1/traces"

SECRET = "s3cr3t-api-key-value"

XRAY_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
TRACE_ID_HEX = "5759e988bd862e3fe1be46a994272793"
PARENT_ID_HEX = "53995c3f42cd8ad8"
SPAN_ID_HEX = "24cd7d670fa455f0"

START_NS = 1_665_532_815_064_000_000  # 2022-10-12T00:00:15.064Z
OBSERVED_NS = 1_665_532_900_000_000_000

ENVIRON = {
    "AWS_LAMBDA_FUNCTION_NAME": "order-processor",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_REGION": "eu-west-1",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2022/10/12/[$LATEST]abc",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/order-processor",
}


# ---- sample records, shaped as docs/records.md describes them --------------------------------


def make_log(
    message: str,
    level: Optional[str] = "INFO",
    timestamp: str = "2022-10-12T00:00:15.100Z",
    request_id: Optional[str] = "req-1",
    fields: Optional[dict] = None,
) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "level": level,
        "message": message,
        "requestId": request_id,
        "format": "json",
        "fields": fields or {},
    }


def make_invocation(**overrides: Any) -> dict[str, Any]:
    """A complete, successful warm invocation with X-Ray tracing, two logs and an EMF metric."""
    record: dict[str, Any] = {
        "kind": "invocation",
        "requestId": "req-1",
        "functionName": "order-processor",
        "functionVersion": "$LATEST",
        "region": "eu-west-1",
        "startTime": "2022-10-12T00:00:15.064Z",
        "endTime": "2022-10-12T00:00:15.300Z",
        "status": "success",
        "errorType": None,
        "durationMs": 200.5,
        "billedDurationMs": 201,
        "initDurationMs": None,
        "restoreDurationMs": None,
        "memorySizeMB": 128,
        "maxMemoryUsedMB": 64,
        "runtimeDurationMs": 190.0,
        "producedBytes": 512,
        "responseLatencyMs": 23.5,
        "responseDurationMs": 2.0,
        "extensionOverheadMs": 10.5,
        "coldStart": False,
        "traceId": XRAY_ROOT,
        "spanId": SPAN_ID_HEX,
        "tracing": {
            "spanId": SPAN_ID_HEX,
            "type": "X-Amzn-Trace-Id",
            "value": f"Root={XRAY_ROOT};Parent={PARENT_ID_HEX};Sampled=1",
        },
        "logs": [
            make_log(
                "order accepted",
                level="INFO",
                fields={
                    "service": "orders",
                    "retried": False,
                    "attempt": 3,
                    "ratio": 0.25,
                    "tags": ["a", "b"],
                    "location": {"file": "app.py", "line": 12},
                    "missing": None,
                },
            ),
            make_log("payment slow", level="WARN", timestamp="2022-10-12T00:00:15.200123456Z"),
        ],
        "metrics": [
            {
                "namespace": "Orders",
                "name": "OrderValue",
                "unit": "Milliseconds",
                "values": [12.5, 30],
                "dimensions": {"service": "orders", "stage": "prod"},
                "resolution": 60,
                "timestamp": 1_665_532_815_150,
            }
        ],
        "events": [],
        "complete": True,
    }
    record.update(overrides)
    return record


def make_timeout_invocation() -> dict[str, Any]:
    """A cold invocation that timed out, with no X-Ray context."""
    return make_invocation(
        requestId="req-2",
        startTime="2022-10-12T00:01:00.000Z",
        endTime="2022-10-12T00:01:03.000Z",
        status="timeout",
        errorType="Sandbox.Timedout",
        durationMs=3000.0,
        billedDurationMs=3000,
        initDurationMs=150.25,
        coldStart=True,
        traceId=None,
        spanId=None,
        tracing=None,
        responseLatencyMs=None,
        responseDurationMs=None,
        logs=[
            make_log("Task timed out", level="ERROR", request_id="req-2", timestamp="2022-10-12T00:01:03.000Z"),
            make_log("raw line", level=None, request_id="req-2", timestamp="2022-10-12T00:01:02.000Z"),
        ],
        metrics=[],
    )


def make_init() -> dict[str, Any]:
    return {
        "kind": "init",
        "initializationType": "on-demand",
        "phase": "init",
        "status": "success",
        "errorType": None,
        "durationMs": 150.25,
        "runtimeDurationMs": 120.0,
        "runtimeVersion": "python:3.12.v20",
        "runtimeVersionArn": "arn:aws:lambda:eu-west-1::runtime:abc",
        "startTime": "2022-10-12T00:00:59.800Z",
        "endTime": "2022-10-12T00:00:59.950Z",
        "extensions": [],
        "logs": [make_log("loading config", level="DEBUG", request_id=None, timestamp="2022-10-12T00:00:59.900Z")],
        "metrics": [],
        "events": [],
    }


def make_drops() -> dict[str, Any]:
    return {"kind": "drops", "time": "2022-10-12T00:02:00.000Z", "dropped": {"buffer_full": 7, "too_large": 1}}


def make_batch() -> list[dict[str, Any]]:
    return [make_init(), make_invocation(), make_timeout_invocation(), make_drops()]


def make_resource() -> dict[str, Any]:
    return resource_attributes(ENVIRON, None)


# ---- protobuf helpers ------------------------------------------------------------------------

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def hex_ids_to_base64(value: Any) -> Any:
    """Convert OTLP/JSON hex ids to the base64 that the standard protobuf JSON parser expects.

    OTLP/JSON deviates from proto3 JSON for these three fields only.
    """
    if isinstance(value, dict):
        converted = {}
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str):
                converted[key] = base64.b64encode(bytes.fromhex(item)).decode("ascii")
            else:
                converted[key] = hex_ids_to_base64(item)
        return converted
    if isinstance(value, list):
        return [hex_ids_to_base64(item) for item in value]
    return value


def parse_request(payload: Any, message_class: type) -> Any:
    text = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return Parse(json.dumps(hex_ids_to_base64(json.loads(text))), message_class())


def attributes_of(key_values: Any) -> dict[str, Any]:
    """Turn repeated KeyValue protos into a dict of Python values."""
    return {kv.key: any_value_of(kv.value) for kv in key_values}


def any_value_of(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value_of(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    if kind is None:
        return None
    return getattr(value, kind)


def metrics_by_name(request: ExportMetricsServiceRequest) -> dict[str, Any]:
    return {metric.name: metric for metric in request.resource_metrics[0].scope_metrics[0].metrics}


def points_by_invocation(points: Any) -> dict[str, Any]:
    return {attributes_of(point.attributes)["faas.invocation_id"]: point for point in points}


# ---- resource --------------------------------------------------------------------------------


def test_resource_lambda_attributes() -> None:
    attributes = make_resource()
    assert attributes["service.name"] == "order-processor"
    assert attributes["faas.name"] == "order-processor"
    assert attributes["faas.version"] == "$LATEST"
    assert attributes["faas.max_memory"] == 128 * 1024 * 1024
    assert attributes["faas.instance"] == "2022/10/12/[$LATEST]abc"
    assert attributes["cloud.provider"] == "aws"
    assert attributes["cloud.platform"] == "aws_lambda"
    assert attributes["cloud.region"] == "eu-west-1"
    assert attributes["aws.log.group.names"] == ["/aws/lambda/order-processor"]


def test_resource_service_name_precedence() -> None:
    environ = dict(ENVIRON, OTEL_RESOURCE_ATTRIBUTES="service.name=from-attributes")
    assert resource_attributes(environ, None)["service.name"] == "from-attributes"

    environ["OTEL_SERVICE_NAME"] = "from-env"
    assert resource_attributes(environ, None)["service.name"] == "from-env"
    assert resource_attributes(environ, "explicit")["service.name"] == "explicit"


def test_resource_without_lambda_environment() -> None:
    attributes = resource_attributes({}, None)
    assert attributes["service.name"] == "unknown_service"
    assert "faas.name" not in attributes
    assert "faas.max_memory" not in attributes
    assert "cloud.region" not in attributes


def test_resource_otel_attributes_override() -> None:
    environ = dict(ENVIRON, OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod%20eu, team = core,broken")
    attributes = resource_attributes(environ, None)
    assert attributes["deployment.environment"] == "prod eu"
    assert attributes["team"] == "core"
    assert "broken" not in attributes


def test_resource_invalid_memory_skipped() -> None:
    attributes = resource_attributes(dict(ENVIRON, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="lots"), None)
    assert "faas.max_memory" not in attributes


# ---- logs ------------------------------------------------------------------------------------


def encode_sample_logs() -> ExportLogsServiceRequest:
    payload = encode_logs(make_batch(), make_resource(), observed_time_unix_nano=OBSERVED_NS)
    return parse_request(payload, ExportLogsServiceRequest)


def test_logs_resource_and_scope() -> None:
    request = encode_sample_logs()
    resource_logs = request.resource_logs[0]
    resource = attributes_of(resource_logs.resource.attributes)
    assert resource["service.name"] == "order-processor"
    assert resource["faas.max_memory"] == 134217728
    assert resource["cloud.platform"] == "aws_lambda"
    scope = resource_logs.scope_logs[0].scope
    assert scope.name == "telemetry-ext"
    assert scope.version == __version__


def test_logs_one_record_per_line() -> None:
    log_records = encode_sample_logs().resource_logs[0].scope_logs[0].log_records
    bodies = [record.body.string_value for record in log_records]
    assert bodies == ["loading config", "order accepted", "payment slow", "Task timed out", "raw line"]


def test_logs_severity() -> None:
    log_records = encode_sample_logs().resource_logs[0].scope_logs[0].log_records
    severities = [(record.severity_number, record.severity_text) for record in log_records]
    assert severities == [(5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"), (0, "")]


@pytest.mark.parametrize(
    ("level", "number"),
    [("TRACE", 1), ("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("ERROR", 17), ("FATAL", 21), ("LOUD", 0)],
)
def test_logs_severity_numbers(level: str, number: int) -> None:
    record = make_invocation(logs=[make_log("x", level=level)])
    request = parse_request(encode_logs([record], {}, OBSERVED_NS), ExportLogsServiceRequest)
    log_record = request.resource_logs[0].scope_logs[0].log_records[0]
    assert log_record.severity_number == number
    assert log_record.severity_text == level


def test_logs_times() -> None:
    log_records = encode_sample_logs().resource_logs[0].scope_logs[0].log_records
    assert log_records[1].time_unix_nano == START_NS + 36_000_000
    assert log_records[2].time_unix_nano == 1_665_532_815_200_123_456
    assert log_records[1].observed_time_unix_nano == OBSERVED_NS


def test_logs_trace_context_from_xray() -> None:
    log_records = encode_sample_logs().resource_logs[0].scope_logs[0].log_records
    accepted = log_records[1]
    assert accepted.trace_id == bytes.fromhex(TRACE_ID_HEX)
    assert accepted.span_id == bytes.fromhex(SPAN_ID_HEX)


def test_logs_without_trace_context() -> None:
    log_records = encode_sample_logs().resource_logs[0].scope_logs[0].log_records
    assert log_records[0].trace_id == b""
    assert log_records[3].trace_id == b""
    assert log_records[3].span_id == b""


def test_logs_trace_id_from_record_field() -> None:
    record = make_invocation(tracing=None, spanId=None)
    request = parse_request(encode_logs([record], {}, OBSERVED_NS), ExportLogsServiceRequest)
    log_record = request.resource_logs[0].scope_logs[0].log_records[0]
    assert log_record.trace_id == bytes.fromhex(TRACE_ID_HEX)
    assert log_record.span_id == b""


def test_logs_attributes_from_fields() -> None:
    log_records = encode_sample_logs().resource_logs[0].scope_logs[0].log_records
    attributes = attributes_of(log_records[1].attributes)
    assert attributes["faas.invocation_id"] == "req-1"
    assert attributes["service"] == "orders"
    assert attributes["retried"] is False
    assert attributes["attempt"] == 3
    assert attributes["ratio"] == 0.25
    assert attributes["tags"] == ["a", "b"]
    assert attributes["location"] == {"file": "app.py", "line": 12}
    assert "missing" not in attributes


def test_logs_int_value_is_decimal_string() -> None:
    payload = encode_logs(make_batch(), {}, OBSERVED_NS)
    log_json = payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]
    attributes = {kv["key"]: kv["value"] for kv in log_json["attributes"]}
    assert attributes["attempt"] == {"intValue": "3"}
    assert log_json["timeUnixNano"] == str(START_NS + 36_000_000)


def test_logs_init_has_no_invocation_id() -> None:
    log_records = encode_sample_logs().resource_logs[0].scope_logs[0].log_records
    assert "faas.invocation_id" not in attributes_of(log_records[0].attributes)


def test_logs_odd_values_still_parse() -> None:
    fields = {"nan": float("nan"), "inf": float("-inf"), "huge": 2**70, "raw": b"\x00\x01", "nested": [None, 1]}
    record = make_invocation(logs=[make_log("odd", fields=fields)])
    payload = encode_logs([record], {}, OBSERVED_NS)
    request = parse_request(json.dumps(payload, allow_nan=False), ExportLogsServiceRequest)
    attributes = attributes_of(request.resource_logs[0].scope_logs[0].log_records[0].attributes)
    assert attributes["inf"] == float("-inf")
    assert attributes["huge"] == str(2**70)
    assert attributes["raw"] == b"\x00\x01"
    assert attributes["nested"] == [None, 1]


def test_logs_invalid_timestamp_omitted() -> None:
    record = make_invocation(logs=[make_log("x", timestamp="yesterday")])
    payload = encode_logs([record], {}, OBSERVED_NS)
    assert "timeUnixNano" not in payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]


def test_logs_empty_batch() -> None:
    assert encode_logs([], {}, OBSERVED_NS) == {"resourceLogs": []}
    assert encode_logs([make_drops()], {}, OBSERVED_NS) == {"resourceLogs": []}


# ---- metrics ---------------------------------------------------------------------------------


def encode_sample_metrics() -> ExportMetricsServiceRequest:
    return parse_request(encode_metrics(make_batch(), make_resource()), ExportMetricsServiceRequest)


def test_metrics_resource_and_scope() -> None:
    resource_metrics = encode_sample_metrics().resource_metrics[0]
    assert attributes_of(resource_metrics.resource.attributes)["faas.name"] == "order-processor"
    assert resource_metrics.scope_metrics[0].scope.name == "telemetry-ext"


def test_metrics_invoke_duration_gauge() -> None:
    metric = metrics_by_name(encode_sample_metrics())["faas.invoke_duration"]
    assert metric.unit == "ms"
    points = points_by_invocation(metric.gauge.data_points)
    assert points["req-1"].as_double == 200.5
    assert points["req-2"].as_double == 3000.0
    # The time of a data point is the end of the invocation: start + durationMs.
    assert points["req-1"].time_unix_nano == START_NS + 200_500_000


def test_metrics_platform_gauges() -> None:
    metrics = metrics_by_name(encode_sample_metrics())
    assert metrics["aws.lambda.billed_duration"].unit == "ms"
    assert points_by_invocation(metrics["aws.lambda.billed_duration"].gauge.data_points)["req-1"].as_double == 201.0
    memory = metrics["aws.lambda.max_memory_used"]
    assert memory.unit == "By"
    assert points_by_invocation(memory.gauge.data_points)["req-1"].as_int == 64 * 1024 * 1024
    init = metrics["aws.lambda.init_duration"]
    assert list(points_by_invocation(init.gauge.data_points)) == ["req-2"]
    assert init.gauge.data_points[0].as_double == 150.25
    assert metrics["aws.lambda.produced_bytes"].gauge.data_points[0].as_int == 512


def test_metrics_coldstarts_delta_sum() -> None:
    metric = metrics_by_name(encode_sample_metrics())["faas.coldstarts"]
    assert metric.sum.aggregation_temporality == 1
    assert metric.sum.is_monotonic
    points = points_by_invocation(metric.sum.data_points)
    assert points["req-1"].as_int == 0
    assert points["req-2"].as_int == 1
    assert points["req-1"].start_time_unix_nano == START_NS


def test_metrics_errors_and_timeouts() -> None:
    metrics = metrics_by_name(encode_sample_metrics())
    errors = points_by_invocation(metrics["faas.errors"].sum.data_points)
    timeouts = points_by_invocation(metrics["faas.timeouts"].sum.data_points)
    assert errors["req-1"].as_int == 0
    assert errors["req-2"].as_int == 1
    assert timeouts["req-1"].as_int == 0
    assert timeouts["req-2"].as_int == 1


def test_metrics_emf_gauge() -> None:
    metric = metrics_by_name(encode_sample_metrics())["OrderValue"]
    assert metric.unit == "ms"
    points = metric.gauge.data_points
    assert [point.as_double for point in points] == [12.5, 30.0]
    assert points[0].time_unix_nano == 1_665_532_815_150 * 1_000_000
    attributes = attributes_of(points[0].attributes)
    assert attributes == {"aws.cloudwatch.namespace": "Orders", "service": "orders", "stage": "prod"}


def test_metrics_emf_unit_kept_or_mapped() -> None:
    record = make_invocation(
        metrics=[
            {"namespace": "N", "name": "a", "unit": "Kilobytes", "values": [1], "dimensions": {}, "timestamp": 1},
            {"namespace": "N", "name": "b", "unit": None, "values": [1], "dimensions": {}, "timestamp": 1},
            {"namespace": "N", "name": "c", "unit": "Count", "values": [1], "dimensions": {}, "timestamp": 1},
        ]
    )
    metrics = metrics_by_name(parse_request(encode_metrics([record], {}), ExportMetricsServiceRequest))
    assert metrics["a"].unit == "Kilobytes"
    assert metrics["b"].unit == ""
    assert metrics["c"].unit == "1"


def test_metrics_drop_counters() -> None:
    metric = metrics_by_name(encode_sample_metrics())["telemetry_ext.records.dropped"]
    assert metric.sum.aggregation_temporality == 1
    assert metric.sum.is_monotonic
    counts = {attributes_of(point.attributes)["reason"]: point.as_int for point in metric.sum.data_points}
    assert counts == {"buffer_full": 7, "too_large": 1}
    assert metric.sum.data_points[0].time_unix_nano == 1_665_532_920_000_000_000


def test_metrics_empty_batch() -> None:
    assert encode_metrics([], {}) == {"resourceMetrics": []}


# ---- traces ----------------------------------------------------------------------------------


def encode_sample_spans() -> list[Any]:
    request = parse_request(encode_traces(make_batch(), make_resource()), ExportTraceServiceRequest)
    return list(request.resource_spans[0].scope_spans[0].spans)


def spans_by_name(spans: list[Any]) -> dict[str, Any]:
    return {span.name: span for span in spans}


def test_traces_span_names() -> None:
    names = [span.name for span in encode_sample_spans()]
    assert names == [
        "order-processor init",
        "order-processor invoke",
        "responseLatency",
        "responseDuration",
        "order-processor invoke",
    ]


def test_traces_invocation_span() -> None:
    span = encode_sample_spans()[1]
    assert span.kind == 2
    assert span.trace_id == bytes.fromhex(TRACE_ID_HEX)
    assert span.span_id == bytes.fromhex(SPAN_ID_HEX)
    assert span.parent_span_id == bytes.fromhex(PARENT_ID_HEX)
    assert span.start_time_unix_nano == START_NS
    assert span.end_time_unix_nano == START_NS + 200_500_000
    assert span.status.code == 0
    attributes = attributes_of(span.attributes)
    assert attributes["faas.invocation_id"] == "req-1"
    assert attributes["faas.coldstart"] is False
    assert attributes["aws.lambda.status"] == "success"


def test_traces_timeout_span_status() -> None:
    span = encode_sample_spans()[4]
    assert span.status.code == 2
    assert span.status.message == "Sandbox.Timedout"
    assert attributes_of(span.attributes)["faas.coldstart"] is True
    assert span.end_time_unix_nano - span.start_time_unix_nano == 3_000_000_000


def test_traces_status_is_case_insensitive() -> None:
    spans = encode_traces([make_invocation(status="SUCCESS")], {})["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert spans[0]["status"] == {"code": 0}


def test_traces_error_without_error_type() -> None:
    record = make_invocation(status="failure", errorType=None)
    span = encode_traces([record], {})["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["status"] == {"code": 2, "message": "failure"}


def test_traces_child_spans() -> None:
    spans = encode_sample_spans()
    parent, latency, duration = spans[1], spans[2], spans[3]
    for child in (latency, duration):
        assert child.trace_id == parent.trace_id
        assert child.parent_span_id == parent.span_id
        assert len(child.span_id) == 8
        assert child.kind == 1
    assert latency.start_time_unix_nano == START_NS
    assert latency.end_time_unix_nano == START_NS + 23_500_000
    assert duration.start_time_unix_nano == latency.end_time_unix_nano
    assert duration.end_time_unix_nano == START_NS + 25_500_000
    assert latency.span_id != duration.span_id


def test_traces_child_spans_from_spans_list() -> None:
    record = make_invocation(
        spans=[
            {"name": "responseLatency", "start": "2022-10-12T00:00:15.070Z", "durationMs": 10.0},
            {"name": "responseDuration", "start": "2022-10-12T00:00:15.080Z", "durationMs": 5.0},
        ]
    )
    request = parse_request(encode_traces([record], {}), ExportTraceServiceRequest)
    spans = spans_by_name(list(request.resource_spans[0].scope_spans[0].spans))
    assert spans["responseLatency"].start_time_unix_nano == START_NS + 6_000_000
    assert spans["responseLatency"].end_time_unix_nano == START_NS + 16_000_000
    assert spans["responseDuration"].start_time_unix_nano == START_NS + 16_000_000
    assert spans["responseDuration"].end_time_unix_nano == START_NS + 21_000_000


def test_traces_ids_without_xray() -> None:
    spans = encode_sample_spans()
    span = spans[4]
    assert len(span.trace_id) == 16
    assert len(span.span_id) == 8
    assert span.trace_id != bytes(16)
    assert span.parent_span_id == b""


def test_traces_derived_ids_are_stable() -> None:
    first = encode_traces([make_timeout_invocation()], {})
    second = encode_traces([make_timeout_invocation()], {})
    assert first == second
    other = encode_traces([make_timeout_invocation() | {"requestId": "req-3"}], {})
    assert other["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] != (
        first["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    )


def test_traces_tracing_header_string() -> None:
    record = make_invocation(tracing=f"Root={XRAY_ROOT};Parent={PARENT_ID_HEX};Sampled=1", spanId=None, traceId=None)
    request = parse_request(encode_traces([record], {}), ExportTraceServiceRequest)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex(TRACE_ID_HEX)
    assert span.parent_span_id == bytes.fromhex(PARENT_ID_HEX)
    assert len(span.span_id) == 8


def test_traces_init_span() -> None:
    span = encode_sample_spans()[0]
    assert span.kind == 1
    assert span.start_time_unix_nano == 1_665_532_859_800_000_000
    assert span.end_time_unix_nano == 1_665_532_859_800_000_000 + 150_250_000
    assert span.status.code == 0
    attributes = attributes_of(span.attributes)
    assert attributes["aws.lambda.initialization_type"] == "on-demand"
    assert attributes["aws.lambda.status"] == "success"
    assert attributes["faas.coldstart"] is True


def test_traces_function_name_from_resource() -> None:
    record = make_invocation(functionName=None)
    span = encode_traces([record], {"faas.name": "from-resource"})["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["name"] == "from-resource invoke"


def test_traces_record_without_times_skipped() -> None:
    record = make_invocation(startTime=None, endTime=None)
    assert encode_traces([record], {}) == {"resourceSpans": []}


def test_traces_proto3_json_shape() -> None:
    span = encode_traces([make_invocation()], {})["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == TRACE_ID_HEX
    assert span["kind"] == 2
    assert span["startTimeUnixNano"] == str(START_NS)


# ---- exporter --------------------------------------------------------------------------------


def make_exporter(**options: Any) -> OtlpExporter:
    return OtlpExporter(ENDPOINT, {"x-api-key": SECRET}, make_resource(), **options)


def add_success(url: str, body: Optional[dict] = None) -> None:
    responses.add(responses.POST, url, json=body if body is not None else {}, status=200)


def calls_to(url: str) -> list[Any]:
    return [call for call in responses.calls if call.request.url == url]


@responses.activate
def test_exporter_sends_each_signal() -> None:
    for url in (LOGS_URL, METRICS_URL, TRACES_URL):
        add_success(url)
    exporter = make_exporter()

    result = exporter.export(make_batch(), timeout_s=5.0)

    assert result.outcome is Outcome.SENT
    assert result.rejected_count == 0
    assert [call.request.url for call in responses.calls] == [LOGS_URL, METRICS_URL, TRACES_URL]
    for call in responses.calls:
        assert call.request.headers["Content-Type"] == "application/json"
        assert call.request.headers["x-api-key"] == SECRET
        assert "Content-Encoding" not in call.request.headers

    logs = parse_request(responses.calls[0].request.body, ExportLogsServiceRequest)
    metrics = parse_request(responses.calls[1].request.body, ExportMetricsServiceRequest)
    traces = parse_request(responses.calls[2].request.body, ExportTraceServiceRequest)
    assert len(logs.resource_logs[0].scope_logs[0].log_records) == 5
    assert "faas.invoke_duration" in metrics_by_name(metrics)
    assert len(traces.resource_spans[0].scope_spans[0].spans) == 5


@responses.activate
def test_exporter_timeout_within_budget() -> None:
    for url in (LOGS_URL, METRICS_URL, TRACES_URL):
        add_success(url)
    make_exporter().export(make_batch(), timeout_s=2.0)
    for call in responses.calls:
        connect_timeout_s, read_timeout_s = call.request.req_kwargs["timeout"]
        assert 0 < connect_timeout_s <= 2.0
        assert 0 < read_timeout_s <= 2.0


@responses.activate
def test_exporter_skips_empty_signals() -> None:
    add_success(METRICS_URL)
    result = make_exporter().export([make_drops()], timeout_s=5.0)
    assert result.outcome is Outcome.SENT
    assert [call.request.url for call in responses.calls] == [METRICS_URL]


@responses.activate
def test_exporter_nothing_to_send() -> None:
    result = make_exporter().export([], timeout_s=5.0)
    assert result.outcome is Outcome.SENT
    assert len(responses.calls) == 0


@responses.activate
def test_exporter_chosen_signals_only() -> None:
    add_success(TRACES_URL)
    result = make_exporter(signals=("traces",)).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.SENT
    assert [call.request.url for call in responses.calls] == [TRACES_URL]


@responses.activate
def test_exporter_partial_success() -> None:
    add_success(LOGS_URL, {"partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "too old"}})
    add_success(METRICS_URL, {"partialSuccess": {"rejectedDataPoints": 3}})
    add_success(TRACES_URL, {"partialSuccess": {}})

    result = make_exporter().export(make_batch(), timeout_s=5.0)

    assert result.outcome is Outcome.SENT
    assert result.rejected_count == 5
    assert len(responses.calls) == 3


@responses.activate
def test_exporter_partial_success_is_not_resent() -> None:
    add_success(LOGS_URL, {"partialSuccess": {"rejectedLogRecords": "2"}})
    add_success(METRICS_URL)
    add_success(TRACES_URL)
    exporter = make_exporter()
    batch = make_batch()

    assert exporter.export(batch, timeout_s=5.0).outcome is Outcome.SENT
    assert len(responses.calls) == 3
    # A second call with the same batch is a new delivery, not a resend of the rejected part.
    exporter.export(batch, timeout_s=5.0)
    assert len(calls_to(LOGS_URL)) == 2


@responses.activate
def test_exporter_warning_only_partial_success(caplog: pytest.LogCaptureFixture) -> None:
    add_success(LOGS_URL, {"partialSuccess": {"errorMessage": "attribute truncated"}})
    caplog.set_level(logging.WARNING, logger="telemetry_ext")
    result = make_exporter(signals=("logs",)).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.SENT
    assert result.rejected_count == 0
    assert "attribute truncated" in caplog.text


@responses.activate
def test_exporter_429_with_retry_after() -> None:
    responses.add(responses.POST, LOGS_URL, status=429, headers={"Retry-After": "3"}, json={"message": "slow down"})

    result = make_exporter().export(make_batch(), timeout_s=5.0)

    assert result.outcome is Outcome.RETRYABLE
    assert result.retry_after_s == 3.0
    assert "429" in result.detail
    # The exporter stops at the first retryable failure: the same collector would refuse the rest.
    assert [call.request.url for call in responses.calls] == [LOGS_URL]


@responses.activate
def test_exporter_503_without_retry_after() -> None:
    responses.add(responses.POST, LOGS_URL, status=503)
    result = make_exporter().export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.RETRYABLE
    assert result.retry_after_s is None


@responses.activate
def test_exporter_500_is_rejected_for_otlp() -> None:
    responses.add(responses.POST, LOGS_URL, status=500)
    result = make_exporter(signals=("logs",)).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.REJECTED


@responses.activate
def test_exporter_retry_sends_only_unsent_signals() -> None:
    add_success(LOGS_URL)
    responses.add(responses.POST, METRICS_URL, status=503, headers={"Retry-After": "1"})
    add_success(METRICS_URL)
    add_success(TRACES_URL)
    exporter = make_exporter()
    batch = make_batch()

    first = exporter.export(batch, timeout_s=5.0)
    second = exporter.export(batch, timeout_s=5.0)

    assert first.outcome is Outcome.RETRYABLE
    assert first.retry_after_s == 1.0
    assert second.outcome is Outcome.SENT
    assert [call.request.url for call in responses.calls] == [LOGS_URL, METRICS_URL, METRICS_URL, TRACES_URL]
    assert responses.calls[1].request.body == responses.calls[2].request.body


@responses.activate
def test_exporter_other_batch_starts_over() -> None:
    add_success(LOGS_URL)
    responses.add(responses.POST, METRICS_URL, status=503)
    add_success(METRICS_URL)
    add_success(TRACES_URL)
    exporter = make_exporter()

    exporter.export(make_batch(), timeout_s=5.0)
    exporter.export(make_batch(), timeout_s=5.0)

    assert len(calls_to(LOGS_URL)) == 2


@responses.activate
def test_exporter_changed_batch_starts_over() -> None:
    add_success(LOGS_URL)
    responses.add(responses.POST, METRICS_URL, status=503)
    add_success(METRICS_URL)
    add_success(TRACES_URL)
    exporter = make_exporter()
    batch = make_batch()

    exporter.export(batch, timeout_s=5.0)
    batch.append(make_invocation(requestId="req-9"))
    exporter.export(batch, timeout_s=5.0)

    assert len(calls_to(LOGS_URL)) == 2


@responses.activate
def test_exporter_400_rejected() -> None:
    responses.add(responses.POST, LOGS_URL, status=400, json={"code": 3, "message": "bad timeUnixNano"})
    responses.add(responses.POST, METRICS_URL, status=400, json={"message": "bad"})
    responses.add(responses.POST, TRACES_URL, status=400)

    result = make_exporter().export(make_batch(), timeout_s=5.0)

    assert result.outcome is Outcome.REJECTED
    assert len(responses.calls) == 3


@responses.activate
def test_exporter_one_signal_rejected(caplog: pytest.LogCaptureFixture) -> None:
    responses.add(responses.POST, LOGS_URL, status=400, json={"code": 3, "message": "bad timeUnixNano"})
    add_success(METRICS_URL)
    add_success(TRACES_URL)
    caplog.set_level(logging.WARNING, logger="telemetry_ext")

    result = make_exporter().export(make_batch(), timeout_s=5.0)

    assert result.outcome is Outcome.SENT
    assert result.rejected_count == 5  # every log record of the batch
    assert "bad timeUnixNano" in caplog.text


@responses.activate
def test_exporter_redirect_not_followed() -> None:
    responses.add(responses.POST, LOGS_URL, status=307, headers={"Location": "http://127.0.0.1:9/v1/logs"})
    result = make_exporter(signals=("logs",)).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.REJECTED
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (requests.exceptions.ConnectionError("refused"), "connection failed"),
        (requests.exceptions.ConnectTimeout("slow connect"), "connect timed out"),
        (requests.exceptions.ReadTimeout("slow read"), "read timed out"),
    ],
)
def test_exporter_transport_errors_retryable(error: Exception, detail: str) -> None:
    responses.add(responses.POST, LOGS_URL, body=error)
    result = make_exporter().export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.RETRYABLE
    assert detail in result.detail
    assert len(responses.calls) == 1


@responses.activate
def test_exporter_unknown_url_is_connection_error() -> None:
    # No mock for the URL: `responses` raises ConnectionError, as a refused connection would.
    result = make_exporter(signals=("logs",)).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.RETRYABLE


@responses.activate
def test_exporter_gzip_body() -> None:
    add_success(LOGS_URL)
    make_exporter(signals=("logs",), gzip=True).export(make_batch(), timeout_s=5.0)

    request = responses.calls[0].request
    assert request.headers["Content-Encoding"] == "gzip"
    logs = parse_request(gzip.decompress(request.body), ExportLogsServiceRequest)
    assert len(logs.resource_logs[0].scope_logs[0].log_records) == 5


@responses.activate
def test_exporter_never_logs_headers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses.add(responses.POST, LOGS_URL, status=400, json={"message": "bad"})
    responses.add(responses.POST, METRICS_URL, body=requests.exceptions.ConnectionError("refused"))
    exporter = make_exporter()

    exporter.export(make_batch(), timeout_s=5.0)

    assert responses.calls[0].request.headers["x-api-key"] == SECRET
    assert caplog.records, "expected the exporter to log something"
    assert SECRET not in caplog.text
    assert SECRET not in repr(exporter)
    assert "x-api-key" in repr(exporter)


def test_exporter_invalid_header_message_hides_value() -> None:
    with pytest.raises(ValueError) as excinfo:
        OtlpExporter(ENDPOINT, {"x-api-key": SECRET + "\r\nInjected: 1"}, {})
    assert SECRET not in str(excinfo.value)


@responses.activate
def test_exporter_deadline_before_signal() -> None:
    now_s = [100.0]

    def clock() -> float:
        return now_s[0]

    def slow_logs(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        now_s[0] += 5.0
        return 200, {}, "{}"

    responses.add_callback(responses.POST, LOGS_URL, callback=slow_logs)
    exporter = make_exporter(clock=clock)

    result = exporter.export(make_batch(), timeout_s=5.0)

    assert result.outcome is Outcome.RETRYABLE
    assert "metrics" in result.detail
    assert [call.request.url for call in responses.calls] == [LOGS_URL]


@responses.activate
def test_exporter_encoding_error_rejects_signal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_encoder(records: Any, resource: Any) -> dict:
        raise RuntimeError("encoder bug")

    monkeypatch.setitem(otlp._ENCODERS, "logs", broken_encoder)
    add_success(METRICS_URL)
    add_success(TRACES_URL)
    caplog.set_level(logging.ERROR, logger="telemetry_ext")

    result = make_exporter().export(make_batch(), timeout_s=5.0)

    assert result.outcome is Outcome.SENT
    assert "rejected logs" in result.detail
    assert [call.request.url for call in responses.calls] == [METRICS_URL, TRACES_URL]
    assert "Failed to encode OTLP logs" in caplog.text


@responses.activate
def test_exporter_encoding_error_only_signal() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(otlp._ENCODERS, "logs", lambda records, resource: 1 / 0)
        result = make_exporter(signals=("logs",)).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.REJECTED
    assert len(responses.calls) == 0


@responses.activate
def test_exporter_oversized_response_ignored() -> None:
    add_success(LOGS_URL, {"partialSuccess": {"rejectedLogRecords": "2"}, "padding": "x" * 5000})
    result = make_exporter(signals=("logs",), max_response_bytes=100).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.SENT
    assert result.rejected_count == 0


@responses.activate
def test_exporter_non_json_success_body() -> None:
    responses.add(responses.POST, LOGS_URL, status=200, body=b"\x0a\x00", content_type="application/x-protobuf")
    result = make_exporter(signals=("logs",)).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.SENT


@responses.activate
def test_exporter_custom_policy_statuses() -> None:
    responses.add(responses.POST, LOGS_URL, status=500)
    policy = RetryPolicy.otlp().with_statuses({500})
    result = make_exporter(signals=("logs",), policy=policy).export(make_batch(), timeout_s=5.0)
    assert result.outcome is Outcome.RETRYABLE


def test_exporter_does_not_mutate_records() -> None:
    batch = make_batch()
    before = copy.deepcopy(batch)
    with responses.RequestsMock() as mock:
        for url in (LOGS_URL, METRICS_URL, TRACES_URL):
            mock.add(responses.POST, url, json={}, status=200)
        make_exporter().export(batch, timeout_s=5.0)
    assert batch == before


@pytest.mark.parametrize(
    "endpoint",
    ["127.0.0.1:4318", "ftp://127.0.0.1", "http://user:pass@127.0.0.1:4318", "http://127.0.0.1:4318/?a=1", "http://"],
)
def test_exporter_rejects_invalid_endpoint(endpoint: str) -> None:
    with pytest.raises(ValueError):
        OtlpExporter(endpoint, {}, {})


def test_exporter_rejects_unknown_signal() -> None:
    with pytest.raises(ValueError):
        OtlpExporter(ENDPOINT, {}, {}, signals=("profiles",))


@responses.activate
def test_exporter_trailing_slash_endpoint() -> None:
    add_success(LOGS_URL)
    exporter = OtlpExporter(ENDPOINT + "/", {}, {}, signals=("logs",))
    exporter.export(make_batch(), timeout_s=5.0)
    assert responses.calls[0].request.url == LOGS_URL


def test_exporter_closes_only_own_session() -> None:
    class TrackingSession(requests.Session):
        closed = False

        def close(self) -> None:
            self.closed = True
            super().close()

    shared = TrackingSession()
    OtlpExporter(ENDPOINT, {}, {}, session=shared).close()
    assert not shared.closed
    shared.close()

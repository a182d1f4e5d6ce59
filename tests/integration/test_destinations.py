"""Each destination fed by the packaged extension in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from telemetry_ext.simulator.sink import Sink

REQUESTS = {
    "/v1/logs": ExportLogsServiceRequest,
    "/v1/metrics": ExportMetricsServiceRequest,
    "/v1/traces": ExportTraceServiceRequest,
}


def test_otlp_destination_payloads_parse(simulate, sink):
    otlp = Sink().start()
    try:
        base = otlp.url.rsplit("/", 1)[0]
        report = simulate(
            invokes=2,
            destination=sink,
            env={"TELEMETRY_EXT_FLUSH": "end", "TELEMETRY_EXT_OTLP_ENDPOINT": base, "OTEL_SERVICE_NAME": "orders"},
        )
    finally:
        otlp.stop()

    assert report["ok"], report
    parsed = {path: [] for path in REQUESTS}
    for path, body in otlp.payloads:
        assert path in REQUESTS, path
        parsed[path].append(json_format.Parse(body, REQUESTS[path]()))
    logs = [record for request in parsed["/v1/logs"] for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records]
    spans = [span for request in parsed["/v1/traces"] for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    metrics = [m for request in parsed["/v1/metrics"] for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert any(record.body.string_value == "order charged" for record in logs)
    invocation_ids = {
        attribute.value.string_value for record in logs for attribute in record.attributes if attribute.key == "faas.invocation_id"
    }
    assert {inv["requestId"] for inv in report["invocations"]} <= invocation_ids
    assert len([span for span in spans if span.kind == span.SPAN_KIND_SERVER]) >= 2
    assert {"OrdersReceived", "OrdersSucceeded"} <= {metric.name for metric in metrics}
    resource = parsed["/v1/logs"][0].resource_logs[0].resource
    attributes = {attribute.key: attribute.value.string_value for attribute in resource.attributes}
    assert attributes["service.name"] == "orders"
    assert attributes["faas.name"] == "order-processor"


def test_emf_destination_prints_metrics(simulate, sink):
    report = simulate(invokes=2, env={"TELEMETRY_EXT_FLUSH": "end", "TELEMETRY_EXT_EMF": "true"})

    documents = [json.loads(line) for line in report["extensions"]["telemetry-ext"]["output"] if line.startswith("{")]
    names = {metric["Name"] for document in documents for d in document["_aws"]["CloudWatchMetrics"] for metric in d["Metrics"]}
    assert {"Duration", "BilledDuration", "MaxMemoryUsed", "ColdStart", "Invocations"} <= names
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                assert metric["Name"] in document


def test_file_destination_appends_records(simulate, sink, tmp_path: Path):
    path = tmp_path / "records.ndjson"
    report = simulate(invokes=2, env={"TELEMETRY_EXT_FLUSH": "end", "TELEMETRY_EXT_FILE_PATH": str(path)})

    records = [json.loads(line) for line in path.read_text().splitlines()]
    invocations = [record for record in records if record["kind"] == "invocation"]
    assert {record["requestId"] for record in invocations} == {inv["requestId"] for inv in report["invocations"]}
    assert len(invocations) == len(report["invocations"])

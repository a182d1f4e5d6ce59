"""Tests of the HTTP JSON, file and EMF exporters."""

from __future__ import annotations

import errno
import gzip
import io
import json
import numbers
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from telemetry_ext.exporters.base import Outcome
from telemetry_ext.exporters.emf import EmfExporter
from telemetry_ext.exporters.encoding import to_json_bytes, to_ndjson_bytes
from telemetry_ext.exporters import file as file_module
from telemetry_ext.exporters.file import FileExporter
from telemetry_ext.exporters.http_json import HttpJsonExporter

URL = "http://127.0.0.1:18080/ingest"
RECORDS = [
    {"kind": "invocation", "requestId": "req-1", "status": "success", "durationMs": 12.5},
    {"kind": "invocation", "requestId": "req-2", "status": "error", "logs": [{"message": "caf\u00e9"}]},
]


def sent_body(call_index: int = 0) -> bytes:
    body = responses.calls[call_index].request.body
    return body if isinstance(body, bytes) else body.encode()


# --- encoding ------------------------------------------------------------------------------


def test_json_bytes_replaces_lone_surrogate() -> None:
    encoded = to_json_bytes({"message": "bad \ud800 char"})

    assert json.loads(encoded.decode("utf-8")) == {"message": "bad \ufffd char"}


def test_json_bytes_keeps_non_ascii() -> None:
    encoded = to_json_bytes({"message": "caf\u00e9 \U0001f600"})

    assert encoded == '{"message":"caf\u00e9 \U0001f600"}'.encode()


def test_ndjson_bytes_one_line_per_record() -> None:
    encoded = to_ndjson_bytes(RECORDS)

    lines = encoded.split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line) for line in lines[:-1]] == RECORDS


# --- HttpJsonExporter ----------------------------------------------------------------------


@responses.activate
def test_http_sends_json_array() -> None:
    responses.add(responses.POST, URL, status=200)
    exporter = HttpJsonExporter(URL)

    result = exporter.export(RECORDS, 1.0)

    assert result.outcome is Outcome.SENT
    assert json.loads(sent_body()) == RECORDS
    assert responses.calls[0].request.headers["Content-Type"] == "application/json"
    assert responses.calls[0].request.headers["User-Agent"].startswith("telemetry-ext/")


@responses.activate
def test_http_sends_ndjson() -> None:
    responses.add(responses.POST, URL, status=202)
    exporter = HttpJsonExporter(URL, ndjson=True)

    result = exporter.export(RECORDS, 1.0)

    lines = sent_body().decode().splitlines()
    assert result.outcome is Outcome.SENT
    assert [json.loads(line) for line in lines] == RECORDS
    assert responses.calls[0].request.headers["Content-Type"] == "application/x-ndjson"


@responses.activate
def test_http_gzip_body() -> None:
    responses.add(responses.POST, URL, status=200)
    exporter = HttpJsonExporter(URL, gzip_body=True)

    exporter.export(RECORDS, 1.0)

    assert responses.calls[0].request.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(sent_body())) == RECORDS


@responses.activate
def test_http_custom_headers_sent() -> None:
    responses.add(responses.POST, URL, status=200)
    exporter = HttpJsonExporter(URL, headers={"Authorization": "Bearer abc", "X-Team": "core"})

    exporter.export(RECORDS, 1.0)

    headers = responses.calls[0].request.headers
    assert headers["Authorization"] == "Bearer abc"
    assert headers["X-Team"] == "core"


@responses.activate
def test_http_503_retry_after_retryable() -> None:
    responses.add(responses.POST, URL, status=503, headers={"Retry-After": "3"})
    exporter = HttpJsonExporter(URL)

    result = exporter.export(RECORDS, 1.0)

    assert result.outcome is Outcome.RETRYABLE
    assert result.retry_after_s == 3.0
    assert "503" in result.detail


@pytest.mark.parametrize("status", [408, 429, 500, 502, 504])
@responses.activate
def test_http_retryable_statuses(status: int) -> None:
    responses.add(responses.POST, URL, status=status)
    exporter = HttpJsonExporter(URL)

    result = exporter.export(RECORDS, 1.0)

    assert result.outcome is Outcome.RETRYABLE
    assert result.retry_after_s is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
@responses.activate
def test_http_client_error_rejected(status: int) -> None:
    responses.add(responses.POST, URL, status=status)
    exporter = HttpJsonExporter(URL)

    result = exporter.export(RECORDS, 1.0)

    assert result.outcome is Outcome.REJECTED
    assert str(status) in result.detail


@responses.activate
def test_http_connection_error_retryable() -> None:
    responses.add(responses.POST, URL, body=requests.ConnectionError("connection refused"))
    exporter = HttpJsonExporter(URL)

    result = exporter.export(RECORDS, 1.0)

    assert result.outcome is Outcome.RETRYABLE
    assert "ConnectionError" in result.detail


@responses.activate
def test_http_timeout_retryable() -> None:
    responses.add(responses.POST, URL, body=requests.exceptions.ReadTimeout("read timed out"))
    exporter = HttpJsonExporter(URL)

    result = exporter.export(RECORDS, 0.5)

    assert result.outcome is Outcome.RETRYABLE
    assert "timed out" in result.detail


@responses.activate
def test_http_lone_surrogate_encodes() -> None:
    responses.add(responses.POST, URL, status=200)
    exporter = HttpJsonExporter(URL)

    result = exporter.export([{"kind": "invocation", "message": "bad \udc80 byte"}], 1.0)

    assert result.outcome is Outcome.SENT
    assert json.loads(sent_body().decode("utf-8")) == [{"kind": "invocation", "message": "bad \ufffd byte"}]


# --- FileExporter --------------------------------------------------------------------------


def test_file_appends_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.ndjson"
    exporter = FileExporter(str(path))

    first = exporter.export(RECORDS[:1], 1.0)
    second = exporter.export(RECORDS[1:], 1.0)

    lines = path.read_text(encoding="utf-8").splitlines()
    assert first.outcome is Outcome.SENT
    assert second.outcome is Outcome.SENT
    assert [json.loads(line) for line in lines] == RECORDS


def test_file_keeps_existing_content(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.ndjson"
    path.write_text('{"kind": "old"}\n', encoding="utf-8")
    exporter = FileExporter(str(path))

    exporter.export(RECORDS, 1.0)

    assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_file_missing_folder_rejected(tmp_path: Path) -> None:
    exporter = FileExporter(str(tmp_path / "missing-dir" / "telemetry.ndjson"))

    result = exporter.export(RECORDS, 1.0)

    assert result.outcome is Outcome.REJECTED
    assert "missing-dir" in result.detail


def test_file_path_is_folder_rejected(tmp_path: Path) -> None:
    result = FileExporter(str(tmp_path)).export(RECORDS, 1.0)

    assert result.outcome is Outcome.REJECTED


def test_file_full_disk_retryable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_module.os, "write", full_disk)

    result = FileExporter(str(tmp_path / "telemetry.ndjson")).export(RECORDS, 1.0)

    assert result.outcome is Outcome.RETRYABLE


# --- EmfExporter ---------------------------------------------------------------------------


def invocation(request_id: str, status: str = "success", cold_start: bool = False, **fields: Any) -> dict[str, Any]:
    record = {
        "kind": "invocation",
        "requestId": request_id,
        "status": status,
        "coldStart": cold_start,
        "durationMs": 120.5,
        "billedDurationMs": 121,
        "maxMemoryUsedMB": 70,
        "extensionOverheadMs": 1.25,
    }
    record.update(fields)
    return record


def emf_documents(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def assert_valid_emf(document: dict[str, Any]) -> None:
    aws = document["_aws"]
    assert isinstance(aws["Timestamp"], int)
    assert len(aws["CloudWatchMetrics"]) >= 1
    for directive in aws["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str)
        for dimension_set in directive["Dimensions"]:
            for dimension in dimension_set:
                assert isinstance(document[dimension], str)
        assert len(directive["Metrics"]) >= 1
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert len(values) >= 1
            assert len(values) <= 100
            assert all(isinstance(item, numbers.Number) and not isinstance(item, bool) for item in values)


def metric_values(documents: list[dict[str, Any]], name: str) -> list[float]:
    values: list[float] = []
    for document in documents:
        value = document.get(name)
        if value is None:
            continue
        values.extend(value if isinstance(value, list) else [value])
    return values


@pytest.fixture
def emf_stream(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    return io.StringIO()


def test_emf_lines_are_valid_documents(emf_stream: io.StringIO) -> None:
    exporter = EmfExporter("orders", stream=emf_stream)

    result = exporter.export([invocation("req-1"), invocation("req-2", init_duration_ms=None)], 1.0)

    documents = emf_documents(emf_stream)
    assert result.outcome is Outcome.SENT
    assert len(documents) >= 1
    for document in documents:
        assert_valid_emf(document)


def test_emf_invocation_metrics_present(emf_stream: io.StringIO) -> None:
    exporter = EmfExporter("orders", stream=emf_stream)

    exporter.export([invocation("req-1", cold_start=True, initDurationMs=300.0)], 1.0)

    document = emf_documents(emf_stream)[0]
    names = {metric["Name"] for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Duration", "BilledDuration", "MaxMemoryUsed", "ColdStart", "Timeouts", "Errors", "Invocations"} <= names
    assert "InitDuration" in names
    assert metric_values([document], "Duration") == [120.5]
    assert metric_values([document], "ColdStart") == [1.0]
    assert document["function_name"] == "orders"
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TelemetryExt"


def test_emf_counts_timeouts_and_errors(emf_stream: io.StringIO) -> None:
    exporter = EmfExporter("orders", stream=emf_stream)
    records = [
        invocation("req-1", status="success"),
        invocation("req-2", status="timeout"),
        invocation("req-3", status="error"),
        invocation("req-4", status="failure"),
        invocation("req-5", status="Timeout"),
    ]

    exporter.export(records, 1.0)

    documents = emf_documents(emf_stream)
    assert sum(metric_values(documents, "Timeouts")) == 2
    assert sum(metric_values(documents, "Errors")) == 2
    assert sum(metric_values(documents, "Invocations")) == 5


def test_emf_skips_non_numeric_fields(emf_stream: io.StringIO) -> None:
    exporter = EmfExporter("orders", stream=emf_stream)

    exporter.export([invocation("req-1", durationMs=None, billedDurationMs="121", maxMemoryUsedMB=True)], 1.0)

    document = emf_documents(emf_stream)[0]
    assert "Duration" not in document
    assert "BilledDuration" not in document
    assert "MaxMemoryUsed" not in document
    assert_valid_emf(document)


def test_emf_drops_record_gives_reason_dimension(emf_stream: io.StringIO) -> None:
    exporter = EmfExporter("orders", stream=emf_stream)
    drops = {
        "kind": "drops",
        "dropped": {"buffer_full": 9, "malformed_body": 1},
        "droppedSinceLast": {"buffer_full": 4, "malformed_body": 1},
    }

    exporter.export([drops], 1.0)

    documents = emf_documents(emf_stream)
    by_reason = {document["reason"]: metric_values([document], "RecordsDropped") for document in documents}
    assert by_reason == {"buffer_full": [4.0], "malformed_body": [1.0]}
    for document in documents:
        assert_valid_emf(document)
        assert ["function_name", "reason", "service"] in [
            sorted(dimension_set) for dimension_set in document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        ]


def test_emf_ignores_other_records(emf_stream: io.StringIO) -> None:
    exporter = EmfExporter("orders", stream=emf_stream)

    result = exporter.export([{"kind": "init", "durationMs": 300.0}, {"kind": "drops", "droppedSinceLast": {}}], 1.0)

    assert result.outcome is Outcome.SENT
    assert emf_stream.getvalue() == ""


def test_emf_many_invocations_stay_in_stream(emf_stream: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    exporter = EmfExporter("orders", stream=emf_stream)
    records = [invocation(f"req-{number}") for number in range(250)]

    exporter.export(records, 1.0)

    documents = emf_documents(emf_stream)
    assert capsys.readouterr().out == ""
    assert sum(metric_values(documents, "Invocations")) == 250
    assert len(metric_values(documents, "Duration")) == 250
    for document in documents:
        assert_valid_emf(document)


def test_emf_closed_stream_retryable(emf_stream: io.StringIO) -> None:
    exporter = EmfExporter("orders", stream=emf_stream)
    emf_stream.close()

    result = exporter.export([invocation("req-1")], 1.0)

    assert result.outcome is Outcome.RETRYABLE

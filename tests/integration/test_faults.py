"""Faults in the destination and in the telemetry stream, end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telemetry_ext.simulator.sink import Sink
from tests.integration.conftest import write_function

FINAL_LINE = re.compile(r"received (\d+), delivered (\d+), dropped (.+?), unaccounted (\d+)")


def final_accounting(report):
    lines = [line for line in report["extensions"]["telemetry-ext"]["output"] if "exiting after" in line]
    assert len(lines) == 1, report["extensions"]["telemetry-ext"]["output"]
    match = FINAL_LINE.search(lines[0])
    assert match, lines[0]
    received, delivered, dropped_text, unaccounted = match.groups()
    dropped = {}
    if dropped_text != "none":
        for pair in dropped_text.split(", "):
            reason, _, count = pair.partition("=")
            dropped[reason] = int(count)
    return int(received), int(delivered), dropped, int(unaccounted)


SINK_FAULTS = {
    "refuse": dict(mode="refuse"),
    "hang": dict(mode="hang"),
    "slow": dict(mode="slow", delay_ms=300),
    "throttle": dict(mode="status", status_code=429, retry_after="1"),
    "error": dict(mode="status", status_code=503),
    "close_idle": dict(mode="close_idle"),
}


@pytest.mark.parametrize("strategy", ["end", "periodic,100", "adaptive", "shutdown"])
@pytest.mark.parametrize("fault", sorted(SINK_FAULTS))
def test_destination_fault_is_bounded(simulate, fault, strategy):
    sink = Sink(**SINK_FAULTS[fault]).start()
    try:
        report = simulate(invokes=3, destination=sink, env={"TELEMETRY_EXT_FLUSH": strategy, "TELEMETRY_EXT_FLUSH_TIMEOUT_MS": "300"})
    finally:
        sink.stop()

    assert [inv["status"] for inv in report["invocations"]] == ["success"] * 3
    extension = report["extensions"]["telemetry-ext"]
    assert extension["exitCode"] == 0
    assert not extension["killedAtDeadline"]
    assert not extension["crashed"]
    received, delivered, dropped, unaccounted = final_accounting(report)
    assert unaccounted == 0
    assert received == delivered + sum(dropped.values())
    # Time added after runtimeDone stays within the flush budget plus telemetry latency.
    assert extension["afterRuntimeDoneMs"]["max"] < 300 + 250


@pytest.mark.parametrize("left_ms", [2000, 500, 0])
@pytest.mark.parametrize("fault", ["hang", "slow", "throttle", "refuse"])
def test_shutdown_deadline_holds_under_fault(simulate, fault, left_ms):
    sink = Sink(**SINK_FAULTS[fault]).start()
    try:
        report = simulate(
            invokes=2,
            destination=sink,
            env={"TELEMETRY_EXT_FLUSH": "shutdown"},
            shutdown_budget_ms=max(left_ms, 500),
            announced_shutdown_left_ms=left_ms,
        )
    finally:
        sink.stop()

    extension = report["extensions"]["telemetry-ext"]
    assert extension["exitCode"] == 0
    assert not extension["killedAtDeadline"]
    # The sandbox's clock starts before it stops the runtime (up to 300 ms), the extension's
    # when it receives SHUTDOWN; the announced deadline is what the extension must meet.
    assert extension["shutdownExitMs"] < left_ms + 400
    received, delivered, dropped, unaccounted = final_accounting(report)
    assert unaccounted == 0
    assert received == delivered + sum(dropped.values())
    if fault == "hang":
        assert delivered == 0


def test_json_log_format_records(simulate, sink):
    report = simulate(invokes=2, log_format="JSON", env={"TELEMETRY_EXT_FLUSH": "end"})

    assert report["ok"], report
    records = [r for r in sink.records if r.get("kind") == "invocation"]
    logs = [log for record in records for log in record["logs"]]
    assert any(log["message"] == "order charged" for log in logs)
    assert all(log["requestId"] for log in logs if log["format"] == "powertools")


def test_runtime_crash_gets_error_record(simulate, sink, tmp_path: Path):
    task = write_function(
        tmp_path / "crash",
        "import os\n\ndef handler(event, context):\n    print('about to crash')\n    os._exit(3)\n",
    )
    report = simulate(invokes=1, task_dir=task, env={"TELEMETRY_EXT_FLUSH": "end"})

    invocation = report["invocations"][0]
    assert invocation["status"] == "error"
    assert invocation["errorType"] == "Runtime.ExitError"
    records = [r for r in sink.records if r.get("requestId") == invocation["requestId"]]
    assert records
    assert records[0]["status"] == "error"
    assert any("about to crash" in log["message"] for record in records for log in record["logs"])
    assert report["extensions"]["telemetry-ext"]["exitCode"] == 0


def test_record_over_max_bytes_is_joined(simulate, sink, tmp_path: Path):
    task = write_function(
        tmp_path / "big",
        "def handler(event, context):\n    print('x' * 400000)\n    print('after the big line')\n",
    )
    report = simulate(invokes=1, task_dir=task, split_records_over_max_bytes=True, env={"TELEMETRY_EXT_FLUSH": "end"})

    records = [r for r in sink.records if r.get("requestId") == report["invocations"][0]["requestId"]]
    messages = [log["message"] for record in records for log in record["logs"]]
    assert "x" * 400000 in messages
    assert "after the big line" in messages
    _, _, dropped, unaccounted = final_accounting(report)
    assert unaccounted == 0
    assert dropped == {}


def test_platform_logs_dropped_shipped_as_data(simulate, sink):
    report = simulate(invokes=3, drop_telemetry_batches=1, env={"TELEMETRY_EXT_FLUSH": "end"})

    assert [inv["status"] for inv in report["invocations"]] == ["success"] * 3
    drops = [r for r in sink.records if r.get("kind") == "drops"]
    assert drops
    assert drops[-1]["platformDroppedRecords"] > 0
    assert drops[-1]["platformDroppedBytes"] > 0
    assert sum(s["droppedEvents"] for s in report["telemetry"].values()) == drops[-1]["platformDroppedRecords"]
    _, _, _, unaccounted = final_accounting(report)
    assert unaccounted == 0


def test_shutdown_deadline_already_passed(simulate, sink):
    report = simulate(
        invokes=2,
        env={"TELEMETRY_EXT_FLUSH": "shutdown"},
        shutdown_budget_ms=2000,
        announced_shutdown_left_ms=0,
    )

    extension = report["extensions"]["telemetry-ext"]
    assert extension["exitCode"] == 0
    assert not extension["killedAtDeadline"]
    # The extension gives up at once instead of using the time the sandbox would still allow.
    assert extension["shutdownExitMs"] < 1000
    received, delivered, dropped, unaccounted = final_accounting(report)
    assert unaccounted == 0
    assert received == delivered + sum(dropped.values())
    assert dropped.get("shutdown_deadline", 0) > 0


@pytest.mark.parametrize("schema", ["2022-07-01", "2022-12-13", "2025-01-29"])
def test_schema_versions_deliver_records(simulate, sink, schema):
    report = simulate(invokes=2, env={"TELEMETRY_EXT_FLUSH": "end", "TELEMETRY_EXT_SCHEMA_VERSION": schema})

    assert report["ok"], report
    records = [r for r in sink.records if r.get("kind") == "invocation"]
    assert len(records) == 2
    assert all(record["complete"] for record in records)

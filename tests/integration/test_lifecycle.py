"""The packaged extension through whole sandbox lifecycles."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import EXAMPLE, write_function

PAYLOADS = json.loads((EXAMPLE / "payloads.json").read_text())


def invocation_records(sink, request_id):
    return [r for r in sink.records if r.get("kind") == "invocation" and r.get("requestId") == request_id]


def test_lifecycle_delivers_every_record(simulate, sink):
    report = simulate(payloads=PAYLOADS, invokes=5, env={"TELEMETRY_EXT_FLUSH": "end"})

    assert report["ok"], report
    assert report["missing"] == []
    assert [inv["status"] for inv in report["invocations"]] == ["success", "success", "error", "success", "error"]
    extension = report["extensions"]["telemetry-ext"]
    assert extension["exitCode"] == 0
    assert not extension["killedAtDeadline"]
    for invocation in report["invocations"]:
        records = invocation_records(sink, invocation["requestId"])
        assert len(records) == 1
        assert records[0]["complete"] is True
        assert records[0]["durationMs"] is not None


def test_lifecycle_record_fields(simulate, sink):
    report = simulate(payloads=PAYLOADS[:1], invokes=2, env={"TELEMETRY_EXT_FLUSH": "end"})

    first = invocation_records(sink, report["invocations"][0]["requestId"])[0]
    assert first["coldStart"] is True
    assert first["status"] == "success"
    assert first["traceId"].startswith("1-")
    assert first["memorySizeMB"] == 256
    assert first["initDurationMs"] > 0
    assert first["extensionOverheadMs"] >= 0
    assert first["responseLatencyMs"] > 0
    assert {m["name"] for m in first["metrics"]} >= {"OrdersReceived", "OrdersSucceeded", "ColdStart"}
    assert any(log["message"] == "order charged" for log in first["logs"])
    second = invocation_records(sink, report["invocations"][1]["requestId"])[0]
    assert second["coldStart"] is False
    init = [r for r in sink.records if r.get("kind") == "init"]
    assert len(init) == 1
    assert init[0]["status"] == "success"
    assert init[0]["durationMs"] > 0


def test_last_report_arrives_after_shutdown(simulate, sink):
    report = simulate(invokes=2, env={"TELEMETRY_EXT_FLUSH": "end"}, report_after_shutdown=True)

    last_id = report["invocations"][-1]["requestId"]
    records = invocation_records(sink, last_id)
    assert len(records) == 1
    assert records[0]["complete"] is True
    assert records[0]["billedDurationMs"] >= 1
    assert report["ok"], report


def test_telemetry_before_invoke_event(simulate, sink):
    report = simulate(invokes=3, env={"TELEMETRY_EXT_FLUSH": "end"}, extension_invoke_delay_ms=150)

    assert report["ok"], report
    for invocation in report["invocations"]:
        records = invocation_records(sink, invocation["requestId"])
        assert len(records) == 1
        assert records[0]["complete"] is True


def test_rejected_registration_keeps_function_working(simulate, sink):
    report = simulate(invokes=2, reject_registrations=1)

    assert [inv["status"] for inv in report["invocations"]] == ["success", "success"]
    assert report["crashes"] == []
    extension = report["extensions"]["telemetry-ext"]
    assert extension["events"] == []
    assert any("registration rejected" in line for line in extension["output"])
    assert not extension["killedAtDeadline"]


def test_subscription_not_supported_keeps_function_working(simulate, sink):
    report = simulate(invokes=2, telemetry_supported=False)

    assert [inv["status"] for inv in report["invocations"]] == ["success", "success"]
    extension = report["extensions"]["telemetry-ext"]
    assert any("not supported here (HTTP 202)" in line for line in extension["output"])
    assert extension["exitCode"] == 0
    assert not extension["killedAtDeadline"]
    assert report["crashes"] == []


def test_shutdown_with_close_deadline(simulate, sink):
    report = simulate(invokes=2, env={"TELEMETRY_EXT_FLUSH": "shutdown"}, shutdown_budget_ms=500)

    extension = report["extensions"]["telemetry-ext"]
    assert extension["exitCode"] == 0
    assert not extension["killedAtDeadline"]
    assert extension["shutdownExitMs"] < 500
    assert report["ok"], report


def test_invalid_configuration_is_harmless(simulate, sink):
    report = simulate(invokes=2, env={"TELEMETRY_EXT_FLUSH": "sometimes"})

    assert [inv["status"] for inv in report["invocations"]] == ["success", "success"]
    extension = report["extensions"]["telemetry-ext"]
    errors = [line for line in extension["output"] if "TELEMETRY_EXT_FLUSH" in line]
    assert len(errors) == 1
    assert extension["exitCode"] == 0
    assert sink.records == []


def test_function_timeout_gets_timeout_record(simulate, sink, tmp_path: Path):
    task = write_function(
        tmp_path / "slow",
        "import time\n\ndef handler(event, context):\n    print('starting slow work')\n    time.sleep(5)\n",
    )
    report = simulate(invokes=1, task_dir=task, timeout_s=0.5, env={"TELEMETRY_EXT_FLUSH": "end"})

    assert report["invocations"][0]["status"] == "timeout"
    assert report["shutdown"]["reason"] == "timeout"
    records = invocation_records(sink, report["invocations"][0]["requestId"])
    assert records
    assert records[0]["status"] == "timeout"
    assert any("starting slow work" in log["message"] for record in records for log in record["logs"])
    assert report["extensions"]["telemetry-ext"]["exitCode"] == 0


def test_unlaunchable_extension_reported(opt_dir, sink, tmp_path: Path):
    import shutil

    from telemetry_ext.simulator.sandbox import SandboxOptions
    from telemetry_ext.simulator.scenario import Scenario, run_scenario

    broken_opt = tmp_path / "opt"
    shutil.copytree(opt_dir, broken_opt, symlinks=True)
    (broken_opt / "extensions" / "not-executable").write_text("#!/bin/bash\nexit 0\n")

    options = SandboxOptions(opt_dir=broken_opt, task_dir=EXAMPLE, handler="app.handler")
    report = run_scenario(Scenario(options, [{"orderId": "o-1", "amount": 10}], invokes=1, interval_ms=0), sink=sink)

    assert report["ok"] is False
    assert any("not-executable could not be started" in crash for crash in report["crashes"])
    assert report["extensions"]["telemetry-ext"]["exitCode"] == 0

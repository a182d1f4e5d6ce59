"""Time added to each invoke: runtimeDone to the extension's next /event/next, per flush strategy."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from telemetry_ext.simulator.bench.common import EXTENSION_NAME, Row, SandboxRun, percentile
from telemetry_ext.simulator.sink import Sink

SECTION = "invokeOverhead"
STRATEGIES = ("end", "periodic,1000", "adaptive", "shutdown")
SINKS = ("healthy", "slow")
SLOW_SINK_DELAY_MS = 200
# A run that would take longer than this at its full count is cut to the reduced count. Its
# figure is then taken over fewer invokes, and the row notes the reduction.
RUN_BUDGET_S = 35.0
# Invokes timed before deciding whether the full count fits RUN_BUDGET_S.
PROBE_INVOKES = 30
# Hard stop of one run, whatever its count.
MAX_RUN_S = 120.0


def run_once(opt_dir: Path, task_dir: Path, strategy: str, sink_kind: str, invokes: int, reduced_invokes: int) -> dict[str, Any]:
    """Run ``invokes`` trivial invocations back to back; return the per-invoke added times in ms."""
    sink = Sink("slow", delay_ms=SLOW_SINK_DELAY_MS) if sink_kind == "slow" else Sink("ok")
    sink.start()
    result: dict[str, Any] = {"strategy": strategy, "sink": sink_kind, "target": invokes, "error": None, "reducedFrom": None}
    try:
        with SandboxRun(opt_dir, task_dir, sink, {"TELEMETRY_EXT_FLUSH": strategy}) as run:
            sandbox = run.sandbox
            sandbox.start()
            if sandbox.init_status != "success":
                result["error"] = f"init failed: {sandbox.init_error_type}"
                return result
            started = time.monotonic()
            target = invokes
            index = 0
            while index < target:
                if time.monotonic() - started > MAX_RUN_S or not run.runtime_alive():
                    result["error"] = f"stopped after {index} invokes (time limit or runtime exit)"
                    break
                invocation = sandbox.invoke(b"{}")
                index += 1
                if invocation.status != "success":
                    result["error"] = f"invoke {index} ended with status {invocation.status}"
                    break
                if index == PROBE_INVOKES and target > reduced_invokes:
                    projected_s = (time.monotonic() - started) / index * target
                    if projected_s > RUN_BUDGET_S:
                        result["reducedFrom"] = target
                        result["projectedS"] = round(projected_s, 1)
                        target = reduced_invokes
            result["elapsedS"] = round(time.monotonic() - started, 2)
            result["added"] = [
                inv.extension_done_ms[EXTENSION_NAME] for inv in sandbox.invocations if EXTENSION_NAME in inv.extension_done_ms
            ]
            sandbox.shutdown()
    finally:
        sink.stop()
    return result


def _row(result: dict[str, Any]) -> Row:
    strategy = result["strategy"]
    sink_label = f"slow sink ({SLOW_SINK_DELAY_MS} ms)" if result["sink"] == "slow" else "healthy sink"
    label = f"Added per invoke: flush {strategy}, {sink_label}"
    key = f"{strategy.split(',')[0]}-{result['sink']}"
    values = result.get("added") or []
    if not values:
        return Row(SECTION, key, label, "ms", None, spread="no data", note=result.get("error") or "")
    count = len(values)
    notes = [f"p99 {percentile(values, 0.99):.1f} ms", f"max {max(values):.1f} ms", f"{count:,} invokes"]
    if result.get("reducedFrom"):
        notes.append(
            f"reduced from {result['reducedFrom']:,}: that many would take about {result['projectedS']:.0f} s, "
            f"over the {RUN_BUDGET_S:.0f} s allowed per run"
        )
    if result.get("error"):
        notes.append(result["error"])
    return Row(
        SECTION,
        key,
        label,
        "ms",
        round(statistics.median(values), 1),
        round(percentile(values, 0.05), 1),
        round(percentile(values, 0.95), 1),
        spread=f"p5-p95 of {count:,} invokes",
        note="; ".join(notes),
        extra={
            "p99": round(percentile(values, 0.99), 1),
            "max": round(max(values), 1),
            "invokes": count,
            "reducedFrom": result.get("reducedFrom"),
            "elapsedS": result.get("elapsedS"),
        },
    )


def measure(opt_dir: Path, task_dir: Path, invokes: int, reduced_invokes: int) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    failures: list[str] = []
    for sink_kind in SINKS:
        for strategy in STRATEGIES:
            result = run_once(opt_dir, task_dir, strategy, sink_kind, invokes, reduced_invokes)
            if result["error"]:
                failures.append(f"invoke overhead ({strategy}, {sink_kind} sink): {result['error']}")
            rows.append(_row(result))
    return rows, failures

"""SHUTDOWN: draining buffered events to a healthy sink, and exiting in time when the sink hangs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from telemetry_ext.simulator.bench.common import EXTENSION_NAME, Row, SandboxRun, runs_row
from telemetry_ext.simulator.sink import Sink

SECTION = "shutdown"
DRAIN_GOAL_MS = 300.0
SHUTDOWN_BUDGET_MS = 2_000
_EXITING = re.compile(r"exiting after (\d+) ms")
_DROPPED = re.compile(r"dropped (\{[^}]*\}|none)")


def run_once(opt_dir: Path, task_dir: Path, sink_mode: str, invokes: int, lines_per_invoke: int) -> dict[str, Any]:
    """Buffer ``invokes * lines_per_invoke`` log lines with the shutdown strategy, then send SHUTDOWN."""
    sink = Sink(sink_mode).start()
    result: dict[str, Any] = {"error": None}
    try:
        env = {"TELEMETRY_EXT_FLUSH": "shutdown", "BENCH_LINES_PER_INVOKE": str(lines_per_invoke)}
        with SandboxRun(opt_dir, task_dir, sink, env) as run:
            sandbox = run.sandbox
            sandbox.start()
            if sandbox.init_status != "success":
                result["error"] = f"init failed: {sandbox.init_error_type}"
                return result
            for index in range(invokes):
                invocation = sandbox.invoke(b"{}")
                if invocation.status != "success":
                    result["error"] = f"invoke {index + 1} ended with status {invocation.status}"
                    break
            info = sandbox.shutdown()["extensions"].get(EXTENSION_NAME, {})
            output = sandbox.extensions[EXTENSION_NAME].output
            result["telemetryDropped"] = sum(s.dropped_events for s in sandbox.hub.subscribers)
        result["shutdownExitMs"] = info.get("exitAfterMs")
        result["killedAtDeadline"] = bool(info.get("killed"))
        exiting = next((line for line in reversed(output) if "exiting after" in line), None)
        match = _EXITING.search(exiting or "")
        result["extensionDrainMs"] = float(match.group(1)) if match else None
        result["exitLine"] = exiting
        result["linesDelivered"] = sum(len(record.get("logs") or []) for record in sink.records)
    finally:
        sink.stop()
    return result


def measure(
    opt_dir: Path, task_dir: Path, invokes: int, lines_per_invoke: int, repeats: int, hang_repeats: int
) -> tuple[list[Row], list[str]]:
    failures: list[str] = []
    drains = [run_once(opt_dir, task_dir, "ok", invokes, lines_per_invoke) for _ in range(repeats)]
    hangs = [run_once(opt_dir, task_dir, "hang", invokes, lines_per_invoke) for _ in range(hang_repeats)]
    for result in drains + hangs:
        if result["error"]:
            failures.append(f"shutdown: {result['error']}")

    expected = invokes * lines_per_invoke
    delivered = [r.get("linesDelivered", 0) for r in drains]
    lossy = sum(1 for count in delivered if count < expected)
    drain_row = runs_row(
        SECTION,
        "drainMs",
        f"SHUTDOWN drain of {expected:,} buffered log lines to a healthy sink",
        "ms",
        [r["extensionDrainMs"] for r in drains if r.get("extensionDrainMs") is not None],
        goal=f"<= {DRAIN_GOAL_MS:g} ms, every line delivered",
        note=(
            "the extension's own 'exiting after N ms' (SHUTDOWN received to done); "
            f"log lines delivered per run: {', '.join(f'{count:,}' for count in delivered)} of {expected:,}"
        ),
        extra={
            "linesDelivered": delivered,
            "linesExpected": expected,
            "exitLines": [r.get("exitLine") for r in drains],
            "telemetryDroppedBySandbox": [r.get("telemetryDropped") for r in drains],
        },
    )
    if drain_row.median is not None:
        drain_row.met = drain_row.median <= DRAIN_GOAL_MS and lossy == 0
        if lossy:
            drop_counts = []
            for result in drains:
                match = _DROPPED.search(result.get("exitLine") or "")
                if match and match.group(1) != "none":
                    drop_counts.append(match.group(1))
            drain_row.note += f"; lines lost in {lossy} of {len(drains)} runs; the extension's drop counts: {', '.join(drop_counts) or 'none'}"

    exit_times = [r["shutdownExitMs"] for r in hangs if r.get("shutdownExitMs") is not None]
    killed = sum(1 for r in hangs if r.get("killedAtDeadline"))
    hang_row = runs_row(
        SECTION,
        "hangExitMs",
        f"SHUTDOWN with a sink that never responds: exit after (budget {SHUTDOWN_BUDGET_MS} ms)",
        "ms",
        exit_times,
        goal="never killed at the deadline",
        note=(
            f"killed at the deadline in {killed} of {len(hangs)} runs; "
            f"exited {SHUTDOWN_BUDGET_MS - max(exit_times, default=SHUTDOWN_BUDGET_MS):.0f} ms or more before the deadline; "
            "time from the start of SHUTDOWN, runtime stop included"
        ),
        extra={"killedAtDeadline": killed, "marginMs": [round(SHUTDOWN_BUDGET_MS - t, 1) for t in exit_times]},
    )
    hang_row.met = killed == 0 and len(exit_times) == len(hangs) and bool(hangs)
    rows = [
        drain_row,
        runs_row(
            SECTION,
            "drainShutdownExitMs",
            "SHUTDOWN drain: sandbox's SHUTDOWN start to extension exit",
            "ms",
            [r["shutdownExitMs"] for r in drains if r.get("shutdownExitMs") is not None],
            note="includes stopping the runtime before SHUTDOWN is sent",
        ),
        hang_row,
    ]
    return rows, failures


"""Memory: the extension's resident set after init and after many invocations that log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from telemetry_ext.simulator.bench.common import (
    EXTENSION_NAME,
    Row,
    SandboxRun,
    resident_kib,
    runs_row,
    steady_resident_kib,
)
from telemetry_ext.simulator.sink import Sink

SECTION = "memory"
GOAL_MIB = 25.0
LINES_PER_INVOKE = 100
# Readings of VmRSS along the way, for the JSON output.
SAMPLE_EVERY = 100
# Upper bound on one run, so that a stuck sandbox cannot hold the benchmark.
MAX_RUN_S = 120.0


def _peak_kib(pid: Optional[int]) -> Optional[int]:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_once(opt_dir: Path, task_dir: Path, invokes: int) -> dict[str, Any]:
    """Run init and ``invokes`` invocations; return the extension's VmRSS readings in KiB."""
    sink = Sink("ok").start()
    result: dict[str, Any] = {"invokes": 0, "samples": [], "error": None}
    try:
        env = {"BENCH_LINES_PER_INVOKE": str(LINES_PER_INVOKE)}
        with SandboxRun(opt_dir, task_dir, sink, env) as run:
            sandbox = run.sandbox
            sandbox.start()
            pid = run.extension_pid()
            if sandbox.init_status != "success" or pid is None:
                result["error"] = f"init failed: {sandbox.init_error_type or 'no extension process'}"
                return result
            result["afterInitKiB"] = steady_resident_kib(pid)
            deadline = time.monotonic() + MAX_RUN_S
            for index in range(invokes):
                if time.monotonic() > deadline or not run.runtime_alive():
                    result["error"] = f"stopped after {index} invocations (time limit or runtime exit)"
                    break
                invocation = sandbox.invoke(b"{}")
                result["invokes"] = index + 1
                if invocation.status == "timeout":
                    result["error"] = f"invocation {index + 1} timed out"
                    break
                if (index + 1) % SAMPLE_EVERY == 0:
                    result["samples"].append([index + 1, resident_kib(pid)])
            # The sandbox is frozen here, so the reading is the state at the end of the last invoke.
            result["afterInvokesKiB"] = resident_kib(pid)
            result["peakKiB"] = _peak_kib(pid)
            sandbox.shutdown()
            output = sandbox.extensions[EXTENSION_NAME].output
            result["accounting"] = next((line for line in reversed(output) if "exiting after" in line), None)
    finally:
        sink.stop()
    return result


def measure(opt_dir: Path, task_dir: Path, invokes: int, repeats: int) -> tuple[list[Row], list[str], list[dict[str, Any]]]:
    """Measure VmRSS after init and after ``invokes`` logging invocations, ``repeats`` times."""
    failures: list[str] = []
    runs: list[dict[str, Any]] = []
    for _ in range(repeats):
        result = run_once(opt_dir, task_dir, invokes)
        runs.append(result)
        if result["error"]:
            failures.append(f"memory: {result['error']}")
    after_init = [r["afterInitKiB"] / 1024 for r in runs if r.get("afterInitKiB")]
    after_invokes = [r["afterInvokesKiB"] / 1024 for r in runs if r.get("afterInvokesKiB") and r["invokes"] == invokes]
    peaks = [r["peakKiB"] / 1024 for r in runs if r.get("peakKiB") and r["invokes"] == invokes]
    accounting = [r.get("accounting") for r in runs if r.get("accounting")]
    after_row = runs_row(
        SECTION,
        "rssAfterInvokesMiB",
        f"Extension VmRSS after {invokes:,} invokes of {LINES_PER_INVOKE} log lines",
        "MiB",
        after_invokes,
        goal=f"<= {GOAL_MIB:g} MiB",
        note=("last run's SHUTDOWN log line: " + accounting[-1].split("INFO ", 1)[-1] if accounting else ""),
    )
    if after_row.median is not None:
        after_row.met = after_row.median <= GOAL_MIB
    rows = [
        runs_row(SECTION, "rssAfterInitMiB", "Extension VmRSS after init", "MiB", after_init),
        after_row,
        runs_row(SECTION, "peakRssMiB", f"Extension peak VmRSS (VmHWM) over {invokes:,} invokes", "MiB", peaks),
    ]
    return rows, failures, runs

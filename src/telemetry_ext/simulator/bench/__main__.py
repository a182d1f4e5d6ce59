"""Command line of the benchmarks: ``python -m telemetry_ext.simulator.bench --layer ZIP --output MD``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from telemetry_ext.simulator.bench import coldstart, ingest, ingest_client, layer, memory, overhead, report, shutdown
from telemetry_ext.simulator.bench.common import (
    LOGGING_FUNCTION,
    TRIVIAL_FUNCTION,
    Row,
    temporary_directory,
    write_function,
)
from telemetry_ext.simulator.scenario import unpack_layer

FIGURES = ("coldstart", "memory", "overhead", "ingest", "shutdown", "layer")


@dataclass(frozen=True)
class Sizes:
    """How much each figure runs; ``--quick`` uses smaller ones."""

    cold_repeats: int = 7
    memory_invokes: int = 1_000
    memory_repeats: int = 3
    overhead_invokes: int = 1_000
    overhead_reduced_invokes: int = 300
    ingest_batches: int = 200
    ingest_repeats: int = 5
    drain_invokes: int = 10
    drain_lines_per_invoke: int = 1_000
    drain_repeats: int = 5
    hang_repeats: int = 3


QUICK = Sizes(
    cold_repeats=3,
    memory_invokes=100,
    memory_repeats=2,
    overhead_invokes=100,
    overhead_reduced_invokes=100,
    ingest_batches=20,
    ingest_repeats=3,
    drain_repeats=2,
    hang_repeats=1,
)


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m telemetry_ext.simulator.bench",
        description=(
            "Measure the extension in the local Lambda simulator: cold start, memory, time added to each invoke, "
            "ingest throughput, SHUTDOWN drain and layer size. Exits 1 when a measurement failed; a missed goal "
            "is reported in the table and does not change the exit status."
        ),
    )
    parser.add_argument("--layer", type=Path, help="layer zip built by layer/build.py; required unless only ingest is measured")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"), help="Markdown file to write (default docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="fewer runs and invokes, for a check that takes about a minute")
    parser.add_argument(
        "--only",
        action="append",
        choices=FIGURES,
        help="measure only this figure; repeatable (default: all)",
    )
    return parser.parse_args(argv)


def _command(argv: list[str]) -> str:
    python = sys.executable
    relative = os.path.relpath(python)
    if not relative.startswith(".."):
        python = relative
    return shlex.join([python, "-m", "telemetry_ext.simulator.bench", *argv])


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _method(sizes: Sizes) -> str:
    base = coldstart.base_interpreter()
    text = f"""
- **Cold start**: the layer's launcher (`/opt/extensions/telemetry-ext`) runs against a minimal
  Extensions API on 127.0.0.1 that responds to /register and the Telemetry API subscription and
  never to /event/next, so no function runtime starts alongside. The time runs from `Popen` to the
  first /event/next request. The layer ships no bytecode and Lambda's /opt is read-only. So the main
  row deletes the `__pycache__` folders under the unpacked layer before each run, and the warm cache
  row runs again right after. `{base} -I -c pass` (and the same with `-S`) is timed from `Popen` to
  exit. The kinds of run alternate, {sizes.cold_repeats} of each, after one untimed run of each. The
  ratio rows are medians of the per-run ratios. The two sandbox init rows run the simulator's whole
  init ({sizes.cold_repeats} runs each) with the layer and with an /opt that has no extensions folder.
- **Memory**: VmRSS of the extension process from /proc/PID/status, after init and after
  {sizes.memory_invokes:,} invokes. The after-init reading waits until two readings 100 ms apart
  agree, at most 1 s. Each invoke logs {memory.LINES_PER_INVOKE} lines with `logging`, and the
  invokes run back to back with the default flush strategy and a healthy sink. The Notes column
  shows the extension's own counts at SHUTDOWN from the last run.
- **Time added to each invoke**: the simulator's time from the runtime's runtimeDone to the
  extension's next /event/next, per invoke, for a function that only returns. The invokes run back
  to back, with the sandbox frozen between them. The healthy sink responds at once, the slow one
  after {overhead.SLOW_SINK_DELAY_MS} ms. Each run aims at {sizes.overhead_invokes:,} invokes. A run
  whose first {overhead.PROBE_INVOKES} invokes project more than {overhead.RUN_BUDGET_S:.0f} s is cut
  to {sizes.overhead_reduced_invokes:,}, and its row notes the reduction.
- **Ingest**: `TelemetryListener`, `Processor` and `Aggregator` run in the benchmark's process with
  the default configuration, and a thread takes ready records off the aggregator every
  {ingest._DRAIN_INTERVAL_S * 1000:.0f} ms. A separate process POSTs {sizes.ingest_batches:,} batches
  of {ingest.EVENTS_PER_BATCH:,} events over one keep-alive connection, one request at a time. Each
  invocation in a batch is a platform.start, {ingest_client.EVENTS_PER_INVOCATION - 3} Python runtime
  text log lines, a runtimeDone and a report. The rate is events processed (received minus dropped)
  divided by the time from the first POST until the processor had taken every event.
- **SHUTDOWN**: {sizes.drain_invokes} invokes log {sizes.drain_lines_per_invoke:,} lines each with
  `TELEMETRY_EXT_FLUSH=shutdown`, so everything stays buffered until SHUTDOWN. The drain row is the
  extension's own `exiting after N ms` log line, and every line must reach the sink. The hang row
  repeats this against a sink that never responds and reports the simulator's time from the start
  of SHUTDOWN to the extension's exit. The budget is 2,000 ms, and after it the simulator sends
  SIGKILL.
- **Layer**: sizes read from the zip's central directory.
"""
    # Re-wrap each bullet, because the substituted values change the line lengths.
    wrapped = []
    for bullet in text.strip().split("\n- "):
        words = " ".join(bullet.split()).lstrip("- ")
        wrapped.append(textwrap.fill(words, width=100, initial_indent="- ", subsequent_indent="  "))
    return "\n".join(wrapped)


def main(argv: Optional[list[str]] = None) -> int:
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw_argv)
    selected = set(args.only or FIGURES)
    needs_layer = bool(selected - {"ingest"})
    if needs_layer and (args.layer is None or not args.layer.is_file()):
        print(f"error: layer zip not found: {args.layer}; build it with `make package` and pass --layer", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else Sizes()
    started = time.monotonic()
    # Read before the run, so that the commit is the one the measured code came from.
    machine = report.machine_info(coldstart.base_interpreter())
    rows: list[Row] = []
    failures: list[str] = []
    extra: dict[str, Any] = {"quick": args.quick}

    with temporary_directory("opt") as opt_name, temporary_directory("empty-opt") as empty_name, temporary_directory("task") as task_name:
        opt_dir = unpack_layer(args.layer, Path(opt_name)) if needs_layer else Path(opt_name)
        trivial = write_function(Path(task_name) / "trivial", TRIVIAL_FUNCTION)
        logging_task = write_function(Path(task_name) / "logging", LOGGING_FUNCTION)

        if "coldstart" in selected:
            _progress(f"cold start: {sizes.cold_repeats} runs against the fake API, then sandbox inits")
            section_rows, section_failures = coldstart.measure(opt_dir, Path(empty_name), trivial, sizes.cold_repeats)
            rows += section_rows
            failures += section_failures
        if "memory" in selected:
            _progress(f"memory: {sizes.memory_repeats} runs of {sizes.memory_invokes:,} invokes")
            section_rows, section_failures, memory_runs = memory.measure(opt_dir, logging_task, sizes.memory_invokes, sizes.memory_repeats)
            rows += section_rows
            failures += section_failures
            extra["memoryRuns"] = [{k: v for k, v in run.items() if k != "error"} for run in memory_runs]
        if "overhead" in selected:
            _progress(f"time added to each invoke: 8 runs of up to {sizes.overhead_invokes:,} invokes")
            section_rows, section_failures = overhead.measure(opt_dir, trivial, sizes.overhead_invokes, sizes.overhead_reduced_invokes)
            rows += section_rows
            failures += section_failures
        if "ingest" in selected:
            _progress(f"ingest: {sizes.ingest_repeats} runs of {sizes.ingest_batches:,} batches")
            section_rows, section_failures = _quietly(lambda: ingest.measure(sizes.ingest_batches, sizes.ingest_repeats))
            rows += section_rows
            failures += section_failures
        if "shutdown" in selected:
            _progress(f"shutdown: {sizes.drain_repeats} drain runs, {sizes.hang_repeats} with a hanging sink")
            section_rows, section_failures = shutdown.measure(
                opt_dir, logging_task, sizes.drain_invokes, sizes.drain_lines_per_invoke, sizes.drain_repeats, sizes.hang_repeats
            )
            rows += section_rows
            failures += section_failures
        if "layer" in selected:
            rows += layer.measure(args.layer)

    elapsed_s = time.monotonic() - started
    command = _command(raw_argv)
    print(report.render_table(rows))
    for failure in failures:
        print(f"FAILED: {failure}")
    missed = report.goals_missed(rows)
    print(f"\ngoals missed: {', '.join(missed)}" if missed else "\nall goals met")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report.render_markdown(rows, machine, command, _method(sizes), failures, elapsed_s))
    print(f"wrote {args.output} ({elapsed_s:.0f} s)")
    if args.json:
        document = report.build_json(rows, machine, command, failures, elapsed_s, extra)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if failures else 0


def _quietly(measure: Any) -> Any:
    """Run ``measure`` with the extension's loggers (running in this process) limited to errors.

    The in-process processor logs a warning each time its queue fills, and those lines would
    interleave with the progress output. The results count the drops instead.
    """
    extension_logger = logging.getLogger("telemetry_ext")
    level = extension_logger.level
    extension_logger.setLevel(logging.ERROR)
    try:
        return measure()
    finally:
        extension_logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())

"""Ingest: Telemetry API events per second that the listener accepts and the processor hands on.

The listener, processor and aggregator run in this process, wired as the extension's
``_start_pipeline`` wires them with the default configuration, and a drain thread takes ready
records off the aggregator as the delivery layer would (without exporting them). A separate
process (``ingest_client.py``) POSTs the batches, so that the client does not compete with the
listener for this interpreter's GIL.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from typing import Any, Optional

from telemetry_ext.accounting import Accounting
from telemetry_ext.config import Config
from telemetry_ext.invocations import Aggregator
from telemetry_ext.listener import TelemetryListener
from telemetry_ext.processor import Processor
from telemetry_ext.redaction import Redactor
from telemetry_ext.simulator.bench.common import Row, runs_row

SECTION = "ingest"
GOAL_EVENTS_PER_S = 100_000
EVENTS_PER_BATCH = 1_000
# Bounds of one run: the client's build-up, its sending, and the wait for the processor.
CLIENT_READY_TIMEOUT_S = 60.0
CLIENT_SEND_MAX_S = 30.0
PROCESS_TIMEOUT_S = 60.0
_DRAIN_INTERVAL_S = 0.02


class _Pipeline:
    """Listener, processor and aggregator as the extension builds them, plus a drain thread."""

    def __init__(self) -> None:
        config = Config.from_env({})
        redactor = Redactor(config.redact_patterns)
        self.accounting = Accounting()
        self.aggregator = Aggregator(
            function_name="bench-function",
            function_version="$LATEST",
            region="us-east-1",
            min_log_level=config.min_log_level,
            redact=redactor.redact_record,
            max_pending_bytes=config.max_buffer_bytes // 2,
            on_filtered=lambda count: self.accounting.drop(count, "below_min_log_level"),
        )
        self.processor = Processor(self.aggregator, self.accounting, max_queued_bytes=config.max_buffer_bytes)
        self.listener = TelemetryListener("127.0.0.1", 0, self.processor.submit, self.processor.reject)
        self._stopped = threading.Event()
        self._drainer = threading.Thread(target=self._drain, name="bench-drain", daemon=True)

    def start(self) -> None:
        self.processor.start()
        self.listener.start()
        self._drainer.start()

    def stop(self) -> None:
        self._stopped.set()
        self.listener.close()
        self.processor.stop()

    def _drain(self) -> None:
        while not self._stopped.wait(_DRAIN_INTERVAL_S):
            items = self.aggregator.take_ready()
            self.accounting.deliver(sum(item.event_count for item in items))


def _read_lines(stream: Any, lines: "queue.Queue[Optional[str]]") -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", "replace").strip())
    lines.put(None)


def run_once(batches: int) -> dict[str, Any]:
    """Send ``batches`` batches of ``EVENTS_PER_BATCH`` events; return the events processed and the seconds taken."""
    pipeline = _Pipeline()
    pipeline.start()
    result: dict[str, Any] = {"error": None}
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "telemetry_ext.simulator.bench.ingest_client",
            "--port",
            str(pipeline.listener.port),
            "--batches",
            str(batches),
            "--events-per-batch",
            str(EVENTS_PER_BATCH),
            "--max-seconds",
            str(CLIENT_SEND_MAX_S),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: "queue.Queue[Optional[str]]" = queue.Queue()
    threading.Thread(target=_read_lines, args=(client.stdout, lines), name="bench-client-out", daemon=True).start()
    try:
        try:
            first = lines.get(timeout=CLIENT_READY_TIMEOUT_S)
        except queue.Empty:
            first = None
        if first != "ready":
            result["error"] = f"the ingest client did not start: {first!r}"
            return result
        started = time.monotonic()
        expected = batches * EVENTS_PER_BATCH
        deadline = started + PROCESS_TIMEOUT_S
        finished: Optional[float] = None
        while time.monotonic() < deadline:
            if pipeline.accounting.snapshot()["received"] >= expected:
                finished = time.monotonic()
                break
            try:
                line = lines.get_nowait()
            except queue.Empty:
                line = None
            if line and line.startswith("sent "):
                # The client stopped at its time limit, before sending every batch.
                expected = int(line.split()[1])
                result["clientSeconds"] = float(line.split()[2])
            time.sleep(0.0005)
        snapshot = pipeline.accounting.snapshot()
        if finished is None:
            result["error"] = f"the processor took {snapshot['received']:,} of {expected:,} events within {PROCESS_TIMEOUT_S:.0f} s"
            return result
        dropped = sum(snapshot["dropped"].values())
        result.update(
            {
                "sent": expected,
                "processed": snapshot["received"] - dropped,
                "dropped": dict(snapshot["dropped"]),
                "seconds": finished - started,
                "eventsPerS": (snapshot["received"] - dropped) / (finished - started),
            }
        )
        return result
    finally:
        pipeline.stop()
        try:
            client.wait(timeout=CLIENT_SEND_MAX_S)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
        if client.stderr is not None:
            error_output = client.stderr.read().decode("utf-8", "replace").strip()
            if error_output and result["error"] is None and client.returncode:
                result["error"] = f"the ingest client failed: {error_output[-300:]}"


def measure(batches: int, repeats: int) -> tuple[list[Row], list[str]]:
    failures: list[str] = []
    runs = [run_once(batches) for _ in range(repeats)]
    for result in runs:
        if result["error"]:
            failures.append(f"ingest: {result['error']}")
    good = [r for r in runs if r["error"] is None]
    drops = sum(sum(r["dropped"].values()) for r in good)
    row = runs_row(
        SECTION,
        "eventsPerS",
        f"Ingest: events/s, {batches:,} POSTs of {EVENTS_PER_BATCH:,} events (in-process listener)",
        "events/s",
        [r["eventsPerS"] for r in good],
        digits=0,
        goal=f">= {GOAL_EVENTS_PER_S:,}",
        note=(
            "first POST to the last event processed; "
            + (f"{drops:,} events dropped by the full ingest queue" if drops else "no events dropped")
        ),
        extra={"dropped": drops},
    )
    if row.median is not None:
        row.met = row.median >= GOAL_EVENTS_PER_S
    return [row], failures

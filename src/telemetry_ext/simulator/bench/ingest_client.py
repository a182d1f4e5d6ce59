"""Load client of the ingest benchmark: POSTs batches of Telemetry API events to a listener.

Run by ``ingest.py`` as a separate process, so that building and sending the requests does not
share the listener's interpreter. It builds every body first, prints ``ready``, then POSTs them
one after another over one keep-alive connection, as the Telemetry API does, and prints
``sent <events> <seconds>``. It stops after ``--batches`` requests or ``--max-seconds``,
whichever comes first, and only ever connects to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

EVENTS_PER_INVOCATION = 100
_START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def invocation_events(sequence: int) -> list[dict[str, Any]]:
    """Return the events of one invocation: platform.start, Python runtime log lines, runtimeDone and report."""
    request_id = str(uuid.UUID(int=sequence + 1))
    moment = _START + timedelta(milliseconds=sequence * 10)
    trace = {
        "spanId": f"{sequence:016x}",
        "type": "X-Amzn-Trace-Id",
        "value": f"Root=1-67748580-{sequence:024x};Parent={sequence:016x};Sampled=1",
    }
    events: list[dict[str, Any]] = [
        {"time": _iso(moment), "type": "platform.start", "record": {"requestId": request_id, "version": "$LATEST", "tracing": trace}}
    ]
    for line in range(EVENTS_PER_INVOCATION - 3):
        at = _iso(moment + timedelta(microseconds=line * 50))
        text = f"[INFO]\t{at}\t{request_id}\torder {line} of this invocation processed, amount {line * 7}.{line % 100:02d} EUR\n"
        events.append({"time": at, "type": "function", "record": text})
    end = _iso(moment + timedelta(milliseconds=5))
    events.append(
        {
            "time": end,
            "type": "platform.runtimeDone",
            "record": {
                "requestId": request_id,
                "status": "success",
                "metrics": {"durationMs": 5.2, "producedBytes": 12},
                "spans": [{"name": "responseLatency", "start": _iso(moment), "durationMs": 5.0}],
                "tracing": trace,
            },
        }
    )
    events.append(
        {
            "time": end,
            "type": "platform.report",
            "record": {
                "requestId": request_id,
                "status": "success",
                "metrics": {"durationMs": 5.9, "billedDurationMs": 6, "memorySizeMB": 256, "maxMemoryUsedMB": 72},
                "tracing": trace,
            },
        }
    )
    return events


def build_bodies(batches: int, events_per_batch: int) -> list[bytes]:
    """Return ``batches`` JSON array bodies of ``events_per_batch`` events each, every invocation unique."""
    bodies = []
    sequence = 0
    for _ in range(batches):
        events: list[dict[str, Any]] = []
        while len(events) < events_per_batch:
            events.extend(invocation_events(sequence))
            sequence += 1
        bodies.append(json.dumps(events[:events_per_batch]).encode())
    return bodies


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="POST batches of Telemetry API events to a listener on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True, help="listener port on 127.0.0.1")
    parser.add_argument("--batches", type=int, required=True, help="number of POST requests")
    parser.add_argument("--events-per-batch", type=int, default=1_000, help="events in each request (default 1000)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop sending after this many seconds (default 30)")
    args = parser.parse_args(argv)

    bodies = build_bodies(args.batches, args.events_per_batch)
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
    connection.connect()
    print("ready", flush=True)
    started = time.monotonic()
    sent = 0
    for body in bodies:
        if time.monotonic() - started > args.max_seconds:
            break
        connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            print(f"error: the listener responded with HTTP {response.status}", file=sys.stderr)
            break
        sent += args.events_per_batch
    connection.close()
    print(f"sent {sent} {time.monotonic() - started:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

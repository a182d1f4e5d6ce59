"""Smoke test of the benchmark command: the ingest figure only, with the --quick sizes.

It checks that the command runs and writes its outputs, never how fast anything was.
"""

from __future__ import annotations

import json
from pathlib import Path

from telemetry_ext.simulator.bench.__main__ import main


def test_bench_ingest_writes_json(tmp_path: Path) -> None:
    markdown = tmp_path / "benchmarks.md"
    json_path = tmp_path / "bench.json"

    status = main(["--only", "ingest", "--quick", "--output", str(markdown), "--json", str(json_path)])

    document = json.loads(json_path.read_text())
    assert status == 0, document["failures"]
    assert "eventsPerS" in document["figures"]["ingest"]
    assert document["figures"]["ingest"]["eventsPerS"]["median"] is not None
    assert "| Ingest: events/s" in markdown.read_text()

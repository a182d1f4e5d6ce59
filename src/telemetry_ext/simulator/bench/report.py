"""The benchmark's outputs: the machine description, the results table, the Markdown page and the JSON."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Optional

from telemetry_ext.simulator.bench.common import Row

SECTION_TITLES = {
    "coldStart": "Cold start",
    "memory": "Memory",
    "invokeOverhead": "Time added to each invoke",
    "ingest": "Ingest",
    "shutdown": "SHUTDOWN",
    "layer": "Layer",
}


def _read_first(path: str, prefix: str) -> Optional[str]:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _git(*args: str) -> Optional[str]:
    try:
        completed = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()


def machine_info(base_python: Path) -> dict[str, Any]:
    """Describe the machine, the interpreters and the source revision of this run."""
    memory_kib = _read_first("/proc/meminfo", "MemTotal")
    commit = _git("rev-parse", "--short", "HEAD")
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu": _read_first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memoryGiB": round(int(memory_kib.split()[0]) / 1024 / 1024, 1) if memory_kib else None,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "extensionPython": str(base_python),
        "commit": commit or "unknown",
        "uncommittedChanges": bool(changes),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _plain(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}"
    if unit in ("bytes", "events/s"):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _with_unit(text: str, unit: str) -> str:
    return f"{text}x" if unit == "x" else f"{text} {unit}"


def _number(value: Optional[float], unit: str) -> str:
    if value is None:
        return "n/a"
    return _with_unit(_plain(value, unit), unit)


def _spread(row: Row) -> str:
    if row.low is None or row.high is None:
        return row.spread
    low = _plain(row.low, row.unit)
    high = _plain(row.high, row.unit)
    return f"{_with_unit(f'{low}-{high}', row.unit)} ({row.spread})"


def _result(row: Row) -> str:
    if row.met is None:
        return "no data, goal missed" if row.goal and row.median is None else ""
    return "met" if row.met else "**goal missed**"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(rows: list[Row]) -> str:
    lines = ["| Figure | Median | Spread | Goal | Result | Notes |", "|---|---:|---|---|---|---|"]
    for row in rows:
        cells = [row.label, _number(row.median, row.unit), _spread(row), row.goal, _result(row), row.note]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def goals_missed(rows: list[Row]) -> list[str]:
    return [row.label for row in rows if row.goal and row.met is not True]


def render_markdown(rows: list[Row], machine: dict[str, Any], command: str, method: str, failures: list[str], elapsed_s: float) -> str:
    commit = machine["commit"] + (" with uncommitted changes" if machine["uncommittedChanges"] else "")
    parts = [
        "# Benchmarks",
        "",
        "Figures of the telemetry-ext extension, measured with the layer zip in the local Lambda simulator.",
        "Each figure is the median of repeated runs or invokes; the Spread column says which spread it shows.",
        "Goals are checked against the median. Regenerate this page with `make bench`.",
        "",
        "## Run",
        "",
        f"- Command: `{command}`",
        f"- Date: {machine['date']}, took {elapsed_s:.0f} s",
        f"- Commit: {commit}",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores, {machine['memoryGiB']} GiB memory, {machine['kernel']}",
        f"- Python: {machine['python']}; the extension runs on `{machine['extensionPython']}`",
        "",
        "## Results",
        "",
        render_table(rows),
        "",
    ]
    missed = goals_missed(rows)
    if missed:
        parts += ["Goals missed: " + "; ".join(missed) + ".", ""]
    if failures:
        parts += ["## Failed measurements", ""] + [f"- {failure}" for failure in failures] + [""]
    parts += ["## Method", "", method.strip(), ""]
    return "\n".join(parts)


def build_json(rows: list[Row], machine: dict[str, Any], command: str, failures: list[str], elapsed_s: float, extra: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, dict[str, Any]] = {}
    for row in rows:
        figures.setdefault(row.section, {})[row.key] = row.as_json()
    return {
        "command": command,
        "machine": machine,
        "elapsedS": round(elapsed_s, 1),
        "figures": figures,
        "goalsMissed": goals_missed(rows),
        "failures": failures,
        **extra,
    }

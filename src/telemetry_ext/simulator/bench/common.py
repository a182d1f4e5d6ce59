"""Shared pieces of the benchmarks: statistics, result rows, test functions and a sandbox driver."""

from __future__ import annotations

import math
import statistics
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from telemetry_ext.simulator import processes
from telemetry_ext.simulator.api import ApiServer
from telemetry_ext.simulator.sandbox import Sandbox, SandboxOptions
from telemetry_ext.simulator.sink import Sink

EXTENSION_NAME = "telemetry-ext"
HANDLER = "app.handler"


@dataclass
class Row:
    """One line of the results table: a median with its spread, and the goal it is held to."""

    section: str
    key: str
    label: str
    unit: str
    median: Optional[float]
    low: Optional[float] = None
    high: Optional[float] = None
    spread: str = ""  # Kind of spread that low and high give, such as "min-max of 7 runs".
    goal: str = ""
    met: Optional[bool] = None  # None when the row has no goal.
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median,
            "low": self.low,
            "high": self.high,
            "spread": self.spread,
            "goal": self.goal or None,
            "goalMet": self.met,
            "note": self.note or None,
            **self.extra,
        }


def percentile(values: Sequence[float], share: float) -> float:
    """Return the ``share`` (0 to 1) percentile of ``values``, interpolating linearly between ranks."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    lower = math.floor(position)
    upper = math.ceil(position)
    if lower == upper:
        return ordered[lower]
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def runs_row(section: str, key: str, label: str, unit: str, values: Sequence[float], digits: int = 1, **kwargs: Any) -> Row:
    """Build a row from repeated runs: the median, with min-max as the spread."""
    if not values:
        return Row(section, key, label, unit, None, spread="no successful run", **kwargs)
    extra = {"runs": [round(value, digits) for value in values]}
    extra.update(kwargs.pop("extra", {}))
    return Row(
        section,
        key,
        label,
        unit,
        round(statistics.median(values), digits),
        round(min(values), digits),
        round(max(values), digits),
        spread=f"min-max of {len(values)} runs",
        extra=extra,
        **kwargs,
    )


# --- functions that the benchmarks run -------------------------------------------------------

TRIVIAL_FUNCTION = '''
def handler(event, context):
    return {"ok": True}
'''

LOGGING_FUNCTION = '''
import logging

LINES_PER_INVOKE = int(__import__("os").environ.get("BENCH_LINES_PER_INVOKE", "100"))
logger = logging.getLogger("bench")
logger.setLevel(logging.INFO)


def handler(event, context):
    for number in range(LINES_PER_INVOKE):
        logger.info("order %d of this invocation processed, amount %d.%02d EUR", number, number * 7, number % 100)
    return {"ok": True, "lines": LINES_PER_INVOKE}
'''


def write_function(directory: Path, source: str) -> Path:
    """Write ``source`` as ``app.py`` into ``directory``, the task root of a sandbox."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(source).lstrip())
    return directory


# --- driving a sandbox step by step ----------------------------------------------------------


class SandboxRun:
    """A sandbox with its API server and optional sink, wired as ``run_scenario`` does.

    Unlike ``run_scenario`` it lets the caller invoke one event at a time, so that it can read
    the extension's memory between invokes. Use it as a context manager: leaving it closes the
    sandbox and stops the server (the sink belongs to the caller).
    """

    def __init__(
        self,
        opt_dir: Path,
        task_dir: Path,
        sink: Optional[Sink],
        extension_env: Optional[dict[str, str]] = None,
        timeout_s: float = 3.0,
    ) -> None:
        env = {"TELEMETRY_EXT_LISTENER_HOST": "127.0.0.1"}
        if sink is not None:
            env["TELEMETRY_EXT_HTTP_URL"] = sink.url
        env.update(extension_env or {})
        self.options = SandboxOptions(
            opt_dir=opt_dir,
            task_dir=task_dir,
            handler=HANDLER,
            function_name="bench-function",
            timeout_s=timeout_s,
            function_env=env,
        )
        self.server = ApiServer()
        self.sandbox = Sandbox(self.options, self.server.address)
        self.server.sandbox = self.sandbox

    def __enter__(self) -> "SandboxRun":
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sandbox.close()
        self.server.stop()

    def extension_pid(self) -> Optional[int]:
        state = self.sandbox.extensions.get(EXTENSION_NAME)
        return state.process.pid if state is not None else None

    def runtime_alive(self) -> bool:
        runtime = self.sandbox.runtime
        return runtime is not None and runtime.poll() is None


def resident_kib(pid: Optional[int]) -> Optional[int]:
    return processes.resident_memory_kb(pid) if pid is not None else None


def steady_resident_kib(pid: Optional[int], max_wait_s: float = 1.0, step_s: float = 0.1) -> Optional[int]:
    """Return VmRSS of ``pid`` once two readings ``step_s`` apart agree, or the last one after ``max_wait_s``.

    The extension imports its HTTP client on a background thread after the first /event/next,
    so its memory keeps growing for a moment after init.
    """
    deadline = time.monotonic() + max_wait_s
    previous = resident_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(step_s)
        current = resident_kib(pid)
        if current == previous:
            return current
        previous = current
    return previous


def temporary_directory(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"telemetry-ext-bench-{prefix}-")

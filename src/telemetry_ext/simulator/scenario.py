"""Runs a whole sandbox lifecycle and builds the report that ``make simulate`` prints."""

from __future__ import annotations

import json
import stat
import statistics
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Optional

from telemetry_ext.simulator.api import ApiServer
from telemetry_ext.simulator.sandbox import Sandbox, SandboxOptions
from telemetry_ext.simulator.sink import PaymentStub, Sink


@dataclass
class Scenario:
    options: SandboxOptions
    payloads: list[Any]
    invokes: int = 10
    interval_ms: int = 100
    shutdown_reason: str = "spindown"
    use_sink: bool = True
    sink_mode: str = "ok"
    extension_env: dict[str, str] = field(default_factory=dict)


def unpack_layer(layer_zip: Path, destination: Path) -> Path:
    """Unpack a layer zip as Lambda does into /opt, keeping Unix modes and symbolic links.

    Entries with an absolute path or a ``..`` component would land outside /opt; they are
    skipped with a warning on stderr, like ``unzip`` does.
    """
    root = destination.resolve()
    with zipfile.ZipFile(layer_zip) as archive:
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            if info.filename.startswith("/") or ".." in parts:
                print(f"warning: skipped {info.filename!r} of {layer_zip}: it would land outside /opt", file=sys.stderr)
                continue
            target = root.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = (info.external_attr >> 16) & 0o177777
            if stat.S_ISLNK(mode):
                target.symlink_to(archive.read(info).decode("utf-8"))
                continue
            with archive.open(info) as source, open(target, "wb") as output:
                output.write(source.read())
            if mode & 0o777:
                target.chmod(mode & 0o777)
    return destination


def run_scenario(scenario: Scenario, sink: Optional[Sink] = None) -> dict[str, Any]:
    """Run init, the invokes and SHUTDOWN; return the report as a dict."""
    own_sink = sink is None and scenario.use_sink
    if own_sink:
        sink = Sink(scenario.sink_mode, delay_ms=200).start()
    payment = PaymentStub()
    server = ApiServer()
    server.start()
    options = scenario.options
    options.function_env = {
        "POWERTOOLS_SERVICE_NAME": "orders",
        "POWERTOOLS_METRICS_NAMESPACE": "OrderService",
        "PAYMENT_URL": payment.url,
        # sandbox.localdomain does not resolve off Lambda; bind the listener to loopback.
        "TELEMETRY_EXT_LISTENER_HOST": "127.0.0.1",
        **({"TELEMETRY_EXT_HTTP_URL": sink.url} if sink is not None else {}),
        **scenario.extension_env,
        **options.function_env,
    }
    sandbox = Sandbox(options, server.address)
    server.sandbox = sandbox
    started = time.monotonic()
    try:
        sandbox.start()
        for index in range(scenario.invokes):
            if sandbox.crashes or sandbox.runtime_gone():
                sandbox.stopped_early = f"stopped after {index} of {scenario.invokes} invokes: an extension crashed"
                break
            if index and scenario.interval_ms:
                time.sleep(scenario.interval_ms / 1000.0)  # Idle time between invokes, frozen.
            payload = scenario.payloads[index % len(scenario.payloads)] if scenario.payloads else {}
            invocation = sandbox.invoke(json.dumps(payload).encode())
            # Lambda resets the sandbox after a timeout or a runtime exit, with a SHUTDOWN whose
            # reason gives the cause; this run ends there instead of starting a new sandbox.
            if invocation.status == "timeout":
                scenario.shutdown_reason = "timeout"
            elif sandbox.runtime_gone():
                scenario.shutdown_reason = "failure"
            else:
                continue
            if index + 1 < scenario.invokes:
                sandbox.stopped_early = (
                    f"stopped after {index + 1} of {scenario.invokes} invokes: the function "
                    f"{'timed out' if invocation.status == 'timeout' else 'runtime exited'}, which resets the sandbox"
                )
            break
        sandbox.shutdown(scenario.shutdown_reason)
    finally:
        sandbox.close()
        server.stop()
        payment.stop()
    report = build_report(sandbox, sink, time.monotonic() - started)
    if own_sink and sink is not None:
        sink.stop()
    return report


def build_report(sandbox: Sandbox, sink: Optional[Sink], elapsed_s: float) -> dict[str, Any]:
    """Summarize the run; ``missing`` lists what the function produced but the sink lacks.

    A run misses nothing when every invocation has a record at the sink and the sink contains at
    least as many log lines and metrics, over all records, as the function produced. Lines
    filed under another record than the simulator expected are listed in ``misattributed``
    without failing the run: a line without a request id can only be placed by time.
    With TELEMETRY_EXT_MIN_LOG_LEVEL set, log lines are filtered on purpose and not compared.
    """
    records = list(sink.records) if sink is not None else []
    delivered: dict[str, dict[str, int]] = {}
    totals = {"logs": 0, "metrics": 0}
    init_delivered = {"logs": 0, "metrics": 0}
    for record in records:
        logs = len(record.get("logs") or [])
        metrics = len(record.get("metrics") or [])
        totals["logs"] += logs
        totals["metrics"] += metrics
        if record.get("kind") == "invocation":
            counts = delivered.setdefault(record.get("requestId", ""), {"logs": 0, "metrics": 0, "records": 0})
            counts["logs"] += logs
            counts["metrics"] += metrics
            counts["records"] += 1
        elif record.get("kind") == "init":
            init_delivered["logs"] += logs
            init_delivered["metrics"] += metrics

    compare_logs = "TELEMETRY_EXT_MIN_LOG_LEVEL" not in sandbox.options.function_env
    invocations = []
    missing = []
    misattributed = []
    produced = {
        "logs": sandbox.init_log_lines + sandbox.idle_log_lines,
        "metrics": sandbox.init_emf_metrics + sandbox.idle_emf_metrics,
    }
    for invocation in sandbox.invocations:
        counts = delivered.get(invocation.request_id, {"logs": 0, "metrics": 0, "records": 0})
        produced["logs"] += invocation.log_lines
        produced["metrics"] += invocation.emf_metrics
        entry = {
            "requestId": invocation.request_id,
            "status": invocation.status,
            "errorType": invocation.error_type,
            "durationMs": round(invocation.duration_ms, 1),
            "billedDurationMs": invocation.billed_ms,
            "maxMemoryUsedMB": invocation.max_memory_mb,
            "coldStart": invocation.cold_start,
            "logLinesProduced": invocation.log_lines,
            "logLinesDelivered": counts["logs"],
            "metricsProduced": invocation.emf_metrics,
            "metricsDelivered": counts["metrics"],
            "recordsDelivered": counts["records"],
            "extensionAfterRuntimeDoneMs": {name: round(ms, 1) for name, ms in invocation.extension_done_ms.items()},
        }
        invocations.append(entry)
        if sink is None:
            continue
        if counts["records"] == 0:
            missing.append(f"{invocation.request_id} (no record)")
        elif (compare_logs and counts["logs"] != invocation.log_lines) or counts["metrics"] != invocation.emf_metrics:
            misattributed.append(invocation.request_id)
    if sink is not None:
        if compare_logs and totals["logs"] < produced["logs"]:
            missing.append(f"{produced['logs'] - totals['logs']} of {produced['logs']} log lines")
        if totals["metrics"] < produced["metrics"]:
            missing.append(f"{produced['metrics'] - totals['metrics']} of {produced['metrics']} metrics")
        if compare_logs and (init_delivered["logs"] != sandbox.init_log_lines or init_delivered["metrics"] != sandbox.init_emf_metrics):
            misattributed.append("init")

    extensions = {}
    for extension in sandbox.extensions.values():
        after_done = [inv.extension_done_ms[extension.name] for inv in sandbox.invocations if extension.name in inv.extension_done_ms]
        shutdown = sandbox.shutdown_info.get("extensions", {}).get(extension.name, {})
        extensions[extension.name] = {
            "execToFirstNextMs": _ms(extension.launched_at, extension.first_next_at),
            "execToRegisterMs": _ms(extension.launched_at, extension.registered_at),
            "events": list(extension.events),
            "subscribed": extension.subscribed,
            "afterRuntimeDoneMs": {
                "median": round(statistics.median(after_done), 1) if after_done else None,
                "max": round(max(after_done), 1) if after_done else None,
                "all": [round(value, 1) for value in after_done],
            },
            "shutdownExitMs": shutdown.get("exitAfterMs"),
            "shutdownBudgetMs": sandbox.shutdown_info.get("budgetMs"),
            "exitCode": shutdown.get("exitCode"),
            "killedAtDeadline": shutdown.get("killed", False),
            "crashed": extension.crashed,
            "output": extension.output[-50:],
            "finalLine": next((line for line in reversed(extension.output) if "exiting after" in line), None),
        }
    drops = [r for r in records if r.get("kind") == "drops"]
    ok = not sandbox.crashes and not any(e["killedAtDeadline"] or e["crashed"] for e in extensions.values()) and not missing
    return {
        "ok": ok,
        "elapsedS": round(elapsed_s, 2),
        "init": {
            "status": sandbox.init_status,
            "errorType": sandbox.init_error_type,
            "durationMs": round(sandbox.init_duration_ms or 0.0, 1),
            "logLinesProduced": sandbox.init_log_lines,
            "logLinesDelivered": init_delivered["logs"],
        },
        "invocations": invocations,
        "extensions": extensions,
        "shutdown": {k: v for k, v in sandbox.shutdown_info.items() if k != "extensions"},
        "crashes": sandbox.crashes,
        "missing": missing,
        "misattributed": misattributed,
        "stoppedEarly": sandbox.stopped_early,
        "sink": {"url": sink.url if sink is not None else None, "records": len(records), "requests": sink.requests if sink else 0, "lastDrops": drops[-1] if drops else None},
        "telemetry": {
            s.name: {"posts": s.posts, "deliveredEvents": s.delivered_events, "droppedEvents": s.dropped_events}
            for s in sandbox.hub.subscribers
        },
    }


def _ms(start: Optional[float], end: Optional[float]) -> Optional[float]:
    if start is None or end is None:
        return None
    return round((end - start) * 1000, 1)


def temporary_opt(layer_zip: Path) -> tempfile.TemporaryDirectory:
    directory = tempfile.TemporaryDirectory(prefix="telemetry-ext-opt-")
    unpack_layer(layer_zip, Path(directory.name))
    return directory

"""The sandbox's lifecycle: init, invokes with freezes, and SHUTDOWN with its deadline.

The API handlers (api.py) call into this class from their server threads; the driver
(``run_scenario``) calls ``start``, ``invoke`` and ``shutdown`` from one thread. `Sandbox`
inherits the methods that serve the Extensions and Telemetry APIs from extensions_api.py, and
those that serve the Runtime API from runtime_api.py. The state of extensions and invocations
is defined in state.py.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from telemetry_ext.simulator import processes
from telemetry_ext.simulator.clock import epoch_ms
from telemetry_ext.simulator.extensions_api import ExtensionsApiMixin
from telemetry_ext.simulator.runtime_api import RuntimeApiMixin

# ApiError is re-exported: api.py imports it from this module together with Sandbox.
from telemetry_ext.simulator.state import ApiError, ExtensionState, Invocation  # noqa: F401
from telemetry_ext.simulator.telemetry import TelemetryHub

MAX_EXTENSIONS = 10
# Lambda caps init at 10 s for on-demand functions.
INIT_TIMEOUT_S = 10.0
# Of the SHUTDOWN budget, the runtime gets this long to stop after SIGTERM.
RUNTIME_STOP_S = 0.3


@dataclass
class SandboxOptions:
    opt_dir: Path
    task_dir: Path
    handler: str
    function_name: str = "order-processor"
    memory_mb: int = 256
    timeout_s: float = 3.0
    region: str = "us-east-1"
    log_format: str = "Text"  # AWS_LAMBDA_LOG_FORMAT: Text or JSON.
    log_level: Optional[str] = None  # AWS_LAMBDA_LOG_LEVEL, JSON format only.
    function_env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable  # Interpreter that runs awslambdaric and the function.
    # PATH for extensions, used as given; None: the base interpreter's bin and the system dirs.
    extension_path: Optional[str] = None
    freeze: bool = True
    shutdown_budget_ms: int = 2_000
    report_after_shutdown: bool = True  # Deliver buffered telemetry only after SHUTDOWN is sent.
    function_error_status: str = "error"  # runtimeDone status when the handler raised.
    telemetry_supported: bool = True  # False responds to subscriptions with 202, like older emulators.
    reject_registrations: int = 0  # Reject this many /register calls with 403.
    telemetry_delivery_timeout_s: float = 1.0
    split_records_over_max_bytes: bool = False
    echo_output: bool = False  # Print extension and function output to stderr.
    # Hand INVOKE to the extensions this long after the runtime got the event, so that the
    # invocation's telemetry reaches them before its INVOKE does.
    extension_invoke_delay_ms: int = 0
    # Lose this many telemetry batches after init, reported as platform.logsDropped.
    drop_telemetry_batches: int = 0
    # Announce this much time left in SHUTDOWN's deadlineMs while still killing only after
    # shutdown_budget_ms, to test that an extension honours the deadline it is given.
    announced_shutdown_left_ms: Optional[int] = None



class Sandbox(ExtensionsApiMixin, RuntimeApiMixin):
    def __init__(self, options: SandboxOptions, api_address: str) -> None:
        self.options = options
        self.api_address = api_address
        self.hub = TelemetryHub(options.telemetry_delivery_timeout_s, options.split_records_over_max_bytes)
        self.extensions: dict[str, ExtensionState] = {}
        self._by_id: dict[str, ExtensionState] = {}
        self._lock = threading.Condition()
        self.phase = "created"
        self.registration_open = True
        self.runtime: Optional[subprocess.Popen] = None
        self._runtime_queue: "queue.Queue[Optional[Invocation]]" = queue.Queue()
        self._runtime_ready = threading.Event()
        self.runtime_init_error: Optional[dict] = None
        self.current: Optional[Invocation] = None
        self.invocations: list[Invocation] = []
        self.init_started_epoch = 0.0
        self.init_duration_ms: Optional[float] = None
        self.init_status = "success"
        self.init_error_type: Optional[str] = None
        self.init_log_lines = 0
        self.init_emf_metrics = 0
        # Function output while no invocation runs and init is over (background threads).
        self.idle_log_lines = 0
        self.idle_emf_metrics = 0
        self._echo_lock = threading.Lock()
        self.stopped_early: Optional[str] = None
        self.shutdown_info: dict[str, Any] = {}
        self.crashes: list[str] = []
        self._registrations_rejected = 0
        self._closing = threading.Event()
        self._runtime_fds: list[int] = []
        self._last_output_at = 0.0

    # --- init --------------------------------------------------------------------------------

    def start(self) -> None:
        self.phase = "init"
        self.init_started_epoch = time.time()
        init_started = time.monotonic()
        self.hub.broadcast(
            "platform.initStart",
            {
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": f"python:{sys.version_info[0]}.{sys.version_info[1]}.simulated",
                "functionName": self.options.function_name,
                "functionVersion": "$LATEST",
                "instanceMaxMemory": self.options.memory_mb * 1024 * 1024,
            },
        )
        self._launch_extensions()
        deadline = init_started + INIT_TIMEOUT_S
        with self._lock:
            self._lock.wait_for(
                lambda: all(e.registered_at or e.exited_at for e in self.extensions.values()),
                timeout=max(0.0, deadline - time.monotonic()),
            )
        self._start_runtime()
        with self._lock:
            self._lock.wait_for(
                lambda: (self._runtime_ready.is_set() or self.runtime_init_error is not None or self.runtime_gone())
                and all(e.first_next_at or e.exited_at or not e.registered_at for e in self.extensions.values()),
                timeout=max(0.0, deadline - time.monotonic()),
            )
            self.registration_open = False
        runtime_duration_ms = (time.monotonic() - init_started) * 1000
        if self.runtime_init_error is not None or not self._runtime_ready.is_set():
            self.init_status = "error"
            self.init_error_type = (self.runtime_init_error or {}).get("errorType", "Runtime.Unknown")
        if self.crashes:
            self.init_status = "error"
            self.init_error_type = "Extension.Crash"
        self.hub.broadcast(
            "platform.initRuntimeDone",
            {"initializationType": "on-demand", "phase": "init", "status": self.init_status, **self._error_field(self.init_error_type)},
        )
        for extension in self.extensions.values():
            state = "Ready" if extension.first_next_at else ("LaunchError" if extension.exited_at else "InitError")
            self.hub.broadcast("platform.extension", {"name": extension.name, "state": state, "events": list(extension.events)})
        self.init_duration_ms = (time.monotonic() - init_started) * 1000
        self.hub.broadcast(
            "platform.initReport",
            {
                "initializationType": "on-demand",
                "phase": "init",
                "status": self.init_status,
                **self._error_field(self.init_error_type),
                "metrics": {"durationMs": round(self.init_duration_ms, 3)},
            },
        )
        self.hub.close_init()
        self.hub.drop_batches = self.options.drop_telemetry_batches
        self.phase = "idle"
        del runtime_duration_ms

    def _launch_extensions(self) -> None:
        directory = self.options.opt_dir / "extensions"
        if not directory.is_dir():
            return
        # Every regular file is started; a link counts too, even a broken one, which then
        # fails to launch as it would in Lambda.
        paths = sorted(p for p in directory.iterdir() if p.is_file() or p.is_symlink())
        if len(paths) > MAX_EXTENSIONS:
            raise RuntimeError(f"Extension.TooManyExtensions: {len(paths)} files in {directory}, the limit is 10")
        for path in paths:
            try:
                process = subprocess.Popen(
                    [str(path)],
                    env=self._extension_env(),
                    cwd=str(self.options.opt_dir),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as error:
                # Lambda fails init with Extension.LaunchError; the run goes on without it.
                self.crashes.append(f"{path.name} could not be started: {error.strerror} (Extension.LaunchError)")
                continue
            state = ExtensionState(path.name, path, process, time.monotonic())
            self.extensions[path.name] = state
            processes.capture_lines(process.stdout, lambda line, s=state: self._on_extension_output(s, line), f"sim-ext-out-{path.name}")
            threading.Thread(target=self._watch_extension, args=(state,), name=f"sim-ext-watch-{path.name}", daemon=True).start()

    def _extension_env(self) -> dict[str, str]:
        options = self.options
        env = {key: value for key, value in options.function_env.items() if not key.startswith("_")}
        env.update(self._platform_env())
        if options.extension_path is not None:
            env["PATH"] = options.extension_path
        else:
            env["PATH"] = str(Path(sys.base_prefix) / "bin") + ":/usr/local/bin:/usr/bin:/bin"
        return env

    def _platform_env(self) -> dict[str, str]:
        options = self.options
        return {
            "AWS_LAMBDA_RUNTIME_API": self.api_address,
            "AWS_REGION": options.region,
            "AWS_DEFAULT_REGION": options.region,
            "AWS_LAMBDA_FUNCTION_NAME": options.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(options.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_ACCESS_KEY_ID": "AKIASIMULATEDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "simulated-secret-access-key",
            "AWS_SESSION_TOKEN": "simulated-session-token",
            "TZ": "UTC",
            "LANG": "en_US.UTF-8",
        }

    def _start_runtime(self) -> None:
        options = self.options
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        python_path = [
            str(options.task_dir),
            str(options.opt_dir / "python"),
            str(options.opt_dir / "python" / "lib" / f"python{version}" / "site-packages"),
        ]
        env = dict(options.function_env)
        env.update(self._platform_env())
        env.update(
            {
                "PATH": str(Path(options.python).parent) + ":/usr/local/bin:/usr/bin:/bin:" + str(options.opt_dir / "bin"),
                "LD_LIBRARY_PATH": str(options.opt_dir / "lib"),
                "PYTHONPATH": ":".join(python_path),
                "PYTHONUNBUFFERED": "1",
                "LAMBDA_TASK_ROOT": str(options.task_dir),
                "LAMBDA_RUNTIME_DIR": str(Path(options.python).parent),
                "_HANDLER": options.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
                "AWS_LAMBDA_LOG_FORMAT": options.log_format,
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{options.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "simulated",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            }
        )
        if options.log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = options.log_level
        read_fd, write_fd = os.pipe()
        env["_LAMBDA_TELEMETRY_LOG_FD"] = str(write_fd)
        self.runtime = subprocess.Popen(
            [options.python, "-m", "awslambdaric", options.handler],
            env=env,
            cwd=str(options.task_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
        os.close(write_fd)
        self._runtime_fds = [read_fd, self.runtime.stdout.fileno(), self.runtime.stderr.fileno()]
        self._runtime_readers = [
            processes.capture_frames(read_fd, self._on_function_record, "sim-runtime-frames"),
            processes.capture_lines(self.runtime.stdout, self._on_function_record, "sim-runtime-stdout"),
            processes.capture_lines(self.runtime.stderr, self._on_function_record, "sim-runtime-stderr"),
        ]
        threading.Thread(target=self._watch_runtime, name="sim-runtime-watch", daemon=True).start()

    # --- output ------------------------------------------------------------------------------

    def _on_function_record(self, record: object) -> None:
        self._last_output_at = time.monotonic()
        if self.options.echo_output:
            self._echo("function", record if isinstance(record, str) else json.dumps(record))
        metric_count = _count_emf_metrics(record)
        invocation = self.current
        if invocation is not None:
            invocation.log_lines += 0 if metric_count else 1
            invocation.emf_metrics += metric_count
        elif self.phase == "init":
            self.init_log_lines += 0 if metric_count else 1
            self.init_emf_metrics += metric_count
        else:
            self.idle_log_lines += 0 if metric_count else 1
            self.idle_emf_metrics += metric_count
        self.hub.broadcast("function", record)

    def _echo(self, source: str, text: str) -> None:
        prefix = f"  {source} | "
        lines = text.rstrip("\n").split("\n")
        with self._echo_lock:
            sys.stderr.write("".join(prefix + line + "\n" for line in lines))
            sys.stderr.flush()

    def _on_extension_output(self, extension: ExtensionState, line: str) -> None:
        extension.output.append(line.rstrip("\n"))
        if self.options.echo_output:
            self._echo(extension.name, line)
        self.hub.broadcast("extension", line)

    # --- process watching --------------------------------------------------------------------

    def _watch_extension(self, extension: ExtensionState) -> None:
        code = extension.process.wait()
        with self._lock:
            extension.exited_at = time.monotonic()
            extension.exit_code = code
            if self.phase != "shutdown":
                extension.crashed = True
                self.crashes.append(f"{extension.name} exited with status {code} before SHUTDOWN (Extension.Crash)")
                if self.current is not None and not self.current.done.is_set():
                    self.current.status = "error"
                    self.current.error_type = "Extension.Crash"
            self._lock.notify_all()

    def _watch_runtime(self) -> None:
        assert self.runtime is not None
        self.runtime.wait()
        # The runtime's last output lines belong to the invocation, before its runtimeDone.
        for reader in getattr(self, "_runtime_readers", []):
            reader.join(timeout=1.0)
        with self._lock:
            self._lock.notify_all()
        invocation = self.current
        if invocation is not None and invocation.runtime_done_at is None and self.phase != "shutdown":
            invocation.status = "error"
            invocation.error_type = "Runtime.ExitError"
            self._finish_runtime(invocation)

    def runtime_gone(self) -> bool:
        return self.runtime is not None and self.runtime.poll() is not None

    # --- driver ------------------------------------------------------------------------------

    def invoke(self, payload: bytes) -> Invocation:
        """Run one invocation to its report, then freeze the sandbox."""
        self._thaw()
        self.phase = "invoke"
        now_ms = epoch_ms()
        trace_root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
        invocation = Invocation(
            request_id=str(uuid.uuid4()),
            payload=payload,
            deadline_ms=now_ms + int(self.options.timeout_s * 1000),
            trace_header=f"Root={trace_root};Parent={uuid.uuid4().hex[:16]};Sampled=1",
        )
        invocation.cold_start = not self.invocations
        self.invocations.append(invocation)
        invocation.started_at = time.monotonic()
        invocation.started_epoch = time.time()
        self.current = invocation
        self.hub.broadcast(
            "platform.start",
            {"requestId": invocation.request_id, "version": "$LATEST", "tracing": self._tracing(invocation)},
        )
        event = {
            "eventType": "INVOKE",
            "deadlineMs": invocation.deadline_ms,
            "requestId": invocation.request_id,
            "invokedFunctionArn": self.function_arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": invocation.trace_header},
        }
        receivers = [e for e in self.extensions.values() if "INVOKE" in e.events and e.exited_at is None]
        self._runtime_queue.put(invocation)
        if self.options.extension_invoke_delay_ms:
            timer = threading.Timer(
                self.options.extension_invoke_delay_ms / 1000.0,
                lambda: [e.events_queue.put(event) for e in receivers],
            )
            timer.daemon = True
            timer.start()
        else:
            for extension in receivers:
                extension.events_queue.put(event)

        deadline = invocation.started_at + self.options.timeout_s
        with self._lock:
            self._lock.wait_for(
                lambda: invocation.runtime_done_at is not None or self.runtime_gone(),
                timeout=max(0.0, deadline - time.monotonic()),
            )
        if invocation.runtime_done_at is None:
            invocation.status = "error" if self.runtime_gone() else "timeout"
            invocation.error_type = "Runtime.ExitError" if self.runtime_gone() else None
            self._finish_runtime(invocation)
        with self._lock:
            self._lock.wait_for(
                lambda: all(
                    e.name in invocation.extension_done_ms or e.exited_at is not None
                    for e in self.extensions.values()
                    if "INVOKE" in e.events
                ),
                timeout=max(0.0, deadline - time.monotonic()),
            )
        ended_at = time.monotonic()
        invocation.duration_ms = (ended_at - invocation.started_at) * 1000
        if invocation.status == "success" and any(
            e.name not in invocation.extension_done_ms and e.exited_at is None and "INVOKE" in e.events
            for e in self.extensions.values()
        ):
            invocation.status = "timeout"
        init_ms = self.init_duration_ms if invocation.cold_start and self.init_duration_ms else 0.0
        invocation.billed_ms = int(math.ceil(invocation.duration_ms + init_ms))
        invocation.max_memory_mb = processes.peak_memory_mb(self._pids())
        metrics: dict[str, Any] = {
            "durationMs": round(invocation.duration_ms, 3),
            "billedDurationMs": invocation.billed_ms,
            "memorySizeMB": self.options.memory_mb,
            "maxMemoryUsedMB": invocation.max_memory_mb,
        }
        if invocation.cold_start and self.init_duration_ms is not None:
            metrics["initDurationMs"] = round(self.init_duration_ms, 3)
        self.hub.broadcast(
            "platform.report",
            {
                "requestId": invocation.request_id,
                "status": invocation.status,
                **self._error_field(invocation.error_type),
                "metrics": metrics,
                "tracing": self._tracing(invocation),
            },
        )
        invocation.done.set()
        self.current = None
        self.phase = "idle"
        if invocation.status in ("timeout",) or self.runtime_gone():
            return invocation
        self._freeze()
        return invocation

    def shutdown(self, reason: str = "spindown") -> dict[str, Any]:
        """Send SHUTDOWN, wait for the extensions until the deadline, then SIGKILL stragglers."""
        self._thaw()
        started = time.monotonic()
        if not self.options.report_after_shutdown:
            self.hub.flush(1.0)
        self.phase = "shutdown"
        budget_s = self.options.shutdown_budget_ms / 1000.0
        deadline = started + budget_s
        announced_ms = self.options.announced_shutdown_left_ms
        deadline_ms = epoch_ms() + (self.options.shutdown_budget_ms if announced_ms is None else announced_ms)
        if self.runtime is not None and self.runtime.poll() is None:
            processes.signal_process(self.runtime, signal.SIGTERM)
            if not processes.wait_for_exit(self.runtime, started + min(RUNTIME_STOP_S, budget_s)):
                processes.signal_process(self.runtime, signal.SIGKILL)
        event = {"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms}
        for extension in self.extensions.values():
            if extension.exited_at is not None:
                continue
            if "SHUTDOWN" in extension.events:
                extension.events_queue.put(event)
            else:
                processes.signal_process(extension.process, signal.SIGKILL)
        if self.options.report_after_shutdown:
            self.hub.flush(max(0.0, min(1.0, deadline - time.monotonic())))
        for extension in self.extensions.values():
            if not processes.wait_for_exit(extension.process, deadline):
                extension.killed = "SHUTDOWN" in extension.events
                processes.signal_process(extension.process, signal.SIGKILL)
                extension.process.wait()
            if extension.exited_at is None:
                extension.exited_at = time.monotonic()
        self._closing.set()
        self.hub.close()
        self.shutdown_info = {
            "reason": reason,
            "budgetMs": self.options.shutdown_budget_ms,
            "extensions": {
                e.name: {
                    "exitAfterMs": round((e.exited_at - started) * 1000, 1) if e.exited_at else None,
                    "exitCode": e.process.returncode,
                    "killed": e.killed,
                }
                for e in self.extensions.values()
            },
        }
        return self.shutdown_info

    def close(self) -> None:
        """Kill whatever still runs; safe to call more than once."""
        self._closing.set()
        self.hub.close()
        self._thaw()
        for process in [e.process for e in self.extensions.values()] + ([self.runtime] if self.runtime else []):
            if process.poll() is None:
                processes.signal_process(process, signal.SIGKILL)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass

    # --- helpers -----------------------------------------------------------------------------

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.options.region}:123456789012:function:{self.options.function_name}"

    def _pids(self) -> list[int]:
        pids = [e.process.pid for e in self.extensions.values() if e.process.poll() is None]
        if self.runtime is not None and self.runtime.poll() is None:
            pids.append(self.runtime.pid)
        return pids

    def _all_processes(self) -> list[subprocess.Popen]:
        result = [e.process for e in self.extensions.values()]
        if self.runtime is not None:
            result.append(self.runtime)
        return result

    def _freeze(self) -> None:
        if not self.options.freeze:
            return
        self.hub.freeze()
        processes.freeze(self._all_processes())

    def _thaw(self) -> None:
        processes.thaw(self._all_processes())
        self.hub.thaw()

    @staticmethod
    def _tracing(invocation: Invocation) -> dict[str, str]:
        return {"spanId": invocation.trace_header.split("Parent=")[1][:16], "type": "X-Amzn-Trace-Id", "value": invocation.trace_header}

    @staticmethod
    def _error_field(error_type: Optional[str]) -> dict[str, str]:
        return {"errorType": error_type} if error_type else {}


def _count_emf_metrics(record: object) -> int:
    """Return how many metric definitions an EMF document holds; 0 for any other line."""
    if isinstance(record, str):
        text = record.strip()
        if not (text.startswith("{") and '"_aws"' in text):
            return 0
        try:
            record = json.loads(text)
        except ValueError:
            return 0
    if not isinstance(record, dict) or not isinstance(record.get("_aws"), dict):
        return 0
    directives = record["_aws"].get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return 0
    return sum(len(d.get("Metrics") or []) for d in directives if isinstance(d, dict))

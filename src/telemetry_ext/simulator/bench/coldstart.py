"""Cold start: time from the extension's exec to its first /event/next, against a bare interpreter.

The extension runs against a minimal Extensions API of its own (``FakeExtensionsApi``) that
records when /register and the first /event/next arrive and never responds to /event/next, so no
runtime starts alongside and the figure covers the extension alone. The simulated sandbox's
whole init is measured too, with and without the extension.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

from telemetry_ext.simulator.bench.common import EXTENSION_NAME, HANDLER, Row, runs_row
from telemetry_ext.simulator.sandbox import SandboxOptions
from telemetry_ext.simulator.scenario import Scenario, run_scenario
from telemetry_ext.simulator.sink import Sink

SECTION = "coldStart"
# Maximum wait for the extension's first /event/next before a run counts as failed.
FIRST_NEXT_TIMEOUT_S = 10.0
RATIO_GOAL = 2.0


class _FakeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: "FakeExtensionsApi"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        pass

    def do_POST(self) -> None:
        self._read_body()
        if self.path == "/2020-01-01/extension/register":
            self.server.run.registered_at = time.monotonic()
            body = {"functionName": "bench-function", "functionVersion": "$LATEST", "handler": HANDLER}
            self._send(200, body, {"Lambda-Extension-Identifier": str(uuid.uuid4())})
        else:
            self._send(404, {"errorType": "NotFound", "errorMessage": f"POST {self.path} is not a route"})

    def do_PUT(self) -> None:
        self._read_body()
        if self.path == "/2022-07-01/telemetry":
            self._send(200, "OK")
        else:
            self._send(404, {"errorType": "NotFound", "errorMessage": f"PUT {self.path} is not a route"})

    def do_GET(self) -> None:
        if self.path != "/2020-01-01/extension/event/next":
            self._send(404, {"errorType": "NotFound", "errorMessage": f"GET {self.path} is not a route"})
            return
        run = self.server.run
        if run.first_next_at is None:
            run.first_next_at = time.monotonic()
            run.first_next.set()
        # Never respond: the extension stays blocked here until the benchmark kills it.
        run.released.wait(FIRST_NEXT_TIMEOUT_S * 3)
        self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any, headers: Optional[dict[str, str]] = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _RunState:
    """Times of the requests that the fake API received from one extension process."""

    def __init__(self) -> None:
        self.registered_at: Optional[float] = None
        self.first_next_at: Optional[float] = None
        self.first_next = threading.Event()
        self.released = threading.Event()  # Ends the wait of the /event/next that gets no response.


class FakeExtensionsApi(ThreadingHTTPServer):
    """Extensions and Telemetry API on 127.0.0.1 that only records register and the first /event/next.

    One extension process at a time: ``new_run`` starts recording for the next one.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FakeApiHandler)
        self.run = _RunState()
        self._thread = threading.Thread(target=self.serve_forever, name="bench-fake-api", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> "FakeExtensionsApi":
        self._thread.start()
        return self

    def new_run(self) -> _RunState:
        self.run.released.set()
        self.run = _RunState()
        return self.run

    def stop(self) -> None:
        self.run.released.set()
        self.shutdown()
        self.server_close()


def base_interpreter() -> Path:
    """Return the interpreter that the simulator puts first on the extension's PATH."""
    return Path(sys.base_prefix) / "bin" / "python3"


def _extension_env(api_address: str, sink_url: str) -> dict[str, str]:
    # The same variables that the simulator's sandbox gives an extension.
    return {
        "PATH": str(base_interpreter().parent) + ":/usr/local/bin:/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": api_address,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "bench-function",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "TZ": "UTC",
        "LANG": "en_US.UTF-8",
        "TELEMETRY_EXT_LISTENER_HOST": "127.0.0.1",
        "TELEMETRY_EXT_HTTP_URL": sink_url,
    }


def time_bare_interpreter(env: dict[str, str], flags: tuple[str, ...] = ("-I",)) -> float:
    """Return the wall time of ``python3 <flags> -c pass`` from exec to exit, in ms."""
    started = time.monotonic()
    subprocess.run(
        [str(base_interpreter()), *flags, "-c", "pass"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=FIRST_NEXT_TIMEOUT_S,
    )
    return (time.monotonic() - started) * 1000


def time_extension(api: FakeExtensionsApi, launcher: Path, sink_url: str) -> tuple[Optional[float], Optional[float], str]:
    """Start the layer's launcher against ``api``; return ms to /register and to the first /event/next.

    Returns None for a step that did not happen within ``FIRST_NEXT_TIMEOUT_S``, with the
    extension's output to explain it.
    """
    run = api.new_run()
    started = time.monotonic()
    process = subprocess.Popen(
        [str(launcher)],
        env=_extension_env(api.address, sink_url),
        cwd=str(launcher.parent.parent),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        run.first_next.wait(FIRST_NEXT_TIMEOUT_S)
    finally:
        process.kill()
        output, _ = process.communicate(timeout=FIRST_NEXT_TIMEOUT_S)
        run.released.set()
    register_ms = (run.registered_at - started) * 1000 if run.registered_at else None
    first_next_ms = (run.first_next_at - started) * 1000 if run.first_next_at else None
    return register_ms, first_next_ms, output.decode("utf-8", "replace")


def remove_bytecode_caches(directory: Path) -> None:
    """Delete every ``__pycache__`` folder under ``directory``, the layer's code in the unpacked /opt.

    The layer ships no bytecode and /opt is read-only on Lambda, so each cold start there
    compiles the modules it imports. Removing the caches that earlier runs wrote here
    reproduces that, plus the small cost of writing them again.
    """
    for cache in sorted(directory.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)


def _sandbox_init(opt_dir: Path, task_dir: Path) -> tuple[float, Optional[float]]:
    """Run the simulated init with no invokes; return its duration and the extension's exec to first /event/next."""
    options = SandboxOptions(opt_dir=opt_dir, task_dir=task_dir, handler=HANDLER, function_name="bench-function")
    report = run_scenario(Scenario(options, [{}], invokes=0, interval_ms=0))
    extension = report["extensions"].get(EXTENSION_NAME) or {}
    return report["init"]["durationMs"], extension.get("execToFirstNextMs")


def measure(opt_dir: Path, empty_opt_dir: Path, task_dir: Path, repeats: int) -> tuple[list[Row], list[str]]:
    """Measure the cold start figures; return the rows and any failures."""
    launcher = opt_dir / "extensions" / EXTENSION_NAME
    failures: list[str] = []
    bare_ms: list[float] = []
    bare_no_site_ms: list[float] = []
    added_ms: list[float] = []
    register_ms: list[float] = []
    first_next_ms: list[float] = []
    warm_first_next_ms: list[float] = []
    ratios: list[float] = []
    no_site_ratios: list[float] = []
    sink = Sink("ok").start()
    api = FakeExtensionsApi().start()
    try:
        env = _extension_env(api.address, sink.url)
        # One untimed run of each first, so that both start with warm file caches.
        time_bare_interpreter(env)
        time_extension(api, launcher, sink.url)
        # Alternate the kinds of run, so that a change in machine load affects all alike.
        for _ in range(repeats):
            bare = time_bare_interpreter(env)
            bare_no_site = time_bare_interpreter(env, ("-I", "-S"))
            remove_bytecode_caches(launcher.parent.parent / EXTENSION_NAME)
            registered, first_next, output = time_extension(api, launcher, sink.url)
            _, warm_first_next, _ = time_extension(api, launcher, sink.url)
            if first_next is None:
                tail = " | ".join(output.strip().splitlines()[-3:])
                failures.append(f"cold start: no /event/next within {FIRST_NEXT_TIMEOUT_S:.0f} s; output: {tail}")
                continue
            bare_ms.append(bare)
            bare_no_site_ms.append(bare_no_site)
            first_next_ms.append(first_next)
            added_ms.append(first_next - bare)
            ratios.append(first_next / bare)
            no_site_ratios.append(first_next / bare_no_site)
            if registered is not None:
                register_ms.append(registered)
            if warm_first_next is not None:
                warm_first_next_ms.append(warm_first_next)
    finally:
        api.stop()
        sink.stop()

    init_with: list[float] = []
    init_without: list[float] = []
    sandbox_first_next: list[float] = []
    for _ in range(repeats):
        duration, first_next = _sandbox_init(opt_dir, task_dir)
        init_with.append(duration)
        if first_next is not None:
            sandbox_first_next.append(first_next)
        duration, _ = _sandbox_init(empty_opt_dir, task_dir)
        init_without.append(duration)

    ratio_row = runs_row(
        SECTION,
        "ratio",
        "Cold start: extension / bare interpreter",
        "x",
        ratios,
        digits=2,
        goal=f"<= {RATIO_GOAL:g}x",
        note="median and min-max of the per-run ratios",
    )
    if ratio_row.median is not None:
        ratio_row.met = ratio_row.median <= RATIO_GOAL
    rows = [
        runs_row(SECTION, "bareInterpreterMs", f"Cold start: `{base_interpreter()} -I -c pass`, exec to exit", "ms", bare_ms),
        runs_row(
            SECTION,
            "bareInterpreterNoSiteMs",
            "Cold start: the same with -S (no site module, no .pth files)",
            "ms",
            bare_no_site_ms,
            note="shows what site-packages startup hooks cost on this machine; the extension pays them too",
        ),
        runs_row(SECTION, "execToRegisterMs", "Cold start: extension exec to /register (fake API)", "ms", register_ms),
        runs_row(
            SECTION,
            "execToFirstNextMs",
            "Cold start: extension exec to first /event/next (fake API)",
            "ms",
            first_next_ms,
            note="no bytecode cache in the layer, as on Lambda's read-only /opt",
        ),
        runs_row(
            SECTION,
            "warmCacheExecToFirstNextMs",
            "Cold start: the same with a warm bytecode cache",
            "ms",
            warm_first_next_ms,
            note="__pycache__ written by the run before; Lambda cannot write one into /opt",
        ),
        runs_row(SECTION, "addedOverBareMs", "Cold start: extension minus bare interpreter", "ms", added_ms, note="per-run difference"),
        ratio_row,
        runs_row(
            SECTION,
            "ratioNoSite",
            "Cold start: extension / bare interpreter with -S",
            "x",
            no_site_ratios,
            digits=2,
            note="for reference: the ratio without this machine's site-packages startup hooks in the baseline",
        ),
        runs_row(
            SECTION,
            "sandboxExecToFirstNextMs",
            "Cold start: exec to first /event/next in the simulated sandbox",
            "ms",
            sandbox_first_next,
            note="the function's runtime starts at the same time and shares the cores",
        ),
        runs_row(
            SECTION,
            "sandboxInitWithExtensionMs",
            "Sandbox init duration, with the extension",
            "ms",
            init_with,
            note="bytecode cache warm from the runs above",
        ),
        runs_row(SECTION, "sandboxInitWithoutExtensionMs", "Sandbox init duration, no extension", "ms", init_without),
    ]
    return rows, failures

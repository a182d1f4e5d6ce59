"""Runtime API (2018-06-01) methods of the sandbox: invocation/next, response, error and
init/error, and the platform.runtimeDone event that ends the runtime's part of an invoke."""

from __future__ import annotations

import json
import queue
import time
from typing import Any, Optional

from telemetry_ext.simulator import processes
from telemetry_ext.simulator.clock import iso_time
from telemetry_ext.simulator.state import ApiError, Invocation


class RuntimeApiMixin:
    """The Runtime API methods of `Sandbox`, which api.py calls from its server threads.

    They work on the state that `Sandbox.__init__` sets up and call the `_tracing` and
    `_error_field` helpers of `Sandbox`, so the class serves only as a base class of `Sandbox`.
    """

    def runtime_next(self) -> Invocation:
        invocation = self.current
        if invocation is not None and invocation.runtime_done_at is None:
            self._finish_runtime(invocation)
        with self._lock:
            self._runtime_ready.set()
            self._lock.notify_all()
        while not self._closing.is_set():
            try:
                next_invocation = self._runtime_queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if next_invocation is None:
                break
            return next_invocation
        raise ApiError(500, "Sandbox.Closed", "the sandbox is closed")

    def runtime_response(self, request_id: str, body: bytes) -> None:
        invocation = self._check_request(request_id)
        invocation.response_at = time.monotonic()
        invocation.response_bytes = len(body)
        invocation.response = body

    def runtime_error(self, request_id: str, body: bytes) -> None:
        invocation = self._check_request(request_id)
        invocation.response_at = time.monotonic()
        try:
            invocation.error = json.loads(body)
        except ValueError:
            invocation.error = {"errorType": "Runtime.Unknown", "errorMessage": body[:200].decode("utf-8", "replace")}
        invocation.response_bytes = len(body)

    def runtime_init_error_reported(self, body: bytes, error_type: Optional[str]) -> None:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {}
        if not isinstance(parsed, dict):
            parsed = {}
        parsed.setdefault("errorType", error_type or "Runtime.Unknown")
        with self._lock:
            self.runtime_init_error = parsed
            self._lock.notify_all()

    def _check_request(self, request_id: str) -> Invocation:
        invocation = self.current
        if invocation is None or invocation.request_id != request_id:
            raise ApiError(400, "InvalidRequestID", f"Invalid request ID: {request_id}")
        if invocation.response_at is not None:
            raise ApiError(403, "InvalidStateTransition", "the response was already posted")
        return invocation

    def _wait_for_runtime_output(self, timeout_s: float = 0.5) -> None:
        """Wait until the runtime's output pipes are empty and their readers went quiet.

        Lambda emits runtimeDone after the function's output of that invoke; without this wait
        the reader threads could still be behind and deliver lines after the report.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if processes.unread_bytes(self._runtime_fds) == 0 and time.monotonic() - self._last_output_at >= 0.005:
                return
            time.sleep(0.001)

    def _finish_runtime(self, invocation: Invocation) -> None:
        self._wait_for_runtime_output()
        with self._lock:
            if invocation.runtime_done_at is not None:
                return
            invocation.runtime_done_at = time.monotonic()
            invocation.runtime_done_epoch = time.time()
        if invocation.error is not None and invocation.status == "success":
            invocation.status = self.options.function_error_status
            if invocation.status != "success":
                invocation.error_type = str(invocation.error.get("errorType") or "Function.Unhandled")
        runtime_ms = (invocation.runtime_done_at - invocation.started_at) * 1000
        spans = []
        if invocation.response_at is not None:
            latency_ms = (invocation.response_at - invocation.started_at) * 1000
            spans = [
                {"name": "responseLatency", "start": iso_time(invocation.started_epoch), "durationMs": round(latency_ms, 3)},
                {"name": "responseDuration", "start": iso_time(invocation.started_epoch + latency_ms / 1000), "durationMs": 0.1},
            ]
        record: dict[str, Any] = {
            "requestId": invocation.request_id,
            "status": invocation.status,
            **self._error_field(invocation.error_type),
            "metrics": {"durationMs": round(runtime_ms, 3), "producedBytes": invocation.response_bytes},
            "tracing": self._tracing(invocation),
        }
        if spans:
            record["spans"] = spans
        self.hub.broadcast("platform.runtimeDone", record)
        with self._lock:
            self._lock.notify_all()

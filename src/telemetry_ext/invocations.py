"""Groups Telemetry API events into one record per invocation and one per initialization.

Events of one invocation share a ``requestId``, arrive in several batches, in any order, and
partly after the invocation ended: the ``platform.report`` of the last invocation usually only
arrives after SHUTDOWN. A record becomes ready to ship when its report (``initReport`` for
init) arrives, when it contains too much data to wait, or at SHUTDOWN. Record fields are listed
in docs/records.md.

``function`` events carry no ``requestId`` in the envelope. A line is attributed to the
request id written in it (the Python runtime's text format and Powertools lines carry one),
else to the invocation running when it was produced (between ``platform.start`` and
``platform.runtimeDone``), else to the init record while init is open.

Every event counts towards exactly one record, so the delivery layer can account for each one.
The aggregator is thread-safe: the processor thread adds events while the main thread waits
for ``runtimeDone`` and the shipper takes ready records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Optional

from telemetry_ext import logs as log_parsing

logger = logging.getLogger(__name__)

Record = dict[str, Any]
Redact = Callable[[Record], Record]

INIT_EVENT_TYPES = frozenset(
    {"platform.initStart", "platform.initRuntimeDone", "platform.initReport", "platform.extension"}
)
RESTORE_EVENT_TYPES = frozenset({"platform.restoreStart", "platform.restoreRuntimeDone", "platform.restoreReport"})
SHUTDOWN_STATUS = {"timeout": "timeout", "failure": "failure"}
# Members of an EMF document that carry the request id; parse_emf keeps them in "properties".
_METRIC_REQUEST_ID_KEYS = ("requestId", "function_request_id", "request_id", "awsRequestId")


class ReadyItem:
    """A record ready to ship, with the number of telemetry events and bytes it stands for."""

    __slots__ = ("record", "event_count", "size_bytes")

    def __init__(self, record: Record, event_count: int, size_bytes: int) -> None:
        self.record = record
        self.event_count = event_count
        self.size_bytes = size_bytes


class _Pending:
    __slots__ = ("record", "event_count", "size_bytes", "has_runtime_done", "closed")

    def __init__(self, record: Record) -> None:
        self.record = record
        self.event_count = 0
        self.size_bytes = 0
        self.has_runtime_done = False
        self.closed = False


class Aggregator:
    """Builds invocation and init records from batches of telemetry events."""

    def __init__(
        self,
        function_name: Optional[str] = None,
        function_version: Optional[str] = None,
        region: Optional[str] = None,
        min_log_level: Optional[str] = None,
        redact: Optional[Redact] = None,
        max_pending_bytes: int = 2 * 1024 * 1024,
        on_filtered: Optional[Callable[[int], None]] = None,
    ) -> None:
        self._identity = {"functionName": function_name, "functionVersion": function_version, "region": region}
        self._min_log_level = min_log_level
        self._redact = redact
        self._max_pending_bytes = max_pending_bytes
        self._on_filtered = on_filtered
        self._lock = threading.Lock()
        self._runtime_done = threading.Condition(self._lock)
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._pending_bytes = 0
        self._init: Optional[_Pending] = None
        self._init_done = False
        self._restore: Optional[_Pending] = None
        self._loose: Optional[_Pending] = None
        # Closed records wait here until taken. Late events of a closed invocation (a report
        # before its start, logs after its report) still join its record until then.
        self._ready: list[_Pending] = []
        self._closed_invocations: dict[str, _Pending] = {}
        self._event_counted = False
        self._current_request_id: Optional[str] = None
        # The invocation that reached runtimeDone last, and that event's time, for output that
        # arrives after it but was produced before it.
        self._last_done: Optional[tuple[str, str]] = None
        self._runtime_done_ids: OrderedDict[str, float] = OrderedDict()
        self._invocations_seen = 0
        # Request ids from INVOKE events whose report has not arrived, and recent reported ids.
        self._awaiting_report: OrderedDict[str, None] = OrderedDict()
        self._reported_ids: OrderedDict[str, None] = OrderedDict()
        self.platform_dropped_records = 0
        self.platform_dropped_bytes = 0
        self.events_received = 0

    # --- input -------------------------------------------------------------------------------

    def add_events(self, events: list[Any], size_bytes_each: int) -> int:
        """Add a batch of events; return how many were not objects and were skipped."""
        malformed = 0
        with self._lock:
            for event in events:
                if not isinstance(event, dict):
                    malformed += 1
                    continue
                self.events_received += 1
                self._event_counted = False
                try:
                    self._add_event(event, size_bytes_each)
                except Exception:  # noqa: BLE001 - one odd event must not stop the batch
                    logger.exception("could not process a %r event; kept it verbatim", event.get("type"))
                    # The handler may have counted the event before it failed.
                    self._attach_verbatim(event, size_bytes_each, count=not self._event_counted)
            self._evict_if_over_bound()
        return malformed

    def note_invoke(self, request_id: str) -> None:
        """Record the INVOKE event's request id, which may come before any telemetry for it."""
        with self._lock:
            if request_id not in self._reported_ids:
                self._awaiting_report[request_id] = None
                while len(self._awaiting_report) > 1_000:
                    self._awaiting_report.popitem(last=False)

    def wait_for_runtime_done(self, request_id: str, timeout_s: float) -> bool:
        """Block until ``platform.runtimeDone`` for ``request_id`` arrived, or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        with self._runtime_done:
            while request_id not in self._runtime_done_ids:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._runtime_done.wait(remaining)
            return True

    def runtime_done_at(self, request_id: str) -> Optional[float]:
        """Return when ``runtimeDone`` for ``request_id`` was processed (``time.monotonic()``)."""
        with self._lock:
            return self._runtime_done_ids.get(request_id)

    def wait_for_reports(self, timeout_s: float) -> bool:
        """Block until every invoked or ``runtimeDone`` invocation also has its report.

        At SHUTDOWN the last report usually arrives shortly after the event; waiting a bounded
        time for it keeps the last invocation's record complete.
        """
        deadline = time.monotonic() + timeout_s
        with self._runtime_done:
            while self._awaiting_report or any(p.has_runtime_done for p in self._pending.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._runtime_done.wait(remaining)
            return True

    # --- output ------------------------------------------------------------------------------

    def take_ready(self) -> list[ReadyItem]:
        with self._lock:
            return self._take_closed()

    def take_everything(self, shutdown_reason: Optional[str] = None) -> list[ReadyItem]:
        """Close every open record and return all of them; used at SHUTDOWN.

        An invocation that never got ``runtimeDone`` takes its status from a ``timeout`` or
        ``failure`` shutdown reason, the only trace such an invocation may leave.
        """
        reason = (shutdown_reason or "").lower()
        with self._lock:
            for pending in list(self._pending.values()):
                record = pending.record
                if record.get("status") is None and not pending.has_runtime_done and reason in SHUTDOWN_STATUS:
                    record["status"] = SHUTDOWN_STATUS[reason]
                    record["statusSource"] = "shutdown"
                self._close(pending)
            self._pending.clear()
            self._pending_bytes = 0
            for attribute in ("_init", "_restore", "_loose"):
                pending = getattr(self, attribute)
                if pending is not None and pending.event_count:
                    self._close(pending)
                setattr(self, attribute, None)
            return self._take_closed()

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    # --- event handling (called with the lock held) ------------------------------------------

    def _add_event(self, event: Record, size_bytes: int) -> None:
        event_type = event.get("type")
        record = event.get("record")
        event_time = event.get("time") if isinstance(event.get("time"), str) else None

        if event_type in ("function", "extension"):
            self._add_log(event_type, record, event_time or now_iso(), size_bytes)
            return
        if not isinstance(record, dict):
            self._attach_verbatim(event, size_bytes)
            return
        if event_type in INIT_EVENT_TYPES:
            self._add_init_event(event_type, record, event_time, size_bytes)
            return
        if event_type in RESTORE_EVENT_TYPES:
            self._add_restore_event(event_type, record, event_time, size_bytes)
            return
        if event_type == "platform.logsDropped":
            self.platform_dropped_records += _as_int(record.get("droppedRecords"))
            self.platform_dropped_bytes += _as_int(record.get("droppedBytes"))
            logger.warning(
                "Lambda dropped %s telemetry records (%s bytes): %s",
                record.get("droppedRecords"),
                record.get("droppedBytes"),
                record.get("reason"),
            )
            self._attach_loose(event, size_bytes)
            return

        request_id = record.get("requestId")
        if not isinstance(request_id, str) or not request_id:
            self._attach_verbatim(event, size_bytes)
            return
        pending = self._invocation(request_id)
        self._count(pending, size_bytes)
        if event_type == "platform.start":
            self._on_start(pending.record, record, event_time)
        elif event_type == "platform.runtimeDone":
            self._on_runtime_done(pending, record, event_time)
        elif event_type == "platform.report":
            self._on_report(pending, record, event_time)
        else:
            pending.record["events"].append(event)

    def _on_start(self, target: Record, record: Record, event_time: Optional[str]) -> None:
        target["startTime"] = event_time
        target["version"] = record.get("version")
        self._apply_tracing(target, record.get("tracing"))
        request_id = target["requestId"]
        if request_id not in self._runtime_done_ids and not target.get("complete"):
            self._current_request_id = request_id

    def _on_runtime_done(self, pending: _Pending, record: Record, event_time: Optional[str]) -> None:
        target = pending.record
        pending.has_runtime_done = True
        if not target.get("complete"):
            target["status"] = record.get("status")
            target["errorType"] = record.get("errorType")
        target["runtimeDoneTime"] = event_time
        metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
        target["runtimeDurationMs"] = metrics.get("durationMs")
        target["producedBytes"] = metrics.get("producedBytes")
        for span in record.get("spans") or []:
            if isinstance(span, dict) and span.get("name") in ("responseLatency", "responseDuration"):
                target[span["name"] + "Ms"] = span.get("durationMs")
                target.setdefault("spans", []).append(span)
        self._apply_tracing(target, record.get("tracing"))
        self._update_overhead(target)
        request_id = target["requestId"]
        self._runtime_done_ids[request_id] = time.monotonic()
        while len(self._runtime_done_ids) > 1_000:
            self._runtime_done_ids.popitem(last=False)
        if self._current_request_id == request_id:
            self._current_request_id = None
        if event_time is not None:
            self._last_done = (request_id, event_time)
        self._runtime_done.notify_all()

    def _on_report(self, pending: _Pending, record: Record, event_time: Optional[str]) -> None:
        target = pending.record
        target["status"] = record.get("status", target.get("status"))
        target["errorType"] = record.get("errorType", target.get("errorType"))
        target["endTime"] = event_time
        metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
        for key in ("durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs", "restoreDurationMs"):
            if key in metrics:
                target[key] = metrics[key]
        if metrics.get("initDurationMs") is not None:
            target["coldStart"] = True
        for span in record.get("spans") or []:
            if isinstance(span, dict):
                target.setdefault("spans", []).append(span)
        self._apply_tracing(target, record.get("tracing"))
        self._update_overhead(target)
        target["complete"] = True
        request_id = target["requestId"]
        self._awaiting_report.pop(request_id, None)
        self._reported_ids[request_id] = None
        while len(self._reported_ids) > 1_000:
            self._reported_ids.popitem(last=False)
        if self._pending.get(request_id) is pending:
            del self._pending[request_id]
            self._pending_bytes -= pending.size_bytes
        self._close(pending)
        self._runtime_done.notify_all()

    def _add_init_event(self, event_type: str, record: Record, event_time: Optional[str], size_bytes: int) -> None:
        if self._init is None or (event_type == "platform.initStart" and self._init_done):
            self._init = _Pending(_new_init_record("init", self._identity))
            self._init_done = False
        pending = self._init
        self._count(pending, size_bytes)
        target = pending.record
        if event_type == "platform.initStart":
            target["startTime"] = event_time
            for key in ("initializationType", "phase", "runtimeVersion", "runtimeVersionArn", "instanceId", "instanceMaxMemory"):
                if key in record:
                    target[key] = record[key]
        elif event_type == "platform.initRuntimeDone":
            target["status"] = record.get("status")
            target["errorType"] = record.get("errorType")
            metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
            target["runtimeDurationMs"] = metrics.get("durationMs")
            target.setdefault("initializationType", record.get("initializationType"))
            target.setdefault("phase", record.get("phase"))
            if record.get("spans"):
                target["spans"] = record["spans"]
        elif event_type == "platform.extension":
            target["extensions"].append(record)
        else:  # platform.initReport
            target["endTime"] = event_time
            metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
            target["durationMs"] = metrics.get("durationMs")
            if record.get("status") is not None:
                target["status"] = record.get("status")
                target["errorType"] = record.get("errorType")
            target.setdefault("initializationType", record.get("initializationType"))
            target.setdefault("phase", record.get("phase"))
            target["complete"] = True
            self._close(pending)
            self._init = None
            self._init_done = True

    def _add_restore_event(self, event_type: str, record: Record, event_time: Optional[str], size_bytes: int) -> None:
        if self._restore is None:
            self._restore = _Pending(_new_init_record("restore", self._identity))
        pending = self._restore
        self._count(pending, size_bytes)
        target = pending.record
        if event_type == "platform.restoreStart":
            target["startTime"] = event_time
            for key in ("runtimeVersion", "runtimeVersionArn", "instanceId", "instanceMaxMemory"):
                if key in record:
                    target[key] = record[key]
        elif event_type == "platform.restoreRuntimeDone":
            target["status"] = record.get("status")
            target["errorType"] = record.get("errorType")
            metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
            target["runtimeDurationMs"] = metrics.get("durationMs")
        else:
            target["endTime"] = event_time
            target["status"] = record.get("status", target.get("status"))
            target["errorType"] = record.get("errorType", target.get("errorType"))
            metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
            target["durationMs"] = metrics.get("durationMs")
            target["complete"] = True
            self._close(pending)
            self._restore = None

    def _add_log(self, event_type: str, record: Any, event_time: str, size_bytes: int) -> None:
        log_records, metric_records = log_parsing.parse_function_record(record, event_time)
        if event_type == "extension":
            for log_record in log_records:
                log_record.setdefault("fields", {})["source"] = "extension"
        if self._min_log_level is not None:
            log_records, filtered = log_parsing.filter_logs(log_records, self._min_log_level)
            if filtered and not log_records and not metric_records:
                if self._on_filtered is not None:
                    self._on_filtered(1)
                return
        if self._redact is not None:
            log_records = [self._redact(log_record) for log_record in log_records]

        request_id = next((r.get("requestId") for r in log_records if r.get("requestId")), None)
        for metric_record in metric_records:
            if request_id is not None:
                break
            request_id = _metric_request_id(metric_record)
        if request_id is None:
            request_id = self._current_request_id
        if request_id is None and self._last_done is not None and _is_iso_time(event_time):
            # Both times have the Telemetry API's fixed-width format, so text order is time order.
            done_id, done_time = self._last_done
            if _is_iso_time(done_time) and event_time <= done_time:
                request_id = done_id
        if request_id is not None:
            pending = self._invocation(request_id)
            # Lines placed by position (print output, the runtime's uncaught-error line) get
            # the id too, so that each log record can be queried on its own.
            for log_record in log_records:
                if not log_record.get("requestId"):
                    log_record["requestId"] = request_id
        elif not self._init_done:
            if self._init is None:
                self._init = _Pending(_new_init_record("init", self._identity))
            pending = self._init
        else:
            pending = self._loose_record()
        self._count(pending, size_bytes)
        pending.record["logs"].extend(log_records)
        pending.record["metrics"].extend(metric_records)

    def _attach_verbatim(self, event: Record, size_bytes: int, count: bool = True) -> None:
        record = event.get("record")
        request_id = record.get("requestId") if isinstance(record, dict) else None
        if isinstance(request_id, str) and request_id:
            pending = self._invocation(request_id)
        elif not self._init_done and self._init is not None:
            pending = self._init
        else:
            pending = self._loose_record()
        if count:
            self._count(pending, size_bytes)
        pending.record["events"].append(event)

    def _attach_loose(self, event: Record, size_bytes: int) -> None:
        pending = self._loose_record()
        self._count(pending, size_bytes)
        pending.record["events"].append(event)

    # --- helpers -----------------------------------------------------------------------------

    def _invocation(self, request_id: str) -> _Pending:
        pending = self._pending.get(request_id) or self._closed_invocations.get(request_id)
        if pending is None:
            # NOTE: events that arrive after their invocation's record was taken start a second,
            # incomplete record for the same requestId.
            record: Record = {
                "kind": "invocation",
                "requestId": request_id,
                **self._identity,
                "startTime": None,
                "endTime": None,
                "status": None,
                "errorType": None,
                "coldStart": self._invocations_seen == 0,
                "traceId": None,
                "spanId": None,
                "logs": [],
                "metrics": [],
                "events": [],
                "complete": False,
            }
            self._invocations_seen += 1
            pending = _Pending(record)
            self._pending[request_id] = pending
        return pending

    def _loose_record(self) -> _Pending:
        if self._loose is None:
            self._loose = _Pending(
                {"kind": "events", **self._identity, "logs": [], "metrics": [], "events": [], "complete": False}
            )
        return self._loose

    def _count(self, pending: _Pending, size_bytes: int) -> None:
        self._event_counted = True
        pending.event_count += 1
        pending.size_bytes += size_bytes
        if pending.record.get("kind") == "invocation" and self._pending.get(pending.record.get("requestId")) is pending:
            self._pending_bytes += size_bytes

    def _close(self, pending: _Pending) -> None:
        if pending.closed:
            return
        pending.closed = True
        self._ready.append(pending)
        if pending.record.get("kind") == "invocation":
            self._closed_invocations[pending.record["requestId"]] = pending

    def _take_closed(self) -> list[ReadyItem]:
        ready = [ReadyItem(pending.record, pending.event_count, pending.size_bytes) for pending in self._ready]
        self._ready = []
        self._closed_invocations.clear()
        return ready

    def _evict_if_over_bound(self) -> None:
        """Ship the oldest open invocations early, as incomplete records, when they hold too much."""
        while self._pending_bytes > self._max_pending_bytes and self._pending:
            request_id, pending = self._pending.popitem(last=False)
            self._pending_bytes -= pending.size_bytes
            logger.warning(
                "invocation %s has %d bytes of telemetry buffered; shipping it before its report arrives",
                request_id,
                pending.size_bytes,
            )
            self._close(pending)
        if len(self._pending) > 10_000:
            request_id, pending = self._pending.popitem(last=False)
            self._pending_bytes -= pending.size_bytes
            self._close(pending)

    @staticmethod
    def _apply_tracing(target: Record, tracing: Any) -> None:
        if not isinstance(tracing, dict):
            return
        value = tracing.get("value")
        if isinstance(value, str) and value:
            target["tracing"] = value
            for part in value.split(";"):
                key, _, item = part.partition("=")
                if key.strip() == "Root" and item:
                    target["traceId"] = item.strip()
        if isinstance(tracing.get("spanId"), str):
            target["spanId"] = tracing["spanId"]

    @staticmethod
    def _update_overhead(target: Record) -> None:
        total = target.get("durationMs")
        runtime = target.get("runtimeDurationMs")
        if isinstance(total, (int, float)) and isinstance(runtime, (int, float)):
            target["extensionOverheadMs"] = round(total - runtime, 3)


def _new_init_record(kind: str, identity: dict[str, Any]) -> Record:
    return {
        "kind": kind,
        **identity,
        "initializationType": None,
        "phase": None,
        "status": None,
        "errorType": None,
        "startTime": None,
        "endTime": None,
        "durationMs": None,
        "runtimeDurationMs": None,
        "extensions": [],
        "logs": [],
        "metrics": [],
        "events": [],
        "complete": False,
    }


def _metric_request_id(metric: Record) -> Optional[str]:
    """Return the request id an EMF metric record carries, at its root or among its properties."""
    properties = metric.get("properties") if isinstance(metric.get("properties"), dict) else {}
    for value in (metric.get("requestId"), *(properties.get(key) for key in _METRIC_REQUEST_ID_KEYS)):
        if isinstance(value, str) and value:
            return value
    return None


def _is_iso_time(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 24 and value.endswith("Z") and value[10] == "T"


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def now_iso() -> str:
    """Return the current UTC time in the Telemetry API's format, ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % int((now % 1) * 1000)

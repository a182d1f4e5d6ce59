"""Turns the listener's raw request bodies into events for the aggregator.

Threads: the listener's connection threads call ``submit`` (it only appends to a deque);
the ``telemetry-processor`` thread parses and aggregates. ``drain`` processes whatever is
queued on the caller's thread, which SHUTDOWN uses before the final flush.

A body larger than the subscription's ``maxBytes`` may arrive cut across two POSTs. A body
that is not valid JSON on its own is kept (up to ``MAX_FRAGMENT_BYTES``) and parsed again
joined with the next one; only when that fails too is it counted as malformed.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

from telemetry_ext.deferred_logging import get_logger
from telemetry_ext.accounting import Accounting

if TYPE_CHECKING:
    from telemetry_ext.invocations import Aggregator

logger = get_logger(__name__)

MAX_FRAGMENT_BYTES = 4 * 1024 * 1024
# Maximum time a listener thread waits for room in a full ingest queue before dropping a body.
MAX_BACKPRESSURE_S = 1.0


class Processor:
    def __init__(self, aggregator: Optional[Aggregator], accounting: Accounting, max_queued_bytes: int) -> None:
        """``aggregator`` may come later through ``start``; bodies queue up until then."""
        self._aggregator = aggregator
        self._accounting = accounting
        self._max_queued_bytes = max_queued_bytes
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued_bytes = 0
        self.bodies_received = 0
        self.last_body_at = 0.0
        self._queue_lock = threading.Lock()
        self._room = threading.Condition(self._queue_lock)
        self._work = threading.Event()
        self._process_lock = threading.Lock()
        self._fragment: Optional[bytes] = None
        self._malformed_logged = 0
        self._overflowing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="telemetry-processor", daemon=True)

    def start(self, aggregator: Optional[Aggregator] = None) -> None:
        if aggregator is not None:
            self._aggregator = aggregator
        self._thread.start()
        self._work.set()

    def submit(self, body: bytes) -> None:
        """Queue one request body; called on a listener thread.

        Returns at once unless the queue is full. Then it waits up to ``MAX_BACKPRESSURE_S``
        for room, which delays the listener's response and so slows Lambda's delivery, and only
        after that drops the body, counted.
        """
        with self._room:
            if self._queued_bytes + len(body) > self._max_queued_bytes and self._queued_bytes:
                self._room.wait_for(
                    lambda: self._queued_bytes + len(body) <= self._max_queued_bytes or not self._queued_bytes,
                    timeout=MAX_BACKPRESSURE_S,
                )
            if self._queued_bytes + len(body) > self._max_queued_bytes and self._queued_bytes:
                dropped_events = _count_events(body)
                self._accounting.drop(dropped_events, "ingest_queue_full", buffered=False)
                if not self._overflowing:
                    self._overflowing = True
                    logger.warning(
                        "ingest queue is full (%d bytes); dropping new telemetry until it drains",
                        self._queued_bytes,
                    )
                return
            self._overflowing = False
            self._queue.append(body)
            self._queued_bytes += len(body)
            self.bodies_received += 1
            self.last_body_at = time.monotonic()
        self._work.set()

    def reject(self, reason: str, size_bytes: int) -> None:
        """Count a request the listener could not read; its events are unknown, so it counts as one."""
        self._accounting.drop(1, "invalid_request", buffered=False)
        logger.error("rejected a telemetry request (%s, %d bytes)", reason, size_bytes)

    def drain(self) -> None:
        """Process every queued body now, on the calling thread."""
        self._process_queue()

    def wait_for_quiet(self, quiet_s: float, deadline: float) -> None:
        """Block until no body arrived for ``quiet_s`` seconds, or until ``deadline``."""
        while True:
            now = time.monotonic()
            resume_at = min(self.last_body_at + quiet_s, deadline)
            if resume_at <= now:
                return
            time.sleep(resume_at - now)

    def stop(self) -> None:
        """Stop the processor thread and count a cut body whose second half never came."""
        self._stopped = True
        self._work.set()
        with self._process_lock:
            if self._fragment is not None:
                self._accounting.drop(1, "malformed_body", buffered=False)
                self._log_malformed("a cut telemetry body of %d bytes never got its second half", len(self._fragment))
                self._fragment = None

    def _run(self) -> None:
        while not self._stopped:
            self._work.wait()
            self._work.clear()
            try:
                self._process_queue()
            except Exception:  # noqa: BLE001 - the processor thread must outlive any bad input
                logger.exception("telemetry processing failed; continuing with the next body")

    def _process_queue(self) -> None:
        if self._aggregator is None:
            return
        with self._process_lock:
            while True:
                with self._queue_lock:
                    if not self._queue:
                        return
                    body = self._queue.popleft()
                    self._queued_bytes -= len(body)
                    self._room.notify_all()
                self._process_body(body)

    def _process_body(self, body: bytes) -> None:
        events = self._parse(body)
        if events is None:
            return
        if not events:
            return
        self._accounting.receive(len(events))
        size_each = max(1, len(body) // len(events))
        malformed = self._aggregator.add_events(events, size_each)
        if malformed:
            self._accounting.drop(malformed, "malformed_event")
            self._log_malformed("%d batch entries were not event objects", malformed)

    def _parse(self, body: bytes) -> Optional[list[Any]]:
        if self._fragment is not None:
            joined = self._fragment + body
            self._fragment = None
            parsed = _loads(joined)
            if isinstance(parsed, list):
                return parsed
            # The kept fragment did not belong to this body: count it, then try the body alone.
            self._accounting.drop(1, "malformed_body", buffered=False)
            self._log_malformed("a cut telemetry body of %d bytes could not be joined", len(joined) - len(body))

        parsed = _loads(body)
        if isinstance(parsed, list):
            return parsed
        if isinstance(parsed, dict):
            return [parsed]
        if parsed is _INVALID and body.lstrip()[:1] == b"[" and len(body) <= MAX_FRAGMENT_BYTES:
            self._fragment = body
            return None
        self._accounting.drop(1, "malformed_body", buffered=False)
        self._log_malformed("a telemetry body of %d bytes is not a JSON array of events", len(body))
        return None

    def _log_malformed(self, message: str, *args: Any) -> None:
        # Rate-limited: a broken producer could otherwise flood the function's log group.
        self._malformed_logged += 1
        if self._malformed_logged <= 10 or self._malformed_logged % 1000 == 0:
            logger.error(message + " (occurrence %d)", *args, self._malformed_logged)


_INVALID = object()


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        try:
            return json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            return _INVALID
    except ValueError:
        return _INVALID


def _count_events(body: bytes) -> int:
    parsed = _loads(body)
    return len(parsed) if isinstance(parsed, list) else 1

"""Buffers ready records and exports them to every destination within a deadline.

Threads: ``flush`` runs on the main thread (at the end of an invoke and at SHUTDOWN) or on
the ``telemetry-shipper`` thread (periodic flushes); ``export_lock`` keeps two flushes from
overlapping. The shipper waits on an Event, so SHUTDOWN wakes it and cuts any backoff short.

The buffer is bounded in bytes. On overflow the oldest records go first, counted as dropped
with the reason ``buffer_full``, and one warning is logged per overflow episode. A batch that
a destination could not take is kept and sent again at the next flush; what is still unsent
when SHUTDOWN's deadline comes is counted as dropped.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Optional, Sequence

from telemetry_ext.accounting import Accounting
from telemetry_ext.exporters.base import Exporter, ExportResult, Outcome
from telemetry_ext.invocations import ReadyItem, now_iso
from telemetry_ext.retry import RetryPolicy, send_with_retry

logger = logging.getLogger(__name__)

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 1024 * 1024


class _Entry:
    """A ready record with the destinations that still have to take it."""

    __slots__ = ("item", "waiting_for", "rejected_by", "taken_by")

    def __init__(self, item: ReadyItem, destinations: Sequence[str]) -> None:
        self.item = item
        self.waiting_for = set(destinations)
        # Destinations that refused the record for good. Kept here, not in the record, so
        # that the other destinations never receive this bookkeeping.
        self.rejected_by: list[str] = []
        self.taken_by = 0


class Delivery:
    def __init__(
        self,
        exporters: Sequence[Exporter],
        accounting: Accounting,
        take_ready: Callable[[], list[ReadyItem]],
        max_buffer_bytes: int,
        export_timeout_s: float,
        policies: Optional[dict[str, RetryPolicy]] = None,
        extra_stats: Optional[Callable[[], dict[str, Any]]] = None,
    ) -> None:
        self._exporters = list(exporters)
        self._accounting = accounting
        self._take_ready = take_ready
        self._max_buffer_bytes = max_buffer_bytes
        self._export_timeout_s = export_timeout_s
        self._policies = policies or {}
        self._extra_stats = extra_stats
        self._entries: collections.deque[_Entry] = collections.deque()
        self._buffered_bytes = 0
        self._buffer_lock = threading.Lock()
        self._overflowing = False
        self.export_lock = threading.Lock()
        self.stop_event = threading.Event()
        self._last_shipped_drops: dict[str, Any] = {}
        self.flush_count = 0

    @property
    def buffered_bytes(self) -> int:
        return self._buffered_bytes

    @property
    def buffered_records(self) -> int:
        return len(self._entries)

    def collect(self) -> None:
        """Move ready records into the buffer, dropping the oldest beyond the byte bound."""
        self.collect_everything(self._take_ready())

    def collect_everything(self, items: list[ReadyItem]) -> None:
        """Add ``items`` to the buffer, dropping the oldest records beyond the byte bound."""
        if not items:
            return
        names = [exporter.name for exporter in self._exporters]
        with self._buffer_lock:
            if self._buffered_bytes <= self._max_buffer_bytes // 2:
                # The buffer drained since the last overflow, so another overflow is a new episode.
                self._overflowing = False
            for item in items:
                if not names:
                    # No destination: the record is dropped on arrival, and counted.
                    self._accounting.drop(item.event_count, "no_destination")
                    continue
                self._entries.append(_Entry(item, names))
                self._buffered_bytes += item.size_bytes
            dropped_records = 0
            dropped_events = 0
            while self._buffered_bytes > self._max_buffer_bytes and len(self._entries) > 1:
                entry = self._entries.popleft()
                self._buffered_bytes -= entry.item.size_bytes
                self._accounting.drop(entry.item.event_count, "buffer_full")
                dropped_records += 1
                dropped_events += entry.item.event_count
            if dropped_records and not self._overflowing:
                logger.warning(
                    "buffer over %d bytes: dropped the %d oldest records (%d events); "
                    "raise TELEMETRY_EXT_MAX_BUFFER_BYTES or check the destination",
                    self._max_buffer_bytes,
                    dropped_records,
                    dropped_events,
                )
            self._overflowing = bool(dropped_records) or (self._overflowing and self._buffered_bytes > self._max_buffer_bytes // 2)

    def flush(self, deadline: float, stop: Optional[threading.Event] = None) -> bool:
        """Export everything buffered until done or ``deadline`` (``time.monotonic()``).

        Returns True when the buffer was emptied. Waits for a flush already running on another
        thread only until the deadline.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self.export_lock.acquire(timeout=remaining):
            return False
        try:
            self.flush_count += 1
            self.collect()
            failed: set[str] = set()
            while self._entries:
                if time.monotonic() >= deadline:
                    return False
                if not self._export_one_batch(deadline, stop or self.stop_event, failed):
                    return False
            self._ship_drop_counts(deadline, stop or self.stop_event)
            return True
        finally:
            self.export_lock.release()

    def drop_unsent(self, reason: str) -> int:
        """Give up on every buffered record; return the events that no destination took.

        A record that some destination already took counts as delivered, and the destinations
        still waiting for it count it as undelivered with ``reason``.
        """
        with self._buffer_lock:
            entries = list(self._entries)
            self._entries.clear()
            self._buffered_bytes = 0
        lost = 0
        for entry in entries:
            failures = [(name, "rejected") for name in entry.rejected_by]
            failures += [(name, reason) for name in sorted(entry.waiting_for)]
            if not entry.taken_by:
                lost += entry.item.event_count
                self._accounting.drop(entry.item.event_count, reason)
            else:
                self._account_settled(entry, failures)
        return lost

    def _export_one_batch(self, deadline: float, stop: threading.Event, failed: set[str]) -> bool:
        """Send each destination its next batch; return whether any destination took one.

        A destination that failed is skipped for the rest of this flush, so it neither delays
        the others nor spends the deadline on retries it already gave up.
        """
        progressed = False
        for exporter in self._exporters:
            if exporter.name in failed:
                continue
            entries = self._next_batch(exporter.name)
            if not entries:
                continue
            records = [entry.item.record for entry in entries]
            result, attempts = self._send(exporter, records, deadline, stop)
            if result.outcome is Outcome.RETRYABLE:
                logger.warning(
                    "%s: export of %d records failed after %d attempt(s) (%s); %s",
                    exporter.name,
                    len(records),
                    attempts,
                    result.detail,
                    "giving up on them at SHUTDOWN" if self.stop_event.is_set() else "keeping them for a later flush",
                )
                failed.add(exporter.name)
                continue
            if result.outcome is Outcome.REJECTED:
                logger.error("%s rejected %d records: %s", exporter.name, len(records), result.detail)
            elif result.rejected_count:
                logger.error("%s rejected %d of %d records: %s", exporter.name, result.rejected_count, len(records), result.detail)
            for entry in entries:
                entry.waiting_for.discard(exporter.name)
            self._settle(entries, exporter.name, result)
            progressed = True
        return progressed

    def _send(self, exporter: Exporter, records: list[dict], deadline: float, stop: threading.Event) -> tuple[ExportResult, int]:
        policy = self._policies.get(exporter.name) or RetryPolicy(attempt_timeout_s=self._export_timeout_s)

        def attempt(timeout_s: float) -> ExportResult:
            try:
                return exporter.export(records, min(timeout_s, self._export_timeout_s))
            except Exception as error:  # noqa: BLE001 - an exporter bug must not end the extension
                logger.exception("%s: export raised an unexpected error", exporter.name)
                return ExportResult(Outcome.RETRYABLE, f"unexpected error: {error!r}")

        return send_with_retry(attempt, policy, deadline, stop)

    def _settle(self, entries: list[_Entry], destination: str, result: ExportResult) -> None:
        """Account for entries a destination is done with, and drop fully settled ones."""
        rejected = len(entries) if result.outcome is Outcome.REJECTED else min(result.rejected_count, len(entries))
        with self._buffer_lock:
            for index, entry in enumerate(entries):
                if index < rejected:
                    # A partial success does not name the refused records; the first ones are
                    # counted, so the totals stay right even if the attribution is not.
                    entry.rejected_by.append(destination)
                else:
                    entry.taken_by += 1
                if entry.waiting_for:
                    continue
                try:
                    self._entries.remove(entry)
                except ValueError:
                    continue
                self._buffered_bytes -= entry.item.size_bytes
                self._account_settled(entry, [(name, "rejected") for name in entry.rejected_by])

    def _account_settled(self, entry: _Entry, failures: list[tuple[str, str]]) -> None:
        """Count a record no destination still waits for: delivered if any destination took it."""
        count = entry.item.event_count
        if entry.taken_by:
            self._accounting.deliver(count)
            for destination, reason in failures:
                self._accounting.note_undelivered(count, destination, reason)
        elif failures:
            destination, reason = failures[0]
            self._accounting.drop(count, f"rejected_by_{destination}" if reason == "rejected" else reason)

    def _next_batch(self, destination: str) -> list[_Entry]:
        batch: list[_Entry] = []
        size = 0
        with self._buffer_lock:
            for entry in self._entries:
                if destination not in entry.waiting_for:
                    continue
                if batch and (len(batch) >= MAX_BATCH_RECORDS or size + entry.item.size_bytes > MAX_BATCH_BYTES):
                    break
                batch.append(entry)
                size += entry.item.size_bytes
        return batch

    def _ship_drop_counts(self, deadline: float, stop: threading.Event) -> None:
        """Send the drop counters as a ``drops`` record whenever they changed since the last one."""
        snapshot = self._accounting.snapshot()
        counters: dict[str, Any] = {"dropped": snapshot["dropped"], "undelivered": snapshot["undelivered"]}
        if self._extra_stats is not None:
            counters.update(self._extra_stats())
        if not any(counters["dropped"].values()) and not any(counters["undelivered"].values()) and not any(
            value for key, value in counters.items() if key not in ("dropped", "undelivered") and isinstance(value, int)
        ):
            return
        if counters == self._last_shipped_drops:
            return
        last_dropped = self._last_shipped_drops.get("dropped", {})
        delta = {
            reason: count - last_dropped.get(reason, 0)
            for reason, count in counters["dropped"].items()
            if count != last_dropped.get(reason, 0)
        }
        record = {"kind": "drops", "time": now_iso(), **snapshot, **counters, "droppedSinceLast": delta}
        shipped_everywhere = True
        for exporter in self._exporters:
            result, _ = self._send(exporter, [record], deadline, stop)
            shipped_everywhere = shipped_everywhere and result.outcome is Outcome.SENT
        if shipped_everywhere:
            self._last_shipped_drops = counters

"""Tests of Delivery with fake exporters: buffering, retries, rejections, deadlines and drop records."""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any, Optional

import pytest

from telemetry_ext.accounting import Accounting
from telemetry_ext.delivery import MAX_BATCH_RECORDS, Delivery
from telemetry_ext.exporters.base import ExportResult, Outcome
from telemetry_ext.invocations import ReadyItem
from telemetry_ext.retry import RetryPolicy

SENT = ExportResult(Outcome.SENT)
RETRYABLE = ExportResult(Outcome.RETRYABLE, "HTTP 503")
REJECTED = ExportResult(Outcome.REJECTED, "HTTP 400")
ONE_ATTEMPT = RetryPolicy(max_attempts=1)
WAIT_S = 5.0


class FakeExporter:
    """Records every batch it is given and returns the queued results, then ``default``."""

    def __init__(self, name: str, results: Optional[list[ExportResult]] = None, default: ExportResult = SENT) -> None:
        self.name = name
        self.results = list(results or [])
        self.default = default
        self.batches: list[list[dict[str, Any]]] = []

    def export(self, records: list[dict[str, Any]], timeout_s: float) -> ExportResult:
        self.batches.append(copy.deepcopy(records))
        return self.results.pop(0) if self.results else self.default

    def close(self) -> None:
        pass

    def data_records(self) -> list[dict[str, Any]]:
        return [record for batch in self.batches for record in batch if record.get("kind") != "drops"]

    def drop_records(self) -> list[dict[str, Any]]:
        return [record for batch in self.batches for record in batch if record.get("kind") == "drops"]


class BlockingExporter:
    """Blocks in export until ``release`` is set or ``timeout_s`` passes, then returns RETRYABLE."""

    name = "blocking"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.timeouts: list[float] = []

    def export(self, records: list[dict[str, Any]], timeout_s: float) -> ExportResult:
        self.timeouts.append(timeout_s)
        self.entered.set()
        self.release.wait(timeout_s)
        return ExportResult(Outcome.RETRYABLE, f"timed out after {timeout_s:.3f} s")

    def close(self) -> None:
        pass


class ReadyQueue:
    """Stands in for Aggregator.take_ready and counts each item as received."""

    def __init__(self, accounting: Accounting) -> None:
        self.accounting = accounting
        self.items: list[ReadyItem] = []
        self.next_id = 0

    def make(self, count: int = 1, event_count: int = 3, size_bytes: int = 100) -> list[ReadyItem]:
        """Return new items, counted as received, for a test to pass to collect_everything."""
        made = []
        for _ in range(count):
            self.next_id += 1
            record = {"kind": "invocation", "requestId": f"req-{self.next_id}", "complete": True}
            made.append(ReadyItem(record, event_count, size_bytes))
            self.accounting.receive(event_count)
        return made

    def add(self, count: int = 1, event_count: int = 3, size_bytes: int = 100) -> None:
        """Queue new items, counted as received, for the next take_ready."""
        self.items.extend(self.make(count, event_count, size_bytes))

    def take_ready(self) -> list[ReadyItem]:
        items, self.items = self.items, []
        return items


def make_delivery(
    exporters: list[Any],
    max_buffer_bytes: int = 1024 * 1024,
    export_timeout_s: float = 1.0,
    extra_stats: Any = None,
    policy: Optional[RetryPolicy] = ONE_ATTEMPT,
) -> tuple[Delivery, ReadyQueue, Accounting]:
    """Build a Delivery whose exporters all use ``policy``; None keeps Delivery's default policy."""
    accounting = Accounting()
    ready = ReadyQueue(accounting)
    policies = {exporter.name: policy for exporter in exporters} if policy is not None else None
    delivery = Delivery(
        exporters,
        accounting,
        ready.take_ready,
        max_buffer_bytes=max_buffer_bytes,
        export_timeout_s=export_timeout_s,
        policies=policies,
        extra_stats=extra_stats,
    )
    return delivery, ready, accounting


def deadline_in(seconds: float = WAIT_S) -> float:
    return time.monotonic() + seconds


def assert_balanced(accounting: Accounting) -> None:
    counts = accounting.snapshot()
    assert counts["received"] == counts["delivered"] + sum(counts["dropped"].values()) + counts["buffered"]


def request_ids(records: list[dict[str, Any]]) -> list[str]:
    return [record["requestId"] for record in records]


# --- delivery ------------------------------------------------------------------------------


def test_flush_delivers_and_accounts() -> None:
    exporter = FakeExporter("http")
    delivery, ready, accounting = make_delivery([exporter])
    ready.add(3, event_count=4)

    flushed = delivery.flush(deadline_in())

    counts = accounting.snapshot()
    assert flushed is True
    assert request_ids(exporter.data_records()) == ["req-1", "req-2", "req-3"]
    assert counts["delivered"] == 12
    assert counts["buffered"] == 0
    assert delivery.buffered_records == 0
    assert_balanced(accounting)


def test_flush_with_nothing_sends_nothing() -> None:
    exporter = FakeExporter("http")
    delivery, ready, accounting = make_delivery([exporter])

    flushed = delivery.flush(deadline_in())

    assert flushed is True
    assert exporter.batches == []


def test_flush_past_deadline_returns_false() -> None:
    exporter = FakeExporter("http")
    delivery, ready, accounting = make_delivery([exporter])
    ready.add(1)

    flushed = delivery.flush(time.monotonic() - 1.0)

    assert flushed is False
    assert exporter.batches == []


def test_retryable_batch_kept_and_retried() -> None:
    exporter = FakeExporter("http", results=[RETRYABLE])
    delivery, ready, accounting = make_delivery([exporter])
    ready.add(2)

    first = delivery.flush(deadline_in())
    kept = delivery.buffered_records
    balanced_between = accounting.snapshot()
    second = delivery.flush(deadline_in())

    assert first is False
    assert kept == 2
    assert balanced_between["buffered"] == 6
    assert second is True
    assert len(exporter.batches) == 2
    assert request_ids(exporter.batches[1]) == ["req-1", "req-2"]
    assert accounting.snapshot()["delivered"] == 6
    assert_balanced(accounting)


def test_rejected_counts_by_destination() -> None:
    exporter = FakeExporter("http", results=[REJECTED])
    delivery, ready, accounting = make_delivery([exporter])
    ready.add(2, event_count=5)

    flushed = delivery.flush(deadline_in())

    counts = accounting.snapshot()
    assert flushed is True
    assert counts["dropped"]["rejected_by_http"] == 10
    assert counts["delivered"] == 0
    assert delivery.buffered_records == 0
    assert_balanced(accounting)


def test_rejected_batch_not_sent_again() -> None:
    exporter = FakeExporter("http", results=[REJECTED])
    delivery, ready, accounting = make_delivery([exporter])
    ready.add(1)

    delivery.flush(deadline_in())
    delivery.flush(deadline_in())

    assert len(exporter.data_records()) == 1


def test_partial_success_counts_rejected() -> None:
    exporter = FakeExporter("otlp", results=[ExportResult(Outcome.SENT, "partial", rejected_count=1)])
    delivery, ready, accounting = make_delivery([exporter])
    ready.add(3, event_count=2)

    flushed = delivery.flush(deadline_in())

    counts = accounting.snapshot()
    assert flushed is True
    assert counts["dropped"]["rejected_by_otlp"] == 2
    assert counts["delivered"] == 4
    assert_balanced(accounting)


def test_two_destinations_one_fails() -> None:
    healthy = FakeExporter("file")
    failing = FakeExporter("http", results=[RETRYABLE])
    delivery, ready, accounting = make_delivery([healthy, failing])
    ready.add(2)

    first = delivery.flush(deadline_in())
    buffered_after_first = accounting.snapshot()["buffered"]
    second = delivery.flush(deadline_in())

    assert first is False
    assert buffered_after_first == 6
    assert second is True
    assert request_ids(healthy.data_records()) == ["req-1", "req-2"]
    assert request_ids(failing.data_records()[-2:]) == ["req-1", "req-2"]
    assert accounting.snapshot()["delivered"] == 6
    assert_balanced(accounting)


def test_rejection_mark_not_shipped_elsewhere() -> None:
    rejecting = FakeExporter("otlp", results=[REJECTED])
    other = FakeExporter("http")
    delivery, ready, accounting = make_delivery([rejecting, other])
    ready.add(1)

    delivery.flush(deadline_in())

    assert other.data_records() == [{"kind": "invocation", "requestId": "req-1", "complete": True}]
    assert accounting.snapshot()["dropped"] == {}
    assert accounting.snapshot()["delivered"] == 3
    assert accounting.snapshot()["undelivered"] == {"otlp:rejected": 3}
    assert_balanced(accounting)


def test_record_rejected_everywhere_dropped() -> None:
    first = FakeExporter("otlp", results=[REJECTED])
    second = FakeExporter("http", results=[REJECTED])
    delivery, ready, accounting = make_delivery([first, second])
    ready.add(1)

    delivery.flush(deadline_in())

    assert accounting.snapshot()["dropped"] == {"rejected_by_otlp": 3}
    assert accounting.snapshot()["delivered"] == 0
    assert_balanced(accounting)


def test_drop_unsent_counts_partly_delivered() -> None:
    healthy = FakeExporter("http")
    failing = FakeExporter("file", default=RETRYABLE)
    delivery, ready, accounting = make_delivery([healthy, failing])
    ready.add(2)

    delivery.flush(deadline_in())
    lost = delivery.drop_unsent("shutdown_deadline")

    assert lost == 0
    assert accounting.snapshot()["delivered"] == 6
    assert accounting.snapshot()["dropped"] == {}
    assert accounting.snapshot()["undelivered"] == {"file:shutdown_deadline": 6}
    assert_balanced(accounting)


def test_no_destination_drops_records() -> None:
    delivery, ready, accounting = make_delivery([])
    ready.add(2)

    delivery.flush(deadline_in())

    assert accounting.snapshot()["dropped"] == {"no_destination": 6}
    assert_balanced(accounting)


def test_exporter_exception_is_retryable() -> None:
    class BrokenExporter(FakeExporter):
        def export(self, records: list[dict[str, Any]], timeout_s: float) -> ExportResult:
            raise RuntimeError("bug in exporter")

    delivery, ready, accounting = make_delivery([BrokenExporter("broken")])
    ready.add(1)

    flushed = delivery.flush(deadline_in())

    assert flushed is False
    assert delivery.buffered_records == 1
    assert_balanced(accounting)


# --- buffer bound --------------------------------------------------------------------------


def overflow_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if "buffer over" in record.getMessage()]


def test_buffer_bound_drops_oldest(caplog: pytest.LogCaptureFixture) -> None:
    delivery, ready, accounting = make_delivery([FakeExporter("http")], max_buffer_bytes=250)

    with caplog.at_level(logging.WARNING, logger="telemetry_ext.delivery"):
        for _ in range(5):
            delivery.collect_everything(ready.make(1, event_count=2, size_bytes=100))
            assert_balanced(accounting)

    assert delivery.buffered_records == 2
    assert delivery.buffered_bytes == 200
    assert accounting.snapshot()["dropped"] == {"buffer_full": 6}
    assert len(overflow_warnings(caplog)) == 1


def test_buffer_keeps_newest_records(caplog: pytest.LogCaptureFixture) -> None:
    exporter = FakeExporter("http")
    delivery, ready, accounting = make_delivery([exporter], max_buffer_bytes=250)

    for _ in range(5):
        delivery.collect_everything(ready.make(1, size_bytes=100))
    delivery.flush(deadline_in())

    assert request_ids(exporter.data_records()) == ["req-4", "req-5"]


def test_buffer_overflow_warns_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    delivery, ready, accounting = make_delivery([FakeExporter("http")], max_buffer_bytes=250)

    with caplog.at_level(logging.WARNING, logger="telemetry_ext.delivery"):
        for _ in range(4):
            delivery.collect_everything(ready.make(1, size_bytes=100))
        first_episode = len(overflow_warnings(caplog))
        delivery.flush(deadline_in())
        delivery.collect_everything(ready.make(4, size_bytes=100))
        second_episode = len(overflow_warnings(caplog))

    assert first_episode == 1
    assert second_episode == 2
    assert_balanced(accounting)


def test_single_oversized_record_kept() -> None:
    exporter = FakeExporter("http")
    delivery, ready, accounting = make_delivery([exporter], max_buffer_bytes=250)

    delivery.collect_everything(ready.make(1, size_bytes=1_000))
    delivery.flush(deadline_in())

    assert request_ids(exporter.data_records()) == ["req-1"]


# --- deadlines and shutdown ----------------------------------------------------------------


def test_flush_stops_at_deadline() -> None:
    exporter = BlockingExporter()
    delivery, ready, accounting = make_delivery([exporter], export_timeout_s=30.0)
    ready.add(2)

    started = time.monotonic()
    flushed = delivery.flush(started + 0.3)
    elapsed_s = time.monotonic() - started
    exporter.release.set()

    assert flushed is False
    assert elapsed_s < 10.0
    assert max(exporter.timeouts) <= 0.3
    assert delivery.buffered_records == 2
    assert_balanced(accounting)


def test_flush_default_policy_stops_at_deadline() -> None:
    exporter = FakeExporter("http", default=RETRYABLE)
    delivery, ready, accounting = make_delivery([exporter], export_timeout_s=30.0, policy=None)
    ready.add(1)

    started = time.monotonic()
    flushed = delivery.flush(started + 0.4)
    elapsed_s = time.monotonic() - started

    assert flushed is False
    assert len(exporter.batches) >= 2
    assert elapsed_s < 10.0
    assert_balanced(accounting)


def test_flush_waits_for_running_flush_until_deadline() -> None:
    exporter = BlockingExporter()
    delivery, ready, accounting = make_delivery([exporter], export_timeout_s=30.0)
    ready.add(1)
    first_result: list[bool] = []
    first = threading.Thread(target=lambda: first_result.append(delivery.flush(deadline_in(WAIT_S))))
    first.start()
    assert exporter.entered.wait(WAIT_S)

    second = delivery.flush(time.monotonic() + 0.1)
    exporter.release.set()
    first.join(WAIT_S)

    assert second is False
    assert first_result == [False]


def test_drop_unsent_counts_shutdown_deadline() -> None:
    delivery, ready, accounting = make_delivery([FakeExporter("http", default=RETRYABLE)])
    ready.add(3, event_count=2)
    delivery.flush(deadline_in())

    lost = delivery.drop_unsent("shutdown_deadline")

    assert lost == 6
    assert accounting.snapshot()["dropped"] == {"shutdown_deadline": 6}
    assert accounting.snapshot()["buffered"] == 0
    assert delivery.buffered_records == 0
    assert delivery.buffered_bytes == 0
    assert_balanced(accounting)


# --- drop records --------------------------------------------------------------------------


def test_drops_record_shipped_with_deltas() -> None:
    exporter = FakeExporter("http")
    delivery, ready, accounting = make_delivery([exporter])
    ready.add(1)
    accounting.drop(5, "ingest_queue_full", buffered=False)

    delivery.flush(deadline_in())
    first = exporter.drop_records()
    accounting.drop(2, "ingest_queue_full", buffered=False)
    accounting.drop(1, "malformed_body", buffered=False)
    delivery.flush(deadline_in())
    second = exporter.drop_records()[len(first):]

    assert len(first) == 1
    assert first[0]["droppedSinceLast"] == {"ingest_queue_full": 5}
    assert first[0]["dropped"] == {"ingest_queue_full": 5}
    assert len(second) == 1
    assert second[0]["droppedSinceLast"] == {"ingest_queue_full": 2, "malformed_body": 1}
    assert second[0]["dropped"] == {"ingest_queue_full": 7, "malformed_body": 1}
    assert_balanced(accounting)


def test_drops_record_not_repeated_unchanged() -> None:
    exporter = FakeExporter("http")
    delivery, ready, accounting = make_delivery([exporter])
    accounting.drop(1, "malformed_body", buffered=False)

    delivery.flush(deadline_in())
    delivery.flush(deadline_in())

    assert len(exporter.drop_records()) == 1


def test_no_drops_record_without_drops() -> None:
    exporter = FakeExporter("http")
    delivery, ready, accounting = make_delivery([exporter], extra_stats=lambda: {"platformDroppedRecords": 0})
    ready.add(1)

    delivery.flush(deadline_in())

    assert exporter.drop_records() == []


def test_drops_record_carries_extra_stats() -> None:
    exporter = FakeExporter("http")
    stats = {"platformDroppedRecords": 4, "redactions": 0}
    delivery, ready, accounting = make_delivery([exporter], extra_stats=lambda: dict(stats))

    delivery.flush(deadline_in())

    drops = exporter.drop_records()
    assert len(drops) == 1
    assert drops[0]["platformDroppedRecords"] == 4
    assert drops[0]["droppedSinceLast"] == {}


def test_drops_record_resent_after_failure() -> None:
    exporter = FakeExporter("http", results=[RETRYABLE])
    delivery, ready, accounting = make_delivery([exporter])
    accounting.drop(3, "malformed_body", buffered=False)

    delivery.flush(deadline_in())
    delivery.flush(deadline_in())

    drops = exporter.drop_records()
    assert len(drops) == 2
    assert drops[1]["droppedSinceLast"] == {"malformed_body": 3}


def test_accounting_balanced_throughout() -> None:
    flaky = FakeExporter("http", results=[RETRYABLE, REJECTED, ExportResult(Outcome.SENT, rejected_count=1)])
    steady = FakeExporter("file")
    delivery, ready, accounting = make_delivery([flaky, steady], max_buffer_bytes=450)

    for round_number in range(5):
        delivery.collect_everything(ready.make(2, event_count=round_number + 1, size_bytes=100))
        assert_balanced(accounting)
        delivery.flush(deadline_in())
        assert_balanced(accounting)
    ready.add(3)
    delivery.collect()
    delivery.drop_unsent("shutdown_deadline")

    assert_balanced(accounting)
    assert accounting.snapshot()["buffered"] == 0



def test_failing_destination_does_not_hold_back_others() -> None:
    healthy = FakeExporter("healthy")
    broken = FakeExporter("broken", default=RETRYABLE)
    delivery, ready, accounting = make_delivery([broken, healthy])
    ready.add(count=MAX_BATCH_RECORDS + 5)

    emptied = delivery.flush(deadline_in())

    assert emptied is False
    assert len(healthy.data_records()) == MAX_BATCH_RECORDS + 5
    assert len(broken.batches) == 1
    assert_balanced(accounting)

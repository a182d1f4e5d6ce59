"""Tests of the Processor with a real Aggregator and Accounting, driven through submit and drain."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import event_builders as ev
import pytest

from telemetry_ext.accounting import Accounting
from telemetry_ext.invocations import Aggregator
from telemetry_ext import processor as processor_module
from telemetry_ext.processor import Processor

REQUEST_A = "11111111-aaaa-4aaa-8aaa-000000000001"


def body_of(events: list[Any]) -> bytes:
    return json.dumps(events).encode()


def make_processor(max_queued_bytes: int = 1024 * 1024) -> tuple[Processor, Aggregator, Accounting]:
    aggregator = Aggregator()
    accounting = Accounting()
    return Processor(aggregator, accounting, max_queued_bytes), aggregator, accounting


def assert_balanced(accounting: Accounting) -> None:
    counts = accounting.snapshot()
    assert counts["received"] == counts["delivered"] + sum(counts["dropped"].values()) + counts["buffered"]


def test_body_parsed_and_counted() -> None:
    processor, aggregator, accounting = make_processor()
    events = ev.invocation_events(REQUEST_A)

    processor.submit(body_of(events))
    processor.drain()

    counts = accounting.snapshot()
    assert counts["received"] == len(events)
    assert counts["buffered"] == len(events)
    assert counts["dropped"] == {}
    assert len(aggregator.take_ready()) == 1
    assert_balanced(accounting)


def test_single_object_body_is_one_event() -> None:
    processor, aggregator, accounting = make_processor()

    processor.submit(json.dumps(ev.start(REQUEST_A)).encode())
    processor.drain()

    assert accounting.snapshot()["received"] == 1
    assert_balanced(accounting)


def test_invalid_utf8_replaced_not_fatal() -> None:
    processor, aggregator, accounting = make_processor()
    line = ev.text_log("caf\u00e9", REQUEST_A)
    body = body_of([ev.start(REQUEST_A), line, ev.runtime_done(REQUEST_A), ev.report(REQUEST_A)])
    broken = body.replace("caf\\u00e9".encode(), b"caf\xff\xfe")

    processor.submit(broken)
    processor.drain()

    items = aggregator.take_ready()
    assert accounting.snapshot()["received"] == 4
    assert accounting.snapshot()["dropped"] == {}
    assert items[0].record["logs"][0]["message"] == "caf\ufffd\ufffd"
    assert_balanced(accounting)


def test_malformed_body_counted_then_recovers() -> None:
    processor, aggregator, accounting = make_processor()

    processor.submit(b"this is not json")
    processor.drain()
    after_bad = accounting.snapshot()
    processor.submit(body_of(ev.invocation_events(REQUEST_A)))
    processor.drain()
    after_good = accounting.snapshot()

    assert after_bad["dropped"] == {"malformed_body": 1}
    assert after_good["received"] == 1 + 4
    assert after_good["buffered"] == 4
    assert_balanced(accounting)


@pytest.mark.parametrize("body", [b'"a string"', b"42", b"null"])
def test_json_scalar_body_malformed(body: bytes) -> None:
    processor, aggregator, accounting = make_processor()

    processor.submit(body)
    processor.drain()

    assert accounting.snapshot()["dropped"] == {"malformed_body": 1}
    assert_balanced(accounting)


def test_cut_array_joined_back() -> None:
    processor, aggregator, accounting = make_processor()
    body = body_of(ev.invocation_events(REQUEST_A))
    middle = len(body) // 2

    processor.submit(body[:middle])
    processor.drain()
    after_first = accounting.snapshot()
    processor.submit(body[middle:])
    processor.drain()

    assert after_first["received"] == 0
    assert accounting.snapshot()["received"] == 4
    assert accounting.snapshot()["dropped"] == {}
    assert len(aggregator.take_ready()) == 1
    assert_balanced(accounting)


def test_fragment_then_unrelated_body() -> None:
    processor, aggregator, accounting = make_processor()
    cut = body_of(ev.invocation_events(REQUEST_A))[:40]
    valid = body_of(ev.invocation_events("22222222-bbbb-4bbb-8bbb-000000000002"))

    processor.submit(cut)
    processor.submit(valid)
    processor.drain()

    counts = accounting.snapshot()
    assert counts["dropped"] == {"malformed_body": 1}
    assert counts["buffered"] == 4
    assert counts["received"] == 5
    assert len(aggregator.take_ready()) == 1
    assert_balanced(accounting)


def test_non_object_entries_counted_malformed() -> None:
    processor, aggregator, accounting = make_processor()

    processor.submit(body_of([ev.start(REQUEST_A), 1, "two", None]))
    processor.drain()

    counts = accounting.snapshot()
    assert counts["received"] == 4
    assert counts["dropped"] == {"malformed_event": 3}
    assert counts["buffered"] == 1
    assert_balanced(accounting)


def test_queue_overflow_counts_events(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processor_module, "MAX_BACKPRESSURE_S", 0.05)
    first = body_of(ev.invocation_events(REQUEST_A))
    processor, aggregator, accounting = make_processor(max_queued_bytes=len(first) + 10)
    second = body_of(ev.invocation_events("22222222-bbbb-4bbb-8bbb-000000000002") + [ev.plain_log("x")])

    with caplog.at_level(logging.WARNING, logger="telemetry_ext.processor"):
        processor.submit(first)
        processor.submit(second)
        processor.submit(second)
    after_overflow = accounting.snapshot()
    processor.drain()

    assert after_overflow["dropped"] == {"ingest_queue_full": 10}
    assert after_overflow["received"] == 10
    assert len([r for r in caplog.records if "ingest queue is full" in r.getMessage()]) == 1
    assert accounting.snapshot()["buffered"] == 4
    assert_balanced(accounting)


def test_queue_overflow_of_malformed_body_counts_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processor_module, "MAX_BACKPRESSURE_S", 0.05)
    processor, aggregator, accounting = make_processor(max_queued_bytes=10)

    processor.submit(b"[]")
    processor.submit(b"x" * 100)

    assert accounting.snapshot()["dropped"] == {"ingest_queue_full": 1}
    assert_balanced(accounting)


def test_oversized_body_enters_empty_queue() -> None:
    processor, aggregator, accounting = make_processor(max_queued_bytes=10)

    processor.submit(body_of(ev.invocation_events(REQUEST_A)))
    processor.drain()

    assert accounting.snapshot()["dropped"] == {}
    assert accounting.snapshot()["received"] > 0


def test_full_queue_waits_for_room() -> None:
    first = body_of(ev.invocation_events(REQUEST_A))
    processor, aggregator, accounting = make_processor(max_queued_bytes=len(first) + 10)
    processor.submit(first)
    second = body_of(ev.invocation_events("22222222-bbbb-4bbb-8bbb-000000000002"))
    submitted = threading.Event()
    waiter = threading.Thread(target=lambda: (processor.submit(second), submitted.set()))

    waiter.start()
    blocked = not submitted.wait(0.05)
    processor.drain()
    finished = submitted.wait(5.0)
    processor.drain()

    assert blocked
    assert finished
    assert accounting.snapshot()["dropped"] == {}
    assert_balanced(accounting)


def test_bodies_wait_for_late_aggregator() -> None:
    accounting = Accounting()
    processor = Processor(None, accounting, 1024 * 1024)
    aggregator = Aggregator()

    processor.submit(body_of(ev.invocation_events(REQUEST_A)))
    processor.drain()
    before = accounting.snapshot()["received"]
    processor.start(aggregator)
    reported = aggregator.wait_for_runtime_done(REQUEST_A, 5.0)
    processor.stop()

    assert before == 0
    assert reported is True
    assert accounting.snapshot()["received"] == 4


def test_processor_thread_processes_bodies() -> None:
    processor, aggregator, accounting = make_processor()
    processor.start()

    processor.submit(body_of(ev.invocation_events(REQUEST_A)))
    reported = aggregator.wait_for_runtime_done(REQUEST_A, 5.0)
    processor.stop()

    assert reported is True


def test_reject_counts_one_invalid_request() -> None:
    processor, aggregator, accounting = make_processor()

    processor.reject("request body too large", 20_000_000)

    assert accounting.snapshot()["dropped"] == {"invalid_request": 1}
    assert_balanced(accounting)


def test_accounting_balanced_after_each_step() -> None:
    processor, aggregator, accounting = make_processor(max_queued_bytes=4_000)
    full = body_of(ev.invocation_events(REQUEST_A))
    steps: list[bytes] = [
        b"garbage",
        full[:30],
        full[30:],
        body_of([ev.start("22222222-bbbb-4bbb-8bbb-000000000002"), 7]),
        b"[" + b" " * 5_000 + b"]",
        full[:25],
        body_of([ev.plain_log("lonely")]),
    ]

    for body in steps:
        processor.submit(body)
        assert_balanced(accounting)
        processor.drain()
        assert_balanced(accounting)
    aggregator.take_everything("spindown")

    assert_balanced(accounting)

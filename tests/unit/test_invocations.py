"""Tests of the Aggregator: grouping Telemetry API events into invocation and init records."""

from __future__ import annotations

import threading
from typing import Any, Optional

import event_builders as ev
import pytest

from telemetry_ext.invocations import Aggregator, ReadyItem

REQUEST_A = "11111111-aaaa-4aaa-8aaa-000000000001"
REQUEST_B = "22222222-bbbb-4bbb-8bbb-000000000002"
WAIT_S = 5.0


def records_by_kind(items: list[ReadyItem], kind: str) -> list[dict[str, Any]]:
    return [item.record for item in items if item.record["kind"] == kind]


def only_invocation(items: list[ReadyItem], request_id: str) -> dict[str, Any]:
    matching = [item.record for item in items if item.record.get("requestId") == request_id]
    assert len(matching) == 1, matching
    return matching[0]


def add(aggregator: Aggregator, events: list[Any], size_each: int = 100) -> int:
    return aggregator.add_events(events, size_each)


# --- one record per requestId --------------------------------------------------------------


def test_complete_invocation_becomes_one_record() -> None:
    aggregator = Aggregator(function_name="orders", function_version="$LATEST", region="eu-west-1")

    add(aggregator, ev.invocation_events(REQUEST_A))
    items = aggregator.take_ready()

    assert len(items) == 1
    record = items[0].record
    assert record["kind"] == "invocation"
    assert record["requestId"] == REQUEST_A
    assert record["functionName"] == "orders"
    assert record["functionVersion"] == "$LATEST"
    assert record["region"] == "eu-west-1"
    assert record["status"] == "success"
    assert record["complete"] is True
    assert record["startTime"] == "2024-03-05T06:07:08.000Z"
    assert record["endTime"] == "2024-03-05T06:07:08.160Z"
    assert record["durationMs"] == 152.25
    assert record["billedDurationMs"] == 153
    assert record["memorySizeMB"] == 128
    assert record["maxMemoryUsedMB"] == 71
    assert record["runtimeDurationMs"] == 140.0
    assert record["producedBytes"] == 42
    assert [log["message"] for log in record["logs"]] == ["processing"]


def test_events_split_across_batches_join() -> None:
    aggregator = Aggregator()
    events = ev.invocation_events(REQUEST_A)

    for single in events:
        add(aggregator, [single])
    items = aggregator.take_ready()

    assert len(items) == 1
    assert items[0].event_count == len(events)
    assert items[0].record["complete"] is True


def test_report_before_start_gives_one_record() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.report(REQUEST_A)])
    add(aggregator, [ev.runtime_done(REQUEST_A)])
    add(aggregator, [ev.start(REQUEST_A), ev.text_log("late line", REQUEST_A)])
    items = aggregator.take_ready()

    record = only_invocation(items, REQUEST_A)
    assert record["complete"] is True
    assert record["startTime"] == "2024-03-05T06:07:08.000Z"
    assert record["durationMs"] == 152.25
    assert record["runtimeDurationMs"] == 140.0
    assert [log["message"] for log in record["logs"]] == ["late line"]
    assert items[0].event_count == 4


def test_logs_after_runtime_done_join_record() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.start(REQUEST_A), ev.runtime_done(REQUEST_A)])
    add(aggregator, [ev.text_log("after runtimeDone", REQUEST_A), ev.powertools_log("powertools", REQUEST_A)])
    add(aggregator, [ev.report(REQUEST_A)])
    add(aggregator, [ev.json_format_log("after report", REQUEST_A)])
    items = aggregator.take_ready()

    record = only_invocation(items, REQUEST_A)
    assert [log["message"] for log in record["logs"]] == ["after runtimeDone", "powertools", "after report"]
    assert items[0].event_count == 6


def test_interleaved_invocations_stay_apart() -> None:
    aggregator = Aggregator()

    add(
        aggregator,
        [
            ev.start(REQUEST_A),
            ev.start(REQUEST_B),
            ev.text_log("from B", REQUEST_B),
            ev.text_log("from A", REQUEST_A),
            ev.runtime_done(REQUEST_B),
            ev.report(REQUEST_B),
            ev.runtime_done(REQUEST_A),
            ev.report(REQUEST_A),
        ],
    )
    items = aggregator.take_ready()

    assert len(items) == 2
    assert [log["message"] for log in only_invocation(items, REQUEST_A)["logs"]] == ["from A"]
    assert [log["message"] for log in only_invocation(items, REQUEST_B)["logs"]] == ["from B"]


def test_record_ready_only_after_report() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.start(REQUEST_A), ev.text_log("working", REQUEST_A), ev.runtime_done(REQUEST_A)])
    before_report = aggregator.take_ready()
    add(aggregator, [ev.report(REQUEST_A)])
    after_report = aggregator.take_ready()

    assert before_report == []
    assert len(after_report) == 1
    assert after_report[0].record["complete"] is True


# --- log attribution -----------------------------------------------------------------------


def test_log_without_request_id_goes_to_running_invocation() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.start(REQUEST_A), ev.plain_log("print output"), ev.runtime_done(REQUEST_A), ev.report(REQUEST_A)])
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert [log["message"] for log in record["logs"]] == ["print output"]


def test_init_output_goes_to_init_record() -> None:
    aggregator = Aggregator()

    aggregator.note_invoke(REQUEST_A)
    add(aggregator, [ev.init_start(), ev.plain_log("module loaded"), ev.init_report()])
    add(aggregator, ev.invocation_events(REQUEST_A))
    ready = aggregator.take_ready()
    init = [item.record for item in ready if item.record["kind"] == "init"]
    record = only_invocation(ready, REQUEST_A)

    assert [log["message"] for log in init[0]["logs"]] == ["module loaded"]
    assert "module loaded" not in [log["message"] for log in record["logs"]]


def test_late_output_joins_finished_invocation() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.init_start(), ev.init_report()])

    add(aggregator, [ev.start(REQUEST_A), ev.runtime_done(REQUEST_A)])
    late = ev.event("function", "printed before runtimeDone\n", "2024-03-05T06:07:08.000Z")
    after = ev.event("function", "printed between invokes\n", "2024-03-05T06:09:00.000Z")
    add(aggregator, [late, after, ev.report(REQUEST_A)])
    ready = aggregator.take_everything()
    record = only_invocation(ready, REQUEST_A)
    loose = [item.record for item in ready if item.record["kind"] == "events"]

    assert "printed before runtimeDone" in [log["message"] for log in record["logs"]]
    assert [log["message"] for log in loose[0]["logs"]] == ["printed between invokes"]


def test_log_formats_parsed_into_record() -> None:
    aggregator = Aggregator()

    add(
        aggregator,
        [
            ev.start(REQUEST_A),
            ev.text_log("text line", REQUEST_A, level="WARNING"),
            ev.powertools_log("powertools line", REQUEST_A, level="ERROR"),
            ev.json_format_log("json line", REQUEST_A, level="DEBUG"),
            ev.runtime_done(REQUEST_A),
            ev.report(REQUEST_A),
        ],
    )
    logs = only_invocation(aggregator.take_ready(), REQUEST_A)["logs"]

    assert [log["format"] for log in logs] == ["text", "powertools", "json"]
    assert [log["level"] for log in logs] == ["WARN", "ERROR", "DEBUG"]
    assert [log["requestId"] for log in logs] == [REQUEST_A] * 3


def test_emf_line_becomes_metric() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.start(REQUEST_A), ev.emf_log(3), ev.runtime_done(REQUEST_A), ev.report(REQUEST_A)])
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert record["logs"] == []
    assert len(record["metrics"]) == 1
    assert record["metrics"][0]["name"] == "OrdersPlaced"
    assert record["metrics"][0]["values"] == [3]


def test_emf_request_id_attributes_metric() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.start(REQUEST_A), ev.start(REQUEST_B), ev.emf_log(5, request_id=REQUEST_A)])
    add(aggregator, [ev.runtime_done(REQUEST_A), ev.report(REQUEST_A), ev.runtime_done(REQUEST_B), ev.report(REQUEST_B)])
    items = aggregator.take_ready()

    assert len(only_invocation(items, REQUEST_A)["metrics"]) == 1
    assert only_invocation(items, REQUEST_B)["metrics"] == []


# --- init and restore ----------------------------------------------------------------------


def test_init_record_gets_init_events_and_logs() -> None:
    aggregator = Aggregator(function_name="orders")

    add(
        aggregator,
        [
            ev.init_start(),
            ev.text_log("loading model"),
            ev.plain_log("print during init"),
            ev.init_runtime_done(),
            ev.extension_event(),
            ev.init_report(),
        ],
    )
    items = aggregator.take_ready()

    init_records = records_by_kind(items, "init")
    assert len(init_records) == 1
    assert records_by_kind(items, "invocation") == []
    record = init_records[0]
    assert record["functionName"] == "orders"
    assert record["initializationType"] == "on-demand"
    assert record["phase"] == "init"
    assert record["runtimeVersion"] == "python:3.12.v38"
    assert record["status"] == "success"
    assert record["durationMs"] == 412.5
    assert record["startTime"] == "2024-03-05T06:07:07.000Z"
    assert record["endTime"] == "2024-03-05T06:07:07.420Z"
    assert record["complete"] is True
    assert [extension["name"] for extension in record["extensions"]] == ["telemetry-ext"]
    assert [log["message"] for log in record["logs"]] == ["loading model", "print during init"]
    assert items[0].event_count == 6


def test_init_logs_stay_out_of_first_invocation() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.init_start(), ev.text_log("init line"), ev.init_runtime_done(), ev.init_report()])
    add(aggregator, ev.invocation_events(REQUEST_A, init_duration_ms=412.5))
    items = aggregator.take_ready()

    init_logs = records_by_kind(items, "init")[0]["logs"]
    invocation_logs = only_invocation(items, REQUEST_A)["logs"]
    assert [log["message"] for log in init_logs] == ["init line"]
    assert [log["message"] for log in invocation_logs] == ["processing"]


def test_restore_events_make_restore_record() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.restore_start(), ev.restore_runtime_done(), ev.restore_report()])
    items = aggregator.take_ready()

    restore_records = records_by_kind(items, "restore")
    assert len(restore_records) == 1
    assert restore_records[0]["status"] == "success"
    assert restore_records[0]["durationMs"] == 95.0
    assert restore_records[0]["runtimeDurationMs"] == 80.0
    assert restore_records[0]["complete"] is True
    assert items[0].event_count == 3


# --- derived fields ------------------------------------------------------------------------


def test_first_invocation_is_cold_start() -> None:
    aggregator = Aggregator()

    add(aggregator, ev.invocation_events(REQUEST_A))
    add(aggregator, ev.invocation_events(REQUEST_B))
    items = aggregator.take_ready()

    assert only_invocation(items, REQUEST_A)["coldStart"] is True
    assert only_invocation(items, REQUEST_B)["coldStart"] is False


def test_init_duration_marks_cold_start() -> None:
    aggregator = Aggregator()
    add(aggregator, ev.invocation_events(REQUEST_A))

    add(aggregator, ev.invocation_events(REQUEST_B, init_duration_ms=380.0))
    items = aggregator.take_ready()

    record = only_invocation(items, REQUEST_B)
    assert record["coldStart"] is True
    assert record["initDurationMs"] == 380.0


def test_extension_overhead_is_report_minus_runtime() -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.start(REQUEST_A), ev.runtime_done(REQUEST_A, duration_ms=100.5), ev.report(REQUEST_A, duration_ms=112.75)])
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert record["extensionOverheadMs"] == pytest.approx(12.25)


def test_trace_id_taken_from_root() -> None:
    aggregator = Aggregator()

    add(aggregator, ev.invocation_events(REQUEST_A))
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert record["traceId"] == ev.TRACE_ROOT
    assert record["spanId"] == ev.SPAN_ID
    assert record["tracing"] == ev.TRACE_VALUE


def test_no_tracing_leaves_trace_id_null() -> None:
    aggregator = Aggregator()
    runtime_done = ev.runtime_done(REQUEST_A)
    del runtime_done["record"]["tracing"]

    add(aggregator, [ev.start(REQUEST_A, tracing=False), runtime_done, ev.report(REQUEST_A)])
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert record["traceId"] is None


def test_response_spans_become_fields() -> None:
    aggregator = Aggregator()

    add(aggregator, ev.invocation_events(REQUEST_A))
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert record["responseLatencyMs"] == 23.5
    assert record["responseDurationMs"] == 0.75


# --- status --------------------------------------------------------------------------------


def test_shutdown_timeout_marks_unfinished_invocation() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.start(REQUEST_A), ev.text_log("still working", REQUEST_A)])

    items = aggregator.take_everything("timeout")

    record = only_invocation(items, REQUEST_A)
    assert record["status"] == "timeout"
    assert record["statusSource"] == "shutdown"
    assert record["complete"] is False


def test_shutdown_timeout_keeps_runtime_done_status() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.start(REQUEST_A), ev.runtime_done(REQUEST_A, status="success")])

    items = aggregator.take_everything("timeout")

    record = only_invocation(items, REQUEST_A)
    assert record["status"] == "success"
    assert "statusSource" not in record


def test_shutdown_spindown_leaves_status_unknown() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.start(REQUEST_A)])

    items = aggregator.take_everything("spindown")

    record = only_invocation(items, REQUEST_A)
    assert record["status"] is None
    assert "statusSource" not in record


def test_take_everything_includes_open_init() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.init_start(), ev.text_log("init never finished")])

    items = aggregator.take_everything("failure")

    init_records = records_by_kind(items, "init")
    assert len(init_records) == 1
    assert init_records[0]["complete"] is False


def test_exception_logs_keep_success_status() -> None:
    aggregator = Aggregator()

    add(
        aggregator,
        [
            ev.start(REQUEST_A),
            ev.text_log("Traceback (most recent call last): ValueError: bad", REQUEST_A, level="ERROR"),
            ev.event("function", "[ERROR] ValueError: bad input\nTraceback (most recent call last):\n"),
            ev.runtime_done(REQUEST_A, status="success"),
        ],
    )
    items = aggregator.take_everything("spindown")

    assert only_invocation(items, REQUEST_A)["status"] == "success"


@pytest.mark.parametrize("status", ["Timeout", "SomethingNew", "error", "failure"])
def test_status_kept_verbatim(status: str) -> None:
    aggregator = Aggregator()

    add(aggregator, [ev.start(REQUEST_A), ev.runtime_done(REQUEST_A, status=status), ev.report(REQUEST_A, status=status)])
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert record["status"] == status


def test_report_error_type_wins() -> None:
    aggregator = Aggregator()

    add(
        aggregator,
        [
            ev.start(REQUEST_A),
            ev.runtime_done(REQUEST_A, status="error", error_type="Runtime.Unknown"),
            ev.report(REQUEST_A, status="error", error_type="Runtime.ExitError"),
        ],
    )
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert record["status"] == "error"
    assert record["errorType"] == "Runtime.ExitError"


# --- unknown and malformed input -----------------------------------------------------------


def test_unknown_event_type_kept_verbatim() -> None:
    aggregator = Aggregator()
    unknown = ev.event("platform.somethingNew", {"requestId": REQUEST_A, "detail": {"x": 1}})

    add(aggregator, [ev.start(REQUEST_A), unknown, ev.runtime_done(REQUEST_A), ev.report(REQUEST_A)])
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert record["events"] == [unknown]


def test_unknown_event_without_request_id_kept() -> None:
    aggregator = Aggregator()
    unknown = ev.event("platform.telemetrySubscription", {"name": "telemetry-ext", "state": "Subscribed"})
    add(aggregator, [ev.init_start(), ev.init_report()])

    add(aggregator, [unknown])
    items = aggregator.take_everything()

    kept = [event for item in items for event in item.record["events"]]
    assert kept == [unknown]


def test_non_dict_entries_counted_malformed() -> None:
    aggregator = Aggregator()

    malformed = add(aggregator, [ev.start(REQUEST_A), "text", 5, None, ["list"], ev.report(REQUEST_A)])

    assert malformed == 4


def test_odd_field_types_do_not_double_count() -> None:
    aggregator = Aggregator()
    odd_runtime_done = ev.runtime_done(REQUEST_A)
    odd_runtime_done["record"]["spans"] = 5
    odd_report = ev.report(REQUEST_A)
    odd_report["record"]["spans"] = 7
    events = [ev.start(REQUEST_A), odd_runtime_done, odd_report, ev.event("platform.start", "not an object")]

    add(aggregator, events)
    items = aggregator.take_everything()

    assert sum(item.event_count for item in items) == len(events)


def test_logs_dropped_counted_and_kept() -> None:
    aggregator = Aggregator()
    dropped = ev.logs_dropped(records=12, size_bytes=4096)

    add(aggregator, [dropped, ev.logs_dropped(records=3, size_bytes=100)])
    items = aggregator.take_everything()

    assert aggregator.platform_dropped_records == 15
    assert aggregator.platform_dropped_bytes == 4196
    assert dropped in [event for item in items for event in item.record["events"]]


# --- accounting ----------------------------------------------------------------------------


def test_event_counts_sum_to_events_added() -> None:
    aggregator = Aggregator()
    events: list[Any] = [
        ev.init_start(),
        ev.text_log("init line"),
        ev.extension_event(),
        ev.init_runtime_done(),
        ev.init_report(),
        ev.start(REQUEST_A),
        ev.text_log("a1", REQUEST_A),
        ev.powertools_log("a2", REQUEST_A),
        ev.json_format_log("a3", REQUEST_A),
        ev.emf_log(1),
        ev.event("platform.unknownThing", {"requestId": REQUEST_A}),
        ev.runtime_done(REQUEST_A),
        ev.plain_log("between invocations"),
        ev.logs_dropped(),
        ev.report(REQUEST_A, init_duration_ms=412.5),
        ev.start(REQUEST_B),
        ev.text_log("b1", REQUEST_B),
        ev.restore_start(),
        ev.event("platform.runtimeDone", None),
    ]

    add(aggregator, events[:9])
    first = aggregator.take_ready()
    add(aggregator, events[9:])
    rest = aggregator.take_everything("spindown")

    assert sum(item.event_count for item in first + rest) == len(events)


def test_size_bytes_sum_to_bytes_added() -> None:
    aggregator = Aggregator()
    events = ev.invocation_events(REQUEST_A) + [ev.start(REQUEST_B)]

    aggregator.add_events(events, 250)
    items = aggregator.take_everything()

    assert sum(item.size_bytes for item in items) == 250 * len(events)


# --- eviction ------------------------------------------------------------------------------


def test_eviction_ships_oldest_incomplete() -> None:
    aggregator = Aggregator(max_pending_bytes=1_000)

    aggregator.add_events([ev.start(REQUEST_A), ev.text_log("a", REQUEST_A)], 400)
    aggregator.add_events([ev.start(REQUEST_B), ev.text_log("b", REQUEST_B)], 400)
    items = aggregator.take_ready()

    assert len(items) == 1
    assert items[0].record["requestId"] == REQUEST_A
    assert items[0].record["complete"] is False
    assert items[0].event_count == 2
    assert aggregator.pending_bytes == 800


def test_pending_bytes_return_to_zero() -> None:
    aggregator = Aggregator()

    aggregator.add_events(ev.invocation_events(REQUEST_A), 300)
    aggregator.add_events([ev.report(REQUEST_B), ev.start(REQUEST_B)], 300)

    assert aggregator.pending_bytes == 0


# --- waiting -------------------------------------------------------------------------------


def test_wait_for_runtime_done_sees_other_thread() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.start(REQUEST_A)])
    waiting = threading.Event()
    result: list[bool] = []

    def wait() -> None:
        waiting.set()
        result.append(aggregator.wait_for_runtime_done(REQUEST_A, WAIT_S))

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert waiting.wait(WAIT_S)
    add(aggregator, [ev.runtime_done(REQUEST_A)])
    waiter.join(WAIT_S)

    assert result == [True]


def test_wait_for_runtime_done_times_out() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.start(REQUEST_A)])

    done = aggregator.wait_for_runtime_done(REQUEST_A, 0.05)

    assert done is False


def test_wait_for_runtime_done_already_done() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.start(REQUEST_A), ev.runtime_done(REQUEST_A)])

    done = aggregator.wait_for_runtime_done(REQUEST_A, 0)

    assert done is True


def test_wait_for_reports_returns_after_report() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.start(REQUEST_A), ev.runtime_done(REQUEST_A)])
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(aggregator.wait_for_reports(WAIT_S)))

    waiter.start()
    add(aggregator, [ev.report(REQUEST_A)])
    waiter.join(WAIT_S)

    assert result == [True]


def test_wait_for_reports_times_out() -> None:
    aggregator = Aggregator()
    add(aggregator, [ev.start(REQUEST_A), ev.runtime_done(REQUEST_A)])

    reported = aggregator.wait_for_reports(0.05)

    assert reported is False


def test_wait_for_reports_covers_noted_invoke() -> None:
    aggregator = Aggregator()
    aggregator.note_invoke(REQUEST_A)

    before = aggregator.wait_for_reports(0.05)
    add(aggregator, ev.invocation_events(REQUEST_A))
    after = aggregator.wait_for_reports(0.05)

    assert before is False
    assert after is True


def test_wait_for_reports_true_without_invocations() -> None:
    aggregator = Aggregator()

    assert aggregator.wait_for_reports(0) is True


# --- filtering and redaction ---------------------------------------------------------------


def test_min_log_level_filters_and_reports() -> None:
    filtered: list[int] = []
    aggregator = Aggregator(min_log_level="WARN", on_filtered=filtered.append)
    events = [
        ev.start(REQUEST_A),
        ev.text_log("debug detail", REQUEST_A, level="DEBUG"),
        ev.text_log("info detail", REQUEST_A, level="INFO"),
        ev.text_log("warning", REQUEST_A, level="WARNING"),
        ev.powertools_log("failure", REQUEST_A, level="ERROR"),
        ev.runtime_done(REQUEST_A),
        ev.report(REQUEST_A),
    ]

    add(aggregator, events)
    items = aggregator.take_ready()

    record = only_invocation(items, REQUEST_A)
    assert [log["message"] for log in record["logs"]] == ["warning", "failure"]
    assert filtered == [1, 1]
    assert items[0].event_count + sum(filtered) == len(events)


def test_min_log_level_keeps_metrics() -> None:
    filtered: list[int] = []
    aggregator = Aggregator(min_log_level="ERROR", on_filtered=filtered.append)

    add(aggregator, [ev.start(REQUEST_A), ev.emf_log(2), ev.runtime_done(REQUEST_A), ev.report(REQUEST_A)])
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert len(record["metrics"]) == 1
    assert filtered == []


def test_redact_hook_applied_to_logs() -> None:
    seen: list[str] = []

    def redact(log_record: dict[str, Any]) -> dict[str, Any]:
        seen.append(log_record["message"])
        return {**log_record, "message": log_record["message"].replace("hunter2", "[REDACTED]")}

    aggregator = Aggregator(redact=redact)
    add(aggregator, [ev.start(REQUEST_A), ev.text_log("password=hunter2", REQUEST_A), ev.runtime_done(REQUEST_A), ev.report(REQUEST_A)])
    record = only_invocation(aggregator.take_ready(), REQUEST_A)

    assert seen == ["password=hunter2"]
    assert record["logs"][0]["message"] == "password=[REDACTED]"


def test_redact_hook_not_given_metrics() -> None:
    calls: list[Optional[dict[str, Any]]] = []
    aggregator = Aggregator(redact=lambda log_record: calls.append(log_record) or log_record)

    add(aggregator, [ev.start(REQUEST_A), ev.emf_log(1)])

    assert calls == []

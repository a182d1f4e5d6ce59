"""Tests of turning `function` telemetry records into log and metric records."""

from __future__ import annotations

import copy
import json

import pytest

from telemetry_ext.logs import LEVELS, filter_logs, level_rank, normalize_level, parse_function_record

EVENT_TIME = "2024-03-05T06:07:08.901Z"
EVENT_TIME_MS = 1709618828901
REQUEST_ID = "8f5e4c1a-1111-2222-3333-444455556666"


def parse_one_log(record: object) -> dict:
    logs, metrics = parse_function_record(record, EVENT_TIME)
    assert len(logs) == 1, logs
    assert metrics == []
    return logs[0]


# --- Text shapes ---------------------------------------------------------------------------

TEXT_CASES = [
    pytest.param(
        f"[INFO]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\thello\n",
        {
            "timestamp": "2024-03-05T06:07:08.123Z",
            "level": "INFO",
            "message": "hello",
            "requestId": REQUEST_ID,
            "format": "text",
            "fields": {},
        },
        id="python-info",
    ),
    pytest.param(
        f"[WARNING]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\tdisk almost full\n",
        {
            "timestamp": "2024-03-05T06:07:08.123Z",
            "level": "WARN",
            "message": "disk almost full",
            "requestId": REQUEST_ID,
            "format": "text",
            "fields": {},
        },
        id="python-warning",
    ),
    pytest.param(
        f"[CRITICAL]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\tdown\n",
        {
            "timestamp": "2024-03-05T06:07:08.123Z",
            "level": "FATAL",
            "message": "down",
            "requestId": REQUEST_ID,
            "format": "text",
            "fields": {},
        },
        id="python-critical",
    ),
    pytest.param(
        f"[ERROR]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\tfailed\n"
        "Traceback (most recent call last):\n"
        '  File "/var/task/app.py", line 3, in handler\n'
        "    raise ValueError('bad')\n"
        "ValueError: bad\n",
        {
            "timestamp": "2024-03-05T06:07:08.123Z",
            "level": "ERROR",
            "message": "failed\n"
            "Traceback (most recent call last):\n"
            '  File "/var/task/app.py", line 3, in handler\n'
            "    raise ValueError('bad')\n"
            "ValueError: bad",
            "requestId": REQUEST_ID,
            "format": "text",
            "fields": {},
        },
        id="python-multi-line-traceback",
    ),
    pytest.param(
        "[INFO]\t2024-03-05T06:07:08.123Z\t\tduring init\n",
        {
            "timestamp": "2024-03-05T06:07:08.123Z",
            "level": "INFO",
            "message": "during init",
            "requestId": None,
            "format": "text",
            "fields": {},
        },
        id="python-empty-request-id",
    ),
    pytest.param(
        f"[Level 5]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\tcustom\n",
        {
            "timestamp": "2024-03-05T06:07:08.123Z",
            "level": None,
            "message": "custom",
            "requestId": REQUEST_ID,
            "format": "text",
            "fields": {"level": "Level 5"},
        },
        id="python-custom-level",
    ),
    pytest.param(
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named 'requests'\r"
        "Traceback (most recent call last):\n",
        {
            "timestamp": EVENT_TIME,
            "level": "ERROR",
            "message": "Runtime.ImportModuleError: Unable to import module 'app': No module named 'requests'\r"
            "Traceback (most recent call last):",
            "requestId": None,
            "format": "text",
            "fields": {
                "errorType": "Runtime.ImportModuleError",
                "errorMessage": "Unable to import module 'app': No module named 'requests'",
            },
        },
        id="uncaught-import-error",
    ),
    pytest.param(
        "[ERROR] ValueError: bad input\n"
        "Traceback (most recent call last):\n"
        '\u00a0\u00a0File "/var/task/app.py", Line 3, in handler\n'
        "\u00a0\u00a0\u00a0\u00a0raise ValueError('bad input')\n",
        {
            "timestamp": EVENT_TIME,
            "level": "ERROR",
            "message": "ValueError: bad input\n"
            "Traceback (most recent call last):\n"
            '\u00a0\u00a0File "/var/task/app.py", Line 3, in handler\n'
            "\u00a0\u00a0\u00a0\u00a0raise ValueError('bad input')",
            "requestId": None,
            "format": "text",
            "fields": {"errorType": "ValueError", "errorMessage": "bad input"},
        },
        id="uncaught-value-error",
    ),
    pytest.param(
        "[ERROR] something broke\n",
        {
            "timestamp": EVENT_TIME,
            "level": "ERROR",
            "message": "something broke",
            "requestId": None,
            "format": "text",
            "fields": {},
        },
        id="uncaught-without-type",
    ),
    pytest.param(
        f"2024-03-05T06:07:08.555Z\t{REQUEST_ID}\tWARN\tfrom node\n",
        {
            "timestamp": "2024-03-05T06:07:08.555Z",
            "level": "WARN",
            "message": "from node",
            "requestId": REQUEST_ID,
            "format": "text",
            "fields": {},
        },
        id="node-text",
    ),
    pytest.param(
        "hello from print\n",
        {
            "timestamp": EVENT_TIME,
            "level": None,
            "message": "hello from print",
            "requestId": None,
            "format": "plain",
            "fields": {},
        },
        id="plain-print",
    ),
]


@pytest.mark.parametrize("record, expected", TEXT_CASES)
def test_text_shapes(record: str, expected: dict) -> None:
    log = parse_one_log(record)
    for key, value in expected.items():
        assert log[key] == value, key
    assert set(log) == set(expected)


PLAIN_MESSAGE_CASES = [
    pytest.param("no newline", "no newline", id="no-newline"),
    pytest.param("one newline\n", "one newline", id="one-newline"),
    pytest.param("two newlines\n\n", "two newlines\n", id="only-one-stripped"),
    pytest.param("windows\r\n", "windows", id="crlf"),
    pytest.param("", "", id="empty"),
    pytest.param("   \n", "   ", id="whitespace"),
    pytest.param("[not a level] text\n", "[not a level] text", id="bracket-not-level"),
    pytest.param("[1, 2, 3]\n", "[1, 2, 3]", id="json-array"),
    pytest.param("[INFO] no tabs\n", "[INFO] no tabs", id="info-with-space"),
    pytest.param('{"a": 1', '{"a": 1', id="truncated-json"),
    pytest.param("{not json}", "{not json}", id="brace-not-json"),
    pytest.param('{"a": 1}\n{"b": 2}\n', '{"a": 1}\n{"b": 2}', id="two-json-lines"),
    pytest.param(
        "2024-03-05T06:07:08.555Z\tabc\tNOPE\tx",
        "2024-03-05T06:07:08.555Z\tabc\tNOPE\tx",
        id="node-bad-level",
    ),
    pytest.param("12345", "12345", id="digits"),
]


@pytest.mark.parametrize("record, message", PLAIN_MESSAGE_CASES)
def test_plain_text(record: str, message: str) -> None:
    log = parse_one_log(record)
    assert log["format"] == "plain"
    assert log["message"] == message
    assert log["level"] is None
    assert log["timestamp"] == EVENT_TIME
    assert log["requestId"] is None
    assert log["fields"] == {}


# --- Powertools Logger ----------------------------------------------------------------------

POWERTOOLS_LINE = {
    "level": "ERROR",
    "location": "handler:12",
    "message": "payment failed",
    "timestamp": "2021-05-03 11:47:12,494+0000",
    "service": "payment",
    "cold_start": True,
    "function_name": "pay",
    "function_memory_size": 128,
    "function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:pay",
    "function_request_id": REQUEST_ID,
    "xray_trace_id": "1-5759e988-bd862e3fe1be46a994272793",
    "exception": "Traceback (most recent call last):\n  ...\nKeyError: 'id'",
    "exception_name": "KeyError",
}
POWERTOOLS_FIELDS = {
    "location": "handler:12",
    "service": "payment",
    "cold_start": True,
    "function_name": "pay",
    "function_memory_size": 128,
    "function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:pay",
    "xray_trace_id": "1-5759e988-bd862e3fe1be46a994272793",
    "exception": "Traceback (most recent call last):\n  ...\nKeyError: 'id'",
    "exception_name": "KeyError",
}


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(json.dumps(POWERTOOLS_LINE) + "\n", id="string"),
        pytest.param(copy.deepcopy(POWERTOOLS_LINE), id="dict"),
    ],
)
def test_powertools_line(record: object) -> None:
    log = parse_one_log(record)
    assert log["format"] == "powertools"
    assert log["level"] == "ERROR"
    assert log["message"] == "payment failed"
    assert log["timestamp"] == "2021-05-03T11:47:12.494Z"
    assert log["requestId"] == REQUEST_ID
    assert log["fields"] == POWERTOOLS_FIELDS


def test_powertools_input_dict_unchanged() -> None:
    record = copy.deepcopy(POWERTOOLS_LINE)
    parse_function_record(record, EVENT_TIME)
    assert record == POWERTOOLS_LINE


def test_powertools_without_request_id() -> None:
    line = {
        "level": "INFO",
        "location": "<module>:3",
        "message": {"order": 7, "items": ["a"]},
        "timestamp": "2021-05-03 13:47:12,001+0200",
        "service": "orders",
        "sampling_rate": 0.1,
    }
    log = parse_one_log(json.dumps(line))
    assert log["format"] == "powertools"
    assert log["requestId"] is None
    assert json.loads(log["message"]) == {"order": 7, "items": ["a"]}
    assert log["timestamp"] == "2021-05-03T11:47:12.001Z"
    assert log["fields"] == {"location": "<module>:3", "service": "orders", "sampling_rate": 0.1}


# --- Lambda JSON log format and other JSON objects ------------------------------------------


def test_runtime_json_line() -> None:
    record = {
        "timestamp": "2024-03-05T06:07:08Z",
        "level": "INFO",
        "message": "order stored",
        "logger": "root",
        "stackTrace": None,
        "errorType": None,
        "errorMessage": None,
        "requestId": REQUEST_ID,
        "location": None,
        "order_id": 42,
    }
    log = parse_one_log(record)
    assert log["format"] == "json"
    assert log["level"] == "INFO"
    assert log["message"] == "order stored"
    assert log["timestamp"] == "2024-03-05T06:07:08.000Z"
    assert log["requestId"] == REQUEST_ID
    assert log["fields"] == {"logger": "root", "order_id": 42}


@pytest.mark.parametrize("level_key", ["log_level", "level"])
def test_runtime_json_uncaught_error(level_key: str) -> None:
    record = {
        "timestamp": "2024-03-05T06:07:08Z",
        level_key: "ERROR",
        "errorType": "ValueError",
        "errorMessage": "bad input",
        "stackTrace": ['  File "/var/task/app.py", line 3, in handler\n    raise ValueError("bad input")\n'],
        "requestId": REQUEST_ID,
    }
    log = parse_one_log(json.dumps(record))
    assert log["format"] == "json"
    assert log["level"] == "ERROR"
    assert log["message"] == "bad input"
    assert log["requestId"] == REQUEST_ID
    assert log["fields"]["errorType"] == "ValueError"
    assert log["fields"]["stackTrace"] == record["stackTrace"]
    assert "errorMessage" not in log["fields"]


def test_runtime_json_exception_keeps_error_message() -> None:
    record = {"level": "ERROR", "message": "lookup failed", "errorMessage": "'id'", "errorType": "KeyError"}
    log = parse_one_log(record)
    assert log["message"] == "lookup failed"
    assert log["fields"] == {"errorMessage": "'id'", "errorType": "KeyError"}


JSON_OBJECT_CASES = [
    pytest.param(
        {"severity": "warning", "msg": "slow", "time": "2024-03-05T06:07:09.5Z", "request_id": "r-1", "a": 1},
        {"level": "WARN", "message": "slow", "timestamp": "2024-03-05T06:07:09.500Z", "requestId": "r-1"},
        {"a": 1},
        id="alternative-keys",
    ),
    pytest.param(
        {"level": "err", "message": "x"},
        {"level": "ERROR", "message": "x", "timestamp": EVENT_TIME, "requestId": None},
        {},
        id="err-level",
    ),
    pytest.param(
        {"level": "loud", "message": "x"},
        {"level": None, "message": "x"},
        {"level": "loud"},
        id="unknown-level-kept",
    ),
    pytest.param(
        {"level": 30, "message": "x"},
        {"level": None},
        {"level": 30},
        id="numeric-level-kept",
    ),
    pytest.param(
        {"timestamp": "yesterday", "message": "x"},
        {"timestamp": EVENT_TIME},
        {"timestamp": "yesterday"},
        id="unparseable-timestamp-kept",
    ),
    pytest.param(
        {"time": 1709618828901, "message": "x"},
        {"timestamp": "2024-03-05T06:07:08.901Z"},
        {},
        id="epoch-milliseconds",
    ),
    pytest.param(
        {"time": 1709618828.5, "message": "x"},
        {"timestamp": "2024-03-05T06:07:08.500Z"},
        {},
        id="epoch-seconds",
    ),
    pytest.param(
        {"timestamp": "2022-10-27T16:27:43.738+02:00", "message": "x"},
        {"timestamp": "2022-10-27T14:27:43.738Z"},
        {},
        id="rfc3339-offset",
    ),
    pytest.param(
        {"timestamp": "2024-03-05T06:07:08.123456789Z", "message": "x"},
        {"timestamp": "2024-03-05T06:07:08.123Z"},
        {},
        id="nanoseconds-truncated",
    ),
    pytest.param(
        {"timestamp": "2024-03-05 06:07:08", "message": "x"},
        {"timestamp": "2024-03-05T06:07:08.000Z"},
        {},
        id="no-zone-is-utc",
    ),
    pytest.param(
        {"timestamp": "2024-02-30T06:07:08Z", "message": "x"},
        {"timestamp": EVENT_TIME},
        {"timestamp": "2024-02-30T06:07:08Z"},
        id="invalid-date-kept",
    ),
    pytest.param(
        {"event": "order_created", "id": 5},
        {"message": "", "level": None, "format": "json"},
        {"event": "order_created", "id": 5},
        id="no-message",
    ),
    pytest.param(
        {"message": ["a", 1]},
        {"message": '["a", 1]'},
        {},
        id="list-message",
    ),
    pytest.param(
        {"message": None, "x": None},
        {"message": ""},
        {},
        id="null-message-and-member",
    ),
    pytest.param(
        {"message": "x", "requestId": 17},
        {"requestId": None},
        {"requestId": 17},
        id="non-string-request-id-kept",
    ),
    pytest.param(
        {"message": "x", "requestId": ""},
        {"requestId": None},
        {},
        id="empty-request-id",
    ),
    pytest.param(
        {"message": "x", "level": "INFO", "severity": "DEBUG"},
        {"level": "INFO"},
        {"severity": "DEBUG"},
        id="second-level-key-stays",
    ),
]


@pytest.mark.parametrize("document, expected, fields", JSON_OBJECT_CASES)
@pytest.mark.parametrize("as_string", [False, True], ids=["dict", "string"])
def test_json_objects(document: dict, expected: dict, fields: dict, as_string: bool) -> None:
    record = json.dumps(document) if as_string else copy.deepcopy(document)
    log = parse_one_log(record)
    assert log["format"] == expected.get("format", "json")
    for key, value in expected.items():
        assert log[key] == value, key
    assert log["fields"] == fields


def test_json_line_with_whitespace() -> None:
    log = parse_one_log('  {"level": "DEBUG", "message": "padded"}  \n')
    assert log["format"] == "json"
    assert log["level"] == "DEBUG"
    assert log["message"] == "padded"


# --- EMF ------------------------------------------------------------------------------------


def emf_document(**overrides: object) -> dict:
    document = {
        "_aws": {
            "Timestamp": 1709618828000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Shop",
                    "Dimensions": [["Service"], ["Service", "Operation"]],
                    "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Orders"}],
                },
                {
                    "Namespace": "Shop/Business",
                    "Dimensions": [["Country"]],
                    "Metrics": [{"Name": "Revenue", "Unit": "None", "StorageResolution": 1}],
                },
            ],
        },
        "Service": "checkout",
        "Operation": "pay",
        "Country": "FR",
        "Latency": [12.5, 14],
        "Orders": 1,
        "Revenue": 99.9,
        "requestId": REQUEST_ID,
        "cart": {"items": 3},
    }
    document.update(overrides)
    return document


@pytest.mark.parametrize("as_string", [False, True], ids=["dict", "string"])
def test_emf_two_directives(as_string: bool) -> None:
    document = emf_document()
    record = json.dumps(document) if as_string else document
    logs, metrics = parse_function_record(record, EVENT_TIME)
    assert logs == []
    assert [(metric["namespace"], metric["name"]) for metric in metrics] == [
        ("Shop", "Latency"),
        ("Shop", "Orders"),
        ("Shop/Business", "Revenue"),
    ]
    latency, orders, revenue = metrics
    assert latency["unit"] == "Milliseconds"
    assert latency["values"] == [12.5, 14]
    assert latency["dimensions"] == {"Service": "checkout", "Operation": "pay"}
    assert latency["dimensionSets"] == [["Service"], ["Service", "Operation"]]
    assert latency["resolution"] == 60
    assert latency["timestamp"] == 1709618828000
    assert orders["unit"] == "None"
    assert orders["values"] == [1]
    assert revenue["dimensions"] == {"Country": "FR"}
    assert revenue["resolution"] == 1
    assert revenue["values"] == [99.9]
    assert latency["properties"] == {"requestId": REQUEST_ID}


def test_emf_records_do_not_share_dicts() -> None:
    _, metrics = parse_function_record(emf_document(), EVENT_TIME)
    metrics[0]["dimensions"]["Service"] = "changed"
    metrics[0]["properties"]["requestId"] = "changed"
    assert metrics[1]["dimensions"]["Service"] == "checkout"
    assert metrics[1]["properties"]["requestId"] == REQUEST_ID


@pytest.mark.parametrize(
    "storage_resolution, resolution",
    [(1, 1), (1.0, 1), (60, 60), (5, 60), (True, 60), ("1", 60), (None, 60)],
)
def test_emf_resolution(storage_resolution: object, resolution: int) -> None:
    definition = {"Name": "Hits"}
    if storage_resolution is not None:
        definition["StorageResolution"] = storage_resolution
    document = {
        "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [], "Metrics": [definition]}]},
        "Hits": 1,
    }
    _, metrics = parse_function_record(document, EVENT_TIME)
    assert len(metrics) == 1
    assert metrics[0]["resolution"] == resolution


@pytest.mark.parametrize("timestamp", [None, "1709618828000", True, -5, float("nan")])
def test_emf_timestamp_falls_back_to_event_time(timestamp: object) -> None:
    document = {"_aws": {"CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "M"}]}]}}
    if timestamp is not None:
        document["_aws"]["Timestamp"] = timestamp
    document["M"] = 3
    _, metrics = parse_function_record(document, EVENT_TIME)
    assert metrics[0]["timestamp"] == EVENT_TIME_MS


def test_emf_dimension_values_become_strings() -> None:
    document = {
        "_aws": {
            "Timestamp": 5,
            "CloudWatchMetrics": [
                {"Namespace": "N", "Dimensions": [["Shard", "Canary", "Zone"]], "Metrics": [{"Name": "M"}]},
            ],
        },
        "Shard": 7,
        "Canary": False,
        "Zone": None,
        "M": [1, 2, 3],
    }
    _, metrics = parse_function_record(document, EVENT_TIME)
    assert metrics[0]["dimensions"] == {"Shard": "7", "Canary": "false", "Zone": "null"}


def test_emf_large_properties_left_out() -> None:
    document = emf_document(note="x" * 5000)
    _, metrics = parse_function_record(document, EVENT_TIME)
    assert "note" not in metrics[0]["properties"]
    assert "cart" not in metrics[0]["properties"]


def test_emf_limits_accepted() -> None:
    document = {
        "_aws": {
            "Timestamp": 5,
            "CloudWatchMetrics": [
                {
                    "Namespace": "N",
                    "Dimensions": [[f"D{i}" for i in range(30)]],
                    "Metrics": [{"Name": f"M{i}"} for i in range(100)],
                }
            ],
        },
    }
    document.update({f"D{i}": "v" for i in range(30)})
    document.update({f"M{i}": list(range(100)) for i in range(100)})
    logs, metrics = parse_function_record(document, EVENT_TIME)
    assert logs == []
    assert len(metrics) == 100
    assert len(metrics[0]["dimensions"]) == 30
    assert len(metrics[0]["values"]) == 100


def directive(**overrides: object) -> dict:
    result = {"Namespace": "N", "Dimensions": [["Service"]], "Metrics": [{"Name": "Latency"}]}
    result.update(overrides)
    return result


def emf_with(directives: object, **root: object) -> dict:
    document = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": directives}, "Service": "s", "Latency": 5}
    document.update(root)
    return document


INVALID_EMF_CASES = [
    pytest.param({"_aws": "x", "Latency": 1}, "_aws is not an object", id="aws-not-object"),
    pytest.param({"_aws": {"Timestamp": 1}, "Latency": 1}, "_aws.CloudWatchMetrics is missing", id="no-directives"),
    pytest.param(emf_with({"Namespace": "N"}), "_aws.CloudWatchMetrics is not a list", id="directives-not-list"),
    pytest.param(emf_with([]), "_aws.CloudWatchMetrics is empty", id="directives-empty"),
    pytest.param(emf_with(["N"]), "directive 0 is not an object", id="directive-not-object"),
    pytest.param(emf_with([directive(Namespace=5)]), "directive 0 has no Namespace string", id="namespace-number"),
    pytest.param(emf_with([directive(Namespace="")]), "directive 0 has no Namespace string", id="namespace-empty"),
    pytest.param(
        emf_with([{"Dimensions": [], "Metrics": [{"Name": "Latency"}]}]),
        "directive 0 has no Namespace string",
        id="namespace-missing",
    ),
    pytest.param(
        emf_with([directive(), directive(Dimensions=["Service"])]),
        "directive 1 Dimensions is not a list of lists",
        id="dimensions-flat",
    ),
    pytest.param(
        emf_with([{"Namespace": "N", "Metrics": [{"Name": "Latency"}]}]),
        "directive 0 Dimensions is not a list of lists",
        id="dimensions-missing",
    ),
    pytest.param(
        emf_with([directive(Dimensions=[[1]])]),
        "directive 0 has a dimension key that is not a string",
        id="dimension-key-number",
    ),
    pytest.param(
        emf_with([directive(Dimensions=[[f"D{i}" for i in range(31)]])], **{f"D{i}": "v" for i in range(31)}),
        "directive 0 has a dimension set with 31 keys (max 30)",
        id="too-many-dimensions",
    ),
    pytest.param(
        emf_with([directive(Dimensions=[["Region"]])]),
        'dimension "Region" has no value at the root',
        id="dimension-missing",
    ),
    pytest.param(
        emf_with([directive()], Service={"name": "checkout"}),
        'dimension "Service" value is an object or a list',
        id="dimension-object",
    ),
    pytest.param(
        emf_with([directive()], Service=["checkout"]),
        'dimension "Service" value is an object or a list',
        id="dimension-list",
    ),
    pytest.param(
        emf_with([directive(Metrics={"Name": "Latency"})]),
        "directive 0 Metrics is not a list",
        id="metrics-not-list",
    ),
    pytest.param(
        emf_with([directive(Metrics=[{"Name": f"M{i}"} for i in range(101)])], **{f"M{i}": 1 for i in range(101)}),
        "directive 0 has 101 metrics (max 100)",
        id="too-many-metrics",
    ),
    pytest.param(
        emf_with([directive(Metrics=[{"Unit": "Count"}])]),
        "directive 0 has a metric without a Name string",
        id="metric-without-name",
    ),
    pytest.param(
        emf_with([directive(Metrics=["Latency"])]),
        "directive 0 has a metric without a Name string",
        id="metric-is-string",
    ),
    pytest.param(
        emf_with([directive(Metrics=[{"Name": "Latency", "Unit": 5}])]),
        'metric "Latency" has a Unit that is not a string',
        id="unit-number",
    ),
    pytest.param(
        emf_with([directive(Metrics=[{"Name": "Errors"}])]),
        'metric "Errors" has no value at the root',
        id="metric-missing",
    ),
    pytest.param(
        emf_with([directive()], Latency="5"),
        'metric "Latency" value is not a number or a list of numbers',
        id="value-string",
    ),
    pytest.param(
        emf_with([directive()], Latency=True),
        'metric "Latency" value is not a number or a list of numbers',
        id="value-bool",
    ),
    pytest.param(
        emf_with([directive()], Latency=[1, False]),
        'metric "Latency" value is not a number or a list of numbers',
        id="value-list-with-bool",
    ),
    pytest.param(
        emf_with([directive()], Latency=[1, [2]]),
        'metric "Latency" value is not a number or a list of numbers',
        id="value-nested-list",
    ),
    pytest.param(
        emf_with([directive()], Latency=None),
        'metric "Latency" value is not a number or a list of numbers',
        id="value-null",
    ),
    pytest.param(
        emf_with([directive()], Latency=[]),
        'metric "Latency" has an empty value list',
        id="value-empty-list",
    ),
    pytest.param(
        emf_with([directive()], Latency=list(range(101))),
        'metric "Latency" has 101 values (max 100)',
        id="too-many-values",
    ),
    pytest.param(
        emf_with([directive()], Latency=float("nan")),
        'metric "Latency" has a value that is not finite',
        id="value-nan",
    ),
    pytest.param(emf_with([directive(Metrics=[])]), "document defines no metrics", id="no-metrics"),
]


@pytest.mark.parametrize("document, reason", INVALID_EMF_CASES)
@pytest.mark.parametrize("as_string", [False, True], ids=["dict", "string"])
def test_invalid_emf_stays_log(document: dict, reason: str, as_string: bool) -> None:
    record = json.dumps(document) if as_string else document
    logs, metrics = parse_function_record(record, EVENT_TIME)
    assert metrics == []
    assert len(logs) == 1
    assert logs[0]["format"] == "json"
    assert logs[0]["fields"]["emfError"] == reason
    assert logs[0]["fields"]["_aws"] == document["_aws"]


def test_invalid_emf_keeps_log_fields() -> None:
    document = emf_with([directive()], Latency="slow", level="WARNING", message="metrics flush")
    log = parse_one_log(document)
    assert log["level"] == "WARN"
    assert log["message"] == "metrics flush"
    assert log["fields"]["Latency"] == "slow"


# --- Undecodable content, huge lines and unexpected record types ----------------------------


def test_lone_surrogate_in_plain_text() -> None:
    log = parse_one_log("bad byte \udcff here\n")
    assert log["message"] == "bad byte \ufffd here"
    assert log["message"].encode("utf-8")


def test_replacement_character_kept() -> None:
    log = parse_one_log("decoded \ufffd\ufffd\n")
    assert log["message"] == "decoded \ufffd\ufffd"


def test_lone_surrogate_in_python_text() -> None:
    log = parse_one_log(f"[INFO]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\tcaf\udce9\n")
    assert log["format"] == "text"
    assert log["message"] == "caf\ufffd"


def test_surrogate_escape_in_json_line() -> None:
    log = parse_one_log('{"message": "a\\udc80b", "nested": {"k\\ud800": ["\\udfff"]}}')
    assert log["message"] == "a\ufffdb"
    assert log["fields"] == {"nested": {"k\ufffd": ["\ufffd"]}}


def test_raw_surrogate_in_json_line() -> None:
    log = parse_one_log('{"message": "a\udc80b"}')
    assert log["format"] == "json"
    assert log["message"] == "a\ufffdb"


def test_surrogate_in_dict_record() -> None:
    record = {"message": "x\ud800", "requestId": "r\udfff", "extra": {"list": ["\udc00"]}}
    log = parse_one_log(record)
    assert log["message"] == "x\ufffd"
    assert log["requestId"] == "r\ufffd"
    assert log["fields"] == {"extra": {"list": ["\ufffd"]}}
    assert json.dumps(log, ensure_ascii=False).encode("utf-8")


def test_surrogate_in_emf_dimension() -> None:
    document = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [{"Namespace": "N\udc80", "Dimensions": [["D"]], "Metrics": [{"Name": "M"}]}],
        },
        "D": "v\udc81",
        "M": 1,
    }
    _, metrics = parse_function_record(document, EVENT_TIME)
    assert metrics[0]["namespace"] == "N\ufffd"
    assert metrics[0]["dimensions"] == {"D": "v\ufffd"}


MEGABYTE = 1024 * 1024

HUGE_CASES = [
    pytest.param("x" * MEGABYTE + "\n", "plain", "x" * MEGABYTE, id="plain"),
    pytest.param(
        f"[INFO]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\t" + "é" * MEGABYTE + "\n",
        "text",
        "é" * MEGABYTE,
        id="python-text",
    ),
    pytest.param(json.dumps({"level": "INFO", "message": "m" * MEGABYTE}), "json", "m" * MEGABYTE, id="json"),
    pytest.param("{" + "x" * MEGABYTE, "plain", "{" + "x" * MEGABYTE, id="open-brace"),
    pytest.param("{" + "x" * MEGABYTE + "}", "plain", "{" + "x" * MEGABYTE + "}", id="braces-not-json"),
    pytest.param("[" + "x" * MEGABYTE, "plain", "[" + "x" * MEGABYTE, id="open-bracket"),
    pytest.param("[ERROR] " + "e" * MEGABYTE, "text", "e" * MEGABYTE, id="uncaught-error"),
    pytest.param(
        "2024-03-05T06:07:08.123Z\t" + "r" * MEGABYTE,
        "plain",
        "2024-03-05T06:07:08.123Z\t" + "r" * MEGABYTE,
        id="node-prefix",
    ),
    pytest.param("{" * 100_000 + "}" * 100_000, "plain", "{" * 100_000 + "}" * 100_000, id="deep-nesting"),
]


@pytest.mark.parametrize("record, log_format, message", HUGE_CASES)
def test_huge_lines(record: str, log_format: str, message: str) -> None:
    log = parse_one_log(record)
    assert log["format"] == log_format
    assert log["message"] == message


UNEXPECTED_CASES = [
    pytest.param(5, "5", "number", id="int"),
    pytest.param(1.5, "1.5", "number", id="float"),
    pytest.param([1, "a"], '[1, "a"]', "array", id="list"),
    pytest.param(None, "null", "null", id="none"),
    pytest.param(True, "true", "boolean", id="bool"),
]


@pytest.mark.parametrize("record, message, record_type", UNEXPECTED_CASES)
def test_unexpected_record_types(record: object, message: str, record_type: str) -> None:
    log = parse_one_log(record)
    assert log["format"] == "plain"
    assert log["message"] == message
    assert log["fields"] == {"recordType": record_type}
    assert log["level"] is None
    assert log["timestamp"] == EVENT_TIME


def deeply_nested(depth: int) -> dict:
    document: dict = {}
    for _ in range(depth):
        document = {"a": document}
    return document


ODD_OBJECT_CASES = [
    pytest.param({1: "int key", "message": "x"}, id="int-key"),
    pytest.param({"message": {1: "int key in message"}}, id="int-key-in-message"),
    pytest.param({"message": deeply_nested(5000)}, id="deep-message"),
    pytest.param(deeply_nested(5000), id="deep-record"),
    pytest.param({"level": None, "timestamp": None, "requestId": None, "message": None}, id="all-null"),
    pytest.param({"timestamp": 1e300, "time": -1e300}, id="huge-epoch"),
    pytest.param({"timestamp": float("nan")}, id="nan-epoch"),
]


@pytest.mark.parametrize("record", ODD_OBJECT_CASES)
def test_odd_objects_do_not_raise(record: dict) -> None:
    logs, metrics = parse_function_record(record, EVENT_TIME)
    assert len(logs) + len(metrics) >= 1
    for log in logs:
        assert isinstance(log["message"], str)
        assert isinstance(log["fields"], dict)


def test_unserializable_record_type() -> None:
    log = parse_one_log({1, 2})
    assert log["format"] == "plain"
    assert log["fields"] == {"recordType": "set"}


# --- Levels and filtering -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, level",
    [
        ("trace", "TRACE"),
        ("Debug", "DEBUG"),
        ("INFO", "INFO"),
        ("notice", "INFO"),
        ("warn", "WARN"),
        ("WARNING", "WARN"),
        ("err", "ERROR"),
        ("Error", "ERROR"),
        ("fatal", "FATAL"),
        ("CRITICAL", "FATAL"),
        (" info ", "INFO"),
        ("verbose", None),
        ("", None),
        (None, None),
        (40, None),
    ],
)
def test_normalize_level(name: object, level: str | None) -> None:
    assert normalize_level(name) == level


def test_level_rank_order() -> None:
    ranks = [level_rank(level) for level in LEVELS]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(LEVELS)


@pytest.mark.parametrize("level", [None, "bogus", "INFO", "info", "notice"])
def test_level_rank_defaults_to_info(level: str | None) -> None:
    assert level_rank(level) == level_rank("INFO")


def test_level_rank_aliases() -> None:
    assert level_rank("warning") == level_rank("WARN")
    assert level_rank("critical") == level_rank("FATAL")


def make_logs(*levels: str | None) -> list[dict]:
    return [{"level": level, "message": str(index)} for index, level in enumerate(levels)]


def test_filter_logs_min_warn() -> None:
    logs = make_logs("DEBUG", "INFO", None, "WARN", "ERROR", "TRACE", "FATAL")
    kept_logs, dropped = filter_logs(logs, "WARN")
    assert [log["message"] for log in kept_logs] == ["2", "3", "4", "6"]
    assert dropped == 3


def test_filter_logs_without_min_level() -> None:
    logs = make_logs("DEBUG", None)
    kept_logs, dropped = filter_logs(logs, None)
    assert kept_logs == logs
    assert kept_logs is not logs
    assert dropped == 0


def test_filter_logs_min_trace_keeps_all() -> None:
    logs = make_logs(*LEVELS, None)
    kept_logs, dropped = filter_logs(logs, "TRACE")
    assert kept_logs == logs
    assert dropped == 0


def test_filter_logs_min_fatal() -> None:
    kept_logs, dropped = filter_logs(make_logs(*LEVELS, None), "fatal")
    assert [log["level"] for log in kept_logs] == ["FATAL", None]
    assert dropped == 5


def test_filter_logs_empty() -> None:
    assert filter_logs([], "ERROR") == ([], 0)


def test_filter_parsed_records() -> None:
    records = [
        f"[DEBUG]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\tdetail\n",
        f"[ERROR]\t2024-03-05T06:07:08.123Z\t{REQUEST_ID}\tbroken\n",
        "plain print\n",
    ]
    logs = [parse_one_log(record) for record in records]
    kept_logs, dropped = filter_logs(logs, "INFO")
    assert [log["message"] for log in kept_logs] == ["broken", "plain print"]
    assert dropped == 1

"""Turn the ``record`` of a Telemetry API ``function`` or ``extension`` event into log and metric records.

A record is a string when the function uses the Text log format and an object when it uses
the JSON log format. Recognised shapes, checked in this order:

* a JSON object with ``_aws`` at its root: a CloudWatch EMF document, which becomes metric
  records (see ``telemetry_ext.emf``) or, when invalid, a log record with ``fields["emfError"]``;
* a Powertools for AWS Lambda Logger object (``format`` ``powertools``);
* any other JSON object, including the Lambda runtime's JSON log format (``format`` ``json``);
* the Python runtime's text format ``[LEVEL]\\t<time>\\t<requestId>\\t<message>``, its uncaught
  error line ``[ERROR] Type: message``, and the Node.js runtime's text format
  ``<time>\\t<requestId>\\t<LEVEL>\\t<message>`` (``format`` ``text``);
* anything else, such as ``print`` output (``format`` ``plain``).

The log record fields are described in docs/records.md.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone

from telemetry_ext.emf import InvalidEmfError, parse_emf

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")

_LEVEL_ALIASES = {
    "TRACE": "TRACE",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "NOTICE": "INFO",
    "WARN": "WARN",
    "WARNING": "WARN",
    "ERR": "ERROR",
    "ERROR": "ERROR",
    "FATAL": "FATAL",
    "CRIT": "FATAL",
    "CRITICAL": "FATAL",
    "ALERT": "FATAL",
    "EMERG": "FATAL",
    "EMERGENCY": "FATAL",
}
_LEVEL_RANKS = {level: rank for rank, level in enumerate(LEVELS)}
_INFO_RANK = _LEVEL_RANKS["INFO"]

# Keys of a JSON log object that fill the record's own fields, in order of preference.
_LEVEL_KEYS = ("level", "log_level", "severity")
_MESSAGE_KEYS = ("message", "msg")
_TIMESTAMP_KEYS = ("timestamp", "time")
_REQUEST_ID_KEYS = ("requestId", "request_id", "function_request_id", "aws_request_id", "awsRequestId")
_POWERTOOLS_REQUEST_ID_KEYS = ("function_request_id", "requestId", "request_id")

_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})"
    r"(?:[.,](\d{1,9}))?"
    r" ?(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?"
)
_MAX_TIMESTAMP_LENGTH = 40

# Python runtime (awslambdaric) text format, as a logging format string:
# "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n".
_PYTHON_TEXT_RE = re.compile(
    r"\[([^\]\t\n]{1,32})\]\t(\d{4}-\d{2}-\d{2}T[^\t\n]{1,32})\t([^\t\n]{0,128})\t(.*)", re.DOTALL
)
# awslambdaric writes an uncaught error as "[ERROR] Type: message" followed by the traceback,
# with lines separated by "\r" on stdout and by "\n" in the telemetry log frame.
_UNCAUGHT_ERROR_RE = re.compile(r"\[ERROR\] (.*)", re.DOTALL)
_ERROR_TYPE_RE = re.compile(r"([A-Za-z_][\w.]{0,200}): ")
_TRACEBACK_RE = re.compile(r"[\r\n]Traceback \(most recent call last\):")
# Node.js runtime text format: "<time>\t<requestId>\t<LEVEL>\t<message>".
_NODE_TEXT_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\t([^\t\n]{0,128})\t([A-Za-z]{1,9})\t(.*)", re.DOTALL
)

_NON_SPACE_RE = re.compile(r"\S")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# Once the text is scrubbed, only a "\ud800"-style JSON escape can bring back a lone surrogate.
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")
# Nested values deeper than this keep any lone surrogates they contain.
_MAX_SCRUB_DEPTH = 64

_EPOCH = datetime(1970, 1, 1)


def normalize_level(value: object) -> str | None:
    """Return the LEVELS member that a level name means, case-insensitively, or None."""
    if not isinstance(value, str):
        return None
    return _LEVEL_ALIASES.get(value.strip().upper())


def level_rank(level: str | None) -> int:
    """Return the position of a level in LEVELS, for min-level filtering. None or unknown ranks as INFO."""
    return _LEVEL_RANKS.get(normalize_level(level), _INFO_RANK)


def filter_logs(logs: list[dict], min_level: str | None) -> tuple[list[dict], int]:
    """Keep log records at ``min_level`` or above and return them with the number dropped.

    Records with a null level are always kept. ``min_level`` None keeps everything, and an
    unknown ``min_level`` ranks as INFO, like ``level_rank``.
    """
    if min_level is None:
        return list(logs), 0
    threshold = level_rank(min_level)
    kept_records = [
        record for record in logs if record.get("level") is None or level_rank(record["level"]) >= threshold
    ]
    return kept_records, len(logs) - len(kept_records)


def parse_function_record(record: object, event_time: str) -> tuple[list[dict], list[dict]]:
    """Return (log_records, metric_records) for the `record` field of one `function` (or `extension`) event.

    ``event_time`` is the event's ``time``. It is the timestamp of every record whose line
    carries none, and the fallback EMF timestamp. Raises no exception for any JSON value.
    """
    if isinstance(record, str):
        return _parse_text(record, event_time)
    if isinstance(record, dict):
        return _parse_object(record, event_time, scrub=True)
    return [_unexpected_type_record(record, event_time)], []


def _parse_text(text: str, event_time: str) -> tuple[list[dict], list[dict]]:
    text = _scrub_text(text)
    first = _NON_SPACE_RE.search(text)
    first_char = first.group() if first else ""

    if first_char == "{" and text.rstrip().endswith("}"):
        document = _load_json_object(text)
        if document is not None:
            return _parse_object(document, event_time, scrub=_SURROGATE_ESCAPE_RE.search(text) is not None)
    elif text.startswith("["):
        log_record = _parse_python_text(text, event_time)
        if log_record is not None:
            return [log_record], []
    elif text[:1].isdigit():
        log_record = _parse_node_text(text, event_time)
        if log_record is not None:
            return [log_record], []

    return [_log_record(event_time, None, _strip_newline(text), None, "plain", {})], []


def _load_json_object(text: str) -> dict | None:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _parse_python_text(text: str, event_time: str) -> dict | None:
    match = _PYTHON_TEXT_RE.match(text)
    if match is not None:
        level_name, timestamp, request_id, message = match.groups()
        level = normalize_level(level_name)
        # A custom logging level name keeps its spelling in fields.
        fields = {} if level is not None else {"level": level_name}
        return _log_record(
            _normalize_timestamp(timestamp) or event_time,
            level,
            _strip_newline(message),
            request_id or None,
            "text",
            fields,
        )

    match = _UNCAUGHT_ERROR_RE.match(text)
    if match is None:
        return None
    message = _strip_newline(match.group(1))
    fields = {}
    error_type = _ERROR_TYPE_RE.match(message)
    if error_type is not None:
        fields["errorType"] = error_type.group(1)
        rest = message[error_type.end():]
        traceback = _TRACEBACK_RE.search(rest)
        fields["errorMessage"] = rest[: traceback.start()] if traceback else rest
    return _log_record(event_time, "ERROR", message, None, "text", fields)


def _parse_node_text(text: str, event_time: str) -> dict | None:
    match = _NODE_TEXT_RE.match(text)
    if match is None:
        return None
    timestamp, request_id, level_name, message = match.groups()
    level = normalize_level(level_name)
    if level is None:
        return None
    return _log_record(
        _normalize_timestamp(timestamp) or event_time,
        level,
        _strip_newline(message),
        request_id or None,
        "text",
        {},
    )


def _parse_object(document: dict, event_time: str, scrub: bool) -> tuple[list[dict], list[dict]]:
    if "_aws" in document:
        try:
            metrics = parse_emf(document, _epoch_ms(event_time))
        except InvalidEmfError as error:
            log_record = _object_log_record(document, event_time, "json", _REQUEST_ID_KEYS, scrub)
            log_record["fields"]["emfError"] = str(error)
            return [log_record], []
        if scrub:
            metrics = [_scrub(metric, 0) for metric in metrics]
        return [], metrics

    if _is_powertools(document):
        return [_object_log_record(document, event_time, "powertools", _POWERTOOLS_REQUEST_ID_KEYS, scrub)], []
    return [_object_log_record(document, event_time, "json", _REQUEST_ID_KEYS, scrub)], []


def _is_powertools(document: dict) -> bool:
    # Powertools Logger writes level, location, message, timestamp and service on every line,
    # and function_request_id once the Lambda context is injected.
    return "function_request_id" in document or (
        "level" in document and "location" in document and "service" in document
    )


def _object_log_record(
    document: dict, event_time: str, log_format: str, request_id_keys: tuple[str, ...], scrub: bool
) -> dict:
    # Members that cannot be normalised go back into fields, so that no value is lost.
    remaining = dict(document)

    level = None
    level_key = _first_key(remaining, _LEVEL_KEYS)
    if level_key is not None:
        level = normalize_level(remaining[level_key])
        if level is not None:
            del remaining[level_key]

    timestamp = None
    timestamp_key = _first_key(remaining, _TIMESTAMP_KEYS)
    if timestamp_key is not None:
        timestamp = _normalize_timestamp(remaining[timestamp_key])
        if timestamp is not None:
            del remaining[timestamp_key]

    request_id = None
    request_id_key = _first_key(remaining, request_id_keys)
    if request_id_key is not None and isinstance(remaining[request_id_key], str):
        request_id = remaining.pop(request_id_key) or None

    message_key = _first_key(remaining, _MESSAGE_KEYS)
    if message_key is None and isinstance(remaining.get("errorMessage"), str):
        # The runtime's uncaught-error object has errorMessage and no message.
        message_key = "errorMessage"
    message = _message_text(remaining.pop(message_key)) if message_key is not None else ""

    # The runtime's JSON formatter writes null errorType, stackTrace and location on every
    # line, so null members are dropped.
    fields = {key: value for key, value in remaining.items() if value is not None}

    if scrub:
        message = _scrub_text(message)
        request_id = _scrub_text(request_id) if request_id is not None else None
        fields = _scrub(fields, 0)
    return _log_record(timestamp or event_time, level, message, request_id, log_format, fields)


def _first_key(document: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in document:
            return key
    return None


def _message_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return _json_text(value)


def _json_text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        # Keys that are not strings, or nesting deeper than the recursion limit.
        pass
    try:
        return repr(value)
    except RecursionError:
        return "<value nested too deeply to encode>"


def _unexpected_type_record(record: object, event_time: str) -> dict:
    fields = {"recordType": _json_type_name(record)}
    return _log_record(event_time, None, _scrub_text(_json_text(record)), None, "plain", fields)


def _json_type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _log_record(
    timestamp: str, level: str | None, message: str, request_id: str | None, log_format: str, fields: dict
) -> dict:
    return {
        "timestamp": timestamp,
        "level": level,
        "message": message,
        "requestId": request_id,
        "format": log_format,
        "fields": fields,
    }


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def _parse_datetime(value: object) -> datetime | None:
    """Return the naive UTC datetime of an ISO-8601-like string or an epoch number, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _datetime_from_epoch(value)
    if not isinstance(value, str) or len(value) > _MAX_TIMESTAMP_LENGTH:
        return None

    match = _TIMESTAMP_RE.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, offset_hours, offset_minutes = match.groups()
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond)
    except ValueError:
        return None

    # A timestamp without a zone is taken as UTC, the default zone (TZ=:UTC) of a Lambda sandbox.
    if sign is not None:
        offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes or "0"))
        try:
            parsed = parsed - offset if sign == "+" else parsed + offset
        except OverflowError:
            return None
    return parsed


def _datetime_from_epoch(value: float) -> datetime | None:
    # The unit (seconds, milliseconds, microseconds or nanoseconds) is guessed from the
    # magnitude, which is right for dates between 1973 and 5138.
    magnitude = abs(value)
    if magnitude < 1e11:
        seconds = value
    elif magnitude < 1e14:
        seconds = value / 1e3
    elif magnitude < 1e17:
        seconds = value / 1e6
    else:
        seconds = value / 1e9
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


_CANONICAL_TIMESTAMP_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z")


def _normalize_timestamp(value: object) -> str | None:
    """Return ``value`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, or None when it cannot be parsed."""
    # Fast path: the Python runtime and the Telemetry API already write this exact form, and
    # building a datetime for every line was a quarter of the processing time.
    if isinstance(value, str) and _CANONICAL_TIMESTAMP_RE.fullmatch(value):
        return value
    parsed = _parse_datetime(value)
    if parsed is None:
        return None
    return f"{parsed:%Y-%m-%dT%H:%M:%S}.{parsed.microsecond // 1000:03d}Z"


def _epoch_ms(event_time: str) -> int:
    parsed = _parse_datetime(event_time)
    if parsed is None:
        # Only a malformed event time reaches this fallback.
        return int(time.time() * 1000)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _scrub_text(text: str) -> str:
    """Replace lone surrogates, which cannot be encoded as UTF-8, with U+FFFD."""
    if text.isascii():
        return text
    return _SURROGATE_RE.sub("\ufffd", text)


def _scrub(value: object, depth: int) -> object:
    if isinstance(value, str):
        return _scrub_text(value)
    if depth >= _MAX_SCRUB_DEPTH:
        return value
    if isinstance(value, dict):
        return {
            (_scrub_text(key) if isinstance(key, str) else key): _scrub(item, depth + 1) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item, depth + 1) for item in value]
    return value

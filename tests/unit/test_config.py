"""Tests of reading the configuration from environment variables with Config.from_env."""

from __future__ import annotations

import pytest

from telemetry_ext.config import Config, FlushStrategy, HttpBodyFormat
from telemetry_ext.errors import ConfigError


def config_error(environ: dict[str, str]) -> str:
    """Return the message of the ConfigError that ``environ`` raises."""
    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ)
    return str(caught.value)


# --- defaults ------------------------------------------------------------------------------


def test_from_env_empty_gives_defaults() -> None:
    config = Config.from_env({})

    assert config == Config()
    assert config.http_url is None
    assert config.http_format is HttpBodyFormat.ARRAY
    assert config.http_gzip is False
    assert config.http_headers == {}
    assert config.otlp_endpoint is None
    assert config.emf_enabled is False
    assert config.file_path is None
    assert config.flush_strategy is FlushStrategy.ADAPTIVE
    assert config.flush_interval_ms == 1_000
    assert config.flush_timeout_ms == 500
    assert config.export_timeout_ms == 2_000
    assert config.max_buffer_bytes == 4 * 1024 * 1024
    assert config.shutdown_margin_ms == 150
    assert config.schema_version == "2022-12-13"
    assert config.telemetry_types == ("platform", "function")
    assert config.buffer_max_items == 1_000
    assert config.buffer_max_bytes == 262_144
    assert config.buffer_timeout_ms == 25
    assert config.listener_host is None
    assert config.listener_port == 0
    assert config.min_log_level is None
    assert config.redact_patterns == ()
    assert config.log_level == "INFO"
    assert config.has_destination is False


def test_from_env_ignores_other_variables() -> None:
    config = Config.from_env({"HTTP_URL": "http://127.0.0.1:1/x", "PATH": "/usr/bin"})

    assert config == Config()


@pytest.mark.parametrize(
    "name",
    [
        "TELEMETRY_EXT_HTTP_URL",
        "TELEMETRY_EXT_HTTP_FORMAT",
        "TELEMETRY_EXT_HTTP_GZIP",
        "TELEMETRY_EXT_HTTP_HEADERS",
        "TELEMETRY_EXT_OTLP_ENDPOINT",
        "TELEMETRY_EXT_EMF",
        "TELEMETRY_EXT_FILE_PATH",
        "TELEMETRY_EXT_FLUSH",
        "TELEMETRY_EXT_FLUSH_TIMEOUT_MS",
        "TELEMETRY_EXT_MAX_BUFFER_BYTES",
        "TELEMETRY_EXT_SCHEMA_VERSION",
        "TELEMETRY_EXT_TYPES",
        "TELEMETRY_EXT_BUFFER_MAX_ITEMS",
        "TELEMETRY_EXT_LISTENER_HOST",
        "TELEMETRY_EXT_LISTENER_PORT",
        "TELEMETRY_EXT_MIN_LOG_LEVEL",
        "TELEMETRY_EXT_REDACT_PATTERNS",
        "TELEMETRY_EXT_LOG_LEVEL",
    ],
)
@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_from_env_blank_value_counts_as_unset(name: str, blank: str) -> None:
    config = Config.from_env({name: blank})

    assert config == Config()


# --- every variable parsed -----------------------------------------------------------------


def test_from_env_parses_every_variable() -> None:
    environ = {
        "TELEMETRY_EXT_HTTP_URL": "https://127.0.0.1:8443/ingest",
        "TELEMETRY_EXT_HTTP_FORMAT": "NDJSON",
        "TELEMETRY_EXT_HTTP_GZIP": "true",
        "TELEMETRY_EXT_HTTP_HEADERS": "Authorization=Bearer abc, X-Team = core ,",
        "TELEMETRY_EXT_OTLP_ENDPOINT": "http://127.0.0.1:4318/",
        "TELEMETRY_EXT_OTLP_HEADERS": "X-Key=k1",
        "TELEMETRY_EXT_OTLP_GZIP": "yes",
        "TELEMETRY_EXT_EMF": "1",
        "TELEMETRY_EXT_FILE_PATH": " /tmp/telemetry.ndjson ",
        "TELEMETRY_EXT_FLUSH": "periodic,200",
        "TELEMETRY_EXT_FLUSH_TIMEOUT_MS": "750",
        "TELEMETRY_EXT_EXPORT_TIMEOUT_MS": "3000",
        "TELEMETRY_EXT_MAX_BUFFER_BYTES": "1048576",
        "TELEMETRY_EXT_SHUTDOWN_MARGIN_MS": "200",
        "TELEMETRY_EXT_SCHEMA_VERSION": "2025-01-29",
        "TELEMETRY_EXT_TYPES": "function, platform,extension,function",
        "TELEMETRY_EXT_BUFFER_MAX_ITEMS": "5000",
        "TELEMETRY_EXT_BUFFER_MAX_BYTES": "524288",
        "TELEMETRY_EXT_BUFFER_TIMEOUT_MS": "100",
        "TELEMETRY_EXT_LISTENER_HOST": "127.0.0.1",
        "TELEMETRY_EXT_LISTENER_PORT": "4243",
        "TELEMETRY_EXT_MIN_LOG_LEVEL": "error",
        "TELEMETRY_EXT_REDACT_PATTERNS": "secret-[0-9]+;;token=\\w+\napi_key",
        "TELEMETRY_EXT_LOG_LEVEL": "debug",
    }

    config = Config.from_env(environ)

    assert config.http_url == "https://127.0.0.1:8443/ingest"
    assert config.http_format is HttpBodyFormat.NDJSON
    assert config.http_gzip is True
    assert config.http_headers == {"Authorization": "Bearer abc", "X-Team": "core"}
    assert config.otlp_endpoint == "http://127.0.0.1:4318"
    assert config.otlp_headers == {"X-Key": "k1"}
    assert config.otlp_gzip is True
    assert config.emf_enabled is True
    assert config.file_path == "/tmp/telemetry.ndjson"
    assert config.flush_strategy is FlushStrategy.PERIODIC
    assert config.flush_interval_ms == 200
    assert config.flush_timeout_ms == 750
    assert config.export_timeout_ms == 3_000
    assert config.max_buffer_bytes == 1_048_576
    assert config.shutdown_margin_ms == 200
    assert config.schema_version == "2025-01-29"
    assert config.telemetry_types == ("function", "platform", "extension")
    assert config.buffer_max_items == 5_000
    assert config.buffer_max_bytes == 524_288
    assert config.buffer_timeout_ms == 100
    assert config.listener_host == "127.0.0.1"
    assert config.listener_port == 4243
    assert config.min_log_level == "ERROR"
    assert config.redact_patterns == ("secret-[0-9]+", "token=\\w+", "api_key")
    assert config.log_level == "DEBUG"
    assert config.has_destination is True


@pytest.mark.parametrize(
    ("value", "strategy", "interval_ms"),
    [
        ("adaptive", FlushStrategy.ADAPTIVE, 1_000),
        ("end", FlushStrategy.END, 1_000),
        ("END", FlushStrategy.END, 1_000),
        ("shutdown", FlushStrategy.SHUTDOWN, 1_000),
        ("periodic", FlushStrategy.PERIODIC, 1_000),
        ("periodic,200", FlushStrategy.PERIODIC, 200),
        (" periodic , 60000 ", FlushStrategy.PERIODIC, 60_000),
    ],
)
def test_flush_strategy_parsed(value: str, strategy: FlushStrategy, interval_ms: int) -> None:
    config = Config.from_env({"TELEMETRY_EXT_FLUSH": value})

    assert config.flush_strategy is strategy
    assert config.flush_interval_ms == interval_ms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("warning", "WARN"),
        ("WARNING", "WARN"),
        ("warn", "WARN"),
        ("trace", "TRACE"),
        ("Fatal", "FATAL"),
    ],
)
def test_min_log_level_normalized(value: str, expected: str) -> None:
    config = Config.from_env({"TELEMETRY_EXT_MIN_LOG_LEVEL": value})

    assert config.min_log_level == expected


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_boolean_false_values(value: str) -> None:
    config = Config.from_env({"TELEMETRY_EXT_EMF": value})

    assert config.emf_enabled is False


def test_http_url_kept_verbatim() -> None:
    config = Config.from_env({"TELEMETRY_EXT_HTTP_URL": "http://127.0.0.1:8080/path/"})

    assert config.http_url == "http://127.0.0.1:8080/path/"


def test_header_value_may_contain_equals() -> None:
    config = Config.from_env({"TELEMETRY_EXT_HTTP_HEADERS": "X-Sig=a=b=="})

    assert config.http_headers == {"X-Sig": "a=b=="}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TELEMETRY_EXT_BUFFER_MAX_ITEMS", "1000", 1_000),
        ("TELEMETRY_EXT_BUFFER_MAX_ITEMS", "10000", 10_000),
        ("TELEMETRY_EXT_BUFFER_MAX_BYTES", "262144", 262_144),
        ("TELEMETRY_EXT_BUFFER_MAX_BYTES", "1048576", 1_048_576),
        ("TELEMETRY_EXT_BUFFER_TIMEOUT_MS", "25", 25),
        ("TELEMETRY_EXT_BUFFER_TIMEOUT_MS", "30000", 30_000),
        ("TELEMETRY_EXT_LISTENER_PORT", "9002", 9_002),
    ],
)
def test_integer_range_bounds_accepted(name: str, value: str, expected: int) -> None:
    config = Config.from_env({name: value})
    field_name = name[len("TELEMETRY_EXT_"):].lower()

    assert getattr(config, field_name) == expected


# --- invalid values ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["end,5", "shutdown,100", "adaptive,1000"])
def test_flush_interval_only_for_periodic(value: str) -> None:
    message = config_error({"TELEMETRY_EXT_FLUSH": value})

    assert "TELEMETRY_EXT_FLUSH" in message
    assert "periodic,<ms>" in message


@pytest.mark.parametrize("value", ["sometimes", "periodical,100", "never"])
def test_flush_unknown_strategy_rejected(value: str) -> None:
    message = config_error({"TELEMETRY_EXT_FLUSH": value})

    assert "TELEMETRY_EXT_FLUSH" in message
    assert repr(value) in message
    assert "expected adaptive, end, periodic,<ms> or shutdown" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("periodic,abc", "whole milliseconds"),
        ("periodic,1.5", "whole milliseconds"),
        ("periodic,5", "10 to 3600000 ms"),
        ("periodic,3600001", "10 to 3600000 ms"),
    ],
)
def test_flush_bad_interval_rejected(value: str, expected: str) -> None:
    message = config_error({"TELEMETRY_EXT_FLUSH": value})

    assert "TELEMETRY_EXT_FLUSH" in message
    assert expected in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEMETRY_EXT_FLUSH_TIMEOUT_MS", "fast"),
        ("TELEMETRY_EXT_FLUSH_TIMEOUT_MS", "1.5"),
        ("TELEMETRY_EXT_EXPORT_TIMEOUT_MS", "2s"),
        ("TELEMETRY_EXT_MAX_BUFFER_BYTES", "4MB"),
        ("TELEMETRY_EXT_LISTENER_PORT", "http"),
    ],
)
def test_bad_integer_rejected(name: str, value: str) -> None:
    message = config_error({name: value})

    assert name in message
    assert repr(value) in message
    assert "a whole number from" in message


@pytest.mark.parametrize(
    ("name", "value", "expected_range"),
    [
        ("TELEMETRY_EXT_BUFFER_MAX_ITEMS", "999", "from 1000 to 10000"),
        ("TELEMETRY_EXT_BUFFER_MAX_ITEMS", "10001", "from 1000 to 10000"),
        ("TELEMETRY_EXT_BUFFER_MAX_BYTES", "262143", "from 262144 to 1048576"),
        ("TELEMETRY_EXT_BUFFER_MAX_BYTES", "1048577", "from 262144 to 1048576"),
        ("TELEMETRY_EXT_BUFFER_TIMEOUT_MS", "24", "from 25 to 30000"),
        ("TELEMETRY_EXT_BUFFER_TIMEOUT_MS", "30001", "from 25 to 30000"),
        ("TELEMETRY_EXT_MAX_BUFFER_BYTES", "1024", "from 65536 to"),
        ("TELEMETRY_EXT_SHUTDOWN_MARGIN_MS", "1501", "from 0 to 1500"),
        ("TELEMETRY_EXT_LISTENER_PORT", "65536", "from 0 to 65535"),
        ("TELEMETRY_EXT_LISTENER_PORT", "-1", "from 0 to 65535"),
    ],
)
def test_integer_out_of_range_rejected(name: str, value: str, expected_range: str) -> None:
    message = config_error({name: value})

    assert name in message
    assert expected_range in message


def test_listener_port_9001_forbidden() -> None:
    message = config_error({"TELEMETRY_EXT_LISTENER_PORT": "9001"})

    assert "TELEMETRY_EXT_LISTENER_PORT" in message
    assert "but not 9001" in message


@pytest.mark.parametrize(
    "value",
    [
        "ftp://127.0.0.1/x",
        "file:///tmp/x",
        "127.0.0.1:8080",
        "http://",
        "http:///path",
        "httpx://127.0.0.1",
    ],
)
def test_bad_url_scheme_rejected(value: str) -> None:
    message = config_error({"TELEMETRY_EXT_HTTP_URL": value})

    assert "TELEMETRY_EXT_HTTP_URL" in message
    assert "an http:// or https:// URL" in message


def test_bad_otlp_endpoint_rejected() -> None:
    message = config_error({"TELEMETRY_EXT_OTLP_ENDPOINT": "grpc://127.0.0.1:4317"})

    assert "TELEMETRY_EXT_OTLP_ENDPOINT" in message


@pytest.mark.parametrize(
    ("pairs", "secret"),
    [
        ("Authorization Bearer s3cr3t-token", "s3cr3t-token"),
        ("X-Api-Key:s3cr3t-token", "s3cr3t-token"),
        ("X-Ok=1,X-Api-Key s3cr3t-token", "s3cr3t-token"),
        ("Bad Name=s3cr3t-token", "s3cr3t-token"),
        ("=s3cr3t-token", "s3cr3t-token"),
        ("X-Key=s3cr3t\r\ntoken", "s3cr3t"),
    ],
)
def test_bad_header_pair_hides_value(pairs: str, secret: str) -> None:
    message = config_error({"TELEMETRY_EXT_HTTP_HEADERS": pairs})

    assert "TELEMETRY_EXT_HTTP_HEADERS" in message
    assert "Name=value pairs" in message
    assert secret not in message


def test_bad_otlp_header_names_variable() -> None:
    message = config_error({"TELEMETRY_EXT_OTLP_HEADERS": "novalue"})

    assert "TELEMETRY_EXT_OTLP_HEADERS" in message


@pytest.mark.parametrize("value", ["platform,logs", "all", ", ,"])
def test_types_not_subset_rejected(value: str) -> None:
    message = config_error({"TELEMETRY_EXT_TYPES": value})

    assert "TELEMETRY_EXT_TYPES" in message
    assert "a comma-separated subset of platform,function,extension" in message


@pytest.mark.parametrize("value", ["verbose", "WARNINGS", "5"])
def test_bad_min_log_level_rejected(value: str) -> None:
    message = config_error({"TELEMETRY_EXT_MIN_LOG_LEVEL": value})

    assert "TELEMETRY_EXT_MIN_LOG_LEVEL" in message
    assert "one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TELEMETRY_EXT_HTTP_GZIP", "maybe", "true or false"),
        ("TELEMETRY_EXT_HTTP_FORMAT", "xml", "one of array, ndjson"),
        ("TELEMETRY_EXT_SCHEMA_VERSION", "2023-01-01", "one of 2022-07-01, 2022-12-13, 2025-01-29"),
        ("TELEMETRY_EXT_LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_bad_choice_rejected(name: str, value: str, expected: str) -> None:
    message = config_error({name: value})

    assert name in message
    assert expected in message


def test_every_invalid_variable_reported() -> None:
    environ = {"TELEMETRY_EXT_FLUSH": "garbage", "TELEMETRY_EXT_MAX_BUFFER_BYTES": "abc"}

    with pytest.raises(ConfigError) as raised:
        Config.from_env(environ)

    assert "TELEMETRY_EXT_FLUSH='garbage'" in str(raised.value)
    assert "TELEMETRY_EXT_MAX_BUFFER_BYTES='abc'" in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("patterns", ["(unclosed", "ok-[0-9]+;;x*"])
def test_invalid_redact_pattern_rejected(patterns: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"TELEMETRY_EXT_REDACT_PATTERNS": patterns})

    assert "TELEMETRY_EXT_REDACT_PATTERNS" in str(raised.value)
    assert "unclosed" not in str(raised.value)


def test_valid_redact_patterns_kept() -> None:
    config = Config.from_env({"TELEMETRY_EXT_REDACT_PATTERNS": "order-[0-9]+;;card=\\d{16}"})

    assert config.redact_patterns == ("order-[0-9]+", "card=\\d{16}")

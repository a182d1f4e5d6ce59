"""Configuration, read once from the environment into an immutable value.

Every setting is an environment variable starting with ``TELEMETRY_EXT_``. ``Config.from_env``
takes a mapping, so tests pass a plain dict. Invalid values raise one ConfigError that names
each variable, its value and what was expected. ``main`` logs it as one error line and then
ships nothing, which keeps the function working.
"""

from __future__ import annotations

import enum
import re
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Optional

from telemetry_ext.errors import ConfigError

PREFIX = "TELEMETRY_EXT_"

SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13", "2025-01-29")
TELEMETRY_TYPES = ("platform", "function", "extension")

# Ranges the Telemetry API accepts for a subscription's buffering block.
MAX_ITEMS_RANGE = (1_000, 10_000)
MAX_BYTES_RANGE = (262_144, 1_048_576)
BUFFER_TIMEOUT_MS_RANGE = (25, 30_000)


class FlushStrategy(enum.Enum):
    """When buffered records are exported."""

    END = "end"  # After each invoke's runtimeDone, before calling /event/next.
    PERIODIC = "periodic"  # In the background at most every flush_interval_ms, and at SHUTDOWN.
    ADAPTIVE = "adaptive"  # END while invokes are sparse, PERIODIC while they are frequent.
    SHUTDOWN = "shutdown"  # Only at SHUTDOWN.


class HttpBodyFormat(enum.Enum):
    """Framing of a batch sent to the HTTP destination."""

    ARRAY = "array"  # One JSON array of records.
    NDJSON = "ndjson"  # One record per line.


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


# A NamedTuple rather than a frozen dataclass: importing dataclasses pulls in inspect, several
# milliseconds that every cold start would pay.
class Config(NamedTuple):
    """Settings of the extension.

    Environment variables (all optional):

    Destinations; several may be active at once, and with none the extension ships nothing:
        TELEMETRY_EXT_HTTP_URL: HTTP(S) URL that receives batches of records as JSON.
        TELEMETRY_EXT_HTTP_FORMAT: ``array`` (default) or ``ndjson``.
        TELEMETRY_EXT_HTTP_GZIP: ``true`` to gzip the body. Default ``false``.
        TELEMETRY_EXT_HTTP_HEADERS: extra headers, ``Name=value`` pairs separated by commas.
        TELEMETRY_EXT_OTLP_ENDPOINT: base URL of an OTLP/HTTP receiver, such as
            ``http://127.0.0.1:4318``; ``/v1/logs``, ``/v1/metrics`` and ``/v1/traces`` are appended.
        TELEMETRY_EXT_OTLP_HEADERS: extra headers for OTLP, same form as the HTTP ones.
        TELEMETRY_EXT_OTLP_GZIP: ``true`` to gzip OTLP bodies. Default ``false``.
        TELEMETRY_EXT_EMF: ``true`` to print CloudWatch EMF metrics to stdout. Default ``false``.
        TELEMETRY_EXT_FILE_PATH: file that records are appended to as NDJSON.

    Delivery:
        TELEMETRY_EXT_FLUSH: ``adaptive`` (default), ``end``, ``periodic,<ms>`` or ``shutdown``.
        TELEMETRY_EXT_FLUSH_TIMEOUT_MS: most time one flush may add to an invoke. Default 500.
        TELEMETRY_EXT_EXPORT_TIMEOUT_MS: timeout of one export attempt. Default 2000.
        TELEMETRY_EXT_MAX_BUFFER_BYTES: bound on buffered telemetry, in bytes. Default 4194304.
        TELEMETRY_EXT_SHUTDOWN_MARGIN_MS: time kept free before the SHUTDOWN deadline. Default 150.

    Telemetry subscription:
        TELEMETRY_EXT_SCHEMA_VERSION: ``2022-12-13`` (default), ``2022-07-01`` or ``2025-01-29``.
        TELEMETRY_EXT_TYPES: comma-separated subset of platform,function,extension.
            Default ``platform,function``.
        TELEMETRY_EXT_BUFFER_MAX_ITEMS: 1000 to 10000. Default 1000.
        TELEMETRY_EXT_BUFFER_MAX_BYTES: 262144 to 1048576. Default 262144.
        TELEMETRY_EXT_BUFFER_TIMEOUT_MS: 25 to 30000. Default 25.
        TELEMETRY_EXT_LISTENER_HOST: address or name the listener binds to. Default: the
            address of ``sandbox.localdomain``, or 127.0.0.1 where that name does not resolve.
        TELEMETRY_EXT_LISTENER_PORT: listener port; 0 (default) picks a free one.

    Content:
        TELEMETRY_EXT_MIN_LOG_LEVEL: lowest function log level shipped (TRACE, DEBUG, INFO,
            WARN, ERROR, FATAL). Default: ship every level.
        TELEMETRY_EXT_REDACT_PATTERNS: extra regular expressions to redact, separated by
            newlines or by ``;;``.

    Own logging:
        TELEMETRY_EXT_LOG_LEVEL: DEBUG, INFO (default), WARNING or ERROR.
    """

    http_url: Optional[str] = None
    http_format: HttpBodyFormat = HttpBodyFormat.ARRAY
    http_gzip: bool = False
    http_headers: Mapping[str, str] = _NO_HEADERS
    otlp_endpoint: Optional[str] = None
    otlp_headers: Mapping[str, str] = _NO_HEADERS
    otlp_gzip: bool = False
    emf_enabled: bool = False
    file_path: Optional[str] = None

    flush_strategy: FlushStrategy = FlushStrategy.ADAPTIVE
    flush_interval_ms: int = 1_000
    flush_timeout_ms: int = 500
    export_timeout_ms: int = 2_000
    max_buffer_bytes: int = 4 * 1024 * 1024
    shutdown_margin_ms: int = 150

    schema_version: str = "2022-12-13"
    telemetry_types: tuple[str, ...] = ("platform", "function")
    buffer_max_items: int = 1_000
    buffer_max_bytes: int = 262_144
    buffer_timeout_ms: int = 25
    listener_host: Optional[str] = None
    listener_port: int = 0

    min_log_level: Optional[str] = None
    redact_patterns: tuple[str, ...] = ()

    log_level: str = "INFO"

    @property
    def has_destination(self) -> bool:
        return bool(self.http_url or self.otlp_endpoint or self.emf_enabled or self.file_path)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Build a Config from ``environ``.

        Raises ConfigError naming every invalid variable, in one message, so that one deploy
        shows all that needs fixing.
        """
        reader = _EnvReader(environ)
        errors: list[str] = []

        def read(method: Callable[..., Any], *args: Any, fallback: Any) -> Any:
            try:
                return method(*args)
            except ConfigError as error:
                errors.append(str(error))
                return fallback

        strategy, interval_ms = read(_parse_flush, reader.text("FLUSH"), fallback=(FlushStrategy.ADAPTIVE, 1_000))
        levels = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
        config = cls(
            http_url=read(reader.url, "HTTP_URL", fallback=None),
            http_format=read(reader.choice_enum, "HTTP_FORMAT", HttpBodyFormat, HttpBodyFormat.ARRAY, fallback=HttpBodyFormat.ARRAY),
            http_gzip=read(reader.boolean, "HTTP_GZIP", False, fallback=False),
            http_headers=read(reader.headers, "HTTP_HEADERS", fallback={}),
            otlp_endpoint=read(reader.url, "OTLP_ENDPOINT", fallback=None),
            otlp_headers=read(reader.headers, "OTLP_HEADERS", fallback={}),
            otlp_gzip=read(reader.boolean, "OTLP_GZIP", False, fallback=False),
            emf_enabled=read(reader.boolean, "EMF", False, fallback=False),
            file_path=reader.text("FILE_PATH"),
            flush_strategy=strategy,
            flush_interval_ms=interval_ms,
            flush_timeout_ms=read(reader.integer, "FLUSH_TIMEOUT_MS", 500, 0, 60_000, fallback=500),
            export_timeout_ms=read(reader.integer, "EXPORT_TIMEOUT_MS", 2_000, 10, 60_000, fallback=2_000),
            max_buffer_bytes=read(reader.integer, "MAX_BUFFER_BYTES", 4 * 1024 * 1024, 65_536, 1024**3, fallback=4 * 1024 * 1024),
            shutdown_margin_ms=read(reader.integer, "SHUTDOWN_MARGIN_MS", 150, 0, 1_500, fallback=150),
            schema_version=read(reader.choice, "SCHEMA_VERSION", SCHEMA_VERSIONS, "2022-12-13", fallback="2022-12-13"),
            telemetry_types=read(reader.subset, "TYPES", TELEMETRY_TYPES, ("platform", "function"), fallback=("platform", "function")),
            buffer_max_items=read(reader.integer, "BUFFER_MAX_ITEMS", 1_000, *MAX_ITEMS_RANGE, fallback=1_000),
            buffer_max_bytes=read(reader.integer, "BUFFER_MAX_BYTES", 262_144, *MAX_BYTES_RANGE, fallback=262_144),
            buffer_timeout_ms=read(reader.integer, "BUFFER_TIMEOUT_MS", 25, *BUFFER_TIMEOUT_MS_RANGE, fallback=25),
            listener_host=reader.text("LISTENER_HOST"),
            listener_port=read(reader.integer, "LISTENER_PORT", 0, 0, 65_535, (9001,), fallback=0),
            min_log_level=read(reader.choice, "MIN_LOG_LEVEL", levels, None, True, fallback=None),
            redact_patterns=read(reader.patterns, "REDACT_PATTERNS", fallback=()),
            log_level=read(reader.choice, "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", True, fallback="INFO")
            or "INFO",
        )
        if errors:
            raise ConfigError("; ".join(errors))
        return config


def _parse_flush(value: Optional[str]) -> tuple[FlushStrategy, int]:
    name = PREFIX + "FLUSH"
    if value is None:
        return FlushStrategy.ADAPTIVE, 1_000
    strategy_text, _, interval_text = value.strip().lower().partition(",")
    try:
        strategy = FlushStrategy(strategy_text.strip())
    except ValueError:
        raise ConfigError(
            f"{name}={value!r} is invalid: expected adaptive, end, periodic,<ms> or shutdown"
        ) from None
    if not interval_text:
        return strategy, 1_000
    if strategy is not FlushStrategy.PERIODIC:
        raise ConfigError(f"{name}={value!r} is invalid: only periodic takes an interval, as periodic,<ms>")
    try:
        interval_ms = int(interval_text.strip())
    except ValueError:
        raise ConfigError(f"{name}={value!r} is invalid: the interval must be whole milliseconds") from None
    if not 10 <= interval_ms <= 3_600_000:
        raise ConfigError(f"{name}={value!r} is invalid: the interval must be 10 to 3600000 ms")
    return strategy, interval_ms


class _EnvReader:
    """Reads TELEMETRY_EXT_ variables; an empty or blank value counts as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, key: str) -> Optional[str]:
        value = self._environ.get(PREFIX + key)
        if value is None or not value.strip():
            return None
        return value.strip()

    def _invalid(self, key: str, value: str, expected: str) -> ConfigError:
        return ConfigError(f"{PREFIX}{key}={value!r} is invalid: expected {expected}")

    def url(self, key: str) -> Optional[str]:
        value = self.text(key)
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
            raise self._invalid(key, value, "an http:// or https:// URL with a host")
        return value.rstrip("/") if key == "OTLP_ENDPOINT" else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.text(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise self._invalid(key, value, "true or false")

    def integer(
        self, key: str, default: int, minimum: int, maximum: int, forbidden: tuple[int, ...] = ()
    ) -> int:
        value = self.text(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise self._invalid(key, value, f"a whole number from {minimum} to {maximum}") from None
        if not minimum <= number <= maximum or number in forbidden:
            extra = f", but not {', '.join(map(str, forbidden))}" if forbidden else ""
            raise self._invalid(key, value, f"a whole number from {minimum} to {maximum}{extra}")
        return number

    def choice(
        self, key: str, allowed: tuple[str, ...], default: Optional[str], upper: bool = False
    ) -> Optional[str]:
        value = self.text(key)
        if value is None:
            return default
        normalized = value.upper() if upper else value
        if upper and normalized == "WARNING" and "WARN" in allowed:
            normalized = "WARN"
        if normalized not in allowed:
            raise self._invalid(key, value, "one of " + ", ".join(allowed))
        return normalized

    def choice_enum(self, key: str, enum_type: type[enum.Enum], default: enum.Enum) -> enum.Enum:
        value = self.text(key)
        if value is None:
            return default
        try:
            return enum_type(value.lower())
        except ValueError:
            raise self._invalid(key, value, "one of " + ", ".join(m.value for m in enum_type)) from None

    def subset(self, key: str, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.text(key)
        if value is None:
            return default
        items = tuple(dict.fromkeys(item.strip().lower() for item in value.split(",") if item.strip()))
        if not items or any(item not in allowed for item in items):
            raise self._invalid(key, value, "a comma-separated subset of " + ",".join(allowed))
        return items

    def headers(self, key: str) -> dict[str, str]:
        value = self.text(key)
        if value is None:
            return {}
        headers: dict[str, str] = {}
        for position, pair in enumerate(value.split(","), start=1):
            if not pair.strip():
                continue
            name, sep, header_value = pair.partition("=")
            name = name.strip()
            if not sep or not name or any(c in name for c in " \t\r\n:") or any(c in header_value for c in "\r\n"):
                # Headers usually carry API keys, and a pair without "=" may be a name and its
                # value run together ("X-Key:secret"), so only the text before the first blank
                # or colon is echoed.
                shown_name = re.split(r"[\s:]", name, maxsplit=1)[0][:40]
                raise ConfigError(
                    f"{PREFIX}{key} is invalid in pair {position} (header {shown_name!r}): "
                    "expected Name=value pairs separated by commas"
                )
            headers[name] = header_value.strip()
        return headers

    def patterns(self, key: str) -> tuple[str, ...]:
        value = self.text(key)
        if value is None:
            return ()
        parts = value.replace(";;", "\n").split("\n")
        patterns = tuple(part.strip() for part in parts if part.strip())
        import re

        for position, pattern in enumerate(patterns, start=1):
            # The pattern itself is not echoed: it may contain the very secret to redact.
            try:
                compiled = re.compile(pattern)
            except re.error as error:
                raise ConfigError(f"{PREFIX}{key} is invalid: pattern {position} is not a regular expression ({error})") from None
            if compiled.fullmatch(""):
                raise ConfigError(f"{PREFIX}{key} is invalid: pattern {position} matches the empty string")
        return patterns

"""Exceptions raised by telemetry-ext.

    TelemetryExtError
    ├── ConfigError          an environment variable has an invalid value
    └── LambdaApiError       an Extensions or Telemetry API call failed
        └── RegistrationRejected   /register answered with an error status

Socket and HTTP errors from the Lambda API client are translated into LambdaApiError at the
client, chained with ``from``, so callers handle one type.
"""

from __future__ import annotations

from typing import Optional


class TelemetryExtError(Exception):
    """Base class of every error raised by telemetry-ext."""


class ConfigError(TelemetryExtError):
    """An environment variable has an invalid value. The message names the variable."""


class LambdaApiError(TelemetryExtError):
    """A call to the Lambda Extensions or Telemetry API failed."""

    def __init__(self, message: str, status: Optional[int] = None, error_type: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class RegistrationRejected(LambdaApiError):
    """The Extensions API rejected /register, so the extension cannot take part in the lifecycle."""

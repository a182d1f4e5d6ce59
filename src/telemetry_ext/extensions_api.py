"""Client of the Lambda Extensions API (2020-01-01): register, next event, init and exit errors."""

from __future__ import annotations

import json
from typing import Any, Optional

from telemetry_ext.deferred_logging import get_logger
from telemetry_ext import lambda_http
from telemetry_ext.errors import LambdaApiError, RegistrationRejected

logger = get_logger(__name__)

_BASE = "/2020-01-01/extension"


def _error_text(response: lambda_http.Response) -> tuple[str, Optional[str]]:
    """Return the message and errorType of an API error body, tolerating any body."""
    try:
        parsed = json.loads(response.body)
    except ValueError:
        return response.body[:200].decode("utf-8", "replace"), None
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage", "")), parsed.get("errorType")
    return str(parsed)[:200], None


class ExtensionsApiClient:
    """Talks to ``http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension``."""

    def __init__(self, api_address: str, extension_name: str) -> None:
        self.api_address = api_address
        self.extension_name = extension_name
        self.extension_id: Optional[str] = None
        self.function_name: Optional[str] = None
        self.function_version: Optional[str] = None

    def register(self, events: tuple[str, ...] = ("INVOKE", "SHUTDOWN"), timeout_s: float = 5.0) -> dict[str, Any]:
        """Register under the launcher's file name, which Lambda requires for an external extension.

        Raises RegistrationRejected on an error status; the identifier is kept for later calls.
        """
        body = json.dumps({"events": list(events)}).encode()
        response = lambda_http.request(
            self.api_address,
            "POST",
            f"{_BASE}/register",
            body=body,
            headers={"Lambda-Extension-Name": self.extension_name, "Content-Type": "application/json"},
            timeout_s=timeout_s,
        )
        if response.status != 200:
            message, error_type = _error_text(response)
            status_text = f"HTTP {response.status} {error_type}" if error_type else f"HTTP {response.status}"
            raise RegistrationRejected(
                f"register returned {status_text}: {message}",
                response.status,
                error_type,
            )
        extension_id = response.headers.get("lambda-extension-identifier")
        if not extension_id:
            raise RegistrationRejected("register returned no Lambda-Extension-Identifier header", response.status)
        self.extension_id = extension_id
        try:
            info = json.loads(response.body) if response.body else {}
        except ValueError:
            info = {}
        if not isinstance(info, dict):
            info = {}
        self.function_name = info.get("functionName")
        self.function_version = info.get("functionVersion")
        return info

    def next_event(self) -> dict[str, Any]:
        """Block until Lambda sends the next event, and return it.

        No timeout: the sandbox may be frozen for minutes while this call is outstanding, and
        calling it is also how the extension signals to Lambda that it finished the previous event.
        """
        response = lambda_http.request(
            self.api_address,
            "GET",
            f"{_BASE}/event/next",
            headers={"Lambda-Extension-Identifier": self._identifier()},
            timeout_s=None,
        )
        if response.status != 200:
            message, error_type = _error_text(response)
            raise LambdaApiError(f"event/next returned HTTP {response.status}: {message}", response.status, error_type)
        try:
            event = json.loads(response.body)
        except ValueError as error:
            raise LambdaApiError(f"event/next returned a body that is not JSON ({len(response.body)} bytes)") from error
        if not isinstance(event, dict):
            raise LambdaApiError("event/next returned JSON that is not an object")
        return event

    def report_error(self, kind: str, error_type: str, message: str, timeout_s: float = 1.0) -> None:
        """Post to ``init/error`` or ``exit/error`` (``kind``). Lambda then fails the phase."""
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        response = lambda_http.request(
            self.api_address,
            "POST",
            f"{_BASE}/{kind}/error",
            body=body,
            headers={
                "Lambda-Extension-Identifier": self._identifier(),
                "Lambda-Extension-Function-Error-Type": error_type,
                "Content-Type": "application/json",
            },
            timeout_s=timeout_s,
        )
        if response.status != 202:
            logger.warning("%s/error returned HTTP %d", kind, response.status)

    def _identifier(self) -> str:
        if self.extension_id is None:
            raise LambdaApiError("the extension is not registered")
        return self.extension_id

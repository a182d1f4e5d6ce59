"""Client of the Lambda Telemetry API (2022-07-01): one subscription, made during init."""

from __future__ import annotations

import enum
import json

from telemetry_ext.deferred_logging import get_logger
from telemetry_ext import lambda_http
from telemetry_ext.config import Config
from telemetry_ext.errors import LambdaApiError

logger = get_logger(__name__)

# Lambda delivers to this name; the listener binds to the address it resolves to.
SANDBOX_HOST = "sandbox.localdomain"


class SubscriptionResult(enum.Enum):
    SUBSCRIBED = "subscribed"
    NOT_SUPPORTED = "not_supported"  # HTTP 202: a local emulator without the Telemetry API.


def build_subscription(config: Config, listener_port: int) -> dict:
    return {
        "schemaVersion": config.schema_version,
        "types": list(config.telemetry_types),
        "buffering": {
            "maxItems": config.buffer_max_items,
            "maxBytes": config.buffer_max_bytes,
            "timeoutMs": config.buffer_timeout_ms,
        },
        "destination": {"protocol": "HTTP", "URI": f"http://{SANDBOX_HOST}:{listener_port}"},
    }


def subscribe(api_address: str, extension_id: str, subscription: dict, timeout_s: float = 5.0) -> SubscriptionResult:
    """PUT the subscription. Raises LambdaApiError on any status but 200 and 202."""
    response = lambda_http.request(
        api_address,
        "PUT",
        "/2022-07-01/telemetry",
        body=json.dumps(subscription).encode(),
        headers={"Lambda-Extension-Identifier": extension_id, "Content-Type": "application/json"},
        timeout_s=timeout_s,
    )
    if response.status == 200:
        return SubscriptionResult.SUBSCRIBED
    if response.status == 202:
        return SubscriptionResult.NOT_SUPPORTED
    detail = response.body[:300].decode("utf-8", "replace")
    raise LambdaApiError(f"telemetry subscription returned HTTP {response.status}: {detail}", response.status)

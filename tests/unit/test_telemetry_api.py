"""Tests of the Telemetry API subscription against a fake API on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from fake_lambda_api import FakeLambdaApi

from telemetry_ext.config import Config
from telemetry_ext.errors import LambdaApiError
from telemetry_ext.telemetry_api import SANDBOX_HOST, SubscriptionResult, build_subscription, subscribe

TELEMETRY = "/2022-07-01/telemetry"
EXTENSION_ID = "0f8b1c2d-ext-id"


@pytest.fixture
def api() -> Iterator[FakeLambdaApi]:
    fake = FakeLambdaApi()
    yield fake
    fake.close()


def test_build_subscription_defaults() -> None:
    subscription = build_subscription(Config(), 4243)

    assert subscription == {
        "schemaVersion": "2022-12-13",
        "types": ["platform", "function"],
        "buffering": {"maxItems": 1_000, "maxBytes": 262_144, "timeoutMs": 25},
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"},
    }


def test_build_subscription_uses_config() -> None:
    config = Config.from_env(
        {
            "TELEMETRY_EXT_SCHEMA_VERSION": "2025-01-29",
            "TELEMETRY_EXT_TYPES": "platform,function,extension",
            "TELEMETRY_EXT_BUFFER_MAX_ITEMS": "2000",
            "TELEMETRY_EXT_BUFFER_MAX_BYTES": "524288",
            "TELEMETRY_EXT_BUFFER_TIMEOUT_MS": "500",
        }
    )

    subscription = build_subscription(config, 50_123)

    assert subscription["schemaVersion"] == "2025-01-29"
    assert subscription["types"] == ["platform", "function", "extension"]
    assert subscription["buffering"] == {"maxItems": 2_000, "maxBytes": 524_288, "timeoutMs": 500}
    assert subscription["destination"]["URI"] == f"http://{SANDBOX_HOST}:50123"


def test_build_subscription_is_json() -> None:
    subscription = build_subscription(Config(), 4243)

    assert json.loads(json.dumps(subscription)) == subscription


def test_subscribe_200_subscribed(api: FakeLambdaApi) -> None:
    api.respond("PUT", TELEMETRY, 200, b'"OK"')
    subscription = build_subscription(Config(), 4243)

    result = subscribe(api.address, EXTENSION_ID, subscription)

    assert result is SubscriptionResult.SUBSCRIBED


def test_subscribe_sends_identifier_and_body(api: FakeLambdaApi) -> None:
    api.respond("PUT", TELEMETRY, 200, b'"OK"')
    subscription = build_subscription(Config(), 4243)

    subscribe(api.address, EXTENSION_ID, subscription)
    request = api.next_request()

    assert request.method == "PUT"
    assert request.path == TELEMETRY
    assert request.headers["lambda-extension-identifier"] == EXTENSION_ID
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == subscription


def test_subscribe_202_not_supported(api: FakeLambdaApi) -> None:
    api.respond("PUT", TELEMETRY, 202, b"")

    result = subscribe(api.address, EXTENSION_ID, build_subscription(Config(), 4243))

    assert result is SubscriptionResult.NOT_SUPPORTED


def test_subscribe_400_raises(api: FakeLambdaApi) -> None:
    body = b'{"errorMessage": "invalid buffering", "errorType": "ValidationError"}'
    api.respond("PUT", TELEMETRY, 400, body)

    with pytest.raises(LambdaApiError) as caught:
        subscribe(api.address, EXTENSION_ID, build_subscription(Config(), 4243))

    assert caught.value.status == 400
    assert "invalid buffering" in str(caught.value)

"""Tests of the Extensions API client against a fake API on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from fake_lambda_api import FakeLambdaApi

from telemetry_ext.errors import LambdaApiError, RegistrationRejected
from telemetry_ext.extensions_api import ExtensionsApiClient

REGISTER = "/2020-01-01/extension/register"
NEXT = "/2020-01-01/extension/event/next"
EXTENSION_ID = "0f8b1c2d-ext-id"
REGISTER_INFO = {"functionName": "orders", "functionVersion": "$LATEST", "handler": "app.handler"}


@pytest.fixture
def api() -> Iterator[FakeLambdaApi]:
    fake = FakeLambdaApi()
    yield fake
    fake.close()


def registered_client(api: FakeLambdaApi) -> ExtensionsApiClient:
    api.respond("POST", REGISTER, 200, json.dumps(REGISTER_INFO).encode(), {"Lambda-Extension-Identifier": EXTENSION_ID})
    client = ExtensionsApiClient(api.address, "telemetry-ext")
    client.register()
    api.next_request()
    return client


def test_register_sends_name_and_events(api: FakeLambdaApi) -> None:
    api.respond("POST", REGISTER, 200, json.dumps(REGISTER_INFO).encode(), {"Lambda-Extension-Identifier": EXTENSION_ID})
    client = ExtensionsApiClient(api.address, "telemetry-ext")

    client.register()
    request = api.next_request()

    assert request.method == "POST"
    assert request.path == REGISTER
    assert request.headers["lambda-extension-name"] == "telemetry-ext"
    assert json.loads(request.body) == {"events": ["INVOKE", "SHUTDOWN"]}


def test_register_without_events_sends_empty_list(api: FakeLambdaApi) -> None:
    api.respond("POST", REGISTER, 200, b"{}", {"Lambda-Extension-Identifier": EXTENSION_ID})
    client = ExtensionsApiClient(api.address, "telemetry-ext")

    client.register(events=())
    request = api.next_request()

    assert json.loads(request.body) == {"events": []}


def test_register_keeps_identifier_and_function(api: FakeLambdaApi) -> None:
    api.respond("POST", REGISTER, 200, json.dumps(REGISTER_INFO).encode(), {"Lambda-Extension-Identifier": EXTENSION_ID})
    client = ExtensionsApiClient(api.address, "telemetry-ext")

    info = client.register()

    assert info == REGISTER_INFO
    assert client.extension_id == EXTENSION_ID
    assert client.function_name == "orders"
    assert client.function_version == "$LATEST"


def test_register_tolerates_non_json_body(api: FakeLambdaApi) -> None:
    api.respond("POST", REGISTER, 200, b"not json", {"Lambda-Extension-Identifier": EXTENSION_ID})
    client = ExtensionsApiClient(api.address, "telemetry-ext")

    info = client.register()

    assert info == {}
    assert client.extension_id == EXTENSION_ID


def test_register_403_raises_rejected(api: FakeLambdaApi) -> None:
    error_body = {"errorMessage": "Extension name mismatch", "errorType": "Extension.InvalidExtensionName"}
    api.respond("POST", REGISTER, 403, json.dumps(error_body).encode())
    client = ExtensionsApiClient(api.address, "telemetry-ext")

    with pytest.raises(RegistrationRejected) as caught:
        client.register()

    assert caught.value.status == 403
    assert caught.value.error_type == "Extension.InvalidExtensionName"
    assert "Extension name mismatch" in str(caught.value)
    assert client.extension_id is None


def test_register_error_without_type_reads_cleanly(api: FakeLambdaApi) -> None:
    api.respond("POST", REGISTER, 500, b"internal  failure")
    client = ExtensionsApiClient(api.address, "telemetry-ext")

    with pytest.raises(RegistrationRejected) as caught:
        client.register()

    assert str(caught.value) == "register returned HTTP 500: internal  failure"
    assert caught.value.error_type is None


def test_register_missing_identifier_raises(api: FakeLambdaApi) -> None:
    api.respond("POST", REGISTER, 200, json.dumps(REGISTER_INFO).encode())
    client = ExtensionsApiClient(api.address, "telemetry-ext")

    with pytest.raises(RegistrationRejected, match="Lambda-Extension-Identifier"):
        client.register()

    assert client.extension_id is None


def test_next_event_returns_event(api: FakeLambdaApi) -> None:
    client = registered_client(api)
    event = {"eventType": "INVOKE", "requestId": "req-1", "deadlineMs": 1_700_000_000_000}
    api.respond("GET", NEXT, 200, json.dumps(event).encode())

    received = client.next_event()

    assert received == event


def test_next_event_sends_identifier(api: FakeLambdaApi) -> None:
    client = registered_client(api)
    api.respond("GET", NEXT, 200, b'{"eventType": "SHUTDOWN", "shutdownReason": "spindown"}')

    client.next_event()
    request = api.next_request()

    assert request.method == "GET"
    assert request.path == NEXT
    assert request.headers["lambda-extension-identifier"] == EXTENSION_ID


def test_next_event_non_json_raises(api: FakeLambdaApi) -> None:
    client = registered_client(api)
    api.respond("GET", NEXT, 200, b"<html>oops</html>")

    with pytest.raises(LambdaApiError, match="not JSON"):
        client.next_event()


def test_next_event_json_array_raises(api: FakeLambdaApi) -> None:
    client = registered_client(api)
    api.respond("GET", NEXT, 200, b"[1, 2]")

    with pytest.raises(LambdaApiError, match="not an object"):
        client.next_event()


def test_next_event_error_status_raises(api: FakeLambdaApi) -> None:
    client = registered_client(api)
    api.respond("GET", NEXT, 500, b'{"errorMessage": "boom", "errorType": "Extension.Unknown"}')

    with pytest.raises(LambdaApiError) as caught:
        client.next_event()

    assert caught.value.status == 500
    assert caught.value.error_type == "Extension.Unknown"


def test_next_event_unregistered_raises(api: FakeLambdaApi) -> None:
    client = ExtensionsApiClient(api.address, "telemetry-ext")

    with pytest.raises(LambdaApiError, match="not registered"):
        client.next_event()


def test_report_error_sends_type_header(api: FakeLambdaApi) -> None:
    client = registered_client(api)
    api.respond("POST", "/2020-01-01/extension/init/error", 202, b"{}")

    client.report_error("init", "Extension.ConfigInvalid", "bad config")
    request = api.next_request()

    assert request.headers["lambda-extension-function-error-type"] == "Extension.ConfigInvalid"
    assert request.headers["lambda-extension-identifier"] == EXTENSION_ID
    assert json.loads(request.body) == {"errorMessage": "bad config", "errorType": "Extension.ConfigInvalid"}

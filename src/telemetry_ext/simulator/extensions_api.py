"""Extensions API (2020-01-01) and Telemetry API (2022-07-01) methods of the sandbox: register,
event/next, the subscription and the error reports of extensions."""

from __future__ import annotations

import json
import queue
import time
import uuid
from typing import Optional

from telemetry_ext.simulator.state import ApiError, ExtensionState


class ExtensionsApiMixin:
    """The Extensions and Telemetry API methods of `Sandbox`, which api.py calls from its server
    threads.

    They work on the state that `Sandbox.__init__` sets up, so the class serves only as a base
    class of `Sandbox`.
    """

    def register(self, name: Optional[str], body: bytes) -> tuple[str, dict]:
        if not name:
            raise ApiError(403, "Extension.InvalidExtensionName", "Empty extension name")
        try:
            parsed = json.loads(body or b"null")
        except ValueError as error:
            raise ApiError(403, "InvalidRequestFormat", str(error)) from None
        if not isinstance(parsed, dict):
            raise ApiError(403, "InvalidRequestFormat", "request body must be a JSON object")
        if "configurationKeys" in parsed:
            raise ApiError(403, "InvalidRequestFormat", "configurationKeys are deprecated; use environment variables instead")
        events = parsed.get("events", [])
        if not isinstance(events, list):
            raise ApiError(403, "InvalidRequestFormat", "events must be an array")
        for event in events:
            if event not in ("INVOKE", "SHUTDOWN"):
                raise ApiError(403, "Extension.InvalidEventType", f"{event}: invalid event type")
        with self._lock:
            if self._registrations_rejected < self.options.reject_registrations:
                self._registrations_rejected += 1
                raise ApiError(403, "Extension.InvalidExtensionState", "registration rejected by the simulator's fault injection")
            extension = self.extensions.get(name)
            if extension is None:
                if not self.registration_open:
                    raise ApiError(403, "Extension.RegistrationClosed", "Extension registration closed already")
                if "SHUTDOWN" in events:
                    raise ApiError(403, "Extension.InvalidEventType", "SHUTDOWN: not supported for internal extensions")
                raise ApiError(403, "Extension.InvalidExtensionState", f"{name} is not an executable in /opt/extensions")
            if extension.registered_at is not None:
                raise ApiError(
                    403,
                    "Extension.InvalidExtensionState",
                    f"State transition from Registered to Registered failed for extension {name}",
                )
            if not self.registration_open:
                raise ApiError(403, "Extension.RegistrationClosed", "Extension registration closed already")
            extension.identifier = str(uuid.uuid4())
            extension.events = tuple(events)
            extension.registered_at = time.monotonic()
            self._by_id[extension.identifier] = extension
            self._lock.notify_all()
        info = {"functionName": self.options.function_name, "functionVersion": "$LATEST", "handler": self.options.handler}
        return extension.identifier, info

    def extension_by_id(self, identifier: Optional[str]) -> ExtensionState:
        if not identifier:
            raise ApiError(403, "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
        try:
            uuid.UUID(identifier)
        except ValueError:
            raise ApiError(403, "Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier") from None
        extension = self._by_id.get(identifier)
        if extension is None:
            raise ApiError(403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {identifier}")
        return extension

    def next_event(self, identifier: Optional[str]) -> dict:
        extension = self.extension_by_id(identifier)
        now = time.monotonic()
        with self._lock:
            extension.next_calls.append(now)
            if extension.first_next_at is None:
                extension.first_next_at = now
            invocation = self.current
            if invocation is not None and "INVOKE" in extension.events and extension.name not in invocation.extension_done_ms:
                reference = invocation.runtime_done_at
                extension.waiting.set()
                # An extension that finished before the runtime added no time after it.
                invocation.extension_done_ms[extension.name] = max(0.0, (now - reference) * 1000) if reference else 0.0
            extension.waiting.set()
            self._lock.notify_all()
        while not self._closing.is_set():
            try:
                event = extension.events_queue.get(timeout=0.5)
            except queue.Empty:
                continue
            extension.waiting.clear()
            if event is None:
                break
            return event
        raise ApiError(500, "Sandbox.Closed", "the sandbox is closed")

    def subscribe_telemetry(self, identifier: Optional[str], body: bytes) -> int:
        extension = self.extension_by_id(identifier)
        if not self.options.telemetry_supported:
            return 202
        if extension.first_next_at is not None or self.phase != "init":
            raise ApiError(403, "Telemetry.SubscriptionClosed", "Telemetry API subscription is closed")
        try:
            parsed = json.loads(body)
        except ValueError as error:
            raise ApiError(400, "ValidationError", f"invalid JSON: {error}") from None
        from telemetry_ext.simulator.telemetry import SubscriptionError

        try:
            self.hub.subscribe(extension.name, parsed)
        except SubscriptionError as error:
            raise ApiError(error.status, error.error_type, str(error)) from None
        extension.subscribed = True
        return 200

    def extension_error(self, identifier: Optional[str], kind: str, error_type: Optional[str]) -> None:
        extension = self.extension_by_id(identifier)
        if not error_type:
            raise ApiError(403, "Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found")
        self.crashes.append(f"{extension.name} reported {kind} error {error_type}")

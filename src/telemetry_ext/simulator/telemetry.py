"""The Telemetry API side of the simulator: subscriptions, buffering and delivery.

Each subscriber gets its own buffer and a ``sim-telemetry-<name>`` thread that POSTs JSON
arrays to ``127.0.0.1:<port>`` when the subscription's ``timeoutMs`` has passed since the
first buffered event, or ``maxItems``/``maxBytes`` is reached. Like Lambda, nothing is POSTed
while the sandbox is frozen. Like the newer AWS emulator, one batch is in flight at a time; a
POST that fails or takes longer than ``delivery_timeout_s`` loses its batch, and the loss is
reported to that subscriber as ``platform.logsDropped``.

Events broadcast during init are kept and replayed to subscribers that subscribe later, as
Lambda does.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from telemetry_ext.simulator.clock import iso_time

logger = logging.getLogger(__name__)

SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13", "2025-01-29")
TYPES = ("platform", "function", "extension")
BUFFERING_RULES = {
    "maxItems": (1_000, 10_000, 10_000),
    "maxBytes": (262_144, 1_048_576, 262_144),
    "timeoutMs": (25, 30_000, 1_000),
}
SANDBOX_HOSTS = ("sandbox.localdomain", "sandbox")


class SubscriptionError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


@dataclass
class Subscriber:
    name: str
    types: tuple[str, ...]
    port: int
    max_items: int
    max_bytes: int
    timeout_ms: int
    events: list[tuple[dict, int]] = field(default_factory=list)  # (event, encoded size)
    first_buffered_at: Optional[float] = None
    posts: int = 0
    delivered_events: int = 0
    dropped_events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    post_lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)


def validate_subscription(body: Any) -> tuple[tuple[str, ...], int, dict[str, int]]:
    """Check a subscription body like the Telemetry API does; return types, port and buffering."""
    if not isinstance(body, dict):
        raise SubscriptionError(400, "ValidationError", "request body must be a JSON object")
    if body.get("schemaVersion") not in SCHEMA_VERSIONS:
        raise SubscriptionError(400, "ValidationError", f"schemaVersion must be one of {', '.join(SCHEMA_VERSIONS)}")
    types = body.get("types")
    if not isinstance(types, list) or not types or any(t not in TYPES for t in types):
        raise SubscriptionError(400, "ValidationError", "types should be a non-empty subset of platform, function, extension")
    buffering_in = body.get("buffering") or {}
    if not isinstance(buffering_in, dict):
        raise SubscriptionError(400, "ValidationError", "buffering must be an object")
    buffering: dict[str, int] = {}
    for key, (minimum, maximum, default) in BUFFERING_RULES.items():
        value = buffering_in.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            raise SubscriptionError(400, "ValidationError", f"buffering.{key} must be an integer from {minimum} to {maximum}")
        buffering[key] = value
    destination = body.get("destination")
    if not isinstance(destination, dict) or destination.get("protocol") != "HTTP":
        raise SubscriptionError(400, "ValidationError", "destination.protocol must be HTTP")
    uri = destination.get("URI")
    if not isinstance(uri, str) or not uri.startswith("http://"):
        raise SubscriptionError(400, "ValidationError", "destination.URI must be an http:// URI")
    host_port = uri[len("http://"):].split("/", 1)[0]
    host, _, port_text = host_port.rpartition(":")
    if host not in SANDBOX_HOSTS:
        raise SubscriptionError(400, "ValidationError", "destination.URI host must be sandbox.localdomain")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65_535 or int(port_text) == 9001:
        raise SubscriptionError(400, "ValidationError", "URI port is not provided or is reserved")
    return tuple(types), int(port_text), buffering


class TelemetryHub:
    """Receives every telemetry event of the sandbox and delivers it to the subscribers."""

    def __init__(self, delivery_timeout_s: float = 1.0, split_records_over_max_bytes: bool = False) -> None:
        self._subscribers: dict[str, Subscriber] = {}
        self._lock = threading.Lock()
        self._init_events: list[dict] = []
        self._init_open = True
        self._frozen = threading.Event()
        self._thawed = threading.Event()
        self._thawed.set()
        self._closed = threading.Event()
        self.delivery_timeout_s = delivery_timeout_s
        self.split_records_over_max_bytes = split_records_over_max_bytes
        # Fault injection: this many batches are lost and reported as platform.logsDropped.
        self.drop_batches = 0
        self.broadcast_count = 0

    # --- subscriptions -----------------------------------------------------------------------

    def subscribe(self, name: str, body: Any) -> None:
        types, port, buffering = validate_subscription(body)
        with self._lock:
            if name in self._subscribers:
                raise SubscriptionError(400, "ValidationError", f"extension {name} is already subscribed")
            subscriber = Subscriber(name, types, port, buffering["maxItems"], buffering["maxBytes"], buffering["timeoutMs"])
            self._subscribers[name] = subscriber
            replay = list(self._init_events)
        for event in replay:
            if _category(event["type"]) in subscriber.types:
                self._enqueue(subscriber, event)
        threading.Thread(target=self._deliver_loop, args=(subscriber,), name=f"sim-telemetry-{name}", daemon=True).start()
        self.broadcast(
            "platform.telemetrySubscription",
            {"name": name, "state": "Subscribed", "types": list(types)},
        )

    def close_init(self) -> None:
        with self._lock:
            self._init_open = False
            self._init_events.clear()

    # --- events ------------------------------------------------------------------------------

    def broadcast(self, event_type: str, record: Any, event_time: Optional[str] = None) -> None:
        event = {"time": event_time or iso_time(), "type": event_type, "record": record}
        category = _category(event_type)
        with self._lock:
            self.broadcast_count += 1
            if self._init_open:
                self._init_events.append(event)
            subscribers = [s for s in self._subscribers.values() if category in s.types]
        for subscriber in subscribers:
            self._enqueue(subscriber, event)

    def _enqueue(self, subscriber: Subscriber, event: dict) -> None:
        size = len(json.dumps(event, ensure_ascii=False).encode("utf-8", "replace"))
        with subscriber.lock:
            if subscriber.first_buffered_at is None:
                subscriber.first_buffered_at = time.monotonic()
            subscriber.events.append((event, size))
        subscriber.wake.set()

    # --- freezing ----------------------------------------------------------------------------

    def freeze(self) -> None:
        """Stop deliveries; returns once no POST is in flight."""
        self._thawed.clear()
        self._frozen.set()
        for subscriber in list(self._subscribers.values()):
            with subscriber.post_lock:
                pass

    def thaw(self) -> None:
        self._frozen.clear()
        self._thawed.set()
        for subscriber in list(self._subscribers.values()):
            subscriber.wake.set()

    def flush(self, timeout_s: float) -> bool:
        """Wake every subscriber now and wait until their buffers are empty or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        for subscriber in list(self._subscribers.values()):
            with subscriber.lock:
                subscriber.first_buffered_at = 0.0
            subscriber.wake.set()
        while time.monotonic() < deadline:
            if all(not s.events for s in list(self._subscribers.values())):
                return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        self._closed.set()
        self._thawed.set()
        for subscriber in list(self._subscribers.values()):
            subscriber.wake.set()

    @property
    def subscribers(self) -> list[Subscriber]:
        return list(self._subscribers.values())

    # --- delivery ----------------------------------------------------------------------------

    def _deliver_loop(self, subscriber: Subscriber) -> None:
        connection: Optional[http.client.HTTPConnection] = None
        while not self._closed.is_set():
            batch = self._next_batch(subscriber)
            if batch is None:
                continue
            connection = self._deliver_when_thawed(subscriber, batch, connection)

    def _deliver_when_thawed(
        self, subscriber: Subscriber, batch: list[tuple[dict, int]], connection: Optional[http.client.HTTPConnection]
    ) -> Optional[http.client.HTTPConnection]:
        while not self._closed.is_set():
            self._thawed.wait()
            with subscriber.post_lock:
                if self._frozen.is_set():
                    continue
                if self.drop_batches > 0 and not _only_drop_notices(batch):
                    # Fault injection: lose the batch as if the subscriber had not responded.
                    self.drop_batches -= 1
                    subscriber.dropped_events += len(batch)
                    self._report_dropped(subscriber, batch)
                    return connection
                bodies = self._bodies(subscriber, batch)
                for body in bodies:
                    ok, connection = self._post(subscriber, body, connection)
                    if not ok:
                        subscriber.dropped_events += len(batch)
                        self._report_dropped(subscriber, batch)
                        return connection
                    subscriber.posts += 1
                subscriber.delivered_events += len(batch)
                return connection
        return connection

    def _next_batch(self, subscriber: Subscriber) -> Optional[list[tuple[dict, int]]]:
        with subscriber.lock:
            first = subscriber.first_buffered_at
        wait_s = 0.5 if first is None else max(0.0, first + subscriber.timeout_ms / 1000.0 - time.monotonic())
        subscriber.wake.wait(wait_s)
        subscriber.wake.clear()
        with subscriber.lock:
            if not subscriber.events or subscriber.first_buffered_at is None:
                return None
            age_ms = (time.monotonic() - subscriber.first_buffered_at) * 1000
            total_bytes = sum(size for _, size in subscriber.events)
            if age_ms < subscriber.timeout_ms and len(subscriber.events) < subscriber.max_items and total_bytes < subscriber.max_bytes:
                return None
            batch: list[tuple[dict, int]] = []
            batch_bytes = 0
            while subscriber.events and len(batch) < subscriber.max_items:
                event, size = subscriber.events[0]
                if batch and batch_bytes + size > subscriber.max_bytes:
                    break
                batch.append(subscriber.events.pop(0))
                batch_bytes += size
            subscriber.first_buffered_at = time.monotonic() if subscriber.events else None
            if subscriber.events:
                subscriber.wake.set()
            return batch

    def _bodies(self, subscriber: Subscriber, batch: list[tuple[dict, int]]) -> list[bytes]:
        body = json.dumps([event for event, _ in batch], ensure_ascii=False).encode("utf-8", "replace")
        if self.split_records_over_max_bytes and len(body) > subscriber.max_bytes:
            # Fault injection: a batch holding a record larger than maxBytes is cut in two POSTs.
            middle = len(body) // 2
            return [body[:middle], body[middle:]]
        return [body]

    def _post(
        self, subscriber: Subscriber, body: bytes, connection: Optional[http.client.HTTPConnection]
    ) -> tuple[bool, Optional[http.client.HTTPConnection]]:
        for attempt in range(2):
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", subscriber.port, timeout=self.delivery_timeout_s)
            try:
                connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.will_close:
                    connection.close()
                    connection = None
                return 200 <= response.status < 300, connection
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = None
                # A keep-alive connection the listener closed while idle fails once; retry on a new one.
                if attempt == 0 and isinstance(error, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    continue
                logger.debug("telemetry POST to %s failed: %s", subscriber.name, error)
                return False, None
        return False, connection

    def _report_dropped(self, subscriber: Subscriber, batch: list[tuple[dict, int]]) -> None:
        dropped_bytes = sum(size for _, size in batch)
        event = {
            "time": iso_time(),
            "type": "platform.logsDropped",
            "record": {
                "droppedBytes": dropped_bytes,
                "droppedRecords": len(batch),
                "reason": "Consumer seems to have fallen behind as it has not acknowledged receipt of logs.",
            },
        }
        if "platform" in subscriber.types:
            self._enqueue(subscriber, event)


def _category(event_type: str) -> str:
    """Return the subscription type (platform, function or extension) of an event type."""
    return "platform" if event_type.startswith("platform.") else event_type


def _only_drop_notices(batch: list[tuple[dict, int]]) -> bool:
    return all(event.get("type") == "platform.logsDropped" for event, _ in batch)

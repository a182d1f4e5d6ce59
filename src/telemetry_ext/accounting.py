"""Counts of telemetry events: received, delivered, dropped by reason, and still buffered.

The invariant ``received == delivered + sum(dropped) + buffered`` holds whenever the lock is
released; every method that moves events between the counters does so in one step.

With several destinations, an event counts as delivered once at least one destination took
it; what each other destination failed to take is counted apart in ``undelivered``, keyed
``<destination>:<reason>``, outside the invariant.
"""

from __future__ import annotations

import threading
from typing import Any


class Accounting:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.delivered = 0
        self.buffered = 0
        self.dropped: dict[str, int] = {}
        self.undelivered: dict[str, int] = {}

    def receive(self, count: int) -> None:
        with self._lock:
            self.received += count
            self.buffered += count

    def deliver(self, count: int) -> None:
        with self._lock:
            self.buffered -= count
            self.delivered += count

    def drop(self, count: int, reason: str, buffered: bool = True) -> None:
        """Count ``count`` events as dropped; ``buffered=False`` for events never received before."""
        if count <= 0:
            return
        with self._lock:
            if buffered:
                self.buffered -= count
            else:
                self.received += count
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def note_undelivered(self, count: int, destination: str, reason: str) -> None:
        """Count events one destination did not take although another one did."""
        if count <= 0:
            return
        key = f"{destination}:{reason}"
        with self._lock:
            self.undelivered[key] = self.undelivered.get(key, 0) + count

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": self.received,
                "delivered": self.delivered,
                "buffered": self.buffered,
                "dropped": dict(self.dropped),
                "undelivered": dict(self.undelivered),
            }

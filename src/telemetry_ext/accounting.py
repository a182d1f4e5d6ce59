"""Counts of telemetry events: received, delivered, dropped by reason, and still buffered.

The invariant ``received == delivered + sum(dropped) + buffered`` holds whenever the lock is
released; every method that moves events between the counters does so in one step.
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

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": self.received,
                "delivered": self.delivered,
                "buffered": self.buffered,
                "dropped": dict(self.dropped),
            }

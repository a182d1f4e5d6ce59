"""The contract every destination implements.

An exporter makes one attempt per call and never retries by itself: the delivery loop owns
retries, backoff and deadlines, so that a SHUTDOWN can cut every destination short the same way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Optional, Protocol

Record = dict[str, Any]


class Outcome(enum.Enum):
    """Outcome of one export attempt."""

    SENT = "sent"
    # Sending the same batch again may work. An exporter that sends a batch in parts (OTLP, one
    # request per signal) remembers which parts were taken, so a retry of the same list sends
    # only the rest; a new list built from the same records may send a part twice.
    RETRYABLE = "retryable"
    REJECTED = "rejected"  # The destination refused the batch for good; do not send it again.


@dataclass(frozen=True)
class ExportResult:
    """The outcome of one attempt, as the delivery loop needs it.

    `rejected_count` is how many records the destination refused for good while accepting the
    rest (OTLP partial success); those are counted as dropped and never sent again.
    `retry_after_s` is the server's `Retry-After`, in seconds, when it sent one.
    """

    outcome: Outcome
    detail: str = ""
    retry_after_s: Optional[float] = None
    rejected_count: int = 0


class Exporter(Protocol):
    """A destination. `export` must return within `timeout_s` seconds, whatever the backend does."""

    name: str

    def export(self, records: list[Record], timeout_s: float) -> ExportResult: ...

    def close(self) -> None: ...

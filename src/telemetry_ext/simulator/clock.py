"""Time helpers shared by the simulator modules."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def iso_time(epoch_s: float | None = None) -> str:
    """Format like the Telemetry API: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    moment = datetime.fromtimestamp(time.time() if epoch_s is None else epoch_s, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms() -> int:
    return int(time.time() * 1000)

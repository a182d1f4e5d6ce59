"""The retry policy that the delivery loop applies to every destination.

Exporters make one attempt per call (see `exporters.base`). This module decides which outcomes
may be retried, how long to wait between attempts and when to give up.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import timezone
from typing import Callable, Iterable, Optional

from telemetry_ext.exporters.base import ExportResult, Outcome

logger = logging.getLogger(__name__)

# Plain HTTP: request timeout, throttling and every server error.
HTTP_RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, *range(500, 600)})

# OTLP/HTTP allows retries on these four only. Every other 4xx or 5xx "MUST NOT be retried"
# (opentelemetry-proto, docs/specification.md, "Retryable Response Codes").
OTLP_RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})

# send_with_retry does not start an attempt with less time than this left before the deadline,
# because a request with so short a timeout would almost surely time out.
MIN_ATTEMPT_TIMEOUT_S = 0.010

_DELAY_SECONDS = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry limits and backoff, shared by every destination.

    The wait before attempt n+1 is `initial_backoff_s * multiplier ** (n - 1)`, capped at
    `max_backoff_s`, then scaled by a random factor in `[1 - jitter, 1]`. A server's
    Retry-After replaces that wait, capped at `max_retry_after_s`. `attempt_timeout_s` caps the
    timeout of one attempt. None lets an attempt use all the time left before the deadline.
    """

    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_retry_after_s: float = 5.0
    retryable_statuses: frozenset[int] = HTTP_RETRYABLE_STATUSES
    attempt_timeout_s: Optional[float] = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not 0 <= self.initial_backoff_s <= self.max_backoff_s:
            raise ValueError(
                "backoffs must satisfy 0 <= initial_backoff_s <= max_backoff_s, got "
                f"{self.initial_backoff_s} and {self.max_backoff_s}"
            )
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")
        if self.max_retry_after_s < 0:
            raise ValueError(f"max_retry_after_s must not be negative, got {self.max_retry_after_s}")
        if self.attempt_timeout_s is not None and self.attempt_timeout_s <= 0:
            raise ValueError(f"attempt_timeout_s must be positive or None, got {self.attempt_timeout_s}")
        # Accept any iterable of ints, but store a frozenset so that the policy stays immutable.
        object.__setattr__(self, "retryable_statuses", frozenset(self.retryable_statuses))

    @classmethod
    def otlp(cls) -> RetryPolicy:
        """Return the default policy with the statuses that OTLP/HTTP allows to retry."""
        return cls(retryable_statuses=OTLP_RETRYABLE_STATUSES)

    def with_statuses(self, statuses: Iterable[int]) -> RetryPolicy:
        """Return a copy of this policy that retries exactly `statuses`."""
        return dataclasses.replace(self, retryable_statuses=frozenset(statuses))

    def is_retryable_status(self, status: int) -> bool:
        return status in self.retryable_statuses

    def backoff_s(
        self,
        attempt: int,
        retry_after_s: Optional[float] = None,
        rng: Optional[random.Random] = None,
    ) -> float:
        """Return the wait in seconds after failed attempt number `attempt` (1 for the first).

        A server's `retry_after_s` is used as is, without jitter, after clamping it to
        `[0, max_retry_after_s]`. `rng` defaults to the `random` module.
        """
        if attempt < 1:
            raise ValueError(f"attempt counts from 1, got {attempt}")

        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_retry_after_s)

        try:
            delay_s = self.initial_backoff_s * self.multiplier ** (attempt - 1)
        except OverflowError:
            delay_s = self.max_backoff_s
        delay_s = min(delay_s, self.max_backoff_s)

        source = rng if rng is not None else random
        return delay_s * source.uniform(1.0 - self.jitter, 1.0)


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Parse a Retry-After header into seconds from `now` (Unix time, default the current time).

    The header contains either delay-seconds or an HTTP-date such as
    `Wed, 21 Oct 2015 07:28:00 GMT`. A decimal fraction is accepted too. A negative delay or a
    date in the past gives 0. A missing or invalid value gives None.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None

    if _DELAY_SECONDS.fullmatch(text):
        return max(float(text), 0.0)

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # The "-0000" zone gives a naive datetime, and its time is UTC.
        when = when.replace(tzinfo=timezone.utc)

    current_s = time.time() if now is None else now
    seconds = when.timestamp() - current_s
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def http_status_outcome(status: int, policy: RetryPolicy) -> Outcome:
    """Map an HTTP status to an outcome: 2xx is SENT, a status the policy retries is RETRYABLE.

    Every other status, 1xx and 3xx included, is REJECTED.
    """
    if 200 <= status <= 299:
        return Outcome.SENT
    if policy.is_retryable_status(status):
        return Outcome.RETRYABLE
    return Outcome.REJECTED


# Why retrying is safe enough. An exporter returns RETRYABLE only when the destination did not
# take the batch, or may not have:
# - A connection error or connect timeout means the request never reached the server, so a
#   retry cannot duplicate anything.
# - A 5xx or 429 (or, for OTLP, 429/502/503/504) means the server did not accept the batch.
# - A read timeout means the server may have received and stored the batch before the response
#   was lost. A retry can then deliver it twice, as can a server that stored the batch and
#   still returned a 5xx. The extension accepts this: delivery is at-least-once, not
#   exactly-once, and destinations that need exactly-once must deduplicate.
# - An exporter that sends a batch in several requests (OTLP: one per signal) resends only
#   the requests that did not succeed, so a retry does not duplicate the parts already sent.
# REJECTED is never retried, because the same bytes would get the same response.
def send_with_retry(
    send: Callable[[float], ExportResult],
    policy: RetryPolicy,
    deadline: float,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    rng: Optional[random.Random] = None,
) -> tuple[ExportResult, int]:
    """Call `send(timeout_s)` until it succeeds or must give up, and return the last result
    and the number of attempts.

    `deadline` is a time on `clock`. Each attempt gets the time left before it, capped at
    `policy.attempt_timeout_s`. The loop stops after SENT or REJECTED, after
    `policy.max_attempts` attempts, when the next wait would end within MIN_ATTEMPT_TIMEOUT_S
    of the deadline, or once `stop` is set. `stop.wait` does the waiting, so setting `stop`
    ends a wait at once. The first attempt is made even if `stop` is already set, so a final
    flush still gets one try. When less than MIN_ATTEMPT_TIMEOUT_S is left before the first
    attempt, `send` is never called and the result is RETRYABLE with 0 attempts.
    Exceptions from `send` propagate.
    """
    result = ExportResult(Outcome.RETRYABLE, "deadline reached")
    attempts = 0

    while True:
        remaining_s = deadline - clock()
        if remaining_s < MIN_ATTEMPT_TIMEOUT_S:
            return result, attempts

        timeout_s = remaining_s
        if policy.attempt_timeout_s is not None:
            timeout_s = min(timeout_s, policy.attempt_timeout_s)

        result = send(timeout_s)
        attempts += 1

        if result.outcome is not Outcome.RETRYABLE:
            return result, attempts
        if attempts >= policy.max_attempts:
            return result, attempts
        if stop.is_set():
            return result, attempts

        delay_s = policy.backoff_s(attempts, result.retry_after_s, rng)
        if clock() + delay_s + MIN_ATTEMPT_TIMEOUT_S > deadline:
            return result, attempts

        logger.info(
            "export attempt %d of %d failed (%s); retrying in %.3f s",
            attempts,
            policy.max_attempts,
            result.detail,
            delay_s,
        )
        if stop.wait(delay_s):
            return result, attempts

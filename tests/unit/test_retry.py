"""Tests of the retry policy and the retry loop, with a seeded rng, a fake clock and fake stops."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Optional

import pytest

from telemetry_ext.exporters.base import ExportResult, Outcome
from telemetry_ext.retry import (
    HTTP_RETRYABLE_STATUSES,
    MIN_ATTEMPT_TIMEOUT_S,
    OTLP_RETRYABLE_STATUSES,
    RetryPolicy,
    http_status_outcome,
    parse_retry_after,
    send_with_retry,
)

NOW_S = 1_700_000_000.0


class FakeClock:
    """A monotonic clock that moves only when a test or a fake advances it."""

    def __init__(self, start_s: float = 100.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class FakeStop:
    """A stand-in for threading.Event: wait() records the delay and advances the fake clock.

    `stop_on_wait` makes wait() return True, as if SHUTDOWN arrived during the backoff.
    """

    def __init__(self, clock: FakeClock, stop_on_wait: bool = False, already_set: bool = False) -> None:
        self.clock = clock
        self.stop_on_wait = stop_on_wait
        self.already_set = already_set
        self.waits_s: list[float] = []

    def is_set(self) -> bool:
        return self.already_set

    def wait(self, timeout: Optional[float] = None) -> bool:
        assert timeout is not None
        self.waits_s.append(timeout)
        if self.stop_on_wait:
            self.already_set = True
            return True
        self.clock.advance(timeout)
        return False


class FakeSend:
    """Returns the scripted results in order and records each timeout it was called with.

    Each call advances the clock by `duration_s`, or by its timeout if that is shorter, like a
    request that takes that long.
    """

    def __init__(self, clock: FakeClock, results: list[ExportResult], duration_s: float = 0.0) -> None:
        self.clock = clock
        self.results = list(results)
        self.duration_s = duration_s
        self.timeouts_s: list[float] = []

    def __call__(self, timeout_s: float) -> ExportResult:
        self.timeouts_s.append(timeout_s)
        self.clock.advance(min(self.duration_s, timeout_s))
        return self.results[min(len(self.timeouts_s), len(self.results)) - 1]


RETRYABLE = ExportResult(Outcome.RETRYABLE, "HTTP 503")
SENT = ExportResult(Outcome.SENT, "HTTP 200")
REJECTED = ExportResult(Outcome.REJECTED, "HTTP 400")


# ---- RetryPolicy -----------------------------------------------------------------------------


def test_policy_defaults() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 5
    assert policy.initial_backoff_s == 0.1
    assert policy.max_backoff_s == 2.0
    assert policy.multiplier == 2.0
    assert policy.jitter == 0.5
    assert policy.max_retry_after_s == 5.0
    assert policy.attempt_timeout_s is None


def test_policy_is_immutable() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 3  # type: ignore[misc]
    assert isinstance(policy.retryable_statuses, frozenset)


def test_policy_statuses_given_as_set_become_frozenset() -> None:
    policy = RetryPolicy(retryable_statuses={503})  # type: ignore[arg-type]
    assert policy.retryable_statuses == frozenset({503})
    assert isinstance(policy.retryable_statuses, frozenset)


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_attempts": 0},
        {"initial_backoff_s": -0.1},
        {"initial_backoff_s": 3.0, "max_backoff_s": 2.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"max_retry_after_s": -1.0},
        {"attempt_timeout_s": 0.0},
    ],
)
def test_policy_rejects_invalid_values(overrides: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**overrides)


def test_backoff_without_jitter_grows_and_caps() -> None:
    policy = RetryPolicy(jitter=0.0)
    delays = [policy.backoff_s(attempt) for attempt in range(1, 9)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])


def test_backoff_huge_attempt_stays_capped() -> None:
    policy = RetryPolicy(jitter=0.0, multiplier=10.0)
    assert policy.backoff_s(10_000) == 2.0


def test_backoff_jitter_within_bounds() -> None:
    policy = RetryPolicy()
    rng = random.Random(1234)
    for attempt in range(1, 8):
        full_s = min(0.1 * 2.0 ** (attempt - 1), 2.0)
        for _ in range(200):
            delay_s = policy.backoff_s(attempt, rng=rng)
            assert full_s * 0.5 <= delay_s <= full_s


def test_backoff_jitter_is_seeded() -> None:
    policy = RetryPolicy()
    first = [policy.backoff_s(3, rng=random.Random(7)) for _ in range(3)]
    second = [policy.backoff_s(3, rng=random.Random(7)) for _ in range(3)]
    assert first == second
    assert 0.2 <= first[0] <= 0.4


def test_backoff_uses_retry_after_without_jitter() -> None:
    policy = RetryPolicy()
    assert policy.backoff_s(1, retry_after_s=1.5, rng=random.Random(0)) == 1.5


def test_backoff_caps_retry_after() -> None:
    policy = RetryPolicy(max_retry_after_s=5.0)
    assert policy.backoff_s(1, retry_after_s=120.0) == 5.0


def test_backoff_clamps_negative_retry_after() -> None:
    assert RetryPolicy().backoff_s(1, retry_after_s=-3.0) == 0.0


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().backoff_s(0)


# ---- statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 501, 502, 503, 504, 599])
def test_http_policy_retries_status(status: int) -> None:
    assert RetryPolicy().is_retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 302])
def test_http_policy_rejects_status(status: int) -> None:
    assert not RetryPolicy().is_retryable_status(status)


def test_otlp_policy_statuses() -> None:
    policy = RetryPolicy.otlp()
    assert policy.retryable_statuses == frozenset({429, 502, 503, 504})
    assert OTLP_RETRYABLE_STATUSES == policy.retryable_statuses
    for status in (408, 500, 501, 505):
        assert not policy.is_retryable_status(status)


def test_with_statuses_returns_copy() -> None:
    policy = RetryPolicy(max_attempts=3)
    narrowed = policy.with_statuses([503])
    assert narrowed.retryable_statuses == frozenset({503})
    assert narrowed.max_attempts == 3
    assert policy.retryable_statuses == HTTP_RETRYABLE_STATUSES


@pytest.mark.parametrize(
    ("status", "http_outcome", "otlp_outcome"),
    [
        (200, Outcome.SENT, Outcome.SENT),
        (204, Outcome.SENT, Outcome.SENT),
        (408, Outcome.RETRYABLE, Outcome.REJECTED),
        (429, Outcome.RETRYABLE, Outcome.RETRYABLE),
        (500, Outcome.RETRYABLE, Outcome.REJECTED),
        (503, Outcome.RETRYABLE, Outcome.RETRYABLE),
        (400, Outcome.REJECTED, Outcome.REJECTED),
        (413, Outcome.REJECTED, Outcome.REJECTED),
        (301, Outcome.REJECTED, Outcome.REJECTED),
        (101, Outcome.REJECTED, Outcome.REJECTED),
    ],
)
def test_http_status_outcome(status: int, http_outcome: Outcome, otlp_outcome: Outcome) -> None:
    assert http_status_outcome(status, RetryPolicy()) is http_outcome
    assert http_status_outcome(status, RetryPolicy.otlp()) is otlp_outcome


# ---- parse_retry_after -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_s"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-5", 0.0),
    ],
)
def test_retry_after_seconds(value: str, expected_s: float) -> None:
    assert parse_retry_after(value, now=NOW_S) == expected_s


def test_retry_after_http_date_in_future() -> None:
    when = datetime.fromtimestamp(NOW_S + 30, tz=timezone.utc)
    header = format_datetime(when, usegmt=True)
    assert parse_retry_after(header, now=NOW_S) == pytest.approx(30.0)


def test_retry_after_http_date_in_past() -> None:
    when = datetime.fromtimestamp(NOW_S - 300, tz=timezone.utc)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW_S) == 0.0


def test_retry_after_literal_http_date() -> None:
    # Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 in Unix time.
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "1e3", "inf", "NaN", "1_000", "Wed, 99 Foo 2015"])
def test_retry_after_invalid_is_none(value: Optional[str]) -> None:
    assert parse_retry_after(value, now=NOW_S) is None


def test_retry_after_capped_by_policy() -> None:
    retry_after_s = parse_retry_after("3600", now=NOW_S)
    assert retry_after_s == 3600.0
    assert RetryPolicy().backoff_s(1, retry_after_s) == 5.0


# ---- send_with_retry -------------------------------------------------------------------------


def test_send_with_retry_first_success() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [SENT])
    result, attempts = send_with_retry(send, RetryPolicy(), clock() + 10.0, stop, clock=clock, rng=random.Random(1))
    assert result is SENT
    assert attempts == 1
    assert stop.waits_s == []
    assert send.timeouts_s == [pytest.approx(10.0)]


def test_send_with_retry_counts_attempts_until_sent() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [RETRYABLE, RETRYABLE, SENT])
    policy = RetryPolicy(jitter=0.0)
    result, attempts = send_with_retry(send, policy, clock() + 10.0, stop, clock=clock)
    assert result is SENT
    assert attempts == 3
    assert stop.waits_s == pytest.approx([0.1, 0.2])


def test_send_with_retry_stops_on_rejected() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [RETRYABLE, REJECTED, SENT])
    result, attempts = send_with_retry(send, RetryPolicy(jitter=0.0), clock() + 10.0, stop, clock=clock)
    assert result is REJECTED
    assert attempts == 2
    assert len(send.timeouts_s) == 2


def test_send_with_retry_exhausts_attempts() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [RETRYABLE])
    policy = RetryPolicy(max_attempts=4, jitter=0.0)
    result, attempts = send_with_retry(send, policy, clock() + 100.0, stop, clock=clock)
    assert result is RETRYABLE
    assert attempts == 4
    assert stop.waits_s == pytest.approx([0.1, 0.2, 0.4])


def test_send_with_retry_jittered_waits_within_bounds() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [RETRYABLE])
    send_with_retry(send, RetryPolicy(), clock() + 100.0, stop, clock=clock, rng=random.Random(42))
    assert len(stop.waits_s) == 4
    for attempt, wait_s in enumerate(stop.waits_s, start=1):
        full_s = 0.1 * 2.0 ** (attempt - 1)
        assert full_s * 0.5 <= wait_s <= full_s


def test_send_with_retry_timeout_is_time_left() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [RETRYABLE, SENT], duration_s=0.5)
    deadline = clock() + 2.0
    send_with_retry(send, RetryPolicy(jitter=0.0), deadline, stop, clock=clock)
    # Second attempt: 2.0 s - 0.5 s spent sending - 0.1 s backoff.
    assert send.timeouts_s == pytest.approx([2.0, 1.4])


def test_send_with_retry_caps_attempt_timeout() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [SENT])
    policy = RetryPolicy(attempt_timeout_s=0.75)
    send_with_retry(send, policy, clock() + 10.0, stop, clock=clock)
    assert send.timeouts_s == [0.75]


def test_send_with_retry_stops_before_deadline() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    # Each attempt takes 0.3 s, and the waits are 0.1, 0.2, 0.4 s.
    send = FakeSend(clock, [RETRYABLE], duration_s=0.3)
    deadline = clock() + 0.85
    result, attempts = send_with_retry(send, RetryPolicy(jitter=0.0), deadline, stop, clock=clock)
    assert result is RETRYABLE
    # 0.3 + 0.1 + 0.3 = 0.7 s spent. A 0.2 s wait would end after the 0.85 s deadline.
    assert attempts == 2
    assert stop.waits_s == pytest.approx([0.1])
    assert clock() <= deadline


def test_send_with_retry_skips_retry_after_past_deadline() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    throttled = ExportResult(Outcome.RETRYABLE, "HTTP 429", retry_after_s=4.0)
    send = FakeSend(clock, [throttled, SENT])
    result, attempts = send_with_retry(send, RetryPolicy(), clock() + 2.0, stop, clock=clock)
    assert result is throttled
    assert result.retry_after_s == 4.0
    assert attempts == 1
    assert stop.waits_s == []


def test_send_with_retry_honours_retry_after() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    throttled = ExportResult(Outcome.RETRYABLE, "HTTP 429", retry_after_s=1.25)
    send = FakeSend(clock, [throttled, SENT])
    result, attempts = send_with_retry(send, RetryPolicy(), clock() + 5.0, stop, clock=clock)
    assert result is SENT
    assert attempts == 2
    assert stop.waits_s == [1.25]


def test_send_with_retry_min_time_left() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [SENT])
    deadline = clock() + MIN_ATTEMPT_TIMEOUT_S / 2
    result, attempts = send_with_retry(send, RetryPolicy(), deadline, stop, clock=clock)
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail == "deadline reached"
    assert attempts == 0
    assert send.timeouts_s == []


def test_send_with_retry_past_deadline_sends_nothing() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    send = FakeSend(clock, [SENT])
    result, attempts = send_with_retry(send, RetryPolicy(), clock() - 1.0, stop, clock=clock)
    assert result.outcome is Outcome.RETRYABLE
    assert attempts == 0


def test_send_with_retry_stop_cuts_wait_short() -> None:
    clock = FakeClock()
    stop = FakeStop(clock, stop_on_wait=True)
    send = FakeSend(clock, [RETRYABLE, SENT])
    result, attempts = send_with_retry(send, RetryPolicy(jitter=0.0), clock() + 10.0, stop, clock=clock)
    assert result is RETRYABLE
    assert attempts == 1
    assert stop.waits_s == pytest.approx([0.1])


def test_send_with_retry_stop_already_set_tries_once() -> None:
    clock = FakeClock()
    stop = FakeStop(clock, already_set=True)
    send = FakeSend(clock, [RETRYABLE, SENT])
    result, attempts = send_with_retry(send, RetryPolicy(), clock() + 10.0, stop, clock=clock)
    assert result is RETRYABLE
    assert attempts == 1
    assert stop.waits_s == []


def test_send_with_retry_real_event_interrupts_wait() -> None:
    # A real Event, set by a timer thread while the loop waits out a 5 s Retry-After.
    stop = threading.Event()
    calls: list[float] = []

    def send(timeout_s: float) -> ExportResult:
        calls.append(timeout_s)
        return ExportResult(Outcome.RETRYABLE, "HTTP 503", retry_after_s=5.0)

    timer = threading.Timer(0.05, stop.set)
    timer.start()
    started_s = time.monotonic()
    try:
        result, attempts = send_with_retry(send, RetryPolicy(), time.monotonic() + 30.0, stop)
    finally:
        timer.cancel()
        timer.join(timeout=1.0)
    assert attempts == 1
    assert result.outcome is Outcome.RETRYABLE
    assert time.monotonic() - started_s < 2.0
    assert len(calls) == 1


def test_send_with_retry_propagates_send_errors() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)

    def send(timeout_s: float) -> ExportResult:
        raise RuntimeError("exporter bug")

    with pytest.raises(RuntimeError):
        send_with_retry(send, RetryPolicy(), clock() + 1.0, stop, clock=clock)

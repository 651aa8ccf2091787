"""The retry schedule and expiry arithmetic (RFC 5321 §4.5.4.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from courriel.delivery.schedule import expired, next_attempt

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SCHEDULE = (timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))


def test_each_attempt_takes_its_delay() -> None:
    assert next_attempt(1, SCHEDULE, NOW) == NOW + timedelta(minutes=5)
    assert next_attempt(2, SCHEDULE, NOW) == NOW + timedelta(minutes=15)
    assert next_attempt(3, SCHEDULE, NOW) == NOW + timedelta(hours=1)


def test_the_last_delay_repeats() -> None:
    assert next_attempt(4, SCHEDULE, NOW) == NOW + timedelta(hours=1)
    assert next_attempt(40, SCHEDULE, NOW) == NOW + timedelta(hours=1)


def test_zero_attempts_reads_as_first_and_empty_schedule_retries_now() -> None:
    assert next_attempt(0, SCHEDULE, NOW) == NOW + timedelta(minutes=5)
    assert next_attempt(3, (), NOW) == NOW


@given(st.integers(min_value=0, max_value=10_000))
def test_never_before_now_and_never_past_the_longest_delay(attempts: int) -> None:
    at = next_attempt(attempts, SCHEDULE, NOW)
    assert NOW + min(SCHEDULE) <= at <= NOW + max(SCHEDULE)


def test_expiry_counts_from_queueing() -> None:
    queued = NOW - timedelta(days=5)
    assert expired(queued, NOW, timedelta(days=5))
    assert not expired(queued + timedelta(seconds=1), NOW, timedelta(days=5))
    assert not expired(NOW, NOW, timedelta(days=5))
    assert expired(NOW, NOW, timedelta(0))

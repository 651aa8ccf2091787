"""Retry schedule and expiry of queued recipients: pure functions of an injected clock.

Owns the arithmetic of "when may this recipient be tried again" and "has this message
been queued too long". Nothing here reads the wall clock: the caller passes ``now``, so
tests drive time explicitly (a zero schedule retries at once).

Invariants: the last delay of a schedule repeats for every later attempt; an empty
schedule means "retry immediately"; expiry is measured from when the message was queued,
not from the last attempt (RFC 5321 §4.5.4.1: give up after 4-5 days in the queue).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

__all__ = ["expired", "next_attempt"]


def next_attempt(attempts: int, schedule: Sequence[timedelta], now: datetime) -> datetime:
    """When a recipient that just failed temporarily may be tried again.

    RFC 5321 §4.5.4.1: retries are spaced out, the interval growing (the config's
    ``delivery.retry_schedule``); once the schedule is exhausted its last delay repeats.

    Args:
        attempts: the number of attempts made so far, the one that just failed included
            (1 after the first failure selects ``schedule[0]``; 0 is read as 1).
        schedule: the delays between attempts, in order.
        now: the current time (timezone-aware).

    Returns:
        ``now`` plus the delay for this attempt; ``now`` when the schedule is empty.
    """
    if not schedule:
        return now
    index = min(max(attempts, 1), len(schedule)) - 1
    return now + schedule[index]


def expired(created_at: datetime, now: datetime, expire_after: timedelta) -> bool:
    """True when a message queued at ``created_at`` has been in the queue too long.

    Args:
        created_at: when the message was queued.
        now: the current time.
        expire_after: the longest time a message may wait (``delivery.expire_after``).
    """
    return now - created_at >= expire_after

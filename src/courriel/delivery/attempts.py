"""Turning remote replies into recipient outcomes: pure rules, no I/O.

Owns the mapping from one attempt's result (a per-recipient :class:`RemoteReply`, a
connection failure, a DNS failure) to a :class:`~courriel.delivery.claims.Settlement`:

- RFC 5321 §4.2.1: 2xx delivered; 5xx is a permanent failure (fail at once); 4xx and
  no reply at all (code 0: connection lost, timeout) are temporary: retry on the
  schedule (§4.5.4.1), or fail once the message has outlived ``expire_after``.
- RFC 7505 null MX and NXDOMAIN are permanent (``DnsError(temporary=False)``).

Invariant: the result depends only on its arguments (the clock is passed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from courriel.delivery.claims import AttemptRecord, Claim, Outcome, Settlement
from courriel.delivery.schedule import expired, next_attempt
from courriel.delivery.transport import RemoteReply

__all__ = [
    "Policy",
    "by_message",
    "outcome_of",
    "reply_text",
    "settlement_for",
    "wants_delay_notice",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The retry rules an outcome is decided with (from ``delivery.*``)."""

    retry_schedule: tuple[timedelta, ...]
    expire_after: timedelta
    delay_warning_after: timedelta | None  # None: never send delay notices


def outcome_of(reply: RemoteReply, claim: Claim, now: datetime, policy: Policy) -> Outcome:
    """The outcome of one attempt for one recipient.

    Args:
        reply: the final reply for the recipient (code 0 when none was received).
        claim: the recipient's claim (for its queueing time).
        now: the current time.
        policy: the retry rules.
    """
    if reply.success:
        return "delivered"
    # RFC 5321 §4.2.1: 5yz is a permanent negative completion reply.
    if not reply.temporary:
        return "failed"
    # RFC 5321 §4.5.4.1: give up after the message has been queued for too long.
    if expired(claim.created_at, now, policy.expire_after):
        return "failed"
    return "deferred"


def reply_text(reply: RemoteReply) -> str:
    """``"<enhanced> <text>"`` of a reply, for the attempt log and DSNs."""
    return " ".join(part for part in (reply.enhanced, reply.text) if part)


def settlement_for(
    claim: Claim,
    reply: RemoteReply,
    *,
    now: datetime,
    policy: Policy,
    mx_host: str,
    tls: bool = False,
    tls_verified: bool = False,
) -> Settlement:
    """The settlement of one recipient after one attempt.

    ``dsn_sent`` and ``delay_warned`` are left False: the worker sets them once the
    notices are produced (see :func:`wants_delay_notice`).
    """
    outcome = outcome_of(reply, claim, now, policy)
    return Settlement(
        claim=claim,
        outcome=outcome,
        attempt=AttemptRecord(
            attempted_at=now,
            mx_host=mx_host,
            tls=tls,
            tls_verified=tls_verified,
            code=reply.code,
            reply=reply_text(reply),
        ),
        next_attempt_at=(
            next_attempt(claim.attempts + 1, policy.retry_schedule, now)
            if outcome == "deferred"
            else None
        ),
    )


def wants_delay_notice(settlement: Settlement, now: datetime, policy: Policy) -> bool:
    """True when a deferred recipient is due its one delay notice (RFC 3464 ``delayed``)."""
    claim = settlement.claim
    return (
        settlement.outcome == "deferred"
        and policy.delay_warning_after is not None
        and claim.sender != ""
        and not claim.delay_warned
        and now - claim.created_at >= policy.delay_warning_after
    )


def by_message(claims: Sequence[Claim]) -> list[list[Claim]]:
    """Claims grouped by message, in first-seen order."""
    groups: dict[int, list[Claim]] = {}
    for c in claims:
        groups.setdefault(c.message_id, []).append(c)
    return list(groups.values())

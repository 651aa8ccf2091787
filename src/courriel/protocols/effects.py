"""The side effects a sans-I/O session asks its server to perform.

SMTP and POP3 sessions return, besides the octets to write, effects only the server
can carry out: upgrade to TLS, close the connection, wait. Both protocols share the
classes defined here, and :func:`describe_effect` is their one transcript text.

Invariant: effects carry no I/O of their own; the server performs them in the order
the session returned them, after writing everything before them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Close", "Delay", "StartTls", "describe_effect"]


@dataclass(frozen=True, slots=True)
class StartTls:
    """Upgrade the connection to TLS now, after flushing what was written before.

    Used for SMTP STARTTLS (RFC 3207 §4) and POP3 STLS (RFC 2595 §4); the server
    then tells the session the handshake succeeded.
    """


@dataclass(frozen=True, slots=True)
class Close:
    """Flush what was written so far and close the connection."""


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait this many seconds before the next action (anti-abuse throttle)."""

    seconds: float


def describe_effect(action: object) -> str | None:
    """Return the transcript line of an effect, or None if ``action`` is not one.

    Args:
        action: any session output.

    Returns:
        ``"E: StartTls"``, ``"E: Close"``, ``"E: Delay(<seconds:g>)"``, or None.
    """
    if isinstance(action, StartTls):
        return "E: StartTls"
    if isinstance(action, Close):
        return "E: Close"
    if isinstance(action, Delay):
        return f"E: Delay({action.seconds:g})"
    return None

"""The states of an SMTP server session (RFC 5321 §4.1.4, RFC 3030, RFC 4954)."""

from __future__ import annotations

import enum

__all__ = ["COMMAND_STATES", "State"]


class State(enum.Enum):
    """Where a session is; the parser mode follows from it."""

    CONNECTED = "connected"  # greeted; no EHLO/HELO yet (or since STARTTLS)
    READY = "ready"  # after EHLO/HELO, no transaction
    MAIL = "mail"  # after MAIL, no accepted recipient yet
    RCPT = "rcpt"  # at least one accepted recipient
    DATA = "data"  # reading a DATA message (parser in DATA mode)
    BDAT = "bdat"  # between or inside BDAT chunks of one message
    AUTH = "auth"  # in a SASL exchange (parser in LINE mode)
    CLOSED = "closed"  # QUIT, error limit or shutdown: nothing more is read


# States in which the parser reads command lines.
COMMAND_STATES = frozenset({State.CONNECTED, State.READY, State.MAIL, State.RCPT, State.BDAT})

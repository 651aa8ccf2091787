"""One SMTP mail transaction on the server side, MAIL to the final reply (sans-I/O).

This module owns the transaction's record (:class:`Transaction`) and the checks
made when its message ends: the DATA framing problems the parser reported, then
the size, port, SMTPUTF8 and submission ``From:`` checks on the streamed body.
The session decides when to run them and what to do with the answer.

Invariants: the checks only read the transaction (and finish its body scanner);
they never touch the delivery port. A ``None`` answer means "commit it".
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass

from courriel.delivery.targets import Delivery, MailFrom
from courriel.errors import AddressError
from courriel.mail.address import normalize_address
from courriel.mailstore.types import Principal
from courriel.protocols.smtp.body import BodyScanner
from courriel.protocols.smtp.parser import DataEnd
from courriel.protocols.smtp.replies import Reply

__all__ = ["Transaction", "content_problem", "data_end_problem", "may_send_as", "new_id"]


@dataclass(slots=True)
class Transaction:
    """One mail transaction, MAIL to the final reply."""

    mail_from: MailFrom
    delivery: Delivery
    message_id: str  # our transaction id, in the Received: header and the 250 reply
    recipients: list[str]
    body: BodyScanner | None = None  # set by DATA or the first BDAT
    failure: Reply | None = None  # a refusal met while the body streamed


def new_id() -> str:
    """Return a fresh transaction id (16 base32 characters, 80 random bits)."""
    return base64.b32encode(os.urandom(10)).decode("ascii")


def may_send_as(principal: Principal | None, address: str) -> bool:
    """True when ``principal`` may use ``address`` as a sender (RFC 6409 §8)."""
    if principal is None or not address:
        return False
    try:
        return normalize_address(address) in principal.senders
    except AddressError:
        return False


def data_end_problem(event: DataEnd) -> Reply | None:
    """Return the refusal a DATA message's framing calls for, or None."""
    if event.bare_line_ending:
        # The 2023 SMTP-smuggling defence (RFC 5321 §2.3.8: CRLF only).
        return Reply.of(550, "5.6.0", "Message contains bare CR or LF")
    if event.line_too_long:
        # RFC 5321 §4.5.3.1.6: 1000 octets per text line, CRLF included.
        return Reply.of(500, "5.5.2", "Line too long")
    return None


def content_problem(
    txn: Transaction, *, sender_check: Callable[[str], bool] | None
) -> Reply | None:
    """Finish the body scan; return the refusal the message calls for, or None.

    Args:
        txn: the transaction whose message just ended (its body scanner is set).
        sender_check: on submission, whether the account may use a ``From:``
            address; None on MX listeners (no ``From:`` check).
    """
    body = txn.body
    assert body is not None
    body.finish()
    if body.oversized:
        # RFC 1870 §6.3: the message grew beyond the limit.
        return Reply.of(552, "5.3.4", "Message size exceeds fixed maximum message size")
    if txn.failure is not None:
        return txn.failure
    if body.eight_bit_headers and not txn.mail_from.smtputf8:
        # RFC 6531 §3.2: 8-bit header octets need SMTPUTF8.
        return Reply.of(550, "5.6.7", "Non-ASCII headers require SMTPUTF8")
    if sender_check is not None:
        senders = body.from_addresses()
        if not senders or not all(sender_check(a) for a in senders):
            return Reply.of(553, "5.7.1", "From: address not allowed for this account")
    return None

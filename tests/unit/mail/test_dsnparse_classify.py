"""Classification of a bounced recipient (RFC 3463 class/subject, then the reply text)."""

from __future__ import annotations

import pytest

from courriel.mail.bouncetypes import BouncedRecipient, BounceReport, classify, find_status


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "kind"),
    [
        ("delayed", "4.4.1", "", "delay"),
        ("Delayed", "", "", "delay"),
        ("delivered", "2.0.0", "", "none"),
        ("relayed", "2.0.0", "", "none"),
        ("expanded", "2.0.0", "", "none"),
        ("failed", "4.4.7", "", "soft"),  # transient failure given up on
        ("failed", "5.1.1", "", "hard"),  # bad destination mailbox
        ("failed", "5.1.2", "", "hard"),  # bad destination system
        ("failed", "5.1.10", "", "hard"),  # null MX
        ("failed", "5.1.7", "", "soft"),  # our sender address syntax
        ("failed", "5.1.8", "", "soft"),  # our sender's system
        ("failed", "5.2.1", "", "hard"),  # mailbox disabled
        ("failed", "5.2.2", "", "soft"),  # mailbox full
        ("failed", "5.2.3", "", "soft"),  # message too long
        ("failed", "5.3.4", "", "soft"),  # too big for the system
        ("failed", "5.4.4", "", "hard"),  # unable to route
        ("failed", "5.4.6", "", "soft"),  # routing loop
        ("failed", "5.6.1", "", "soft"),  # media not supported
        ("failed", "5.7.1", "550 5.7.1 blocked by policy", "soft"),
        ("failed", "5.7.1", "550 5.7.1 Recipient address rejected: Access denied", "hard"),
        ("failed", "5.4.1", "550 5.4.1 Recipient address rejected: Access denied", "hard"),
        ("failed", "5.7.13", "", "hard"),  # user account disabled
        ("failed", "5.7.26", "", "soft"),  # authentication (DMARC) failure
        ("failed", "5.0.0", "550 user unknown", "hard"),
        ("failed", "5.0.0", "552 mailbox is full", "soft"),
        ("failed", "5.0.0", "554 rejected", "hard"),
        ("failed", "", "452 try again later", "soft"),
        ("failed", "", "550 No such user here", "hard"),
        ("failed", "", "", "hard"),
        ("failed", "", "Sorry, over quota", "soft"),
        ("failed", "5.5.0", "550 5.5.0 Requested action not taken: mailbox unavailable", "hard"),
    ],
)
def test_classify(action: str, status: str, diagnostic: str, kind: str) -> None:
    assert classify(action, status, diagnostic) == kind


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("550 5.1.1 <a@b.test>: user unknown", ("5.1.1", 550)),
        ("host 192.5.1.10 said: 421 try later", ("", 421)),
        ("(#5.1.1)", ("5.1.1", 0)),
        ("nothing here", ("", 0)),
        ("code 550-5.7.1 part", ("5.7.1", 0)),
    ],
)
def test_find_status(text: str, found: tuple[str, int]) -> None:
    assert find_status(text) == found


def test_report_kind_is_the_most_severe() -> None:
    def rcpt(kind: str) -> BouncedRecipient:
        return BouncedRecipient(final_recipient="a@b.test", action="failed", kind=kind)  # type: ignore[arg-type]

    report = BounceReport(recipients=(rcpt("soft"), rcpt("hard"), rcpt("delay")), format="x")
    assert report.kind == "hard"
    assert BounceReport(recipients=(), format="x").kind == "none"

"""The AUTH side of the SMTP server (smtp/auth.py), driven without a session or socket.

The transcripts in test_transcripts.py pin the wire behaviour; these tests cover the
paths a transcript cannot reach easily: a failing Authenticator port, no port at all,
no throttle, and what a debug trace shows of an AUTH command.
"""

from __future__ import annotations

import base64
import logging

import pytest

from courriel.errors import DeliveryRefused
from courriel.mailstore.types import Principal
from courriel.protocols.effects import Delay
from courriel.protocols.smtp import commands as c
from courriel.protocols.smtp.auth import SmtpAuth, auth_refusal, command_trace
from courriel.protocols.smtp.replies import Reply
from courriel.protocols.smtp.session import SmtpSession, SmtpSettings
from courriel.testing.smtp import MemoryTarget

from .conftest import ALICE, PASSWORD, FakeAuthenticator

SECRET = "hunter2-never-logged"
TEMPORARY = Reply.of(454, "4.7.0", "Temporary authentication failure")
INVALID = Reply.of(535, "5.7.8", "Authentication credentials invalid")


def plain(username: str, password: str) -> str:
    return base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")


class BrokenAuthenticator:
    """An Authenticator port that fails with the given exception."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def authenticate(self, username: str, password: str) -> Principal | None:
        raise self.error


def test_rfc4954_4_trace_redacts_the_initial_response() -> None:
    shown = command_trace(c.AuthCmd(mechanism="PLAIN", initial=plain("a@b.test", SECRET)))
    assert shown == "AUTH PLAIN [redacted]"
    assert command_trace(c.NoopCmd()) == str(c.NoopCmd())


@pytest.mark.parametrize(
    ("submission", "tls", "authenticated", "mechanism", "code"),
    [
        (False, True, False, "PLAIN", 502),
        (True, False, False, "PLAIN", 538),
        (True, True, True, "PLAIN", 503),
        (True, True, False, "CRAM-MD5", 504),
    ],
)
def test_rfc4954_6_refusals_before_any_exchange(
    submission: bool, tls: bool, authenticated: bool, mechanism: str, code: int
) -> None:
    refused = auth_refusal(
        c.AuthCmd(mechanism=mechanism),
        submission=submission,
        tls=tls,
        authenticated=authenticated,
    )
    assert refused is not None and refused.code == code


def test_rfc4954_4_plain_over_tls_on_submission_is_accepted() -> None:
    cmd = c.AuthCmd(mechanism="PLAIN")
    assert auth_refusal(cmd, submission=True, tls=True, authenticated=False) is None


@pytest.mark.parametrize(
    "authenticator",
    [
        None,
        BrokenAuthenticator(RuntimeError("database is down")),
        BrokenAuthenticator(DeliveryRefused(451, "4.3.0", "Try later")),
    ],
    ids=["no-port", "port-fails", "port-refuses"],
)
async def test_rfc4954_6_port_trouble_is_a_temporary_454(
    authenticator: BrokenAuthenticator | None,
) -> None:
    auth = SmtpAuth(authenticator=authenticator, throttle=None, peer_ip="192.0.2.1")
    outcome = await auth.begin(c.AuthCmd(mechanism="PLAIN", initial=plain(ALICE.address, "x")))
    assert outcome.actions == (TEMPORARY,)
    assert not outcome.pending and outcome.principal is None


async def test_port_failure_is_logged_without_the_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = SmtpAuth(
        authenticator=BrokenAuthenticator(RuntimeError("boom")), throttle=None, peer_ip="192.0.2.9"
    )
    with caplog.at_level(logging.ERROR, logger="courriel.protocols.smtp.auth"):
        await auth.begin(c.AuthCmd(mechanism="PLAIN", initial=plain(ALICE.address, SECRET)))
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "192.0.2.9" in caplog.text and SECRET not in caplog.text


async def test_rfc4954_4_failure_without_throttle_delays_zero_then_535() -> None:
    auth = SmtpAuth(authenticator=FakeAuthenticator(), throttle=None, peer_ip="192.0.2.1")
    outcome = await auth.begin(c.AuthCmd(mechanism="PLAIN", initial=plain(ALICE.address, "no")))
    assert outcome.actions == (Delay(0.0), INVALID)


async def test_rfc4954_4_login_exchange_pending_then_principal() -> None:
    auth = SmtpAuth(authenticator=FakeAuthenticator(), throttle=None, peer_ip="192.0.2.1")
    first = await auth.begin(c.AuthCmd(mechanism="LOGIN"))
    assert first.pending and first.actions == (Reply.of(334, "", "VXNlcm5hbWU6"),)
    second = await auth.respond(base64.b64encode(ALICE.address.encode()).decode())
    assert second.pending and second.actions == (Reply.of(334, "", "UGFzc3dvcmQ6"),)
    done = await auth.respond(base64.b64encode(PASSWORD.encode()).decode())
    assert not done.pending and done.principal == ALICE


async def test_a_response_with_no_exchange_is_a_bad_sequence() -> None:
    auth = SmtpAuth(authenticator=FakeAuthenticator(), throttle=None, peer_ip="192.0.2.1")
    outcome = await auth.respond("Kg==")
    assert outcome.actions == (Reply.of(503, "5.5.1", "Bad sequence of commands"),)


async def test_session_debug_trace_never_shows_sasl_data(
    target: MemoryTarget, caplog: pytest.LogCaptureFixture
) -> None:
    settings = SmtpSettings(hostname="mx.test", listener="submission", tls_active=True)
    session = SmtpSession(settings, target, authenticator=FakeAuthenticator())
    login = base64.b64encode(SECRET.encode()).decode("ascii")
    wire = f"EHLO c.test\r\nAUTH PLAIN {plain(ALICE.address, SECRET)}\r\nAUTH LOGIN {login}\r\n"
    with caplog.at_level(logging.DEBUG, logger="courriel.protocols.smtp.session"):
        actions = await session.receive(wire.encode("ascii"))
        actions += await session.receive(f"{login}\r\n".encode("ascii"))
    assert [a.code for a in actions if isinstance(a, Reply)] == [250, 535, 334, 535]
    assert "AUTH PLAIN [redacted]" in caplog.text and "AUTH LOGIN [redacted]" in caplog.text
    assert SECRET not in caplog.text and login not in caplog.text

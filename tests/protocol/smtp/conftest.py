"""Fixtures for the SMTP protocol tests: an in-memory target, accounts, a fake clock."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from courriel.mailstore.types import Principal
from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp.session import SmtpSession, SmtpSettings
from courriel.testing.smtp import MemoryTarget

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
ALICE = Principal(
    account_id=1,
    address="alice@example.test",
    senders=frozenset({"alice@example.test", "sales@example.test"}),
)
PASSWORD = "correct horse"


class FakeAuthenticator:
    """One account: alice@example.test / "correct horse"."""

    def __init__(self) -> None:
        self.calls = 0

    async def authenticate(self, username: str, password: str) -> Principal | None:
        self.calls += 1
        if username == ALICE.address and password == PASSWORD:
            return ALICE
        return None


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@pytest.fixture
def target() -> MemoryTarget:
    return MemoryTarget(
        local_domains=frozenset({"example.test"}),
        users=frozenset({"alice@example.test", "bob@example.test", "ünï@example.test"}),
    )


@pytest.fixture
def authenticator() -> FakeAuthenticator:
    return FakeAuthenticator()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> AuthThrottle:
    return AuthThrottle(base=0.5, ceiling=15.0, clock=clock)


@pytest.fixture
def make_session(
    target: MemoryTarget, authenticator: FakeAuthenticator, throttle: AuthThrottle
) -> Callable[..., Callable[[], SmtpSession]]:
    """``make_session(**settings)`` returns a session factory for run_transcript."""

    def factory(**overrides: Any) -> Callable[[], SmtpSession]:
        values: dict[str, Any] = {
            "hostname": "mx.test",
            "max_message_size": 10_000,
            "tls_available": True,
        }
        values.update(overrides)
        settings = SmtpSettings(**values)
        return lambda: SmtpSession(
            settings,
            target,
            authenticator=authenticator,
            throttle=throttle,
            peer_ip="192.0.2.1",
            clock=lambda: WHEN,
            make_id=lambda: "ID1",
        )

    return factory

"""In-memory POP3 back end and a transcript runner, for tests.

:class:`MemoryMaildrops` implements both :class:`~courriel.mailstore.types.Authenticator`
and :class:`~courriel.mailstore.types.MaildropPort` honestly, like the real mail store:

* one lock per account: a second ``open_maildrop`` raises ``MaildropInUse`` until
  ``release()``;
* a maildrop is a snapshot taken at lock time; mail delivered later shows in the next one;
* ``delete`` removes messages from the store at once (the session calls it in UPDATE only);
  it and ``read`` refuse to work on a released maildrop;
* UIDLs are ``"<uidvalidity>.<uid>"`` with uids never reused, so they are stable.

:func:`run_transcript` replays the ``C:`` lines of a transcript against a session and
checks the ``S:`` lines (what was written) and ``E:`` lines (effects other than writes).
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field

from courriel.errors import StorageError
from courriel.mailstore.types import MaildropInUse, MaildropMessage, Principal
from courriel.protocols.effects import StartTls, describe_effect
from courriel.protocols.pop3.multiline import dot_stuffed_chunks
from courriel.protocols.pop3.session import Action, Pop3Session, Send, SendMessage

__all__ = ["MemoryMaildrop", "MemoryMaildrops", "render_actions", "run_transcript"]

UIDVALIDITY = 1


@dataclass(slots=True)
class _Account:
    principal: Principal
    password: str
    messages: dict[int, bytes] = field(default_factory=dict)  # uid -> stored octets
    next_uid: int = 1
    locked: bool = False


class MemoryMaildrop:
    """A locked snapshot of one account's INBOX."""

    def __init__(self, account: _Account, owner: MemoryMaildrops) -> None:
        self._account = account
        self._owner = owner
        self._released = False
        self._messages = [
            MaildropMessage(message_id=uid, uidl=f"{UIDVALIDITY}.{uid}", size=len(data))
            for uid, data in sorted(account.messages.items())
        ]

    @property
    def messages(self) -> list[MaildropMessage]:
        """The messages at lock time, in order."""
        return list(self._messages)

    def _check(self) -> None:
        if self._released:
            raise StorageError("maildrop used after release")

    async def read(self, message_id: int) -> bytes:
        """The stored octets of one message of the snapshot."""
        self._check()
        try:
            return self._account.messages[message_id]
        except KeyError as exc:
            raise StorageError(f"message {message_id} is gone") from exc

    async def delete(self, message_ids: list[int]) -> None:
        """Remove these messages from the store."""
        self._check()
        for message_id in message_ids:
            self._account.messages.pop(message_id, None)

    async def release(self) -> None:
        """Unlock the account; idempotent."""
        if not self._released:
            self._released = True
            self._account.locked = False
            await self._owner._notify()


class MemoryMaildrops:
    """Accounts, passwords and INBOXes held in memory."""

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self._released = asyncio.Condition()

    async def wait_unlocked(self, address: str) -> None:
        """Return once no session holds the account's maildrop."""
        async with self._released:
            await self._released.wait_for(lambda: not self.is_locked(address))

    async def _notify(self) -> None:
        async with self._released:
            self._released.notify_all()

    def add_account(self, address: str, password: str) -> Principal:
        """Create an account and return its principal."""
        address = address.lower()
        principal = Principal(
            account_id=len(self._accounts) + 1, address=address, senders=frozenset({address})
        )
        self._accounts[address] = _Account(principal=principal, password=password)
        return principal

    def deliver(self, address: str, data: bytes) -> int:
        """Store a message (line ends made CRLF, as the mail store does); return its uid."""
        account = self._accounts[address.lower()]
        uid = account.next_uid
        account.next_uid += 1
        account.messages[uid] = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return uid

    def stored(self, address: str) -> list[bytes]:
        """The messages currently stored for an account, in uid order."""
        account = self._accounts[address.lower()]
        return [data for _uid, data in sorted(account.messages.items())]

    def is_locked(self, address: str) -> bool:
        """Whether a session holds the account's maildrop."""
        return self._accounts[address.lower()].locked

    async def authenticate(self, username: str, password: str) -> Principal | None:
        """Return the principal when the password matches."""
        account = self._accounts.get(username.lower())
        if account is None or not hmac.compare_digest(account.password.encode(), password.encode()):
            return None
        return account.principal

    async def open_maildrop(self, principal: Principal) -> MemoryMaildrop:
        """Lock and snapshot the INBOX, or raise MaildropInUse."""
        account = self._accounts[principal.address]
        if account.locked:
            raise MaildropInUse(principal.address)
        account.locked = True
        return MemoryMaildrop(account, self)


def render_actions(session: Pop3Session, actions: list[Action]) -> list[str]:
    """Turn actions into transcript lines (``S:`` written lines, ``E:`` effects).

    A :class:`StartTls` effect is taken as a successful handshake.
    """
    out: list[str] = []
    for action in actions:
        if isinstance(action, Send | SendMessage):
            if isinstance(action, Send):
                data = action.data
            else:
                data = b"".join(dot_stuffed_chunks(action.data, action.end, 7))
            text = data.decode("utf-8", "replace")
            assert text.endswith("\r\n"), f"reply not terminated by CRLF: {text!r}"
            out += [f"S: {x}" for x in text[:-2].split("\r\n")]
            continue
        effect = describe_effect(action)
        if effect is not None:
            out.append(effect)
        if isinstance(action, StartTls):
            session.tls_started()
    return out


async def run_transcript(session: Pop3Session, transcript: str) -> None:
    """Replay the ``C:`` lines of ``transcript`` and check everything else.

    The first lines (before any ``C:``) are the expected greeting. Blank lines and
    lines starting with ``#`` are ignored.

    Raises:
        AssertionError: the session's output differs; the message shows both.
    """
    expected = [
        line.strip()
        for line in transcript.strip().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    actual = render_actions(session, session.greeting())
    for line in expected:
        if line.startswith("C: ") or line == "C:":
            actual.append(line)
            actions = await session.receive(line[3:].encode("utf-8") + b"\r\n")
            actual += render_actions(session, actions)
    actual = [a.rstrip() for a in actual]
    assert actual == expected, (
        "transcript differs:\n"
        + "\n".join(
            f"{'  ' if i < len(expected) and a == expected[i] else '!!'} {a}"
            for i, a in enumerate(actual)
        )
        + "\n-- expected --\n"
        + "\n".join(expected)
    )

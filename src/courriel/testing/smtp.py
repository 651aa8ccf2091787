"""SMTP test helpers: an in-memory delivery target and a transcript runner.

:class:`MemoryTarget` implements :class:`courriel.delivery.targets.DeliveryTarget`
and records committed messages. Its refusal policy mirrors the real router:
recipients outside ``local_domains`` are relaying (550 5.7.1) unless the session
is authenticated; recipients in a local domain but not in ``users`` are unknown
(550 5.1.1); explicit per-address refusals and a message-level refusal can be set.

:func:`run_transcript` drives an :class:`courriel.protocols.smtp.session.SmtpSession`
through its parser from a ``C:``/``S:`` text, without sockets.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from courriel.delivery.targets import Delivery, MailFrom, SessionInfo
from courriel.errors import DeliveryRefused, InvalidInput
from courriel.protocols.effects import StartTls, describe_effect
from courriel.protocols.smtp.replies import Action, Reply
from courriel.protocols.smtp.session import SmtpSession

__all__ = ["MemoryTarget", "ReceivedMessage", "TranscriptResult", "run_transcript"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedMessage:
    """One committed message as the target saw it."""

    session: SessionInfo
    mail_from: MailFrom
    recipients: tuple[str, ...]
    trace_header: bytes
    data: bytes  # the message as written (CRLF, dot-unstuffed, no trace header)
    queue_id: str

    @property
    def full(self) -> bytes:
        """The message as stored: trace header, then the data."""
        return self.trace_header + self.data


@dataclass(slots=True)
class _MemoryDelivery:
    target: MemoryTarget
    session: SessionInfo
    mail_from: MailFrom
    recipients: list[str] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    aborted: bool = False

    async def add_recipient(self, address: str) -> None:
        refusal = self.target.check_recipient(self.session, address)
        if refusal is not None:
            raise refusal
        self.recipients.append(address)

    async def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    async def commit(self, trace_header: bytes) -> str:
        if self.target.refuse_message is not None:
            raise self.target.refuse_message
        queue_id = f"Q{next(self.target.ids)}"
        self.target.messages.append(
            ReceivedMessage(
                session=self.session,
                mail_from=self.mail_from,
                recipients=tuple(self.recipients),
                trace_header=trace_header,
                data=b"".join(self.chunks),
                queue_id=queue_id,
            )
        )
        return queue_id

    async def abort(self) -> None:
        if not self.aborted:
            self.aborted = True
            self.target.aborted += 1


@dataclass(slots=True)
class MemoryTarget:
    """A :class:`DeliveryTarget` that keeps messages in a list.

    Attributes:
        local_domains: domains we receive for; None means every domain is local.
        users: known mailboxes of the local domains; None means all exist.
        refuse_senders: MAIL FROM addresses (lower case) refused with the given error.
        refuse_recipients: RCPT TO addresses (lower case) refused with the given error.
        refuse_message: raised by ``commit`` when set (e.g. a content filter).
        messages: committed messages, in order.
        aborted: how many transactions were aborted.
    """

    local_domains: frozenset[str] | None = None
    users: frozenset[str] | None = None
    refuse_senders: Mapping[str, DeliveryRefused] = field(default_factory=dict)
    refuse_recipients: Mapping[str, DeliveryRefused] = field(default_factory=dict)
    refuse_message: DeliveryRefused | None = None
    messages: list[ReceivedMessage] = field(default_factory=list)
    aborted: int = 0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self, session: SessionInfo, mail_from: MailFrom) -> Delivery:
        """Open a transaction, or refuse the sender."""
        refusal = self.refuse_senders.get(mail_from.address.lower())
        if refusal is not None:
            raise refusal
        return _MemoryDelivery(target=self, session=session, mail_from=mail_from)

    def check_recipient(self, session: SessionInfo, address: str) -> DeliveryRefused | None:
        """The refusal for this recipient, or None to accept it."""
        lowered = address.lower()
        if lowered in self.refuse_recipients:
            return self.refuse_recipients[lowered]
        domain = lowered.rpartition("@")[2]
        if self.local_domains is not None and domain not in self.local_domains:
            if session.authenticated is None:
                return DeliveryRefused(550, "5.7.1", "Relaying denied")
            return None
        if self.users is not None and lowered not in self.users:
            return DeliveryRefused(550, "5.1.1", "No such user")
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptResult:
    """What a transcript run left behind, for further assertions."""

    session: SmtpSession
    lines: list[str]  # the whole exchange, "C: ..." and "S: ..." lines


def _unescape(text: str) -> bytes:
    """Decode ``\\r``, ``\\n``, ``\\\\``, ``\\xNN``; a final lone ``\\`` means no CRLF."""
    crlf = True
    if text.endswith("\\") and not text.endswith("\\\\"):
        text, crlf = text[:-1], False
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            nxt = text[index + 1]
            if nxt == "x":
                out.append(int(text[index + 2 : index + 4], 16))
                index += 4
                continue
            out += {"r": b"\r", "n": b"\n", "\\": b"\\", "t": b"\t"}[nxt]
            index += 2
            continue
        out += char.encode("utf-8")
        index += 1
    return bytes(out) + (b"\r\n" if crlf else b"")


def _render(actions: list[Action], session: SmtpSession) -> list[str]:
    shown: list[str] = []
    for action in actions:
        if isinstance(action, Reply):
            shown += [f"S: {line}" for line in action.text().split("\r\n")]
            continue
        effect = describe_effect(action)
        if effect is not None:
            shown.append(effect)
        if isinstance(action, StartTls):
            session.tls_established()
    return shown


def _matches(expected: str, actual: str) -> bool:
    actual = actual.rstrip(" ")
    if expected.endswith("*"):
        return actual.startswith(expected[:-1])
    return expected.rstrip(" ") == actual


def _parse_script(text: str) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, sep, rest = line.partition(":")
        if not sep or kind not in ("C", "S", "E"):
            raise InvalidInput(f"transcript line needs C:, S: or E: {raw!r}")
        steps.append((kind, rest[1:] if rest.startswith(" ") else rest))
    return steps


async def run_transcript(session_factory: Callable[[], SmtpSession], text: str) -> TranscriptResult:
    """Run a transcript against a fresh session and check every reply and effect.

    ``C:`` lines are client octets (CRLF appended unless the line ends with a lone
    ``\\``; ``\\r``, ``\\n``, ``\\xNN`` escapes allowed). Consecutive ``C:`` lines
    are sent as one packet (pipelining). ``S:`` lines are the expected reply
    lines and ``E:`` lines the expected effects (``E: Delay(2)``, ``E: StartTls``,
    ``E: Close``), in order, up to the next ``C:`` group; an ``S:`` ending in ``*``
    matches a prefix. The greeting is checked by the ``S:`` lines before the first
    ``C:``. A StartTls effect is acted on as if the handshake succeeded.

    Raises:
        AssertionError: with the whole exchange when something differs.
    """
    session = session_factory()
    steps = _parse_script(text)
    log: list[str] = []
    pending = _render(session.greeting(), session)
    index = 0
    while True:
        expected: list[str] = []
        while index < len(steps) and steps[index][0] != "C":
            expected.append(f"{steps[index][0]}: {steps[index][1]}")
            index += 1
        log += pending
        if len(expected) != len(pending) or not all(map(_matches, expected, pending)):
            want = "\n".join(expected)
            raise AssertionError(
                f"transcript mismatch\nexpected:\n{want}\nexchange:\n" + "\n".join(log)
            )
        if index >= len(steps):
            return TranscriptResult(session=session, lines=log)
        packet = b""
        while index < len(steps) and steps[index][0] == "C":
            packet += _unescape(steps[index][1])
            log.append(f"C: {steps[index][1]}")
            index += 1
        pending = _render(await session.receive(packet), session)

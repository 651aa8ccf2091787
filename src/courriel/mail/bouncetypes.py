"""What a bounce says, and how bad it is: the report types and the classification rules.

This module owns :class:`BouncedRecipient`, :class:`BounceReport` and :func:`classify`,
shared by the RFC 3464 reader (:mod:`courriel.mail.dsnparse`) and the readers of the
common non-standard bounce texts (:mod:`courriel.mail.bounceheuristics`), plus the few
robust MIME helpers both need and :mod:`courriel.mail.arf` reuses.

Classification (``kind``), from the action and the RFC 3463 status ``class.subject.detail``:

- ``delayed`` is ``"delay"``; ``delivered``, ``relayed`` and ``expanded`` are ``"none"``.
- ``failed`` with a class 4 status (a transient failure the sender gave up on) is ``"soft"``.
- ``failed`` with a class 5 status, by subject (RFC 3463 §3):
  X.1 addressing is ``"hard"`` (the mailbox or domain does not exist), except X.1.7 and
  X.1.8, which fault *our* sender address; X.2.1 (mailbox disabled) is hard, the other X.2
  mailbox states (X.2.2 full, X.2.3 too long, X.2.4 list expansion) are soft; X.3 mail
  system, X.5 protocol and X.6 content are soft (the next message may pass); X.4.4 (no
  route: the domain does not exist) is hard, the other X.4 network states are soft; X.7
  security/policy (spam blocks, reputation) is soft, except X.7.13 (account disabled,
  RFC 3463 registry), X.7.17 and X.7.18 (mailbox owner changed, same registry), which are hard.
- When the status is ambiguous (``X.0.0``, absent, X.4.1, X.5.x or X.7.0/X.7.1: all used by
  real servers for both "no such user" and "blocked"), the diagnostic text decides: the
  usual "user unknown" phrasings make it hard, "mailbox full"/"try again"/"blocked"
  phrasings make it soft, and otherwise a class 5 failure is hard (RFC 3463 §3.1: a
  permanent failure "is not likely to be resolved by resending").

Invariants: every function here is pure and total (it never raises on any input).
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from typing import Literal

__all__ = [
    "Action",
    "BounceKind",
    "BounceReport",
    "BouncedRecipient",
    "classify",
    "find_status",
    "load_message",
    "parse_fields",
    "part_text",
]

Action = Literal["failed", "delayed", "delivered", "relayed", "expanded"]
BounceKind = Literal["hard", "soft", "delay", "none"]

ACTIONS: frozenset[str] = frozenset(("failed", "delayed", "delivered", "relayed", "expanded"))
_SEVERITY: dict[str, int] = {"none": 0, "delay": 1, "soft": 2, "hard": 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class BouncedRecipient:
    """One recipient of a bounce: what happened, and how it is classified."""

    final_recipient: str  # RFC 3464 §2.3.2 Final-Recipient address (type and <> removed)
    original_recipient: str = ""  # RFC 3464 §2.3.1 Original-Recipient, "" when absent
    action: Action  # RFC 3464 §2.3.3, lower case
    status: str = ""  # RFC 3463 enhanced code ("5.1.1"), "" when the bounce gave none
    diagnostic: str = ""  # the remote server's reply or reason, unfolded, without its type
    remote_mta: str = ""  # RFC 3464 §2.3.5 host that gave the reply, "" when unknown
    kind: BounceKind  # see the module docstring


@dataclass(frozen=True, slots=True, kw_only=True)
class BounceReport:
    """A parsed bounce (DSN or non-standard non-delivery report)."""

    recipients: tuple[BouncedRecipient, ...]  # in the order of the report, never empty
    reporting_mta: str = ""  # RFC 3464 §2.2.2 host that wrote the report, "" when unknown
    format: str  # "rfc3464", or the heuristic's name ("qmail", "exim", "postfix", ...)
    original_message_id: str = ""  # Message-ID of the bounced message, without <>; "" if absent

    @property
    def kind(self) -> BounceKind:
        """The most severe kind among the recipients (hard > soft > delay > none)."""
        return max((r.kind for r in self.recipients), key=_SEVERITY.__getitem__, default="none")


# RFC 3463 §2: class "." subject "." detail; not part of a longer dotted number (an IP).
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]|\d)")
# RFC 5321 §4.2: a three-digit reply code, as a word of its own.
_CODE = re.compile(r"(?<![\w.#-])([245][0-5]\d)(?![\w.]|-\w)")
_HARD_TEXT = re.compile(
    r"user\s+unknown|unknown\s+user|no\s+such\s+(?:user|mailbox|recipient|address|account)"
    r"|(?:mailbox|address|account|user|recipient)\s+(?:\S+\s+){0,3}?(?:does\s+not|doesn't)"
    r"\s+exist|does\s+not\s+exist|doesn't\s+have\s+an?\s+\S+\s+account|recipnotfound"
    r"|recipientnotfound|invalid\s+(?:recipient|mailbox|address)|address\s+not\s+found"
    r"|couldn't\s+be\s+found|not\s+a\s+valid\s+(?:user|mailbox|recipient)"
    r"|recipient\s+address\s+rejected|unrouteable\s+address|no\s+mailbox\s+here"
    r"|mailbox\s+(?:unavailable|not\s+found|disabled)|account\s+(?:disabled|has\s+been"
    r"\s+disabled|is\s+disabled)|host\s+or\s+domain\s+name\s+not\s+found|domain\s+not\s+found",
    re.IGNORECASE,
)
_SOFT_TEXT = re.compile(
    r"(?:mailbox|inbox|quota)\s+(?:is\s+)?(?:full|exceeded)|over\s+quota|quota\s+exceeded"
    r"|insufficient\s+(?:storage|disk)|try\s+(?:again\s+)?later|temporar|greylist"
    r"|rate\s+limit|too\s+many|spam|blocked|blacklist|blocklist|reputation|policy"
    r"|message\s+(?:size\s+)?(?:too\s+(?:big|large)|exceeds)",
    re.IGNORECASE,
)
_AMBIGUOUS = frozenset(("4.1", "7.0", "7.1"))


def find_status(text: str) -> tuple[str, int]:
    """The first RFC 3463 enhanced code and the first RFC 5321 reply code in ``text``.

    Returns:
        ``(enhanced, code)``: ``("5.1.1", 550)``; ``""`` and ``0`` for what is absent.
    """
    status = _STATUS.search(text)
    code = _CODE.search(text)
    return (status.group(0) if status else "", int(code.group(1)) if code else 0)


def _by_status(klass: str, subject: str, detail: str) -> BounceKind | None:
    """The kind a class 5 status gives alone (RFC 3463 §3), None when it is ambiguous."""
    key = f"{subject}.{detail}"
    if klass != "5" or subject in ("0", "5") or key in _AMBIGUOUS:
        return None
    if subject == "1":
        return "soft" if detail in ("7", "8") else "hard"
    if subject == "2":
        return "hard" if detail == "1" else "soft"
    if subject == "4":
        return "hard" if detail == "4" else "soft"
    if subject == "7":
        return "hard" if detail in ("13", "17", "18") else "soft"
    return "soft"  # X.3 mail system, X.6 content, and subjects RFC 3463 does not define


def _failed_kind(status: str, diagnostic: str) -> BounceKind:
    match = _STATUS.fullmatch(status.strip())
    enhanced, code = find_status(diagnostic)
    if match is None and enhanced:
        match = _STATUS.fullmatch(enhanced)
    klass = match.group(1) if match else (str(code)[0] if code else "")
    if klass == "4":
        return "soft"
    if match is not None:
        decided = _by_status(*match.groups())
        if decided is not None:
            return decided
    if _HARD_TEXT.search(diagnostic):
        return "hard"
    if _SOFT_TEXT.search(diagnostic):
        return "soft"
    # A failure the sender gave up on, with no transient sign: permanent (RFC 3463 §3.1).
    return "hard"


def classify(action: str, status: str, diagnostic: str) -> BounceKind:
    """Classify one recipient's outcome; the rules are in the module docstring.

    Args:
        action: the RFC 3464 §2.3.3 action, any case.
        status: the RFC 3463 code (``"5.2.2"``), or ``""``.
        diagnostic: the server's reply or the report's reason, used when the status is
            ambiguous or absent.
    """
    action = action.strip().lower()
    if action == "delayed":
        return "delay"
    if action != "failed":
        return "none"
    return _failed_kind(status, diagnostic)


def load_message(data: bytes) -> Message:
    """Parse a whole message leniently (compat32: defects are recorded, never raised)."""
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)


def _raw_payload(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):
        # message/* parts are parsed into Message objects; put their fields back as text
        # (cheaper than as_bytes(), which re-folds every header). compat32 keeps raw values,
        # non-ASCII bytes as surrogate escapes.
        chunks = []
        for item in payload:
            if isinstance(item, Message):
                fields = "".join(f"{name}: {value}\n" for name, value in item.raw_items())
                # decode=True gives the body's original bytes back (surrogates undone).
                body = item.get_payload(decode=True)
                head = (fields + "\n").encode("utf-8", "surrogateescape")
                chunks.append(head + (body if isinstance(body, bytes) else b""))
        return b"\n".join(chunks)
    raw = part.get_payload(decode=True)
    return raw if isinstance(raw, bytes) else str(payload).encode("utf-8", "replace")


def part_text(part: Message) -> str:
    """A leaf part's text: transfer encoding undone, charset decoded with replacements."""
    raw = _raw_payload(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        text = raw.decode(charset, "replace")
    except (LookupError, ValueError):
        text = raw.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_fields(text: str) -> list[list[tuple[str, str]]]:
    """Split ``text`` into blank-line separated blocks of header-like fields.

    Continuation lines (leading white space) are unfolded (RFC 5322 §2.2.3); names keep
    their case; values are stripped and their inner white space collapsed. Lines that are
    not fields are skipped.
    """
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
        elif line[0] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}")
        else:
            name, sep, value = line.partition(":")
            if sep and name.strip() and " " not in name.strip():
                current.append((name.strip(), value.strip()))
    if current:
        blocks.append(current)
    return [[(n, " ".join(v.split())) for n, v in block] for block in blocks]

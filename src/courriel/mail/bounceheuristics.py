"""Read the common non-standard bounce texts (no RFC 3464 ``message/delivery-status`` part).

Many MTAs still send plain-text non-delivery reports, or a multipart/mixed with the text
and the original. Each reader here recognises one family by a fixed sentence of its
published template and pulls out the recipients and the server's reply with regexes:

======== ==================================================================================
format   recognised by
======== ==================================================================================
qmail    "This is the qmail-send program at HOST" (+ ``<addr>:`` blocks, "Remote host said:")
yahoo    "Sorry, we were unable to deliver your message to the following address" (qmail-like)
exim     "This message was created automatically by mail delivery software" + "failed:" or
         "still in the queue" (delay warning)
postfix  "This is the mail system at host HOST" / "This is the Postfix program" (non-DSN
         Postfix, and its "THIS IS A WARNING ONLY" delay notice)
sendmail "----- The following addresses had permanent fatal errors -----" (and "transient
         non-fatal errors", "THIS IS A WARNING MESSAGE ONLY")
exchange "Delivery has failed to these recipients or groups" (Exchange / Office 365 NDR,
         "Remote Server returned '550 5.1.1 ...'" or "#550 5.1.1 ... ##") and
         "Delivery is delayed to these recipients or groups"
gmail    "Address not found" / "Your message wasn't delivered to ADDR" / "Delivery to the
         following recipient failed permanently" / "Delivery incomplete" (delay)
======== ==================================================================================

The status is taken from the reply text (RFC 3463 code, else the RFC 5321 basic code) and
classified like a DSN (:func:`courriel.mail.bouncetypes.classify`).

Invariants: an RFC 3834 automatic reply (``Auto-Submitted: auto-replied``, "Automatic
reply:", out-of-office) that is not from a mailer daemon is never a bounce; only the
explanation text is searched, never the returned copy of the original message, so an
address quoted in the original cannot be reported as bounced. Pure and total.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message

from courriel.mail.bouncetypes import (
    BouncedRecipient,
    BounceReport,
    classify,
    find_status,
    part_text,
)

__all__ = ["is_auto_reply", "original_message_id", "parse_heuristic"]

_FLAGS = re.IGNORECASE | re.MULTILINE
_ADDR = r"[^\s<>()\"',;:@]+@[A-Za-z0-9.\-\[\]:_]+[A-Za-z0-9\]]"
# The line that starts the returned copy of the original message, through its end.
_ORIGINAL_MARKERS = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*(?:Below this line is a copy of the message|This is a copy of the"
    r" message|Original message[ \t-]*$|The header of the original message is following)"
    r"|Original message headers:[ \t]*$)[^\n]*",
    _FLAGS,
)
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail\s+delivery|mdaemon", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic\s+reply|auto(?:matic)?[-\s]?(?:reply|response)|out\s+of\s+(?:the\s+)?"
    r"office|absence|abwesend|r[ée]ponse\s+automatique|auto:)",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(?:\n[ \t]+)?<?([^<>\s]+)>?", _FLAGS)


@dataclass(frozen=True, slots=True)
class _Found:
    address: str
    action: str  # "failed" | "delayed"
    diagnostic: str
    remote_mta: str = ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def is_auto_reply(message: Message) -> bool:
    """An RFC 3834 automatic reply (vacation, out-of-office) that is not a mailer daemon's."""
    sender = str(message.get("From", ""))
    if _DAEMON.search(sender):
        return False
    # RFC 3834 §5.1: any Auto-Submitted value other than "no" marks automatic mail.
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return (
        auto not in ("", "no")
        or precedence in ("auto_reply", "auto-reply")
        or any(h in message for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponse"))
        or bool(_AUTO_SUBJECT.match(str(message.get("Subject", ""))))
    )


def _leaves(message: Message, depth: int = 0) -> Iterator[Message]:
    """Leaf parts, not descending into returned messages (message/*, rfc822-headers)."""
    if depth > 20:
        return
    payload = message.get_payload()
    if message.is_multipart() and message.get_content_maintype() == "multipart":
        for item in payload if isinstance(payload, list) else ():
            if isinstance(item, Message):
                yield from _leaves(item, depth + 1)
    elif message.get_content_maintype() != "message":
        yield message


def _texts(message: Message) -> tuple[str, str]:
    """(explanation, returned original): the report's own text and the text after it."""
    plain = [part_text(p) for p in _leaves(message) if p.get_content_type() == "text/plain"]
    if not plain:
        html = [part_text(p) for p in _leaves(message) if p.get_content_type() == "text/html"]
        plain = [re.sub(r"<[^>]*>", " ", re.sub(r"<br\s*/?>|</p>|</div>", "\n", h)) for h in html]
    text = "\n".join(plain)
    cut = _ORIGINAL_MARKERS.search(text)
    if cut is None:
        return text, ""
    return text[: cut.start()], text[cut.end() :]


def original_message_id(text: str) -> str:
    """The Message-ID in the header section at the start of ``text``, without <>; or ""."""
    head = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").lstrip("\n"), maxsplit=1)[0]
    found = _MESSAGE_ID.search(head)
    return found.group(1) if found else ""


def _returned_id(message: Message, rest: str) -> str:
    for part in message.walk():
        if part is not message and part.get_content_type() in (
            "message/rfc822",
            "text/rfc822-headers",
            "message/global-headers",
        ):
            found = original_message_id(part_text(part))
            if found:
                return found
    return original_message_id(rest)


# qmail-send (and Yahoo's qmail-derived template): "<addr>:" then the reason, one block
# per recipient, blocks separated by blank lines.
_QMAIL_BLOCK = re.compile(rf"^<({_ADDR})>:[ \t]*\n?(.*?)(?=^[ \t]*$|^<[^>\n]+>:|\Z)", _FLAGS | re.S)
_REMOTE_SAID = re.compile(r"Remote host said:\s*(.*)", re.IGNORECASE | re.S)
_QMAIL_HOST = re.compile(r"(?:^|\s)(\S+) does not like recipient|Giving up on (\S+?)\.?$", _FLAGS)


def _qmail_blocks(text: str) -> list[_Found]:
    found = []
    for match in _QMAIL_BLOCK.finditer(text):
        block = match.group(2)
        said = _REMOTE_SAID.search(block)
        if said:
            diagnostic = re.split(r"Giving up on", said.group(1), flags=re.IGNORECASE)[0]
        else:
            diagnostic = block
        host = _QMAIL_HOST.search(block)
        remote = (host.group(1) or host.group(2)) if host else ""
        found.append(_Found(match.group(1), "failed", _one_line(diagnostic), remote))
    return found


def _qmail(text: str) -> list[_Found]:
    if not re.search(r"This is the qmail-send program", text, re.IGNORECASE):
        return []
    return _qmail_blocks(text)


def _yahoo(text: str) -> list[_Found]:
    if not re.search(r"unable to deliver your message to the following address", text, _FLAGS):
        return []
    return _qmail_blocks(text)


_EXIM_FAILED = re.compile(
    r"following address(?:\(es\)|es)? (?:failed|(?:are still in the queue|have yet to be "
    r"delivered))\s*:\s*\n(.*)",
    _FLAGS | re.S,
)
_EXIM_ENTRY = re.compile(rf"^ {{1,3}}<?({_ADDR})>?[^\n]*\n((?:[ \t]{{4,}}[^\n]*\n?)*)", _FLAGS)
_EXIM_HOST = re.compile(r"host\s+(\S+)\s+\[", re.IGNORECASE)


def _exim(text: str) -> list[_Found]:
    if not re.search(r"created automatically by mail delivery software", text, re.IGNORECASE):
        return []
    section = _EXIM_FAILED.search(text)
    if section is None:
        return []
    delayed = re.search(r"still in the queue|yet to be delivered", section.group(0), re.I)
    action = "delayed" if delayed else "failed"
    found = []
    for entry in _EXIM_ENTRY.finditer(section.group(1)):
        detail = entry.group(2)
        host = _EXIM_HOST.search(detail)
        # The reply follows "SMTP error from remote mail server after RCPT TO:<a>:".
        reply = re.split(r"SMTP error from remote[^\n]*:\s*\n", detail, flags=re.I)[-1]
        remote = host.group(1) if host else ""
        found.append(_Found(entry.group(1), action, _one_line(reply), remote))
    return found


_POSTFIX_ENTRY = re.compile(
    rf"^<({_ADDR})>(?:\s*\(expanded from <[^>\n]*>\))?:\s*(.*?)(?=^[ \t]*$|^<|\Z)", _FLAGS | re.S
)
_POSTFIX_HOST = re.compile(r"host\s+(\S+?)\[[^\]]*\]\s+said:\s*(.*)", re.IGNORECASE | re.S)


def _postfix(text: str) -> list[_Found]:
    if not re.search(r"This is the (?:mail system|Postfix program) at host", text, re.I):
        return []
    delayed = re.search(r"THIS IS A WARNING ONLY|could not be delivered for more than", text, re.I)
    found = []
    for match in _POSTFIX_ENTRY.finditer(text):
        reason = match.group(2)
        said = _POSTFIX_HOST.search(reason)
        remote, reply = (said.group(1), said.group(2)) if said else ("", reason)
        reply = re.sub(r"\s*\(in reply to [^)]*\)\s*$", "", _one_line(reply))
        found.append(_Found(match.group(1), "delayed" if delayed else "failed", reply, remote))
    return found


_SENDMAIL_SECTION = re.compile(
    r"-{3,}\s*The following addresses had (permanent fatal|transient non-fatal) errors\s*-{3,}"
    r"\s*\n(.*?)(?=^\s*-{3,}|\Z)",
    _FLAGS | re.S,
)
_SENDMAIL_ENTRY = re.compile(
    rf"^\s*<?({_ADDR})>?\s*\n?(?:\s*\(reason:\s*([^\n]*?)\)?\s*$)?", _FLAGS
)
_SENDMAIL_TALKING = re.compile(r"while talking to (\S+?)\.?:", re.IGNORECASE)
_SENDMAIL_REPLY = re.compile(r"^<<<\s*([45]\d\d[^\n]*)", _FLAGS)


def _sendmail(text: str) -> list[_Found]:
    found = []
    talking = _SENDMAIL_TALKING.search(text)
    remote = talking.group(1) if talking else ""
    # Without a reason line, the transcript's last 4xx/5xx reply is the diagnostic.
    replies = [r for r in _SENDMAIL_REPLY.findall(text)]
    fallback = replies[-1] if replies else ""
    for section in _SENDMAIL_SECTION.finditer(text):
        action = "failed" if section.group(1).lower().startswith("permanent") else "delayed"
        for entry in _SENDMAIL_ENTRY.finditer(section.group(2)):
            diagnostic = entry.group(2) or fallback
            found.append(_Found(entry.group(1), action, _one_line(diagnostic), remote))
    if not found and re.search(r"THIS IS A WARNING MESSAGE ONLY", text):
        for match in re.finditer(rf"^<?({_ADDR})>?\.\.\.\s*Deferred:?\s*([^\n]*)", text, _FLAGS):
            found.append(_Found(match.group(1), "delayed", _one_line(match.group(2)), remote))
    return found


_EXCHANGE_DIAG = re.compile(
    rf"^\s*<?({_ADDR})>?\s*\n\s*(?:Remote Server returned '([^\n]*)'|#([^\n]*?)\s*##)", _FLAGS
)
_EXCHANGE_LIST = re.compile(
    # The recipient lines, after at most one blank line (no unbounded \s*: linear time).
    r"Delivery (?:has failed|is delayed) to these recipients or groups:[ \t]*\n"
    r"(?:[ \t]*\n)?((?:[ \t]*\S[^\n]*(?:\n|$))+)",
    re.IGNORECASE,
)


def _exchange(text: str) -> list[_Found]:
    listing = _EXCHANGE_LIST.search(text)
    if listing is None:
        return []
    action = "delayed" if "delayed" in listing.group(0).lower()[:25] else "failed"
    server = re.search(r"Generating server:\s*(\S+)", text, re.IGNORECASE)
    diagnostics = {
        m.group(1).lower(): (m.group(2) or m.group(3)) for m in _EXCHANGE_DIAG.finditer(text)
    }
    remote = server.group(1) if server else ""
    found = []
    lines = [line for line in listing.group(1).split("\n") if line.strip()]
    for line in lines:
        address = re.search(_ADDR, line)
        if address is None:
            continue
        # The line after each address explains it ("The e-mail address ... couldn't be found").
        index = lines.index(line)
        reason = lines[index + 1] if index + 1 < len(lines) and "@" not in lines[index + 1] else ""
        diagnostic = diagnostics.get(address.group(0).lower(), reason)
        found.append(_Found(address.group(0), action, _one_line(diagnostic), remote))
    return found


_GMAIL_RECIPIENT = re.compile(
    rf"(?:wasn't delivered to|temporary problem delivering your message to)\s+<?({_ADDR})>?"
    rf"|Delivery to the following recipients? (?:failed permanently|has been delayed):\s*\n\s*"
    rf"<?({_ADDR})>?",
    re.IGNORECASE,
)
_GMAIL_REPLY = re.compile(
    r"(?:The response from the remote server was|The error that the other server returned "
    r"was):[ \t]*\n(.*?)(?=\n[ \t]*\n|\Z)",
    re.IGNORECASE | re.S,
)


def _gmail(text: str) -> list[_Found]:
    found = []
    reply = _GMAIL_REPLY.search(text)
    diagnostic = _one_line(reply.group(1)) if reply else ""
    delayed = re.search(r"Delivery incomplete|temporary problem|has been delayed", text, re.I)
    remote = re.search(r"by the server for the recipient domain \S+ by (\S+?)\.?\s*\[", text)
    for match in _GMAIL_RECIPIENT.finditer(text):
        address = match.group(1) or match.group(2)
        action = "delayed" if delayed else "failed"
        found.append(_Found(address, action, diagnostic, remote.group(1) if remote else ""))
    return found


_READERS: tuple[tuple[str, Callable[[str], list[_Found]]], ...] = (
    ("qmail", _qmail),
    ("postfix", _postfix),
    ("exim", _exim),
    ("sendmail", _sendmail),
    ("exchange", _exchange),
    ("gmail", _gmail),
    ("yahoo", _yahoo),
)
_REPORTING = re.compile(
    r"(?:qmail-send program at|mail system at host|Postfix program at host|Generating server:)"
    r"\s*(\S+?)\.?\s*$",
    _FLAGS,
)


def _recipient(item: _Found) -> BouncedRecipient:
    enhanced, _code = find_status(item.diagnostic)
    return BouncedRecipient(
        final_recipient=item.address,
        action=item.action,  # type: ignore[arg-type]  # the readers give failed|delayed
        status=enhanced,
        diagnostic=item.diagnostic,
        remote_mta=item.remote_mta,
        kind=classify(item.action, enhanced, item.diagnostic),
    )


def _reporting_mta(text: str, message: Message) -> str:
    found = _REPORTING.search(text)
    if found:
        return found.group(1)
    sender = re.search(r"@([A-Za-z0-9.\-]+)", str(message.get("From", "")))
    return sender.group(1) if sender else ""


def parse_heuristic(message: Message) -> BounceReport | None:
    """Read a non-standard bounce; None when no known format matches (or an auto-reply)."""
    if is_auto_reply(message):
        return None
    text, rest = _texts(message)
    for name, reader in _READERS:
        found = reader(text)
        if found:
            return BounceReport(
                recipients=tuple(_recipient(item) for item in found),
                reporting_mta=_reporting_mta(text, message),
                format=name,
                original_message_id=_returned_id(message, rest),
            )
    return None

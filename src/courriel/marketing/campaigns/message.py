"""One copy of campaign (or transactional) mail: the RFC 5322 message bytes and its envelope.

Owns the wire form of marketing mail: header fields (From, To, Subject, Date, Message-ID,
MIME), the list headers of RFC 2369 and RFC 8058, ``Feedback-ID``, the CAN-SPAM footer,
click tracking (every http(s) link rewritten to a signed ``/c/`` redirect) and the open
pixel. It renders nothing itself: the template engine hands in subject, HTML and text.

Invariants:
- Pure: no database, no clock (``now`` is given), no network. The same inputs (and the
  same random Message-ID and boundary) give the same bytes.
- Lines end in CRLF and no line exceeds 998 octets (RFC 5322 §2.1.1): bodies are 7bit when
  they are ASCII with short lines, quoted-printable otherwise (RFC 2045 §6.7).
- The unsubscribe, preference and view-in-browser links are never rewritten to click
  redirects (a click on "unsubscribe" is not engagement), nor are mailto:, tel: or anchors.
- Nothing internal leaks into headers: the Message-ID is random, the VERP return path is
  MAC-protected (tokens.py), no ``X-Campaign``-style field exists.
- ``Precedence: bulk`` is not written: RFC 3834 §2 lets responders recognise list mail by
  its List-* fields instead, and auto-replies go to the envelope sender (RFC 3834 §4), the
  VERP address, whose mail never lands in a mailbox.

The DKIM signature is added downstream by the delivery router, whose signed field list
(courriel.mail.dkim) includes List-Unsubscribe, List-Unsubscribe-Post and Feedback-ID:
RFC 8058 §4 requires both list fields to be covered by a valid DKIM signature.
"""

from __future__ import annotations

import binascii
import html
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr

from courriel.marketing.campaigns.tokens import Links, Ref, trackable, verp_address

__all__ = [
    "Author",
    "Content",
    "Copy",
    "CopyUrls",
    "Footer",
    "build_copy",
    "copy_urls",
    "feedback_id",
]

CRLF = "\r\n"
_MAX_LINE = 998  # RFC 5322 §2.1.1: at most 998 characters per line, CRLF excluded
_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_TEXT_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}>"  # punctuation that ends a sentence, not a URL in plain text
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Author:
    """Who a message is from."""

    address: str  # the From: address; its domain signs (DKIM) and receives bounces (VERP)
    name: str | None = None
    reply_to: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Content:
    """What the template engine rendered for one recipient."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Footer:
    """The CAN-SPAM footer: who sends, their postal address."""

    shop_name: str
    shop_address: str  # shop.address (may span lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyUrls:
    """The links of one copy that templates may place themselves (and the footer does)."""

    unsubscribe: str
    preferences: str
    view: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy:
    """One message ready for ``Mailer.send``."""

    sender: str  # the envelope sender: the VERP return path
    recipient: str
    message: bytes


def copy_urls(links: Links, ref: Ref) -> CopyUrls:
    """The unsubscribe, preference and view URLs of ``ref`` (give them to the renderer)."""
    return CopyUrls(
        unsubscribe=links.unsubscribe_url(ref),
        preferences=links.preferences_url(ref),
        view=links.view_url(ref),
    )


def feedback_id(campaign_id: int, variant_label: str, sender_id: str) -> str:
    """Gmail's Feedback-ID value ``a:b:c:SenderId``: campaign, variant, type, sender."""
    return f"{campaign_id}:{variant_label}:campaign:{sender_id}"


def build_copy(
    *,
    ref: Ref,
    recipient: str,
    author: Author,
    content: Content,
    urls: CopyUrls,
    footer: Footer,
    links: Links,
    verp_key: bytes,
    feedback: str | None,
    open_pixel: bool,
    now: datetime,
) -> Copy:
    """Build the message of one copy, with tracking, footer and list headers.

    Args:
        ref: the copy (``c`` + campaign_recipients.id, or ``t`` + transactional id).
        recipient: the address it goes to.
        author: From / Reply-To.
        content: rendered subject, HTML and plain text.
        urls: the copy's unsubscribe / preferences / view URLs (:func:`copy_urls`).
        footer: shop name and postal address for the CAN-SPAM footer.
        links: builds click and open URLs.
        verp_key: the fleet's VERP secret.
        feedback: the Feedback-ID value (:func:`feedback_id`), or None for none.
        open_pixel: add the open pixel (tracking.open_pixel and the contact's consent).
        now: the Date: field.
    """
    domain = author.address.rpartition("@")[2]
    sender = verp_address(verp_key, ref, domain)
    keep = frozenset({urls.unsubscribe, urls.preferences, urls.view})
    body_html = _track_html(content.html, ref, links, keep)
    body_html = _insert_before_body_end(body_html, _footer_html(footer, urls))
    if open_pixel:
        pixel = f'<img src="{html.escape(links.open_url(ref))}" width="1" height="1" alt="" />'
        body_html = _insert_before_body_end(body_html, pixel)
    body_text = _track_text(content.text, ref, links, keep) + _footer_text(footer, urls)
    headers = _headers(recipient, author, content.subject, urls, sender, feedback, now)
    message = _assemble(headers, body_text, body_html)
    return Copy(sender=sender, recipient=recipient, message=message)


# -- headers ----------------------------------------------------------------------------


def _headers(  # noqa: PLR0917 (private; one call site)
    recipient: str,
    author: Author,
    subject: str,
    urls: CopyUrls,
    sender: str,
    feedback: str | None,
    now: datetime,
) -> list[str]:
    for value in (recipient, author.address, author.name or "", author.reply_to or ""):
        # RFC 5322 §2.2: a header field is one line; CR or LF here would start another field
        # (or end the header section). Callers check their input; this is the last guard.
        if any(c in value for c in "\r\n\0"):
            raise ValueError("a header value holds a line break")
    domain = author.address.rpartition("@")[2]
    # RFC 5322 §3.6: Date and From are required; Message-ID SHOULD be present (§3.6.4),
    # its right side a domain of the originator.
    fields = [
        f"Date: {format_datetime(now)}",
        f"From: {_address(author.address, author.name)}",
        f"To: {recipient}",
        _encoded("Subject", subject),
        f"Message-ID: <{uuid.uuid4().hex}@{domain}>",
    ]
    if author.reply_to:
        fields.append(f"Reply-To: {author.reply_to}")
    # RFC 2369 §3.2: List-Unsubscribe, URIs in angle brackets, most preferred first;
    # RFC 8058 §3.1: the https URI takes a one-click POST of "List-Unsubscribe=One-Click".
    mailto = f"<mailto:{sender}?subject=unsubscribe>"
    fields.append(f"List-Unsubscribe: <{urls.unsubscribe}>,{CRLF} {mailto}")
    fields.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    if feedback:
        fields.append(f"Feedback-ID: {feedback}")
    fields.append("MIME-Version: 1.0")
    return fields


def _address(address: str, name: str | None) -> str:
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    # RFC 2047 §5(3): a non-ASCII display name is a phrase of encoded-words, each at most 75
    # characters (§2), folded between them so no line passes 78 (RFC 5322 §2.1.1).
    # maxlinelen 74: Python counts the folding space, so each word stays under 75.
    phrase = Header(name, "utf-8", header_name="From").encode(linesep=CRLF, maxlinelen=74)
    return f"{phrase}{CRLF} <{address}>"


def _encoded(name: str, value: str) -> str:
    value = " ".join(value.split())  # no CR/LF may reach a header field (RFC 5322 §2.2)
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}"
    # RFC 2047 §2: encoded-words for non-ASCII text; folded at 78 (RFC 5322 §2.1.1).
    charset = "us-ascii" if value.isascii() else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep=CRLF)
    return f"{name}: {encoded}"


# -- bodies -----------------------------------------------------------------------------


def _assemble(headers: list[str], text: str, body_html: str) -> bytes:
    boundary = f"=_{uuid.uuid4().hex}"
    text_cte, text_body = _body(text)
    html_cte, html_body = _body(body_html)
    # RFC 2046 §5.1.4: multipart/alternative, plainest first, the preferred (HTML) last.
    parts = [
        *headers,
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        f"Content-Transfer-Encoding: {text_cte}",
        "",
        text_body,
        f"--{boundary}",
        'Content-Type: text/html; charset="utf-8"',
        f"Content-Transfer-Encoding: {html_cte}",
        "",
        html_body,
        f"--{boundary}--",
        "",
    ]
    # RFC 6532 §3: a non-ASCII address (SMTPUTF8, which the originator then requires of the
    # receiving server) is written in UTF-8 in the header; everything else is ASCII.
    return CRLF.join(parts).encode("utf-8")


def _body(text: str) -> tuple[str, str]:
    """(transfer encoding, encoded body with CRLF line ends)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if text.isascii() and all(len(line) <= _MAX_LINE for line in lines):
        return "7bit", CRLF.join(lines)
    # RFC 2045 §6.7: quoted-printable, lines of at most 76 characters with soft breaks.
    raw = "\n".join(lines).encode("utf-8")
    encoded = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
    return "quoted-printable", encoded.decode("ascii").replace("\n", CRLF)


# -- tracking and footer ----------------------------------------------------------------


def _track_html(source: str, ref: Ref, links: Links, keep: frozenset[str]) -> str:
    def rewrite(match: re.Match[str]) -> str:
        target = html.unescape(match.group(3)).strip()
        if not _trackable(target, keep):
            return match.group(0)
        tracked = html.escape(links.click_url(ref, target), quote=True)
        return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}"

    return _HREF.sub(rewrite, source)


def _track_text(source: str, ref: Ref, links: Links, keep: frozenset[str]) -> str:
    def rewrite(match: re.Match[str]) -> str:
        url = match.group(0)
        stripped = url.rstrip(_TRAILING)
        tail = url[len(stripped) :]
        if not _trackable(stripped, keep):
            return url
        return links.click_url(ref, stripped) + tail

    return _TEXT_URL.sub(rewrite, source)


def _trackable(url: str, keep: frozenset[str]) -> bool:
    return trackable(url) and url not in keep


def _insert_before_body_end(document: str, fragment: str) -> str:
    ends = list(_BODY_END.finditer(document))
    if not ends:
        return document + fragment
    at = ends[-1].start()
    return document[:at] + fragment + document[at:]


def _footer_html(footer: Footer, urls: CopyUrls) -> str:
    address = "<br>".join(html.escape(line) for line in footer.shop_address.splitlines())
    unsubscribe = html.escape(urls.unsubscribe, quote=True)
    preferences = html.escape(urls.preferences, quote=True)
    return (
        '<div style="font-size:12px;color:#666666;text-align:center;padding:16px">'
        f"<p>{html.escape(footer.shop_name)}<br>{address}</p>"
        f'<p><a href="{unsubscribe}">Unsubscribe</a> · '
        f'<a href="{preferences}">Manage preferences</a></p></div>'
    )


def _footer_text(footer: Footer, urls: CopyUrls) -> str:
    lines = ["", "", "--", footer.shop_name, *footer.shop_address.splitlines()]
    lines += [f"Unsubscribe: {urls.unsubscribe}", f"Manage preferences: {urls.preferences}", ""]
    return "\n".join(lines)

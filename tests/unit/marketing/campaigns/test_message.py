"""build_copy: headers (RFC 2369, RFC 8058, Feedback-ID, VERP), footer, click and open tracking."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage

from courriel.marketing.campaigns.message import (
    Author,
    Content,
    Copy,
    Footer,
    build_copy,
    copy_urls,
    feedback_id,
)
from courriel.marketing.campaigns.tokens import Links, Ref, parse_verp
from courriel.marketing.links import LinkSigner

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
VERP_KEY = b"v" * 32
LINKS = Links(LinkSigner(b"k" * 32, clock=lambda: NOW), "https://mail.shop.example/")
REF = Ref("c", 42)
HTML = (
    '<html><body><p>Hello Zoë</p><a href="https://shop.example/a?x=1&amp;y=2">Shop</a>'
    '<a href="mailto:help@shop.example">Help</a><a href="#top">Top</a>'
    '<a href="tel:+331234">Call</a><a href="{unsub}">Leave</a></body></html>'
)


def _copy(*, pixel: bool = True, subject: str = "Black Friday: -30 %") -> Copy:
    urls = copy_urls(LINKS, REF)
    return build_copy(
        ref=REF,
        recipient="zoe@customer.example",
        author=Author(address="news@shop.example", name="Shop Ünö", reply_to="help@shop.example"),
        content=Content(
            subject=subject,
            html=HTML.format(unsub=urls.unsubscribe),
            text="Hello Zoë\nSee https://shop.example/a?x=1&y=2.\n",
        ),
        urls=urls,
        footer=Footer(shop_name="Shop", shop_address="1 Rue de la Paix\n75002 Paris"),
        links=LINKS,
        verp_key=VERP_KEY,
        feedback=feedback_id(7, "A", "mail.shop.example"),
        open_pixel=pixel,
        now=NOW,
    )


def _parse(copy: Copy) -> EmailMessage:
    parsed = email.message_from_bytes(copy.message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    body = message.get_body(("html",))
    assert text is not None and body is not None
    return str(text.get_content()), str(body.get_content())


def test_the_required_and_list_headers() -> None:
    copy = _copy()
    message = _parse(copy)
    urls = copy_urls(LINKS, REF)
    assert message["From"].addresses[0].display_name == "Shop Ünö"
    assert message["To"] == "zoe@customer.example"
    assert message["Reply-To"] == "help@shop.example"
    assert message["Subject"] == "Black Friday: -30 %"
    assert message["Date"].datetime == NOW
    assert str(message["Message-ID"]).endswith("@shop.example>")
    assert message["List-Unsubscribe"] == (
        f"<{urls.unsubscribe}>, <mailto:{copy.sender}?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Feedback-ID"] == "7:A:campaign:mail.shop.example"
    assert message["Precedence"] is None
    assert parse_verp(VERP_KEY, copy.sender) == REF
    assert copy.sender.endswith("@shop.example")


def test_lines_are_crlf_and_short() -> None:
    raw = _copy(subject="Soldes d'hiver " * 20 + "éèà").message
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()
    assert _parse(_copy(subject="Soldes d'hiver éèà"))["Subject"] == "Soldes d'hiver éèà"


def test_links_are_tracked_except_unsubscribe_mailto_tel_and_anchors() -> None:
    text, body = _parts(_parse(_copy()))
    urls = copy_urls(LINKS, REF)
    assert "https://shop.example/a" not in body
    assert 'href="mailto:help@shop.example"' in body
    assert 'href="#top"' in body and 'href="tel:+331234"' in body
    assert f'href="{urls.unsubscribe}"' in body
    tracked = [part.split('"')[0] for part in body.split('href="https://mail.shop.example/c/')[1:]]
    assert len(tracked) == 1
    ref, payload = LINKS.read("click", tracked[0])
    assert ref == REF and payload["u"] == "https://shop.example/a?x=1&y=2"
    token = re.findall(r"example/c/([\w-]+\.[\w-]+)", text)[0]
    assert LINKS.read("click", token)[1]["u"] == "https://shop.example/a?x=1&y=2"


def test_footer_in_both_parts_before_body_end() -> None:
    text, body = _parts(_parse(_copy()))
    urls = copy_urls(LINKS, REF)
    assert "1 Rue de la Paix<br>75002 Paris" in body
    assert body.index("75002 Paris") < body.lower().index("</body>")
    assert "75002 Paris" in text and f"Unsubscribe: {urls.unsubscribe}" in text
    assert f"Manage preferences: {urls.preferences}" in text
    assert "Hello Zoë" in text


def test_open_pixel_only_when_asked() -> None:
    _, with_pixel = _parts(_parse(_copy(pixel=True)))
    _, without = _parts(_parse(_copy(pixel=False)))
    assert "https://mail.shop.example/o/" in with_pixel
    assert with_pixel.index("/o/") < with_pixel.lower().index("</body>")
    assert "/o/" not in without


def _with(author: Author, recipient: str = "zoe@customer.example", html: str = HTML) -> Copy:
    urls = copy_urls(LINKS, REF)
    return build_copy(
        ref=REF,
        recipient=recipient,
        author=author,
        content=Content(subject="Hi", html=html.format(unsub=urls.unsubscribe), text="Hi\n"),
        urls=urls,
        footer=Footer(shop_name="Shop", shop_address="1 Rue de la Paix"),
        links=LINKS,
        verp_key=VERP_KEY,
        feedback=None,
        open_pixel=False,
        now=NOW,
    )


def test_a_line_break_never_reaches_a_header() -> None:
    # RFC 5322 §2.2: CR LF in a display name would add a field (or end the header section).
    for author in (
        Author(address="news@shop.example", name="Shop\r\nList-Unsubscribe: <https://x.example>"),
        Author(address="news@shop.example", reply_to="a@b.example\r\n"),
    ):
        try:
            _with(author)
        except ValueError:
            continue
        raise AssertionError(f"{author} was written")


def test_a_long_non_ascii_name_is_folded_encoded_words() -> None:
    name = "Boutique Ünö " * 20
    copy = _with(Author(address="news@shop.example", name=name))
    head = copy.message.split(b"\r\n\r\n", 1)[0]
    start = head.index(b"From: ")
    field = head[start : head.index(b"\r\nTo: ")]
    # RFC 2047 §2: encoded-words of at most 75 characters; RFC 5322 §2.1.1: lines of 78.
    assert all(len(line) <= 78 for line in field.split(b"\r\n"))
    words = re.findall(rb"=\?utf-8\?[bq]\?[^?]*\?=", head, re.IGNORECASE)
    assert words and all(len(word) <= 75 for word in words)
    # RFC 2047 §6.2: the white space between adjacent encoded-words is not text (the
    # stdlib's classic decoder follows it; email.policy.default inserts a space there).
    raw = email.message_from_bytes(copy.message)["From"]
    decoded = str(make_header(decode_header(raw)))
    assert decoded == f"{name} <news@shop.example>"


def test_a_non_ascii_recipient_is_written_in_utf8() -> None:
    # RFC 6532 §3: internationalised addresses in UTF-8 (the copy then needs SMTPUTF8).
    copy = _with(Author(address="news@shop.example"), recipient="josé@customer.example")
    assert "To: josé@customer.example".encode() in copy.message


def test_a_link_with_control_characters_is_left_alone() -> None:
    html = (
        '<html><body><a href="https://shop.example/a&#13;&#10;Set-Cookie: x=1">A</a>'
        "{unsub}</body></html>"
    )
    copy = _with(Author(address="news@shop.example"), html=html)
    assert b"/c/" not in copy.message.split(b"text/html", 1)[1].split(b"Unsubscribe")[0]

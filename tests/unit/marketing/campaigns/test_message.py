"""build_copy: headers (RFC 2369, RFC 8058, Feedback-ID, VERP), footer, click and open tracking."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
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

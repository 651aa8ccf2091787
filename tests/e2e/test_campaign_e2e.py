"""Campaigns end to end on loopback (issue 6 "Tests"), through the CLI and the wire only.

A ``courriel serve`` subprocess with a local domain that has DKIM keys; its accounts are
the contacts. Contacts come in by ``courriel contacts import``, the catalogue and orders
by signed Shopify webhooks, the template by ``courriel template add``; the campaign is
created and sent (CLI when present, else ``/api/v1/campaigns``). Every copy is read over
POP3 and checked: personalisation, three best sellers, both unsubscribe headers (RFC 2369,
RFC 8058), a DKIM signature dkimpy verifies with the TXT records ``courriel domain dns``
prints, the VERP envelope sender (MAIL FROM at a remote MX; local copies carry no
Return-Path yet, so there the mailto URI names it). Then an RFC 8058 one-click POST, an
RFC 3464 DSN and an RFC 5965 ARF report to the VERP addresses over SMTP, a tracked click
and an order within the attribution window; a second campaign shows who is left out.
The crash test kills the server mid-campaign and shows that, after a restart, each of
2,000 recipients holds exactly one copy (local delivery stores the copy and marks it sent
in one transaction).

The database is read directly nowhere: the API answers every question asked here.
"""

from __future__ import annotations

import collections
import email
import re
import time
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import dkim
import pytest

from .campaign_helpers import (
    DOMAIN,
    PRODUCTS,
    PUBLIC,
    TEMPLATE,
    RemoteMx,
    ShopNode,
    order,
    product,
)

pytestmark = pytest.mark.slow

PEOPLE = {"ana": "Ana", "ben": "Benoît", "cleo": "Cléo", "dan": "Dan"}
VERP = re.compile(r"bounces\+c\d+\.[a-z0-9]+@shop\.test")
REMOTE = "eve@remote.test"  # a contact whose copy goes out over SMTP to a remote MX
BEST = [PRODUCTS[1001], PRODUCTS[1002], PRODUCTS[1003]]  # by units sold: 5, 4, 3 (1004: 1)


def _address(user: str) -> str:
    return f"{user}@{DOMAIN}"


def _prepare(node: ShopNode, tmp_path: Path, people: dict[str, str]) -> None:
    node.prepare([_address(u) for u in people])
    rows = ["email,first_name,last_name", f"{REMOTE},Eve,Remote"]
    rows += [f"{_address(user)},{first},Tester" for user, first in people.items()]
    csv = tmp_path / "contacts.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    node.cli("contacts", "import", str(csv), "--list", "newsletter", "--consent", "subscribed")
    source = tmp_path / "weekly.mjml"
    source.write_text(TEMPLATE)
    node.cli("template", "add", "weekly", "--file", str(source))


def _shop(node: ShopNode) -> None:
    """Four products; a customer outside the list buys 5, 4, 3 and 1 of them."""
    for pid, title in PRODUCTS.items():
        node.shopify("products/create", product(pid, title))
    placed = datetime.now(UTC).isoformat(timespec="seconds")
    lines = {1001: 5, 1002: 4, 1003: 3, 1004: 1}
    node.shopify("orders/create", order(5001, "buyer@example.com", lines, placed))


def _html(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no HTML part")


def _raw_mailbox(node: ShopNode, user: str) -> list[bytes]:
    client = node.pop3(_address(user))
    try:
        count, _size = client.stat()
        return [b"\r\n".join(client.retr(n + 1)[1]) + b"\r\n" for n in range(count)]
    finally:
        client.quit()


def _check_copy(raw: bytes, first_name: str, txt: dict[bytes, bytes]) -> Message:
    message = email.message_from_bytes(raw)
    html = _html(message)
    assert f"Hello {first_name}!" in html
    assert [t for t in BEST if t in html] == BEST and PRODUCTS[1004] not in html
    unsubscribe = message["List-Unsubscribe"]
    assert re.search(rf"<{re.escape(PUBLIC)}/u/[^>]+>", unsubscribe), unsubscribe
    assert re.search(r"<mailto:bounces\+c\d+\.[a-z0-9]+@shop\.test\?[^>]*>", unsubscribe)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        key = name if isinstance(name, bytes) else name.encode()
        return txt.get(key if key.endswith(b".") else key + b".", b"")

    signatures = message.get_all("DKIM-Signature") or []
    assert signatures, "no DKIM-Signature"
    verifier = dkim.DKIM(raw)
    for index, signature in enumerate(signatures):
        # RFC 8058 §3: both List-Unsubscribe headers are covered by the signature.
        signed = re.search(r"h=([^;]+)", re.sub(r"\s", "", signature)).group(1).lower()  # type: ignore[union-attr]
        assert "list-unsubscribe" in signed and "list-unsubscribe-post" in signed
        assert verifier.verify(idx=index, dnsfunc=dnsfunc), (index, signature)
    return message


def _verp(message: Message) -> str:
    """The copy's VERP address, as its mailto unsubscribe URI gives it."""
    found = VERP.search(message["List-Unsubscribe"])
    assert found is not None
    return found.group(0)


def _dsn(verp: str, recipient: str) -> bytes:
    """An RFC 3464 report: ``recipient`` does not exist (5.1.1)."""
    return (
        "From: MAILER-DAEMON@mx.remote.example (Mail Delivery System)\r\n"
        f"To: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n\r\n'
        "--B1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.remote.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: user unknown\r\n\r\n"
        "--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Return-Path: <{verp}>\r\nTo: {recipient}\r\nSubject: News from Grove\r\n\r\n"
        "--B1--\r\n"
    ).encode()


def _arf(verp: str, recipient: str) -> bytes:
    """An RFC 5965 abuse report about the copy sent to ``recipient``."""
    return (
        "From: <abuse@isp.example>\r\nTo: <fbl@isp.example>\r\nSubject: FW: News\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="B2"\r\n\r\n'
        "--B2\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n"
        "--B2\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: e2e/1.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <{verp}>\r\nOriginal-Rcpt-To: <{recipient}>\r\n\r\n"
        "--B2\r\nContent-Type: message/rfc822\r\n\r\n"
        f"Return-Path: <{verp}>\r\nFrom: <news@{DOMAIN}>\r\nTo: <{recipient}>\r\n"
        "Subject: News from Grove\r\n\r\nThe copy.\r\n--B2--\r\n"
    ).encode()


def _suppressed(node: ShopNode) -> set[str]:
    return {entry["value"] for entry in node.api("GET", "/api/v1/suppression")["data"]}


@pytest.mark.parametrize("pool_from", ["0", "1"], ids=["event-loop", "render-processes"])
def test_campaign_end_to_end(tmp_path: Path, db_url: str, pool_from: str) -> None:
    """Once with every copy rendered and signed on the event loop (the router signs),
    once in the render processes (campaigns.render_pool_from=1: they sign)."""
    with RemoteMx("remote.test") as remote:
        extra = {
            **remote.overrides,
            "campaigns.render_pool_from": pool_from,
            "campaigns.render_processes": "1",
        }
        node = ShopNode(tmp_path / "data", db_url, extra=extra)
        _campaign_world(node, tmp_path, remote)
        output = "".join(node.outputs)
        assert ("started 1 render processes" in output) == (pool_from == "1"), output[-2000:]


def _campaign_world(node: ShopNode, tmp_path: Path, remote: RemoteMx) -> None:
    _prepare(node, tmp_path, PEOPLE)
    node.start()
    try:
        _shop(node)
        first = node.create_campaign("first", "weekly", "newsletter")
        node.send_and_wait(first)
        txt = node.dkim_txt()
        copies: dict[str, Message] = {}
        for user, name in PEOPLE.items():
            mailbox = _raw_mailbox(node, user)
            assert len(mailbox) == 1, (user, len(mailbox))
            copies[user] = _check_copy(mailbox[0], name, txt)
            # RFC 5321 §4.4: the final delivery put the envelope sender, the VERP return
            # path, in Return-Path.
            assert copies[user]["Return-Path"] == f"<{_verp(copies[user])}>"
        # The remote copy: the envelope sender is the VERP address of the copy.
        [(mail_from, rcpt, raw)] = remote.recorder.got
        sent = _check_copy(raw, "Eve", txt)
        assert rcpt == REMOTE and mail_from == _verp(sent), mail_from

        # RFC 8058 §3.1: the one-click POST to the https URI unsubscribes ana.
        https = re.search(r"<(https://[^>]+)>", copies["ana"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
        reply = node.http(
            "POST",
            https,
            body=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert reply.status == 200, reply.body

        # A DSN for ben's copy and an ARF report on cleo's, to their VERP addresses.
        for user, build in (("ben", _dsn), ("cleo", _arf)):
            verp = _verp(copies[user])
            node.smtp_to(verp, build(verp, _address(user)))
        node.wait_for(
            lambda: {_address("ben"), _address("cleo")} <= _suppressed(node), 60, "suppression"
        )

        # A tracked click (never followed here), then dan orders within the window.
        href = re.search(rf'href="({re.escape(PUBLIC)}/c/[^"]+)"', _html(copies["dan"]))
        assert href is not None
        clicked = node.http("GET", href.group(1).replace("&amp;", "&"))
        assert clicked.status == 302
        targets = {f"https://grove.myshopify.com/products/p{pid}" for pid in PRODUCTS}
        assert clicked.headers["Location"] in {*targets, "https://shop.example/sale"}
        time.sleep(1.1)  # Shopify's times are whole seconds: place it after the click
        placed = datetime.now(UTC).isoformat(timespec="seconds")
        node.shopify("orders/create", order(5002, _address("dan"), {1004: 1}, placed))
        node.wait_for(lambda: node.report(first)["orders"] == 1, 60, "the attributed order")
        total = node.report(first)
        assert total["revenue_minor"] == 23436  # the fixture's total_price, 234.36
        assert total["clicks"] >= 1 and total["unsubscribes"] >= 1
        assert "234.36" in node.cli("campaign", "report", str(first))

        # The next campaign skips the unsubscribed, bounced and complaining contacts.
        second = node.create_campaign("second", "weekly", "newsletter")
        node.send_and_wait(second)
        counts = {user: len(_raw_mailbox(node, user)) for user in PEOPLE}
        # Neither report landed in a mailbox either.
        assert counts == {"ana": 1, "ben": 1, "cleo": 1, "dan": 2}, counts
        assert [r for _f, r, _m in remote.recorder.got] == [REMOTE, REMOTE]
    finally:
        node.stop()


CRASH_RECIPIENTS = 600  # several steps of campaigns.batch (500) and the kill lands in the first


def _to_counts(node: ShopNode) -> collections.Counter[str]:
    """The To: of every message in the catch-all mailbox (headers only, POP3 TOP)."""
    client = node.pop3(_address("inbox"))
    try:
        count, _size = client.stat()
        seen: collections.Counter[str] = collections.Counter()
        for n in range(count):
            head = email.message_from_bytes(b"\r\n".join(client.top(n + 1, 0)[1]))
            seen[str(head["To"]).strip()] += 1
        return seen
    finally:
        client.quit()


def test_sigkill_mid_campaign_sends_each_copy_once(tmp_path: Path, db_url: str) -> None:
    node = ShopNode(tmp_path / "data", db_url)
    node.prepare([_address("inbox")])
    node.cli("alias", "add", f"@{DOMAIN}", _address("inbox"))  # every copy in one mailbox
    wanted = [_address(f"r{n}") for n in range(CRASH_RECIPIENTS)]
    csv = tmp_path / "many.csv"
    csv.write_text("email,first_name\n" + "".join(f"{a},R{i}\n" for i, a in enumerate(wanted)))
    node.cli("contacts", "import", str(csv), "--list", "many", "--consent", "subscribed")
    source = tmp_path / "weekly.mjml"
    source.write_text(TEMPLATE)
    node.cli("template", "add", "weekly", "--file", str(source))
    node.start()
    killed_at = 0
    try:
        campaign = node.create_campaign("crash", "weekly", "many")
        node.api("POST", f"/api/v1/campaigns/{campaign}/send")

        def partly_sent() -> bool:
            nonlocal killed_at
            sent = int(node.api("GET", f"/api/v1/campaigns/{campaign}")["progress"]["sent"])
            killed_at = sent
            return sent >= CRASH_RECIPIENTS // 10

        node.wait_for(partly_sent, 300, "some copies sent")
        node.stop(kill=True)
        assert killed_at < CRASH_RECIPIENTS, "the campaign ended before the kill"
        node.start()
        node.wait_for(lambda: node.status(campaign) == "sent", 600, "the campaign to end")
        seen = _to_counts(node)
    finally:
        node.stop()
    twice = {a: n for a, n in seen.items() if n > 1}
    missing = set(wanted) - set(seen)
    print(f"\nkilled with {killed_at} of {CRASH_RECIPIENTS} sent")
    assert not twice, f"{len(twice)} recipients got more than one copy"
    assert not missing, f"{len(missing)} recipients got no copy"
    assert set(seen) == set(wanted)

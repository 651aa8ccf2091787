"""The render processes' unit of work: a chunk rendered and signed as the event loop would.

``render_chunk`` runs here in-process (a worker runs the same function); the real process
pool is exercised by tests/integration/marketing/campaigns/test_render_pool.py and the
campaign end-to-end test.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from typing import Any

import dkim as dkimpy
import pytest

from courriel.errors import InvalidInput
from courriel.mail import dkim
from courriel.marketing.campaigns.copies import CopyJob, SenderSettings, render_copy
from courriel.marketing.campaigns.pool import (
    PoolContext,
    PoolRow,
    RecipientRow,
    context_key,
    recommendation_table,
    render_chunk,
)
from courriel.marketing.campaigns.render import TemplateCopyRenderer
from courriel.marketing.campaigns.service import Campaign, Variant
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.links import LinkSigner

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SHOP = {"name": "Grove", "url": "https://grove.example", "address": "1 Main St", "currency": "EUR"}
HTML = (
    "<html><body><p>Hello {{ contact.first_name }}!</p>"
    "{% for p in recommendations('best_sellers', 2) %}<p>{{ p.title }}</p>{% endfor %}"
    "<p>{{ 10 // contact.attributes.get('divisor', 1) }}</p>"
    '<a href="https://grove.example/sale">Sale</a></body></html>'
)
VARIANT = Variant(id=7, label="A", subject="News for {{ contact.first_name }}", template_id=1)
CAMPAIGN = Campaign(
    id=3,
    name="c",
    status="sending",
    from_address="news@shop.test",
    from_name="Grove",
    reply_to=None,
    preheader="This week",
    audience=(),
    variants=(VARIANT,),
    ab=None,
    scheduled_at=None,
    started_at=None,
    finished_at=None,
    winner_variant_id=None,
    test_ends_at=None,
    created_at=NOW,
)
SETTINGS = SenderSettings(shop_name="Grove", shop_address="1 Main St", open_pixel=True)


def _fixed_clock() -> datetime:
    return NOW


LINKS = Links(LinkSigner(b"k" * 32, clock=_fixed_clock), "https://mail.shop.test")
VERP_KEY = b"v" * 32
PRODUCTS = [{"title": "Mug", "url": "https://grove.example/mug"}, {"title": "Pot"}, {"title": "X"}]


def _row(recipient_id: int, first: str, **attributes: Any) -> RecipientRow:
    return RecipientRow(
        recipient_id, f"{first.lower()}@d.test", 7, 100 + recipient_id, first, "T", "FR",
        None, "Lyon", attributes,
    )  # fmt: skip


def _context(signing: tuple[str, tuple[tuple[str, str], ...]] | None) -> PoolContext:
    templates = {7: (HTML, VARIANT.subject, CAMPAIGN.preheader)}
    return PoolContext(
        key=context_key(CAMPAIGN, templates, signing),
        campaign=CAMPAIGN,
        templates=templates,
        shop=SHOP,
        links=LINKS,
        verp_key=VERP_KEY,
        settings=SETTINGS,
        signing=signing,
    )


def _keys() -> tuple[tuple[str, str], ...]:
    return (
        ("s1r", dkim.key_to_pem(dkim.generate_rsa())),
        ("s1e", dkim.key_to_pem(dkim.generate_ed25519())),
    )


def _dns(pems: tuple[tuple[str, str], ...]) -> Any:
    records = {}
    for selector, pem in pems:
        key = dkim.key_from_pem(pem)
        txt = dkim.txt_record(dkim.algorithm_of(key), dkim.public_key_record(key))
        records[f"{selector}._domainkey.shop.test.".encode()] = txt.encode()

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        key = name if isinstance(name, bytes) else name.encode()
        return records.get(key if key.endswith(b".") else key + b".", b"")

    return dnsfunc


def _html(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_chunk_is_what_the_event_loop_renders_plus_both_signatures() -> None:
    pems = _keys()
    table = recommendation_table(lambda kind, n: PRODUCTS[:n], frozenset({("best_sellers", 2)}))
    rows = [PoolRow(_row(1, "Ana"), 7, table), PoolRow(_row(2, "Ben"), 7, table)]
    made = render_chunk(_context(("shop.test", pems)), rows, NOW)
    assert [m.recipient_id for m in made] == [1, 2]
    renderer = TemplateCopyRenderer(HTML, VARIANT.subject, CAMPAIGN.preheader, SHOP)
    for item, result in zip(rows, made, strict=True):
        assert result.copy is not None and result.signed and result.error is None
        raw = result.copy.message
        # RSA first, then Ed25519 (RFC 8463), both verified by dkimpy.
        assert raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256")
        assert raw.count(b"DKIM-Signature:") == 2
        verifier = dkimpy.DKIM(raw)
        assert verifier.verify(idx=0, dnsfunc=_dns(pems))
        assert verifier.verify(idx=1, dnsfunc=_dns(pems))
        # The same copy as the sender's own render on the loop, signatures aside.
        job = CopyJob(
            campaign=CAMPAIGN,
            variant=VARIANT,
            ref=Ref("c", item.row.id),
            row=item.row,
            recommend=lambda kind, n: PRODUCTS[:n],
        )
        local = render_copy(
            job, renderer, links=LINKS, verp_key=VERP_KEY, settings=SETTINGS, now=NOW
        )
        assert result.copy.sender == local.sender and result.copy.recipient == local.recipient
        assert _html(raw) == _html(local.message)
        assert f"Hello {item.row.first_name}!" in _html(raw)
        assert "<p>Mug</p><p>Pot</p>" in _html(raw).replace("\n", "")


def test_a_copy_that_fails_is_reported_by_type_and_the_chunk_goes_on() -> None:
    rows = [
        PoolRow(_row(1, "Ana", divisor=0), 7, {("best_sellers", 2): []}),
        PoolRow(_row(2, "Ben"), 7, {("best_sellers", 2): []}),
    ]
    made = render_chunk(_context(None), rows, NOW)
    assert made[0].copy is None and made[0].error == "InvalidInput"
    assert made[1].copy is not None and made[1].error is None
    # Without keys nothing is signed there: the router signs (or not) as for any mail.
    assert not made[1].signed and b"DKIM-Signature" not in made[1].copy.message


def test_recommendation_table_answers_each_static_call() -> None:
    asked: list[tuple[str, int]] = []

    def recommend(kind: str, n: int) -> list[dict[str, str]]:
        asked.append((kind, n))
        return [{"title": f"{kind}{i}"} for i in range(n)]

    table = recommendation_table(recommend, frozenset({("best_sellers", 2), ("same_category", 0)}))
    # A call whose n is not a constant (0) gets the longest list a template call may get.
    assert sorted(asked) == [("best_sellers", 2), ("same_category", 24)]
    assert len(table[("same_category", 0)]) == 24


def test_recommendation_table_refusal_is_the_books() -> None:
    def recommend(kind: str, n: int) -> list[dict[str, str]]:
        raise InvalidInput(f"recommendations({kind!r}) was not prefetched", field="kind")

    with pytest.raises(InvalidInput):
        recommendation_table(recommend, frozenset({("recently_viewed", 3)}))


def test_a_worker_builds_a_context_once_and_rebuilds_when_it_changes() -> None:
    first = _context(None)
    other = _context(("shop.test", _keys()))
    assert first.key != other.key
    rows = [PoolRow(_row(1, "Ana"), 7, {("best_sellers", 2): PRODUCTS})]
    unsigned = render_chunk(first, rows, NOW)[0]
    signed = render_chunk(other, rows, NOW)[0]
    again = render_chunk(first, rows, NOW)[0]
    assert not unsigned.signed and signed.signed and not again.signed

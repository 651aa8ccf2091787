"""http.trusted_proxies through a whole node (config → listener → uvicorn over a socket),
on both databases: the consent proof of /u/confirm records the visitor behind a trusted
proxy, and the connecting peer when the peer is not trusted."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from courriel.marketing.contacts import upsert_contact
from courriel.marketing.lists import CONFIRM_PURPOSE, OptIn, create_list, subscribe
from courriel.marketing.types import ContactData, OutgoingMail
from courriel.storage.models import utcnow
from courriel.storage.models.marketing import consents
from courriel.testing.node import RunningNode, running_node

VISITOR = "203.0.113.9"
SPOOF = "198.51.100.66"


async def _pending_member(running: RunningNode) -> tuple[int, str]:
    """A contact pending on a double opt-in list; returns its id and a confirmation token."""
    links = running.node.links
    assert links is not None
    now = utcnow()
    optin = OptIn(links=links, public_url="http://localhost", sender="noreply@localhost")
    outbox: list[OutgoingMail] = []
    async with running.services.db.write() as conn:
        contact_id = await upsert_contact(conn, ContactData(email="v@shop.test"), now=now)
        news = await create_list(conn, name="News", double_opt_in=True, now=now)
        status = await subscribe(
            conn, news.id, contact_id, method="form", now=now, optin=optin, outbox=outbox
        )
    assert status == "pending" and len(outbox) == 1
    return contact_id, links.sign(CONFIRM_PURPOSE, {"l": news.id, "c": contact_id})


@pytest.mark.parametrize(
    ("trusted", "recorded"),
    [
        # The test client connects from 127.0.0.1: as the trusted proxy, its hop is believed.
        ("127.0.0.1", VISITOR),
        # 127.0.0.1 is not in the list: the header is a spoof and the peer is recorded.
        ("10.0.0.0/8", "127.0.0.1"),
    ],
)
async def test_trusted_proxies_reach_the_listener(
    tmp_path: Path, db_url: str, trusted: str, recorded: str
) -> None:
    extra = {"http.trusted_proxies": trusted}
    async with running_node(tmp_path / "data", db_url, extra, roles=("http",)) as running:
        contact_id, token = await _pending_member(running)
        base = f"http://127.0.0.1:{running.ports['http']}"
        async with httpx.AsyncClient(base_url=base) as http:
            headers = {"X-Forwarded-For": f"{SPOOF}, {VISITOR}"}
            done = await http.post(f"/u/confirm/{token}", headers=headers)
        assert done.status_code == 200, done.text
        async with running.services.db.read() as conn:
            rows = await conn.execute(
                select(consents.c.method, consents.c.ip)
                .where(consents.c.contact_id == contact_id)
                .order_by(consents.c.id)
            )
            proof = [tuple(row) for row in rows]
    assert proof[-1] == ("double_opt_in", recorded)

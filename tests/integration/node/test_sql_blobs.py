"""The ``sql`` blob store end to end: bodies in the database, nothing in the data folder."""

from __future__ import annotations

import asyncio
import poplib
import smtplib
from pathlib import Path

from courriel.testing.node import running_node

from .conftest import PASSWORD


async def test_mail_round_trips_with_bodies_in_the_database(tmp_path: Path, db_url: str) -> None:
    extra = {"database.blob_store": "sql"}
    async with running_node(tmp_path / "data", db_url, extra=extra) as node:
        await node.services.mailstore.add_domain("shop.test")
        await node.services.mailstore.add_account("alice@shop.test", PASSWORD)

        def send_and_fetch() -> list[bytes]:
            with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10) as smtp:
                for n in range(3):
                    body = f"Subject: sql {n}\r\n\r\nbody {n}\r\n".encode()
                    smtp.sendmail("c@example.test", ["alice@shop.test"], body)
            pop = poplib.POP3_SSL(
                "127.0.0.1", node.ports["pop3s"], timeout=10, context=node.client_tls()
            )
            pop.user("alice@shop.test")
            pop.pass_(PASSWORD)
            try:
                return [b"\r\n".join(pop.retr(i + 1)[1]) for i in range(pop.stat()[0])]
            finally:
                pop.quit()

        messages = await asyncio.to_thread(send_and_fetch)
    assert [m.endswith(f"body {n}".encode()) for n, m in enumerate(messages)] == [True] * 3
    blob_dir = tmp_path / "data" / "blobs"
    assert not blob_dir.exists() or not any(p.is_file() for p in blob_dir.rglob("*"))

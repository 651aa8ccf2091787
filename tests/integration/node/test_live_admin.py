"""Admin changes made by another process while the node runs take effect (no stale 550)."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from courriel.testing.node import RunningNode
from courriel.testing.subprocess_node import run_cli


async def test_an_account_added_by_the_cli_receives_mail_at_once(node: RunningNode) -> None:
    def send() -> dict:
        with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10) as smtp:
            return smtp.sendmail("c@example.test", ["new@shop.test"], b"Subject: x\r\n\r\nx\r\n")

    # Unknown first: refused, and this must not be remembered.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asyncio.to_thread(send)
    assert info.value.recipients["new@shop.test"][0] == 550
    loaded = node.services.loaded
    database_url = loaded.config.database.url
    result = await asyncio.to_thread(
        run_cli,
        loaded.data_dir,
        ["account", "add", "new@shop.test", "--password-stdin"],
        stdin="another passphrase\n",
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    assert await asyncio.to_thread(send) == {}

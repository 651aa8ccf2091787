"""``courriel queue list|show|retry|drop`` on SQLite and PostgreSQL (``db_url``).

Rows are made through ``delivery.queue.enqueue``; attempts are inserted directly, as the
worker's settle would write them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import insert, select, update

from courriel.cli.main import cli
from courriel.cli.queue_cmd import COMMANDS
from courriel.delivery.queue import enqueue, list_queue
from courriel.storage.blobs import FsBlobStore
from courriel.storage.db import Database
from courriel.storage.models import queue_attempts, queue_recipients, utcnow

BODY = b"From: alice@shop.test\r\nSubject: order 42\r\n\r\nThanks!\r\n"
PAST = datetime(2024, 6, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    # The lead registers COMMANDS in cli/main.py; the tests add them to the group here.
    for command in COMMANDS:
        if isinstance(command, click.Command) and command.name not in cli.commands:
            cli.add_command(command)


def run(data_dir: Path, db_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "--set", f"database.url={db_url}", *args], env={}
    )


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result.output


async def _seed(db_url: str, data_dir: Path) -> tuple[int, int]:
    """Two messages: one with two recipients (one deferred with attempts), one bulk."""
    db = await Database.open(db_url)
    try:
        ref = await FsBlobStore(data_dir / "blobs").put(BODY)
        async with db.write() as conn:
            first = await enqueue(
                conn,
                sender="alice@shop.test",
                recipients=["bob@remote.test", "carol@other.test"],
                blob_key=ref.key,
                size=len(BODY) + 10,
                trace_header=b"Received: x\r\n",
            )
            second = await enqueue(
                conn,
                sender="",
                recipients=["dave@remote.test"],
                blob_key=ref.key,
                size=len(BODY) + 10,
                trace_header=b"Received: y\r\n",
                priority="bulk",
            )
            bob = await conn.scalar(
                select(queue_recipients.c.id).where(
                    queue_recipients.c.recipient == "bob@remote.test"
                )
            )
            await conn.execute(
                insert(queue_attempts),
                [
                    {
                        "recipient_id": bob,
                        "attempted_at": PAST,
                        "mx_host": "mx1.remote.test",
                        "tls": True,
                        "tls_verified": False,
                        "code": 451,
                        "reply": "4.3.0 mailbox busy",
                        "outcome": "deferred",
                    },
                    {
                        "recipient_id": bob,
                        "attempted_at": PAST + timedelta(minutes=5),
                        "mx_host": "",
                        "tls": False,
                        "tls_verified": False,
                        "code": 0,
                        "reply": "connection refused by every MX host",
                        "outcome": "deferred",
                    },
                ],
            )
            await conn.execute(
                update(queue_recipients)
                .where(queue_recipients.c.id == bob)
                .values(
                    attempts=2,
                    last_reply="connection refused by every MX host",
                    next_attempt_at=utcnow() + timedelta(hours=1),
                )
            )
        return first, second
    finally:
        await db.close()


async def _recipients(db_url: str) -> dict[str, tuple[datetime, str | None]]:
    db = await Database.open(db_url)
    try:
        entries = await list_queue(db)
        async with db.read() as conn:
            leases = dict(
                (
                    await conn.execute(
                        select(queue_recipients.c.recipient, queue_recipients.c.claimed_by)
                    )
                ).all()
            )
    finally:
        await db.close()
    return {
        r.recipient: (r.next_attempt_at, leases[r.recipient]) for e in entries for r in e.recipients
    }


def _bodies(blob_dir: Path) -> list[Path]:
    """Stored bodies (the store's own tmp folder left out)."""
    return [
        p for p in blob_dir.rglob("*") if p.is_file() and p.relative_to(blob_dir).parts[0] != "tmp"
    ]


def test_list_on_an_empty_queue(tmp_path: Path, db_url: str) -> None:
    assert ok(run(tmp_path, db_url, "queue", "list")).strip() == "no queued messages"


def test_list_shows_every_message(tmp_path: Path, db_url: str) -> None:
    first, second = asyncio.run(_seed(db_url, tmp_path))
    out = ok(run(tmp_path, db_url, "queue", "list"))
    for text in (
        "Queued messages",
        "<alice@shop.test>",
        "bob@remote.test (queued)",
        "carol@other.test (queued)",
        "dave@remote.test (queued)",
        "<>",
        "bob@remote.test: connection",  # the table folds the rest of the reply
    ):
        assert text in out, text
    assert out.index(f"│ {first} ") < out.index(f"│ {second} ")


def test_show_lists_every_attempt(tmp_path: Path, db_url: str) -> None:
    first, _ = asyncio.run(_seed(db_url, tmp_path))
    out = ok(run(tmp_path, db_url, "queue", "show", str(first)))
    assert f"message {first}: sender <alice@shop.test>" in out
    assert "priority transactional" in out
    lines = out.splitlines()
    busy = next(line for line in lines if "mailbox busy" in line)
    assert "2024-06-10 09:00:00" in busy and "mx1.remote.test" in busy and "451" in busy
    assert "│ yes " in busy and "deferred" in busy  # TLS used, certificate not verified
    refused = next(line for line in lines if "connection refused" in line and "09:05" in line)
    assert "│ no " in refused and "│ -  " in refused  # no TLS, no reply code
    assert lines.index(busy) < lines.index(refused)


def test_show_unknown_id(tmp_path: Path, db_url: str) -> None:
    result = run(tmp_path, db_url, "queue", "show", "999")
    assert result.exit_code == 1
    assert "no queued message 999" in result.stderr


def test_retry_one_message(tmp_path: Path, db_url: str) -> None:
    first, _ = asyncio.run(_seed(db_url, tmp_path))
    before = utcnow()
    out = ok(run(tmp_path, db_url, "queue", "retry", str(first)))
    assert f"2 recipient(s) of message {first} due now" in out
    state = asyncio.run(_recipients(db_url))
    assert state["bob@remote.test"][0] <= utcnow()
    assert state["bob@remote.test"][0] >= before - timedelta(seconds=1)


def test_retry_all_leaves_live_claims_alone(tmp_path: Path, db_url: str) -> None:
    asyncio.run(_seed(db_url, tmp_path))
    later = utcnow() + timedelta(hours=2)

    async def claim_two() -> None:
        db = await Database.open(db_url)
        try:
            async with db.write() as conn:
                # carol: a worker is sending her copy right now (live lease);
                # dave: a crashed worker's lease that has expired.
                for rcpt, lease in (
                    ("carol@other.test", utcnow() + timedelta(minutes=5)),
                    ("dave@remote.test", utcnow() - timedelta(minutes=5)),
                ):
                    await conn.execute(
                        update(queue_recipients)
                        .where(queue_recipients.c.recipient == rcpt)
                        .values(claimed_by="w1", lease_until=lease, next_attempt_at=later)
                    )
        finally:
            await db.close()

    asyncio.run(claim_two())
    out = ok(run(tmp_path, db_url, "queue", "retry", "--all"))
    assert "2 recipient(s) of every queued message due now" in out
    state = asyncio.run(_recipients(db_url))
    assert state["bob@remote.test"][0] <= utcnow()
    assert state["dave@remote.test"][0] <= utcnow() and state["dave@remote.test"][1] is None
    assert state["carol@other.test"] == (later, "w1")


def test_retry_needs_an_id_or_all(tmp_path: Path, db_url: str) -> None:
    assert run(tmp_path, db_url, "queue", "retry").exit_code == 2
    assert run(tmp_path, db_url, "queue", "retry", "1", "--all").exit_code == 2
    assert "no queued message 7" in run(tmp_path, db_url, "queue", "retry", "7").stderr


def test_drop_is_logged_and_frees_the_body(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = asyncio.run(_seed(db_url, tmp_path))
    blob_dir = tmp_path / "blobs"
    assert len(_bodies(blob_dir)) == 1
    with caplog.at_level(logging.WARNING, logger="courriel.delivery.queue_admin"):
        out = ok(run(tmp_path, db_url, "queue", "drop", str(first)))
    expected = (
        f"queue message {first} dropped by the operator: sender <alice@shop.test>, "
        "recipients bob@remote.test (queued), carol@other.test (queued)"
    )
    assert expected in out
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [expected]
    state = asyncio.run(_recipients(db_url))
    assert set(state) == {"dave@remote.test"}
    # The body is still used by the second message: kept.
    assert len(_bodies(blob_dir)) == 1
    ok(run(tmp_path, db_url, "queue", "drop", str(second)))
    assert _bodies(blob_dir) == []
    assert ok(run(tmp_path, db_url, "queue", "list")).strip() == "no queued messages"
    assert run(tmp_path, db_url, "queue", "drop", str(first)).exit_code == 1

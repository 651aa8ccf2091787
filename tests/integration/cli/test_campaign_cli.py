"""``courriel campaign`` through click's CliRunner, on both databases.

``send --wait`` is shown against a real campaign sender running on its own event loop in
a thread (what a node's delivery role does), over the same database.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tests.integration.marketing.campaigns.conftest import RecordingMailer, make_sender

from courriel.cli.main import _register, cli
from courriel.marketing.segments import service as segment_service
from courriel.storage.db import Database

ADDRESS = "1 Rue de la Paix, 75002 Paris"


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


@pytest.fixture
def run(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    def invoke(*args: str, address: str = ADDRESS) -> Result:
        settings = ["--set", f"database.url={db_url}", "--set", f"shop.address={address}"]
        return CliRunner().invoke(
            cli, ["--data-dir", str(tmp_path / "data"), *settings, *args], env={}
        )

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def refused(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture
def shop(run, tmp_path: Path, db_url: str) -> Path:  # type: ignore[no-untyped-def]
    """A domain, a template, a list "Newsletter" of three subscribed contacts."""
    ok(run("domain", "add", "shop.example"))
    page = tmp_path / "sale.html"
    page.write_text(
        '<p>Hi {{ contact.first_name | default("there") }}</p>'
        '<a href="https://shop.example/sale">Sale</a>',
        encoding="utf-8",
    )
    ok(run("template", "add", "sale", "--file", str(page)))
    people = tmp_path / "people.csv"
    people.write_text(
        "email,first_name\nann@customer.example,Ann\nbob@customer.example,Bob\n"
        "cat@customer.example,Cat\n",
        encoding="utf-8",
    )
    ok(run("contacts", "import", str(people), "--list", "Newsletter", "--consent", "subscribed"))
    return page


def _create(run, *extra: str) -> int:  # type: ignore[no-untyped-def]
    result = ok(
        run(
            "campaign", "create", "--name", "Black Friday", "--template", "sale",
            "--subject", "Hi {{ contact.first_name }}", "--audience", "Newsletter",
            "--from", "news@shop.example", *extra,
        )
    )  # fmt: skip
    last = result.stdout.strip().splitlines()[-1]
    assert last.isdigit(), result.stdout
    return int(last)


class SenderThread:
    """A campaign sender stepping on its own loop until stopped, as a node would."""

    def __init__(self, db_url: str) -> None:
        self.url = db_url
        self.stop = threading.Event()
        self.recipients: list[str] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        db = await Database.open(self.url)
        try:
            mailer = RecordingMailer(db)
            sender = make_sender(db, mailer, lambda: datetime.now(UTC))  # type: ignore[arg-type]
            while not self.stop.is_set():
                if not await sender.step_all():
                    await asyncio.sleep(0.02)
            self.recipients = [m.recipient for m in mailer.sent]
        finally:
            await db.close()


@pytest.fixture
def node(db_url: str) -> Iterator[SenderThread]:
    sender = SenderThread(db_url)
    sender.thread.start()
    yield sender
    sender.stop.set()
    sender.thread.join()


def test_create_send_wait_report(run, shop: Path, db_url: str, node: SenderThread) -> None:  # type: ignore[no-untyped-def]
    campaign_id = _create(run, "--from-name", "Shop", "--preheader", "Deals inside")
    shown = json.loads(ok(run("campaign", "show", str(campaign_id), "--json")).stdout)
    assert shown["status"] == "draft" and shown["preheader"] == "Deals inside"
    assert shown["audience"][0]["kind"] == "list"
    assert shown["progress"] == {"status": "draft", "recipients": 0, "sent": 0, "pending": 0}
    listed = ok(run("campaign", "list")).stdout
    assert "Black Friday" in listed and "draft" in listed

    waited = ok(run("campaign", "send", str(campaign_id), "--wait"))
    assert f"campaign {campaign_id} sent: 3 of 3 sent" in waited.stdout
    node.stop.set()
    node.thread.join()
    assert Counter(node.recipients) == {
        "ann@customer.example": 1,
        "bob@customer.example": 1,
        "cat@customer.example": 1,
    }

    table = ok(run("campaign", "report", str(campaign_id))).stdout
    assert "Black Friday" in table and "Variant" in table and "no top links" in table
    report = json.loads(ok(run("campaign", "report", str(campaign_id), "--json")).stdout)
    assert report["status"] == "sent"
    assert report["total"]["recipients"] == report["total"]["sent"] == 3
    again = run("campaign", "send", str(campaign_id))
    refused(again, "status: cannot send a campaign that is sent")


def test_state_changes_and_ab(run, shop: Path) -> None:  # type: ignore[no-untyped-def]
    campaign_id = _create(
        run, "--subject-b", "Last chance", "--ab-sample", "30", "--ab-wait", "2h",
        "--ab-metric", "revenue", "--at", "2030-01-02T08:00:00+01:00",
    )  # fmt: skip
    shown = json.loads(ok(run("campaign", "show", str(campaign_id), "--json")).stdout)
    assert [v["subject"] for v in shown["variants"]] == [
        "Hi {{ contact.first_name }}",
        "Last chance",
    ]
    assert shown["ab"] == {"sample_percent": 30, "wait_seconds": 7200, "metric": "revenue"}
    assert shown["scheduled_at"].startswith("2030-01-02T07:00:00")
    sent = ok(run("campaign", "send", str(campaign_id)))
    assert "scheduled for 2030-01-02T07:00:00+00:00" in sent.stdout
    assert f"campaign {campaign_id} paused" in ok(run("campaign", "pause", str(campaign_id))).stdout
    refused(
        run("campaign", "pause", str(campaign_id)), "status: cannot pause a campaign that is paused"
    )
    assert "scheduled" in ok(run("campaign", "resume", str(campaign_id))).stdout
    assert "cancelled" in ok(run("campaign", "cancel", str(campaign_id))).stdout
    human = ok(run("campaign", "show", str(campaign_id))).stdout
    assert "variant B: 'Last chance'" in human and "A/B: 30% sample, winner by revenue" in human


async def _segments(db_url: str) -> None:
    database = await Database.open(db_url)
    definition = {
        "kind": "profile",
        "field": "email",
        "op": "ends_with",
        "value": "@customer.example",
    }
    await segment_service.create(database, name="Newsletter", definition=definition)
    await segment_service.create(database, name="Customers", definition=definition)
    await database.close()


def test_audience_names_and_errors(run, shop: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(_segments(db_url))
    refused(run(
        "campaign", "create", "--name", "n", "--template", "sale", "--subject", "s",
        "--audience", "Newsletter", "--from", "news@shop.example",
    ), "--audience: 'Newsletter' is both a list and a segment: write list:Newsletter or "
       "segment:Newsletter")  # fmt: skip
    made = ok(run(
        "campaign", "create", "--name", "n", "--template", "sale", "--subject", "s",
        "--audience", "segment:Newsletter", "--audience", "Customers",
        "--audience", "list:Newsletter", "--audience", "segment:Newsletter",
        "--from", "news@shop.example",
    ))  # fmt: skip
    both = int(made.stdout.strip().splitlines()[-1])
    shown = json.loads(ok(run("campaign", "show", str(both), "--json")).stdout)
    # A name given twice is kept once.
    assert [entry["kind"] for entry in shown["audience"]] == ["segment", "segment", "list"]

    base = ["campaign", "create", "--name", "n", "--template", "sale", "--subject", "s"]
    target = ["--audience", "list:Newsletter", "--from", "news@shop.example"]
    refused(run(*base, "--audience", "Nobody", "--from", "news@shop.example"),
            "--audience: no list or segment named 'Nobody'")  # fmt: skip
    refused(run(*base, "--audience", "list:Customers", "--from", "news@shop.example"),
            "--audience: no list named 'Customers'")  # fmt: skip
    refused(run(*base, "--audience", "Customers", "--from", "news@elsewhere.example"),
            "--from: elsewhere.example is not one of courriel's domains")  # fmt: skip
    refused(run(*base[:-1], "x" * 1000, *target), "--subject: ")
    no_template = ["campaign", "create", "--name", "n", "--template", "nope", "--subject", "s"]
    refused(run(*no_template, *target), "--template: no template named 'nope'")
    refused(run(*base, *target, "--ab-sample", "20"), "--subject-b/--template-b: ")
    refused(run(*base, *target, "--subject-b", "t", "--ab-sample", "100"), "--ab-sample: ")
    refused(run(*base, *target, "--subject-b", "t", "--ab-wait", "soon"), "--ab-wait: ")
    refused(run(*base, *target, "--at", "2030-01-02T08:00:00"), "--at: give the UTC offset")
    refused(run(*base, *target, "--at", "tomorrow"), "--at: not an ISO-8601 time")
    refused(run("campaign", "show", "999"), "no campaign 999")

    draft = int(ok(run(*base, *target)).stdout.strip().splitlines()[-1])
    refused(run("campaign", "send", str(draft), address=""), "shop.address: set shop.address")
    refused(run("campaign", "resume", str(draft)), "status: cannot resume a campaign that is draft")

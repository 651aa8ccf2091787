"""``courriel contacts`` and ``courriel lists`` through click's CliRunner, on both databases."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from courriel.cli.main import _register, cli


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


@pytest.fixture
def run(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--data-dir", str(tmp_path / "data"), "--set", f"database.url={db_url}", *args],
            env={},
        )

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def test_import_export_forget(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "in.csv"
    source.write_bytes(
        "\ufeffemail,first_name,phone,country,tags,Plan\r\n"
        "ann@example.com,Ann,06 12 34 56 78,FR,vip,gold\r\n"
        "bob@example.com,Bob,12,,,\r\n"
        '"carl@example.com","Carl ""C""",,,,"two\r\nlines"\r\n'.encode()
    )
    result = ok(run("contacts", "import", str(source), "--list", "Shop", "--consent", "subscribed"))
    assert "2 rows imported: 2 new, 0 updated, 0 unchanged; 1 refused" in result.stderr
    assert "line 3: phone: " in result.stderr
    listed = ok(run("lists", "list")).stdout
    assert "Shop" in listed and "2" in listed

    # Result.stdout folds CRLF; the bytes are what was written.
    exported = ok(run("contacts", "export", "--list", "Shop")).stdout_bytes
    rows = list(csv.DictReader(io.StringIO(exported.decode(), newline="")))
    assert [(r["email"], r["first_name"], r["phone"], r["Plan"]) for r in rows] == [
        # A leading + is quote-protected against spreadsheet formulas (OWASP CSV
        # injection); the importer removes the quote again.
        ("ann@example.com", "Ann", "'+33612345678", "gold"),
        ("carl@example.com", 'Carl "C"', "", "two\r\nlines"),
    ]
    assert rows[1]["email_consent"] == "subscribed"
    out = tmp_path / "out.csv"
    assert "2 contacts exported" in ok(run("contacts", "export", "-o", str(out))).stderr
    assert out.read_bytes() == exported

    person = json.loads(ok(run("contacts", "export-data", "ANN@example.com")).stdout)
    assert person["contact"]["first_name"] == "Ann"
    assert [m["name"] for m in person["lists"]] == ["Shop"]
    assert "erased" in ok(run("contacts", "forget", "ann@example.com")).stdout
    again = run("contacts", "import", str(source))
    assert again.exit_code == 0
    assert "line 2: email: this address was erased" in again.stderr


def test_unusable_and_refused_files(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    no_email = tmp_path / "bad.csv"
    no_email.write_text("name,phone\nx,y\n", encoding="utf-8")
    result = run("contacts", "import", str(no_email))
    assert result.exit_code == 1
    assert "no email column" in result.stderr
    all_bad = tmp_path / "all-bad.csv"
    all_bad.write_text("email\nnot-an-address\n", encoding="utf-8")
    result = run("contacts", "import", str(all_bad))
    assert result.exit_code == 1
    assert "line 2: email:" in result.stderr
    missing = run("contacts", "import", str(tmp_path / "missing.csv"))
    assert missing.exit_code == 1 and "cannot read" in missing.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,city\na@example.com,Bogot\xe1\n".encode("latin-1"))
    result = run("contacts", "import", str(latin))
    assert result.exit_code == 1 and "not UTF-8" in result.stderr
    assert run("contacts", "import", str(no_email), "--consent", "maybe").exit_code == 2


def test_lists_commands(run) -> None:  # type: ignore[no-untyped-def]
    assert ok(run("lists", "list")).stdout.strip() == "no lists"
    assert (
        "list News added (double opt-in)"
        in ok(run("lists", "add", "News", "--double-opt-in")).stdout
    )
    failed = run("lists", "add", "News")
    assert failed.exit_code == 1 and "exists already" in failed.stderr
    table = ok(run("lists", "list")).stdout
    assert "News" in table and "yes" in table
    missing = run("contacts", "export", "--list", "Nope")
    assert missing.exit_code == 1 and "no list" in missing.stderr

"""``courriel template`` through click's CliRunner on a fresh data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from courriel.cli.main import _register, cli

MJML = (
    "<mjml><mj-body><mj-section><mj-column>\n"
    "<mj-text>Hello {{ contact.first_name | default('there') }}</mj-text>\n"
    "<mj-text>{% for p in recommendations('best_sellers', 3) %}{{ p.title }}. {% endfor %}"
    "</mj-text>\n</mj-column></mj-section></mj-body></mjml>\n"
)


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


def run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], env={})


def test_template_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "welcome.mjml"
    source.write_text(MJML, encoding="utf-8")
    added = run(data, "template", "add", "welcome", "--file", str(source))
    assert added.exit_code == 0, (added.output, added.stderr)
    assert "(mjml)" in added.output and added.output.strip().splitlines()[-1].isdigit()

    listed = run(data, "template", "list")
    assert listed.exit_code == 0 and "welcome" in listed.output and "mjml" in listed.output
    shown = run(data, "template", "show", "welcome")
    assert shown.output == MJML

    text = run(
        data, "template", "preview", "welcome", "--text", "--subject", "Hi {{ contact.first_name }}"
    )
    assert text.exit_code == 0, (text.output, text.stderr)
    assert "Subject: Hi Jane" in text.output
    assert "Hello Jane" in text.output and "Sample product 3." in text.output
    html = run(data, "template", "preview", "welcome")
    assert "<html" in html.output and "Hello Jane" in html.output

    unknown = run(data, "template", "preview", "welcome", "--contact", "nobody@shop.example")
    assert unknown.exit_code == 1 and "nobody@shop.example" in unknown.stderr

    page = tmp_path / "page.html"
    page.write_text("<p>{{ shop.name }}</p>\n", encoding="utf-8")
    updated = run(data, "template", "update", "welcome", "--file", str(page))
    assert updated.exit_code == 0, updated.stderr
    assert run(data, "template", "show", "welcome").output == "<p>{{ shop.name }}</p>\n"

    deleted = run(data, "template", "delete", "welcome")
    assert deleted.exit_code == 0
    assert "no templates" in run(data, "template", "list").output


def test_bad_file_reports_file_line_and_column(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = tmp_path / "bad.html"
    bad.write_text("<p>one</p>\n<p>{{ contact.first_name | }}</p>\n", encoding="utf-8")
    refused = run(data, "template", "add", "bad", "--file", str(bad))
    assert refused.exit_code == 1
    assert f"{bad}: line 2, column 4:" in refused.stderr
    assert "no templates" in run(data, "template", "list").output
    missing = run(data, "template", "add", "x", "--file", str(tmp_path / "nope.html"))
    assert missing.exit_code == 1 and "cannot read" in missing.stderr

"""``courriel domain add`` creates DKIM keys; ``domain dns [--check]`` against a loopback DNS."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from courriel.cli.main import _register, cli
from courriel.testing.dns import DnsServer

HOST = "mail.shop.test"


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


def run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "--set", f"server.hostname={HOST}", *args],
        env={},
    )


def zone_from(output: str) -> dict[tuple[str, str], list[str]]:
    zone: dict[tuple[str, str], list[str]] = {}
    for line in output.splitlines():
        if line.startswith(";"):
            continue
        name, klass, rdtype, rdata = line.split("\t")
        assert klass == "IN"
        zone.setdefault((name, rdtype), []).append(rdata)
    return zone


def test_domain_add_creates_two_keys_and_dns_prints_them(tmp_path: Path) -> None:
    added = run(tmp_path, "domain", "add", "Shop.TEST")
    assert added.exit_code == 0, added.output
    created = re.findall(r"DKIM key (c\d{8}[re]) \((rsa|ed25519)-sha256\) created", added.output)
    assert [kind for _sel, kind in created] == ["rsa", "ed25519"]
    rsa_selector, ed_selector = (sel for sel, _kind in created)

    printed = run(tmp_path, "domain", "dns", "shop.test")
    assert printed.exit_code == 0, printed.output
    assert printed.stderr == ""  # no keys created this time
    zone = zone_from(printed.stdout)
    assert zone[("shop.test.", "MX")] == [f"10 {HOST}."]
    assert zone[("shop.test.", "TXT")] == ['"v=spf1 mx -all"']
    assert zone[("_dmarc.shop.test.", "TXT")] == ['"v=DMARC1; p=quarantine"']
    assert zone[("autoconfig.shop.test.", "CNAME")] == [f"{HOST}."]
    assert zone[("autodiscover.shop.test.", "CNAME")] == [f"{HOST}."]
    (rsa_txt,) = zone[(f"{rsa_selector}._domainkey.shop.test.", "TXT")]
    assert rsa_txt.startswith('"v=DKIM1; k=rsa; p=MII') and '" "' in rsa_txt
    (ed_txt,) = zone[(f"{ed_selector}._domainkey.shop.test.", "TXT")]
    assert re.fullmatch(r'"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="', ed_txt)


def test_domain_dns_for_unknown_domain_fails(tmp_path: Path) -> None:
    result = run(tmp_path, "domain", "dns", "nowhere.test")
    assert result.exit_code == 1 and "does not exist" in result.stderr


async def test_domain_dns_check_against_loopback_dns(tmp_path: Path) -> None:
    added = await asyncio.to_thread(run, tmp_path, "domain", "add", "shop.test")
    assert added.exit_code == 0, added.output
    printed = await asyncio.to_thread(run, tmp_path, "domain", "dns", "shop.test")
    zone = zone_from(printed.stdout)
    zone[(f"{HOST}.", "A")] = ["127.0.0.1"]

    async with DnsServer(zone) as port:
        check = await asyncio.to_thread(
            run, tmp_path, "--set", f"dns.nameservers=127.0.0.1:{port}", "domain", "dns",
            "shop.test", "--check",
        )  # fmt: skip
    assert check.exit_code == 0, (check.output, check.stderr)
    lines = check.stdout.splitlines()
    assert len(lines) == 7 and all(line.startswith("OK ") for line in lines)

    del zone[("_dmarc.shop.test.", "TXT")]
    dkim_name = next(name for name, _t in zone if name.startswith("c") and "_domainkey" in name)
    zone[(dkim_name, "TXT")] = ['"v=DKIM1; k=rsa; p=AAAA"']
    del zone[("autodiscover.shop.test.", "CNAME")]
    zone[("autodiscover.shop.test.", "A")] = ["127.0.0.9"]  # not where the CNAME leads
    async with DnsServer(zone) as port:
        check = await asyncio.to_thread(
            run, tmp_path, "--set", f"dns.nameservers=127.0.0.1:{port}", "domain", "dns",
            "shop.test", "--check",
        )  # fmt: skip
    assert check.exit_code == 1
    assert "3 of 7 records are not published as expected" in check.stderr
    rows = [line.split() for line in check.stdout.splitlines()]
    status = {(row[1], row[2].rstrip(":")): row[0] for row in rows}
    other_dkim = next(n for _t, n in status if "_domainkey" in n and n != dkim_name.rstrip("."))
    assert status == {
        ("MX", "shop.test"): "OK",
        ("TXT", "shop.test"): "OK",
        ("TXT", dkim_name.rstrip(".")): "DIFFERENT",
        ("TXT", other_dkim): "OK",
        ("TXT", "_dmarc.shop.test"): "MISSING",
        ("CNAME", "autoconfig.shop.test"): "OK",
        ("CNAME", "autodiscover.shop.test"): "DIFFERENT",
    }
    assert "found 'v=DKIM1; k=rsa; p=AAAA'" in check.stdout

"""Dashboard mail-server pages: domains (records, live DNS check), accounts, aliases, queue.

Owner only: marketers and viewers get 403 on every route, GET and POST. The live check
asks a loopback DNS server (``courriel.testing.dns``). Runs on both engines.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from tests.integration.web.conftest import Clock
from tests.integration.web.dashboard.conftest import Users
from tests.integration.web.dashboard.server_seed import seed_deferred

from courriel.delivery.queue_admin import show_message
from courriel.dns.resolver import DnsResolver
from courriel.errors import NotFound
from courriel.mailstore.service import MailStore
from courriel.storage.blobs import BlobStore
from courriel.testing.dns import DnsServer
from courriel.web.app import WebServices

HOST = "mail.shop.test"
PAGES = ["/server/domains", "/server/accounts", "/server/aliases", "/server/queue"]
OWNER_ONLY_GETS = ["/server/domains/x.test", "/server/domains/x.test/check", "/server/queue/1"]
POSTS = [
    ("/server/domains", {"name": "x.test"}),
    ("/server/domains/x.test/remove", {}),
    ("/server/accounts", {"address": "a@x.test", "password": "long enough pw"}),
    ("/server/accounts/a@x.test/password", {"password": "long enough pw"}),
    ("/server/accounts/a@x.test/remove", {}),
    ("/server/aliases", {"alias": "a@x.test", "targets": "b@x.test"}),
    ("/server/aliases/remove", {"alias": "a@x.test"}),
    ("/server/queue/1/retry", {}),
    ("/server/queue/1/drop", {}),
]


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsServer]:
    server = DnsServer({(HOST, "A"): ["127.0.0.1"]})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def services(
    services: WebServices, mailstore: MailStore, blobs: BlobStore, dns_server: DnsServer
) -> WebServices:
    """The web services with a mail store, blobs, a loopback resolver and a hostname."""
    resolver = DnsResolver(nameservers=[f"127.0.0.1:{dns_server.port}"], timeout=2.0)
    return replace(services, mailstore=mailstore, blobs=blobs, resolver=resolver, hostname=HOST)


@pytest.mark.parametrize("role", ["viewer", "marketer"])
async def test_server_pages_refuse_other_roles(users: Users, role: str) -> None:
    browser = await users.login(role)
    for url in [*PAGES, *OWNER_ONLY_GETS]:
        response = await browser.get(url)
        assert response.status_code == 403, url
        assert "your role cannot open this page" in response.text, url
    for url, data in POSTS:
        response = await browser.post(url, data)
        assert response.status_code == 403, url
        assert "your role can read this page but not change it" not in response.text
        assert "your role cannot open this page" in response.text  # the HTML refusal page


async def test_owner_opens_every_server_page(users: Users) -> None:
    owner = await users.login("owner")
    for url in PAGES:
        response = await owner.get(url)
        assert response.status_code == 200, url
        assert 'aria-current="page"' in response.text


async def test_posts_without_csrf_are_refused(users: Users) -> None:
    owner = await users.login("owner")
    for url, data in POSTS:
        response = await owner.client.post(url, data=data)
        assert response.status_code == 403, url
    assert (await owner.get("/server/domains")).text.count("x.test") == 0


async def test_add_a_domain_shows_its_records_and_what_dns_says(
    users: Users, dns_server: DnsServer
) -> None:
    owner = await users.login("owner")
    added = await owner.post("/server/domains", {"name": "Shop.TEST"})
    assert added.status_code == 303
    assert added.headers["location"] == "/server/domains/shop.test?added=1"
    page = await owner.get(added.headers["location"])
    assert page.status_code == 200
    assert "10 mail.shop.test" in page.text and "v=spf1 mx -all" in page.text
    selectors = re.findall(r"(c\d{8}[re])\._domainkey\.shop\.test", page.text)
    assert len(set(selectors)) == 2  # RSA and Ed25519 keys were made with the domain
    assert 'hx-get="/server/domains/shop.test/check"' in page.text

    # DNS publishes the MX and SPF only: those are green, the others red.
    dns_server.zone = {
        (HOST, "A"): ["127.0.0.1"],
        ("shop.test", "MX"): [f"10 {HOST}."],
        ("shop.test", "TXT"): ['"v=spf1 mx -all"'],
        ("_dmarc.shop.test", "TXT"): ['"v=DMARC1; p=none"'],
    }
    check = await owner.get("/server/domains/shop.test/check", headers={"HX-Request": "true"})
    assert check.status_code == 200
    assert "<html" not in check.text  # an htmx fragment
    statuses = re.findall(r'data-status="([A-Z]+)"', check.text)
    assert statuses[:2] == ["OK", "OK"]
    assert statuses.count("OK") == 2 and "DIFFERENT" in statuses and "MISSING" in statuses
    assert "v=DMARC1; p=none" in check.text  # what DNS says instead
    assert "2 of 7 records published" in check.text


async def test_dns_failure_reads_could_not_check(
    users: Users, dns_server: DnsServer, services: WebServices
) -> None:
    owner = await users.login("owner")
    assert (await owner.post("/server/domains", {"name": "shop.test"})).status_code == 303
    dns_server.servfail = {"shop.test", "_dmarc.shop.test", "autoconfig.shop.test"}
    check = await owner.get("/server/domains/shop.test/check")
    assert check.status_code == 200 and "<html" in check.text  # a full page without htmx
    assert 'data-status="ERROR"' in check.text and "could not check" in check.text

    no_resolver = Users(replace(services, resolver=None))
    no_resolver.count = 100  # user names distinct from those of ``users``
    try:
        other = await no_resolver.login("owner")
        page = await other.get("/server/domains/shop.test/check", headers={"HX-Request": "true"})
        assert page.status_code == 200
        assert "could not check" in page.text and "no DNS resolver" in page.text
    finally:
        await no_resolver.close()


async def test_bad_and_duplicate_domains_are_refused_with_a_message(users: Users) -> None:
    owner = await users.login("owner")
    bad = await owner.post("/server/domains", {"name": "not a domain!"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert 'value="not a domain!"' in bad.text  # the form keeps what was typed
    assert (await owner.post("/server/domains", {"name": "shop.test"})).status_code == 303
    again = await owner.post("/server/domains", {"name": "shop.test"})
    assert again.status_code == 422 and "exists" in again.text
    assert (await owner.get("/server/domains/nowhere.test")).status_code == 404
    assert (await owner.get("/server/domains/bad..name")).status_code == 404


async def test_remove_a_domain_in_use_needs_force(users: Users, mailstore: MailStore) -> None:
    owner = await users.login("owner")
    await owner.post("/server/domains", {"name": "shop.test"})
    await mailstore.add_account("ann@shop.test", "a long password")
    refused = await owner.post("/server/domains/shop.test/remove", {})
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    removed = await owner.post("/server/domains/shop.test/remove", {"force": "yes"})
    assert removed.status_code == 303
    assert await mailstore.list_domains() == []
    assert removed.headers["location"] == "/server/domains?done=removed"
    listing = await owner.get(removed.headers["location"])
    assert "Domain removed" in listing.text


async def test_accounts_add_filter_change_password_remove(
    users: Users, mailstore: MailStore
) -> None:
    owner = await users.login("owner")
    await mailstore.add_domain("shop.test")
    await mailstore.add_domain("other.test")
    added = await owner.post(
        "/server/accounts", {"address": "Ann@shop.test", "password": "first password"}
    )
    assert added.status_code == 303
    await owner.post("/server/accounts", {"address": "zed@other.test", "password": "zed password"})
    listing = await owner.get(added.headers["location"])
    assert 'role="status">Account added.' in listing.text
    only = await owner.get("/server/accounts?domain=shop.test")
    assert "ann@shop.test" in only.text and "zed@other.test" not in only.text

    duplicate = await owner.post(
        "/server/accounts", {"address": "ann@shop.test", "password": "another one"}
    )
    assert duplicate.status_code == 422 and "exists" in duplicate.text
    foreign = await owner.post(
        "/server/accounts", {"address": "bob@elsewhere.test", "password": "a password"}
    )
    assert foreign.status_code == 422 and 'role="alert"' in foreign.text
    empty = await owner.post("/server/accounts", {"address": "bob@shop.test", "password": ""})
    assert empty.status_code == 422 and "password" in empty.text

    changed = await owner.post(
        "/server/accounts/ann@shop.test/password", {"password": "second password"}
    )
    assert changed.status_code == 303
    assert await mailstore.authenticate("ann@shop.test", "second password") is not None
    assert await mailstore.authenticate("ann@shop.test", "first password") is None
    missing = await owner.post("/server/accounts/nobody@shop.test/password", {"password": "xyzxyz"})
    assert missing.status_code == 404

    removed = await owner.post("/server/accounts/ann@shop.test/remove", {})
    assert removed.status_code == 303
    assert [a.address for a in await mailstore.list_accounts()] == ["zed@other.test"]


async def test_aliases_add_and_remove(users: Users, mailstore: MailStore) -> None:
    owner = await users.login("owner")
    await mailstore.add_domain("shop.test")
    await mailstore.add_account("ann@shop.test", "a long password")
    added = await owner.post(
        "/server/aliases",
        {"alias": "sales@shop.test", "targets": "ann@shop.test, boss@remote.test"},
    )
    assert added.status_code == 303
    catch_all = await owner.post(
        "/server/aliases", {"alias": "@shop.test", "targets": "ann@shop.test"}
    )
    assert catch_all.status_code == 303
    listing = await owner.get("/server/aliases")
    assert "sales@shop.test" in listing.text and "boss@remote.test" in listing.text
    assert "@shop.test" in listing.text

    no_target = await owner.post("/server/aliases", {"alias": "x@shop.test", "targets": " "})
    assert no_target.status_code == 422 and "target" in no_target.text
    bad = await owner.post("/server/aliases", {"alias": "x@nowhere.test", "targets": "a@b.test"})
    assert bad.status_code == 422 and 'value="x@nowhere.test"' in bad.text

    one = await owner.post(
        "/server/aliases/remove", {"alias": "sales@shop.test", "target": "boss@remote.test"}
    )
    assert one.status_code == 303
    aliases = {a.alias: a.targets for a in await mailstore.list_aliases()}
    assert aliases["sales@shop.test"] == ("ann@shop.test",)
    assert (await owner.post("/server/aliases/remove", {"alias": "@shop.test"})).status_code == 303
    assert "@shop.test" not in {a.alias for a in await mailstore.list_aliases()}
    gone = await owner.post("/server/aliases/remove", {"alias": "nope@shop.test"})
    assert gone.status_code == 404


async def test_queue_filter_show_retry_drop(
    users: Users, services: WebServices, blobs: BlobStore, clock: Clock
) -> None:
    owner = await users.login("owner")
    message_id, later = await seed_deferred(services.db, blobs, recipient="bob@remote.test")
    listing = await owner.get("/server/queue?state=deferred")
    assert (
        f'href="/server/queue/{message_id}"' in listing.text and "bob@remote.test" in listing.text
    )
    assert "bob@remote.test" not in (await owner.get("/server/queue?state=failed")).text
    assert "bob@remote.test" in (await owner.get("/server/queue?domain=Remote.test")).text
    assert "bob@remote.test" not in (await owner.get("/server/queue?domain=gmail.com")).text

    detail = await owner.get(f"/server/queue/{message_id}")
    assert detail.status_code == 200
    assert "451 4.3.0 mailbox busy" in detail.text and "mx1.remote.test" in detail.text
    assert f'data-next-attempt="{later.isoformat()}"' in detail.text

    retried = await owner.post(f"/server/queue/{message_id}/retry")
    assert retried.status_code == 303
    after = await owner.get(retried.headers["location"])
    assert "1 recipient(s) due now." in after.text
    (recipient,) = (await show_message(services.db, message_id)).entry.recipients
    assert recipient.next_attempt_at == clock.now

    dropped = await owner.post(f"/server/queue/{message_id}/drop")
    assert dropped.status_code == 303
    assert f"Message {message_id} dropped." in (await owner.get(dropped.headers["location"])).text
    with pytest.raises(NotFound):
        await show_message(services.db, message_id)
    assert (await owner.get(f"/server/queue/{message_id}")).status_code == 404
    assert (await owner.post(f"/server/queue/{message_id}/retry")).status_code == 404


async def test_a_node_without_a_mail_store_says_so(services: WebServices) -> None:
    bare = Users(replace(services, mailstore=None, blobs=None))
    try:
        owner = await bare.login("owner")
        page = await owner.get("/server/accounts")
        assert page.status_code == 503 and "mail store" in page.text
        dropped = await owner.post("/server/queue/1/drop")
        assert dropped.status_code == 503 and "blob store" in dropped.text
    finally:
        await bare.close()


@pytest.mark.parametrize(
    "url",
    [
        "/server/domains?removed=Evil%20text",
        "/server/accounts?added=evil@x.test&removed=evil&password=evil",
        "/server/aliases?added=evil@x.test&removed=evil",
    ],
)
async def test_success_notices_never_come_from_the_url(users: Users, url: str) -> None:
    """A crafted link cannot make a page claim something happened: notices are keys."""
    owner = await users.login("owner")
    page = await owner.get(url)
    assert page.status_code == 200
    assert "evil" not in page.text.lower() and 'role="status"' not in page.text
    unknown = await owner.get(url.split("?", maxsplit=1)[0] + "?done=Evil")
    assert "evil" not in unknown.text.lower() and 'role="status"' not in unknown.text


async def test_errors_of_server_pages_are_html_pages(users: Users, mailstore: MailStore) -> None:
    owner = await users.login("owner")
    bad_address = await owner.post("/server/accounts/not-an-address/remove", {})
    assert bad_address.status_code == 422
    assert bad_address.headers["content-type"].startswith("text/html")
    assert 'class="notice error"' in bad_address.text
    no_alias = await owner.post("/server/aliases/remove", {"alias": ""})
    assert no_alias.status_code == 422 and no_alias.headers["content-type"].startswith("text/html")
    missing = await owner.get("/server/queue/9223372036854775807")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")

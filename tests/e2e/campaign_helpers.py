"""Helpers of the campaign end-to-end test: a shop served by ``courriel serve``, driven by wire.

:class:`ShopNode` prepares a data folder through the CLI only (``courriel.toml`` with the
shop settings, ``domain add`` with its DKIM keys, accounts, ``apikey create``,
``integration add shopify``), runs ``courriel serve`` on loopback, and speaks to it the way
people and shops do: the CLI, the REST API and webhooks over HTTP (urllib), SMTP (smtplib)
and POP3 (poplib). ``http.public_url`` is ``https://mail.shop.test``; requests for its
links go to the loopback HTTP listener with that Host.

The campaign commands (``courriel campaign create|send|report``) are used when the CLI
has them; otherwise the same steps go through ``/api/v1/campaigns``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import poplib
import re
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from courriel.integrations.webhooks import sign
from courriel.testing.dns import DnsServer
from courriel.testing.subprocess_node import ServeProcess, run_cli

DOMAIN = "shop.test"
PUBLIC = "https://mail.shop.test"
PASSWORD = "s3cret-Pa55"
SHOP_SECRET = "shpss_e2e0123456789abcdef0123456789"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
PRODUCTS = {1001: "Alpine Kettle", 1002: "Basalt Mug", 1003: "Cedar Tray", 1004: "Dune Lamp"}

TEMPLATE = """<mjml>
  <mj-body>
    <mj-section><mj-column>
      <mj-text>Hello {{ contact.first_name | default("there") }}!</mj-text>
      {% for p in recommendations("best_sellers", 3) %}
      <mj-text><a href="{{ p.url }}">{{ p.title }}</a></mj-text>
      {% endfor %}
      <mj-button href="https://shop.example/sale">Shop the sale</mj-button>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(slots=True)
class Reply:
    """An HTTP answer."""

    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class ShopNode:
    """A data folder prepared through the CLI and its ``courriel serve`` process."""

    data_dir: Path
    db_url: str
    http_port: int = field(default_factory=free_port)
    api_key: str = ""
    serve: ServeProcess | None = None
    extra: dict[str, str] = field(default_factory=dict)  # more --set for serve
    outputs: list[str] = field(default_factory=list)  # the output of each stopped serve

    # -- preparation (CLI) ---------------------------------------------------------------

    def prepare(self, accounts: list[str]) -> None:
        """Config file, domain with DKIM keys, accounts, an API key, the Shopify shop."""
        self.data_dir.mkdir(parents=True)
        (self.data_dir / "courriel.toml").write_text(
            f'[http]\npublic_url = "{PUBLIC}"\n'
            '[shop]\nname = "Grove Goods"\naddress = "1 Orchard Lane, 75002 Paris, France"\n'
            'url = "https://shop.example"\ncurrency = "USD"\n'
            "[campaigns]\nbatch = 200\n"
        )
        self.cli("domain", "add", DOMAIN)
        for user in accounts:
            self.cli("account", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
        self.api_key = self.cli("apikey", "create", "e2e").strip().splitlines()[-1]
        self.cli("integration", "add", "shopify", "grove", "--secret-stdin", stdin=SHOP_SECRET)

    def cli(self, *args: str, stdin: str = "") -> str:
        """Run ``courriel ARGS``; its stdout (fails the test on a non-zero status)."""
        result = run_cli(self.data_dir, list(args), stdin=stdin, database_url=self.db_url)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    # -- the server ----------------------------------------------------------------------

    def start(self) -> None:
        """Start ``courriel serve`` (every role) with HTTP on the chosen port."""
        extra = {"listen.http": f"127.0.0.1:{self.http_port}", **self.extra}
        self.serve = ServeProcess(self.data_dir, self.db_url, extra=extra)
        self.serve.start()

    def port(self, key: str) -> int:
        assert self.serve is not None
        return self.serve.ports[key]

    def server_log(self) -> str:
        """The tail of the server's output (for failure messages)."""
        return "".join(self.serve.output[-40:]) if self.serve is not None else ""

    def stop(self, *, kill: bool = False) -> None:
        if self.serve is None:
            return
        if kill:
            self.serve.kill()
        else:
            status = self.serve.terminate()
            assert status == 0, "".join(self.serve.output)
        self.outputs.append("".join(self.serve.output))
        self.serve = None

    # -- HTTP ----------------------------------------------------------------------------

    def http(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """A request to a path or to a public URL, sent to the loopback listener."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{target}", data=body, method=method
        )
        request.add_header("Host", urlsplit(PUBLIC).netloc)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with _OPENER.open(request, timeout=30) as answer:
                return Reply(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.headers, exc.read())

    def api(self, method: str, path: str, data: Any = None) -> Any:
        """A REST API call with the test's key; the decoded JSON (2xx asserted)."""
        body = None if data is None else json.dumps(data).encode()
        headers = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        reply = self.http(method, path, body=body, headers=headers)
        assert 200 <= reply.status < 300, (method, path, reply.status, reply.body)
        return reply.json() if reply.body else None

    def shopify(self, topic: str, payload: dict[str, Any]) -> None:
        """Post a signed Shopify webhook, as the shop would."""
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(SHOP_SECRET, body),
            "X-Shopify-Shop-Domain": "grove.myshopify.com",
            "X-Shopify-Webhook-Id": f"e2e-{topic}-{payload['id']}",
            "X-Shopify-API-Version": "2025-10",
        }
        reply = self.http("POST", "/hooks/shopify/grove", body=body, headers=headers)
        assert reply.status < 300, (topic, reply.status, reply.body, self.server_log())

    # -- campaigns: the CLI when it has them, else the API -------------------------------

    def create_campaign(self, name: str, template: str, audience: str) -> int:
        """A draft campaign to a list; its id."""
        out = self.cli(
            "campaign", "create", "--name", name, "--template", template,
            "--subject", "News from Grove", "--audience", audience,
            "--from", f"news@{DOMAIN}",
        )  # fmt: skip
        return int(out.strip().splitlines()[-1])

    def send_and_wait(self, campaign_id: int, timeout: float = 300) -> None:
        """Send and wait until the campaign is ``sent``."""
        self.cli("campaign", "send", str(campaign_id), "--wait")
        self.wait_for(lambda: self.status(campaign_id) == "sent", timeout, "campaign sent")

    def status(self, campaign_id: int) -> str:
        return str(self.api("GET", f"/api/v1/campaigns/{campaign_id}")["status"])

    def report(self, campaign_id: int) -> dict[str, Any]:
        """The report's totals (the API's JSON; the CLI's text is checked by the caller)."""
        return dict(self.api("GET", f"/api/v1/campaigns/{campaign_id}/report")["total"])

    @staticmethod
    def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    # -- mailboxes -----------------------------------------------------------------------

    def pop3(self, user: str) -> poplib.POP3_SSL:
        """A POP3 session (implicit TLS, RFC 8314) logged in as ``user``; quit it after use."""
        context = ssl.create_default_context(cafile=str(self.data_dir / "tls" / "cert.pem"))
        context.check_hostname = False  # 127.0.0.1, while the certificate names the host
        client = poplib.POP3_SSL("127.0.0.1", self.port("pop3s"), timeout=60, context=context)
        client.user(user)
        client.pass_(PASSWORD)
        return client

    def smtp_to(self, recipient: str, message: bytes, sender: str = "") -> None:
        """Submit ``message`` to port 25 (MX) for ``recipient``, null reverse path by default."""
        with smtplib.SMTP("127.0.0.1", self.port("smtp"), timeout=30) as client:
            client.ehlo("mx.remote.example")
            client.sendmail(sender, [recipient], message)

    def dkim_txt(self) -> dict[bytes, bytes]:
        """The DKIM TXT records ``courriel domain dns`` asks to publish: name -> value."""
        records: dict[bytes, bytes] = {}
        for line in self.cli("domain", "dns", DOMAIN).splitlines():
            if "_domainkey" not in line or line.startswith(";"):
                continue
            name = line.split()[0].rstrip(".") + "."
            records[name.encode()] = "".join(re.findall(r'"([^"]*)"', line)).encode()
        assert records, "no DKIM record printed"
        return records


def fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    assert isinstance(data, dict)
    return data


def product(product_id: int, title: str) -> dict[str, Any]:
    """The products/create fixture as product ``product_id``, in stock."""
    data = fixture("products_create")
    data |= {"id": product_id, "title": title, "handle": f"p{product_id}"}
    data["variants"] = [
        v | {"id": product_id * 10 + n, "product_id": product_id, "inventory_quantity": 50}
        for n, v in enumerate(data["variants"])
    ]
    data["images"] = []
    data["image"] = None
    return data


def order(order_id: int, buyer: str, lines: dict[int, int], placed: str) -> dict[str, Any]:
    """The orders/create fixture for ``buyer`` with ``{product id: quantity}`` lines."""
    data = fixture("orders_create")
    first = data["line_items"][0]
    data["line_items"] = [
        first
        | {
            "id": order_id * 100 + pid % 100,
            "product_id": pid,
            "variant_id": pid * 10,
            "quantity": quantity,
            "title": PRODUCTS.get(pid, "x"),
            "name": PRODUCTS.get(pid, "x"),
        }
        for pid, quantity in lines.items()
    ]
    data |= {
        "id": order_id,
        "name": f"#{order_id}",
        "order_number": order_id,
        "email": buyer,
        "contact_email": buyer,
        "created_at": placed,
        "processed_at": placed,
        "updated_at": placed,
        "refunds": [],
        "fulfillments": [],
    }
    if data.get("customer"):
        data["customer"] = data["customer"] | {"email": buyer, "id": order_id + 7}
    return data


@dataclass(slots=True)
class _Recorder:
    """aiosmtpd handler keeping (MAIL FROM, RCPT TO, content) of every message."""

    got: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            self.got.append((envelope.mail_from, rcpt, envelope.original_content or b""))
        return "250 2.0.0 queued"


class RemoteMx:
    """A remote domain's MX on 127.0.0.2 (aiosmtpd) and a loopback DNS server naming it.

    Runs its own event loop in a thread, so synchronous tests can use it; ``overrides``
    make a node deliver ``domain``'s mail there.
    """

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.recorder = _Recorder()
        self.overrides: dict[str, str] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stack: Any = None

    def __enter__(self) -> RemoteMx:
        self._thread.start()
        self.overrides = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> dict[str, str]:
        from aiosmtpd.smtp import SMTP as AioSMTP

        self._stack = contextlib.AsyncExitStack()
        server = await asyncio.get_running_loop().create_server(
            lambda: AioSMTP(self.recorder, hostname=f"mx.{self.domain}"), "127.0.0.2", 0
        )
        self._stack.push_async_callback(server.wait_closed)
        self._stack.callback(server.close)
        zone = {
            (self.domain, "MX"): [f"10 mx.{self.domain}."],
            (f"mx.{self.domain}", "A"): ["127.0.0.2"],
        }
        dns_port = await self._stack.enter_async_context(DnsServer(zone))
        return {
            "dns.nameservers": f"127.0.0.1:{dns_port}",
            "dns.timeout": "2s",
            "delivery.mx_port": str(server.sockets[0].getsockname()[1]),
            "delivery.retry_schedule": "1s",
        }

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stack.aclose(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

"""DKIM signing of mail as it enters delivery (RFC 6376, RFC 8463).

Mail that an authenticated user submits, or that courriel originates, is signed once,
while it is being stored, with every active key of its ``From:`` domain when that domain
is local: the signatures go into the stored trace header, so local recipients get the
same signed bytes as remote ones and a retry never signs again. Mail arriving on the MX
listener is never signed, whatever its ``From:`` says.

The body is hashed as it streams past (relaxed canonicalization needs no look-back
beyond a line), and the header section is kept until it is complete (capped).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from courriel.delivery.dkimkeys import DkimSigner, load_signer
from courriel.errors import CourrielError
from courriel.mail.dkim import BodyHasher, parse_header_fields
from courriel.storage.db import Database

__all__ = ["MessageSigning", "SignerCache", "from_domain"]

# A header section longer than this is not signed (it would also be refused by most).
MAX_HEADER_SECTION = 256 * 1024


def from_domain(header_section: bytes) -> str | None:
    """The domain of the single ``From:`` mailbox, or None (absent, several, unparsable)."""
    values = [v for name, v in parse_header_fields(header_section) if name.lower() == "from"]
    if len(values) != 1:
        return None
    text = values[0].decode("utf-8", "replace")
    addresses = [a for _n, a in email.utils.getaddresses([text]) if "@" in a]
    if len(addresses) != 1:
        return None
    return addresses[0].rpartition("@")[2].strip().lower() or None


@dataclass(slots=True)
class SignerCache:
    """Signers per domain, reloaded after ``ttl`` seconds (keys change rarely).

    Concurrent misses for one domain share one load (a campaign's 64 sending tasks all
    miss a cold cache at once): the first starts it as a task, the others await that
    task. A :class:`CourrielError` (not a local domain) is cached as None for ``ttl``;
    any other exception reaches every waiter of that load and is not cached, so the next
    call loads again. The load is shielded: a cancelled caller never cancels it for the
    others.
    """

    db: Database
    ttl: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[float, DkimSigner | None]] = field(default_factory=dict)
    # The load in flight per domain; a done task left here is never awaited again.
    _loading: dict[str, asyncio.Task[DkimSigner | None]] = field(default_factory=dict)

    async def signer(self, domain: str) -> DkimSigner | None:
        """The domain's signer, or None when it is not local or has no active key."""
        while True:
            entry = self._entries.get(domain)
            if entry is not None and self.clock() < entry[0]:
                return entry[1]
            task = self._loading.get(domain)
            if task is None or task.done():
                task = asyncio.create_task(self._load(domain))
                self._loading[domain] = task
                task.add_done_callback(partial(self._forget, domain))
            # wait() neither raises the load's exception nor cancels it with this caller.
            await asyncio.wait((task,))
            if not task.cancelled():
                return task.result()
            # The load itself was cancelled (loop shutdown): try again, as a new load.

    async def _load(self, domain: str) -> DkimSigner | None:
        try:
            signer = await load_signer(self.db, domain)
        except CourrielError:
            signer = None  # not a local domain (or not a domain at all)
        self._entries[domain] = (self.clock() + self.ttl, signer)
        return signer

    def _forget(self, domain: str, task: asyncio.Task[DkimSigner | None]) -> None:
        if self._loading.get(domain) is task:
            del self._loading[domain]
        if not task.cancelled():
            task.exception()  # seen by the waiters, if any: no "never retrieved" warning


@dataclass(slots=True)
class MessageSigning:
    """The signing state of one message while its bytes stream past."""

    signers: SignerCache  # where the keys of the From: domain come from
    head: bytearray = field(default_factory=bytearray)
    header_section: bytes | None = None
    hasher: BodyHasher = field(default_factory=BodyHasher)
    too_long: bool = False

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the message (CRLF line ends, as stored)."""
        if self.header_section is not None:
            self.hasher.update(chunk)
            return
        if self.too_long:
            return
        # Look for the empty line only where it can newly be (the last 3 old bytes on),
        # so a header arriving in many small chunks is scanned once, not once per chunk.
        start = max(0, len(self.head) - 3)
        self.head += chunk
        if self.head.startswith(b"\r\n"):
            end = 2  # RFC 5322 §2.1: an empty header section
        else:
            found = self.head.find(b"\r\n\r\n", start)
            end = found + 4 if found >= 0 else -1
        if end >= 0:
            self.header_section = bytes(self.head[:end])
            self.hasher.update(bytes(self.head[end:]))
            self.head = bytearray()
        elif len(self.head) > MAX_HEADER_SECTION:
            self.too_long = True
            self.head = bytearray()

    async def signatures(self, *, now: float | None = None) -> bytes:
        """The DKIM-Signature fields for this message, or b"" when it is not signed."""
        if self.header_section is None:
            return b""
        domain = from_domain(self.header_section)
        if domain is None:
            return b""
        signer = await self.signers.signer(domain)
        if signer is None:
            return b""
        stamp = int(time.time() if now is None else now)
        return signer.signatures(self.header_section, self.hasher.digest(), stamp)

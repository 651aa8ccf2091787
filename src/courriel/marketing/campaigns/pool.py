"""Render processes: a large campaign's copies rendered and DKIM-signed off the event loop.

Rendering a copy (Jinja, CSS inlining, the text part, MIME) and signing it (RSA-2048 and
Ed25519) is a few milliseconds of pure CPU: one process can do it for at most a few hundred
copies a second, and every millisecond of it blocks the event loop that also queues and
delivers. A :class:`RenderPool` hands chunks of a batch to ``campaigns.render_processes``
worker processes (conventions §12) and gives back, per recipient, the finished copy.

What crosses the process boundary is plain data: a :class:`PoolContext` (the campaign, its
variants' template sources, the shop, the link and VERP keys, the settings and the signing
domain's PEM keys) and one :class:`PoolRow` per recipient with its recommendations computed
by the sender (the recommendation book stays in the sender's process). A worker builds the
renderers and the signer of a context once and keeps the last few, by ``PoolContext.key``.

Invariants:
- A copy comes back exactly as the sender would have rendered it on the loop
  (:func:`courriel.marketing.campaigns.sender.render_copy`), plus the DKIM signatures the
  router would have added when the From: domain has keys (``Made.signed``).
- A copy that cannot be rendered or encoded comes back as ``Made.error`` (the exception's
  type name, never its text: it may quote the address); any other exception fails the
  chunk, and the sender retries the batch at its next poll.
- Nothing here touches the database: the sender reads and writes, the workers compute.
- A worker exits as soon as its serving process dies, however it died.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from courriel.errors import InvalidInput
from courriel.mail.dkimsigner import DkimSigner, SigningKey
from courriel.marketing.campaigns.copies import (
    CopyJob,
    CopyRenderer,
    Recommend,
    SenderSettings,
    render_copy,
)
from courriel.marketing.campaigns.message import Copy
from courriel.marketing.campaigns.render import TemplateCopyRenderer
from courriel.marketing.campaigns.service import Campaign
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.recommend.rank import check_call
from courriel.marketing.templates.render import MAX_RECOMMENDATIONS

__all__ = [
    "COPY_ERRORS",
    "Made",
    "PoolContext",
    "PoolRow",
    "Pooling",
    "RecipientRow",
    "RenderPool",
    "SigningKeys",
    "context_key",
    "orphan_guard",
    "recommendation_table",
    "render_chunk",
]

log = logging.getLogger(__name__)
# What makes one copy fail (the recipient's row turns ``failed``), not the batch.
COPY_ERRORS = (InvalidInput, UnicodeEncodeError, ValueError)
_KEEP_CONTEXTS = 4  # contexts a worker keeps built (campaigns sending at once, A/B phases)


class RecipientRow(NamedTuple):
    """A row of ``sender.RECIPIENT_COLUMNS`` as plain data (what ``render_copy`` reads)."""

    id: int
    email: str
    variant_id: int | None
    contact_id: int
    first_name: str | None
    last_name: str | None
    country: str | None
    region: str | None
    city: str | None
    attributes: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolContext:
    """What every copy of one campaign step shares; built once per worker, by ``key``."""

    key: str  # changes whenever anything below changes
    campaign: Campaign
    templates: Mapping[int, tuple[str, str, str | None]]  # variant id -> html, subject, preheader
    shop: Mapping[str, Any]
    links: Links
    verp_key: bytes
    settings: SenderSettings
    # The From: domain and its active (selector, PEM) keys; None: the router decides.
    signing: tuple[str, tuple[tuple[str, str], ...]] | None


@dataclass(frozen=True, slots=True)
class PoolRow:
    """One recipient: its row, the variant it gets, and its recommendations by call."""

    row: RecipientRow
    variant_id: int
    # (kind, n) -> products; n == 0: the template's n is not a constant, the list is the
    # longest a call may get and a call takes its first n.
    recommendations: Mapping[tuple[str, int], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Made:
    """One recipient's outcome: the copy (signed or not), or why it could not be made."""

    recipient_id: int
    variant_id: int
    copy: Copy | None
    signed: bool = False
    error: str | None = None  # the exception's type name


def recommendation_table(
    recommend: Recommend, calls: frozenset[tuple[str, int]]
) -> dict[tuple[str, int], Sequence[Mapping[str, Any]]]:
    """The answers of ``recommend`` for a template's static ``calls`` (see PoolRow).

    Raises:
        InvalidInput: ``recommend`` refused a call (the copy fails, as it would on render).
    """
    return {(kind, n): list(recommend(kind, n if n else MAX_RECOMMENDATIONS)) for kind, n in calls}


def _table_recommend(table: Mapping[tuple[str, int], Sequence[Mapping[str, Any]]]) -> Recommend:
    def recommendations(kind: str, n: int) -> Sequence[Any]:
        kind, n = check_call(kind, n)  # the same refusals as the book's own function
        found = table.get((kind, n))
        if found is None:
            base = table.get((kind, 0))
            if base is None:
                raise InvalidInput(f"recommendations({kind!r}) was not prefetched", field="kind")
            found = base[:n]
        return [dict(product) for product in found]

    return recommendations


class _Built:
    """A context's renderers (per variant) and signer, as one worker built them."""

    __slots__ = ("renderers", "signer")

    def __init__(self, context: PoolContext) -> None:
        self.renderers: dict[int, CopyRenderer] = {
            variant_id: TemplateCopyRenderer(html, subject, preheader, context.shop)
            for variant_id, (html, subject, preheader) in context.templates.items()
        }
        self.signer: DkimSigner | None = None
        if context.signing is not None:
            domain, pems = context.signing
            keys = [SigningKey.from_pem(selector, pem) for selector, pem in pems]
            self.signer = DkimSigner(domain, keys) if keys else None


_built: OrderedDict[str, _Built] = OrderedDict()  # this worker's contexts, newest last


def _context(context: PoolContext) -> _Built:
    built = _built.get(context.key)
    if built is None:
        built = _Built(context)
        _built[context.key] = built
        while len(_built) > _KEEP_CONTEXTS:
            _built.popitem(last=False)
    else:
        _built.move_to_end(context.key)
    return built


def render_chunk(context: PoolContext, rows: Sequence[PoolRow], now: datetime) -> list[Made]:
    """Render (and sign) each row's copy; runs in a worker process (or anywhere)."""
    built = _context(context)
    variants = {v.id: v for v in context.campaign.variants}
    stamp = int(time.time())
    made: list[Made] = []
    for item in rows:
        ref = Ref("c", item.row.id)
        job = CopyJob(
            campaign=context.campaign,
            variant=variants[item.variant_id],
            ref=ref,
            row=item.row,
            recommend=_table_recommend(item.recommendations),
        )
        try:
            copy = render_copy(
                job,
                built.renderers[item.variant_id],
                links=context.links,
                verp_key=context.verp_key,
                settings=context.settings,
                now=now,
            )
        except COPY_ERRORS as exc:
            made.append(Made(ref.id, item.variant_id, None, error=type(exc).__name__))
            continue
        if built.signer is not None:
            signed = built.signer.sign_message(copy.message, stamp)
            copy = Copy(sender=copy.sender, recipient=copy.recipient, message=signed)
        made.append(Made(ref.id, item.variant_id, copy, signed=built.signer is not None))
    return made


def orphan_guard() -> None:
    """In a worker: exit as soon as the serving process is gone (even by SIGKILL).

    A pool worker holds both ends of its call queue's pipe, so it never sees the parent's
    death as an end of file and would wait for work forever. Its parent sentinel (the
    pipe ``spawn`` gives every child, whose other end only the parent holds) becomes
    readable when the parent dies: a daemon thread waits on it.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return  # not a child process

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="courriel-orphan-guard", daemon=True).start()


class RenderPool:
    """``processes`` worker processes (started on first use, by ``spawn``)."""

    def __init__(self, processes: int, *, chunk: int = 25) -> None:
        """Args:
        processes: worker processes, at least 1.
        chunk: recipients per task (small enough that the first copies come back soon).
        """
        if processes < 1:
            raise ValueError("a render pool needs at least one process")
        self.processes = processes
        self._chunk = max(1, chunk)
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def submit(
        self, context: PoolContext, rows: Sequence[PoolRow], now: datetime
    ) -> list[asyncio.Future[list[Made]]]:
        """Hand ``rows`` to the workers in chunks; one future per chunk, in row order."""
        if self._executor is None:
            # spawn, not fork: the serving process has threads (the database's) and an
            # event loop that a forked child must not inherit.
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=orphan_guard,
            )
            log.info("campaigns: started %d render processes", self.processes)
        loop = asyncio.get_running_loop()
        return [
            loop.run_in_executor(
                self._executor, render_chunk, context, rows[i : i + self._chunk], now
            )
            for i in range(0, len(rows), self._chunk)
        ]

    def close(self) -> None:
        """Stop the workers (a chunk in progress is abandoned: its rows stay pending)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


# (From: domain) -> (normalised domain, its active (selector, PEM) keys), or None when the
# domain is not local: the composition root reads them (delivery owns the keys).
SigningKeys = Callable[[str], Awaitable[tuple[str, tuple[tuple[str, str], ...]] | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pooling:
    """How the sender uses render processes (``campaigns.render_processes``)."""

    pool: RenderPool
    shop: Mapping[str, Any]  # what templates see as ``shop`` (the renderer factory's)
    signing_keys: SigningKeys
    threshold: int  # a batch of at least this many copies goes to the pool


def context_key(
    campaign: Campaign,
    templates: Mapping[int, tuple[str, str, str | None]],
    signing: tuple[str, tuple[tuple[str, str], ...]] | None,
) -> str:
    """A digest of everything a worker builds from a context (templates, keys, author)."""
    digest = hashlib.sha256()
    parts = (
        campaign.id,
        campaign.from_address,
        campaign.from_name,
        campaign.reply_to,
        campaign.preheader,
        sorted(templates.items()),
        signing,
    )
    digest.update(repr(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()

"""The campaign side of a node's delivery role: the sender, the feedback processor, and hooks.

Part of the composition root (with :mod:`courriel.app` and :mod:`courriel.outbound`): it
builds what marketing needs from the configuration and hands delivery the callbacks that
marketing implements, since neither layer may import the other:

- the router's ``is_feedback_address`` (mail to a VERP address becomes a feedback report),
- the group committer's ``on_local_delivered`` (a copy stored in a local mailbox counts as
  delivered in the same transaction),
- the delivery worker's ``on_delivered`` (a copy a remote server accepted counts as
  delivered once its settlement committed),
- the campaign sender (renders and queues copies; large batches are rendered and signed
  by its render processes, which get the From: domain's keys from delivery) and the
  feedback processor (bounces, complaints, mailto unsubscribes arriving at VERP addresses).

Invariant: the VERP key is read once from the fleet's shared secrets before any listener
starts, so every node verifies the return paths every other node wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from courriel.config import Config
from courriel.delivery.dkimkeys import signing_pems
from courriel.errors import CourrielError
from courriel.mailstore.messages import free_blobs
from courriel.marketing.campaigns.feedback import (
    VERP_KEY_NAME,
    FeedbackProcessor,
    delivered_recorder,
    feedback_address_check,
    local_delivered_recorder,
)
from courriel.marketing.campaigns.pool import Pooling, RenderPool
from courriel.marketing.campaigns.render import renderer_factory
from courriel.marketing.campaigns.sender import CampaignSender, SenderSettings
from courriel.marketing.campaigns.tokens import Links
from courriel.marketing.links import LinkSigner
from courriel.marketing.ports import Mailer
from courriel.marketing.recommend import Recommender
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import utcnow
from courriel.storage.secrets import shared_secret

__all__ = ["LINKS_KEY_NAME", "VERP_KEY_NAME", "CampaignRoles", "template_shop"]

LINKS_KEY_NAME = "links"  # the shared secret of signed links (tracking, unsubscribe, opt-in)


@dataclass(slots=True)
class CampaignRoles:
    """Campaign sending and feedback processing of one node; ``open`` before use."""

    db: Database
    blobs: BlobStore
    verp_key: bytes = b""
    sender: CampaignSender | None = None
    feedback: FeedbackProcessor | None = None
    pooling: Pooling | None = None  # the sender's render processes (large campaigns)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> None:
        """Read the fleet's VERP key (made on first use by whichever node comes first)."""
        self.verp_key = await shared_secret(self.db, VERP_KEY_NAME)

    def is_feedback_address(self) -> Callable[[str], bool | None]:
        """The router's check: True for our VERP addresses, False for forged ones."""
        return feedback_address_check(self.verp_key)

    def on_local_delivered(self) -> Callable[[Connection, Sequence[str]], None]:
        """The committer's hook: copies stored in local mailboxes count as delivered."""
        return local_delivered_recorder(self.verp_key)

    def on_delivered(self) -> Callable[[Sequence[tuple[str, str]]], Awaitable[None]]:
        """The delivery worker's hook: copies remote servers accepted count as delivered."""
        return delivered_recorder(self.db, self.verp_key)

    def wake_feedback(self) -> None:
        """A feedback report was committed: process it now rather than at the next poll."""
        if self.feedback is not None:
            self.feedback.wake()

    async def start(self, config: Config, mailer: Mailer) -> None:
        """Start the campaign sender and the feedback processor."""
        links = Links(
            LinkSigner(await shared_secret(self.db, LINKS_KEY_NAME)), config.http.public_url
        )
        self.pooling = _pooling(config, self.db)
        self.sender = CampaignSender(
            self.db,
            mailer,
            renderer_factory(template_shop(config)),
            Recommender(self.db, utcnow),
            links,
            self.verp_key,
            _settings(config),
            utcnow,
            pooling=self.pooling,
        )
        db, blobs = self.db, self.blobs
        self.feedback = FeedbackProcessor(
            db, blobs, self.verp_key, utcnow, free_blobs=lambda keys: free_blobs(db, blobs, keys)
        )
        self.stop_event.clear()
        self.tasks = [
            asyncio.create_task(self.sender.run(self.stop_event), name="courriel-campaigns"),
            asyncio.create_task(self.feedback.run(self.stop_event), name="courriel-feedback"),
        ]

    async def stop(self) -> None:
        """Stop both tasks between two units of work (each commits whole or not at all)."""
        tasks, self.tasks = self.tasks, []
        self.stop_event.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.pooling is not None:
            self.pooling.pool.close()
            self.pooling = None


def template_shop(config: Config) -> dict[str, str]:
    """What templates see as ``shop`` (shop.* of the configuration)."""
    shop = config.shop
    return {"name": shop.name, "url": shop.url, "address": shop.address, "currency": shop.currency}


def _pooling(config: Config, db: Database) -> Pooling | None:
    """The render processes of large campaigns, or None (``campaigns.render_pool_from`` 0)."""
    section = config.campaigns
    if not section.render_pool_from:
        return None

    async def signing_keys(domain: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        try:
            name, pems = await signing_pems(db, domain)
        except CourrielError:
            return None  # not a local domain: nothing to sign with (as the router finds)
        return (name, pems) if pems else None

    return Pooling(
        pool=RenderPool(section.render_processes or os.cpu_count() or 1),
        shop=template_shop(config),
        signing_keys=signing_keys,
        threshold=section.render_pool_from,
    )


def _settings(config: Config) -> SenderSettings:
    return SenderSettings(
        concurrency=config.campaigns.concurrency,
        batch=config.campaigns.batch,
        open_pixel=config.tracking.open_pixel,
        feedback_sender=config.campaigns.feedback_id or config.server.hostname,
        shop_name=config.shop.name,
        shop_address=config.shop.address,
    )

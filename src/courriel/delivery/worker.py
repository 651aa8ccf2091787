"""The delivery worker: claims due recipients, routes them, sends, settles, notifies.

One :class:`DeliveryWorker` per process runs :meth:`DeliveryWorker.run` until
:meth:`DeliveryWorker.stop`. Each round claims a batch (see :mod:`.claims`), groups it by
destination domain and by message, routes each domain (MX lookup, or the smarthost when
``relay_host`` is set), hands the domain's messages to a :class:`~.dispatch.DomainDispatch`
and settles each message as soon as its transaction ends.

Invariants:
- Every claimed recipient is settled (delivered, deferred or failed) in the round that
  claimed it, unless the process dies: then its lease expires and a worker takes it back.
- A failed recipient is bounced before it is settled: ``on_failure`` runs first, once
  per message with all its newly failed recipients, and the settle records
  ``dsn_sent``. If the callback fails, the recipients stay queued for a later retry, so
  the sender is never left without a notice (a crash in between may duplicate one).
- A message with the null reverse-path is never bounced nor warned (RFC 5321 §4.5.5).
- ``on_delivered`` hears of delivered recipients only after their settlement committed
  (see :mod:`.settler`).
- The per-domain connection limit holds within a worker: rounds run one after another
  and each domain gets at most ``max_connections_per_domain`` lanes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from courriel.config.schema import DeliverySection
from courriel.delivery import mx
from courriel.delivery.attempts import (
    Policy,
    by_message,
    settlement_for,
    wants_delay_notice,
)
from courriel.delivery.bounces import RecipientOutcome
from courriel.delivery.claims import Claim, Settlement, claim
from courriel.delivery.conncache import ConnectionCache
from courriel.delivery.dispatch import DomainDispatch, Result, RouteHost
from courriel.delivery.schedule import next_attempt
from courriel.delivery.settler import OnDelivered, Settler
from courriel.delivery.transport import Connector, RemoteReply
from courriel.dns.resolver import Resolver
from courriel.errors import CourrielError, DnsError
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import utcnow

__all__ = ["DeliveryWorker", "FailedRecipient", "Notify", "Router", "WorkerSettings"]

log = logging.getLogger(__name__)

# (recipient, final reply, MX host or "" when none was reached): what the Bouncer takes.
FailedRecipient = RecipientOutcome
# Routes a destination domain to its hosts, in the order to try them.
Router = Callable[[str], Awaitable[Sequence[RouteHost]]]
# Called with every claim of one message in the round and its affected recipients.
Notify = Callable[[Sequence[Claim], Sequence[FailedRecipient]], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """What the worker needs from ``delivery.*`` plus its own knobs."""

    retry_schedule: tuple[timedelta, ...]
    expire_after: timedelta
    delay_warning_after: timedelta | None = None
    max_connections_per_domain: int = 10
    max_messages_per_connection: int = 100
    connection_cache_time: float = 0.0  # seconds an idle session waits for the next round
    relay_host: str = ""  # smarthost: every message goes there instead of MX hosts
    relay_port: int = 587
    smtp_port: int = 25  # RFC 5321 §4.5.4: MX hosts are reached on port 25
    batch_size: int = 1000  # recipients claimed per round
    lease: timedelta = timedelta(minutes=15)  # longer than a round can take
    poll_interval: float = 1.0  # seconds between polls when nobody calls wake()

    @classmethod
    def from_section(cls, section: DeliverySection) -> WorkerSettings:
        """The settings of the ``[delivery]`` config section."""
        return cls(
            retry_schedule=section.retry_schedule,
            expire_after=section.expire_after,
            delay_warning_after=section.delay_warning_after,
            max_connections_per_domain=section.max_connections_per_domain,
            max_messages_per_connection=section.max_messages_per_connection,
            connection_cache_time=(
                section.connection_cache_time.total_seconds()
                if section.connection_cache_time
                else 0.0
            ),
            relay_host=section.relay_host,
            relay_port=section.relay_port,
        )

    @property
    def policy(self) -> Policy:
        """The retry rules."""
        return Policy(
            retry_schedule=self.retry_schedule,
            expire_after=self.expire_after,
            delay_warning_after=self.delay_warning_after,
        )


async def _no_notice(_claims: Sequence[Claim], _rcpts: Sequence[FailedRecipient]) -> None:
    return None


class DeliveryWorker:
    """Delivers the outbound queue until stopped."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        resolver: Resolver,
        connector: Connector,
        *,
        settings: WorkerSettings,
        on_failure: Notify,
        on_delay: Notify = _no_notice,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str = "",
        router: Router | None = None,
        on_delivered: OnDelivered | None = None,
    ) -> None:
        """See the class docstring; ``router`` replaces MX/smarthost routing (tests);
        ``on_delivered`` is told ``(sender, recipient)`` of every delivered recipient."""
        self.db = db
        self.blobs = blobs
        self.resolver = resolver
        self.connector = connector
        self.settings = settings
        self.on_failure = on_failure
        self.on_delay = on_delay
        self.clock = clock
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self._router = router
        # Messages finishing together are settled in one transaction (one fsync).
        self._settler = Settler(db, blobs, self.worker_id, on_delivered)
        self._finishing: set[asyncio.Task[None]] = set()
        # The smarthost's route, looked up once per round and shared by its domains.
        self._relay: asyncio.Future[mx.Route] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        # Sessions a round did not need any more, for the next round (see conncache).
        self._sessions = (
            ConnectionCache(
                idle_limit=settings.connection_cache_time,
                max_messages=settings.max_messages_per_connection,
            )
            if settings.connection_cache_time > 0
            else None
        )

    def wake(self) -> None:
        """Look for due work now (call after an enqueue so fresh mail leaves at once)."""
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current round."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Deliver rounds until :meth:`stop`; poll every ``poll_interval`` when idle."""
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    busy = await self.run_once()
                except CourrielError as exc:
                    log.error("delivery round failed: %s", exc)
                    busy = 0
                except Exception:
                    # A bug in one round must not end delivery while the node runs on
                    # (the task would die unseen): log it with its traceback and poll
                    # again. What the round claimed comes back when its lease ends.
                    log.exception("delivery round failed unexpectedly")
                    busy = 0
                if busy or self._stopping:
                    continue
                if self._sessions is not None:
                    self._sessions.prune()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_wait())
        finally:
            if self._sessions is not None:
                await self._sessions.close()

    def _idle_wait(self) -> float:
        """Until the next poll, or sooner while parked sessions wait to be closed."""
        wait = self.settings.poll_interval
        if self._sessions:
            wait = min(wait, self.settings.connection_cache_time)
        return wait

    async def run_once(self) -> int:
        """Claim one batch and deliver it.

        Returns:
            How many recipients were claimed (0: nothing was due).
        """
        claims = await claim(
            self.db,
            worker=self.worker_id,
            now=self.clock(),
            limit=self.settings.batch_size,
            lease=self.settings.lease,
        )
        self._relay = None
        domains: dict[str, list[Claim]] = {}
        for c in claims:
            domains.setdefault(c.recipient.rpartition("@")[2].lower(), []).append(c)
        await asyncio.gather(*(self._deliver_domain(d, cs) for d, cs in domains.items()))
        # Every claim of the round is settled before the next round claims again.
        finishing, self._finishing = self._finishing, set()
        await asyncio.gather(*finishing)
        return len(claims)

    async def _deliver_domain(self, domain: str, claims: list[Claim]) -> None:
        messages = by_message(claims)
        try:
            hosts, port = await self._route(domain)
        except DnsError as exc:
            # RFC 7505 §3 / RFC 5321 §5.1: a null MX or a domain that does not exist
            # fails at once; a lookup failure (SERVFAIL, timeout) is retried.
            code, enhanced = (451, "4.4.3") if exc.temporary else (550, "5.1.2")
            reply = RemoteReply(code=code, enhanced=enhanced, text=str(exc))
            # Settled like dispatched messages (together, by the settler), not one
            # transaction after another.
            for message in messages:
                await self._finish_later(_all_got(message, reply))
            return
        dispatch = DomainDispatch(
            self.connector,
            hosts,
            port=port,
            max_connections=self.settings.max_connections_per_domain,
            max_messages=self.settings.max_messages_per_connection,
            load=self._load,
            report=self._finish_later,
            cache=self._sessions,
        )
        await dispatch.run(messages)

    async def _route(self, domain: str) -> tuple[Sequence[RouteHost], int]:
        """The hosts to try for ``domain`` and their port (MX on 25, or the smarthost)."""
        if self._router is not None:
            return await self._router(domain), self.settings.smtp_port
        if self.settings.relay_host:
            if self._relay is None:
                self._relay = asyncio.ensure_future(
                    mx.relay_route(
                        self.resolver, self.settings.relay_host, self.settings.relay_port
                    )
                )
            route = await self._relay
            return route.hosts, route.port
        route = await mx.resolve_route(self.resolver, domain)
        return route.hosts, self.settings.smtp_port

    async def _load(self, c: Claim) -> bytes:
        return c.trace_header + await self.blobs.get(c.blob_key)

    async def _finish_later(self, result: Result) -> None:
        # The lane goes on with its next message while this one is settled (the settler
        # batches them); run_once waits for every settlement before it returns.
        task = asyncio.get_running_loop().create_task(self._finish(result))
        self._finishing.add(task)

    async def _finish(self, result: Result) -> None:
        """Settle one message's recipients after notifying the sender as needed."""
        now = self.clock()
        policy = self.settings.policy
        settlements = [
            settlement_for(
                c,
                result.replies[c.recipient_id],
                now=now,
                policy=policy,
                mx_host=result.mx_host,
                tls=result.tls,
                tls_verified=result.tls_verified,
            )
            for c in result.claims
        ]
        settlements = await self._bounce(result, settlements)
        settlements = await self._warn(result, settlements, now)
        try:
            await self._settler.settle(settlements)
        except CourrielError as exc:
            # The lease will expire and the recipients be tried again.
            log.error("cannot settle message %d: %s", result.claims[0].message_id, exc)

    async def _bounce(self, result: Result, settlements: list[Settlement]) -> list[Settlement]:
        failed = [s for s in settlements if s.outcome == "failed"]
        if not failed:
            return settlements
        sender = result.claims[0].sender
        if sender:
            rcpts = [_failed(s, result) for s in failed]
            try:
                await self.on_failure(result.claims, rcpts)
            except CourrielError as exc:
                log.error("cannot bounce message %d: %s", result.claims[0].message_id, exc)
                return [_retry_later(s, self.settings.policy) for s in settlements]
        return [replace(s, dsn_sent=True) if s.outcome == "failed" else s for s in settlements]

    async def _warn(
        self, result: Result, settlements: list[Settlement], now: datetime
    ) -> list[Settlement]:
        policy = self.settings.policy
        due = [s for s in settlements if wants_delay_notice(s, now, policy)]
        if not due:
            return settlements
        try:
            await self.on_delay(result.claims, [_failed(s, result) for s in due])
        except CourrielError as exc:
            log.error("cannot warn of delay for message %d: %s", result.claims[0].message_id, exc)
            return settlements
        warned = {s.claim.recipient_id for s in due}
        return [
            replace(s, delay_warned=True) if s.claim.recipient_id in warned else s
            for s in settlements
        ]


def _all_got(message: Sequence[Claim], reply: RemoteReply) -> Result:
    return Result(
        claims=tuple(message),
        replies={c.recipient_id: reply for c in message},
        mx_host="",
        tls=False,
        tls_verified=False,
    )


def _failed(s: Settlement, result: Result) -> FailedRecipient:
    return (s.claim.recipient, result.replies[s.claim.recipient_id], result.mx_host)


def _retry_later(s: Settlement, policy: Policy) -> Settlement:
    """A failed recipient whose bounce could not be made waits for the next attempt."""
    if s.outcome != "failed":
        return s
    at = s.attempt.attempted_at
    note = f"{s.attempt.reply} (bounce not sent yet)"
    return replace(
        s,
        outcome="deferred",
        next_attempt_at=next_attempt(s.claim.attempts + 1, policy.retry_schedule, at),
        attempt=replace(s.attempt, reply=note),
    )

"""Relaying senders reuse a "not a local domain" answer; the MX listener never does."""

from __future__ import annotations

from courriel.mailstore.service import MailStore


async def test_a_remote_domain_is_read_once_for_relaying_senders(mailstore: MailStore) -> None:
    queries = 0
    real = mailstore.db.read

    def counting_read():  # type: ignore[no-untyped-def]
        nonlocal queries
        queries += 1
        return real()

    mailstore.db.read = counting_read  # type: ignore[method-assign]
    try:
        first = await mailstore.resolve("a@remote.example", relaying=True)
        second = await mailstore.resolve("b@remote.example", relaying=True)
    finally:
        mailstore.db.read = real  # type: ignore[method-assign]
    assert not first.local and not second.local
    assert queries == 1


async def test_the_mx_listener_never_reuses_a_remote_answer(mailstore: MailStore) -> None:
    assert not (await mailstore.resolve("a@later.example", relaying=True)).local
    # Made local by another process (the CLI): the cache of this one does not know.
    from courriel.mailstore import domains

    await domains.add_domain(mailstore.db, "later.example")
    assert (await mailstore.resolve("a@later.example")).local
    # A relaying sender may still see the old answer within the TTL: its mail is relayed.
    assert not (await mailstore.resolve("b@later.example", relaying=True)).local

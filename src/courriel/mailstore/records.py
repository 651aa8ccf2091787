"""Frozen dataclasses the mail store's admin and routing API returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["AccountInfo", "AliasInfo", "DomainInfo", "Resolution"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainInfo:
    """A local domain (mail for it is delivered here)."""

    id: int
    name: str  # lower-case A-labels
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInfo:
    """A mailbox account."""

    id: int
    address: str  # normal form
    domain: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasInfo:
    """An alias and all its targets."""

    alias: str  # "local@domain", or "@domain" for a catch-all
    targets: tuple[str, ...]  # sorted; local accounts or remote addresses


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """Where mail for one recipient address goes.

    For an address in a domain that is not ours: ``local=False``, ``known=False`` and
    nothing to deliver (relaying is the caller's policy decision).
    """

    local: bool  # the address's domain is one of ours
    account_ids: tuple[int, ...]  # local accounts to deliver to (deduplicated, sorted)
    forward: tuple[str, ...]  # remote addresses an alias forwards to
    known: bool  # a local account, alias or catch-all matched

"""DNS for courriel: the :class:`Resolver` port, its dnspython and in-memory implementations.

The dns layer imports only dnspython and ``courriel.errors`` (import-linter contract).
"""

from __future__ import annotations

from courriel.dns.memory import MemoryResolver
from courriel.dns.resolver import DnsResolver, MxRecord, Resolver

__all__ = ["DnsResolver", "MemoryResolver", "MxRecord", "Resolver"]

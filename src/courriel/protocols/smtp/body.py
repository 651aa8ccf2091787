"""Checks on a message body while it streams past the session.

:class:`BodyScanner` sees every chunk once, in order, and keeps only what the
checks need: the size so far and the header section (bounded). It answers:

* did the message grow beyond the size limit (RFC 1870 §6.3: keep reading,
  refuse at the end with 552 5.3.4)?
* are there 8-bit octets in the header section (refused unless the transaction
  uses SMTPUTF8, RFC 6531 §3.2)?
* which addresses are in the ``From:`` field (RFC 5322 §3.6.2), for the
  submission sender check?
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from courriel.mail.dkim import parse_header_fields

__all__ = ["BodyScanner"]

# Header sections larger than this are not kept whole: the scan stops there.
MAX_HEADER_BYTES = 1 << 20
_LINE_END = re.compile(rb"\r?\n")


class BodyScanner:
    """Streaming checks for one message (DATA or all BDAT chunks together)."""

    def __init__(self, *, max_size: int) -> None:
        """Start scanning; ``max_size`` 0 means no limit."""
        self.max_size = max_size
        self.size = 0
        self.oversized = False
        self.eight_bit_headers = False
        self._head = bytearray()
        self._headers_done = False

    def feed(self, data: bytes) -> None:
        """Account for the next chunk of message octets."""
        self.size += len(data)
        if self.max_size and self.size > self.max_size:
            self.oversized = True
        if not self._headers_done:
            self._scan(data)

    def _scan(self, data: bytes) -> None:
        start = len(self._head)
        self._head += data
        if self._head.startswith(b"\r\n"):
            # RFC 5322 §2.1: an empty header section.
            end = 0
        else:
            idx = self._head.find(b"\r\n\r\n", max(0, start - 3))
            end = idx + 2 if idx >= 0 else -1
        if end >= 0:
            del self._head[end:]
            self.finish()
        elif len(self._head) > MAX_HEADER_BYTES:
            del self._head[MAX_HEADER_BYTES:]
            self.finish()

    def finish(self) -> None:
        """Close the header scan (at the end of the message at the latest)."""
        if not self._headers_done:
            self._headers_done = True
            self.eight_bit_headers = not self._head.isascii()

    @property
    def header_section(self) -> bytes:
        """The header section seen so far (bounded)."""
        return bytes(self._head)

    def from_addresses(self) -> list[str]:
        """The addresses of the ``From:`` fields ("" for an unparsable one)."""
        # RFC 5322 §2.2.3: unfolding removes the line breaks of a folded field.
        values = [
            _LINE_END.sub(b"", raw.partition(b":")[2]).decode("utf-8", "replace").strip()
            for name, raw in parse_header_fields(self.header_section)
            if name == "from"
        ]
        return [address for _name, address in getaddresses(values)] if values else []

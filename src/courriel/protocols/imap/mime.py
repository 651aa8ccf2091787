"""One stored message as IMAP FETCH and SEARCH see it: :class:`ParsedMessage`.

This module owns the answers FETCH needs from a message's octets (ENVELOPE,
BODY/BODYSTRUCTURE, ``BODY[section]``, ``BINARY[part]``) and the message facts SEARCH
tests (decoded header values, the Date: day, text in decoded bodies).

Invariants:
    * :meth:`ParsedMessage.parse` never raises and does no work up front: the top-level
      header and the part tree are each parsed once, on first use, and cached.
    * ``section()`` returns exact slices of the original octets (RFC 9051 §6.4.5), or
      bytes assembled only from whole original header lines (HEADER.FIELDS).
    * Only ``binary()`` raises, and only :class:`courriel.errors.InvalidInput` with the
      text ``unknown-cte`` (RFC 3516 §4.2's UNKNOWN-CTE response code).
"""

from __future__ import annotations

import binascii
import codecs
import datetime
import re
from email.utils import parsedate_tz

from courriel.errors import InvalidInput
from courriel.protocols.imap.bodystructure import body_structure
from courriel.protocols.imap.envelope import envelope, format_addresses, parse_addresses
from courriel.protocols.imap.mimeparse import (
    Field,
    Lexer,
    Part,
    field_text,
    header_end,
    parse_fields,
    parse_part,
)
from courriel.protocols.imap.types import Section

__all__ = ["ParsedMessage", "decode_words"]

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BLANK_BETWEEN_WORDS = re.compile(r"(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)[ \t]+(?==\?)")
_IDENTITY_CTE = frozenset({"", "7bit", "8bit", "binary"})


def _charset_decode(raw: bytes, charset: str) -> str:
    """Decode ``raw`` in ``charset`` (unknown charsets as UTF-8), never raising."""
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    try:
        return raw.decode(charset, "replace")
    except (UnicodeError, ValueError):
        return raw.decode("utf-8", "replace")


def _b64(raw: bytes) -> bytes:
    """Lenient base64: characters outside the alphabet are skipped, padding repaired."""
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:
        return b""


def _word(match: re.Match[str]) -> str:
    charset, enc, text = match.group(1), match.group(2).upper(), match.group(3)
    raw = text.encode("latin-1", "replace")
    # RFC 2047 §4.2: in the Q encoding "_" is a space.
    data = _b64(raw) if enc == "B" else binascii.a2b_qp(raw.replace(b"_", b" "))
    return _charset_decode(data, charset.split("*", 1)[0])


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded-words in ``text``; blanks between adjacent words go."""
    if "=?" not in text:
        return text
    text = _BLANK_BETWEEN_WORDS.sub(r"\1", text)
    return _ENCODED_WORD.sub(_word, text)


def _header_text(raw: bytes) -> str:
    """Header octets as text: UTF-8 when valid (RFC 6532), else latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class ParsedMessage:
    """A message's octets with lazily parsed structure.

    Attributes:
        size: the message size in octets (RFC 9051 RFC822.SIZE).
    """

    __slots__ = ("_data", "_envelope", "_fields", "_header_end", "_root", "_searched", "size")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)
        self._header_end: int | None = None
        self._fields: list[Field] | None = None
        self._root: Part | None = None
        # SEARCH's case-folded field values by (field, address form): a folder search
        # tests every message, again and again, and the octets never change.
        self._searched: dict[tuple[str, bool], tuple[str, ...]] | None = None
        self._envelope: bytes | None = None  # FETCH ENVELOPE, built once

    @classmethod
    def parse(cls, data: bytes) -> ParsedMessage:
        """Wrap ``data``; nothing is parsed until a method needs it. Never raises."""
        return cls(bytes(data))

    # -- lazy state --------------------------------------------------------------------

    def _top_fields(self) -> list[Field]:
        if self._fields is None:
            if self._root is not None:
                self._fields = self._root.fields
            else:
                self._header_end = header_end(self._data, 0, len(self._data))
                self._fields = parse_fields(self._data, 0, self._header_end)
        return self._fields

    def _tree(self) -> Part:
        if self._root is None:
            self._root = parse_part(
                self._data, 0, len(self._data), in_multipart=False, digest=False
            )
        return self._root

    # -- FETCH ---------------------------------------------------------------------------

    def envelope(self) -> bytes:
        """The RFC 9051 §7.5.2 ENVELOPE, parentheses included."""
        if self._envelope is None:
            self._envelope = envelope(self._data, self._top_fields())
        return self._envelope

    def body_structure(self, *, extended: bool) -> bytes:
        """BODY (``extended`` False) or BODYSTRUCTURE (True), parentheses included."""
        return body_structure(self._data, self._tree(), extended=extended)

    def _find(self, numbers: tuple[int, ...]) -> Part | None:
        """The part a dotted part number names (RFC 9051 §6.4.5), or None.

        A message/rfc822 part's numbers continue into its encapsulated message. A
        non-multipart part has one subpart, number 1, which is itself; so part 1 of a
        single-part message is the message's body (RFC 9051 §6.4.5), and, as in
        Dovecot, that step is allowed once per part.
        """
        part: Part | None = self._tree()
        numbers_left = list(numbers)
        may_stay = True
        if part is not None and not part.multipart and numbers_left:
            if numbers_left.pop(0) != 1:
                return None
            may_stay = False
        for n in numbers_left:
            if part is None:
                return None
            if part.message is not None:
                part, may_stay = part.message, True
            if part.multipart:
                part = part.children[n - 1] if 0 < n <= len(part.children) else None
                may_stay = True
            elif may_stay and n == 1:
                may_stay = False
            else:
                return None
        return part

    def section(self, section: Section) -> bytes | None:
        """The octets of ``BODY[section]`` (RFC 9051 §6.4.5), or None if no such part.

        HEADER, HEADER.FIELDS[.NOT] and TEXT after a part number apply to a
        message/rfc822 part's encapsulated message; on any other part they give an
        empty string.
        """
        part = self._find(section.part)
        if part is None:
            return None
        data = self._data
        kind = section.text
        if kind is None:
            return data if not section.part else data[part.body_start : part.end]
        if kind == "MIME":
            return data[part.start : part.body_start] if section.part else None
        if section.part:
            if part.message is None:
                return b""
            part = part.message
        if kind == "HEADER":
            return data[part.start : part.body_start]
        if kind == "TEXT":
            return data[part.body_start : part.end]
        if kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            wanted = {name.lower() for name in section.fields}
            keep = kind == "HEADER.FIELDS"
            lines = [data[f.start : f.end] for f in part.fields if (f.name in wanted) == keep]
            return b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in lines) + (
                b"\r\n"
            )
        return None

    def binary(self, part: tuple[int, ...]) -> bytes | None:
        """The content of ``BINARY[part]`` with its transfer encoding undone (RFC 3516).

        Returns None when the part does not exist. Multipart and message/rfc822 parts
        and the whole message (``()``) are returned as stored.

        Raises:
            InvalidInput: ``unknown-cte`` for a Content-Transfer-Encoding other than
                7bit, 8bit, binary, base64 and quoted-printable (RFC 3516 §4.2).
        """
        if not part:
            return self._data
        found = self._find(part)
        if found is None:
            return None
        if found.multipart or found.message is not None:
            return self._data[found.body_start : found.end]
        content = _undo_cte(self._data, found)
        if content is None:
            raise InvalidInput("unknown-cte")
        return content

    # -- SEARCH --------------------------------------------------------------------------

    def header_values(self, name: str) -> list[str]:
        """The values of every ``name`` field: RFC 2047-decoded, unfolded, and with
        each run of blanks made one space."""
        key = name.lower()
        data = self._data
        out: list[str] = []
        for f in self._top_fields():
            if f.name == key:
                # Runs of blanks (folding included) count as one space, as in Dovecot.
                raw = data[f.value : f.end].replace(b"\r", b"").replace(b"\n", b"")
                text = decode_words(_header_text(raw))
                out.append(" ".join(text.split()))
        return out

    def address_values(self, name: str) -> list[str]:
        """The ``name`` address fields, parsed and written back in one normal form
        (see :func:`envelope.format_addresses`), RFC 2047-decoded: what SEARCH FROM,
        TO, CC and BCC look in, as in Dovecot."""
        key = name.lower()
        out: list[str] = []
        for f in self._top_fields():
            if f.name == key:
                text = format_addresses(parse_addresses(field_text(self._data, f)))
                decoded = decode_words(_header_text(text.encode("latin-1")))
                out.append(" ".join(decoded.split()))
        return out

    def search_values(self, name: str, *, address: bool) -> tuple[str, ...]:
        """What SEARCH HEADER/FROM/TO/CC/BCC compares with, case-folded, computed once.

        Args:
            name: the field name (any case).
            address: True for the address form (:meth:`address_values`), False for
                the decoded text (:meth:`header_values`).
        """
        key = (name.lower(), address)
        if self._searched is None:
            self._searched = {}
        found = self._searched.get(key)
        if found is None:
            values = self.address_values(name) if address else self.header_values(name)
            found = tuple(value.casefold() for value in values)
            self._searched[key] = found
        return found

    def sent_date(self) -> datetime.date | None:
        """The day of the Date: field in its own zone (RFC 9051 §6.4.4 SENT*), or None."""
        values = self.header_values("date")
        if not values:
            return None
        try:
            parsed = parsedate_tz(values[0])
            if parsed is None:
                return None
            return datetime.date(parsed[0], parsed[1], parsed[2])
        except (ValueError, TypeError, IndexError, OverflowError):
            return None

    def contains_text(self, needle: str, *, include_headers: bool) -> bool:
        """Case-insensitive substring search (RFC 9051 §6.4.4 BODY and TEXT).

        Text parts are searched after undoing their transfer encoding and charset
        (a part in an unknown transfer encoding is skipped); with ``include_headers``
        (TEXT) the decoded header fields of the message and of its parts and
        encapsulated messages are searched too. Other parts are not searched.
        """
        folded = needle.casefold()
        if not folded:
            return True
        return any(folded in chunk.casefold() for chunk in self._texts(include_headers))

    def _texts(self, include_headers: bool) -> list[str]:
        """The decoded texts a BODY/TEXT search looks in."""
        out: list[str] = []
        stack = [self._tree()]
        while stack:
            part = stack.pop()
            if include_headers:
                out.extend(self._field_texts(part))
            if part.message is not None:
                stack.append(part.message)
            elif part.multipart:
                stack.extend(reversed(part.children))
            elif part.ctype == "text":
                out.append(self._decoded_text(part))
        return out

    def _field_texts(self, part: Part) -> list[str]:
        data = self._data
        return [
            decode_words(_header_text(data[f.start : f.end].replace(b"\r\n", b"").strip()))
            for f in part.fields
        ]

    def _decoded_text(self, part: Part) -> str:
        raw = _undo_cte(self._data, part)
        if raw is None:
            return ""  # an encoding courriel cannot undo is not searched (as in Dovecot)
        charset = "us-ascii"
        for name, value in part.content_type[2] if part.content_type else []:
            if name.lower() == "charset":
                charset = value
        if charset.lower() in ("us-ascii", "ascii"):
            charset = "utf-8"  # 8-bit text mislabelled as ASCII is most often UTF-8
        return _charset_decode(raw, charset)


def _undo_cte(data: bytes, part: Part) -> bytes | None:
    """The leaf part's body with its transfer encoding undone, or None when unknown."""
    raw = data[part.body_start : part.end]
    cte = _cte(data, part)
    if cte in _IDENTITY_CTE:
        return raw
    if cte == "base64":
        return _b64(raw)
    if cte == "quoted-printable":
        return binascii.a2b_qp(raw)
    return None


def _cte(data: bytes, part: Part) -> str:
    """The part's Content-Transfer-Encoding token, lower-cased ("" when absent)."""
    text = part.first(data, "content-transfer-encoding") if part.mime else None
    if text is None:
        return ""
    lex = Lexer(text)
    lex.skip_cfws()
    return lex.token().lower()

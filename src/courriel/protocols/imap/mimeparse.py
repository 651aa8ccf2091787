"""The MIME part tree of a message, found directly on its octets.

This module owns the byte-level parse that FETCH needs: where each header block ends,
which header fields it holds, and where every MIME part (RFC 2045, RFC 2046) and every
encapsulated message/rfc822 starts and ends. It also lexes structured header values
(Content-Type parameters, RFC 2045 §5.1) for the BODYSTRUCTURE and ENVELOPE writers.

Invariants:
    * Every offset is an index into the original octets; nothing is re-serialised, so
      a section is always an exact slice of what was stored.
    * No function here raises on any input: broken MIME degrades to a single part.
    * Header text is handled as latin-1 ``str`` (one character per octet), so 8-bit
      header octets survive unchanged when they are written back as bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "MAX_DEPTH",
    "Field",
    "Lexer",
    "Part",
    "field_raw",
    "field_text",
    "header_end",
    "parse_content_type",
    "parse_fields",
    "parse_part",
]

_BLANKS = re.compile(rb"[ \t\r\n]")
MAX_DEPTH = 100  # nesting deeper than this is treated as a leaf (Dovecot uses 100 too)


class Field(NamedTuple):
    """One header field: its lower-cased name and offsets into the message octets."""

    name: str  # lower-cased field name
    start: int  # first octet of the field line
    value: int  # first octet after the colon
    end: int  # one past the field's last line break (folded lines included)


def header_end(data: bytes, start: int, end: int) -> int:
    """Offset of the body: just after the blank line ending the header at ``start``.

    RFC 5322 §2.1: the header is separated from the body by an empty line. Without
    one, the whole range is header and the body is empty (``end`` is returned).
    """
    if data.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    if data.startswith(b"\n", start) and start + 1 <= end:
        return start + 1
    best = end
    crlf = data.find(b"\n\r\n", start, end)
    if crlf >= 0:
        best = crlf + 3
    lf = data.find(b"\n\n", start, min(best, end))
    if lf >= 0:
        best = lf + 2
    return best


def parse_fields(data: bytes, start: int, stop: int) -> list[Field]:
    """The header fields between ``start`` and ``stop`` (the header block).

    RFC 5322 §2.2.3: a line starting with white space continues the previous field.
    Lines without a colon are skipped.
    """
    fields: list[Field] = []
    pos = start
    continuable = False
    while pos < stop:
        nl = data.find(b"\n", pos, stop)
        line_end = stop if nl < 0 else nl + 1
        first = data[pos : pos + 1]
        if first in (b" ", b"\t") and continuable:
            pos = line_end
            fields[-1] = fields[-1]._replace(end=line_end)
            continue
        colon = data.find(b":", pos, line_end)
        if colon > pos:
            raw_name = data[pos:colon].rstrip(b" \t")
            if raw_name and not _BLANKS.search(raw_name):
                fields.append(Field(raw_name.decode("latin-1").lower(), pos, colon + 1, line_end))
                continuable = True
                pos = line_end
                continue
        continuable = False
        pos = line_end
    return fields


def field_raw(data: bytes, f: Field) -> str:
    """A field's value as latin-1 text: blanks after the colon skipped, final line
    break removed, folding line breaks kept."""
    raw = data[f.value : f.end].decode("latin-1").lstrip(" \t")
    if raw.endswith("\n"):
        raw = raw[:-2] if raw.endswith("\r\n") else raw[:-1]
    return raw


def field_text(data: bytes, f: Field) -> str:
    """A field's value as latin-1 text with CR and LF removed (folding undone).

    Only blanks on the field's first line are skipped, so a value that starts on a
    continuation line keeps its leading blank, as in Dovecot.
    """
    return field_raw(data, f).replace("\r", "").replace("\n", "")


# -- structured header lexing (RFC 5322 §3.2, RFC 2045 §5.1) ---------------------------

_TSPECIALS = frozenset('()<>@,;:\\"/[]?= \t\r\n')


class Lexer:
    """A cursor over a structured header value (latin-1 text)."""

    __slots__ = ("comment", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.comment: str | None = None  # the last comment skipped, for address names

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_cfws(self) -> None:
        """Skip white space and (nested) comments, remembering the last comment."""
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\r\n":
                self.pos += 1
            elif c == "(":
                self.comment = self._comment()
            else:
                return

    def _comment(self) -> str:
        depth = 0
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            self.pos += 1
            if c == "\\" and self.pos < len(text):
                out.append(text[self.pos])
                self.pos += 1
                continue
            if c == "(":
                depth += 1
                if depth == 1:
                    continue
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
            out.append(c)
        return "".join(out)

    def token(self, stops: frozenset[str] = _TSPECIALS) -> str:
        """Read characters up to one in ``stops``."""
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] not in stops:
            self.pos += 1
        return text[start : self.pos]

    def quoted(self) -> str:
        """Read a quoted string (the cursor is on its opening quote), unescaped."""
        self.pos += 1
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            self.pos += 1
            if c == "\\" and self.pos < len(text):
                out.append(text[self.pos])
                self.pos += 1
            elif c == '"':
                break
            elif c not in "\r\n":
                out.append(c)
        return "".join(out)


def parse_content_type(value: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    """Split a Content-Type value into type, subtype (case kept) and parameters.

    Returns None when there is no type at all (RFC 2045 §5.2: the default applies).
    A type without ``/subtype`` gives an empty subtype and no parameters, as Dovecot
    does.
    """
    lex = Lexer(value)
    lex.skip_cfws()
    ctype = lex.token()
    lex.skip_cfws()
    if not ctype:
        return None
    if lex.peek() != "/":
        return ctype, "", []
    lex.pos += 1
    lex.skip_cfws()
    subtype = lex.token()
    if not subtype:
        return ctype, "", []
    return ctype, subtype, parse_params(lex)


def _raw_params(lex: Lexer) -> list[tuple[str, str]]:
    """``*(";" attribute "=" value)`` as written; stops at the first broken one."""
    params: list[tuple[str, str]] = []
    while True:
        lex.skip_cfws()
        if lex.peek() != ";":
            return params
        lex.pos += 1
        lex.skip_cfws()
        if lex.peek() == ";":
            continue
        name = lex.token()
        lex.skip_cfws()
        if not name or lex.peek() != "=":
            return params
        lex.pos += 1
        lex.skip_cfws()
        value = lex.quoted() if lex.peek() == '"' else lex.token(_VALUE_STOPS)
        params.append((name, value))


def parse_params(lex: Lexer) -> list[tuple[str, str]]:
    """``*(";" attribute "=" value)`` (RFC 2045 §5.1), RFC 2231 continuations merged.

    Stops at the first broken parameter. As Dovecot does, ``name*0``, ``name*1``...
    become one ``name`` (``name*`` when any piece is extended; its value stays
    percent-encoded), placed after the plain parameters; with a gap in the numbering
    the pieces are kept apart.
    """
    return _merge_rfc2231(_raw_params(lex))


def _split_2231(name: str) -> tuple[str, int, bool] | None:
    """``name*3*`` -> (``name``, 3, True); None for a plain parameter name."""
    star = name.find("*")
    if star < 0:
        return None
    rest = name[star + 1 :]
    digits = len(rest) - len(rest.lstrip("0123456789"))
    index = int(rest[:digits]) if digits else 0
    tail = rest[digits:]
    if tail not in ("", "*"):
        return None
    return name[:star], index, tail == "*" or not rest


def _merge_rfc2231(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # RFC 2231 §3-4: pieces of one parameter, possibly out of order.
    plain: list[tuple[str, str]] = []
    pieces: list[tuple[str, int, bool, str]] = []
    for name, value in params:
        split = _split_2231(name)
        if split is None:
            plain.append((name, value))
        else:
            pieces.append((*split, value))
    if not pieces:
        return plain
    pieces.sort(key=lambda p: (p[0], p[1]))
    groups: list[list[tuple[str, int, bool, str]]] = []
    for piece in pieces:
        if groups and groups[-1][0][0].lower() == piece[0].lower():
            groups[-1].append(piece)
        else:
            groups.append([piece])
    for group in groups:
        plain.extend(_join_pieces(group))
    return plain


def _join_pieces(group: list[tuple[str, int, bool, str]]) -> list[tuple[str, str]]:
    if [p[1] for p in group] != list(range(len(group))):
        return [(f"{n}*{i}*" if ext else f"{n}*{i}", v) for n, i, ext, v in group]
    extended = any(p[2] for p in group)
    value = "''" if extended and not group[0][2] else ""
    for _, _, ext, piece in group:
        value += piece.replace("%", "%25") if extended and not ext else piece
    return [(group[0][0] + ("*" if extended else ""), value)]


# A parameter value token: RFC 2045 forbids tspecials, but "name==?utf-8?b?..?=" and
# "a/b" values are common in the wild, so only separators end it.
_VALUE_STOPS = frozenset(';" \t\r\n()')


# -- the part tree -----------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Part:
    """One MIME part: its header and body ranges and what its Content-Type says.

    ``ctype``/``subtype`` are lower-cased for decisions; ``content_type`` keeps the
    parsed ``(type, subtype, params)`` with the message's spelling, or None when the
    part has no usable Content-Type (the RFC 2045 §5.2 default applies).
    """

    start: int
    body_start: int
    end: int
    fields: list[Field]
    content_type: tuple[str, str, list[tuple[str, str]]] | None
    ctype: str
    subtype: str
    mime: bool  # Content-* fields count (MIME-Version or Content-Type seen, or in a multipart)
    multipart: bool = False  # multipart/* with a boundary (children may still be empty)
    children: list[Part] = field(default_factory=list)  # multipart children
    message: Part | None = None  # the encapsulated message of a message/rfc822 part

    def first(self, data: bytes, name: str) -> str | None:
        """The first ``name`` field's text (CR/LF removed), or None."""
        for f in self.fields:
            if f.name == name:
                return field_text(data, f)
        return None


def _boundary(params: list[tuple[str, str]]) -> str | None:
    for name, value in params:
        if name.lower() == "boundary" and value:
            return value
    return None


def parse_part(
    data: bytes, start: int, end: int, *, in_multipart: bool, digest: bool, depth: int = 0
) -> Part:
    """Parse the part at ``data[start:end]`` and everything inside it.

    Args:
        data: the message octets.
        start: where the part's header starts.
        end: one past the part's last body octet.
        in_multipart: the part is a child of a multipart, so it is MIME without a
            MIME-Version field (RFC 2045 §4).
        digest: the parent is multipart/digest, so the default type is message/rfc822
            (RFC 2046 §5.1.5).
        depth: nesting level, bounded by :data:`MAX_DEPTH`.
    """
    body_start = header_end(data, start, end)
    fields = parse_fields(data, start, body_start)
    ctype_field = next((f for f in fields if f.name == "content-type"), None)
    mime = in_multipart or ctype_field is not None
    mime = mime or any(f.name == "mime-version" for f in fields)
    content_type = parse_content_type(field_text(data, ctype_field)) if ctype_field else None
    if content_type is not None:
        ctype, subtype = content_type[0].lower(), content_type[1].lower()
    elif digest:
        ctype, subtype = "message", "rfc822"
    else:
        ctype, subtype = "text", "plain"
    part = Part(
        start=start,
        body_start=body_start,
        end=end,
        fields=fields,
        content_type=content_type,
        ctype=ctype,
        subtype=subtype,
        mime=mime,
    )
    if depth >= MAX_DEPTH:
        return part
    if ctype == "multipart" and content_type is not None:
        part.multipart = True
        boundary = _boundary(content_type[2])
        if boundary is not None:
            part.children = _children(data, part, boundary, depth)
    elif ctype == "message" and subtype == "rfc822":
        part.message = parse_part(
            data, body_start, end, in_multipart=False, digest=False, depth=depth + 1
        )
    return part


def _children(data: bytes, parent: Part, boundary: str, depth: int) -> list[Part]:
    """The parts between the delimiter lines of ``boundary`` (RFC 2046 §5.1.1).

    The line break before a delimiter belongs to the delimiter, not to the part. A
    missing close delimiter ends the last part at ``end``.
    """
    delimiter = re.compile(rb"^--" + re.escape(boundary.encode("latin-1")), re.M)
    starts: list[tuple[int, int, bool]] = []  # (delimiter start, next line, is close)
    body_start, end = parent.body_start, parent.end
    for m in delimiter.finditer(data, body_start, end):
        nl = data.find(b"\n", m.end(), end)
        after = end if nl < 0 else nl + 1
        starts.append((m.start(), after, data.startswith(b"--", m.end())))
        if starts[-1][2]:
            break
    children: list[Part] = []
    for i, (_, after, close) in enumerate(starts):
        if close:
            break
        stop = starts[i + 1][0] if i + 1 < len(starts) else end
        if i + 1 < len(starts):
            stop = _before_break(data, stop, after)
        children.append(
            parse_part(
                data,
                after,
                max(stop, after),
                in_multipart=True,
                digest=parent.subtype == "digest",
                depth=depth + 1,
            )
        )
    return children


def _before_break(data: bytes, pos: int, floor: int) -> int:
    """Step back over the CRLF (or LF) that ends the line before ``pos``."""
    if pos - 2 >= floor and data[pos - 2 : pos] == b"\r\n":
        return pos - 2
    if pos - 1 >= floor and data[pos - 1 : pos] == b"\n":
        return pos - 1
    return pos

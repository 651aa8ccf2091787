"""BODY and BODYSTRUCTURE (RFC 9051 §7.5.2) of a parsed MIME part tree.

This module owns the wire form of a message's structure. The differential tests compare
it with Dovecot's, so it follows Dovecot's choices where RFC 9051 leaves room:

    * type, subtype and parameter names keep the message's spelling; a part without a
      usable Content-Type is ``"text" "plain"`` (RFC 2045 §5.2), a message/rfc822 part
      is always written ``"message" "rfc822"``;
    * a text part without a charset parameter gets ``("charset" "us-ascii")`` appended;
      other parts without parameters get ``NIL``;
    * a missing Content-Transfer-Encoding is ``"7bit"``;
    * a header without MIME-Version and without Content-Type is not MIME: its other
      Content-* fields are ignored (RFC 2045 §4);
    * a multipart whose boundary is never found has one empty text/plain child;
    * sizes are octet counts of the stored body; lines count its LF octets.

Invariant: never raises; every value goes through :mod:`encode` (quoted or literal).
"""

from __future__ import annotations

from courriel.protocols.imap import encode
from courriel.protocols.imap.envelope import envelope
from courriel.protocols.imap.mimeparse import Lexer, Part, parse_params

__all__ = ["body_structure"]

_EMPTY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0'


def _s(text: str) -> bytes:
    return encode.quoted_or_literal(text.encode("latin-1"), escape=False)


def _ns(text: str | None) -> bytes:
    return b"NIL" if text is None else _s(text)


def _params(params: list[tuple[str, str]], *, default_charset: bool) -> bytes:
    """RFC 9051 ``body-fld-param``; text parts always carry a charset."""
    items = [_s(name) + b" " + _s(value) for name, value in params]
    if default_charset and not any(name.lower() == "charset" for name, _ in params):
        items.append(b'"charset" "us-ascii"')
    if not items:
        return b"NIL"
    return b"(" + b" ".join(items) + b")"


def _content(data: bytes, part: Part, name: str) -> str | None:
    """A Content-* field's text, or None when absent or when the part is not MIME."""
    return part.first(data, name) if part.mime else None


def _disposition(data: bytes, part: Part) -> bytes:
    text = _content(data, part, "content-disposition")
    if text is None:
        return b"NIL"
    lex = Lexer(text)
    lex.skip_cfws()
    token = lex.token()
    if not token:
        return b"NIL"
    params = parse_params(lex)
    return b"(" + _s(token) + b" " + _params(params, default_charset=False) + b")"


def _language(data: bytes, part: Part) -> bytes:
    text = _content(data, part, "content-language")
    if text is None:
        return b"NIL"
    langs = [t.strip(" \t") for t in text.split(",")]
    langs = [t for t in langs if t and all(c.isalnum() or c == "-" for c in t)]
    if not langs:
        return b"NIL"
    return b"(" + b" ".join(_s(t) for t in langs) + b")"


def _common_ext(data: bytes, part: Part) -> bytes:
    """Disposition, language and location (RFC 9051 §7.5.2 extension data)."""
    location = _content(data, part, "content-location")
    return b" ".join([_disposition(data, part), _language(data, part), _ns(location)])


def _multipart(data: bytes, part: Part, extended: bool) -> bytes:
    if part.children:
        children = b"".join(_write(data, child, extended) for child in part.children)
    else:
        children = _EMPTY + (b" NIL NIL NIL NIL)" if extended else b")")
    params = part.content_type[2] if part.content_type else []
    out = children + b" " + _s(part.content_type[1] if part.content_type else part.subtype)
    if extended:
        out += b" " + _params(params, default_charset=False) + b" " + _common_ext(data, part)
    return out


def _leaf(data: bytes, part: Part, extended: bool) -> bytes:
    ct = part.content_type if part.mime else None
    params = ct[2] if ct else []
    if part.ctype == "message" and part.subtype == "rfc822":
        head, text = b'"message" "rfc822"', False
    elif ct is None:
        head, text = b'"text" "plain"', True
    else:
        head, text = _s(ct[0]) + b" " + _s(ct[1]), part.ctype == "text"
    cte = _content(data, part, "content-transfer-encoding")
    cte_token = Lexer(cte).token() if cte is not None else ""
    body = data[part.body_start : part.end]
    fields = [
        head,
        _params(params, default_charset=text),
        _ns(_content(data, part, "content-id")),
        _ns(_content(data, part, "content-description")),
        _s(cte_token) if cte_token else b'"7bit"',
        str(len(body)).encode("ascii"),
    ]
    if text:
        fields.append(str(body.count(b"\n")).encode("ascii"))
    elif part.message is not None:
        fields.append(envelope(data, part.message.fields))
        fields.append(_write(data, part.message, extended))
        fields.append(str(body.count(b"\n")).encode("ascii"))
    if extended:
        fields.append(_ns(_content(data, part, "content-md5")))
        fields.append(_common_ext(data, part))
    return b" ".join(fields)


def _plain_7bit(data: bytes, part: Part) -> bool:
    """True for a top-level text/plain, us-ascii, 7bit part with nothing else set.

    Dovecot stores such a message's structure as a flag and answers with the canonical
    lower-case form, whatever the spelling in the message; courriel does the same.
    A second parameter (``format=flowed``) makes it an ordinary part.
    """
    if (
        part.multipart
        or part.message is not None
        or (part.ctype, part.subtype)
        != (
            "text",
            "plain",
        )
    ):
        return False
    params = part.content_type[2] if part.content_type and part.mime else []
    if len(params) > 1:
        return False
    if params and (params[0][0].lower(), params[0][1].lower()) != ("charset", "us-ascii"):
        return False
    cte = _content(data, part, "content-transfer-encoding")
    if cte is not None and Lexer(cte).token().lower() not in ("", "7bit"):
        return False
    others = ("id", "description", "md5", "disposition", "language", "location")
    return all(_content(data, part, "content-" + name) is None for name in others)


def _write(data: bytes, part: Part, extended: bool) -> bytes:
    inner = _multipart(data, part, extended) if part.multipart else _leaf(data, part, extended)
    return b"(" + inner + b")"


def body_structure(data: bytes, part: Part, *, extended: bool) -> bytes:
    """The BODY (``extended`` False) or BODYSTRUCTURE of ``part``, parentheses included.

    Args:
        data: the message octets the part tree points into.
        part: the root of the tree (or any part).
        extended: add the extension data (BODYSTRUCTURE, RFC 9051 §6.4.5).
    """
    if _plain_7bit(data, part):
        body = data[part.body_start : part.end]
        sizes = b" %d %d" % (len(body), body.count(b"\n"))
        return _EMPTY[:-4] + sizes + (b" NIL NIL NIL NIL)" if extended else b")")
    return _write(data, part, extended)

"""Typed SMTP commands and the parsing of one command line into one of them.

This module owns the syntax of RFC 5321 §4.1 command arguments: paths
(``<local@domain>``, the null path ``<>``, source routes), ESMTP parameters
(``KEY=VALUE``) and the per-verb argument rules. It is pure: a line goes in, a
frozen dataclass comes out, or :class:`courriel.errors.SyntaxProblem` is raised
(the only exception that may leave it). Meaning (is SIZE too big, is the sender
allowed) is the session's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from courriel.errors import SyntaxProblem

__all__ = [
    "AuthCmd",
    "BdatCmd",
    "Command",
    "DataCmd",
    "EhloCmd",
    "ExpnCmd",
    "HelpCmd",
    "MailCmd",
    "NoopCmd",
    "QuitCmd",
    "RcptCmd",
    "RsetCmd",
    "StartTlsCmd",
    "VrfyCmd",
    "parse_command",
]

# RFC 5321 §4.5.3.1.1-3: local part 64 octets, domain 255 octets, path 256 octets.
MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_PATH = 256
# BDAT sizes above this are nonsense (and would make int() slow on huge input).
MAX_SIZE_DIGITS = 18

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_ATEXT_FORBIDDEN = re.compile(r'[\x00-\x20\x7f()<>\[\]:;@\\,"]')
Params = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EhloCmd:
    """``EHLO domain`` (``extended``) or ``HELO domain`` (RFC 5321 §4.1.1.1)."""

    domain: str
    extended: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MailCmd:
    """``MAIL FROM:<path> [params]`` (RFC 5321 §4.1.1.2); ``address`` is "" for ``<>``."""

    address: str
    params: Params = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RcptCmd:
    """``RCPT TO:<path> [params]`` (RFC 5321 §4.1.1.3)."""

    address: str
    params: Params = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DataCmd:
    """``DATA`` (RFC 5321 §4.1.1.4)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BdatCmd:
    """``BDAT size [LAST]`` (RFC 3030 §2): exactly ``size`` octets follow the line."""

    size: int
    last: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RsetCmd:
    """``RSET`` (RFC 5321 §4.1.1.5)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VrfyCmd:
    """``VRFY string`` (RFC 5321 §4.1.1.6)."""

    argument: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpnCmd:
    """``EXPN string`` (RFC 5321 §4.1.1.7)."""

    argument: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HelpCmd:
    """``HELP [topic]`` (RFC 5321 §4.1.1.8)."""

    topic: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NoopCmd:
    """``NOOP [string]`` (RFC 5321 §4.1.1.9)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuitCmd:
    """``QUIT`` (RFC 5321 §4.1.1.10)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTlsCmd:
    """``STARTTLS`` (RFC 3207 §4)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthCmd:
    """``AUTH mechanism [initial-response]`` (RFC 4954 §4); mechanism upper-cased."""

    mechanism: str
    initial: str | None = None  # the SASL-IR initial response, still base64


Command = (
    EhloCmd
    | MailCmd
    | RcptCmd
    | DataCmd
    | BdatCmd
    | RsetCmd
    | VrfyCmd
    | ExpnCmd
    | HelpCmd
    | NoopCmd
    | QuitCmd
    | StartTlsCmd
    | AuthCmd
)


def _bad_args(usage: str) -> SyntaxProblem:
    return SyntaxProblem(f"Syntax: {usage}", code=501, enhanced="5.5.4")


def _scan_path_end(text: str) -> int:
    """Index of the ``>`` closing the path that starts at ``text[0] == "<"``, or -1."""
    quoted = False
    index = 1
    while index < len(text):
        char = text[index]
        if quoted and char == "\\":
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            return index
        index += 1
    return -1


def _check_domain(domain: str) -> bool:
    if len(domain.encode("utf-8")) > MAX_DOMAIN or not domain:
        return False
    if domain.startswith("[") and domain.endswith("]"):
        # RFC 5321 §4.1.3: address literals; the contents are printable, no brackets.
        inner = domain[1:-1]
        return bool(inner) and all(33 <= ord(c) <= 126 and c not in "[]\\" for c in inner)
    for label in domain.rstrip(".").split("."):
        # RFC 6531 §3.3: U-labels are allowed in domains when SMTPUTF8 is used.
        if label.isascii() and not _LABEL.fullmatch(label):
            return False
        if not label or any(ord(c) < 33 or c in '@<>[]\\,;:"()' for c in label):
            return False
    return True


def _check_local(local: str) -> bool:
    if not local or len(local.encode("utf-8")) > MAX_LOCAL:
        return False
    if local.startswith('"') and local.endswith('"') and len(local) >= 2:
        # RFC 5321 §4.1.2 Quoted-string: no control characters inside.
        return not any(ord(c) < 32 or c == "\x7f" for c in local[1:-1])
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return not _ATEXT_FORBIDDEN.search(local)


def _check_mailbox(mailbox: str) -> bool:
    local, sep, domain = mailbox.rpartition("@")
    return bool(sep) and _check_local(local) and _check_domain(domain)


def _parse_path(text: str, usage: str, *, null_ok: bool) -> tuple[str, str]:
    """Split ``<path> rest``; return the mailbox (source route dropped) and the rest."""
    # Accept "FROM: <a@b>" too (a space after the colon), as most servers do.
    text = text.lstrip(" ")
    end = _scan_path_end(text) if text.startswith("<") else -1
    if end < 0:
        raise _bad_args(usage)
    inner, rest = text[1:end], text[end + 1 :]
    if rest and not rest.startswith(" "):
        raise _bad_args(usage)
    if len(inner.encode("utf-8")) + 2 > MAX_PATH:
        raise SyntaxProblem("Path too long", code=501, enhanced="5.1.3")
    if inner.startswith("@"):
        # RFC 5321 §4.1.2 / §C: a source route must be accepted and then ignored.
        colon = inner.find(":")
        if colon < 0:
            raise _bad_args(usage)
        inner = inner[colon + 1 :]
    if inner == "":
        if null_ok:
            return "", rest
        raise _bad_args(usage)
    # RFC 5321 §4.1.1.3: "Postmaster" without a domain must be accepted.
    if not (not null_ok and inner.lower() == "postmaster") and not _check_mailbox(inner):
        raise SyntaxProblem("Bad address syntax", code=501, enhanced="5.1.3")
    return inner, rest


def _parse_params(text: str) -> Params:
    """Parse ``KEY[=VALUE]`` ESMTP parameters (RFC 5321 §4.1.2 esmtp-param)."""
    params: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in text.split():
        key, sep, value = item.partition("=")
        if not _KEYWORD.fullmatch(key) or (sep and not value) or "=" in value:
            raise SyntaxProblem("Bad parameter syntax", code=501, enhanced="5.5.4")
        key = key.upper()
        if key in seen:
            raise SyntaxProblem("Duplicate parameter", code=501, enhanced="5.5.4")
        seen.add(key)
        params.append((key, value if sep else None))
    return tuple(params)


def _parse_mail(arg: str) -> Command:
    usage = "MAIL FROM:<address> [parameters]"
    if arg[:5].upper() != "FROM:":
        raise _bad_args(usage)
    address, rest = _parse_path(arg[5:], usage, null_ok=True)
    return MailCmd(address=address, params=_parse_params(rest))


def _parse_rcpt(arg: str) -> Command:
    usage = "RCPT TO:<address> [parameters]"
    if arg[:3].upper() != "TO:":
        raise _bad_args(usage)
    address, rest = _parse_path(arg[3:], usage, null_ok=False)
    return RcptCmd(address=address, params=_parse_params(rest))


def _parse_bdat(arg: str) -> Command:
    parts = arg.split()
    size = parts[0] if parts else ""
    if (
        not 1 <= len(parts) <= 2
        or not (size.isascii() and size.isdigit())
        or len(size) > MAX_SIZE_DIGITS
    ):
        raise _bad_args("BDAT size [LAST]")
    if len(parts) == 2 and parts[1].upper() != "LAST":
        raise _bad_args("BDAT size [LAST]")
    return BdatCmd(size=int(parts[0]), last=len(parts) == 2)


def _parse_ehlo(verb: str, arg: str) -> Command:
    parts = arg.split()
    if not parts:
        raise _bad_args(f"{verb} hostname")
    return EhloCmd(domain=parts[0], extended=verb == "EHLO")


def _parse_auth(arg: str) -> Command:
    parts = arg.split()
    if not 1 <= len(parts) <= 2:
        raise _bad_args("AUTH mechanism [initial-response]")
    return AuthCmd(mechanism=parts[0].upper(), initial=parts[1] if len(parts) == 2 else None)


def _no_args(command: Command) -> Callable[[str, str], Command]:
    def parse(verb: str, arg: str) -> Command:
        if arg.strip():
            raise _bad_args(verb)
        return command

    return parse


def _parse_vrfy(verb: str, arg: str) -> Command:
    if not arg.strip():
        raise _bad_args(f"{verb} string")
    if verb == "VRFY":
        return VrfyCmd(argument=arg.strip())
    return ExpnCmd(argument=arg.strip())


_PARSERS: dict[str, Callable[[str, str], Command]] = {
    "EHLO": _parse_ehlo,
    "HELO": _parse_ehlo,
    "MAIL": lambda _verb, arg: _parse_mail(arg),
    "RCPT": lambda _verb, arg: _parse_rcpt(arg),
    "DATA": _no_args(DataCmd()),
    "BDAT": lambda _verb, arg: _parse_bdat(arg),
    "RSET": _no_args(RsetCmd()),
    "QUIT": _no_args(QuitCmd()),
    "STARTTLS": _no_args(StartTlsCmd()),
    "NOOP": lambda _verb, _arg: NoopCmd(),
    "HELP": lambda _verb, arg: HelpCmd(topic=arg.strip()),
    "VRFY": _parse_vrfy,
    "EXPN": _parse_vrfy,
    "AUTH": lambda _verb, arg: _parse_auth(arg),
}


def parse_command(line: str) -> Command:
    """Parse one command line (without its CRLF) into a typed command.

    Raises:
        SyntaxProblem: 500 5.5.1 for an unknown verb, 501 5.5.4 for bad arguments.
    """
    verb, _, arg = line.partition(" ")
    verb = verb.upper()
    parse = _PARSERS.get(verb)
    if parse is None:
        raise SyntaxProblem("Command unrecognized", code=500, enhanced="5.5.1")
    return parse(verb, arg)

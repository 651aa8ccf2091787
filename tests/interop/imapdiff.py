"""Scripted IMAP sessions run against two servers, and the normaliser that makes them comparable.

A script (``imap_scripts/*.imap``) is one IMAP session, one command a line, tags included::

    # comment
    a1 LOGIN $USER $PASSWORD
    a2 APPEND INBOX (\\Seen) "01-Feb-2026 10:00:00 +0000" <<alternative.eml>>

``$USER`` and ``$PASSWORD`` are replaced by the account's; ``<<NAME>>`` is sent as a
synchronising literal (RFC 9051 §4.3) holding ``imap_messages/NAME`` with CRLF line ends.
The runner sends each command, waits for ``+`` before each literal, and reads every response
line (with its literals) until the command's tagged reply. The greeting is not recorded.

Each response then goes through the named rules of :data:`RULES`, in order. They hide what
the RFCs leave to the server (free text, UIDVALIDITY values, the order of data items), so
that the two transcripts must then be equal line for line. A deliberate, RFC-allowed
difference between courriel and Dovecot gets a rule here, named, with its RFC reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RULES", "Transcript", "load_script", "normalise", "render", "run_script"]

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "imap_scripts"
MESSAGES = HERE / "imap_messages"
_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\r\n\Z")
_PLACEHOLDER = re.compile(r"<<([\w.-]+)>>")
TIMEOUT = 10.0
CLOSED = b"<connection closed>"


# --- scripts and the wire ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One command of a script: its line number, tag, and the pieces around literals."""

    line: int
    tag: str
    text: str  # the script's line as written ($USER, <<NAME>>), for transcripts
    pieces: tuple[bytes, ...]  # text, literal, text, literal, ... (text first and last)


@dataclass(slots=True)
class Transcript:
    """What one server answered to one script: ``(line, command, [responses])``."""

    steps: list[tuple[int, str, list[bytes]]] = field(default_factory=list)


def _message(name: str) -> bytes:
    """A fixture message with CRLF line ends (the files are stored with LF)."""
    text = (MESSAGES / name).read_bytes()
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def load_script(path: Path, *, user: str, password: str) -> list[Step]:
    """Read a ``.imap`` script into steps, with the account and fixture messages filled in."""
    steps: list[Step] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        filled = text.replace("$USER", user).replace("$PASSWORD", password)
        parts = _PLACEHOLDER.split(filled)
        pieces: list[bytes] = []
        for index, part in enumerate(parts):
            pieces.append(part.encode() if index % 2 == 0 else _message(part))
        tag = text.split(" ", 1)[0]
        steps.append(Step(line=number, tag=tag, text=text, pieces=tuple(pieces)))
    return steps


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """One response: a line, and the literals and line continuations it announces."""
    data = b""
    while True:
        line = await reader.readuntil(b"\r\n")
        data += line
        match = _LITERAL_AT_END.search(line)
        if match is None:
            return data
        data += await reader.readexactly(int(match.group(1)))


async def _continued(reader: asyncio.StreamReader, tagged: bytes, responses: list[bytes]) -> bool:
    """Wait for ``+`` before a literal; False when the tagged reply refused it instead."""
    while True:
        answer = await _read_response(reader)
        if answer.startswith(b"+"):
            return True
        # RFC 9051 §7.5: a server may refuse the literal with its tagged reply.
        responses.append(answer)
        if answer.startswith(tagged):
            return False


async def _run_step(
    step: Step, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, responses: list[bytes]
) -> None:
    tagged = step.tag.encode() + b" "
    for index, piece in enumerate(step.pieces):
        if index % 2 == 1:
            continue
        if index + 1 < len(step.pieces):
            literal = step.pieces[index + 1]
            writer.write(piece + b"{%d}\r\n" % len(literal))
            await writer.drain()
            if not await _continued(reader, tagged, responses):
                return
            writer.write(literal)
        else:
            writer.write(piece + b"\r\n")
    await writer.drain()
    while True:
        response = await _read_response(reader)
        responses.append(response)
        if response.startswith(tagged):
            return


async def run_script(
    steps: list[Step], port: int, context: ssl.SSLContext | None, host: str = "127.0.0.1"
) -> Transcript:
    """Run the steps in one session on ``host:port`` (implicit TLS when ``context``)."""
    transcript = Transcript()
    async with asyncio.timeout(TIMEOUT * (len(steps) + 1)):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None
        )
        try:
            await _read_response(reader)  # the greeting, not compared
            for step in steps:
                responses: list[bytes] = []
                try:
                    async with asyncio.timeout(TIMEOUT):
                        await _run_step(step, reader, writer, responses)
                except (asyncio.IncompleteReadError, ConnectionError):
                    # The server closed the connection: recorded, and the session ends.
                    transcript.steps.append((step.line, step.text, [*responses, CLOSED]))
                    break
                transcript.steps.append((step.line, step.text, responses))
        finally:
            writer.close()
            # The server may close first after LOGOUT.
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    return transcript


# --- a generic reader of response data (atoms, strings, literals, lists) -------------------

Token = bytes | list["Token"]
_ATOM_END = b" ()\r\n"


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal or quoted string in a parsed response (kept apart from atoms)."""

    data: bytes


Item = bytes | Literal | list["Item"]


def _parse(data: bytes, pos: int = 0) -> tuple[list[Item], int]:
    items: list[Item] = []
    while pos < len(data):
        char = data[pos : pos + 1]
        if char in (b" ", b"\r", b"\n"):
            pos += 1
        elif char == b"(":
            inner, pos = _parse(data, pos + 1)
            items.append(inner)
        elif char == b")":
            return items, pos + 1
        elif char == b'"':
            end = pos + 1
            while data[end : end + 1] not in (b'"', b""):
                end += 2 if data[end : end + 1] == b"\\" else 1
            items.append(Literal(data[pos + 1 : end]))
            pos = end + 1
        elif char in (b"{", b"~") and (match := re.match(rb"~?\{(\d+)\+?\}\r\n", data[pos:])):
            start = pos + match.end()
            size = int(match.group(1))
            items.append(Literal(data[start : start + size]))
            pos = start + size
        else:
            pos = _atom(data, pos, items)
    return items, pos


def _atom(data: bytes, pos: int, items: list[Item]) -> int:
    # An atom may hold a [section] with spaces and parentheses, e.g. BODY[HEADER.FIELDS (A B)].
    end, depth = pos, 0
    while end < len(data):
        char = data[end : end + 1]
        if char == b"[":
            depth += 1
        elif char == b"]":
            depth -= 1
        elif depth == 0 and char in (b" ", b"(", b")", b"\r", b"\n"):
            break
        end += 1
    items.append(data[pos:end])
    return end


def render(items: list[Item]) -> str:
    """Items back to one readable line (literals as Python-escaped strings)."""
    out: list[str] = []
    for item in items:
        if isinstance(item, list):
            out.append("(" + render(item) + ")")
        elif isinstance(item, Literal):
            out.append(
                '"'
                + item.data.decode("utf-8", "backslashreplace")
                .encode("unicode_escape")
                .decode("ascii")
                .replace('"', '\\"')
                + '"'
            )
        else:
            out.append(item.decode("utf-8", "backslashreplace"))
    return " ".join(out)


# --- the normaliser ------------------------------------------------------------------------


@dataclass(slots=True)
class Context:
    """State kept across one transcript: symbolic names for server-chosen values."""

    command: str = ""
    validity: dict[bytes, str] = field(default_factory=dict)

    def uidvalidity(self, value: bytes) -> bytes:
        name = self.validity.setdefault(value, f"V{len(self.validity) + 1}")
        return name.encode()


Rule = Callable[[list[Item], Context], list[Item] | None]  # None drops the response


def _verb(items: list[Item]) -> bytes:
    word = items[1] if len(items) > 1 and isinstance(items[1], bytes) else b""
    if word.isdigit() and len(items) > 2 and isinstance(items[2], bytes):
        return items[2].upper()
    return word.upper()


def drop_capability(items: list[Item], ctx: Context) -> list[Item] | None:
    """capability: CAPABILITY responses and [CAPABILITY ...] codes are not compared."""
    if items[:1] == [b"*"] and _verb(items) == b"CAPABILITY":
        return None
    return [i for i in items if not (isinstance(i, bytes) and i.upper().startswith(b"[CAPAB"))]


def drop_id(items: list[Item], ctx: Context) -> list[Item] | None:
    """id: RFC 2971 ID responses name the server; not compared."""
    return None if items[:1] == [b"*"] and _verb(items) == b"ID" else items


_STATUS = {b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"}


def mask_text(items: list[Item], ctx: Context) -> list[Item] | None:
    """status-text: the human text of OK/NO/BAD/BYE is free (RFC 9051 §7.1); codes are kept."""
    if items[:1] == [b"+"]:
        return [b"+"]
    if len(items) < 2 or not isinstance(items[1], bytes) or items[1].upper() not in _STATUS:
        return items
    kept = items[:2]
    if len(items) > 2 and isinstance(items[2], bytes) and items[2].startswith(b"["):
        kept.append(items[2])
    return kept


_VALIDITY_CODE = re.compile(rb"^\[(UIDVALIDITY|APPENDUID|COPYUID) (\d+)", re.IGNORECASE)


def name_uidvalidity(items: list[Item], ctx: Context) -> list[Item] | None:
    """uidvalidity: values are the server's choice (RFC 9051 §2.3.1.1): named V1, V2, ..."""
    out: list[Item] = []
    for index, item in enumerate(items):
        named = item
        if isinstance(item, bytes) and (match := _VALIDITY_CODE.match(item)):
            value = match.group(2)
            named = item[: match.start(2)] + ctx.uidvalidity(value) + item[match.end(2) :]
        elif isinstance(item, list) and _verb(items) == b"STATUS" and index == len(items) - 1:
            named = _status_validity(item, ctx)
        out.append(named)
    return out


def _status_validity(values: list[Item], ctx: Context) -> list[Item]:
    out = list(values)
    for index in range(0, len(out) - 1, 2):
        value = out[index + 1]
        if out[index] == b"UIDVALIDITY" and isinstance(value, bytes):
            out[index + 1] = ctx.uidvalidity(value)
    return out


def _sorted_flags(value: list[Item]) -> list[Item]:
    return sorted(value, key=lambda flag: flag if isinstance(flag, bytes) else b"")


def drop_hints(items: list[Item], ctx: Context) -> list[Item] | None:
    """hints: optional server hints are not compared: the LIST attributes \\Marked and
    \\Unmarked (RFC 9051 §7.3.1: a server MAY send them) and the [CLIENTBUG] code
    (RFC 5530 §3: informational; Dovecot adds it to a STATUS of the selected mailbox)."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, bytes) and item.upper() == b"[CLIENTBUG]":
            continue
        if isinstance(item, list) and _verb(items) in (b"LIST", b"LSUB"):
            out.append([a for a in item if not (isinstance(a, bytes) and a.lower() in _HINTS)])
        else:
            out.append(item)
    return out


_HINTS = {b"\\marked", b"\\unmarked"}


def sort_flags(items: list[Item], ctx: Context) -> list[Item] | None:
    """flag-order: a flag list is a set (RFC 9051 §2.3.2): compared sorted."""
    out = list(items)
    if _verb(items) == b"FLAGS" and isinstance(out[-1], list):
        out[-1] = _sorted_flags(out[-1])
    for index, item in enumerate(out):
        if isinstance(item, bytes) and item.upper().startswith(b"[PERMANENTFLAGS"):
            inner, _ = _parse(item[len(b"[PERMANENTFLAGS") : -1])
            flags = inner[0] if inner and isinstance(inner[0], list) else []
            out[index] = (
                b"[PERMANENTFLAGS ("
                + b" ".join(f for f in _sorted_flags(flags) if isinstance(f, bytes))
                + b")]"
            )
    return out


def sort_fetch_items(items: list[Item], ctx: Context) -> list[Item] | None:
    """fetch-item-order: data items of a FETCH response may come in any order (§7.5.2)."""
    if len(items) < 4 or _verb(items) != b"FETCH" or not isinstance(items[3], list):
        return items
    pairs: list[tuple[bytes, Item]] = []
    attrs = items[3]
    for index in range(0, len(attrs) - 1, 2):
        name, value = attrs[index], attrs[index + 1]
        if isinstance(name, bytes):
            if name.upper() == b"FLAGS" and isinstance(value, list):
                value = _sorted_flags(value)
            pairs.append((name.upper(), value))
    pairs.sort(key=lambda pair: pair[0])
    flat: list[Item] = [part for pair in pairs for part in pair]
    return [*items[:3], flat]


RULES: tuple[tuple[str, Rule], ...] = (
    ("capability", drop_capability),
    ("id", drop_id),
    ("status-text", mask_text),
    ("uidvalidity", name_uidvalidity),
    ("hints", drop_hints),
    ("flag-order", sort_flags),
    ("fetch-item-order", sort_fetch_items),
)

# Commands whose untagged responses may come in any order: LIST/LSUB name no order
# (RFC 9051 §6.3.9), SELECT/EXAMINE list their responses without one (§6.3.2).
_UNORDERED = {"LIST", "LSUB", "SELECT", "EXAMINE"}


def normalise(transcript: Transcript) -> list[str]:
    """The transcript as ``C:``/``S:`` lines after every rule (rule untagged-order too)."""
    ctx = Context()
    lines: list[str] = []
    for number, command, responses in transcript.steps:
        lines.append(f"C: {command}    # line {number}")
        verb = command.split(" ")[1].upper() if " " in command else ""
        out = list(_normalised(responses, ctx))
        if verb in _UNORDERED:
            untagged = sorted(line for line in out if line.startswith("S: * "))
            out = untagged + [line for line in out if not line.startswith("S: * ")]
        lines.extend(out)
    return lines


def _normalised(responses: list[bytes], ctx: Context) -> Iterator[str]:
    for response in responses:
        items: list[Item] | None = _parse(response)[0]
        for _name, rule in RULES:
            if items is None:
                break
            items = rule(items, ctx)
        if items is not None:
            yield "S: " + render(items)

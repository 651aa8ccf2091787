"""Scripted IMAP sessions run against two servers, and the normaliser that makes them comparable.

A script (``imap_scripts/*.imap``) is one IMAP session, one command a line, tags included::

    # comment
    a1 LOGIN $USER $PASSWORD
    a2 APPEND INBOX (\\Seen) "01-Feb-2026 10:00:00 +0000" <<alternative.eml>>

``$USER`` and ``$PASSWORD`` are replaced by the account's; ``<<NAME>>`` is sent as a
synchronising literal (RFC 9051 §4.3) holding ``imap_messages/NAME`` with CRLF line ends,
and ``<<'text'>>`` as one holding that text in UTF-8 (8-bit text may not be quoted, §4.3).
The runner sends each command, waits for ``+`` before each literal, and reads every response
line (with its literals) until the command's tagged reply. The greeting is not recorded.

``imaprules`` then normalises the transcripts (its named rules) before they are compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Item", "Literal", "Transcript", "load_script", "parse", "render", "run_script"]

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "imap_scripts"
MESSAGES = HERE / "imap_messages"
_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\r\n\Z")
_PLACEHOLDER = re.compile(r"<<([\w.-]+|'[^']*')>>")
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


def _literal(name: str) -> bytes:
    """``'text'``: that text in UTF-8; else a fixture message with CRLF line ends."""
    if name.startswith("'"):
        return name[1:-1].encode()
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
            pieces.append(part.encode() if index % 2 == 0 else _literal(part))
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


def parse(data: bytes, pos: int = 0) -> tuple[list[Item], int]:
    items: list[Item] = []
    while pos < len(data):
        char = data[pos : pos + 1]
        if char in (b" ", b"\r", b"\n"):
            pos += 1
        elif char == b"(":
            inner, pos = parse(data, pos + 1)
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

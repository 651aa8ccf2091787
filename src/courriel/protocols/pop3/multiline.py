"""Multi-line POP3 responses: dot-stuffing in bounded chunks (RFC 1939 §3).

This module owns the byte transformation of a message into the wire form of a
multi-line response body. It never copies a whole message: it yields slices of
at most ``chunk_size`` octets (plus the stuffed dots), so a large message costs
one stored copy and one chunk in flight.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["DEFAULT_CHUNK", "dot_stuffed_chunks", "top_end"]

DEFAULT_CHUNK = 64 * 1024


def dot_stuffed_chunks(
    data: bytes, end: int | None = None, chunk_size: int = DEFAULT_CHUNK
) -> Iterator[bytes]:
    """Yield ``data[:end]`` dot-stuffed, followed by the terminating ``.`` line.

    RFC 1939 §3: each line of a multi-line response that starts with the termination
    octet is prefixed with one more; the response ends with ``CRLF . CRLF``. A body
    that does not end with a line end gets one before the terminator.

    Args:
        data: the message as stored (CRLF line ends).
        end: stop at this offset (TOP); None for the whole message.
        chunk_size: the most octets of ``data`` taken per yielded piece.

    Yields:
        Pieces to write in order; together they form the response body.
    """
    stop = len(data) if end is None else min(end, len(data))
    at_line_start = True  # a "." here must be stuffed even across a chunk boundary
    start = 0
    while start < stop:
        piece = data[start : min(start + chunk_size, stop)]
        stuffed = piece.replace(b"\n.", b"\n..")
        if at_line_start and piece.startswith(b"."):
            yield b"."
        yield stuffed
        at_line_start = piece.endswith(b"\n")
        start += len(piece)
    yield b".\r\n" if at_line_start else b"\r\n.\r\n"


def _header_end(data: bytes) -> int:
    """Offset just after the blank line that ends the header (or len(data))."""
    if data.startswith((b"\r\n", b"\n")):
        return data.find(b"\n") + 1
    ends = [pos + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (pos := data.find(sep)) != -1]
    return min(ends, default=len(data))


def top_end(data: bytes, lines: int) -> int:
    """Offset where a ``TOP msg n`` response stops (RFC 1939 §7).

    The header, the blank line after it, then ``lines`` lines of the body (all of
    it when the body is shorter).
    """
    pos = _header_end(data)
    for _ in range(lines):
        nl = data.find(b"\n", pos)
        if nl == -1:
            return len(data)
        pos = nl + 1
    return pos
